/* SPDX-License-Identifier: MIT */
/*
 * test_reliability.c - the three broken promises of issue 6, each as a
 * regression test that fails on the code before the fix:
 *
 *   1. EINTR must not hide a RUNNING state (T5): a task made RUNNING
 *      without a wake-up, then signalled, returns 0 from umcg_wait(), for
 *      servers and workers, with and without SA_RESTART and a deadline.
 *   2. A worker's deadline racing a direct wake-up (T4: CAS IDLE ->
 *      RUNNING, ttwu) gives exactly one of "woken" (0, not queued) and
 *      "timed out and queued" (ETIMEDOUT, the waker's CAS fails).
 *      Also: a wrapped call in a signal handler that runs while a worker
 *      sleeps in umcg_wait() does not queue the worker (review item).
 *   3. fork children of a busy scheduler (from a worker, a server, a plain
 *      thread) register anew and run a scheduler of their own to the end
 *      with exact counts; a hung child is killed by its watchdog (alarm)
 *      and fails the test.
 */
#include <execinfo.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kern/kern.h"	 /* umcg__registry_insert: see fork_test */
#include "lists/lists.h" /* umcg__test_wake_delay_us */
#include "sched_util.h"
#include "umcg.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"

#define MS 1000000ull

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

/* ---- 1. EINTR after T5 ---------------------------------------------------- */

static _Atomic int sig_count;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sig_count, 1);
}

static void install_handler(bool restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* Wait until thread tid sleeps (in its futex wait); fail after 10 s. */
static void wait_sleeping(long tid)
{
	for (int i = 0; i < 10000 && !th_thread_sleeps(tid); i++)
		su_msleep(1);
	CHECK(th_thread_sleeps(tid));
}

struct t5_arg {
	struct umcg_task *target;
	long tid;
	pthread_t thread;
};

/* T5 ("woken by some other event"): RUNNING without a wake-up, then a signal. */
static void *t5_main(void *p)
{
	struct t5_arg *a = p;
	wait_sleeping(a->tid);
	umcg_state_store(a->target, UMCG_TASK_RUNNING);
	CHECK_EQ(pthread_kill(a->thread, SIGUSR1), 0);
	return NULL;
}

static void server_t5(bool restart, bool deadline)
{
	static struct umcg_task t;
	install_handler(restart);
	memset(&t, 0, sizeof t);
	t.api_version = UMCG_API_VERSION;
	t.state = UMCG_TASK_RUNNING;
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	for (int round = 0; round < 3; round++) {
		int before = atomic_load(&sig_count);
		umcg_state_store(&t, UMCG_TASK_IDLE);
		struct t5_arg a = {&t, (long)umcg_gettid(), pthread_self()};
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, t5_main, &a), 0);
		int r = umcg_wait(0, deadline ? umcg_now_ns() + 20000 * MS : 0);
		CHECK_EQ(r, 0); /* was -1/EINTR with the state RUNNING */
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
		CHECK_EQ(pthread_join(th, NULL), 0);
		CHECK_EQ(atomic_load(&sig_count), before + 1); /* the handler did run */
	}
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
}

TEST_T(eintr_after_t5_server, 30)
{
	server_t5(false, false);
}
TEST_T(eintr_after_t5_server_restart, 30)
{
	server_t5(true, false);
}
TEST_T(eintr_after_t5_server_deadline, 30)
{
	server_t5(false, true);
}
TEST_T(eintr_after_t5_server_restart_deadline, 30)
{
	server_t5(true, true);
}

/*
 * A worker parks (su_yield: self IDLE, server RUNNING, umcg_wait). Its
 * server then "runs" it T5-style: server_tid = self, self IDLE, worker
 * RUNNING by a plain store, no wake-up; then a signal. The worker's
 * umcg_wait() must return 0 (it is RUNNING with a server: the wake point
 * lets it go) and it finishes under that server.
 */
static struct su_group wg;
static struct su_server wsrv;
static struct su_worker ww;
static _Atomic int w_ret = 99, w_errno;
static bool w_deadline;

static void payload_t5(struct su_worker *w)
{
	errno = 0;
	int r = su_yield(w, w_deadline ? umcg_now_ns() + 20000 * MS : 0);
	w_errno = errno;
	w_ret = r;
}

