/* SPDX-License-Identifier: MIT */
/*
 * sched.c - what the kernel's scheduler gives UMCG for free: sleep until
 * RUNNING (the idle loop, spec 5.2), wake a task (ttwu), and the
 * WF_CURRENT_CPU placement hint. The sleep/wake protocol and its memory
 * ordering are described in kern.h.
 *
 * Placement (WF_CURRENT_CPU): the v0.3 kernel places a task woken by a
 * context switch on the waker's CPU, "if allowed". User space cannot pick
 * the CPU of a single wake-up, so we move the wakee with
 * sched_setaffinity(tid, {waker's CPU}) before waking it, if that CPU is in
 * the wakee's registration-time affinity. The wakee then stays there until
 * another hinted wake moves it, or a wake without the hint restores its
 * registration-time affinity (umcg__unpin). A task is only moved when the
 * CPU differs from where we last pinned it, so a worker that keeps being
 * switched to by a server on the same CPU costs nothing extra.
 *
 * The kernel's placement was one-shot (the load balancer could move the
 * task again later); ours is sticky. So we apply it only where sticking is
 * right: the wakee is a worker, and the waker is bound to a single CPU (its
 * affinity at registration held one CPU: a server that "stands for" that
 * CPU). Workers then follow the server that runs them. Servers are never
 * moved, and a waker that is not bound gives no hint: with unbound
 * servers, pinning workers to wherever their server happened to run lets
 * the kernel's wake-affine placement pull servers and workers onto one CPU
 * (measured: all workers of the demo ended up on CPU 1, and utilisation
 * fell from ~95% to ~50%). Pin servers one per CPU, before registering
 * them, to get the hint's benefit.
 * UMCG_TUNE_CURRENT_CPU_HINT=0 turns this off (bench/ measures both).
 */
#include <errno.h>
#include <sched.h>

#include "detect/detect.h"
#include "detect/interpose.h"
#include "kern/kern.h"
#include "util/util.h"

_Atomic int umcg__current_cpu_hint = 1;

UMCG_EXPORT int umcg_tune(enum umcg_tunable what, long value)
{
	switch (what) {
	case UMCG_TUNE_CURRENT_CPU_HINT:
		if (value != 0 && value != 1)
			break;
		atomic_store_explicit(&umcg__current_cpu_hint, (int)value, memory_order_relaxed);
		return 0;
	case UMCG_TUNE_DETECT:
		if (value != 0 && value != 1)
			break;
		atomic_store_explicit(&umcg__detect_default, (int)value, memory_order_relaxed);
		return 0;
	case UMCG_TUNE_INTERPOSE:
		if (value != 0 && value != 1)
			break;
		atomic_store_explicit(&umcg__interpose_on, (int)value, memory_order_relaxed);
		return 0;
	}
	errno = EINVAL;
	return -1;
}

void umcg__set_allowed(struct umcg_ktask *k, const cpu_set_t *set)
{
	for (int w = 0; w < CPU_SETSIZE / 64; w++) {
		uint64_t bits = 0;
		for (int b = 0; b < 64; b++)
			if (CPU_ISSET(w * 64 + b, set))
				bits |= 1ull << b;
		atomic_store_explicit(&k->allowed[w], bits, memory_order_relaxed);
	}
}

static void get_allowed(struct umcg_ktask *k, cpu_set_t *set)
{
	CPU_ZERO(set);
	for (int w = 0; w < CPU_SETSIZE / 64; w++) {
		uint64_t bits = atomic_load_explicit(&k->allowed[w], memory_order_relaxed);
		for (int b = 0; bits && b < 64; b++)
			if (bits & (1ull << b))
				CPU_SET(w * 64 + b, set);
	}
}

static bool cpu_allowed(struct umcg_ktask *k, int cpu)
{
	return atomic_load_explicit(&k->allowed[cpu / 64], memory_order_relaxed) &
	       (1ull << (cpu % 64));
}

static void place_on_current_cpu(struct umcg_ktask *k)
{
	struct umcg_ktask *waker = umcg__current();
	if (!waker || !atomic_load_explicit(&waker->bound, memory_order_relaxed))
		return;
	int cpu = sched_getcpu(); /* vDSO / rseq: no syscall */
	if (cpu < 0 || cpu >= CPU_SETSIZE || !cpu_allowed(k, cpu))
		return;
	if (atomic_load_explicit(&k->pinned_cpu, memory_order_relaxed) == cpu)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Failure (thread gone, cpuset changed) only loses the hint. */
	umcg__stats.setaffinity++;
	if (sched_setaffinity((pid_t)atomic_load_explicit(&k->tid, memory_order_relaxed),
			      sizeof set, &set) == 0)
		atomic_store_explicit(&k->pinned_cpu, cpu, memory_order_relaxed);
}

void umcg__unpin(struct umcg_ktask *k)
{
	if (atomic_exchange_explicit(&k->pinned_cpu, -1, memory_order_relaxed) < 0)
		return;
	cpu_set_t set;
	get_allowed(k, &set);
	umcg__stats.setaffinity++;
	sched_setaffinity((pid_t)atomic_load_explicit(&k->tid, memory_order_relaxed), sizeof set,
			  &set);
}

