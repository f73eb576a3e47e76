/* SPDX-License-Identifier: MIT */
/*
 * umcg_rt.h - a small M:N runtime on top of the UMCG v0.3 ABI.
 *
 * A runtime (struct umcg_rt) owns N servers (one per CPU by default, each
 * pinned to its CPU before it registers) and runs workers on them. A
 * worker is a real kernel thread registered as a UMCG worker: TLS, system
 * calls, debuggers and profilers work as usual. Exited worker threads are
 * kept in a pool and reused by the next umcg_rt_spawn(), so spawning is a
 * queue operation, not a clone().
 *
 * The runtime uses only the public ABI (umcg.h, umcg_lists.h, umcg_idle.h,
 * umcg_wrap.h): umcg_ctl(), umcg_wait(), the idle-workers list and an
 * idle group. A worker that really sleeps in the kernel is reported
 * BLOCKED by the ABI (its server gets the CPU back) and comes back through
 * the idle-workers list; everything else (yield, park, hand-off, exit) is
 * the runtime's own protocol on the state words. See umcg_rt(3) and
 * docs/runtime.md.
 *
 * Which worker runs next is a policy's decision (struct umcg_rt_policy):
 * the runtime ships a global FIFO queue and per-server queues with work
 * stealing; users can write their own.
 *
 * Synchronisation objects (mutex, condition variable, semaphore, wait
 * group) park a waiting worker in the runtime: its server runs the next
 * worker at once. Uncontended operations make no system call. They also
 * work from threads that are not workers (those sleep on a futex).
 *
 * Errors: -1 with errno, documented per call in docs/man/umcg_rt*.3.
 */
#ifndef UMCG_RT_H
#define UMCG_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umcg_idle.h"