static void worker_t5(bool restart, bool deadline)
{
	install_handler(restart);
	w_deadline = deadline;
	su_server_register(&wsrv, &wg);
	su_worker_start(&ww, &wg, payload_t5, NULL);
	struct su_worker *w = su_poll_one(&wg, 5000);
	CHECK(w == &ww);
	CHECK_EQ(su_run(&wsrv, w), UMCG_TASK_IDLE); /* parked */
	wait_sleeping((long)su_worker_tid(w));
	__atomic_store_n(&w->task.server_tid, wsrv.tid, __ATOMIC_RELAXED);
	umcg_state_store(&wsrv.task, UMCG_TASK_IDLE);
	umcg_state_store(&w->task, UMCG_TASK_RUNNING); /* T5: no wake-up */
	CHECK_EQ(pthread_kill(w->thread, SIGUSR1), 0);
	CHECK_EQ(umcg_wait(0, 0), 0); /* until the worker finishes (wakes us) */
	su_worker_join(w);
	CHECK_EQ(atomic_load(&sig_count), 1);
	CHECK_EQ(w_ret, 0); /* was -1/EINTR with the state RUNNING */
	CHECK(atomic_load(&w->done) == &wsrv);
	CHECK(umcg_idle_workers_empty(&wg.iwl));
	CHECK_EQ(wg.bad_state, 0);
	su_server_unregister(&wsrv);
}

TEST_T(eintr_after_t5_worker, 30)
{
	worker_t5(false, false);
}
TEST_T(eintr_after_t5_worker_restart, 30)
{
	worker_t5(true, false);
}
TEST_T(eintr_after_t5_worker_deadline, 30)
{
	worker_t5(false, true);
}
TEST_T(eintr_after_t5_worker_restart_deadline, 30)
{
	worker_t5(true, true);
}

/*
 * Review item (hooks.c, re-park after a handler): a wrapped (blocking) call
 * in a signal handler that runs while a worker sleeps in umcg_wait() must
 * not queue the worker: it is parked with its server, which may run it
 * directly. Before the fix the handler's wake point queued it and parked
 * it inside the handler until somebody popped it.
 */
static _Atomic int handler_done;

static void on_sigusr2_wrapped_call(int sig)
{
	(void)sig;
	CHECK_EQ(umcg_usleep(0), 0); /* block point + wake point: a nested pair */
	atomic_fetch_add(&handler_done, 1);
}

static void payload_park_eintr(struct su_worker *w)
{
	errno = 0;
	int r = su_yield(w, 0);
	int e = errno;
	w_errno = e;
	/* EINTR (v0.3): runs without a server; wait again, as documented */
	while (r == -1 && e == EINTR) {
		r = umcg_wait(0, 0);
		e = errno;
	}
	w_ret = r;
}

TEST_T(handler_wrapped_call_in_umcg_wait, 30)
{
	SKIP_ON_KERNEL("kernel semantics (T7c): after EINTR the worker is IDLE, so a sleep in its "
		       "handler queues it; the nested-pair rule is libumcg's");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr2_wrapped_call;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);
	su_server_register(&wsrv, &wg);
	su_worker_start(&ww, &wg, payload_park_eintr, NULL);
	struct su_worker *w = su_poll_one(&wg, 5000);
	CHECK(w == &ww);
	CHECK_EQ(su_run(&wsrv, w), UMCG_TASK_IDLE); /* parked */
	wait_sleeping((long)su_worker_tid(w));
	CHECK_EQ(pthread_kill(w->thread, SIGUSR2), 0);
	for (int i = 0; i < 2000 && !atomic_load(&handler_done); i++)
		su_msleep(1);
	CHECK_EQ(atomic_load(&handler_done), 1); /* the handler was not parked */
	CHECK(umcg_idle_workers_empty(&wg.iwl)); /* nor the worker queued */
	CHECK_EQ(umcg_state_load(&w->task), UMCG_TASK_IDLE);
	/* still ours: run it directly; it finishes under us */
	CHECK_EQ(su_run(&wsrv, w), UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	su_worker_join(w);
	CHECK_EQ(w_ret, 0);
	CHECK(atomic_load(&w->done) == &wsrv);
	CHECK(umcg_idle_workers_empty(&wg.iwl));
	su_server_unregister(&wsrv);
}

