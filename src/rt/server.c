/* SPDX-License-Identifier: MIT */
/*
 * server.c - the runtime's servers: the scheduling loop, running a worker,
 * the idle protocol, waking idle servers.
 *
 * A server's loop:
 *   1. take every worker the ABI queued on the idle-workers list (they woke
 *      from a block, or registered), oldest first, and give each to the
 *      policy (on_wake, enqueue);
 *   2. ask the policy for the next worker (pick_next, then steal);
 *   3. run it (run_thread) until the server is made RUNNING again: by the
 *      ABI when the worker blocks, or by the worker itself when it yields,
 *      parks or exits (it says which in s->why);
 *   4. nothing to run: wait in the idle group (server_idle).
 *
 * Idle servers, no lost wake-up (the fifo_demo's RULE 3, one level up):
 * a server counts itself in rt->nr_idle (seq_cst RMW) and then re-reads
 * rt->nr_queued and rt->done (seq_cst loads) before it waits; whoever
 * queues work raises nr_queued (seq_cst RMW) and then reads nr_idle
 * (seq_cst load) in rt__kick(). In the single total order of seq_cst
 * operations one of the two comes first, so either the server sees the
 * work, or the waker sees the server and wakes it (umcg_idle_group_wake_one
 * retried while the counted server is not yet waiting in the group). For
 * the idle-workers list itself the idle group keeps the same rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "rt/rt.h"

static inline uint32_t low_state(const struct umcg_task *t)
{
	return umcg_state_load(t) & UMCG_TF_STATE_MASK;
}

int rt__server_hint(struct umcg_rt *rt)
{
	struct rt_server *s = rt__self_server;
	if (s && s->rt == rt)
		return s->idx;
	struct rt_thread *th = rt__self_thread;
	if (th && th->rt == rt) {
		s = atomic_load_explicit(&th->srv, memory_order_relaxed);
		if (s)
			return s->idx;
	}
	return -1;
}

static struct rt_server *hint_server(struct umcg_rt *rt)
{
	int i = rt__server_hint(rt);
	return i >= 0 ? &rt->servers[i] : NULL;
}

int rt__kick_idle(struct umcg_rt *rt, struct rt_server *by)
{
	/*
	 * nr_queued was raised (seq_cst) before we get here; a server we do
	 * not count in nr_idle sees it. One we do count may not be waiting in
	 * the group yet (wake_one finds nobody): retry until it leaves
	 * server_idle() or the work is gone.
	 */
	while (atomic_load(&rt->nr_idle) > 0 && atomic_load(&rt->nr_queued) > 0) {
		if (umcg_idle_group_wake_one(&rt->grp)) {
			if (by)
				rt__count(&by->kicks);
			return 1;
		}
		sched_yield();
	}
	return 0;
}

void rt__kick(struct umcg_rt *rt, struct rt_server *by)
{
	/*
	 * Work stays queued behind busy servers: with preemption, the timer
	 * must look (its tick may preempt a run for it); it sleeps until the
	 * next slice end otherwise (preempt.c, "When the timer looks").
	 */
	if (!rt__kick_idle(rt, by) && rt->timer_on && atomic_load(&rt->nr_queued) > 0)
		rt__timer_poke(rt);
}

void rt__make_runnable(struct umcg_rt *rt, struct umcg_rt_worker *w, unsigned flags)
{
	rt__nopreempt_inc(); /* the policy's locks, the idle group's read sections */
	struct rt_server *s = hint_server(rt);
	atomic_fetch_add(&rt->nr_queued, 1); /* before: never below the queued count */
	rt->pol->enqueue(rt->pd, s ? s->idx : -1, w, flags);
	rt__kick(rt, s);
	rt__nopreempt_dec();
}

/*
 * Take every worker the ABI queued, oldest first (the list is a stack:
 * reverse it), re-pointing each (umcg_idle_workers_next) before it may
 * run again, and hand them to the policy. s NULL: the preemption timer
 * does it (the policy must see workers that wait behind busy servers).
 */
