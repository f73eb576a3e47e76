/* SPDX-License-Identifier: MIT */
/*
 * worker.c - worker threads: spawn (with a pool of exited threads), the
 * hand-back of a server (yield, park, exit), park/unpark, direct
 * worker-to-worker switch, join, detach, sleep.
 *
 * Hand-back. A running worker gives its server back by making itself
 * IDLE|LOCKED, writing the reason into s->why/why_th, making s RUNNING
 * (CAS IDLE -> RUNNING, release: publishes the reason) and calling
 * umcg_wait(0, 0) with next_tid 0, which wakes its server_tid (s), clears
 * LOCKED and sleeps until a server makes the worker RUNNING again. LOCKED
 * keeps block detection away while the worker finishes the hand-back, and
 * tells servers "not yet": run_thread() (server.c) waits for exactly IDLE.
 *
 * Park/unpark (th->pk, one word per thread):
 *   NONE -> NOTIFIED     unpark of a running thread (a permit)
 *   NOTIFIED -> NONE     park consumes the permit and returns
 *   NONE -> PARKED       park: the thread goes IDLE|LOCKED first, then CASes
 *   PARKED -> NONE       unpark (or switch_to) claims the parked thread and
 *                        becomes responsible for running it
 * Every transition is a CAS (acq_rel) on pk, so exactly one unparker claims
 * a parked thread, and a permit is never lost: the park's CAS NONE->PARKED
 * fails if an unpark made it NOTIFIED first. What the unparker wrote before
 * the unpark is visible to the parked thread once it runs: unpark's CAS
 * (release) -> the policy's lock -> the server's CAS of the state
 * (release) -> the thread's acquire load of RUNNING in umcg_wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt/rt.h"
#include "umcg_wrap.h"

__thread struct rt_thread *rt__self_thread;
__thread struct rt_server *rt__self_server;

static void wait_running(struct rt_thread *th)
{
	/* EINTR: a signal handler ran, we are still IDLE: wait again */
	while (umcg_wait(0, 0))
		if (errno != EINTR)
			rt__fatal("worker tid %u: umcg_wait: %s", th->tid, strerror(errno));
}

/*
 * Our own state RUNNING -> `to` (a LOCKED state), before we hand our server
 * anything. A CAS, not a store: with transparent block detection a take-over
 * whose switch-in signal came late (docs/detection.md, "The window") may
 * have made us BLOCKED and woken our server already. Then the wake point
 * parks us first (T7: queued, run again by a server, possibly another one),
 * and we retry from RUNNING. Read th->srv only after this.
 */
static void self_lock(struct rt_thread *th, uint32_t to)
{
	for (;;) {
		uint32_t exp = UMCG_TASK_RUNNING;
		if (umcg_state_cas(&th->task, &exp, to))
			return;
		if ((exp & UMCG_TF_STATE_MASK) != UMCG_TASK_BLOCKED)
			rt__fatal("worker tid %u in state %#x, not RUNNING", th->tid, exp);
		umcg_wake_point();
	}
}

/* Give the server back (th is IDLE|LOCKED already); returns when run again. */
static void handback(struct rt_thread *th, int why)
{
	struct rt_server *s = atomic_load_explicit(&th->srv, memory_order_relaxed);
	atomic_store_explicit(&s->why_th, th, memory_order_relaxed);
	atomic_store_explicit(&s->why, why, memory_order_relaxed);
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&s->task, &exp, UMCG_TASK_RUNNING))
		rt__fatal("worker tid %u: server %d in state %#x, not IDLE", th->tid, s->idx, exp);
	__atomic_store_n(&th->task.next_tid, 0, __ATOMIC_RELAXED);
	wait_running(th);
}

void rt__park_thread(struct rt_thread *th)
{
	uint32_t v = RT_PK_NOTIFIED;
	if (atomic_compare_exchange_strong(&th->pk, &v, RT_PK_NONE))
		return; /* a permit */
	self_lock(th, UMCG_TASK_IDLE | UMCG_TF_LOCKED);
	v = RT_PK_NONE;
	if (!atomic_compare_exchange_strong(&th->pk, &v, RT_PK_PARKED)) {
		/* an unpark came in between: take the permit, keep running */
		atomic_store(&th->pk, RT_PK_NONE);
		umcg_state_store(&th->task, UMCG_TASK_RUNNING);
		return;
	}
	struct rt_server *s = atomic_load_explicit(&th->srv, memory_order_relaxed);
	rt__count(&s->parks);
	handback(th, RT_WHY_PARK);
}