/* ---- 2. a worker's deadline against a direct wake-up --------------------- */

#define DL_MAX_ROUNDS 400
static _Atomic int dl_result[DL_MAX_ROUNDS]; /* 0 or the errno of round i's wait */
static _Atomic int dl_parked = -1;	     /* the round the worker parks in */
static long dl_rounds;
static uint64_t dl_timeout_ns;

static void payload_deadline(struct su_worker *w)
{
	for (long i = 0; i < dl_rounds; i++) {
		atomic_store(&dl_parked, (int)i);
		errno = 0;
		int r = su_yield(w, umcg_now_ns() + dl_timeout_ns);
		dl_result[i] = r == 0 ? 0 : errno;
		if (!su_check_running(w))
			th_fail(__FILE__, __LINE__, "round %ld: not running as expected", i);
	}
}

/*
 * The worker parks with a deadline dl_timeout_ns ahead; its server waits
 * about that long (0-2x, pseudo-random) and then wakes it directly. Either
 * its CAS IDLE -> RUNNING wins (the worker's wait returns 0, the worker is
 * not queued) or it fails, the worker's state is IDLE|TIMEDOUT, and the
 * worker is on the idle-workers list exactly once and returns ETIMEDOUT
 * when the server runs it from there. Before the fix: ETIMEDOUT after a
 * successful CAS, a worker queued *and* woken, or a kill ("worker state
 * changed under the wake point").
 */
TEST_T(deadline_vs_direct_wake, 120)
{
	dl_rounds = th_scaled(DL_MAX_ROUNDS, 60);
	dl_timeout_ns = 200000; /* 200 us */
	su_server_register(&wsrv, &wg);
	su_worker_start(&ww, &wg, payload_deadline, NULL);
	struct su_worker *w = su_poll_one(&wg, 5000);
	CHECK(w == &ww);
	uint32_t wtid = su_worker_tid(w);
	/* parked in round 0 (and perhaps already timed out: IDLE|TIMEDOUT) */
	CHECK_EQ(su_run(&wsrv, w) & UMCG_TF_STATE_MASK, UMCG_TASK_IDLE);
	long direct = 0, timedout = 0;
	unsigned seed = 12345;
	for (long i = 0; i < dl_rounds; i++) {
		CHECK_EQ(atomic_load(&dl_parked), i);
		seed = seed * 1103515245u + 12345u;
		uint64_t delay = (seed >> 8) % (2 * dl_timeout_ns);
		uint64_t until = umcg_now_ns() + delay;
		while (umcg_now_ns() < until)
			; /* spin: a sleep would be too coarse */
		/* T4 as the server does it: self IDLE, CAS the worker, switch */
		__atomic_store_n(&w->task.server_tid, wsrv.tid, __ATOMIC_RELAXED);
		umcg_state_store(&wsrv.task, UMCG_TASK_IDLE);
		atomic_store(&wsrv.current, w);
		uint32_t exp = UMCG_TASK_IDLE;
		if (umcg_state_cas(&w->task, &exp, UMCG_TASK_RUNNING)) {
			direct++;
			wsrv.task.next_tid = wtid;
			CHECK_EQ(umcg_wait(0, 0), 0); /* until the worker parks again / ends */
			wsrv.task.next_tid = 0;
			atomic_store(&wsrv.current, NULL);
			CHECK_EQ(dl_result[i], 0);
			/*
			 * Woken directly: not queued in round i. It may be queued
			 * already in round i+1 (its next deadline passed), and
			 * then it carries the claim (set before the push).
			 */
			if (!umcg_idle_workers_empty(&wg.iwl))
				CHECK(umcg_state_load(&w->task) & UMCG_TF_TIMEDOUT);
		} else {
			timedout++;
			/* the timeout claimed the worker: it is the list's now */
			CHECK_EQ(exp, UMCG_TASK_IDLE | UMCG_TF_TIMEDOUT);
			uint32_t me = UMCG_TASK_IDLE;
			CHECK(umcg_state_cas(&wsrv.task, &me, UMCG_TASK_RUNNING));
			struct su_worker *q = su_poll_one(&wg, 5000); /* exactly one queued */
			CHECK(q == w);
			su_run(&wsrv, w);
			CHECK_EQ(dl_result[i], ETIMEDOUT);
		}
	}
	su_worker_join(w);
	CHECK(atomic_load(&w->done) == &wsrv);
	CHECK_EQ(direct + timedout, dl_rounds);
	CHECK(umcg_idle_workers_empty(&wg.iwl));
	CHECK_EQ(wg.bad_state, 0);
	printf("    %ld rounds: %ld woken directly, %ld timed out and queued\n", dl_rounds, direct,
	       timedout);
	su_server_unregister(&wsrv);
}

