/* SPDX-License-Identifier: MIT */
/*
 * fifo_demo.c - a complete M:N scheduler on the UMCG v0.3 ABI (libumcg).
 *
 * N servers (one per CPU by default) run M workers (64 by default) in
 * first-in first-out order. Each worker does K operations (200 by
 * default); one operation is
 *
 *     ~50 us of computation              (a busy loop: runs on a server's CPU)
 *     umcg_usleep(300)                   (really sleeps: a block and a wake)
 *     umcg_write() + umcg_read() of one byte on a pipe  (two short syscalls)
 *
 * Every blocking call goes through the umcg_wrap.h wrappers, which make the
 * worker BLOCKED (its server gets its CPU back) before the call and queue
 * it on the idle-workers list after the call (a server must pick it up
 * again). So the demo shows every transition of the v0.3 state machine:
 * registration (T1, T2), context switches (T3/T4), block (T6), wake (T7),
 * waking idle servers (T8), worker exit with "wake your server" (T10).
 * The same scheduler runs unchanged on each of the three idle-server
 * designs of umcg_idle.h (-i), through struct umcg_idle_group.
 *
 * This file is meant to be read as the reference for writing a scheduler
 * on the v0.3 ABI. The rules it follows (each is marked "RULE" below):
 *
 *   1. A server that switches to a worker makes ITSELF IDLE before it
 *      makes the worker RUNNING. (The other order loses a wake-up: the
 *      worker could run and block before the server is IDLE; the block
 *      point then sees a RUNNING server and wakes nobody.)
 *   2. The idle-workers list is a LIFO stack: reverse it for FIFO.
 *      Re-point each worker (umcg_idle_workers_next) before it runs.
 *   3. A server with nothing to run waits in umcg_idle_group_wait(), which
 *      implements the idle protocol of the group's design (-i): the v0.3
 *      idle-servers stack, the review's eventfd, or v0.4's tid word. For
 *      the idle-workers list the library keeps the no-lost-wake-up rule
 *      itself (announce with a seq_cst RMW, re-check the list with a
 *      seq_cst load, then sleep; libumcg appends with a seq_cst RMW, then
 *      looks for an announced server). The scheduler's OWN work (its run
 *      queue, the shutdown flag) needs the same store-load pattern one level
 *      up: a server counts itself in nr_idle (seq_cst RMW) before it
 *      re-checks rq_len and done (seq_cst loads); whoever adds work changes
 *      rq_len or done with a seq_cst RMW and then reads nr_idle. One of the
 *      two sees the other. No explicit fence is needed anywhere.
 *   4. Other servers are woken only with umcg_idle_group_wake_one(), which
 *      takes an idle server and wakes it inside one grace-period read
 *      section (never a pop followed by your own wake-up). A server counted
 *      in nr_idle may not have announced itself to the group yet, so a
 *      waker that must not miss it retries until wake_one() succeeds or
 *      nr_idle (or the work) is gone.
 *   5. umcg_idle_group_wait() returns with the server RUNNING and its
 *      announcement withdrawn (on the stack: its node unlinked by a GC), so
 *      it may be called again at once. A return may be spurious: always
 *      look for work again.
 *   6. Idle waits may have a timeout (-T). A server that times out while a
 *      waker has already taken it waits, inside umcg_idle_group_wait(), for
 *      that wake-up and for a grace period, so the late wake-up cannot end
 *      the server's next switch to a worker.
 *   7. A finishing worker wakes its server itself (v0.3 does not), with
 *      itself LOCKED so nothing is detected in between, then unregisters.
 *
 * Everything the threads share is either an atomic, protected by the run
 * queue mutex, or handed over through a release/acquire pair on an ABI
 * state word (written before the state store, read after the state load):
 * the demo is clean under ThreadSanitizer (make VARIANT=tsan).
 *
 * Usage: fifo_demo [-i stack|eventfd|tid] [-s servers] [-w workers] [-n ops]
 *                  [-c compute_us] [-u sleep_us] [-p] [-H] [-T idle_ms]
 *                  [-t watchdog_s]
 * Exit status: 0 if every worker completed every operation and all the
 * counters agree; 1 on a failed check; 2 on bad usage; 3 if the watchdog
 * saw no progress (a lost wake-up: a library or scheduler bug).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "umcg.h"
#include "umcg_idle.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- configuration ------------------------------------------------------- */