void rt__unpark_thread(struct rt_thread *th)
{
	/*
	 * Always an RMW, even NOTIFIED -> NOTIFIED: a park that consumes the
	 * permit must read OUR write (and so see what we stored before, e.g.
	 * a pooled thread's `next`). Skipping the write when the permit is
	 * already set would let the thread consume an older permit, miss our
	 * store and park for good.
	 */
	uint32_t v = atomic_load(&th->pk);
	for (;;) {
		uint32_t to = v == RT_PK_PARKED ? RT_PK_NONE : RT_PK_NOTIFIED;
		if (atomic_compare_exchange_weak(&th->pk, &v, to))
			break;
	}
	if (v == RT_PK_PARKED) /* claimed: we make it runnable */
		rt__make_runnable(th->rt, atomic_load_explicit(&th->cur, memory_order_relaxed),
				  UMCG_RT_ENQ_UNPARK);
}

UMCG_RT_EXPORT int umcg_rt_park(void)
{
	struct rt_thread *th = rt__self_thread;
	if (!th) {
		errno = EPERM;
		return -1;
	}
	rt__park_thread(th);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_unpark(struct umcg_rt_worker *w)
{
	if (!w)
		return 0;
	if (!w->th) {
		errno = EINVAL;
		return -1;
	}
	rt__unpark_thread(w->th);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_yield(void)
{
	struct rt_thread *th = rt__self_thread;
	if (!th) {
		errno = EPERM;
		return -1;
	}
	self_lock(th, UMCG_TASK_IDLE | UMCG_TF_LOCKED);
	struct rt_server *s = atomic_load_explicit(&th->srv, memory_order_relaxed);
	rt__count(&s->yields);
	handback(th, RT_WHY_YIELD);
	return 0;
}

/*
 * Direct switch. Claiming `to` (PARKED -> NONE) makes us responsible for
 * running it; instead of queueing it, we run it on our own server: the
 * server stays IDLE in its umcg_wait (next_tid: us), `to` takes over our
 * server_tid, and the ABI's switch (umcg_wait with next_tid = to) wakes it
 * on our CPU. The same order as run_thread(): to exactly IDLE first, then
 * srv/server_tid, then to RUNNING (release). We are IDLE|LOCKED before we
 * become visible (queued, or PARKED), so nobody runs us before our
 * umcg_wait() has read next_tid and cleared LOCKED.
 */
UMCG_RT_EXPORT int umcg_rt_switch_to(struct umcg_rt_worker *to, unsigned flags)
{
	struct rt_thread *th = rt__self_thread;
	if (!th) {
		errno = EPERM;
		return -1;
	}
	if (!to || (flags & ~UMCG_RT_SWITCH_PARK) || to->rt != th->rt || !to->th || to->th == th) {
		errno = EINVAL;
		return -1;
	}
	struct rt_thread *tt = to->th;
	bool park = flags & UMCG_RT_SWITCH_PARK;
	uint32_t v = RT_PK_PARKED;
	rt__nopreempt_inc(); /* not between the claim of `to` and our LOCKED state */
	if (!atomic_compare_exchange_strong(&tt->pk, &v, RT_PK_NONE)) {
		rt__nopreempt_dec();
		rt__unpark_thread(tt);
		if (park)
			rt__park_thread(th);
		else
			umcg_rt_yield();
		return 0;
	}
	struct umcg_rt *rt = th->rt;
	self_lock(th, UMCG_TASK_IDLE | UMCG_TF_LOCKED);
	struct rt_server *s = atomic_load_explicit(&th->srv, memory_order_relaxed);
	rt__nopreempt_dec(); /* LOCKED: block points ignore us from here on */
	bool requeue = !park;
	if (park) {
		v = RT_PK_NOTIFIED;
		if (atomic_compare_exchange_strong(&th->pk, &v, RT_PK_NONE))
			requeue = true; /* a permit: we are runnable, not parked */
		else {
			v = RT_PK_NONE;
			if (!atomic_compare_exchange_strong(&th->pk, &v, RT_PK_PARKED)) {
				atomic_store(&th->pk, RT_PK_NONE);
				requeue = true;
			}
		}
	}
	rt__count(&s->switches);
	if (requeue) {
		rt__nopreempt_inc();
		atomic_fetch_add(&rt->nr_queued, 1);
		rt->pol->enqueue(rt->pd, s->idx,
				 atomic_load_explicit(&th->cur, memory_order_relaxed),
				 UMCG_RT_ENQ_YIELD);
		rt__kick(rt, s);
		rt__nopreempt_dec();
	}
	unsigned n = 0;
	while (umcg_state_load(&tt->task) != UMCG_TASK_IDLE)
		if (++n < 128)
			rt__relax();
		else
			sched_yield();
	atomic_store_explicit(&tt->srv, s, memory_order_relaxed);
	atomic_store_explicit(&s->cur, tt, memory_order_relaxed);
	__atomic_store_n(&tt->task.server_tid, s->tid, __ATOMIC_RELAXED);
	if (rt->timer_on)
		rt__run_started(s, tt);
	if (s->trace) { /* we run on s while it sleeps: its ring is ours to write */
		rt__trace(s, RT_EV_RUN_END, 0, RT_END_SWITCH);
		rt__trace(s, RT_EV_RUN_BEGIN, tt->tid, 0);
	}
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&tt->task, &exp, UMCG_TASK_RUNNING))
		rt__fatal("switch: target tid %u in state %#x, not IDLE", tt->tid, exp);
	__atomic_store_n(&th->task.next_tid, tt->tid, __ATOMIC_RELAXED);
	wait_running(th);
	__atomic_store_n(&th->task.next_tid, 0, __ATOMIC_RELAXED);
	return 1;
}