void rt__drain_idle_workers(struct umcg_rt *rt, struct rt_server *s)
{
	int idx = s ? s->idx : -1;
	struct umcg_task *t = umcg_idle_workers_pop_all(&rt->grp.idle_workers);
	if (!t)
		return;
	struct rt_thread *first = NULL;
	long n = 0;
	while (t) {
		struct umcg_task *next = umcg_idle_workers_next(t, &rt->grp.idle_workers);
		struct rt_thread *th = rt_container_of(t, struct rt_thread, task);
		th->drain_next = first; /* not pool_next: a pooled thread may block too */
		first = th;
		n++;
		t = next;
	}
	atomic_fetch_add(&rt->nr_queued, n);
	if (s)
		RT_TRACE(s, RT_EV_WAKE, 0, (uint32_t)(n > 65535 ? 65535 : n));
	for (struct rt_thread *th = first; th;) {
		struct rt_thread *next = th->drain_next;
		th->drain_next = NULL;
		if (atomic_exchange_explicit(&th->quiet, 0, memory_order_relaxed))
			atomic_fetch_sub(&rt->tquiet, 1); /* preempt.c, rule 3 */
		struct umcg_rt_worker *w = atomic_load_explicit(&th->cur, memory_order_relaxed);
		unsigned flags = UMCG_RT_ENQ_WAKE;
		if (th->fresh) {
			th->fresh = false;
			flags = UMCG_RT_ENQ_NEW;
		} else if (atomic_exchange(&th->preempted, 0)) {
			flags = UMCG_RT_ENQ_PREEMPT; /* its handler went through the wake point */
			rt__count(s ? &s->preempts : &rt->preempts);
		} else {
			rt__count(s ? &s->wakes : &rt->wakes);
			if (rt->pol->on_wake)
				rt->pol->on_wake(rt->pd, idx, w);
		}
		rt->pol->enqueue(rt->pd, idx, w, flags);
		th = next;
	}
}

/*
 * Run th on s until s is RUNNING again.
 *
 * Order (each step is needed):
 *   1. wait until th's state is exactly IDLE. A thread that yielded or
 *      parked is IDLE|LOCKED until its umcg_wait() cleared LOCKED, and
 *      umcg_wait() reads the thread's server_tid (whom to wake) before it
 *      clears LOCKED: writing server_tid earlier could redirect that wake
 *      from its old server to us and leave the old one asleep.
 *   2. th->srv and server_tid, then
 *   3. ourselves IDLE (before the worker can run and block: a block point
 *      that finds its server RUNNING wakes nobody), then
 *   4. th RUNNING (CAS, release: publishes 2), and umcg_wait with next_tid.
 * The worker reads th->srv after its acquire load of RUNNING.
 */
static void run_thread(struct rt_server *s, struct rt_thread *th)
{
	unsigned n = 0;
	while (umcg_state_load(&th->task) != UMCG_TASK_IDLE) {
		if (++n < 128)
			rt__relax();
		else
			sched_yield();
	}
	atomic_store_explicit(&th->srv, s, memory_order_relaxed);
	atomic_store_explicit(&s->cur, th, memory_order_relaxed);
	__atomic_store_n(&th->task.server_tid, s->tid, __ATOMIC_RELAXED);
	if (s->rt->timer_on)
		rt__run_started(s, th);
	RT_TRACE(s, RT_EV_RUN_BEGIN, th->tid, 0);
	umcg_state_store(&s->task, UMCG_TASK_IDLE);
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&th->task, &exp, UMCG_TASK_RUNNING))
		rt__fatal("server %d: worker tid %u in state %#x, not IDLE", s->idx, th->tid, exp);
	__atomic_store_n(&s->task.next_tid, th->tid, __ATOMIC_RELAXED);
	rt__count(&s->runs);
	while (umcg_wait(0, 0)) {
		/* ESRCH: th ran, exited and unregistered first; it made us RUNNING. */
		if (errno == ESRCH)
			__atomic_store_n(&s->task.next_tid, 0, __ATOMIC_RELAXED);
		else if (errno != EINTR)
			rt__fatal("server %d: umcg_wait: %s", s->idx, strerror(errno));
	}
	__atomic_store_n(&s->task.next_tid, 0, __ATOMIC_RELAXED);

	/* why/why_th were written before the CAS that made us RUNNING (acquire in umcg_wait). */
	int why = atomic_exchange_explicit(&s->why, RT_WHY_NONE, memory_order_acquire);
	struct rt_thread *wt = atomic_load_explicit(&s->why_th, memory_order_relaxed);
	struct rt_thread *cur = atomic_load_explicit(&s->cur, memory_order_relaxed);
	struct umcg_rt *rt = s->rt;
	if (s->trace) {
		static const uint16_t ends[] = {[RT_WHY_NONE] = RT_END_BLOCK,
						[RT_WHY_YIELD] = RT_END_YIELD,
						[RT_WHY_PARK] = RT_END_PARK,
						[RT_WHY_EXIT] = RT_END_EXIT};
		uint16_t end = why >= 0 && why <= RT_WHY_EXIT ? ends[why] : RT_END_BLOCK;
		if (why == RT_WHY_NONE && atomic_load(&cur->preempted))
			end = RT_END_PREEMPT;
		rt__trace(s, RT_EV_RUN_END, 0, end);
	}
	switch (why) {
	case RT_WHY_NONE: /* cur blocked in the kernel; it comes back via the idle list */
		if (atomic_load(&cur->preempted)) {
			rt__preempt_seen(cur); /* kernel backend: its handler sleeps until now */
			break; /* preempted (its handler's block point), not blocked */
		}
		rt__count(&s->blocks);
		if (rt->pol->on_block)
			rt->pol->on_block(rt->pd, s->idx,
					  atomic_load_explicit(&cur->cur, memory_order_relaxed));
		break;
	case RT_WHY_YIELD:
		atomic_fetch_add(&rt->nr_queued, 1);
		rt->pol->enqueue(rt->pd, s->idx,
				 atomic_load_explicit(&wt->cur, memory_order_relaxed),
				 UMCG_RT_ENQ_YIELD);
		break;
	case RT_WHY_PARK:
	case RT_WHY_EXIT:
		break;
	default:
		rt__fatal("server %d: bad hand-back reason %d", s->idx, why);
	}
	atomic_store_explicit(&s->cur, NULL, memory_order_relaxed);
}