/* ---- 3. fork children of a busy scheduler ------------------------------- */

#define MINI_NS		 2
#define MINI_NW_MAX	 6
#define CHILD_WATCHDOG_S 20

enum fork_from { FROM_NONE, FROM_WORKER, FROM_SERVER, FROM_THREAD };

struct mini;
struct mini_sarg {
	struct mini *m;
	int i;
};

struct mini {
	struct su_group g;
	struct su_server servers[MINI_NS];
	struct su_worker workers[MINI_NW_MAX];
	int nw;
	long ops;	       /* per worker; 0: until workers_stop */
	int yield_every;       /* every n-th op parks with a short deadline */
	unsigned sleep_us;     /* each op: umcg_usleep(sleep_us) */
	enum fork_from forker; /* where forks come from */
	_Atomic int workers_stop;
	_Atomic long ops_done;
	_Atomic long timeouts;
	pthread_t sth[MINI_NS];
	struct mini_sarg sargs[MINI_NS];
};

static _Atomic int child_phase; /* where a fork child is (its watchdog reports it) */
static long forks_wanted;
static _Atomic long forks_done;
static pid_t fork_pids[256];

static void run_child(void);

static void do_fork(void)
{
	long n = atomic_fetch_add(&forks_done, 1);
	if (n >= forks_wanted) {
		atomic_fetch_sub(&forks_done, 1);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		run_child(); /* does not return */
	CHECK(pid > 0);
	fork_pids[n] = pid;
}

/* Forks are spread out (one per FORK_GAP_NS) so they land in every phase of the parent. */
#define FORK_GAP_NS (3 * MS)
static _Atomic uint64_t next_fork_ns;

static bool want_fork(void)
{
	uint64_t now = umcg_now_ns();
	if (atomic_load(&forks_done) >= forks_wanted || now < atomic_load(&next_fork_ns))
		return false;
	atomic_store(&next_fork_ns, now + FORK_GAP_NS);
	return true;
}

static void payload_mini(struct su_worker *w)
{
	struct mini *m = w->arg;
	for (long i = 0; m->ops ? i < m->ops : !atomic_load(&m->workers_stop); i++) {
		CHECK_EQ(umcg_usleep(m->sleep_us), 0); /* block point + wake point */
		if (!su_check_running(w))
			th_fail(__FILE__, __LINE__, "worker %ld not running as expected", w->id);
		w->count++;
		atomic_fetch_add(&m->ops_done, 1);
		if (m->yield_every && i % m->yield_every == 0) {
			/* park; nobody wakes us: the deadline queues us (idle servers popped) */
			errno = 0;
			int r = su_yield(w, umcg_now_ns() + 50000);
			if (r)
				CHECK_EQ(errno, ETIMEDOUT);
			atomic_fetch_add(&m->timeouts, r != 0);
		}
		if (m->forker == FROM_WORKER && w->id == 0 && want_fork())
			do_fork();
	}
}

static void *mini_server(void *p)
{
	struct mini_sarg a = *(struct mini_sarg *)p;
	struct mini *m = a.m;
	struct su_server *s = &m->servers[a.i];
	su_server_register(s, &m->g);
	struct su_worker *batch[MINI_NW_MAX];
	long ran = 0;
	while (!atomic_load(&m->g.stop)) {
		int n = su_pop_all_fifo(&m->g, batch, MINI_NW_MAX);
		for (int i = 0; i < n; i++) {
			su_run(s, batch[i]);
			ran++;
			if (m->forker == FROM_SERVER && a.i == 0 && want_fork())
				do_fork();
		}
		if (!n) /* idle with a deadline: GC and grace periods, timeouts */
			su_server_idle(s, umcg_now_ns() + 2 * MS);
	}
	su_server_unregister(s);
	return NULL;
}

static void mini_start(struct mini *m)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, su_stack_size());
	for (int i = 0; i < MINI_NS; i++) {
		m->sargs[i] = (struct mini_sarg){m, i};
		CHECK_EQ(pthread_create(&m->sth[i], &at, mini_server, &m->sargs[i]), 0);
	}
	pthread_attr_destroy(&at);
	for (int i = 0; i < m->nw; i++) {
		m->workers[i].id = i;
		su_worker_start(&m->workers[i], &m->g, payload_mini, m);
	}
}

