/* SPDX-License-Identifier: MIT */
/*
 * wait.c - umcg_wait() (spec 6.2) and the public block/wake points.
 *
 * Validation order, with our documented deviations marked (*):
 *   1. caller not registered -> EINVAL.
 *   2. read own next_tid.
 *   3. WAKE_ONLY: next_tid == 0 or abs_timeout != 0 -> EINVAL; flag bits
 *      other than WF_CURRENT_CPU -> EINVAL; next_tid not a registered UMCG
 *      task -> ESRCH; wake it (on this CPU with WF_CURRENT_CPU); return 0.
 *      The caller's state is neither read nor changed.
 *   4. (*) without WAKE_ONLY any flag bit -> EINVAL (v0.3's code ignored
 *      them; its documentation says WF_CURRENT_CPU is only valid with
 *      WAKE_ONLY).
 *   5. worker with next_tid == 0: next_tid := own server_tid.
 *   6. next_tid != 0: (*) not a registered UMCG task -> ESRCH (v0.3 woke
 *      any thread; we can only wake UMCG tasks). Wake it on this CPU, then
 *      the idle loop.
 *   7. the idle loop (workers: LOCKED cleared first) until RUNNING.
 *   Results: 0; EINTR (a signal handler ran; the state is unchanged:
 *   still IDLE); (*) ETIMEDOUT (v0.3 refused timeouts with EOPNOTSUPP; as
 *   in v0.4+, abs_timeout is an absolute CLOCK_MONOTONIC time in ns): a
 *   server is put back RUNNING; a worker claims itself (IDLE -> IDLE|TIMEDOUT,
 *   see worker_timeout_claim) and is then treated as woken (queued on its
 *   idle-workers list, an idle server woken) and returns ETIMEDOUT once a
 *   server runs it. A wake that races the deadline wins (0): the state
 *   was RUNNING before the claim.
 *   EFAULT cannot be detected in user space: the struct must stay mapped
 *   while registered.
 */
#include <errno.h>

#include "detect/detect.h"
#include "kern/kern.h"
#include "lists/lists.h"