static int nr_servers;		  /* -s */
static int nr_workers = 64;	  /* -w */
static long nr_ops = 200;	  /* -n */
static long compute_us = 50;	  /* -c */
static long sleep_us = 300;	  /* -u */
static int pin_servers = -1;	  /* -p 1, -U 0, default: 1 iff servers <= CPUs */
static bool use_wrappers;	  /* -W */
static bool no_cpu_hint;	  /* -H */
static long idle_timeout_ms;	  /* -T, 0: idle waits without timeout */
static long watchdog_s = 20;	  /* -t */
static int nr_cpus;		  /* CPUs we may run on */
static int cpu_list[CPU_SETSIZE]; /* their ids */

/* -i: how idle servers wait and are found (umcg_idle.h) */
static enum umcg_idle_design idle_design = UMCG_IDLE_STACK;

enum { NR_PIPES = 8 };
static int pipes[NR_PIPES][2];

/* ---- the scheduler's data ------------------------------------------------ */

/*
 * The idle-signalling state of this scheduling group, for the design
 * chosen with -i: the idle-workers head (libumcg pushes workers that woke
 * up, the servers take them) and the design's words (idle-servers stack,
 * tid word, or eventfd). Workers point at it (umcg_idle_group_worker_init);
 * servers wait in it (umcg_idle_group_wait) and wake each other through it
 * (umcg_idle_group_wake_one). The fields are the library's business.
 */
static struct umcg_idle_group grp;

/* Servers inside server_idle(): the announcement of RULE 3 for our own work. */
static _Atomic int nr_idle;

/*
 * A server. struct umcg_task must be 64-byte aligned and must stay valid
 * while the thread is registered and as long as anybody may name its tid:
 * all of them live in one array freed by main() after every thread ended.
 */
struct worker;
struct server {
	struct umcg_task task; /* the ABI struct (first member, 64-byte aligned) */
	uint32_t tid;
	int idx;
	int cpu;				  /* -p: the CPU it is pinned to, else -1 */
	_Atomic(struct worker *) finished_worker; /* set by a worker that exits, RULE 7 */
	_Atomic int exited;			  /* for the watchdog */
	/* counters, written only by the server thread, read after join */
	long runs;	     /* switches to a worker */
	long blocks;	     /* runs that ended with the worker asleep (T6) */
	long iwl_taken;	     /* workers taken from the idle-workers list */
	long idle_sleeps;    /* umcg_idle_group_wait() calls */
	long idle_timeouts;  /* ... that returned ETIMEDOUT (-T) */
	long kicks;	     /* idle servers this server woke: more queued work */
	long shutdown_wakes; /* idle servers this server woke at shutdown */
	long finishes;	     /* workers that finished while run by this server */
	long errors;
	pthread_t thread;
} __attribute__((aligned(64)));

/* A worker: one application thread. */
struct worker {
	struct umcg_task task;
	uint32_t tid; /* written before registration */
	int idx;
	struct server *server;	/* the server running it (user bookkeeping) */
	struct worker *rq_next; /* run queue link */
	_Atomic int finished;
	_Atomic long ops; /* completed operations (read by the watchdog) */
	bool detected;	  /* libumcg sees it sleep in any call (umcg_detect_thread) */
	long interrupted; /* plain sleeps interrupted by a late detection signal */
	long errors;
	pthread_t thread;
} __attribute__((aligned(64)));

static struct server *servers;
static struct worker *workers;

/* The user-space run queue: FIFO, shared by all servers. */
static pthread_mutex_t rq_lock = PTHREAD_MUTEX_INITIALIZER;
static struct worker *rq_head, *rq_tail;
static _Atomic long rq_len; /* written under rq_lock, read without it */

static _Atomic int nr_finished; /* workers that completed all their ops */
static _Atomic int done;	/* set once, by the server that sees the last one */
static _Atomic int nr_failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fifo_demo: FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	atomic_fetch_add(&nr_failures, 1);
}

/* An error the scheduler cannot continue after. */
static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fifo_demo: FATAL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(1);
}

static inline uint32_t low_state(const struct umcg_task *t)
{
	return umcg_state_load(t) & UMCG_TF_STATE_MASK;
}

/* ---- run queue ------------------------------------------------------------ */

/* Append the chain first..last (n workers, in FIFO order) at the tail. */
static void rq_append(struct worker *first, struct worker *last, long n)
{
	pthread_mutex_lock(&rq_lock);
	if (rq_tail)
		rq_tail->rq_next = first;
	else
		rq_head = first;
	rq_tail = last;
	atomic_fetch_add(&rq_len, n);
	pthread_mutex_unlock(&rq_lock);
}