UMCG_RT_EXPORT int umcg_rt_sleep_ns(uint64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t end = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec = (time_t)(end / 1000000000ull);
	ts.tv_nsec = (long)(end % 1000000000ull);
	struct rt_thread *th = rt__self_thread;
	if (th && th->rt->timer_on) {
		/*
		 * Preemption on: block eagerly (as the wrappers do without
		 * detection), so that we run our own code between the end of
		 * the sleep and the wake point that queues us: a worker of
		 * higher priority than a running one preempts it at once
		 * (preempt.c, rt__wake_preempt) instead of at the timer's
		 * next tick.
		 */
		umcg_block_point();
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		if (rt__wake_preempt(th) && umcg_backend() != UMCG_BACKEND_KERNEL) {
			/* the victim's server finds us: no look by the timer now */
			uint64_t fdp = rt__quiet_begin(th);
			umcg_wake_point();
			rt__quiet_end(th, fdp);
		} else {
			umcg_wake_point();
		}
		return 0;
	}
	/* a worker: the wrapper's block and wake points free the server meanwhile */
	while (umcg_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return 0;
}

UMCG_RT_EXPORT struct umcg_rt_worker *umcg_rt_self(void)
{
	struct rt_thread *th = rt__self_thread;
	return th ? atomic_load_explicit(&th->cur, memory_order_relaxed) : NULL;
}

UMCG_RT_EXPORT struct umcg_rt *umcg_rt_current(void)
{
	if (rt__self_thread)
		return rt__self_thread->rt;
	return rt__self_server ? rt__self_server->rt : NULL;
}

UMCG_RT_EXPORT int umcg_rt_server_index(void)
{
	struct umcg_rt *rt = umcg_rt_current();
	return rt ? rt__server_hint(rt) : -1;
}

UMCG_RT_EXPORT __attribute__((noreturn)) void umcg_rt_exit(void *ret)
{
	struct rt_thread *th = rt__self_thread;
	if (!th)
		rt__fatal("umcg_rt_exit() called by a thread that is not a worker");
	atomic_load_explicit(&th->cur, memory_order_relaxed)->ret = ret;
	longjmp(th->exit_jb, 1);
}

UMCG_RT_EXPORT int umcg_rt_worker_priority(const struct umcg_rt_worker *w)
{
	return w ? w->prio : 0;
}

UMCG_RT_EXPORT struct umcg_rt_link *umcg_rt_link_of(struct umcg_rt_worker *w)
{
	return &w->link;
}

UMCG_RT_EXPORT struct umcg_rt_worker *umcg_rt_worker_of(struct umcg_rt_link *l)
{
	return rt_container_of(l, struct umcg_rt_worker, link);
}

/* ---- spawn, join, detach ---------------------------------------------------- */

static void worker_unref(struct umcg_rt_worker *w)
{
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
		free(w);
}

/* The pooled thread th: put it back, or false (pool full or closed: end it). */
static bool pool_put(struct umcg_rt *rt, struct rt_thread *th)
{
	bool ok = false;
	rt__spin_lock(&rt->pool_lock);
	if (!rt->pool_closed && rt->pool_len < rt->attr.pool_max) {
		th->pool_next = rt->pool;
		rt->pool = th;
		rt->pool_len++;
		ok = true;
	}
	rt__spin_unlock(&rt->pool_lock);
	return ok;
}

static struct rt_thread *pool_get(struct umcg_rt *rt)
{
	rt__spin_lock(&rt->pool_lock);
	struct rt_thread *th = rt->pool;
	if (th) {
		rt->pool = th->pool_next;
		th->pool_next = NULL;
		rt->pool_len--;
	}
	rt__spin_unlock(&rt->pool_lock);
	return th;
}

/* T10 for a thread that ends: LOCKED, tell the server, wake it, unregister. */
static void thread_finish(struct rt_thread *th)
{
	self_lock(th, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	struct rt_server *s = atomic_load_explicit(&th->srv, memory_order_relaxed);
	atomic_store_explicit(&s->why_th, th, memory_order_relaxed);
	atomic_store_explicit(&s->why, RT_WHY_EXIT, memory_order_relaxed);
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&s->task, &exp, UMCG_TASK_RUNNING))
		rt__fatal("worker tid %u ending: server %d in state %#x", th->tid, s->idx, exp);
	__atomic_store_n(&th->task.next_tid, s->tid, __ATOMIC_RELAXED);
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) && errno != ESRCH)
		rt__fatal("worker tid %u: wake server: %s", th->tid, strerror(errno));
	__atomic_store_n(&th->task.next_tid, 0, __ATOMIC_RELAXED);
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		rt__fatal("worker tid %u: umcg_ctl(UNREGISTER): %s", th->tid, strerror(errno));
}

