// SPDX-License-Identifier: GPL-2.0
/*
 * test_life.c - signals, kills and exits: a signal to a queued worker runs
 * its handler only once a server runs it; SIGKILL in every worker state;
 * broken contracts and bad user pointers kill the worker with SIGSEGV
 * (never an oops); exit with queued workers; a RUNNING worker's exit
 * leaves its server IDLE (T11).
 */
#include <sys/mman.h>

#include "kts.h"

static struct umcg_task srv;
static struct group grp;
static int pfd[2];

/* ---- a signal to a worker queued IDLE -------------------------------- */

static _Atomic int handled;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
}

static void fn_read(struct worker *w)
{
	char c;
	atomic_store(&w->phase, 1);
	CHECK(syscall(SYS_read, pfd[0], &c, 1) == 1);
	atomic_store(&w->phase, 2);
}

static void signal_queued(void)
{
	static struct worker w;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	CHECK(pipe(pfd) == 0);
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_read);
	CHECK(take_one(&grp, 5000) == &w);
	CHECK(run(&srv, &w) == UMCG_TASK_BLOCKED);
	CHECK(write(pfd[1], "x", 1) == 1);
	CHECK(take_one(&grp, 5000) == &w); /* queued IDLE */
	CHECK(syscall(SYS_tgkill, getpid(), w.tid, SIGUSR1) == 0);
	kt_sleep_ms(30);
	CHECK(atomic_load(&handled) == 0); /* no user code without a server */
	CHECK(atomic_load(&w.phase) == 1);
	CHECK(kt_load(&w.t.state) == UMCG_TASK_IDLE);
	CHECK(grp.idle_workers == 0); /* not queued twice */
	run(&srv, &w);
	CHECK(atomic_load(&handled) == 1);
	CHECK(atomic_load(&w.phase) == 2 && atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

/* A worker blocked in read gets a signal: EINTR-free restart, queued once. */
static void signal_blocked(void)
{
	static struct worker w;
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
	sigaction(SIGUSR1, &sa, NULL);
	CHECK(pipe(pfd) == 0);
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_read);
	CHECK(take_one(&grp, 5000) == &w);
	CHECK(run(&srv, &w) == UMCG_TASK_BLOCKED);
	CHECK(syscall(SYS_tgkill, getpid(), w.tid, SIGUSR1) == 0);
	/* the signal ends the sleep: the worker is queued, the handler waits */
	CHECK(take_one(&grp, 5000) == &w);
	kt_sleep_ms(20);
	CHECK(atomic_load(&handled) == 0);
	/* run it: handler, then read restarts and blocks again */
	CHECK(run(&srv, &w) == UMCG_TASK_BLOCKED);
	CHECK(atomic_load(&handled) == 1);
	CHECK(write(pfd[1], "x", 1) == 1);
	CHECK(take_one(&grp, 5000) == &w);
	run(&srv, &w);
	CHECK(atomic_load(&w.phase) == 2 && atomic_load(&w.done));
	pthread_join(w.th, NULL);
}

/* ---- SIGKILL in every worker state ------------------------------------ */

enum kstate { K_RUNNING, K_BLOCKED, K_QUEUED, K_WAITING, K_UNRUN, K_NSTATES };
static const char *kname[] = {"running", "blocked", "queued", "in wait", "never run"};

static void fn_spin(struct worker *w)
{
	atomic_store(&w->phase, 1);
	for (;;)
		__asm__ volatile("" ::: "memory");
}

static void fn_wait(struct worker *w)
{
	atomic_store(&w->phase, 1);
	worker_yield(w); /* IDLE in sys_umcg_wait */
}