/* Pop the head; *left gets the number of workers still queued. */
static struct worker *rq_pop(long *left)
{
	pthread_mutex_lock(&rq_lock);
	struct worker *w = rq_head;
	if (w) {
		rq_head = w->rq_next;
		if (!rq_head)
			rq_tail = NULL;
		w->rq_next = NULL;
		atomic_fetch_sub(&rq_len, 1);
	}
	*left = atomic_load(&rq_len);
	pthread_mutex_unlock(&rq_lock);
	return w;
}

/*
 * RULE 2: take every worker libumcg queued, oldest first.
 *
 * umcg_idle_workers_pop_all() returns the chain newest first (it is a
 * stack). Walking it with umcg_idle_workers_next() also restores each
 * worker's idle_workers_ptr to the head address, which must happen
 * before the worker runs again (its next wake point pushes there).
 * Prepending each one to a local list reverses the chain.
 */
static void drain_idle_workers(struct server *s)
{
	struct umcg_task *t = umcg_idle_workers_pop_all(&grp.idle_workers);
	if (!t)
		return;
	struct worker *first = NULL, *last = NULL;
	long n = 0;
	while (t) {
		struct umcg_task *next = umcg_idle_workers_next(t, &grp.idle_workers);
		struct worker *w = container_of(t, struct worker, task);
		/* A queued worker is IDLE until a server makes it RUNNING. */
		if (low_state(t) != UMCG_TASK_IDLE) {
			fail("worker %d queued in state %#x", w->idx, umcg_state_load(t));
			s->errors++;
		}
		w->rq_next = first;
		first = w;
		if (!last)
			last = w;
		n++;
		t = next;
	}
	s->iwl_taken += n;
	rq_append(first, last, n);
}

/* ---- waking idle servers ------------------------------------------------- */

/*
 * More workers are queued than this server can run: wake one idle server
 * so they run in parallel. libumcg wakes an idle server only when it
 * appends a worker to the idle-workers list; workers moved to our own run
 * queue are our business. rq_len was raised with a seq_cst RMW before
 * this (rq_append), so an idle server that we do not count in nr_idle
 * here sees it (RULE 3); one that we do count is woken (RULE 4).
 */
static void kick_idle_server(struct server *s)
{
	while (atomic_load(&nr_idle) && atomic_load(&rq_len)) {
		if (umcg_idle_group_wake_one(&grp)) {
			s->kicks++;
			return;
		}
		sched_yield(); /* counted, but not waiting in the group yet */
	}
}

/*
 * Shutdown: every worker has finished; wake every server that is idle.
 * done was set (seq_cst RMW) before this, so a server that enters
 * server_idle() after our last look at nr_idle sees it and does not wait.
 * Keep waking until no server is left in server_idle(): wake_one() can
 * find nobody while a counted server is on its way into (or out of) the
 * group wait, or, on the stack, while popped nodes wait for their GC.
 */
static void wake_all_idle_servers(struct server *s)
{
	int n;
	while ((n = atomic_load(&nr_idle))) {
		if (!umcg_idle_group_wake_one(&grp)) {
			sched_yield(); /* counted, but not waiting in the group (yet) */
			continue;
		}
		s->shutdown_wakes++;
		/*
		 * Give the woken server up to 1 ms to leave before we wake
		 * again (an eventfd write stays pending until a server reads
		 * it, so writing again at once would only add counts).
		 */
		uint64_t until = umcg_now_ns() + 1000000;
		while (atomic_load(&nr_idle) == n && umcg_now_ns() < until)
			sched_yield();
	}
}

/* ---- the server ------------------------------------------------------------ */

/*
 * Run worker w until it blocks, finishes, or (not in this demo) yields.
 * This is a context switch: T3 for the server, T4 for the worker.
 */
static void run_worker(struct server *s, struct worker *w)
{
	struct umcg_task *me = &s->task;

	w->server = s; /* published by the state store below (release) */
	__atomic_store_n(&w->task.server_tid, s->tid, __ATOMIC_RELAXED);
	/* RULE 1: IDLE ourselves first, then the worker RUNNING. */
	umcg_state_store(me, UMCG_TASK_IDLE);
	uint32_t expected = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&w->task, &expected, UMCG_TASK_RUNNING))
		fatal("worker %d to run is in state %#x, not IDLE", w->idx, expected);
	__atomic_store_n(&me->next_tid, w->tid, __ATOMIC_RELAXED);
	s->runs++;

	/*
	 * Wake w (placed on our CPU) and sleep until something makes us
	 * RUNNING: w's block point (T6), or w itself when it finishes.
	 * ESRCH: w ran, finished and unregistered before we got here (it
	 * did make us RUNNING first): just wait for RUNNING, which returns
	 * at once.
	 */
	while (umcg_wait(0, 0)) {
		if (errno == ESRCH)
			__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED);
		else if (errno != EINTR)
			fatal("server %d: umcg_wait: %s", s->idx, strerror(errno));
	}
	__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED); /* not consumed by umcg_wait */

	/*
	 * Back to RUNNING. w's state tells little by now: if it blocked, it may
	 * already have woken up and be run by another server (and may even
	 * have finished there). So a finishing worker tells its server itself
	 * (finished_worker, set before it woke us: the acquire load of our
	 * state in umcg_wait makes it visible).
	 */
	struct worker *fw =
	    atomic_exchange_explicit(&s->finished_worker, NULL, memory_order_acquire);
	if (!fw)
		s->blocks++; /* it went to sleep (T6): it comes back through the list */
	if (fw) {
		if (fw != w)
			fatal("server %d: worker %d finished while %d was run", s->idx, fw->idx,
			      w->idx);
		s->finishes++;
		if (atomic_load(&nr_finished) == nr_workers && !atomic_exchange(&done, 1))
			wake_all_idle_servers(s);
	}
}