static void *thread_main(void *arg)
{
	struct rt_thread *th = arg;
	struct umcg_rt *rt = th->rt;
	struct umcg_task *me = &th->task;

	rt__self_thread = th;
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_IDLE;
	me->api_version = UMCG_API_VERSION;
	umcg_idle_group_worker_init(&rt->grp, me);
	rt__preempt_worker_init(rt, me);
	th->tid = umcg_gettid();
	th->fresh = true; /* published by the ABI's push (release) */
	/* queued as idle; returns once a server runs us */
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, me))
		rt__fatal("worker: umcg_ctl(REGISTER|WORKER): %s", strerror(errno));

	for (;;) {
		struct umcg_rt_worker *w = atomic_load_explicit(&th->cur, memory_order_acquire);
		if (!w->fn) { /* shutdown of the pool */
			atomic_store_explicit(&th->cur, &th->self_w, memory_order_relaxed);
			free(w);
			break;
		}
		if (!setjmp(th->exit_jb))
			w->ret = w->fn(w->arg);
		w = atomic_load_explicit(&th->cur, memory_order_relaxed); /* after longjmp */
		atomic_fetch_add_explicit(&rt->exits, 1, memory_order_relaxed);
		/*
		 * From here on a late unpark of the old handle (a sync object's
		 * waker that granted before we saw it) must find a valid worker
		 * to queue: our placeholder, which runs us and we park again.
		 */
		atomic_store_explicit(&th->cur, &th->self_w, memory_order_relaxed);
		/*
		 * Pooled before the joiners run, so that a join followed by a
		 * spawn reuses this thread (a spawn that takes us now leaves a
		 * permit and the loop below finds `next` set).
		 */
		bool pooled = pool_put(rt, th);
		umcg_rt_wg_done(&w->done); /* joiners run (release: ret) */
		worker_unref(w);
		/* after pool_put: the shutdown closes the pool only when nr_live is 0 */
		if (atomic_fetch_sub(&rt->nr_live, 1) == 1)
			rt__futex_wake_all(&rt->nr_live);
		if (!pooled)
			break;
		/* wait for umcg_rt_spawn() (or the shutdown) to hand us a worker */
		while (!(w = atomic_load_explicit(&th->next, memory_order_acquire)))
			rt__park_thread(th);
		atomic_store_explicit(&th->next, NULL, memory_order_relaxed);
		atomic_store_explicit(&th->cur, w, memory_order_relaxed);
	}
	thread_finish(th);
	rt__self_thread = NULL;
	if (atomic_fetch_sub(&rt->nr_threads, 1) == 1)
		rt__futex_wake_all(&rt->nr_threads);
	return NULL;
}