/* In a child process: bring a worker into state s, report, wait to die. */
static void kill_child(enum kstate s, _Atomic int *ready)
{
	static struct worker w;
	static void (*fns[])(struct worker *) = {fn_spin, fn_read, fn_read, fn_wait, fn_spin};
	CHECK(pipe(pfd) == 0);
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fns[s]);
	CHECK(take_one(&grp, 5000) == &w);
	atomic_store(&ready[1], (int)w.tid);
	if (s == K_UNRUN) {
		atomic_store(ready, 1);
		pause();
	}
	if (s == K_RUNNING) {
		/* run it with a timeout: the server wakes while the worker spins */
		kt_store(&srv.state, UMCG_TASK_IDLE);
		w.t.server_tid = kt_tid();
		kt_store(&w.t.state, UMCG_TASK_RUNNING);
		srv.next_tid = w.tid;
		CHECK_ERR(umcg_wait(0, kt_now() + 50000000ull), ETIMEDOUT);
		srv.next_tid = 0;
		WAIT_FOR(atomic_load(&w.phase) == 1, 5000);
		atomic_store(ready, 1);
		pause();
	}
	uint32_t st = run(&srv, &w);
	if (s == K_BLOCKED || s == K_QUEUED)
		CHECK(st == UMCG_TASK_BLOCKED);
	if (s == K_QUEUED) {
		CHECK(write(pfd[1], "x", 1) == 1);
		CHECK(take_one(&grp, 5000) == &w);
	}
	if (s == K_WAITING)
		CHECK(atomic_load(&w.phase) == 1 && st == UMCG_TASK_IDLE);
	atomic_store(ready, 1);
	pause();
}

static void kill_every_state(void)
{
	_Atomic int *ready =
	    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(ready != MAP_FAILED);
	for (int s = 0; s < K_NSTATES; s++) {
		for (int victim = 0; victim < 2; victim++) {
			atomic_store(ready, 0);
			pid_t pid = fork();
			if (pid == 0) {
				kill_child((enum kstate)s, ready);
				_exit(0);
			}
			WAIT_FOR(atomic_load(ready), 10000);
			/* kill the whole process, or only make the worker's thread group die by
			 * tgkill */
			if (victim == 0)
				CHECK(kill(pid, SIGKILL) == 0);
			else
				CHECK(syscall(SYS_tgkill, pid, atomic_load(&ready[1]), SIGKILL) ==
				      0);
			int st;
			CHECK(waitpid(pid, &st, 0) == pid);
			if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
				printf("  state %s: status %#x\n", kname[s], st);
				CHECK(0);
			}
		}
	}
}

/* ---- broken contracts: SIGSEGV ---------------------------------------- */

enum bad {
	BAD_WORKERS_PTR,
	BAD_SERVERS_PTR,
	BAD_SERVERS_NODE,
	BAD_SERVER_STATE,
	BAD_MISALIGNED_HEAD,
	BAD_N
};
static const char *bname[] = {"idle_workers_ptr unmapped", "idle_servers_ptr unmapped",
			      "idle-servers node unmapped", "server state BLOCKED",
			      "misaligned idle-workers head"};

static _Atomic uint32_t bad_tid;

static void *bad_worker(void *arg)
{
	enum bad b = (enum bad)(intptr_t)arg;
	static struct umcg_task t;
	static uint64_t head[2], servers;
	atomic_store(&bad_tid, kt_tid());
	t.state = UMCG_TASK_IDLE;
	t.api_version = UMCG_API_VERSION;
	t.idle_workers_ptr = (uint64_t)(uintptr_t)&head[0];
	if (b == BAD_WORKERS_PTR)
		t.idle_workers_ptr = 0x1000;
	if (b == BAD_MISALIGNED_HEAD)
		t.idle_workers_ptr = (uint64_t)(uintptr_t)&head[0] + 4;
	if (b == BAD_SERVERS_PTR)
		t.idle_servers_ptr = 0x2000;
	if (b == BAD_SERVERS_NODE) {
		servers = 0x3000; /* the head points to an unmapped node */
		t.idle_servers_ptr = (uint64_t)(uintptr_t)&servers;
	}
	if (b == BAD_SERVER_STATE)
		t.idle_workers_ptr = (uint64_t)(uintptr_t)&grp.idle_workers;
	umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t);
	if (b != BAD_SERVER_STATE)
		_exit(7); /* should have been killed */
	/* run by bad_child: block while our server is neither IDLE nor RUNNING */
	struct timespec ts = {0, 1000000};
	syscall(SYS_nanosleep, &ts, NULL);
	_exit(8);
}

