/* SPDX-License-Identifier: MIT */
/*
 * sched_util.h - a small test-only scheduler toolkit for the v0.3 model.
 *
 * It is linked into every test binary and is meant to be the reference
 * usage of the protocol in docs and tests: each helper is one protocol
 * step, written out plainly.
 *
 *   struct su_group    one UMCG group: the idle-workers head, the
 *                      idle-servers head and a few counters.
 *   struct su_server   a server (the calling thread registers it).
 *   struct su_worker   a worker thread: registers in the group, runs a
 *                      payload, then finishes (wakes its server, unregisters).
 *
 * Server side:
 *   su_server_register()  register the calling thread as a server.
 *   su_run()              run one worker until the server is woken again;
 *                         returns the worker's state word at that moment.
 *   su_server_idle()      the idle protocol on the idle-servers stack
 *                         (push, fence, recheck, sleep, remove, gc).
 *   su_wake_only()        T9: wake an IDLE worker without running it.
 *   su_server_kick()      make another (idle) server RUNNING and wake it.
 * Worker side (called from a payload):
 *   su_yield()            park: self IDLE, server RUNNING, umcg_wait().
 *   su_switch_to()        worker-to-worker transfer (spec 5.3).
 *   su_check_running()    the invariant "a running worker is RUNNING and its
 *                         server is IDLE, waiting for exactly this worker".
 *
 * Structs holding a struct umcg_task must be 64-byte aligned: use static
 * storage or su_worker_alloc(). Every failed expectation ends the test with
 * th_fail() (harness.h); functions return only on the expected paths.
 */
#ifndef UMCG_TEST_SCHED_UTIL_H
#define UMCG_TEST_SCHED_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "umcg.h"

struct su_group {
	uint64_t iwl;	  /* idle-workers head */
	uint64_t isl;	  /* idle-servers head */
	bool no_isl;	  /* workers register with idle_servers_ptr = 0 */
	_Atomic int stop; /* servers leave su_server_idle() when set */
	/* counters, updated by the helpers */
	_Atomic long registered;   /* workers whose umcg_ctl(REGISTER) returned */
	_Atomic long finished;	   /* workers that woke their server in su_worker_finish() */
	_Atomic long bad_state;	   /* su_check_running() failures */
	_Atomic long runs;	   /* su_run() calls */
	_Atomic long idle_popped;  /* su_server_idle(): woken after a pop */
	_Atomic long idle_woken;   /* su_server_idle(): woken otherwise */
	_Atomic long idle_recheck; /* su_server_idle(): work found by the recheck */
	_Atomic long idle_timeout; /* su_server_idle(): timed out */
};

struct su_server {
	struct umcg_task task; /* first: 64-byte aligned */
	struct su_group *g;
	uint32_t tid;
	/* the worker this server is running (set by su_run while it waits) */
	_Atomic(struct su_worker *) current;
};

struct su_worker;
typedef void (*su_payload_fn)(struct su_worker *w);

struct su_worker {
	struct umcg_task task; /* first: 64-byte aligned */
	struct su_group *g;
	su_payload_fn fn;
	void *arg;  /* for the payload */
	long id;    /* for the payload */
	long count; /* for the payload (e.g. completed operations) */
	/* true: the thread returns after the payload without finishing (T11) */
	bool exit_running;
	_Atomic uint32_t tid;
	/* the server that runs (or last ran) this worker; set by su_run */
	_Atomic(struct su_server *) server;
	/* set by su_worker_finish: the server it finished under */
	_Atomic(struct su_server *) done;
	pthread_t thread;
};

/* Default stack of worker threads (many workers: keep it small). */
size_t su_stack_size(void);

/* A zeroed, 64-byte aligned worker; free with free(). */
struct su_worker *su_worker_alloc(void);

/*
 * Start a worker thread: it registers with g's heads (blocking in umcg_ctl
 * until a server runs it), checks it is RUNNING, runs fn(w), then
 * su_worker_finish(w) unless w->exit_running. w must be zeroed or
 * previously joined; fn, arg, id, exit_running may be set before.
 */
