/* SPDX-License-Identifier: MIT */
/*
 * preempt.c - time-slice preemption: a timer thread that asks the policy
 * about each running worker, and the signal handler that parks a worker.
 *
 * Who: with attr.preempt_slice_ns set, a plain thread (not a UMCG task)
 * wakes four times per slice, moves the idle-workers list into the policy (so that
 * a worker that woke up behind busy servers is seen), and for each server that runs a worker it
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
 * does not wait for the timer's next look (up to a quarter slice): before
 * it queues itself it signals, itself, the running worker of lowest
 * priority if that is lower than its own (rt__wake_preempt). Whoever
 * signals a run first claims it with a CAS on the server's sig_seq, so a
 * run gets one signal. If the preempted worker's server looks at the
 * idle-workers list before the waking worker is on it (the signal has to
 * reach the other worker and its server has to wake up first, so this is
 * rare), it runs what it finds and the timer's next tick preempts again.
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
#include <stdbool.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt/rt.h"

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
	struct timespec ts = {0, 100 * 1000 * 1000};
	while (!atomic_load(&th->kpreempt) &&
	       syscall(SYS_futex, &th->kpreempt, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0) == -1 &&
	       errno == EINTR)
		;
	return 1;
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
	if (umcg_backend() == UMCG_BACKEND_KERNEL ? kernel_block(th)
						  : k && umcg__block_point_unpaired(k)) {
		umcg_wake_point(); /* back when a server runs us again (kernel: no-op) */
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
	struct umcg_rt_worker *w = atomic_load_explicit(&th->cur, memory_order_relaxed);
	atomic_store_explicit(&s->cur_prio, w ? w->prio : 0, memory_order_relaxed);
	atomic_store_explicit(&s->run_start, umcg_now_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->run_seq, 1, memory_order_relaxed);
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
void rt__wake_preempt(struct rt_thread *self)
{
	struct umcg_rt *rt = self->rt;
	struct umcg_rt_worker *w = atomic_load_explicit(&self->cur, memory_order_relaxed);
	if (!rt->timer_on || !w)
		return;
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
	if (victim >= 0) {
		struct rt_server *s = &rt->servers[victim];
		signal_run(rt, s, atomic_load_explicit(&s->run_seq, memory_order_relaxed));
	}
}

static void *timer_main(void *arg)
{
	struct umcg_rt *rt = arg;
	uint64_t slice = rt->attr.preempt_slice_ns;
	/*
	 * Wake 4 times per slice: a worker that woke up behind busy servers
	 * waits for the next look at the idle-workers list, so this bounds
	 * an urgent worker's wake-up latency to about a quarter slice (tick
	 * itself decides when a slice is used up, from ran_ns).
	 */
	uint64_t period = slice / 4 > 50000 ? slice / 4 : 50000;
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
	uint64_t resend = slice > 1000000 ? slice : 1000000;
	struct timespec ts = {(time_t)(period / 1000000000ull), (long)(period % 1000000000ull)};
	while (!atomic_load(&rt->timer_stop)) {
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		/*
		 * Workers that woke up wait on the idle-workers list until a
		 * server looks; with every server busy, that is when one is
		 * preempted. Hand them to the policy now, so that its tick sees
		 * them (and wake an idle server, if any).
		 */
		long before = atomic_load(&rt->nr_queued);
		rt__drain_idle_workers(rt, NULL);
		if (atomic_load(&rt->nr_queued) != before)
			rt__kick(rt, NULL);
		uint64_t now = umcg_now_ns();
		for (int i = 0; i < rt->nr_servers; i++) {
			struct rt_server *s = &rt->servers[i];
			struct rt_thread *th = atomic_load_explicit(&s->cur, memory_order_relaxed);
			if (!th)
				continue;
			uint64_t seq = atomic_load_explicit(&s->run_seq, memory_order_relaxed);
			uint64_t start = atomic_load_explicit(&s->run_start, memory_order_relaxed);
			int prio = atomic_load_explicit(&s->cur_prio, memory_order_relaxed);
			if (now < start)
				continue;
			bool claimed =
			    seq == atomic_load_explicit(&s->sig_seq, memory_order_relaxed);
			/* sig_ns may be later than now (a waking worker's claim): no resend then */
			uint64_t sig_ns = atomic_load_explicit(&s->sig_ns, memory_order_relaxed);
			if (claimed && (now < sig_ns || now - sig_ns < resend))
				continue;
			if (!rt->pol->tick(rt->pd, i, prio, now - start, slice))
				continue;
			if (!claimed)
				signal_run(rt, s, seq);
			else
				send_signal(rt, s); /* resend: see above */
		}
	}
	return NULL;
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
	rt->timer_on = true;
	int e = pthread_create(&rt->timer, NULL, timer_main, rt);
	if (e) {
		rt->timer_on = false;
		errno = e;
		return -1;
	}
	return 0;
}

void rt__preempt_stop(struct umcg_rt *rt)
{
	if (!rt->timer_on)
		return;
	atomic_store(&rt->timer_stop, 1);
	pthread_join(rt->timer, NULL);
}