/* A new worker thread for w (nr_threads counted by the caller). */
int rt__thread_start(struct umcg_rt *rt, struct umcg_rt_worker *w)
{
	struct rt_thread *th = aligned_alloc(64, sizeof *th);
	if (!th)
		return ENOMEM;
	memset(th, 0, sizeof *th);
	th->rt = rt;
	th->self_w.rt = rt;
	th->self_w.th = th;
	atomic_store_explicit(&th->cur, w, memory_order_relaxed);
	w->th = th;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, rt->attr.stack_size);
	int e = pthread_create(&th->thread, &a, thread_main, th);
	pthread_attr_destroy(&a);
	if (e) {
		free(th);
		w->th = NULL;
		return e;
	}
	rt__spin_lock(&rt->pool_lock);
	th->all_next = rt->all;
	rt->all = th;
	rt__spin_unlock(&rt->pool_lock);
	atomic_fetch_add_explicit(&rt->threads, 1, memory_order_relaxed);
	return 0;
}

UMCG_RT_EXPORT struct umcg_rt_worker *umcg_rt_spawn(struct umcg_rt *rt, umcg_rt_fn fn, void *arg,
						    const struct umcg_rt_spawn_attr *sattr)
{
	if (!rt || !fn || (sattr && (sattr->flags & ~UMCG_RT_SPAWN_DETACHED))) {
		errno = EINVAL;
		return NULL;
	}
	/*
	 * nr_live up, then look at stopping (both seq_cst); the shutdown sets
	 * stopping, then waits for nr_live 0: either it waits for us, or we
	 * see stopping.
	 */
	rt__nopreempt_inc(); /* malloc and pthread_create hold libc locks */
	atomic_fetch_add(&rt->nr_live, 1);
	if (atomic_load(&rt->stopping)) {
		errno = ECANCELED;
		goto undo;
	}
	struct umcg_rt_worker *w = calloc(1, sizeof *w);
	if (!w) {
		errno = ENOMEM;
		goto undo;
	}
	w->rt = rt;
	w->fn = fn;
	w->arg = arg;
	w->prio = sattr ? sattr->priority : 0;
	bool detached = sattr && (sattr->flags & UMCG_RT_SPAWN_DETACHED);
	atomic_init(&w->refs, detached ? 1 : 2);
	umcg_rt_wg_init(&w->done);
	umcg_rt_wg_add(&w->done, 1);
	atomic_fetch_add_explicit(&rt->spawns, 1, memory_order_relaxed);

	struct rt_thread *th = pool_get(rt);
	if (th) {
		atomic_fetch_add_explicit(&rt->pool_reuses, 1, memory_order_relaxed);
		w->th = th;
		atomic_store_explicit(&th->next, w, memory_order_release);
		rt__unpark_thread(th);
		rt__nopreempt_dec();
		return w;
	}
	atomic_fetch_add(&rt->nr_threads, 1);
	int e = rt__thread_start(rt, w);
	if (e) {
		if (atomic_fetch_sub(&rt->nr_threads, 1) == 1)
			rt__futex_wake_all(&rt->nr_threads);
		free(w);
		errno = e == ENOMEM ? ENOMEM : EAGAIN;
		goto undo;
	}
	rt__nopreempt_dec();
	return w;
undo:
	if (atomic_fetch_sub(&rt->nr_live, 1) == 1)
		rt__futex_wake_all(&rt->nr_live);
	int err = errno;
	rt__nopreempt_dec();
	errno = err;
	return NULL;
}

UMCG_RT_EXPORT int umcg_rt_join(struct umcg_rt_worker *w, void **ret)
{
	if (!w) {
		errno = EINVAL;
		return -1;
	}
	if (w == umcg_rt_self()) {
		errno = EDEADLK;
		return -1;
	}
	umcg_rt_wg_wait(&w->done); /* acquire: w->ret */
	if (ret)
		*ret = w->ret;
	worker_unref(w);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_detach(struct umcg_rt_worker *w)
{
	if (!w) {
		errno = EINVAL;
		return -1;
	}
	worker_unref(w);
	return 0;
}