/*
 * eventfd design: one epoll instance per server, EPOLLEXCLUSIVE: a write
 * wakes one. Returns 1 on a timeout, else 0.
 */
static int wait_epoll(struct rt_server *s, uint64_t deadline)
{
	struct umcg_rt *rt = s->rt;
	if (!umcg_idle_fd_prepare(&rt->grp.idle_fd, &rt->grp.idle_workers))
		return 0;
	int ms = -1;
	if (deadline) {
		uint64_t now = umcg_now_ns();
		ms = deadline > now ? (int)((deadline - now + 999999) / 1000000) : 0;
	}
	struct epoll_event ev;
	int r = epoll_wait(s->epfd, &ev, 1, ms);
	int e = errno;
	umcg_idle_fd_finish(&rt->grp.idle_fd);
	if (r < 0 && e != EINTR)
		rt__fatal("server %d: epoll_wait: %s", s->idx, strerror(e));
	return r == 0 && deadline; /* 1: timed out */
}

static void server_idle(struct rt_server *s)
{
	struct umcg_rt *rt = s->rt;
	atomic_fetch_add(&rt->nr_idle, 1);
	if (atomic_load(&rt->nr_queued) <= 0 && !atomic_load(&rt->done)) {
		rt__count(&s->idle_waits);
		RT_TRACE(s, RT_EV_IDLE_BEGIN, 0, 0);
		uint64_t deadline = 0;
		if (rt->attr.idle_timeout_ns)
			deadline = umcg_now_ns() + rt->attr.idle_timeout_ns;
		if (s->epfd >= 0) {
			if (wait_epoll(s, deadline))
				rt__count(&s->idle_timeouts);
		} else if (umcg_idle_group_wait(&rt->grp, &s->task, deadline)) {
			if (errno != ETIMEDOUT)
				rt__fatal("server %d: umcg_idle_group_wait: %s", s->idx,
					  strerror(errno));
			rt__count(&s->idle_timeouts);
		}
		RT_TRACE(s, RT_EV_IDLE_END, 0, 0);
		if (low_state(&s->task) != UMCG_TASK_RUNNING)
			rt__fatal("server %d: state %#x after its idle wait", s->idx,
				  umcg_state_load(&s->task));
	}
	atomic_fetch_sub(&rt->nr_idle, 1);
}

static struct umcg_rt_worker *next_worker(struct rt_server *s)
{
	struct umcg_rt *rt = s->rt;
	struct umcg_rt_worker *w = rt->pol->pick_next(rt->pd, s->idx);
	if (!w && rt->pol->steal) {
		w = rt->pol->steal(rt->pd, s->idx);
		if (w) {
			rt__count(&s->steals);
			RT_TRACE(s, RT_EV_STEAL, w->th ? w->th->tid : 0, 0);
		}
	}
	if (w)
		atomic_fetch_sub(&rt->nr_queued, 1);
	return w;
}