/*
 * Nothing to run: wait in the group until libumcg (a worker woke up),
 * another server (kick) or the shutdown wakes us, or -T expires.
 */
static void server_idle(struct server *s)
{
	struct umcg_task *me = &s->task;

	/* RULE 3: count ourselves idle, then look at our own work again. */
	atomic_fetch_add(&nr_idle, 1);
	if (!atomic_load(&rq_len) && !atomic_load(&done)) {
		s->idle_sleeps++;
		uint64_t deadline = 0;
		if (idle_timeout_ms)
			deadline = umcg_now_ns() + (uint64_t)idle_timeout_ms * 1000000;
		/* RULES 3, 5, 6: the library re-checks the idle-workers list. */
		if (umcg_idle_group_wait(&grp, me, deadline)) {
			if (errno != ETIMEDOUT)
				fatal("server %d: umcg_idle_group_wait: %s", s->idx,
				      strerror(errno));
			s->idle_timeouts++;
		}
		if (low_state(me) != UMCG_TASK_RUNNING) {
			fail("server %d back from its idle wait in state %#x", s->idx,
			     umcg_state_load(me));
			s->errors++;
		}
	}
	atomic_fetch_sub(&nr_idle, 1);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct umcg_task *me = &s->task;

	if (s->cpu >= 0) {
		/* Before registering: libumcg records this affinity as "allowed". */
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(s->cpu, &set);
		int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
		if (e)
			fatal("server %d: pin to CPU %d: %s", s->idx, s->cpu, strerror(e));
	}

	/* T1: a server registers RUNNING, with all tids zero ... */
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_RUNNING;
	me->api_version = UMCG_API_VERSION;
	if (umcg_ctl(UMCG_CTL_REGISTER, me))
		fatal("server %d: umcg_ctl(REGISTER): %s", s->idx, strerror(errno));
	/*
	 * ... then names itself in server_tid: umcg_idle_group_wait() needs
	 * it, and it is how a waker that took this server finds its thread.
	 */
	s->tid = umcg_gettid();
	__atomic_store_n(&me->server_tid, s->tid, __ATOMIC_RELEASE);

	for (;;) {
		drain_idle_workers(s);
		long left;
		struct worker *w = rq_pop(&left);
		if (w) {
			if (left)
				kick_idle_server(s);
			run_worker(s, w);
			continue;
		}
		if (atomic_load(&done))
			break;
		server_idle(s);
	}

	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		fatal("server %d: umcg_ctl(UNREGISTER): %s", s->idx, strerror(errno));
	atomic_store(&s->exited, 1);
	return NULL;
}

/* ---- the worker -------------------------------------------------------------- */

