/* SPDX-License-Identifier: MIT */
/*
 * rt.h - internals of the runtime layer (include/umcg_rt.h).
 *
 * The runtime is a client of the public ABI only: it includes umcg.h,
 * umcg_lists.h, umcg_idle.h and umcg_wrap.h, never src/kern/.
 *
 * Objects:
 *   struct umcg_rt      the runtime: servers, the idle group, the policy,
 *                       the thread pool, counters for shutdown.
 *   struct rt_server    a server thread (its struct umcg_task first).
 *   struct rt_thread    a worker thread (its struct umcg_task first); it
 *                       runs one struct umcg_rt_worker after the other
 *                       (pool reuse) and lives until umcg_rt_shutdown().
 *   struct umcg_rt_worker  one spawn: fn, arg, result, join state.
 *
 * The protocol on the state words is in docs/runtime.md and next to the
 * code (server.c: run_thread; worker.c: handback, park, switch_to).
 */
#ifndef UMCG_RT_INTERNAL_H
#define UMCG_RT_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "umcg.h"
#include "umcg_idle.h"

#include "kern/kern.h" /* umcg__nopark_enter/leave (rt__spin_lock), umcg__block_point_unpaired (preempt.c) */
#include "umcg_lists.h"
#include "umcg_rt.h"

#ifdef UMCG_BUILD_SHARED
#define UMCG_RT_EXPORT __attribute__((visibility("default")))
#else
#define UMCG_RT_EXPORT
#endif

#define rt_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Why a server got its CPU back from the worker it ran (rt_server.why). */
enum rt_why {
	RT_WHY_NONE = 0, /* nothing written: the worker blocked (the ABI woke us) */
	RT_WHY_YIELD,	 /* requeue why_th */
	RT_WHY_PARK,	 /* why_th parked: whoever unparks it requeues it */
	RT_WHY_EXIT,	 /* why_th unregisters and ends */
};

/* rt_thread.pk: the park word (see worker.c, "park/unpark"). */
enum { RT_PK_NONE = 0, RT_PK_NOTIFIED = 1, RT_PK_PARKED = 2 };

struct umcg_rt_worker {
	struct umcg_rt_link link; /* the policy's */
	struct umcg_rt *rt;
	struct rt_thread *th;
	umcg_rt_fn fn; /* NULL: "end the thread" (shutdown of the pool) */
	void *arg;
	void *ret;
	int prio;
	_Atomic int refs;	/* the thread's + the handle's (unless detached) */
	struct umcg_rt_wg done; /* 1 until fn returned */
};

/* ---- tracing (trace.c) ---- */
enum rt_ev {
	RT_EV_RUN_BEGIN = 1, /* tid: the worker */
	RT_EV_RUN_END,	     /* arg: enum rt_end */
	RT_EV_IDLE_BEGIN,
	RT_EV_IDLE_END,
	RT_EV_WAKE,  /* arg: workers taken from the idle-workers list */
	RT_EV_STEAL, /* tid: the worker stolen */
};
enum rt_end { RT_END_BLOCK, RT_END_YIELD, RT_END_PARK, RT_END_EXIT, RT_END_PREEMPT, RT_END_SWITCH };

struct rt_event {
	uint64_t ts;
	uint32_t tid;
	uint16_t type, arg;
};

struct rt_trace {
	_Atomic uint64_t head;
	uint32_t size;
	struct rt_event ev[];
};

struct rt_server {
	struct umcg_task task; /* first: 64-byte aligned */
	struct umcg_rt *rt;
	int idx;
	int cpu; /* pinned to, or -1 */
	uint32_t tid;
	int epfd; /* eventfd design: own epoll instance (EPOLLEXCLUSIVE), else -1 */
	/* written by the worker that gives the server back, read by the server */
	_Atomic int why;
	_Atomic(struct rt_thread *) why_th;
	_Atomic(struct rt_thread *) cur; /* the thread it runs (switch_to updates it) */
	/* preemption: the current run, for the timer (relaxed; a stale read only
	 * makes a spurious or a missed signal) */
	_Atomic uint64_t run_start, run_seq;
	_Atomic int cur_prio;
	_Atomic uint64_t sig_seq; /* the run signalled last (CAS: timer, waking workers) */
	_Atomic uint64_t sig_ns;  /* when it was signalled (the timer's resend, preempt.c) */
	_Atomic int exited;
	struct rt_trace *trace; /* NULL: tracing off */
	/* counters: relaxed atomics, written by the server and its workers */
	_Atomic uint64_t runs, blocks, wakes, yields, parks, switches, steals, idle_waits,
	    idle_timeouts, kicks, preempts;
	pthread_t thread;
} __attribute__((aligned(64)));