void su_worker_start(struct su_worker *w, struct su_group *g, su_payload_fn fn, void *arg);
void su_worker_join(struct su_worker *w);
/* Spin (yielding) until the worker thread published its tid. */
uint32_t su_worker_tid(struct su_worker *w);

/*
 * Finish (v0.3 T10): become RUNNING|LOCKED, record w->done, make the server
 * RUNNING and wake it, unregister. Called by su_worker_start's thread.
 */
void su_worker_finish(struct su_worker *w);

/* Register the calling thread as a server of g and set server_tid = own tid. */
void su_server_register(struct su_server *s, struct su_group *g);
void su_server_unregister(struct su_server *s);

/* Container of a task popped from the idle-workers list. */
static inline struct su_worker *su_worker_of(struct umcg_task *t)
{
	return (struct su_worker *)(void *)t;
}

/*
 * Pop all queued workers, re-point each (umcg_idle_workers_next) and store
 * them in out[] in FIFO order (oldest first). Returns the count; fails the
 * test if there are more than max.
 */
int su_pop_all_fifo(struct su_group *g, struct su_worker **out, int max);

/*
 * Wait up to timeout_ms for a worker on g's idle-workers list (polling);
 * returns it, already taken off (the list must then hold exactly one), or
 * NULL on timeout.
 */
struct su_worker *su_poll_one(struct su_group *g, int timeout_ms);

/*
 * Run w (state exactly IDLE, or IDLE|TIMEDOUT if popped after its deadline;
 * not queued) on server s (RUNNING) until s is woken again (w blocked,
 * yielded, finished, or anything else that makes s RUNNING). Returns w's state word when s got
 * back. abs_timeout as for umcg_wait; with a timeout, *err gets 0 or the errno of umcg_wait (err
 * may be NULL only without a timeout).
 */
uint32_t su_run_until(struct su_server *s, struct su_worker *w, uint64_t abs_timeout, int *err);
static inline uint32_t su_run(struct su_server *s, struct su_worker *w)
{
	return su_run_until(s, w, 0, NULL);
}

enum su_idle_result {
	SU_IDLE_RECHECK = 1, /* the recheck after the push saw work (or stop); removed self */
	SU_IDLE_POPPED,	     /* a wake point popped our node and woke us */
	SU_IDLE_WOKEN,	     /* woken by someone else (su_server_kick); removed self */
	SU_IDLE_TIMEOUT,     /* abs_timeout passed; removed self */
};

/*
 * The server idle protocol (no lost wake-up): state IDLE, push own node on
 * g->isl, full fence, recheck g->iwl and g->stop, sleep (abs_timeout, 0 =
 * none), remove own node if nobody popped it, gc. On return the server is
 * RUNNING and its node is unlinked (it may idle again).
 */
enum su_idle_result su_server_idle(struct su_server *s, uint64_t abs_timeout);

/* T9 from a server: set w (IDLE) RUNNING with server_tid 0 and WAKE_ONLY it. */
void su_wake_only(struct su_server *s, struct su_worker *w);

/*
 * Make the server target RUNNING (CAS from IDLE) and wake it from self
 * (any registered task, whose next_tid is used and reset). Returns false
 * if target was not IDLE (nothing done).
 */
bool su_server_kick(struct umcg_task *self, struct su_server *target);

/* Worker: park until run again. Returns umcg_wait's result (errno set). */
int su_yield(struct su_worker *w, uint64_t abs_timeout);

/* Worker w hands its server over to worker to (IDLE, not queued), spec 5.3. */
void su_switch_to(struct su_worker *w, struct su_worker *to);

/* Worker: true (and nothing counted) if the running invariant holds. */
/* su_check_running() without counting a failure in g->bad_state (for retries). */
bool su_running_ok(struct su_worker *w);
bool su_check_running(struct su_worker *w);

/*
 * Spin (yielding) until t's state word equals want; false after timeout_ms.
 * E.g. a worker that switched away is IDLE|LOCKED until its umcg_wait()
 * cleared LOCKED; a server must not run it before.
 */
bool su_wait_state(const struct umcg_task *t, uint32_t want, int timeout_ms);

/* Sleep for ms milliseconds (not a UMCG block: plain nanosleep). */
void su_msleep(int ms);

#endif