static void compute(uint64_t ns)
{
	static _Thread_local volatile uint64_t sink;
	uint64_t end = umcg_now_ns() + ns;
	do {
		for (int i = 0; i < 64; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (umcg_now_ns() < end);
}

/* After a wrapper returned, a worker is running again: RUNNING, with a server. */
static void check_running(struct worker *w, const char *what)
{
	uint32_t st = umcg_state_load(&w->task);
	uint32_t server_tid = __atomic_load_n(&w->task.server_tid, __ATOMIC_RELAXED);
	if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING || !server_tid) {
		fail("worker %d after %s: state %#x server_tid %u", w->idx, what, st, server_tid);
		w->errors++;
	}
}

/*
 * usleep() without a wrapper. A detection signal that comes late (in
 * some VMs the kernel's irq_work is delivered up to a tick late,
 * docs/detection.md) can interrupt the sleep: count it and sleep on to
 * the same deadline.
 */
static int plain_sleep(struct worker *w, long us)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += us * 1000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	int r;
	while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL)) == EINTR)
		w->interrupted++;
	errno = r;
	return r ? -1 : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct umcg_task *me = &w->task;
	int *p = pipes[w->idx % NR_PIPES];

	/* T2: a worker registers IDLE, with its idle-workers head ... */
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_IDLE;
	me->api_version = UMCG_API_VERSION;
	umcg_idle_group_worker_init(&grp, me); /* the group's words, per design */
	w->tid = umcg_gettid();		       /* published by libumcg's push (release) */
	/* ... and is queued as idle: the call returns once a server runs it. */
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, me))
		fatal("worker %d: umcg_ctl(REGISTER|WORKER): %s", w->idx, strerror(errno));
	check_running(w, "registration");
	w->detected = umcg_detect_thread(-1) == 1;
	/* without detection (unavailable, UMCG_DETECT=0), only the wrappers show blocks */
	bool wrap = use_wrappers || !w->detected;

	for (long i = 0; i < nr_ops; i++) {
		compute((uint64_t)compute_us * 1000);

		/*
		 * Plain libc calls: libumcg sees the worker sleep (T6) and parks
		 * it when it wakes (T7) by itself. With -W the umcg_wrap.h
		 * wrappers bracket them instead (a block is then reported only
		 * if the call really slept, or on every call without detection).
		 */
		if (wrap ? umcg_usleep((unsigned int)sleep_us) : plain_sleep(w, sleep_us))
			fail("worker %d: usleep: %s", w->idx, strerror(errno));
		check_running(w, "usleep");

		/*
		 * A byte through a pipe shared by a few workers: each worker
		 * writes before it reads, so a read never waits long.
		 */
		char c = (char)w->idx;
		if ((wrap ? umcg_write(p[1], &c, 1) : write(p[1], &c, 1)) != 1)
			fail("worker %d: write: %s", w->idx, strerror(errno));
		check_running(w, "write");
		if ((wrap ? umcg_read(p[0], &c, 1) : read(p[0], &c, 1)) != 1)
			fail("worker %d: read: %s", w->idx, strerror(errno));
		check_running(w, "read");

		atomic_store_explicit(&w->ops, i + 1, memory_order_relaxed);
	}

	/*
	 * RULE 7 (T10): we are RUNNING and our server sleeps in umcg_wait()
	 * with us as its next_tid. LOCK ourselves (no detection from here
	 * on), record that we finished, make the server RUNNING and wake it,
	 * then unregister (which does not wake anybody).
	 */
	struct server *s = w->server;
	umcg_state_store(me, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	atomic_store_explicit(&w->finished, 1, memory_order_relaxed);
	atomic_store_explicit(&s->finished_worker, w, memory_order_relaxed);
	atomic_fetch_add(&nr_finished, 1);
	uint32_t expected = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&s->task, &expected, UMCG_TASK_RUNNING))
		fatal("worker %d: its server %d is in state %#x, not IDLE", w->idx, s->idx,
		      expected);
	__atomic_store_n(&me->next_tid, __atomic_load_n(&me->server_tid, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) && errno != ESRCH)
		fatal("worker %d: wake server: %s", w->idx, strerror(errno));
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		fatal("worker %d: umcg_ctl(UNREGISTER): %s", w->idx, strerror(errno));
	return NULL;
}