static void mini_finish(struct mini *m)
{
	atomic_store(&m->workers_stop, 1);
	for (int i = 0; i < m->nw; i++)
		su_worker_join(&m->workers[i]);
	atomic_store(&child_phase, 4);
	atomic_store(&m->g.stop, 1);
	for (int i = 0; i < MINI_NS; i++)
		CHECK_EQ(pthread_join(m->sth[i], NULL), 0);
	atomic_store(&child_phase, 5);
	CHECK_EQ(m->g.registered, m->nw);
	CHECK_EQ(m->g.finished, m->nw);
	CHECK_EQ(m->g.bad_state, 0);
	long sum = 0;
	for (int i = 0; i < m->nw; i++) {
		CHECK(atomic_load(&m->workers[i].done) != NULL);
		sum += m->workers[i].count;
	}
	CHECK_EQ(sum, m->ops_done);
	if (m->ops)
		CHECK_EQ(sum, m->ops * m->nw);
	CHECK(umcg_idle_workers_empty(&m->g.iwl));
}

static struct mini *mini_alloc(void)
{
	struct mini *m;
	CHECK_EQ(posix_memalign((void **)&m, 64, sizeof *m), 0);
	memset(m, 0, sizeof *m);
	return m;
}

/*
 * The child, first part, on its only thread (the one that forked: a
 * worker, a server or a plain thread of the parent): register anew as a
 * server, go through an idle-servers push / remove / GC with a grace
 * period (inherited reader counts or a held gc_lock / gp_lock hang here),
 * a wake through an empty stack, a timed-out wait, and registration churn
 * (the task pool's lock); exact results.
 */
static void child_single_thread(void)
{
	static struct umcg_task t;
	static uint64_t isl;
	CHECK(umcg_self() == NULL); /* T12: not registered */
	for (int round = 0; round < 3; round++) {
		memset(&t, 0, sizeof t);
		t.api_version = UMCG_API_VERSION;
		t.state = UMCG_TASK_RUNNING;
		CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
		t.server_tid = umcg_gettid();
		isl = 0;
		umcg_idle_servers_push(&isl, &t);
		CHECK(umcg_idle_servers_remove(&t));
		CHECK_EQ(umcg_idle_servers_gc(&isl, NULL, NULL), 1); /* with a grace period */
		CHECK_EQ(isl, 0);
		CHECK(umcg_idle_servers_wake(&isl) == NULL);
		umcg_state_store(&t, UMCG_TASK_IDLE);
		CHECK_ERR(umcg_wait(0, umcg_now_ns() + MS), ETIMEDOUT);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
		CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	}
}

/*
 * The child: the part above, then (except under a sanitizer) a scheduler
 * of its own: a new group, 2 servers, 3 workers x 30 blocking operations,
 * every 5th a park with a deadline; exact counts. The alarm is the
 * watchdog: a hang kills the child with SIGALRM, which the parent reports
 * (with the child's phase and backtrace on stderr).
 * Sanitizer runtimes (GCC 12's) do not support threads or the allocator in
 * the child of a multi-threaded fork: ThreadSanitizer's die_after_fork,
 * and with it off "dup thread with used id"; AddressSanitizer's allocator
 * locks are not taken around fork, so a child whose parent was inside
 * malloc/free blocks in it (seen: new threads stuck in
 * SizeClassAllocator64::GetFromAllocator). Under them the child runs the
 * single-threaded, allocation-free part only.
 */