void umcg__ttwu(struct umcg_ktask *k, bool current_cpu)
{
	if (umcg__on_kernel()) {
		umcg__kwake(atomic_load_explicit(&k->tid, memory_order_relaxed), current_cpu);
		return;
	}
	if (atomic_load_explicit(&umcg__current_cpu_hint, memory_order_relaxed)) {
		if (current_cpu && atomic_load_explicit(&k->worker, memory_order_relaxed))
			place_on_current_cpu(k);
		else
			umcg__unpin(k);
	}
	/* seq_cst RMW, then seq_cst load of `sleeping`: see kern.h. */
	atomic_fetch_add_explicit(&k->wake_seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&k->sleeping, memory_order_seq_cst))
		umcg__futex_wake(&k->wake_seq, 1);
}

/*
 * EINTR: v0.3 returns EINTR whenever a signal interrupts the wait. A futex
 * wait without a deadline is restarted transparently after an SA_RESTART
 * handler, one with a deadline never is; so an interruptible wait always
 * passes a deadline (2^31 s after boot when the caller gave none), and any
 * handler makes umcg_wait() fail with EINTR, as in v0.3 - unless the state
 * is RUNNING by then: v0.3 checks RUNNING before it checks for a signal, so
 * a task that was made RUNNING (even without a wake-up, T5) returns 0.
 */
#define FAR_DEADLINE_NS (2147483647ull * 1000000000ull)

/*
 * A server whose context switch ran a detected worker w also looks for its
 * worker's sleep itself (umcg__det_check, the watcher's T6; watcher.c),
 * besides its watcher - w's, or that of the worker w switched to (the
 * server's supervise slot):
 *   - before each futex sleep. When the worker it woke preempted it (the
 *     woken thread often does, before the server's FUTEX_WAIT) and then went
 *     to sleep, the server resumes only to sleep in turn: it finds the sleep
 *     in the ring and takes the worker at once, instead of sleeping, letting
 *     the watcher run and being woken by it (two switches and a futex wake
 *     saved). The check comes before `sleeping` is set, so a take-over that
 *     makes us RUNNING costs no futex wake of our own word.
 *   - every CHECK_MIN_NS doubling to CHECK_MAX_NS while it sleeps (a futex
 *     timeout), so that a sleep is reported even when the SCHED_IDLE watcher
 *     does not get the CPU (other processes keep it busy: a watcher can starve
 *     for seconds) or runs on another CPU than the worker (unpinned servers).
 *     A worker that computes for long costs its server one wake-up per
 *     CHECK_MAX_NS.
 * Several threads may run umcg__det_check() on one worker (the watcher, this
 * server, the watcher of a server that ran it before): the CAS on det picks
 * one (takeover.c).
 */
enum { CHECK_MIN_NS = 1000000, CHECK_MAX_NS = 8000000 };

int umcg__idle_loop_watch(struct umcg_ktask *k, uint64_t abs_timeout, bool interruptible,
			  struct umcg_ktask *w)
{
	struct umcg_task *self = atomic_load_explicit(&k->self, memory_order_relaxed);
	uint64_t deadline = abs_timeout ? abs_timeout : interruptible ? FAR_DEADLINE_NS : 0;
	uint64_t check_ns = CHECK_MIN_NS, next_check = w ? umcg_now_ns() + check_ns : 0;
	int ret = 0;
	for (;;) {
		/*
		 * Our worker now: a worker-to-worker switch re-points supervise
		 * (release, by the switching worker: acquire here), a take-over
		 * clears it.
		 */
		struct umcg_ktask *cur =
		    w ? atomic_load_explicit(&k->supervise, memory_order_acquire) : NULL;
		if (cur)
			umcg__det_check(k, cur); /* may make us RUNNING: T6 for our worker */
		atomic_store_explicit(&k->sleeping, 1, memory_order_seq_cst);
		uint32_t seq = atomic_load_explicit(&k->wake_seq, memory_order_seq_cst);
		uint32_t st = umcg__load_u32(&self->state);
		if ((st & UMCG_TF_STATE_MASK) == UMCG_TASK_RUNNING)
			break;
		uint64_t until = deadline;
		bool timed_check = w && (!until || next_check < until);
		if (timed_check)
			until = next_check;
		int r = umcg__futex_wait(&k->wake_seq, seq, until);
		if (r == -ETIMEDOUT && timed_check) {
			check_ns = check_ns * 2 > CHECK_MAX_NS ? CHECK_MAX_NS : check_ns * 2;
			next_check = umcg_now_ns() + check_ns;
			continue; /* look at the worker's ring again */
		}
		if (r == -ETIMEDOUT && abs_timeout) {
			/* A wake that raced the deadline wins. */
			st = umcg__load_u32(&self->state);
			if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
				ret = -ETIMEDOUT;
			break;
		}
		if (r == -EINTR && interruptible) {
			/*
			 * RUNNING before EINTR (v0.3's order): a task made RUNNING
			 * without a wake-up (T5) that then gets a signal was
			 * woken, not interrupted. The acquire load pairs with the
			 * waker's release store/CAS of the state word.
			 */
			st = umcg__load_u32(&self->state);
			if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
				ret = -EINTR;
			break;
		}
		/* 0, EAGAIN (wake_seq moved), EINTR when not interruptible: re-check */
	}
	atomic_store_explicit(&k->sleeping, 0, memory_order_relaxed);
	return ret;
}

int umcg__idle_loop(struct umcg_ktask *k, uint64_t abs_timeout, bool interruptible)
{
	return umcg__idle_loop_watch(k, abs_timeout, interruptible, NULL);
}