struct rt_thread {
	struct umcg_task task; /* first: 64-byte aligned */
	struct umcg_rt *rt;
	uint32_t tid;
	bool fresh;			       /* not yet taken from the idle list once */
	_Atomic uint32_t pk;		       /* RT_PK_* */
	_Atomic(struct rt_server *) srv;       /* the server running it (set before RUNNING) */
	_Atomic(struct umcg_rt_worker *) cur;  /* the spawn it runs; &self_w while pooled */
	_Atomic(struct umcg_rt_worker *) next; /* handed over by spawn to a pooled thread */
	struct umcg_rt_worker self_w;	       /* placeholder (see thread_main) */
	struct rt_thread *pool_next;	       /* under rt->pool_lock */
	struct rt_thread *drain_next; /* drain_idle_workers (a pooled thread may block too) */
	struct rt_thread *all_next;   /* under rt->pool_lock */
	jmp_buf exit_jb;	      /* umcg_rt_exit() */
	/* preemption (the signal handler runs on this thread) */
	_Atomic int nopreempt;	     /* > 0: in the runtime's critical code */
	_Atomic int preempt_pending; /* a signal came while nopreempt > 0 */
	_Atomic int preempted;	     /* set by the handler before its block point */
	_Atomic uint32_t kpreempt;   /* kernel backend: the handler's futex (preempt.c) */
	_Atomic int quiet;	     /* in a quiet wake point, not yet drained (preempt.c) */
	pthread_t thread;
} __attribute__((aligned(64)));

struct umcg_rt {
	struct umcg_idle_group grp; /* the ABI words workers point to */
	struct umcg_rt_attr attr;
	const struct umcg_rt_policy *pol;
	void *pd;
	int nr_servers;
	struct rt_server *servers;
	/*
	 * nr_queued: workers handed to the policy and not yet taken out
	 * (incremented BEFORE enqueue, decremented after pick/steal), so it is
	 * never below the number queued. nr_idle: servers inside server_idle().
	 * Both seq_cst: the store-load pair of docs/runtime.md, "Idle servers".
	 */
	_Atomic long nr_queued;
	_Atomic int nr_idle;
	_Atomic int done; /* servers leave when set (after every thread ended) */
	_Atomic int stopping;
	_Atomic int shut; /* umcg_rt_shutdown() ran */
	/* futex words (counts) the shutdown waits on */
	_Atomic uint32_t nr_live;    /* spawned workers that have not returned */
	_Atomic uint32_t nr_threads; /* worker threads that have not ended */
	/* thread pool and the list of all threads, under pool_lock */
	_Atomic uint32_t pool_lock;
	bool pool_closed;
	int pool_len;
	struct rt_thread *pool, *all;
	_Atomic uint64_t spawns, pool_reuses, threads, exits, preempt_signals;
	_Atomic uint64_t wakes, preempts; /* drained by the timer */
	/* preemption timer (attr.preempt_slice_ns; preempt.c, "When the timer looks") */
	bool timer_on;
	_Atomic int timer_stop;
	pthread_t timer;
	struct umcg_idle_fd tfd; /* the timer's eventfd; the workers' idle_fd_ptr (stack, tid) */
	int tepfd;		/* the timer's epoll: tfd (+ the group's eventfd, eventfd design) */
	_Atomic uint64_t tgen;	/* pokes (seq_cst): work queued behind busy servers */
	_Atomic uint64_t tnext; /* the timer's next planned look (ns), UINT64_MAX: none */
	uint64_t *tseq;		/* the timer's own: each server's run_seq at its last look */
	_Atomic long tquiet;	/* quiet wakers not yet drained (seq_cst; preempt.c, rule 3) */
	_Atomic uint64_t tquiet_total; /* quiet wake points ever (relaxed; the linger) */
	uint64_t tq_seen, tq_linger;   /* the timer's own: tquiet_total seen, linger end */
	uint64_t tresend;	       /* a slice, at least 1 ms (set before the timer starts) */
};

/* ---- per-thread context ------------------------------------------------- */

extern __thread struct rt_thread *rt__self_thread; /* a worker thread of a runtime */
extern __thread struct rt_server *rt__self_server; /* a server thread */

/* ---- small helpers -------------------------------------------------------- */

/*
 * No preemption while a worker is inside the runtime's critical code
 * (spin locks, the policy, waking servers, the library's read sections):
 * a signal that comes meanwhile is remembered and acted on when the count
 * drops to 0 (preempt.c). Only the thread itself and its signal handler
 * touch these words.
 */
void rt__preempt_self(struct rt_thread *th);
/* The server saw th's preemption (its block): release th's handler (kernel backend). */
void rt__preempt_seen(struct rt_thread *th);

static inline void rt__nopreempt_inc(void)
{
	struct rt_thread *th = rt__self_thread;
	if (th)
		atomic_fetch_add(&th->nopreempt, 1);
}