/* ---- main: set up, watch, report ---------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-i stack|eventfd|tid] [-s servers] [-w workers] [-n ops]\n"
		"          [-c compute_us] [-u sleep_us] [-p] [-H] [-T idle_ms] [-t watchdog_s]\n"
		"  -i D  idle-server design (umcg_idle.h): stack (v0.3, default), eventfd\n"
		"        (the review's idle_fd), tid (v0.4's idle_server_tid_ptr)\n"
		"  -s N  servers (default: one per CPU we may run on)\n"
		"  -w M  workers (default 64)\n"
		"  -n K  operations per worker (default 200)\n"
		"  -c U  computation per operation, microseconds (default 50)\n"
		"  -u U  umcg_usleep() per operation, microseconds (default 300)\n"
		"  -p    pin server i to CPU i (mod the number of CPUs); the default when\n"
		"        there are no more servers than CPUs\n"
		"  -U    do not pin servers\n"
		"  -W    workers call the umcg_wrap.h wrappers, not plain libc calls\n"
		"  -H    no current-CPU placement hint (umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 0))\n"
		"  -T MS idle waits time out after MS milliseconds (default: no timeout)\n"
		"  -t S  watchdog: fail if nothing progresses for S seconds (default 20)\n",
		argv0);
	exit(2);
}

static long parse_num(const char *s, long min, long max, const char *argv0)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage(argv0);
	return v;
}

static uint64_t progress(void)
{
	uint64_t p = (uint64_t)atomic_load(&nr_finished);
	for (int i = 0; i < nr_workers; i++)
		p += (uint64_t)atomic_load_explicit(&workers[i].ops, memory_order_relaxed);
	for (int i = 0; i < nr_servers; i++)
		p += (uint64_t)atomic_load(&servers[i].exited);
	return p;
}

/* The watchdog fired: print what every thread is doing, for the bug report. */
static void dump_state(void)
{
	/* the group's words are opaque; read them here only to help debugging */
	fprintf(stderr,
		"fifo_demo: no progress for %ld s: lost wake-up?\n"
		"  design %s: idle_workers %#llx idle_servers %#llx idle_server_tid %u "
		"idle_fd waiters %u\n"
		"  nr_idle %d rq_len %ld finished %d/%d done %d\n",
		watchdog_s, umcg_idle_design_name(idle_design),
		(unsigned long long)__atomic_load_n(&grp.idle_workers, __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&grp.idle_servers, __ATOMIC_RELAXED),
		__atomic_load_n(&grp.idle_server_tid, __ATOMIC_RELAXED),
		__atomic_load_n(&grp.idle_fd.waiters, __ATOMIC_RELAXED), atomic_load(&nr_idle),
		atomic_load(&rq_len), atomic_load(&nr_finished), nr_workers, atomic_load(&done));
	for (int i = 0; i < nr_servers; i++) {
		struct server *s = &servers[i];
		fprintf(stderr, "  server %d tid %u state %#x next_tid %u node %#llx exited %d\n",
			i, s->tid, umcg_state_load(&s->task),
			__atomic_load_n(&s->task.next_tid, __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&s->task.idle_servers_ptr,
							    __ATOMIC_RELAXED),
			atomic_load(&s->exited));
	}
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];
		if (atomic_load(&w->finished))
			continue;
		fprintf(stderr, "  worker %d tid %u state %#x server_tid %u ops %ld\n", i, w->tid,
			umcg_state_load(&w->task),
			__atomic_load_n(&w->task.server_tid, __ATOMIC_RELAXED),
			atomic_load_explicit(&w->ops, memory_order_relaxed));
	}
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	cpu_set_t avail;
	if (sched_getaffinity(0, sizeof avail, &avail))
		CPU_ZERO(&avail);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &avail))
			cpu_list[nr_cpus++] = c;
	if (!nr_cpus) {
		nr_cpus = 1;
		cpu_list[0] = 0;
	}
	nr_servers = nr_cpus;

	int opt;
	while ((opt = getopt(argc, argv, "i:s:w:n:c:u:pUWHT:t:h")) != -1) {
		switch (opt) {
		case 'i':
			if (umcg_idle_design_parse(optarg, &idle_design))
				usage(argv[0]);
			break;
		case 's':
			nr_servers = (int)parse_num(optarg, 1, 1024, argv[0]);
			break;
		case 'w':
			nr_workers = (int)parse_num(optarg, 1, 100000, argv[0]);
			break;
		case 'n':
			nr_ops = parse_num(optarg, 1, 100000000, argv[0]);
			break;
		case 'c':
			compute_us = parse_num(optarg, 0, 1000000, argv[0]);
			break;
		case 'u':
			sleep_us = parse_num(optarg, 0, 1000000, argv[0]);
			break;
		case 'W':
			use_wrappers = true;
			break;
		case 'p':
			pin_servers = 1;
			break;
		case 'U':
			pin_servers = 0;
			break;
		case 'H':
			no_cpu_hint = true;
			break;
		case 'T':
			idle_timeout_ms = parse_num(optarg, 0, 3600000, argv[0]);
			break;
		case 't':
			watchdog_s = parse_num(optarg, 1, 3600, argv[0]);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	if (pin_servers < 0) /* one server per CPU: pin them (the fast placement) */
		pin_servers = nr_servers <= nr_cpus;
	if (no_cpu_hint && umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 0))
		fatal("umcg_tune: %s", strerror(errno));
	if (umcg_idle_group_init(&grp, idle_design))
		fatal("umcg_idle_group_init(%s): %s", umcg_idle_design_name(idle_design),
		      strerror(errno));

	for (int i = 0; i < NR_PIPES; i++)
		if (pipe(pipes[i]))
			fatal("pipe: %s", strerror(errno));
	servers = aligned_alloc(64, sizeof *servers * (size_t)nr_servers);
	workers = aligned_alloc(64, sizeof *workers * (size_t)nr_workers);
	if (!servers || !workers)
		fatal("out of memory");
	memset(servers, 0, sizeof *servers * (size_t)nr_servers);
	memset(workers, 0, sizeof *workers * (size_t)nr_workers);

	char idle_tmo[32] = "none";
	if (idle_timeout_ms)
		snprintf(idle_tmo, sizeof idle_tmo, "%ld ms", idle_timeout_ms);
	printf("fifo_demo: %d servers, %d workers x %ld ops "
	       "(compute %ld us, usleep %ld us, pipe write+read; %s)\n"
	       "           %d CPUs, servers %s, current-CPU hint %s\n"
	       "           idle design %s, idle-wait timeout %s\n",
	       nr_servers, nr_workers, nr_ops, compute_us, sleep_us,
	       use_wrappers ? "umcg_wrap.h wrappers" : "plain libc calls", nr_cpus,
	       pin_servers ? "pinned one per CPU" : "not pinned", no_cpu_hint ? "off" : "on",
	       umcg_idle_design_name(idle_design), idle_tmo);
	fflush(stdout);

	/* Small stacks: a worker needs little, and -w 1000 means 1000 threads. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);

	uint64_t t0 = umcg_now_ns();
	for (int i = 0; i < nr_servers; i++) {
		servers[i].idx = i;
		servers[i].cpu = pin_servers ? cpu_list[i % nr_cpus] : -1;
		int e = pthread_create(&servers[i].thread, &attr, server_main, &servers[i]);
		if (e)
			fatal("pthread_create: %s", strerror(e));
	}
	for (int i = 0; i < nr_workers; i++) {
		workers[i].idx = i;
		int e = pthread_create(&workers[i].thread, &attr, worker_main, &workers[i]);
		if (e)
			fatal("pthread_create: %s", strerror(e));
	}
	pthread_attr_destroy(&attr);

	/* Watch for progress while the threads run (main is not a UMCG task). */
	uint64_t last = progress(), last_change = umcg_now_ns();
	uint64_t all = (uint64_t)nr_workers * (uint64_t)(nr_ops + 1) + (uint64_t)nr_servers;
	while (last != all) {
		usleep(20000);
		uint64_t p = progress(), now = umcg_now_ns();
		if (p != last) {
			last = p;
			last_change = now;
		} else if (now - last_change > (uint64_t)watchdog_s * 1000000000ull) {
			dump_state();
			_exit(3);
		}
	}
	for (int i = 0; i < nr_workers; i++)
		pthread_join(workers[i].thread, NULL);
	for (int i = 0; i < nr_servers; i++)
		pthread_join(servers[i].thread, NULL);
	uint64_t t1 = umcg_now_ns();

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double elapsed = (double)(t1 - t0) / 1e9;
	double cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);

	/* ---- totals and exact checks ---- */
	long ops = 0, blocks = 0, runs = 0, taken = 0, sleeps = 0, timeouts = 0, kicks = 0;
	long shutdown_wakes = 0, finishes = 0, errors = 0, interrupted = 0;
	int finished = 0, detected = 0;
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];
		long o = atomic_load(&w->ops);
		if (o != nr_ops)
			fail("worker %d did %ld ops, not %ld", i, o, nr_ops);
		ops += o;
		detected += w->detected;
		interrupted += w->interrupted;
		errors += w->errors;
		finished += atomic_load(&w->finished);
	}
	for (int i = 0; i < nr_servers; i++) {
		struct server *s = &servers[i];
		runs += s->runs;
		blocks += s->blocks;
		taken += s->iwl_taken;
		sleeps += s->idle_sleeps;
		timeouts += s->idle_timeouts;
		kicks += s->kicks;
		shutdown_wakes += s->shutdown_wakes;
		finishes += s->finishes;
		errors += s->errors;
	}
	long M = nr_workers, K = nr_ops;
	if (ops != M * K)
		fail("total ops %ld, expected %ld", ops, M * K);
	if (finished != M || finishes != M)
		fail("finished workers %d (seen by servers %ld), expected %ld", finished, finishes,
		     M);
	/*
	 * Without detection every wrapper call is one block (T6) and one trip
	 * through the list (T7). With it, only calls that really slept are
	 * (usleep always does, the pipe calls rarely): at most 3 per operation.
	 */
	if (detected != 0 && detected != M)
		fail("%d of %ld workers detected: expected all or none", detected, M);
	if (!detected && blocks != 3 * M * K)
		fail("blocks %ld, expected %ld", blocks, 3 * M * K);
	if (detected && (blocks < 1 || blocks > 3 * M * K))
		fail("blocks %ld, expected 1..%ld", blocks, 3 * M * K);
	/* Each worker entered the list once at registration, then once per block. */
	if (taken != blocks + M)
		fail("workers taken from the idle list %ld, expected blocks + M = %ld", taken,
		     blocks + M);
	/* Each run ends with a block or with the worker's exit. */
	if (runs != blocks + M)
		fail("switches %ld, expected blocks + M = %ld", runs, blocks + M);
	/* Every idle server left server_idle(); a wake-up can only end a wait. */
	if (atomic_load(&nr_idle))
		fail("%d servers still counted idle at exit", atomic_load(&nr_idle));
	/*
	 * On the stack and the tid word, a successful wake_one() took one
	 * announced server, whose wait it ended. (An eventfd write is a count
	 * that any number of waits, or none yet, may consume.)
	 */
	if (idle_design != UMCG_IDLE_EVENTFD && kicks + shutdown_wakes > sleeps)
		fail("%ld servers woken by servers, but only %ld idle waits",
		     kicks + shutdown_wakes, sleeps);
	if (!idle_timeout_ms && timeouts)
		fail("%ld idle waits timed out without a timeout", timeouts);
	/*
	 * The group is quiescent: no worker queued, no server announced. (The
	 * fields are the library's; this is the demo checking the library.)
	 */
	if (!umcg_idle_workers_empty(&grp.idle_workers) ||
	    !umcg_idle_servers_empty(&grp.idle_servers) ||
	    __atomic_load_n(&grp.idle_servers, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&grp.idle_server_tid, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&grp.idle_fd.waiters, __ATOMIC_ACQUIRE))
		fail("idle group not quiescent at exit: idle_workers %#llx idle_servers %#llx "
		     "idle_server_tid %u idle_fd waiters %u",
		     (unsigned long long)grp.idle_workers, (unsigned long long)grp.idle_servers,
		     grp.idle_server_tid, grp.idle_fd.waiters);
	if (atomic_load(&rq_len) || rq_head)
		fail("run queue not empty at exit");
	if (errors)
		fail("%ld protocol errors (see above)", errors);

	printf("  elapsed             %.3f s\n", elapsed);
	printf("  operations          %ld (%ld workers x %ld), %d workers finished\n", ops, M, K,
	       finished);
	printf("  switches            %ld server -> worker runs\n", runs);
	printf("  blocks              %ld worker RUNNING -> BLOCKED (%s)\n", blocks,
	       detected ? "seen by libumcg: the worker slept"
			: "at a wrapper: no transparent detection");
	if (interrupted)
		printf("  interrupted sleeps  %ld (EINTR from a late detection signal, resumed)\n",
		       interrupted);
	printf("  wakes               %ld workers taken from the idle-workers list\n"
	       "                      (= blocks + %ld registrations)\n",
	       taken, M);
	printf("  server idle waits   %ld in the %s group, %ld timed out\n", sleeps,
	       umcg_idle_design_name(idle_design), timeouts);
	printf("  idle-server wakes   %ld by a server with more queued work, %ld at shutdown\n"
	       "                      (the others: libumcg, at a worker's wake point)\n",
	       kicks, shutdown_wakes);
	printf("  CPU utilisation     %.1f %% (user %.2f s + sys %.2f s over %.3f s x %d CPUs)\n",
	       100.0 * cpu / (elapsed * nr_cpus), tv_s(ru.ru_utime), tv_s(ru.ru_stime), elapsed,
	       nr_cpus);
	printf("  rate                %.0f switches/s, %.1f us per operation per CPU\n",
	       (double)runs / elapsed, elapsed * 1e6 * nr_cpus / (double)(M * K));
	for (int i = 0; i < nr_servers; i++) {
		struct server *s = &servers[i];
		char cpu_s[16] = "-";
		if (s->cpu >= 0)
			snprintf(cpu_s, sizeof cpu_s, "%d", s->cpu);
		printf("  server %-3d cpu %-3s runs %-8ld idle waits %-6ld kicks %-6ld "
		       "finishes %ld\n",
		       i, cpu_s, s->runs, s->idle_sleeps, s->kicks, s->finishes);
	}

	for (int i = 0; i < NR_PIPES; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	umcg_idle_group_destroy(&grp);
	free(workers);
	free(servers);
	if (atomic_load(&nr_failures)) {
		printf("fifo_demo: FAILED (%d failed checks)\n", atomic_load(&nr_failures));
		return 1;
	}
	printf("fifo_demo: OK, every worker completed all %ld operations\n", K);
	return 0;
}
