/* SPDX-License-Identifier: MIT */
/*
 * preempt.c - time-slice preemption: a timer thread that asks the policy
 * about each running worker, and the signal handler that parks a worker.
 *
 * Who: with attr.preempt_slice_ns set, a plain thread (not a UMCG task)
 * sleeps until something may make a tick answer 1 (see "When the timer
 * looks" below: work queued behind busy servers, a worker that woke up
 * behind them, the earliest slice end while work waits), moves the
 * idle-workers list into the policy (so that a worker that woke up behind
 * busy servers is seen), and for each server that runs a worker it
 * reads the run's start, number and priority (written by whoever started the run: run_thread or
 * switch_to) and asks the policy's tick(); a 1 sends the preemption signal to the worker's thread
 * (tgkill), once per run (again a slice later if the run still goes on: timer_main).
 *
 * How: the handler goes through the ABI's own block and wake points, as a
 * worker that slept in the kernel would: umcg_block_point() makes the
 * RUNNING worker BLOCKED and wakes its server (which runs the next worker
 * at once), and umcg_wake_point() queues it IDLE on the idle-workers list
 * and waits until a server runs it again. A server that takes it from the
 * list sees th->preempted and queues it with UMCG_RT_ENQ_PREEMPT. The v0.3
 * words are unchanged: a preempted worker looks like one that blocked and
 * woke up; the "preempted" mark is the runtime's.
 *
 * Wake-up preemption: a worker that comes back from umcg_rt_sleep_ns()
 * on the user-space backend signals, itself, before it queues itself,
 * the running worker of lowest priority if that is lower than its own
 * (rt__wake_preempt). Every other wake-up behind busy servers (a wrapped
 * or detected call; any wake-up on the kernel backend, whose wake hook
 * queues the worker before it returns to user space) reaches the timer
 * through the wake point's eventfd write: the workers' idle_fd_ptr is the
 * timer's eventfd (stack and tid designs) or the group's, which the timer
 * watches too (eventfd design), and the ABI writes it when no idle server
 * was found. Whoever signals a run first claims it with a CAS on the
 * server's sig_seq, so a run gets one signal. A worker that sent the
 * signal itself (and a preempted worker) goes through a quiet wake point
 * (rt__quiet_begin): no timer wake at that moment. If the preempted
 * worker's server looks at the idle-workers list before the waking worker
 * is on it, it runs what it finds; the timer's look at most 1 ms later
 * (rule 3 below) drains the waking worker and preempts again.
 *
 * When not: umcg_block_point() does nothing unless the worker is RUNNING
 * and not LOCKED, so a worker that is handing its server back, parked,
 * blocked in a wrapper, or finishing is never touched (the block/wake
 * pair nests). Inside the runtime's critical code (spin locks, the
 * policy, waking servers, spawn) th->nopreempt is > 0: the handler only
 * sets preempt_pending, and rt__nopreempt_dec() preempts when the count
 * drops to 0. Code outside the runtime that holds a lock others may sleep
 * on in the kernel (malloc's!) can still be preempted: until block
 * detection is transparent, a worker that then sleeps on that lock keeps
 * its server (see docs/runtime.md, "Limits").
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt/rt.h"

/*
 * Looks at least GAP_NS apart; after a quiet wake point, one within
 * QUIET_NS, and one every QUIET_NS for LINGER_NS after the last one seen.
 */
enum { GAP_NS = 50000, QUIET_NS = 1000000, LINGER_NS = 10000000 };

/*
 * Kernel backend: the block and wake points are no-ops there; the
 * kernel's hooks act when a worker really sleeps. So the handler sleeps
 * on its own futex word (kpreempt) until its server, woken by the block
 * hook, has seen the block and posts the word (rt__preempt_seen()); the
 * wake hook then queues the worker IDLE on the way out of the futex call,
 * exactly as for a worker that blocked. A timed sleep would not do: a
 * short one can expire before the task ever schedules (no block at all,
 * seen under TCG), a long one delays the preempted worker.
 * Only if the hooks will act: RUNNING and not LOCKED (only we change our
 * state while we run). The 100 ms limit only bounds a lost post.
 * Orderings: the server's store of 1 happens after its wake-up by the
 * block hook, which ran when we were already queued on the futex with
 * the word read as 0: the FUTEX_WAKE finds us (or we did not sleep yet
 * and the block was reported anyway; the wake hook runs either way).
 */
