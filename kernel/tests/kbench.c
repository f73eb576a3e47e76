// SPDX-License-Identifier: GPL-2.0
/*
 * kbench - where a UMCG context switch spends its time, in one guest, on
 * the raw system calls (no library): ratios of
 *
 *   null    one getppid() (a null system call; one thread)
 *   timer   arm + disarm a 300 us hrtimer (two timerfd_settime(); one
 *           thread): the clock-event reprogramming a timed sleep pays
 *   yield   two threads on one CPU pass a turn, sched_yield() while it is
 *           not theirs: per round trip at least 2 system calls + 2 context
 *           switches (sw/rt says how many), no sleep and no wake-up
 *   futex   a futex ping-pong (FUTEX_WAKE the other, FUTEX_WAIT on our
 *           own word): per round trip 4 system calls, 2 wake-ups, 2
 *           context switches (bench/bench_switch.c's baseline); fewer
 *           sleeps when a FUTEX_WAKE preempts its caller (involuntary
 *           switches in sw/rt), whose FUTEX_WAIT then finds its word posted
 *   umcg    server -> worker -> server through sys_umcg_wait(): per round
 *           trip 2 system calls, 2 wake-ups, 2 context switches; with the
 *           hand-off (kernel.umcg_handoff=1: next_tid woken and switched
 *           to in one __schedule()) and as "umcg2step" without it (=0:
 *           try_to_wake_up(), then schedule()), alternated in one boot
 *
 * Each case runs -b batches of -n round trips; a batch's time / n is one
 * sample; printed: median, min and max of the samples, and per round trip
 * the voluntary/involuntary context switches of each thread
 * (getrusage(RUSAGE_THREAD)). "x futex" is the median over the futex
 * median of the same run and pinning. Pinning: "same" = both threads on
 * CPU 0, "diff" = CPU 0 and 1 (the null case: CPU 0).
 *
 *   blkfx/hookfx, blksl/hooksl: one block per cycle, worker blocked ->
 *           its server running, per cycle (not batched): a futex post
 *           (blk*) against the kernel's block hook (hook*), the worker
 *           blocking in FUTEX_WAIT (fx) or a 300 us nanosleep (sl);
 *           -c cycles (median, min, max of the cycles)
 *
 *   kbench [-n rt_per_batch] [-b batches] [-c block_cycles] [-p same|diff|both]
 */
#include "kts.h"

#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/timerfd.h>