static inline void rt__nopreempt_dec(void)
{
	struct rt_thread *th = rt__self_thread;
	if (th && atomic_fetch_sub(&th->nopreempt, 1) == 1 &&
	    atomic_exchange(&th->preempt_pending, 0))
		rt__preempt_self(th);
}

static inline void rt__relax(void)
{
	__builtin_ia32_pause();
}

/*
 * A test-and-test-and-set spin lock for short critical sections (queue
 * links). Holders never sleep in the kernel while holding it; waiters
 * spin, then sched_yield(). Acquire on lock, release on unlock: the
 * queue contents are handed from holder to holder.
 *
 * The section is also a libumcg no-park section (the one internal hook of
 * libumcg's core the runtime uses besides the preemption handler's block
 * point, kern/kern.h): a holder that sleeps
 * anyway (a page fault, a sanitizer's internal lock) or gets a late
 * detection signal must not be parked with the lock held - its waiters
 * spin on their servers, and the parked holder, queued, would never get
 * one (seen: tsan test_rt_sync sem_producer_consumer hung, two consumers
 * spinning on the semaphore's lock on both servers). The park is deferred
 * to the unlock; on the kernel backend the holder is LOCKED meanwhile.
 */
static inline void rt__spin_lock(_Atomic uint32_t *l)
{
	unsigned n = 0;
	umcg__nopark_enter();
	rt__nopreempt_inc();
	for (;;) {
		if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			if (++n < 64)
				rt__relax();
			else
				sched_yield();
		}
	}
}

static inline void rt__spin_unlock(_Atomic uint32_t *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
	rt__nopreempt_dec();
	umcg__nopark_leave();
}

static inline void rt__count(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

__attribute__((noreturn, format(printf, 1, 2))) void rt__fatal(const char *fmt, ...);

/* Index of the calling server (or of the server running the caller) in rt, or -1. */
int rt__server_hint(struct umcg_rt *rt);

/*
 * Hand w (IDLE or IDLE|LOCKED, not queued) to the policy and wake an idle
 * server if one is idle (server.c).
 */
void rt__make_runnable(struct umcg_rt *rt, struct umcg_rt_worker *w, unsigned flags);

/*
 * Wake an idle server while some are idle and work is queued (server.c);
 * if none was woken and work stays queued, poke the preemption timer.
 * rt__kick_idle: only the first part; 1 if a server was woken.
 */
void rt__kick(struct umcg_rt *rt, struct rt_server *by);
int rt__kick_idle(struct umcg_rt *rt, struct rt_server *by);

/* Take the idle-workers list into the policy (server.c); s NULL: not a server. */
void rt__drain_idle_workers(struct umcg_rt *rt, struct rt_server *s);

/* Start server threads; stop them (server.c). */
int rt__servers_start(struct umcg_rt *rt);
void rt__servers_stop(struct umcg_rt *rt);

/* Worker threads (worker.c). */
int rt__thread_start(struct umcg_rt *rt, struct umcg_rt_worker *w);
void rt__unpark_thread(struct rt_thread *th);
void rt__park_thread(struct rt_thread *th);

/* Preemption timer and signal handler (preempt.c). */
int rt__preempt_start(struct umcg_rt *rt);
void rt__preempt_stop(struct umcg_rt *rt);
/* Record the start of a run of th on s (for the timer). */
void rt__run_started(struct rt_server *s, struct rt_thread *th);
int rt__wake_preempt(struct rt_thread *self);
/* A wake point that does not wake the timer (preempt.c): begin, wake point, end. */
uint64_t rt__quiet_begin(struct rt_thread *th);
void rt__quiet_end(struct rt_thread *th, uint64_t saved);
/* Work was queued behind busy servers: make the timer look (preempt.c). */
void rt__timer_poke(struct umcg_rt *rt);
/* Point a new worker's idle_fd_ptr at the timer's eventfd (preempt.c). */
void rt__preempt_worker_init(struct umcg_rt *rt, struct umcg_task *t);

/* Tracing (trace.c): rt__trace only when s->trace is not NULL. */
int rt__trace_init(struct umcg_rt *rt);
void rt__trace_free(struct umcg_rt *rt);
void rt__trace(struct rt_server *s, enum rt_ev type, uint32_t tid, uint32_t arg);
#define RT_TRACE(s, type, tid, arg)                                                                \
	do {                                                                                       \
		if ((s)->trace)                                                                    \
			rt__trace((s), (type), (tid), (arg));                                      \
	} while (0)

/* Futex helpers on a count (runtime.c). */
void rt__futex_wait(_Atomic uint32_t *word, uint32_t val, int ms);
void rt__futex_wake_all(_Atomic uint32_t *word);

#endif