static int kernel_block(struct rt_thread *th)
{
	uint32_t st = umcg_state_load(&th->task);
	if ((st & UMCG_TF_LOCKED) || (st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
		return 0;
	atomic_store(&th->kpreempt, 0);
	uint64_t fdp = rt__quiet_begin(th);
	struct timespec ts = {0, 100 * 1000 * 1000};
	while (!atomic_load(&th->kpreempt) &&
	       syscall(SYS_futex, &th->kpreempt, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0) == -1 &&
	       errno == EINTR)
		;
	rt__quiet_end(th, fdp); /* the wake hook ran on the way out of the futex call */
	return 1;
}

/*
 * A quiet wake point: stack and tid designs, the wake of a worker whose
 * queueing needs no look by the timer now (a preempted worker: its server
 * runs the next worker already; a worker whose wake-up preemption signal
 * was sent: the victim's server will find it). Its idle_fd_ptr (the
 * timer's eventfd) is 0 meanwhile, so the wake point wakes an idle server
 * (stack, tid word) but not the timer: the timer's wake at that moment,
 * on the CPU of the waking worker, sat on the urgent worker's path
 * (measured: workload 2 of docs/peers.md, p50 +30 us, twice the late
 * wake-ups). What the timer would have done then, its next look does, at
 * most QUIET_NS (1 ms) later (rule 3 of "When the timer looks"): drain such a
 * worker if no server took it, resend a lost signal. Only the thread
 * itself reads its idle_fd_ptr (its own wake point, or the kernel's wake
 * hook on its way back to user space), so plain relaxed stores do.
 */
uint64_t rt__quiet_begin(struct rt_thread *th)
{
	struct umcg_rt *rt = th->rt;
	if (rt->grp.design == UMCG_IDLE_EVENTFD)
		return 0; /* the group's eventfd also wakes idle servers: keep it */
	/*
	 * Rule 3 ("When the timer looks"): count the quiet wake (seq_cst RMW),
	 * then read the timer's planned look (seq_cst): poke it only if that
	 * is more than `resend` away (it slept with nothing planned).
	 */
	atomic_store_explicit(&th->quiet, 1,
			      memory_order_relaxed); /* our thread's: drain reads it */
	atomic_fetch_add(&rt->tquiet, 1);
	atomic_fetch_add_explicit(&rt->tquiet_total, 1, memory_order_relaxed); /* the linger */
	if (atomic_load(&rt->tnext) > umcg_now_ns() + QUIET_NS)
		rt__timer_poke(rt);
	uint64_t p = __atomic_load_n(&th->task.idle_fd_ptr, __ATOMIC_RELAXED);
	__atomic_store_n(&th->task.idle_fd_ptr, 0, __ATOMIC_RELAXED);
	return p;
}

void rt__quiet_end(struct rt_thread *th, uint64_t p)
{
	if (p)
		__atomic_store_n(&th->task.idle_fd_ptr, p, __ATOMIC_RELAXED);
}

void rt__preempt_seen(struct rt_thread *th)
{
	if (umcg_backend() != UMCG_BACKEND_KERNEL)
		return;
	atomic_store(&th->kpreempt, 1);
	syscall(SYS_futex, &th->kpreempt, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void rt__preempt_self(struct rt_thread *th)
{
	atomic_store(&th->preempted, 1);
	struct umcg_ktask *k = umcg__current();
	if (umcg_backend() == UMCG_BACKEND_KERNEL) {
		if (kernel_block(th)) /* quiet itself; queued and run again meanwhile */
			return;
	} else if (k && umcg__block_point_unpaired(k)) {
		uint64_t fdp = rt__quiet_begin(th);
		umcg_wake_point(); /* back when a server runs us again */
		rt__quiet_end(th, fdp);
		return;
	}
	atomic_store(&th->preempted, 0); /* not RUNNING, or LOCKED: nothing done */
	/*
	 * Give the run's claim back, so that the timer signals it again at its
	 * next look instead of never: a server marks a run started
	 * (rt__run_started) before it makes the worker RUNNING, and a signal
	 * in that window finds the worker still IDLE. Without this, a worker
	 * in an endless loop started that way kept its server for good (found
	 * by examples/prio_demo -s 1). If the server has begun another run
	 * meanwhile, the reset costs that run at most one spurious signal.
	 * Relaxed: sig_seq is only a claim; the timer's CAS orders the claims.
	 */
	struct rt_server *s = atomic_load_explicit(&th->srv, memory_order_relaxed);
	if (s)
		atomic_store_explicit(&s->sig_seq, 0, memory_order_relaxed);
}

static void handler(int sig)
{
	struct rt_thread *th = rt__self_thread;
	if (!th || !th->rt->timer_on)
		return;
	int e = errno;
	if (atomic_load(&th->nopreempt))
		atomic_store(&th->preempt_pending, 1);
	else
		rt__preempt_self(th);
	errno = e;
}

void rt__run_started(struct rt_server *s, struct rt_thread *th)
{
	struct umcg_rt *rt = s->rt;
	struct umcg_rt_worker *w = atomic_load_explicit(&th->cur, memory_order_relaxed);
	uint64_t start = umcg_now_ns();
	atomic_store_explicit(&s->cur_prio, w ? w->prio : 0, memory_order_relaxed);
	atomic_store_explicit(&s->run_start, start, memory_order_relaxed);
	/*
	 * seq_cst (and a release of the stores above): the store-load pair
	 * with the timer's tnext store and its re-read of run_seq ("When the
	 * timer looks", rule 2). Then: if work waits, this slice ends before
	 * the timer's next planned look, and the policy would preempt this
	 * run at its slice end for the work queued now (tick asked with
	 * ran_ns = slice, after the load of tnext: rule 2), poke it.
	 */
	atomic_fetch_add(&s->run_seq, 1);
	uint64_t slice = rt->attr.preempt_slice_ns;
	int prio = w ? w->prio : 0;
	if (atomic_load(&rt->nr_queued) > 0 && start + slice < atomic_load(&rt->tnext) &&
	    rt->pol->tick(rt->pd, s->idx, prio, slice, slice))
		rt__timer_poke(rt);
}

static void send_signal(struct umcg_rt *rt, struct rt_server *s)
{
	atomic_store_explicit(&s->sig_ns, umcg_now_ns(), memory_order_relaxed);
	struct rt_thread *th = atomic_load_explicit(&s->cur, memory_order_relaxed);
	if (th && syscall(SYS_tgkill, getpid(), th->tid, rt->attr.preempt_signal) == 0)
		atomic_fetch_add_explicit(&rt->preempt_signals, 1, memory_order_relaxed);
}

/* Claim run `seq` of s for one signal (timer or waking worker) and send it. */
static void signal_run(struct umcg_rt *rt, struct rt_server *s, uint64_t seq)
{
	uint64_t old = atomic_load_explicit(&s->sig_seq, memory_order_relaxed);
	if (old == seq || !atomic_compare_exchange_strong_explicit(
			      &s->sig_seq, &old, seq, memory_order_relaxed, memory_order_relaxed))
		return; /* signalled already */
	send_signal(rt, s);
}

/*
 * The calling worker (BLOCKED: its sleep just ended) preempts the running
 * worker of lowest priority below its own, if any. Relaxed reads: a stale
 * one makes a spurious signal (the worker is queued again) or a missed one
 * (the timer's tick catches up).
 */
int rt__wake_preempt(struct rt_thread *self)
{
	struct umcg_rt *rt = self->rt;
	struct umcg_rt_worker *w = atomic_load_explicit(&self->cur, memory_order_relaxed);
	if (!rt->timer_on || !w)
		return 0;
	int lo = w->prio, victim = -1;
	for (int i = 0; i < rt->nr_servers; i++) {
		struct rt_server *s = &rt->servers[i];
		struct rt_thread *th = atomic_load_explicit(&s->cur, memory_order_relaxed);
		int p = atomic_load_explicit(&s->cur_prio, memory_order_relaxed);
		if (th && th != self && p < lo) {
			lo = p;
			victim = i;
		}
	}
	if (victim < 0)
		return 0;
	struct rt_server *s = &rt->servers[victim];
	signal_run(rt, s, atomic_load_explicit(&s->run_seq, memory_order_relaxed));
	return 1; /* signalled, by us or before */
}

/*
 * When the timer looks (it sleeps otherwise, in epoll on its eventfd tfd).
 * A run can only be preempted when work is queued (nr_queued > 0: a tick
 * answers 1 for queued work of higher priority, or of the same one once
 * the run has used its slice). So the timer looks exactly when something
 * may have changed for a tick:
 *   1. work was queued behind busy servers: rt__kick() found no idle
 *      server to wake and calls rt__timer_poke(); and a worker that woke
 *      up behind busy servers (the ABI's wake point, user space or kernel)
 *      finds no idle server on the stack (or tid word) and writes the
 *      eventfd at its idle_fd_ptr, which is tfd (eventfd design: the
 *      group's eventfd, on which the timer waits with the servers);
 *   2. a run started while work is queued, its slice ends before the
 *      timer's next planned look, and tick says the queued work would
 *      preempt it then (rt__run_started pokes);
 *   3. its planned look: the earliest slice end (start + slice) of a run
 *      not yet at its slice for which tick says the same, or the resend
 *      of a signalled run (sig_ns +
 *      resend), both only while work is queued; and at most 1 ms
 *      after a quiet wake point (rt__quiet_begin: a preempted worker, or
 *      one whose wake-up preemption signal went out, queues itself
 *      without waking the timer; the look drains it if no server did and
 *      resends a lost signal).
 * Whatever a look finds (it drains the idle-workers list into the policy,
 * wakes idle servers for what it queued, and asks tick about each run),
 * the next one is never less than GAP after it (a rate limit against a
 * stream of pokes: at most the old fixed period's rate).
 *
 * No lost look (each "poke" below is: tgen += 1, then if tfd.waiters != 0
 * write tfd; all seq_cst):
 *   timer:  look (reads tgen = g0 first, run_seq of each server) ; store
 *           tnext ; waiters += 1 (tfd, and the group's in the eventfd
 *           design, each followed by a re-check of the idle-workers list:
 *           umcg_idle_fd_prepare) ; re-read tgen and every run_seq: any
 *           change -> no sleep, look again ; else epoll until tnext ;
 *           waiters -= 1 and consume the counters (umcg_idle_fd_finish).
 *   rule 1: nr_queued += 1 (RMW) ... poke. If the waker reads waiters == 0,
 *           the timer's increment is later in the single total order, so
 *           its re-read of tgen sees the poke; else the write wakes it (an
 *           eventfd counter stays readable until consumed). The ABI's wake
 *           point is the same pair on the list head (umcg_idle.h).
 *   rule 2: run_seq += 1 (RMW) ; load nr_queued ; load tnext. If that load
 *           of tnext precedes the timer's store, the timer's later re-read
 *           of run_seq sees the new run (a look again); else the starter
 *           sees the planned look and pokes if its slice ends earlier. If
 *           it reads nr_queued == 0, whoever queues later pokes (rule 1)
 *           after its RMW, and the look that follows reads run_seq later
 *           in the total order: it sees this run. The starter asks tick
 *           (ran_ns = slice: would the work queued now preempt this run at
 *           its slice end?) only after its load of tnext: if the timer's
 *           look missed this run, the starter's load reads the tnext that
 *           the timer stored after it read tgen (acquire), so whatever was
 *           queued before a poke that look answered is visible to tick. A
 *           queue that changes later pokes again (rule 1). The timer plans
 *           a slice end only by the same question. run_seq's RMW is a release
 *           of run_start and cur_prio, read after the timer's (seq_cst,
 *           acquire) load of run_seq; the enqueue's queue (the policy's
 *           lock, prio's mask) is published to the timer by the poke's
 *           tgen RMW (release) and the timer's load of tgen (acquire).
 *   rule 3: tquiet counts workers between a quiet wake point's start and
 *           the drain that takes them from the idle-workers list (th->quiet
 *           marks them; rt__drain_idle_workers decrements). Waker: tquiet
 *           += 1 (RMW) ; load tnext ; poke if tnext > now + 1 ms. Timer:
 *           store tnext ; load tquiet: if > 0, it plans its next look
 *           1 ms away at most. If the waker's load of tnext precedes
 *           that store, the timer's load sees the increment; else the waker
 *           reads the planned look and pokes if it is too far (tnext is 0
 *           while the timer is awake: it reads tquiet before it sleeps).
 *           So while such a worker is not drained, the timer looks at least
 *           every 1 ms; drained, it is queued work (rules 1-3 above).
 * The eventfd design shares the group's eventfd with the idle servers.
 * The timer's epoll entry is EPOLLEXCLUSIVE and added after the servers'
 * (it starts after them), so a write wakes a server that waits in
 * epoll_wait first, and the timer only when none does. But a server that
 * announced itself (waiters) and is not yet in epoll_wait is passed over:
 * if the timer then consumes the write (reads the counter), the server's
 * epoll finds the counter 0 and sleeps. The timer repairs that at once: it
 * drains the idle-workers list (whatever the write was for is queued
 * then) and wakes idle servers for queued work (rt__kick_idle retries
 * until the counted server waits; the kick's write then finds it in
 * epoll_wait, ahead of the timer's entry).
 */

static void sleep_until(uint64_t t)
{
	struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* One look: returns the next planned look (UINT64_MAX: none). */
static uint64_t timer_look(struct umcg_rt *rt, uint64_t slice, uint64_t resend)
{
	/*
	 * Workers that woke up wait on the idle-workers list until a server
	 * looks; with every server busy, that is when one is preempted. Hand
	 * them to the policy now, so that its tick sees them (and wake an
	 * idle server, if any: also for a wake-up we consumed, see above).
	 */
	rt__drain_idle_workers(rt, NULL);
	rt__kick_idle(rt, NULL);
	bool queued = atomic_load(&rt->nr_queued) > 0;
	uint64_t now = umcg_now_ns(), next = UINT64_MAX;
	for (int i = 0; i < rt->nr_servers; i++) {
		struct rt_server *s = &rt->servers[i];
		uint64_t seq = atomic_load(&s->run_seq); /* seq_cst: rule 2 */
		rt->tseq[i] = seq;
		struct rt_thread *th = atomic_load_explicit(&s->cur, memory_order_relaxed);
		if (!th)
			continue;
		uint64_t start = atomic_load_explicit(&s->run_start, memory_order_relaxed);
		int prio = atomic_load_explicit(&s->cur_prio, memory_order_relaxed);
		if (now < start) {
			if (queued)
				next = min_u64(next, start + slice);
			continue;
		}
		bool claimed = seq == atomic_load_explicit(&s->sig_seq, memory_order_relaxed);
		/* sig_ns may be later than now (a waking worker's claim): no resend then */
		uint64_t sig_ns = atomic_load_explicit(&s->sig_ns, memory_order_relaxed);
		if (claimed && (now < sig_ns || now - sig_ns < resend)) {
			if (queued)
				next = min_u64(next, (now < sig_ns ? now : sig_ns) + resend);
			continue;
		}
		if (rt->pol->tick(rt->pd, i, prio, now - start, slice)) {
			if (!claimed)
				signal_run(rt, s, seq);
			else
				send_signal(rt, s); /* resend: see timer_main */
			next = min_u64(next, now + resend);
			continue;
		}
		/* its slice end, if the queued work would preempt it then */
		if (queued && now - start < slice && rt->pol->tick(rt->pd, i, prio, slice, slice))
			next = min_u64(next, start + slice);
	}
	return next;
}

static bool runs_changed(struct umcg_rt *rt)
{
	for (int i = 0; i < rt->nr_servers; i++)
		if (atomic_load(&rt->servers[i].run_seq) != rt->tseq[i]) /* seq_cst: rule 2 */
			return true;
	return false;
}

/* Sleep until `next` or a poke (see above). */
static void timer_wait(struct umcg_rt *rt, uint64_t gen, uint64_t next)
{
	bool evfd = rt->grp.design == UMCG_IDLE_EVENTFD;
	atomic_store(&rt->tnext, next); /* seq_cst: rules 2 and 3 */
	uint64_t now = umcg_now_ns(), bound = now + QUIET_NS;
	/*
	 * The linger: for LINGER_NS after the last quiet wake point seen, keep
	 * looking every QUIET_NS anyway, so that the next quiet waker finds a
	 * look planned within QUIET_NS and does not poke (wake) the timer on
	 * its own CPU at its wake-up (workload 2: one such poke per round
	 * without it). Only extra looks: rule 3 does not depend on it.
	 */
	uint64_t qt = atomic_load_explicit(&rt->tquiet_total, memory_order_relaxed);
	if (qt != rt->tq_seen) {
		rt->tq_seen = qt;
		rt->tq_linger = now + LINGER_NS;
	}
	if ((atomic_load(&rt->tquiet) > 0 || now < rt->tq_linger) && /* seq_cst: rule 3 */
	    next > bound) {
		next = bound;
		atomic_store(&rt->tnext, next);
	}
	if (!umcg_idle_fd_prepare(&rt->tfd, &rt->grp.idle_workers))
		return;
	bool grp = evfd && umcg_idle_fd_prepare(&rt->grp.idle_fd, &rt->grp.idle_workers);
	if ((!evfd || grp) && atomic_load(&rt->tgen) == gen && !runs_changed(rt) &&
	    !atomic_load(&rt->timer_stop)) {
		struct timespec ts, *tp = NULL;
		if (next != UINT64_MAX) {
			uint64_t t = umcg_now_ns(), d = next > t ? next - t : 0;
			ts.tv_sec = (time_t)(d / 1000000000ull);
			ts.tv_nsec = (long)(d % 1000000000ull);
			tp = &ts;
		}
		struct epoll_event ev[2];
		int r = epoll_pwait2(rt->tepfd, ev, 2, tp, NULL);
		if (r < 0 && errno == ENOSYS) { /* before Linux 5.11: ms, rounded up */
			long ms = -1;
			if (tp) {
				uint64_t m = ((uint64_t)ts.tv_sec * 1000000000ull +
					      (uint64_t)ts.tv_nsec + 999999) /
					     1000000;
				ms = m > INT_MAX ? INT_MAX : (long)m;
			}
			r = epoll_wait(rt->tepfd, ev, 2, (int)ms);
		}
		if (r < 0 && errno != EINTR)
			rt__fatal("preemption timer: epoll wait: %s", strerror(errno));
	}
	umcg_idle_fd_finish(&rt->tfd);
	if (grp && umcg_idle_fd_finish(&rt->grp.idle_fd)) {
		/*
		 * We consumed a write of the group's eventfd, maybe one meant
		 * for a server that announced itself but was not yet in
		 * epoll_wait (its epoll then finds the counter 0 and sleeps):
		 * repair it now, not only after the gap (see above).
		 */
		rt__drain_idle_workers(rt, NULL);
		rt__kick_idle(rt, NULL);
	}
	atomic_store(&rt->tnext, 0); /* awake: it looks again anyway (the re-check of rule 2) */
}

void rt__timer_poke(struct umcg_rt *rt)
{
	atomic_fetch_add(&rt->tgen, 1); /* seq_cst: rule 1 */
	if (__atomic_load_n(&rt->tfd.waiters, __ATOMIC_SEQ_CST)) {
		uint64_t one = 1;
		/* EAGAIN (counter saturated): a wake-up is pending anyway */
		if (write(rt->tfd.fd, &one, sizeof one) < 0 && errno != EAGAIN)
			rt__fatal("preemption timer: eventfd write: %s", strerror(errno));
	}
}

void rt__preempt_worker_init(struct umcg_rt *rt, struct umcg_task *t)
{
	/*
	 * Stack and tid designs: a worker that wakes up behind busy servers
	 * (no idle server on the stack or in the tid word) writes the timer's
	 * eventfd (the ABI tries the eventfd after them). The eventfd design
	 * keeps the group's eventfd, on which the timer waits too.
	 */
	if (rt->timer_on && rt->grp.design != UMCG_IDLE_EVENTFD)
		t->idle_fd_ptr = (uint64_t)(uintptr_t)&rt->tfd;
}

static void *timer_main(void *arg)
{
	struct umcg_rt *rt = arg;
	uint64_t slice = rt->attr.preempt_slice_ns;
	/*
	 * A run signalled once that still runs, still to be preempted, a
	 * whole slice (at least 1 ms) later gets the signal again. Normally
	 * the handler acts or gives the claim back at once; but a signal can
	 * be lost: under ThreadSanitizer a signal that finds the thread
	 * outside an intercepted call is only queued, and a second one to the
	 * same thread before that queue is read merges into it (seen: tsan
	 * test_rt_preempt urgent_worker_beside_fresh_endless_ones, 9 of 10
	 * parallel runs hung on one endless worker whose run was claimed and
	 * whose handler never ran). A resend costs at most one spurious
	 * preemption; without it a lost signal kept an endless worker on its
	 * server for good.
	 */
	uint64_t resend = rt->tresend;
	uint64_t last = 0;
	while (!atomic_load(&rt->timer_stop)) {
		uint64_t now = umcg_now_ns();
		if (last && now < last + GAP_NS)
			sleep_until(last + GAP_NS);
		last = umcg_now_ns();
		uint64_t gen = atomic_load(&rt->tgen); /* seq_cst: rule 1 */
		uint64_t next = timer_look(rt, slice, resend);
		timer_wait(rt, gen, next);
	}
	return NULL;
}

static void timer_free(struct umcg_rt *rt)
{
	if (rt->tepfd >= 0)
		close(rt->tepfd);
	rt->tepfd = -1;
	umcg_idle_fd_destroy(&rt->tfd);
	free(rt->tseq);
	rt->tseq = NULL;
}

int rt__preempt_start(struct umcg_rt *rt)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(rt->attr.preempt_signal, &sa, NULL))
		return -1;
	rt->tfd.fd = -1;
	rt->tepfd = -1;
	uint64_t slice = rt->attr.preempt_slice_ns;
	rt->tresend = slice > 1000000 ? slice : 1000000; /* see timer_main */
	rt->tseq = calloc((size_t)rt->nr_servers, sizeof *rt->tseq);
	struct epoll_event ev = {.events = EPOLLIN};
	struct epoll_event gev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
	if (!rt->tseq || umcg_idle_fd_init(&rt->tfd) ||
	    (rt->tepfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(rt->tepfd, EPOLL_CTL_ADD, rt->tfd.fd, &ev) ||
	    (rt->grp.design == UMCG_IDLE_EVENTFD &&
	     epoll_ctl(rt->tepfd, EPOLL_CTL_ADD, rt->grp.idle_fd.fd, &gev))) {
		int e = rt->tseq ? errno : ENOMEM;
		timer_free(rt);
		errno = e;
		return -1;
	}
	rt->timer_on = true;
	int e = pthread_create(&rt->timer, NULL, timer_main, rt);
	if (e) {
		rt->timer_on = false;
		timer_free(rt);
		errno = e;
		return -1;
	}
	pthread_setname_np(rt->timer, "umcg-rt-timer"); /* for ps, perf, the tests */
	return 0;
}

void rt__preempt_stop(struct umcg_rt *rt)
{
	if (!rt->timer_on)
		return;
	atomic_store(&rt->timer_stop, 1);
	uint64_t one = 1;
	if (write(rt->tfd.fd, &one, sizeof one) < 0 && errno != EAGAIN)
		rt__fatal("preemption timer: eventfd write: %s", strerror(errno));
	pthread_join(rt->timer, NULL);
	timer_free(rt);
}
