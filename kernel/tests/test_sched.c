// SPDX-License-Identifier: GPL-2.0
/*
 * test_sched.c - server/worker scheduling through the kernel: round trip,
 * blocking that no wrapper sees (raw read on an empty pipe, nanosleep,
 * a contended futex) handed to the server at once and queued IDLE on
 * wake, LOCKED, the idle-servers stack, WF_CURRENT_CPU, the direct
 * hand-off (on, off, and its fallback for a wakee pinned elsewhere).
 */
#include <linux/futex.h>

#include "kts.h"

#include <sys/resource.h>

static struct umcg_task srv;
static struct group grp;

static void fn_yield_n(struct worker *w)
{
	for (int i = 0; i < 1000; i++) {
		atomic_fetch_add(&w->phase, 1);
		worker_yield(w);
	}
}

static void round_trip(void)
{
	static struct worker w;
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_yield_n);
	struct worker *x = take_one(&grp, 5000);
	CHECK(x == &w);
	CHECK(kt_load(&w.t.state) == UMCG_TASK_IDLE);
	CHECK(w.t.idle_workers_ptr == (uint64_t)(uintptr_t)&grp.idle_workers);
	CHECK(atomic_load(&w.phase) == 0); /* not run before a server runs it */
	for (int i = 1; i <= 1000; i++) {
		uint32_t st = run(&srv, &w);
		CHECK((st & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
		CHECK(atomic_load(&w.phase) == i);
	}
	run(&srv, &w);
	CHECK(atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

/* ---- blocking in raw syscalls ---------------------------------------- */

static int pfd[2];

static void fn_read(struct worker *w)
{
	char c;
	atomic_store(&w->phase, 1);
	long r = syscall(SYS_read, pfd[0], &c, 1);
	CHECK(r == 1 && c == 'x');
	atomic_store(&w->phase, 2);
}

static void fn_nanosleep(struct worker *w)
{
	struct timespec ts = {0, 50 * 1000000L};
	atomic_store(&w->phase, 1);
	CHECK(syscall(SYS_nanosleep, &ts, NULL) == 0);
	atomic_store(&w->phase, 2);
}

static uint32_t futex_word;

static void fn_futex(struct worker *w)
{
	atomic_store(&w->phase, 1);
	while (__atomic_load_n(&futex_word, __ATOMIC_ACQUIRE) == 0)
		syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	atomic_store(&w->phase, 2);
}

/*
 * The worker blocks: the server's wait returns at once with the worker
 * BLOCKED; when the operation completes the worker is queued IDLE and does
 * not run on until a server runs it.
 */
static void block_common(void (*fn)(struct worker *), void (*release)(void), int min_ms)
{
	static struct worker w;
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn);
	CHECK(take_one(&grp, 5000) == &w);
	uint64_t t0 = kt_now();
	uint32_t st = run(&srv, &w);
	uint64_t dt = kt_now() - t0;
	CHECK(st == UMCG_TASK_BLOCKED);
	CHECK(atomic_load(&w.phase) == 1);
	if (min_ms)
		CHECK(dt < (uint64_t)min_ms * 1000000ull); /* handed over before the sleep ended */
	if (release)
		release();
	CHECK(take_one(&grp, 5000) == &w);
	CHECK(kt_load(&w.t.state) == UMCG_TASK_IDLE);
	if (min_ms)
		CHECK(kt_now() - t0 >= (uint64_t)min_ms * 1000000ull);
	kt_sleep_ms(20);
	CHECK(atomic_load(&w.phase) == 1); /* queued, not running */
	CHECK(kt_load(&w.t.state) == UMCG_TASK_IDLE);
	st = run(&srv, &w);
	CHECK(atomic_load(&w.phase) == 2);
	CHECK(atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

static void release_pipe(void)
{
	kt_sleep_ms(10);
	CHECK(write(pfd[1], "x", 1) == 1);
}

static void block_pipe_read(void)
{
	CHECK(pipe(pfd) == 0);
	block_common(fn_read, release_pipe, 0);
}

static void block_nanosleep(void)
{
	block_common(fn_nanosleep, NULL, 50);
}

static void release_futex(void)
{
	kt_sleep_ms(10);
	__atomic_store_n(&futex_word, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void block_futex(void)
{
	block_common(fn_futex, release_futex, 0);
}

/* ---- LOCKED: no block detection, no queueing -------------------------- */

static _Atomic uint32_t srv_state_seen;

static void fn_locked_sleep(struct worker *w)
{
	struct timespec ts = {0, 30 * 1000000L};
	kt_store(&w->t.state, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	CHECK(syscall(SYS_nanosleep, &ts, NULL) == 0);
	atomic_store(&srv_state_seen, kt_load(&srv.state));
	CHECK(kt_load(&w->t.state) == (UMCG_TASK_RUNNING | UMCG_TF_LOCKED));
	kt_store(&w->t.state, UMCG_TASK_RUNNING);
	atomic_store(&w->phase, 1);
}

static void locked(void)
{
	static struct worker w;
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_locked_sleep);
	CHECK(take_one(&grp, 5000) == &w);
	uint64_t t0 = kt_now();
	run(&srv, &w);
	CHECK(kt_now() - t0 >= 30000000ull);
	CHECK(atomic_load(&w.done) && atomic_load(&w.phase) == 1);
	CHECK(atomic_load(&srv_state_seen) == UMCG_TASK_IDLE); /* the server slept on */
	CHECK(grp.idle_workers == 0);
	pthread_join(w.th, NULL);
}

/* ---- the idle-servers stack (T7/T8) ----------------------------------- */

static void fn_block_once(struct worker *w)
{
	struct timespec ts = {0, 20 * 1000000L};
	atomic_store(&w->phase, 1);
	CHECK(syscall(SYS_nanosleep, &ts, NULL) == 0);
	atomic_store(&w->phase, 2);
}

/* One server sleeps on the stack: a registering worker (T2) and a waking one (T7) pop it. */
static void idle_server_stack(void)
{
	static struct worker w;
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_block_once);
	server_idle_wait(&srv, &grp); /* woken by the worker's registration */
	struct worker *x[4];
	CHECK(drain(&grp, x, 4) == 1 && x[0] == &w);
	uint32_t st = run(&srv, &w);
	CHECK(st == UMCG_TASK_BLOCKED);
	server_idle_wait(&srv, &grp); /* woken by the worker's wake-up */
	CHECK(drain(&grp, x, 4) == 1 && x[0] == &w);
	CHECK(atomic_load(&w.phase) == 1);
	run(&srv, &w);
	CHECK(atomic_load(&w.phase) == 2 && atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

/* Two servers on the stack: each worker pops exactly one, skipping a deleted node. */
static struct umcg_task s2[2];
static _Atomic int s2_woken[2];
static _Atomic int s2_ready[2];

static void *stack_server(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct umcg_task *s = &s2[i];
	memset(s, 0, sizeof *s);
	s->state = UMCG_TASK_RUNNING;
	s->api_version = UMCG_API_VERSION;
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, s) == 0);
	s->server_tid = kt_tid();
	kt_store(&s->state, UMCG_TASK_IDLE);
	uint64_t head = __atomic_load_n(&grp.idle_servers, __ATOMIC_ACQUIRE);
	do
		__atomic_store_n(&s->idle_servers_ptr, head, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&grp.idle_servers, &head,
					    (uint64_t)(uintptr_t)&s->idle_servers_ptr, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	atomic_store(&s2_ready[i], 1);
	while (umcg_wait(0, 0))
		CHECK(errno == EINTR);
	CHECK(s->idle_servers_ptr & UMCG_IDLE_NODE_DELETED);
	atomic_store(&s2_woken[i], 1);
	/* take the worker(s) and run them to their end */
	struct worker *x[4];
	WAIT_FOR(__atomic_load_n(&grp.idle_workers, __ATOMIC_ACQUIRE), 5000);
	int n = drain(&grp, x, 4);
	for (int k = 0; k < n; k++) {
		x[k]->arg = s;
		run(s, x[k]);
		CHECK(atomic_load(&x[k]->done));
	}
	return NULL;
}

static void fn_nothing(struct worker *w)
{
	atomic_store(&w->phase, 1);
}

static void idle_server_two(void)
{
	static struct worker w[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		CHECK(pthread_create(&th[i], NULL, stack_server, (void *)(intptr_t)i) == 0);
		WAIT_FOR(atomic_load(&s2_ready[i]), 5000);
	}
	/* stack: s2[1] -> s2[0]; the first worker must pop s2[1] only */
	worker_start(&w[0], &grp, NULL, fn_nothing);
	WAIT_FOR(atomic_load(&s2_woken[1]), 5000);
	kt_sleep_ms(30);
	CHECK(!atomic_load(&s2_woken[0]));
	CHECK(kt_load(&s2[0].state) == UMCG_TASK_IDLE);
	/* the second skips the deleted top node and pops s2[0] */
	WAIT_FOR(atomic_load(&w[0].done), 5000);
	worker_start(&w[1], &grp, NULL, fn_nothing);
	WAIT_FOR(atomic_load(&s2_woken[0]), 5000);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		pthread_join(w[i].th, NULL);
	}
}

/* ---- WF_CURRENT_CPU ---------------------------------------------------- */

static _Atomic int cpu_seen;

static void fn_cpu(struct worker *w)
{
	for (int i = 0; i < 200; i++) {
		atomic_store(&cpu_seen, sched_getcpu());
		worker_yield(w);
	}
}

/* The worker switched to runs on the server's CPU (both may run anywhere). */
static void wf_current_cpu(void)
{
	static struct worker w;
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_cpu);
	CHECK(take_one(&grp, 5000) == &w);
	int same = 0;
	for (int i = 0; i < 200; i++) {
		int mine = sched_getcpu();
		run(&srv, &w);
		same += atomic_load(&cpu_seen) == mine;
	}
	run(&srv, &w);
	printf("  worker on the server's CPU in %d of 200 switches\n", same);
	CHECK(same >= 150);
	pthread_join(w.th, NULL);
}

/* ---- the direct hand-off (patch 0003) --------------------------------- */

static int handoff_get(void)
{
	FILE *f = fopen("/proc/sys/kernel/umcg_handoff", "r");
	int v = -1;

	CHECK(f);
	CHECK(fscanf(f, "%d", &v) == 1);
	fclose(f);
	return v;
}

static void handoff_set(int v)
{
	FILE *f = fopen("/proc/sys/kernel/umcg_handoff", "w");

	CHECK(f);
	fprintf(f, "%d\n", v);
	CHECK(fclose(f) == 0);
	CHECK(handoff_get() == v);
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0);
}

/* the worker inherits its CPU from the server's affinity at creation */
static void fn_pinned(struct worker *w)
{
	for (int i = 0; i < 900; i++) {
		atomic_store(&cpu_seen, sched_getcpu());
		atomic_fetch_add(&w->phase, 1);
		worker_yield(w);
	}
}

/*
 * 900 round trips in three thirds: hand-off on, off (kernel.umcg_handoff=0:
 * wake, then schedule()), on again; the worker pinned to wcpu, the server
 * to CPU 0. wcpu 0: the hand-off's own path, exactly one voluntary switch
 * of the server per run; wcpu 1: the wakee may not run on the server's
 * CPU, the hand-off falls back to a remote wake-up.
 */
static void handoff_common(int wcpu)
{
	static struct worker w;
	struct rusage r0, r1;

	CHECK(handoff_get() == 1); /* the default */
	server_register(&srv, &grp);
	pin_to(wcpu); /* inherited by the worker: it never migrates itself */
	worker_start(&w, &grp, &srv, fn_pinned);
	pin_to(0);
	CHECK(take_one(&grp, 5000) == &w);
	for (int part = 0; part < 3; part++) {
		handoff_set(part != 1);
		CHECK(getrusage(RUSAGE_THREAD, &r0) == 0);
		for (int i = 1; i <= 300; i++) {
			uint32_t st = run(&srv, &w);

			CHECK((st & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
			CHECK(atomic_load(&w.phase) == part * 300 + i);
			CHECK(atomic_load(&cpu_seen) == wcpu);
			CHECK(kt_load(&srv.state) == UMCG_TASK_RUNNING);
		}
		CHECK(getrusage(RUSAGE_THREAD, &r1) == 0);
		/* the first run of a third may also pay the sysctl's page faults */
		printf("  part %d (hand-off %s): server: %ld voluntary switches for 300 runs\n",
		       part, part != 1 ? "on" : "off", r1.ru_nvcsw - r0.ru_nvcsw);
		if (wcpu == 0)
			CHECK(r1.ru_nvcsw - r0.ru_nvcsw >= 300 && r1.ru_nvcsw - r0.ru_nvcsw <= 310);
	}
	handoff_set(1);
	run(&srv, &w);
	CHECK(atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

static void handoff_same_cpu(void)
{
	handoff_common(0);
}

static void handoff_other_cpu(void)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		printf("  one CPU: nothing to test\n");
		return;
	}
	handoff_common(1);
}

KT_MAIN(KT_CASE(round_trip), KT_CASE(block_pipe_read), KT_CASE(block_nanosleep),
	KT_CASE(block_futex), KT_CASE(locked), KT_CASE(idle_server_stack), KT_CASE(idle_server_two),
	KT_CASE(wf_current_cpu), KT_CASE(handoff_same_cpu), KT_CASE(handoff_other_cpu))