static void bad_child(enum bad b)
{
	pthread_t th;
	if (b == BAD_SERVER_STATE)
		server_register(&srv, &grp);
	CHECK(pthread_create(&th, NULL, bad_worker, (void *)(intptr_t)b) == 0);
	if (b == BAD_SERVER_STATE) {
		uint64_t node;
		WAIT_FOR((node = __atomic_load_n(&grp.idle_workers, __ATOMIC_ACQUIRE)) != 0, 5000);
		struct umcg_task *t = (struct umcg_task *)(uintptr_t)(node - 24);
		t->idle_workers_ptr = (uint64_t)(uintptr_t)&grp.idle_workers;
		grp.idle_workers = 0;
		/* run it, but stay BLOCKED ourselves (nonsense for a server) */
		kt_store(&srv.state, UMCG_TASK_BLOCKED);
		t->server_tid = kt_tid();
		kt_store(&t->state, UMCG_TASK_RUNNING);
		srv.next_tid = atomic_load(&bad_tid);
		CHECK(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) == 0);
	}
	kt_sleep_ms(5000);
	_exit(9);
}

static void bad_pointers_kill(void)
{
	for (int b = 0; b < BAD_N; b++) {
		pid_t pid = fork();
		if (pid == 0)
			bad_child((enum bad)b);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV) {
			printf("  %s: status %#x, want SIGSEGV\n", bname[b], st);
			CHECK(0);
		}
	}
}

/* ---- exits --------------------------------------------------------------- */

static void fn_never(struct worker *w)
{
	(void)w;
	CHECK(0); /* never run */
}

/* The process exits with workers queued and a worker blocked. */
static void exit_with_queued(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		static struct worker w[4];
		server_register(&srv, &grp);
		for (int i = 0; i < 3; i++)
			worker_start(&w[i], &grp, &srv, fn_never);
		WAIT_FOR(({
				 uint64_t n = __atomic_load_n(&grp.idle_workers, __ATOMIC_ACQUIRE);
				 int c = 0;
				 while (n) {
					 c++;
					 n = *(uint64_t *)(uintptr_t)n;
				 }
				 c == 3;
			 }),
			 5000);
		exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* and the server thread exits first, workers still queued */
	pid = fork();
	if (pid == 0) {
		static struct worker w[2];
		static struct umcg_task s;
		server_register(&s, &grp);
		for (int i = 0; i < 2; i++)
			worker_start(&w[i], &grp, &s, fn_never);
		kt_sleep_ms(50);
		syscall(SYS_exit, 0); /* this thread only; the workers stay queued */
	}
	kt_sleep_ms(200);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void fn_exit_running(struct worker *w)
{
	atomic_store(&w->phase, 1);
	syscall(SYS_exit, 0); /* a RUNNING worker's thread ends */
}

/* T11: the server of a worker that exits RUNNING is not woken. */
static void worker_exit_running(void)
{
	static struct worker w;
	server_register(&srv, &grp);
	worker_start(&w, &grp, &srv, fn_exit_running);
	CHECK(take_one(&grp, 5000) == &w);
	kt_store(&srv.state, UMCG_TASK_IDLE);
	w.t.server_tid = kt_tid();
	kt_store(&w.t.state, UMCG_TASK_RUNNING);
	srv.next_tid = w.tid;
	CHECK_ERR(umcg_wait(0, kt_now() + 300000000ull), ETIMEDOUT);
	CHECK(atomic_load(&w.phase) == 1);
	CHECK(kt_load(&w.t.state) == UMCG_TASK_RUNNING);
	CHECK(grp.idle_workers == 0);
}

KT_MAIN(KT_CASE(signal_queued), KT_CASE(signal_blocked), KT_CASE(kill_every_state),
	KT_CASE(bad_pointers_kill), KT_CASE(exit_with_queued), KT_CASE(worker_exit_running))