static void clear_locked(struct umcg_task *t)
{
	uint32_t st = umcg__load_u32(&t->state);
	while ((st & UMCG_TF_LOCKED) &&
	       !__atomic_compare_exchange_n(&t->state, &st, st & ~UMCG_TF_LOCKED, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

/* Put a timed-out server back to RUNNING; false if a wake beat us to it. */
static bool server_timeout_restore(struct umcg_task *t)
{
	uint32_t st = umcg__load_u32(&t->state);
	for (;;) {
		if ((st & UMCG_TF_STATE_MASK) == UMCG_TASK_RUNNING)
			return false;
		uint32_t nst = (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING;
		if (__atomic_compare_exchange_n(&t->state, &st, nst, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
	}
}

/*
 * A worker's deadline against a direct wake-up (T4: a server CASes the
 * parked worker IDLE -> RUNNING, then wakes it). Exactly one of "woken
 * directly" and "timed out and queued" must happen (spin/worker_timeout.pml).
 *
 * Claim: the timed-out worker CASes its own state IDLE -> IDLE|TIMEDOUT
 * (flag and user bits kept). A direct waker CASes the exact word it left
 * the worker in (IDLE, flag clear), so the two CASes cannot both succeed
 * on the same IDLE word: if the waker's comes first, ours sees RUNNING and
 * the worker was woken (umcg_wait() returns 0); if ours comes first, the
 * waker's fails and it sees IDLE|TIMEDOUT: the worker is no longer its to
 * run. The flag stays set while the worker is queued and until a server
 * runs it (a popper stores RUNNING, or CASes from the word it read), so a
 * waker that comes later still fails: a transient claim (RUNNING, then
 * IDLE on the list) would let it take a queued worker (the model's
 * TRANSIENT=1). The v0.3 ABI has no other word the waker's CAS looks at,
 * so the marker has to be in the state word; library-private memory
 * cannot make a user-space CAS fail.
 * Orderings: the claim CAS is acq_rel; the push after it is a seq_cst CAS
 * on the list head, so a popper (acquire exchange) sees the flag.
 */
static bool worker_timeout_claim(struct umcg_task *t)
{
	uint32_t st = umcg__load_u32(&t->state);
	for (;;) {
		uint32_t low = st & UMCG_TF_STATE_MASK;
		if (low == UMCG_TASK_RUNNING)
			return false; /* a wake-up won the race */
		if (low != UMCG_TASK_IDLE)
			umcg__die("waiting worker is in state %#x, neither IDLE nor RUNNING", st);
		if (__atomic_compare_exchange_n(&t->state, &st, st | UMCG_TF_TIMEDOUT, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
	}
}

/*
 * The claimed worker is treated as woken (v0.4+): queue it, wake an idle
 * server, sleep (not interruptibly) until a server runs it, as the wake
 * point does.
 */
static void worker_timeout_queue(struct umcg_ktask *k, struct umcg_task *t)
{
	uint64_t head = umcg__load_u64(&t->idle_workers_ptr);
	if (!head)
		umcg__die("worker has no idle_workers_ptr");
	umcg__iwl_push((uint64_t *)(uintptr_t)head, t); /* seq_cst: see hooks.c */
	umcg__wake_idle_server(t);
	umcg__idle_loop(k, 0, false);
	/* a server that CASed only the state byte kept our flag: drop it */
	__atomic_fetch_and(&t->state, ~UMCG_TF_TIMEDOUT, __ATOMIC_ACQ_REL);
}

/*
 * A worker's sleep. A worker sleeping in umcg_wait() is parked, i.e.
 * accounted for, like one at a wake point: hook_depth is >= 1 while it
 * sleeps (and, after its deadline, while it claims itself, is queued and
 * waits to be run), so the block and wake points of a wrapped call in a
 * signal handler that runs meanwhile are a nested pair and do nothing.
 * Otherwise that handler's wake point would queue the worker on its
 * idle-workers list while it is parked with its server (on the list and
 * directly wakeable at once: the double booking of issue 6 again), or push
 * it a second time between our claim and our push. hook_depth is only
 * touched by the task and its handlers (see kern.h).
 */
static int worker_sleep(struct umcg_ktask *k, struct umcg_task *t, uint64_t abs_timeout)
{
	int depth = atomic_load(&k->hook_depth);
	if (!depth)
		atomic_store(&k->hook_depth, 1);
	clear_locked(t);
	int r = umcg__idle_loop(k, abs_timeout, true);
	if (r == -ETIMEDOUT) {
		/* v0.4+: a worker's timeout is a wake-up event, once claimed */
		if (worker_timeout_claim(t))
			worker_timeout_queue(k, t);
		else
			r = 0; /* a wake-up won the race */
	}
	atomic_store(&k->hook_depth, depth);
	if (r != -EINTR)
		umcg__wake_point(k); /* T9: RUNNING without a server gets queued */
	return r;
}

/*
 * The context switch of T4: wake nk on our CPU; if it is a detected
 * worker, its server's watcher now looks at it (for a worker-to-worker
 * switch, the server that sleeps is not us).
 */
static void switch_to(struct umcg_ktask *nk)
{
	umcg__ttwu(nk, true);
	if (atomic_load_explicit(&nk->worker, memory_order_relaxed))
		umcg__det_supervise(nk);
}

static int do_wait(uint32_t flags, uint64_t abs_timeout)
{
	struct umcg_ktask *k = umcg__current();
	if (!k)
		return -EINVAL;
	struct umcg_task *t = atomic_load_explicit(&k->self, memory_order_relaxed);
	uint32_t next = umcg__load_u32(&t->next_tid);

	if (flags & UMCG_WAIT_WAKE_ONLY) {
		if (!next || abs_timeout)
			return -EINVAL;
		if (flags & ~(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU))
			return -EINVAL;
		struct umcg_ktask *nk = umcg__registry_lookup(next);
		if (!nk)
			return -ESRCH;
		umcg__ttwu(nk, flags & UMCG_WAIT_WF_CURRENT_CPU);
		return 0;
	}
	if (flags)
		return -EINVAL;
	if (!next && k->worker)
		next = umcg__load_u32(&t->server_tid);
	struct umcg_ktask *nk = NULL;
	if (next) {
		nk = umcg__registry_lookup(next);
		if (!nk)
			return -ESRCH;
	}
	if (k->worker) {
		int det = umcg__det_lib_enter(k); /* our own sleeps are not blocks */
		if (nk)
			switch_to(nk);
		int r = worker_sleep(k, t, abs_timeout);
		umcg__det_lib_leave(k, det);
		return r;
	}
	struct umcg_ktask *watch = NULL;
	if (nk) {
		switch_to(nk);
		/* we run a detected worker (its watcher is ours): look for its sleep too */
		if (atomic_load_explicit(&k->supervise, memory_order_relaxed) == nk)
			watch = nk;
	}
	int r = umcg__idle_loop_watch(k, abs_timeout, true, watch);
	if (r == -ETIMEDOUT && !server_timeout_restore(t))
		r = 0; /* a wake-up won the race */
	return r;
}

UMCG_EXPORT int umcg_wait(uint32_t flags, uint64_t abs_timeout)
{
	int b = umcg__backend();
	int r = b == UMCG__B_KERNEL ? (int)umcg__kwait(flags, abs_timeout)
		: b == UMCG__B_NONE ? -ENOSYS
				    : do_wait(flags, abs_timeout);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

/*
 * The public points on a detected worker. A worker that said it blocks is
 * BLOCKED and its server runs; the sleep that follows is its own business
 * until its wake point, so detection must not race for it: the block
 * point enters a libumcg section (det LIB, which the watcher leaves alone
 * and in which interposed calls are plain) and keeps it until the wake
 * point that closes the pair. Before, the watcher and the server saw that
 * sleep as a raw one: they took det, armed the switch-in alarm and gave up
 * only on finding the worker BLOCKED (test_detect
 * explicit_block_point_keeps_detection_away: 726 such attempts for 500
 * sleeps), and a worker that woke meanwhile waited in settle() for its
 * watcher, which is SCHED_IDLE and starves beside busy threads.
 * det_explicit is touched by the thread and its handlers only; a nested
 * pair (a handler's) finds det LIB and changes nothing, and only the wake
 * point that brings hook_depth back to 0 ends the section.
 */
UMCG_EXPORT int umcg_block_point(void)
{
	struct umcg_ktask *k = umcg__current();
	if (!k)
		return 0;
	int e = errno;
	int det = umcg__det_lib_enter(k); /* parks first if a take-over raced us */
	int r = umcg__block_point(k);
	if (r && det != DET_OFF && det != DET_LIB)
		k->det_explicit = det; /* LIB until the wake point */
	else
		umcg__det_lib_leave(k, det);
	errno = e;
	return r;
}

UMCG_EXPORT int umcg_wake_point(void)
{
	struct umcg_ktask *k = umcg__current();
	if (!k)
		return 0;
	int e = errno;
	int det = umcg__det_lib_enter(k);
	int r = umcg__wake_point(k);
	umcg__det_lib_leave(k, det);
	int prev = k->det_explicit;
	if (prev && atomic_load(&k->hook_depth) == 0) {
		k->det_explicit = 0;
		umcg__det_lib_leave(k, prev); /* det back to what the block point found */
	}
	errno = e;
	return r;
}
