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
 *   server is put back RUNNING; a worker is treated as woken (queued on
 *   its idle-workers list, an idle server woken) and returns ETIMEDOUT
 *   once a server runs it. A wake that races the deadline wins (0).
 *   EFAULT cannot be detected in user space: the struct must stay mapped
 *   while registered.
 */
#include <errno.h>

#include "detect/detect.h"
#include "kern/kern.h"

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

static int server_wait(struct umcg_ktask *k, struct umcg_task *t, struct umcg_ktask *nk,
		       uint64_t abs_timeout)
{
	if (nk) {
		umcg__ttwu(nk, true);
		if (atomic_load_explicit(&nk->worker, memory_order_relaxed))
			umcg__det_supervise(nk); /* sleep on its perf event, if it has one */
	}
	int r = umcg__idle_loop(k, abs_timeout, true);
	if (r == -ETIMEDOUT)
		return server_timeout_restore(t) ? -ETIMEDOUT : 0;
	return r;
}

static int worker_wait(struct umcg_ktask *k, struct umcg_task *t, struct umcg_ktask *nk,
		       uint64_t abs_timeout)
{
	if (nk) {
		umcg__ttwu(nk, true);
		if (atomic_load_explicit(&nk->worker, memory_order_relaxed))
			umcg__det_supervise(nk); /* a worker-to-worker switch */
	}
	clear_locked(t);
	int r = umcg__idle_loop(k, abs_timeout, true);
	if (r == -ETIMEDOUT) {
		/* v0.4+: a worker's timeout is a wake-up event */
		umcg__wake_point(k);
		return -ETIMEDOUT;
	}
	if (r == 0)
		umcg__wake_point(k); /* T9: RUNNING without a server gets queued */
	return r;
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
	if (!k->worker)
		return server_wait(k, t, nk, abs_timeout);
	int det = umcg__det_lib_enter(k); /* our own sleeps are not blocks */
	int r = worker_wait(k, t, nk, abs_timeout);
	umcg__det_lib_leave(k, det);
	return r;
}

UMCG_EXPORT int umcg_wait(uint32_t flags, uint64_t abs_timeout)
{
	int r = do_wait(flags, abs_timeout);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

UMCG_EXPORT int umcg_block_point(void)
{
	struct umcg_ktask *k = umcg__current();
	return k ? umcg__block_point(k) : 0;
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
	errno = e;
	return r;
}