static int nbatch = 301, nper = 20, nblk = 1000;

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	CHECK(sched_setaffinity(0, sizeof(s), &s) == 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* post: +1 and wake; wait: take 1 or sleep while 0 */
static void sem_post(_Atomic uint32_t *w)
{
	atomic_fetch_add(w, 1);
	futex_wake(w);
}

static void sem_wait(_Atomic uint32_t *w)
{
	for (;;) {
		uint32_t v = atomic_load(w);

		while (v)
			if (atomic_compare_exchange_weak(w, &v, v - 1))
				return;
		syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct sw {
	long vol, invol;
};

static struct sw rusage_now(void)
{
	struct rusage ru;

	CHECK(getrusage(RUSAGE_THREAD, &ru) == 0);
	return (struct sw){ru.ru_nvcsw, ru.ru_nivcsw};
}

/* ---- the shared two-thread frame ------------------------------------- */

static struct {
	int cpu[2];
	_Atomic uint32_t sem[2];
	_Atomic int go, turn;
	struct sw sw[2]; /* per thread, over all batches */
	uint64_t *samples;
	/* umcg */
	struct group g;
	struct umcg_task srv;
	struct worker w;
	_Atomic uint32_t wtid;
} B;

static void thread_begin(int i)
{
	pin(B.cpu[i]);
}

/* ---- null ------------------------------------------------------------- */

static void run_null(void)
{
	pin(0);
	for (int b = 0; b < nbatch; b++) {
		uint64_t t0 = kt_now();

		for (int i = 0; i < nper; i++)
			syscall(SYS_getppid);
		B.samples[b] = (kt_now() - t0) / (uint64_t)nper;
	}
	B.sw[0] = B.sw[1] = (struct sw){0, 0};
}

/*
 * timer: arm a 300 us hrtimer (timerfd, relative) and disarm it; the arm
 * reprograms the clock event device when the timer is the earliest, as
 * the hrtimer of a 300 us nanosleep does before the task sleeps.
 */
static void run_timer(void)
{
	struct itimerspec on = {{0, 0}, {0, 300000}}, off = {{0, 0}, {0, 0}};
	int fd = timerfd_create(CLOCK_MONOTONIC, 0);

	CHECK(fd >= 0);
	pin(0);
	for (int b = 0; b < nbatch; b++) {
		uint64_t t0 = kt_now();

		for (int i = 0; i < nper; i++) {
			timerfd_settime(fd, 0, &on, NULL);
			timerfd_settime(fd, 0, &off, NULL);
		}
		B.samples[b] = (kt_now() - t0) / (uint64_t)nper;
	}
	close(fd);
	B.sw[0] = B.sw[1] = (struct sw){0, 0};
}

/* ---- yield (same CPU only) -------------------------------------------- */

static void *yield_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct sw s0;

	thread_begin(me);
	atomic_fetch_add(&B.go, 1);
	while (atomic_load(&B.go) < 2)
		sched_yield();
	s0 = rusage_now();
	for (int b = 0; b < nbatch; b++) {
		uint64_t t0 = kt_now();

		/* one round trip: the turn goes to the other thread and back */
		for (int i = 0; i < nper; i++) {
			while (atomic_load(&B.turn) != me)
				sched_yield();
			atomic_store(&B.turn, !me);
		}
		if (me == 0)
			B.samples[b] = (kt_now() - t0) / (uint64_t)nper;
	}
	B.sw[me] = rusage_now();
	B.sw[me].vol -= s0.vol;
	B.sw[me].invol -= s0.invol;
	return NULL;
}

/* ---- futex ping-pong -------------------------------------------------- */

static void *futex_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct sw s0;

	thread_begin(me);
	s0 = rusage_now();
	for (int b = 0; b < nbatch; b++) {
		uint64_t t0 = kt_now();

		for (int i = 0; i < nper; i++) {
			if (me == 0) {
				sem_post(&B.sem[1]);
				sem_wait(&B.sem[0]);
			} else {
				sem_wait(&B.sem[1]);
				sem_post(&B.sem[0]);
			}
		}
		if (me == 0)
			B.samples[b] = (kt_now() - t0) / (uint64_t)nper;
	}
	B.sw[me] = rusage_now();
	B.sw[me].vol -= s0.vol;
	B.sw[me].invol -= s0.invol;
	return NULL;
}

/* ---- umcg switch ------------------------------------------------------ */

/* the worker's body: yield back nper * nbatch times (kts.h's worker_yield) */
static void umcg_worker_fn(struct worker *w)
{
	struct sw s0 = rusage_now();

	for (int i = 0; i < nbatch * nper; i++)
		worker_yield(w);
	B.sw[1] = rusage_now();
	B.sw[1].vol -= s0.vol;
	B.sw[1].invol -= s0.invol;
}

static void *umcg_worker_thread(void *arg)
{
	thread_begin(1);
	return worker_main(arg);
}

/* Register as B's server, start B's one worker running fn, take it off the list. */
static struct worker *start_server_and_worker(void (*fn)(struct worker *))
{
	server_register(&B.srv, &B.g);
	memset(&B.w, 0, sizeof(B.w));
	B.w.g = &B.g;
	B.w.fn = fn;
	B.w.arg = &B.srv;
	CHECK(pthread_create(&B.w.th, NULL, umcg_worker_thread, &B.w) == 0);
	return take_one(&B.g, 10000);
}

static void *umcg_server_thread(void *arg)
{
	struct worker *w;
	struct sw s0;

	(void)arg;
	thread_begin(0);
	w = start_server_and_worker(umcg_worker_fn);
	s0 = rusage_now();
	for (int b = 0; b < nbatch; b++) {
		uint64_t t0 = kt_now();

		for (int i = 0; i < nper; i++)
			CHECK((run(&B.srv, w) & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
		B.samples[b] = (kt_now() - t0) / (uint64_t)nper;
	}
	B.sw[0] = rusage_now();
	B.sw[0].vol -= s0.vol;
	B.sw[0].invol -= s0.invol;
	run(&B.srv, w); /* the worker finishes */
	CHECK(atomic_load(&w->done));
	pthread_join(w->th, NULL);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
	return NULL;
}

/* ---- block hook: worker blocks -> its server runs --------------------- */

/*
 * blk = t_srv - t_block per cycle: the worker (thread 1) stamps t_block
 * and blocks, either in FUTEX_WAIT on a word nobody has posted yet
 * (mode 0) or in a 300 us clock_nanosleep() (mode 1, bench_block's
 * blocking call); the server (thread 0) stamps t_srv when its
 * sys_umcg_wait() returns because the block hook woke it. The server then
 * posts the word (mode 0), waits on the idle-servers stack until the wake
 * hook queues the worker, and runs it again. Baseline (futex): W stamps,
 * posts S and blocks the same way; S stamps when its FUTEX_WAIT returns.
 */
static int blk_mode;
static _Atomic uint64_t t_block;
static _Atomic int blk_stop;

static void blk_call(void)
{
	if (blk_mode == 0) {
		sem_wait(&B.sem[1]);
	} else {
		struct timespec ts = {0, 300000};

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
}

static void blk_worker_fn(struct worker *w)
{
	(void)w;
	/* until the server stops us: a sleep that did not sleep is no block */
	while (!atomic_load(&blk_stop)) {
		atomic_store(&t_block, kt_now());
		blk_call();
	}
}

static void *blk_server_thread(void *arg)
{
	struct worker *w;

	(void)arg;
	thread_begin(0);
	w = start_server_and_worker(blk_worker_fn);
	for (int i = 0; i < nbatch * nper; i++) {
		uint32_t st = run(&B.srv, w);
		uint64_t t = kt_now();

		CHECK((st & UMCG_TF_STATE_MASK) == UMCG_TASK_BLOCKED ||
		      (st & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
		B.samples[i] = t - atomic_load(&t_block);
		if (blk_mode == 0)
			sem_post(&B.sem[1]);
		server_idle_wait(&B.srv, &B.g);
		w = take_one(&B.g, 10000);
	}
	atomic_store(&blk_stop, 1);
	run(&B.srv, w); /* the worker finishes */
	CHECK(atomic_load(&w->done));
	pthread_join(w->th, NULL);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
	return NULL;
}

static void *blk_futex_thread(void *arg)
{
	int me = (int)(intptr_t)arg;

	thread_begin(me);
	for (int i = 0; i < nbatch * nper; i++) {
		if (me == 1) {
			atomic_store(&t_block, kt_now());
			sem_post(&B.sem[0]);
			blk_call();
		} else {
			sem_wait(&B.sem[0]);
			B.samples[i] = kt_now() - atomic_load(&t_block);
			if (blk_mode == 0)
				sem_post(&B.sem[1]);
		}
	}
	return NULL;
}

/* kernel.umcg_handoff (patch 0003's benchmark knob); -1 if absent */
static int set_handoff(int on)
{
	FILE *f = fopen("/proc/sys/kernel/umcg_handoff", "w");

	if (!f)
		return -1;
	fprintf(f, "%d\n", on);
	return fclose(f) ? -1 : 0;
}

/* ---- driver ----------------------------------------------------------- */

struct res {
	uint64_t med, min, max;
	double sw[2][2]; /* [thread][vol, invol] per round trip */
};

static void run_case(const char *name, int c0, int c1, void *(*t0)(void *), void *(*t1)(void *),
		     void (*single)(void), struct res *r)
{
	int nsamples = strncmp(name, "blk", 3) ? nbatch : nbatch * nper;

	pthread_t th[2];
	long n = (long)nbatch * nper;

	memset(&B.sem, 0, sizeof(B.sem));
	memset(&B.sw, 0, sizeof(B.sw));
	blk_stop = 0;
	B.go = 0;
	B.turn = 0;
	B.cpu[0] = c0;
	B.cpu[1] = c1;
	if (single) {
		single();
	} else if (!t1) {
		CHECK(pthread_create(&th[0], NULL, t0, NULL) == 0);
		pthread_join(th[0], NULL);
	} else {
		CHECK(pthread_create(&th[0], NULL, t0, (void *)0) == 0);
		CHECK(pthread_create(&th[1], NULL, t1, (void *)1) == 0);
		pthread_join(th[0], NULL);
		pthread_join(th[1], NULL);
	}
	qsort(B.samples, (size_t)nsamples, sizeof(uint64_t), cmp_u64);
	r->med = B.samples[nsamples / 2];
	r->min = B.samples[0];
	r->max = B.samples[nsamples - 1];
	for (int i = 0; i < 2; i++) {
		r->sw[i][0] = (double)B.sw[i].vol / (double)n;
		r->sw[i][1] = (double)B.sw[i].invol / (double)n;
	}
	(void)name;
}

static void print(const char *pinning, const char *name, const struct res *r,
		  const struct res *futex)
{
	printf("kbench %-4s %-6s med %7.2f us  min %7.2f  max %8.2f  x futex %5.2f"
	       "  sw/rt t0 %.2f+%.2f t1 %.2f+%.2f\n",
	       pinning, name, (double)r->med / 1e3, (double)r->min / 1e3, (double)r->max / 1e3,
	       futex ? (double)r->med / (double)futex->med : 1.0, r->sw[0][0], r->sw[0][1],
	       r->sw[1][0], r->sw[1][1]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int opt, same = 1, diff = 1;
	struct res null, timer, yield, futex, um;

	(void)kt_main; /* kt.h's test driver: not used here */

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:b:c:p:")) != -1) {
		if (opt == 'c')
			nblk = atoi(optarg);
		else if (opt == 'n')
			nper = atoi(optarg);
		else if (opt == 'b')
			nbatch = atoi(optarg);
		else if (opt == 'p') {
			same = !strcmp(optarg, "same") || !strcmp(optarg, "both");
			diff = !strcmp(optarg, "diff") || !strcmp(optarg, "both");
		}
	}
	if (kt_probe()) {
		printf("kbench: no UMCG marker: not a UMCG kernel\n");
		return 1;
	}
	B.samples = calloc((size_t)nbatch * (size_t)nper + (size_t)nblk, sizeof(uint64_t));
	CHECK(B.samples);
	printf("kbench: %d batches x %d round trips; med/min/max of the batch means; "
	       "sw/rt = voluntary+involuntary switches per round trip of thread 0 "
	       "(server, A) and 1 (worker, B)\n",
	       nbatch, nper);
	run_case("null", 0, 0, NULL, NULL, run_null, &null);
	run_case("timer", 0, 0, NULL, NULL, run_timer, &timer);
	for (int p = 0; p < 2; p++) {
		const char *pn = p ? "diff" : "same";

		if ((p == 0 && !same) || (p == 1 && !diff))
			continue;
		/* futex first and last: the spread of the baseline itself */
		run_case("futex", 0, p, futex_thread, futex_thread, NULL, &futex);
		print(pn, "futex", &futex, NULL);
		if (p == 0) {
			print(pn, "null", &null, &futex);
			print(pn, "timer", &timer, &futex);
			run_case("yield", 0, 0, yield_thread, yield_thread, NULL, &yield);
			print(pn, "yield", &yield, &futex);
		}
		/*
		 * umcg: the hand-off (kernel.umcg_handoff=1, patch 0003);
		 * umcg2step: wake next_tid, then schedule() (=0); alternated,
		 * three times each, in this boot and with this kernel image
		 */
		for (int r = 0; r < 3; r++) {
			for (int h = 1; h >= 0; h--) {
				if (!h && set_handoff(0))
					break; /* a kernel without the knob */
				run_case("umcg", 0, p, umcg_server_thread, NULL, NULL, &um);
				set_handoff(1);
				print(pn, h ? "umcg" : "umcg2step", &um, &futex);
			}
		}
		run_case("futex", 0, p, futex_thread, futex_thread, NULL, &futex);
		print(pn, "futex2", &futex, NULL);
		/* block hook, per cycle: -c cycles as one batch */
		for (blk_mode = 0; blk_mode < 2; blk_mode++) {
			const char *bn[2][2] = {{"blkfx", "hookfx"}, {"blksl", "hooksl"}};
			int sb = nbatch, sn = nper;

			nbatch = 1;
			nper = nblk;
			run_case("blk", 0, p, blk_futex_thread, blk_futex_thread, NULL, &futex);
			print(pn, bn[blk_mode][0], &futex, NULL);
			run_case("blk", 0, p, blk_server_thread, NULL, NULL, &um);
			print(pn, bn[blk_mode][1], &um, &futex);
			nbatch = sb;
			nper = sn;
		}
	}
	return 0;
}