#ifdef __cplusplus
extern "C" {
#endif

struct umcg_rt;
struct umcg_rt_worker;
struct umcg_rt_policy;

/* ---- runtime ------------------------------------------------------------ */

/*
 * struct umcg_rt_attr - how to build a runtime; umcg_rt_attr_init() sets
 * the defaults.
 * @nr_servers:   servers; 0 = one per CPU in the process's affinity mask.
 * @pin_servers:  pin server i to the i-th allowed CPU (mod their number)
 *                before it registers (default true), so the ABI's
 *                WF_CURRENT_CPU placement hint applies.
 * @idle_design:  how idle servers wait (umcg_idle.h). With
 *                UMCG_IDLE_EVENTFD each server waits in its own epoll
 *                instance with EPOLLEXCLUSIVE: one append wakes one server.
 * @idle_timeout_ns: idle servers wake up after this long (0 = never).
 * @policy:       the scheduling policy (NULL = umcg_rt_policy_fifo).
 * @pool_max:     exited worker threads kept for reuse (default 256).
 * @stack_size:   stack of a worker thread (0 = 256 KiB).
 * @preempt_slice_ns: 0 = no preemption (default). Else a timer thread
 *                wakes 4 times per slice and asks the policy's tick() about each
 *                server's running worker; a worker to preempt gets
 *                @preempt_signal, whose handler sends it back to the policy
 *                (UMCG_RT_ENQ_PREEMPT) through the ABI's block and wake
 *                points. Needs a policy with tick (umcg_rt_policy_prio).
 * @preempt_signal: 0 = SIGURG. The handler is installed process-wide.
 * @trace_events: 0 = no tracing (default). Else each server keeps a ring
 *                of the last trace_events events (run, block, yield, park,
 *                switch, preempt, idle, wake, steal; ns timestamps);
 *                umcg_rt_trace_export() writes them as Chrome trace JSON.
 */
struct umcg_rt_attr {
	int nr_servers;
	bool pin_servers;
	enum umcg_idle_design idle_design;
	uint64_t idle_timeout_ns;
	const struct umcg_rt_policy *policy;
	int pool_max;
	size_t stack_size;
	uint64_t preempt_slice_ns;
	int preempt_signal;
	uint32_t trace_events;
};

void umcg_rt_attr_init(struct umcg_rt_attr *attr);

/*
 * Create a runtime and start its servers. attr NULL = defaults.
 * Returns the runtime, or NULL with errno: EINVAL (a bad attribute),
 * ENOMEM, EAGAIN (no thread could be created), or an error of the idle
 * group / epoll set-up.
 */
struct umcg_rt *umcg_rt_create(const struct umcg_rt_attr *attr);

/*
 * Graceful shutdown: refuse new spawns (ECANCELED), wait until every
 * worker spawned so far has returned (joined or detached), end the
 * pooled threads, stop and join the servers, join every worker thread.
 * Must not be called by a worker of rt. 0, or -1 with errno EINVAL (NULL)
 * / EDEADLK (called from one of rt's workers or servers) / EALREADY (a
 * second call).
 */
int umcg_rt_shutdown(struct umcg_rt *rt);

/*
 * 1 once umcg_rt_shutdown() (or umcg_rt_destroy()) has begun on rt, else 0
 * (also 0 for NULL). Workers that loop for ever (a CPU-bound batch job, a
 * server loop) poll it and return, so that the shutdown, which waits for
 * every worker, can finish. No system call; callable from any thread.
 */
int umcg_rt_stopping(const struct umcg_rt *rt);

/* umcg_rt_shutdown() if not done yet, then free rt. 0, or -1 as above. */
int umcg_rt_destroy(struct umcg_rt *rt);

/*
 * Counters of a runtime, summed over its servers (approximate while it
 * runs, exact after umcg_rt_shutdown()).
 */
struct umcg_rt_stats {
	uint64_t runs;		  /* server -> worker switches */
	uint64_t blocks;	  /* runs that ended because the worker blocked */
	uint64_t wakes;		  /* workers taken from the idle-workers list */
	uint64_t yields;	  /* umcg_rt_yield() */
	uint64_t parks;		  /* parks (sync objects, join, umcg_rt_park) */
	uint64_t switches;	  /* direct worker -> worker hand-offs */
	uint64_t steals;	  /* workers a policy's steal() returned */
	uint64_t idle_waits;	  /* idle waits of servers */
	uint64_t idle_timeouts;	  /* ... that ended by the idle timeout */
	uint64_t kicks;		  /* idle servers woken by the runtime */
	uint64_t preempt_signals; /* preemption signals sent */
	uint64_t preempts;	  /* workers queued back because they were preempted */
	uint64_t spawns;	  /* umcg_rt_spawn() */
	uint64_t pool_reuses;	  /* ... served by a pooled thread */
	uint64_t threads;	  /* worker threads created */
	uint64_t exits;		  /* workers that returned */
};
void umcg_rt_get_stats(struct umcg_rt *rt, struct umcg_rt_stats *out);
/*
 * The counters of server `server` only (the runtime-wide ones are 0:
 * spawns to exits, preempt_signals, and wakes/preempts that the
 * preemption timer took from the idle-workers list). 0, or -1/EINVAL (rt
 * NULL, server out of range).
 */
int umcg_rt_get_server_stats(struct umcg_rt *rt, int server, struct umcg_rt_stats *out);

int umcg_rt_nr_servers(const struct umcg_rt *rt);

/*
 * Write the servers' trace rings (attr.trace_events) to `path` as Chrome /
 * Perfetto trace JSON: one lane per server, a slice per run (named by the
 * worker's tid, with how it ended) and per idle wait, instants for wakes,
 * steals and direct switches. Call it after umcg_rt_shutdown() for a
 * consistent trace. 0, or -1 with errno EINVAL (rt NULL, tracing off) or
 * the error of fopen()/fclose().
 */
int umcg_rt_trace_export(struct umcg_rt *rt, const char *path);

/* ---- workers ---------------------------------------------------------- */

typedef void *(*umcg_rt_fn)(void *arg);

#define UMCG_RT_SPAWN_DETACHED 1u

/*
 * struct umcg_rt_spawn_attr - per-spawn options (NULL = defaults: 0).
 * @flags:    UMCG_RT_SPAWN_DETACHED.
 * @priority: for policies that use it (0 = default; larger = more urgent).
 */
struct umcg_rt_spawn_attr {
	unsigned flags;
	int priority;
};

/*
 * Start fn(arg) on a worker of rt (a pooled thread, or a new one).
 * Callable from any thread. Returns the handle to join or detach exactly
 * once, or NULL with errno: EINVAL (rt or fn NULL, a bad flag), ECANCELED
 * (rt is shutting down), ENOMEM, EAGAIN (no thread could be created).
 * With UMCG_RT_SPAWN_DETACHED the handle is non-NULL but must not be used
 * after the worker may have returned. See umcg_rt_spawn(3).
 */
struct umcg_rt_worker *umcg_rt_spawn(struct umcg_rt *rt, umcg_rt_fn fn, void *arg,
				     const struct umcg_rt_spawn_attr *sattr);

/*
 * Wait for w to return and free it; *ret (if not NULL) gets fn's result
 * or umcg_rt_exit()'s argument. A worker that joins parks (its server
 * runs others); another thread sleeps. 0, or -1 with errno EINVAL (NULL)
 * / EDEADLK (w is the caller). Joining a detached or joined handle is
 * undefined.
 */
int umcg_rt_join(struct umcg_rt_worker *w, void **ret);

/* Let w be freed when it returns. 0, or -1/EINVAL (NULL). */
int umcg_rt_detach(struct umcg_rt_worker *w);

/* The calling worker's handle, or NULL if the caller is not a worker. */
struct umcg_rt_worker *umcg_rt_self(void);
/* The runtime of the calling worker or server, or NULL. */
struct umcg_rt *umcg_rt_current(void);
/* Index of the server running the calling worker (or of the calling server); -1. */
int umcg_rt_server_index(void);

/*
 * Give the server to the next runnable worker; the caller is queued at
 * the policy's tail. 0, or -1/EPERM (the caller is not a worker).
 */
int umcg_rt_yield(void);

/*
 * Sleep ns nanoseconds (CLOCK_MONOTONIC; signals do not shorten it). A
 * worker blocks through the ABI's wrapper (its server runs others
 * meanwhile, and the worker comes back through the idle-workers list);
 * any other thread just sleeps. Returns 0.
 */
int umcg_rt_sleep_ns(uint64_t ns);

/*
 * End the calling worker with result ret (like returning it from fn; the
 * stack is unwound with longjmp: no cleanup handlers run). Called by a
 * thread that is not a worker, it aborts the process.
 */
__attribute__((noreturn)) void umcg_rt_exit(void *ret);

/*
 * Park/unpark, the primitive under the synchronisation objects.
 * umcg_rt_park(): the caller sleeps until umcg_rt_unpark() names it; an
 * unpark that came first (a "permit") makes the next park return at
 * once. Returns may be spurious: park in a loop that checks a condition.
 * The parked worker's server runs others meanwhile. umcg_rt_unpark(NULL)
 * does nothing. Callable from any thread; unparking a handle that was
 * joined (freed) is undefined.
 * umcg_rt_park: 0, or -1/EPERM (the caller is not a worker).
 * umcg_rt_unpark: 0, or -1/EINVAL (a handle that never had a thread).
 */
int umcg_rt_park(void);
int umcg_rt_unpark(struct umcg_rt_worker *w);

/*
 * Direct hand-off: run `to` (parked in umcg_rt_park(), and in the same
 * runtime) on the caller's server at once, without a trip through the
 * policy; the caller is queued (flags 0, like a yield) or parks
 * (UMCG_RT_SWITCH_PARK). If `to` is not parked, it is unparked instead
 * and the caller yields or parks. Returns 1 after a direct switch, 0
 * after the fallback, -1 with errno EPERM (caller not a worker), EINVAL
 * (to NULL, the caller itself, another runtime, or a bad flag).
 */
#define UMCG_RT_SWITCH_PARK 1u
int umcg_rt_switch_to(struct umcg_rt_worker *to, unsigned flags);

/* The priority a worker was spawned with. */
int umcg_rt_worker_priority(const struct umcg_rt_worker *w);

/* ---- policies ----------------------------------------------------------- */

/*
 * struct umcg_rt_link - the part of a worker a policy may use to queue it
 * (a policy owns it while the worker is queued with it).
 */
struct umcg_rt_link {
	struct umcg_rt_link *next, *prev;
	uint64_t key; /* free for the policy (e.g. a deadline, a priority) */
	int server;   /* free for the policy (e.g. the queue it is on) */
};
struct umcg_rt_link *umcg_rt_link_of(struct umcg_rt_worker *w);
struct umcg_rt_worker *umcg_rt_worker_of(struct umcg_rt_link *l);

/* Why a worker is enqueued (the flags argument of enqueue). */
#define UMCG_RT_ENQ_NEW	    1u	/* spawned */
#define UMCG_RT_ENQ_WAKE    2u	/* came back from a block (idle-workers list) */
#define UMCG_RT_ENQ_YIELD   4u	/* yielded */
#define UMCG_RT_ENQ_UNPARK  8u	/* unparked (sync object, join, umcg_rt_unpark) */
#define UMCG_RT_ENQ_PREEMPT 16u /* preempted (policies with time slices) */

/*
 * struct umcg_rt_policy - a scheduling policy. Every op is called
 * concurrently from any server (and enqueue from any thread that unparks
 * or spawns): the policy does its own locking, and must not sleep in the
 * kernel (use spin locks; hold them briefly). `server` is the index of
 * the calling server in [0, nr_servers), or -1 if the caller is not one
 * of rt's servers or workers.
 *
 * @name:      for messages.
 * @init:      make the policy's state for a runtime with nr_servers
 *             servers; NULL with errno on failure (umcg_rt_create fails).
 * @fini:      free it (the queues are empty by then).
 * @enqueue:   w (not queued, IDLE) becomes runnable; flags UMCG_RT_ENQ_*.
 * @pick_next: take the next worker for `server`, or NULL.
 * @steal:     `server` found nothing with pick_next: take a worker queued
 *             for another server, or NULL. May be NULL (no stealing).
 * @on_block:  w, run by `server`, blocked in the kernel (it comes back
 *             through enqueue with UMCG_RT_ENQ_WAKE). May be NULL.
 * @on_wake:   w came back from a block, before its enqueue. May be NULL.
 * @tick:      preemption (attr.preempt_slice_ns): called by the runtime's
 *             timer 4 times per slice for each server that runs a worker, with
 *             that worker's priority and how long it has run (ns);
 *             return 1 to preempt it. May be NULL (never preempt). Runs
 *             on the timer thread, concurrently with the other ops.
 * The runtime counts queued workers itself (enqueue +1, a worker returned
 * by pick_next/steal -1): a policy must return every enqueued worker
 * exactly once, and never one it was not given.
 */
struct umcg_rt_policy {
	const char *name;
	void *(*init)(int nr_servers);
	void (*fini)(void *pd);
	void (*enqueue)(void *pd, int server, struct umcg_rt_worker *w, unsigned flags);
	struct umcg_rt_worker *(*pick_next)(void *pd, int server);
	struct umcg_rt_worker *(*steal)(void *pd, int server);
	void (*on_block)(void *pd, int server, struct umcg_rt_worker *w);
	void (*on_wake)(void *pd, int server, struct umcg_rt_worker *w);
	int (*tick)(void *pd, int server, int running_prio, uint64_t ran_ns, uint64_t slice_ns);
};

/* One global first-in first-out queue. */
extern const struct umcg_rt_policy umcg_rt_policy_fifo;
/* A FIFO queue per server; an idle server steals the oldest from another. */
extern const struct umcg_rt_policy umcg_rt_policy_steal;

/*
 * Strict priorities (spawn attr priority, clamped to 0..7; 7 runs first),
 * FIFO within a level, one global queue. Its tick preempts a running
 * worker when a worker of a higher level is queued, or one of the same
 * level is and the running one has used its slice (round robin).
 */
extern const struct umcg_rt_policy umcg_rt_policy_prio;

/* "fifo", "steal", "prio" -> policy; NULL/EINVAL for another name. */
const struct umcg_rt_policy *umcg_rt_policy_by_name(const char *name);

/* ---- synchronisation objects ---------------------------------------------- */

/*
 * All are plain structs: initialise with the _init() call (or zero them:
 * the all-zero value is an unlocked mutex, an empty condition variable, a
 * semaphore with count 0, a wait group with count 0). They may be used
 * by workers of any runtime and by other threads at once. A waiter is
 * queued in FIFO order.
 */
struct umcg_rt_waitq {
	_Atomic uint32_t lock; /* spin lock of the queue */
	void *head, *tail;     /* struct umcg_rt__waiter, internal */
};

struct umcg_rt_mutex {
	_Atomic uint32_t state; /* 0 free, 1 locked, 2 locked with waiters */
	struct umcg_rt_waitq q;
};
void umcg_rt_mutex_init(struct umcg_rt_mutex *m);
int umcg_rt_mutex_lock(struct umcg_rt_mutex *m);
/* 0, or -1/EBUSY if it is locked. */
int umcg_rt_mutex_trylock(struct umcg_rt_mutex *m);
/* 0, or -1/EPERM if it was not locked. */
int umcg_rt_mutex_unlock(struct umcg_rt_mutex *m);

struct umcg_rt_cond {
	struct umcg_rt_waitq q;
};
void umcg_rt_cond_init(struct umcg_rt_cond *c);
/* Unlock m, wait for a signal, lock m again. 0. Spurious returns possible. */
int umcg_rt_cond_wait(struct umcg_rt_cond *c, struct umcg_rt_mutex *m);
int umcg_rt_cond_signal(struct umcg_rt_cond *c);
int umcg_rt_cond_broadcast(struct umcg_rt_cond *c);

struct umcg_rt_sem {
	_Atomic int64_t value; /* >= 0: tokens; < 0: -waiters */
	uint64_t handoffs;     /* posts owed to waiters not yet queued (under q.lock) */
	struct umcg_rt_waitq q;
};
/* 0, or -1/EINVAL if value is negative. */
int umcg_rt_sem_init(struct umcg_rt_sem *s, int64_t value);
int umcg_rt_sem_wait(struct umcg_rt_sem *s);
/* 0, or -1/EAGAIN if no token is available. */
int umcg_rt_sem_trywait(struct umcg_rt_sem *s);
int umcg_rt_sem_post(struct umcg_rt_sem *s);

struct umcg_rt_wg {
	_Atomic int64_t count;
	struct umcg_rt_waitq q;
};
void umcg_rt_wg_init(struct umcg_rt_wg *g);
/* Add n (may be negative); 0, or -1/EINVAL if the count would go below 0. */
int umcg_rt_wg_add(struct umcg_rt_wg *g, int64_t n);
/* umcg_rt_wg_add(g, -1). */
int umcg_rt_wg_done(struct umcg_rt_wg *g);
/* Wait until the count is 0. 0. */
int umcg_rt_wg_wait(struct umcg_rt_wg *g);

#ifdef __cplusplus
}
#endif

#endif /* UMCG_RT_H */
