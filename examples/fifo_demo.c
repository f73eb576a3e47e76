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
 *   3. An idle server pushes itself on the idle-servers stack, executes a
 *      full (seq_cst) fence, and only then re-checks for work. This pairs
 *      with libumcg's wake point, which queues the woken worker and then
 *      looks for an idle server with sequentially consistent operations (a
 *      store-load "Dekker" pattern): either the worker's pop finds the
 *      server, or the server's re-check finds the worker. Without this
 *      order a worker can sit on the list while every server sleeps.
 *      (libumcg's push and umcg_idle_workers_empty() are seq_cst already;
 *      the explicit fence also covers this scheduler's own run queue.)
 *   4. Whoever pops a server from the idle-servers stack owns its wake-up:
 *      it must CAS the server IDLE -> RUNNING and wake it. A server whose
 *      own umcg_idle_servers_remove() fails was popped, so it must wait
 *      (umcg_wait) for the popper's wake-up, even if it has found work.
 *   5. A server garbage-collects the stack (umcg_idle_servers_gc) after
 *      every idle period, before its node may be pushed again.
 *   6. The idle wait has no timeout. (A server that times out while a
 *      popper is between its pop and its IDLE -> RUNNING CAS could later
 *      receive that CAS while it is switched to a worker.)
 *   7. A finishing worker wakes its server itself (v0.3 does not), with
 *      itself LOCKED so nothing is detected in between, then unregisters.
 *
 * Everything the threads share is either an atomic, protected by the run
 * queue mutex, or handed over through a release/acquire pair on an ABI
 * state word (written before the state store, read after the state load):
 * the demo is clean under ThreadSanitizer (make VARIANT=tsan).
 *
 * Usage: fifo_demo [-s servers] [-w workers] [-n ops] [-c compute_us]
 *                  [-u sleep_us] [-p] [-H] [-t watchdog_s]
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
#include "umcg_lists.h"
#include "umcg_wrap.h"

/*
 * GCC warns about atomic_thread_fence() under -fsanitize=thread (-Wtsan:
 * ThreadSanitizer does not model fences). The seq_cst fences below are
 * part of the protocol (RULE 3) and order no data that TSan checks (the
 * data the threads hand over is all published with release/acquire), so
 * keep them and silence the warning in TSan builds only.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- configuration ------------------------------------------------------- */

static int nr_servers;		  /* -s */
static int nr_workers = 64;	  /* -w */
static long nr_ops = 200;	  /* -n */
static long compute_us = 50;	  /* -c */
static long sleep_us = 300;	  /* -u */
static bool pin_servers;	  /* -p */
static bool no_cpu_hint;	  /* -H */
static long watchdog_s = 20;	  /* -t */
static int nr_cpus;		  /* CPUs we may run on */
static int cpu_list[CPU_SETSIZE]; /* their ids */

enum { NR_PIPES = 8 };
static int pipes[NR_PIPES][2];

/* ---- the scheduler's data ------------------------------------------------ */

/*
 * The two list heads of this scheduling group. libumcg pushes workers that
 * woke up on iwl_head and pops idle servers from isl_head; the servers
 * pop workers from iwl_head and push themselves on isl_head.
 */
static uint64_t iwl_head;
static uint64_t isl_head;

/* Why a sleeping server was woken (set by the waker before its CAS). */
enum wake_reason { WAKE_BY_LIBUMCG = 0, WAKE_BY_KICK = 1, WAKE_AT_SHUTDOWN = 2 };

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
	_Atomic int wake_reason;		  /* enum wake_reason, see server_idle() */
	_Atomic(struct worker *) finished_worker; /* set by a worker that exits, RULE 7 */
	_Atomic int exited;			  /* for the watchdog */
	/* counters, written only by the server thread, read after join */
	long runs;	  /* switches to a worker */
	long iwl_taken;	  /* workers taken from the idle-workers list */
	long idle_sleeps; /* umcg_wait() calls while idle */
	long woken[3];	  /* by enum wake_reason */
	long kicks;	  /* idle servers this server woke */
	long finishes;	  /* workers that finished while run by this server */
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
	long blocks;	  /* wrapper calls = block-point transitions */
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
	struct umcg_task *t = umcg_idle_workers_pop_all(&iwl_head);
	if (!t)
		return;
	struct worker *first = NULL, *last = NULL;
	long n = 0;
	while (t) {
		struct umcg_task *next = umcg_idle_workers_next(t, &iwl_head);
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

/* ---- waking a server -------------------------------------------------------- */

/*
 * Wake @t, a server WE popped from the idle-servers stack (RULE 4): it is
 * IDLE (it set itself IDLE before pushing itself, and only the popper may
 * change that), so CAS it to RUNNING, then wake it through next_tid.
 * This is exactly what libumcg does for T8.
 */
static void wake_popped_server(struct server *self, struct umcg_task *t, enum wake_reason why)
{
	struct server *ts = container_of(t, struct server, task);
	atomic_store_explicit(&ts->wake_reason, why, memory_order_relaxed);
	uint32_t expected = UMCG_TASK_IDLE;
	/* release: wake_reason (and everything before) is visible to ts */
	if (!umcg_state_cas(t, &expected, UMCG_TASK_RUNNING))
		fatal("popped server %d is in state %#x, not IDLE", ts->idx, expected);
	__atomic_store_n(&self->task.next_tid, ts->tid, __ATOMIC_RELAXED);
	/*
	 * ESRCH is benign: the server saw RUNNING on its own (a spurious
	 * wake-up), noticed the shutdown and unregistered before our call.
	 */
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) && errno != ESRCH)
		fatal("umcg_wait(WAKE_ONLY) of server %d: %s", ts->idx, strerror(errno));
	__atomic_store_n(&self->task.next_tid, 0, __ATOMIC_RELAXED);
}