static void *server_main(void *arg)
{
	struct rt_server *s = arg;
	struct umcg_rt *rt = s->rt;
	struct umcg_task *me = &s->task;

	rt__self_server = s;
	/* pinned by the creator (pthread attr) before this registration */
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_RUNNING;
	me->api_version = UMCG_API_VERSION;
	if (umcg_ctl(UMCG_CTL_REGISTER, me))
		rt__fatal("server %d: umcg_ctl(REGISTER): %s", s->idx, strerror(errno));
	s->tid = umcg_gettid();
	__atomic_store_n(&me->server_tid, s->tid, __ATOMIC_RELEASE);

	for (;;) {
		rt__drain_idle_workers(rt, s);
		struct umcg_rt_worker *w = next_worker(s);
		if (w) {
			if (atomic_load(&rt->nr_queued) > 0)
				rt__kick(rt, s);
			run_thread(s, w->th);
			continue;
		}
		if (atomic_load(&rt->done))
			break;
		if (atomic_load(&rt->nr_queued) > 0) {
			sched_yield(); /* queued with a server we cannot steal from */
			continue;
		}
		server_idle(s);
	}
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		rt__fatal("server %d: umcg_ctl(UNREGISTER): %s", s->idx, strerror(errno));
	atomic_store(&s->exited, 1);
	return NULL;
}

int rt__servers_start(struct umcg_rt *rt)
{
	cpu_set_t avail;
	int cpus[CPU_SETSIZE], nr_cpus = 0;
	if (sched_getaffinity(0, sizeof avail, &avail))
		CPU_ZERO(&avail);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &avail))
			cpus[nr_cpus++] = c;
	if (!nr_cpus)
		cpus[nr_cpus++] = 0;

	for (int i = 0; i < rt->nr_servers; i++) {
		struct rt_server *s = &rt->servers[i];
		s->rt = rt;
		s->idx = i;
		s->epfd = -1;
		s->cpu = rt->attr.pin_servers ? cpus[i % nr_cpus] : -1;
		if (rt->grp.design == UMCG_IDLE_EVENTFD) {
			s->epfd = epoll_create1(EPOLL_CLOEXEC);
			struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
			if (s->epfd < 0 ||
			    epoll_ctl(s->epfd, EPOLL_CTL_ADD, rt->grp.idle_fd.fd, &ev))
				return -1;
		}
	}
	for (int i = 0; i < rt->nr_servers; i++) {
		struct rt_server *s = &rt->servers[i];
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		if (s->cpu >= 0) {
			/* pinned before it registers: the ABI records it as "allowed" */
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(s->cpu, &set);
			pthread_attr_setaffinity_np(&a, sizeof set, &set);
		}
		int e = pthread_create(&s->thread, &a, server_main, s);
		pthread_attr_destroy(&a);
		if (e) {
			/* stop the ones started: they are idle, no worker exists */
			rt->nr_servers = i;
			rt__servers_stop(rt);
			errno = e;
			return -1;
		}
	}
	return 0;
}

/*
 * Shutdown: every worker thread has ended. Set done, then wake idle
 * servers until none is left in server_idle() (a counted server may be on
 * its way into or out of the group wait; an eventfd write stays pending
 * until read, so give a woken server time to leave), then join them.
 */
void rt__servers_stop(struct umcg_rt *rt)
{
	atomic_store(&rt->done, 1);
	int n;
	while ((n = atomic_load(&rt->nr_idle))) {
		if (!umcg_idle_group_wake_one(&rt->grp)) {
			sched_yield();
			continue;
		}
		uint64_t until = umcg_now_ns() + 1000000;
		while (atomic_load(&rt->nr_idle) == n && umcg_now_ns() < until)
			sched_yield();
	}
	for (int i = 0; i < rt->nr_servers; i++)
		pthread_join(rt->servers[i].thread, NULL);
	for (int i = 0; i < rt->nr_servers; i++)
		if (rt->servers[i].epfd >= 0) {
			close(rt->servers[i].epfd);
			rt->servers[i].epfd = -1;
		}
}