static struct mini *child_mini;

/* The watchdog fired: say where the child is, then die of SIGALRM. */
static void on_child_watchdog(int sig)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "    child %d hung in phase %d", (int)getpid(),
			 atomic_load(&child_phase));
	struct mini *m = child_mini;
	if (m) {
		n += snprintf(buf + n, sizeof buf - (size_t)n,
			      ": ops %ld, registered %ld, finished %ld, runs %ld, iwl %s, isl %s, "
			      "servers",
			      (long)m->ops_done, (long)m->g.registered, (long)m->g.finished,
			      (long)m->g.runs, m->g.iwl ? "queued" : "empty",
			      m->g.isl ? "set" : "0");
		for (int i = 0; i < MINI_NS; i++)
			n += snprintf(buf + n, sizeof buf - (size_t)n, " %#x",
				      umcg_state_load(&m->servers[i].task));
		n += snprintf(buf + n, sizeof buf - (size_t)n, ", workers");
		for (int i = 0; i < m->nw; i++)
			n += snprintf(buf + n, sizeof buf - (size_t)n, " %#x/%ld",
				      umcg_state_load(&m->workers[i].task), m->workers[i].count);
	}
	buf[n++] = '\n';
	ssize_t w = write(2, buf, (size_t)n);
	(void)w;
	void *bt[32];
	backtrace_symbols_fd(bt, backtrace(bt, 32), 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run_child(void)
{
	signal(SIGALRM, on_child_watchdog);
	alarm(CHILD_WATCHDOG_S);
	atomic_store(&child_phase, 1);
	atomic_store(&umcg__test_wake_delay_us, 0);
	child_single_thread();
	/*
	 * The child's own scheduler uses the explicit block points: a child
	 * hung now and then (1 in ~70, under CI load) with transparent
	 * detection, not yet understood (issue 7's note). The parent keeps
	 * detection on: the forks land while it is active.
	 */
	umcg_tune(UMCG_TUNE_DETECT, 0);
#ifndef UNDER_SANITIZER
	struct mini *m = mini_alloc();
	m->nw = 3;
	m->ops = 30;
	m->yield_every = 5;
	m->forker = FROM_NONE;
	child_mini = m;
	atomic_store(&child_phase, 2);
	mini_start(m);
	atomic_store(&child_phase, 3);
	mini_finish(m);
#endif
	_exit(0);
}

static void *plain_forker(void *p)
{
	(void)p;
	while (atomic_load(&forks_done) < forks_wanted) {
		if (want_fork())
			do_fork();
		su_msleep(1);
	}
	return NULL;
}

static void fork_test(enum fork_from from)
{
	forks_wanted = th_scaled(24, 8);
#ifdef UNDER_SANITIZER
	/*
	 * The child's registration allocates a registry chunk when its tid is
	 * the first of a new 4096-tid range, and the first scan bound reads
	 * /sys (fopen): under a sanitizer those allocations can block for
	 * ever (see run_child). Do both in the parent (storing NULL into an
	 * empty slot changes nothing).
	 */
	for (uint32_t t = umcg_gettid(); t < umcg_gettid() + 65536; t += 1024)
		(void)umcg__registry_insert(t, NULL); /* beyond the tid limit: nothing */
	umcg_nr_cpu_ids(); /* computed once (fopen, malloc): not in a child */
#endif
	struct mini *m = mini_alloc();
	m->nw = 4;
	m->ops = 0;
	m->yield_every = 7;
	m->forker = from;
	/*
	 * Widen the read sections of the parent's wake-ups (pop, then the
	 * server's IDLE -> RUNNING inside the section): forks then often see
	 * a reader inside one, and a GC waiting for it with gc_lock held.
	 */
	atomic_store(&umcg__test_wake_delay_us, 200);
	mini_start(m);
	pthread_t pf;
	if (from == FROM_THREAD)
		CHECK_EQ(pthread_create(&pf, NULL, plain_forker, NULL), 0);
	for (int i = 0; i < 60000 && atomic_load(&forks_done) < forks_wanted; i++)
		su_msleep(1);
	CHECK_EQ(atomic_load(&forks_done), forks_wanted);
	if (from == FROM_THREAD)
		CHECK_EQ(pthread_join(pf, NULL), 0);
	mini_finish(m);
	int hung = 0, failed = 0;
	for (long i = 0; i < forks_wanted; i++) {
		int status;
		CHECK_EQ(waitpid(fork_pids[i], &status, 0), fork_pids[i]);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
			hung++;
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	printf("    %ld children (parent: %ld ops, %ld timeouts): %d hung, %d failed\n",
	       forks_wanted, (long)m->ops_done, (long)m->timeouts, hung, failed);
	CHECK_EQ(hung, 0);
	CHECK_EQ(failed, 0);
}

TEST_T(fork_from_worker, 240)
{
	fork_test(FROM_WORKER);
}

TEST_T(fork_from_server, 240)
{
	fork_test(FROM_SERVER);
}

TEST_T(fork_from_plain_thread, 240)
{
	fork_test(FROM_THREAD);
}

/* ---- GC without malloc for the usual few, with it beyond ----------------- */

static void count_unlinked(struct umcg_task *server, void *arg)
{
	(void)server;
	(*(long *)arg)++;
}

TEST(gc_unlinks_more_than_the_stack_array)
{
	static struct umcg_task s[40];
	static uint64_t head;
	for (int n = 1; n <= 40; n += 13) { /* 1, 14, 27, 40: both paths */
		head = 0;
		for (int i = 0; i < n; i++)
			umcg_idle_servers_push(&head, &s[i]);
		for (int i = 0; i < n; i++)
			CHECK(umcg_idle_servers_remove(&s[i]));
		long seen = 0;
		CHECK_EQ(umcg_idle_servers_gc(&head, count_unlinked, &seen), n);
		CHECK_EQ(seen, n);
		CHECK_EQ(head, 0);
	}
}

/* ---- fork from a worker libumcg had pinned (placement hint) ------------- */

static cpu_set_t pin_before;
static _Atomic int pin_child_ok = -1, pin_hinted;

static void payload_fork_pinned(struct su_worker *w)
{
	(void)w;
	cpu_set_t now;
	CHECK_EQ(sched_getaffinity(0, sizeof now, &now), 0);
	pin_hinted = CPU_COUNT(&now) == 1; /* moved to the bound server's CPU */
	pid_t pid = fork();
	if (pid == 0) {
		/* the child is not a worker: its registration-time affinity is back */
		cpu_set_t c;
		int ok = sched_getaffinity(0, sizeof c, &c) == 0 && CPU_EQUAL(&c, &pin_before);
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	pin_child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_T(fork_from_pinned_worker_restores_affinity, 30)
{
	SKIP_ON_KERNEL(
	    "the kernel places woken tasks itself (WF_CURRENT_CPU), no affinity emulation to undo");
	CHECK_EQ(sched_getaffinity(0, sizeof pin_before, &pin_before), 0);
	if (CPU_COUNT(&pin_before) < 2) {
		printf("    skipped: needs 2 CPUs\n");
		return;
	}
	su_worker_start(&ww, &wg, payload_fork_pinned, NULL); /* registers with all CPUs */
	int cpu = -1;
	for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
		if (CPU_ISSET(c, &pin_before))
			cpu = c;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	CHECK_EQ(sched_setaffinity(0, sizeof one, &one), 0); /* a bound server */
	su_server_register(&wsrv, &wg);
	struct su_worker *w = su_poll_one(&wg, 5000);
	CHECK(w == &ww);
	/* asleep: only the switch's ttwu, after the pin, wakes it */
	wait_sleeping((long)su_worker_tid(w));
	su_run(&wsrv, w);
	/* its waitpid() sleeps: with block detection it comes back through the list */
	while (!atomic_load(&wg.finished)) {
		struct su_worker *again = su_poll_one(&wg, 100);
		if (again)
			su_run(&wsrv, again);
	}
	su_worker_join(w);
	CHECK_EQ(pin_hinted, 1);
	CHECK_EQ(pin_child_ok, 1);
	su_server_unregister(&wsrv);
}