/*
 * More workers are queued than this server can run: wake one idle server
 * so they run in parallel. libumcg only wakes an idle server when it
 * queues a worker on the idle-workers list; workers moved to our own run
 * queue are our business. The fence pairs with the one in server_idle()
 * (the run queue length is the "work" the idle server re-checks).
 */
static void kick_idle_server(struct server *s)
{
	atomic_thread_fence(memory_order_seq_cst);
	struct umcg_task *t = umcg_idle_servers_pop(&isl_head);
	if (t) {
		s->kicks++;
		wake_popped_server(s, t, WAKE_BY_KICK);
	}
}

/*
 * Shutdown: every worker has finished; wake every server that sleeps on
 * the idle-servers stack. done was set (seq_cst) before this, and each
 * idle server re-checks done after pushing itself and fencing (RULE 3),
 * so a server we do not find here sees done by itself.
 *
 * A pop examines at most 2 * nr_cpu_ids nodes, and popped (marked) nodes
 * stay linked until a GC: so pop until there is nothing left, GC, and
 * repeat until a GC finds nothing to unlink (the stack then holds no
 * marked node, so an empty pop meant an empty stack).
 */
static void wake_all_idle_servers(struct server *s)
{
	atomic_thread_fence(memory_order_seq_cst);
	do {
		struct umcg_task *t;
		while ((t = umcg_idle_servers_pop(&isl_head)))
			wake_popped_server(s, t, WAKE_AT_SHUTDOWN);
	} while (umcg_idle_servers_gc(&isl_head, NULL, NULL));
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
 * Nothing to run: sleep on the idle-servers stack until libumcg (a worker
 * woke up), another server (kick) or the shutdown wakes us.
 */
static void server_idle(struct server *s)
{
	struct umcg_task *me = &s->task;

	umcg_state_store(me, UMCG_TASK_IDLE);
	umcg_idle_servers_push(&isl_head, me);
	/* RULE 3: push, full fence, then look for work. */
	atomic_thread_fence(memory_order_seq_cst);
	bool sleep = true;
	if (!umcg_idle_workers_empty(&iwl_head) || atomic_load(&rq_len) || atomic_load(&done)) {
		if (umcg_idle_servers_remove(me)) {
			/* Nobody popped us: nobody will wake us; undo IDLE ourselves. */
			uint32_t expected = UMCG_TASK_IDLE;
			if (!umcg_state_cas(me, &expected, UMCG_TASK_RUNNING))
				fatal("server %d: unpopped idle server in state %#x", s->idx,
				      expected);
			sleep = false;
		}
		/* else RULE 4: we were popped; the popper is about to wake us. */
	}
	if (sleep) {
		s->idle_sleeps++;
		/* RULE 6: no timeout. EINTR only if a signal handler ran. */
		while (umcg_wait(0, 0))
			if (errno != EINTR)
				fatal("server %d: idle umcg_wait: %s", s->idx, strerror(errno));
		/*
		 * Only a popper sets an idle server RUNNING, so our node must
		 * be marked now; if not, remove it and count an error.
		 */
		if (umcg_idle_servers_remove(me)) {
			fail("server %d woken without being popped", s->idx);
			s->errors++;
		} else {
			int why = atomic_exchange_explicit(&s->wake_reason, WAKE_BY_LIBUMCG,
							   memory_order_relaxed);
			s->woken[why]++;
		}
	}
	/* RULE 5: unlink marked nodes (ours included) before we push again. */
	umcg_idle_servers_gc(&isl_head, NULL, NULL);
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
	/* ... then names itself in server_tid, so that poppers can wake it. */
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

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct umcg_task *me = &w->task;
	int *p = pipes[w->idx % NR_PIPES];

	/* T2: a worker registers IDLE, with its idle-workers head ... */
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_IDLE;
	me->api_version = UMCG_API_VERSION;
	me->idle_workers_ptr = (uint64_t)(uintptr_t)&iwl_head;
	me->idle_servers_ptr = (uint64_t)(uintptr_t)&isl_head;
	w->tid = umcg_gettid(); /* published by libumcg's push (release) */
	/* ... and is queued as idle: the call returns once a server runs it. */
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, me))
		fatal("worker %d: umcg_ctl(REGISTER|WORKER): %s", w->idx, strerror(errno));
	check_running(w, "registration");

	for (long i = 0; i < nr_ops; i++) {
		compute((uint64_t)compute_us * 1000);

		/* Each wrapper: block point (T6), the call, wake point (T7). */
		if (umcg_usleep((useconds_t)sleep_us))
			fail("worker %d: usleep: %s", w->idx, strerror(errno));
		w->blocks++;
		check_running(w, "usleep");

		/*
		 * A byte through a pipe shared by a few workers: each worker
		 * writes before it reads, so a read never waits long.
		 */
		char c = (char)w->idx;
		if (umcg_write(p[1], &c, 1) != 1)
			fail("worker %d: write: %s", w->idx, strerror(errno));
		w->blocks++;
		check_running(w, "write");
		if (umcg_read(p[0], &c, 1) != 1)
			fail("worker %d: read: %s", w->idx, strerror(errno));
		w->blocks++;
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
		"usage: %s [-s servers] [-w workers] [-n ops] [-c compute_us] [-u sleep_us]\n"
		"          [-p] [-H] [-t watchdog_s]\n"
		"  -s N  servers (default: one per CPU we may run on)\n"
		"  -w M  workers (default 64)\n"
		"  -n K  operations per worker (default 200)\n"
		"  -c U  computation per operation, microseconds (default 50)\n"
		"  -u U  umcg_usleep() per operation, microseconds (default 300)\n"
		"  -p    pin server i to CPU i (mod the number of CPUs)\n"
		"  -H    no current-CPU placement hint (umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 0))\n"
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
	fprintf(stderr,
		"fifo_demo: no progress for %ld s: lost wake-up?\n"
		"  iwl_head %#llx isl_head %#llx rq_len %ld finished %d/%d done %d\n",
		watchdog_s, (unsigned long long)__atomic_load_n(&iwl_head, __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&isl_head, __ATOMIC_RELAXED),
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
	while ((opt = getopt(argc, argv, "s:w:n:c:u:pHt:h")) != -1) {
		switch (opt) {
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
		case 'p':
			pin_servers = true;
			break;
		case 'H':
			no_cpu_hint = true;
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
	if (no_cpu_hint && umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 0))
		fatal("umcg_tune: %s", strerror(errno));

	for (int i = 0; i < NR_PIPES; i++)
		if (pipe(pipes[i]))
			fatal("pipe: %s", strerror(errno));
	servers = aligned_alloc(64, sizeof *servers * (size_t)nr_servers);
	workers = aligned_alloc(64, sizeof *workers * (size_t)nr_workers);
	if (!servers || !workers)
		fatal("out of memory");
	memset(servers, 0, sizeof *servers * (size_t)nr_servers);
	memset(workers, 0, sizeof *workers * (size_t)nr_workers);

	printf("fifo_demo: %d servers, %d workers x %ld ops "
	       "(compute %ld us, umcg_usleep %ld us, pipe write+read)\n"
	       "           %d CPUs, servers %s, current-CPU hint %s\n",
	       nr_servers, nr_workers, nr_ops, compute_us, sleep_us, nr_cpus,
	       pin_servers ? "pinned one per CPU" : "not pinned", no_cpu_hint ? "off" : "on");
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
	long ops = 0, blocks = 0, runs = 0, taken = 0, sleeps = 0, kicks = 0, finishes = 0;
	long woken[3] = {0, 0, 0}, errors = 0;
	int finished = 0;
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];
		long o = atomic_load(&w->ops);
		if (o != nr_ops)
			fail("worker %d did %ld ops, not %ld", i, o, nr_ops);
		ops += o;
		blocks += w->blocks;
		errors += w->errors;
		finished += atomic_load(&w->finished);
	}
	for (int i = 0; i < nr_servers; i++) {
		struct server *s = &servers[i];
		runs += s->runs;
		taken += s->iwl_taken;
		sleeps += s->idle_sleeps;
		kicks += s->kicks;
		finishes += s->finishes;
		errors += s->errors;
		for (int j = 0; j < 3; j++)
			woken[j] += s->woken[j];
	}
	long M = nr_workers, K = nr_ops;
	if (ops != M * K)
		fail("total ops %ld, expected %ld", ops, M * K);
	if (finished != M || finishes != M)
		fail("finished workers %d (seen by servers %ld), expected %ld", finished, finishes,
		     M);
	/* Every wrapper call is one block (T6) and one trip through the list (T7). */
	if (blocks != 3 * M * K)
		fail("blocks %ld, expected %ld", blocks, 3 * M * K);
	/* Each worker entered the list once at registration, then once per block. */
	if (taken != blocks + M)
		fail("workers taken from the idle list %ld, expected blocks + M = %ld", taken,
		     blocks + M);
	/* Each run ends with a block or with the worker's exit. */
	if (runs != blocks + M)
		fail("switches %ld, expected blocks + M = %ld", runs, blocks + M);
	if (kicks != woken[WAKE_BY_KICK])
		fail("kicks %ld but %ld servers woken by a kick", kicks, woken[WAKE_BY_KICK]);
	if (atomic_load(&rq_len) || rq_head)
		fail("run queue not empty at exit");
	if (errors)
		fail("%ld protocol errors (see above)", errors);

	printf("  elapsed             %.3f s\n", elapsed);
	printf("  operations          %ld (%ld workers x %ld), %d workers finished\n", ops, M, K,
	       finished);
	printf("  switches            %ld server -> worker runs\n", runs);
	printf("  blocks              %ld worker RUNNING -> BLOCKED at a wrapper\n", blocks);
	printf("  wakes               %ld workers taken from the idle-workers list\n"
	       "                      (= blocks + %ld registrations)\n",
	       taken, M);
	printf("  idle-server wakes   %ld by libumcg (popped at a worker's wake point),\n"
	       "                      %ld by a server with more queued work, %ld at shutdown\n",
	       woken[WAKE_BY_LIBUMCG], woken[WAKE_BY_KICK], woken[WAKE_AT_SHUTDOWN]);
	printf("  server idle sleeps  %ld\n", sleeps);
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
		printf("  server %-3d cpu %-3s runs %-8ld idle sleeps %-6ld kicks %-6ld "
		       "finishes %ld\n",
		       i, cpu_s, s->runs, s->idle_sleeps, s->kicks, s->finishes);
	}

	for (int i = 0; i < NR_PIPES; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	free(workers);
	free(servers);
	if (atomic_load(&nr_failures)) {
		printf("fifo_demo: FAILED (%d failed checks)\n", atomic_load(&nr_failures));
		return 1;
	}
	printf("fifo_demo: OK, every worker completed all %ld operations\n", K);
	return 0;
}
