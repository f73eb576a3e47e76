/* SPDX-License-Identifier: MIT */
/*
 * takeover.c - T6 done by the server for a worker that went to sleep where
 * no wrapper saw it, and the worker's side of that hand-over.
 *
 * The detection word and who may change it are described in detect.h.
 * Who runs umcg__det_check(): the watcher of the server that runs the
 * worker, that server itself before it sleeps (kern/sched.c), and a
 * watcher whose server ran the worker before (supervise is not cleared
 * when a run ends). Checkers share nothing but det (CAS) and the ring
 * (read under det_lock); the model runs two at once (WATCHERS=2).
 * The decision (spin/detect.pml, docs/spin.md):
 *   - The watcher loads det, reads the ring, and only for USER/SYSCALL
 *     with "slept" as the newest record CASes det to TAKING. The CAS alone
 *     has ABA (the worker returned from the call that slept and entered
 *     another, SYSCALL again; or, raw, it woke and sleeps no more), so the
 *     watcher looks at the ring once more after the CAS (for a raw sleep,
 *     after arming the alarm): the newest record must still be a sleep,
 *     else it gives up and stores det back. The model verifies this with
 *     the ring read before or after the det load; without the second look,
 *     or with the worker made BLOCKED before its alarm is armed, it finds a
 *     worker running user code while BLOCKED.
 *   - The take-over CAS (USER/SYSCALL -> TAKING) and the worker's CASes on
 *     det are acq_rel on one word: they are totally ordered, and whoever
 *     comes second sees the first one's effects.
 *   - The kernel publishes a record (data_head, release) before the
 *     switch it describes completes; our acquire load of data_head sees
 *     every record of a switch that happened before it.
 *   - The server makes the worker BLOCKED (CAS, acq_rel) before it stores
 *     TAKEN_* (release); a worker that sees TAKEN_* (acquire) sees BLOCKED,
 *     so its wake point queues it (T7) and does not take the RUNNING branch.
 *   - A worker that finds det back at SYSCALL/USER after waiting out
 *     TAKING retries its own CAS: the watcher gave up.
 */
#include <errno.h>
#include <sched.h>

#include "detect/detect.h"
#include "util/util.h"

/* The state change of T6 for w; false if w is LOCKED or not RUNNING. */
static bool make_blocked(struct umcg_task *t)
{
	uint32_t st = umcg__load_u32(&t->state);
	for (;;) {
		if ((st & UMCG_TF_LOCKED) || (st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
			return false;
		uint32_t nst = (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_BLOCKED;
		if (__atomic_compare_exchange_n(&t->state, &st, nst, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
	}
}

/* The watcher gives the worker back the det value it took it from. */
static bool give_up(struct umcg_ktask *w, int d, _Atomic uint64_t *count)
{
	atomic_store_explicit(&w->det, d, memory_order_release);
	if (count)
		atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
	return false;
}

bool umcg__det_check(struct umcg_ktask *server, struct umcg_ktask *w)
{
	int d = atomic_load_explicit(&w->det, memory_order_acquire);
	int last = umcg__det_ring_last(w);
	if ((d != DET_USER && d != DET_SYSCALL) || last != DET_LAST_SLEEP)
		return false;
	if (!atomic_compare_exchange_strong_explicit(&w->det, &d, DET_TAKING, memory_order_acq_rel,
						     memory_order_acquire))
		return false; /* the worker moved first: returned, or entered libumcg */
	struct umcg_task *t = atomic_load_explicit(&w->self, memory_order_relaxed);
	bool raw = d == DET_USER;
	/*
	 * A raw sleep ends with no wrapper to park the worker: its switch-in
	 * alarm must be armed before the worker can be BLOCKED and wake, or it
	 * would run user code while BLOCKED. So: arm, then look again; if it
	 * was switched in meanwhile, the sleep is over and we do not take it
	 * (a signal its switch-in may have raised finds det USER: ignored).
	 * After the second look, a wake-up raises the signal, and the handler
	 * waits for TAKING to end. Without an alarm (fd or memory limit) the
	 * worker is not taken: the block goes unreported, as without
	 * detection.
	 */
	if (raw) {
		/*
		 * Open first (the first time costs ~30 us) and look once more
		 * right before enabling: a sleep that ended meanwhile is given
		 * up before an enabled alarm could record the worker's *next*
		 * switch-out, whose signal would interrupt that next sleep
		 * (EINTR; docs/detection.md, section 2). This narrows that
		 * window to the enabling ioctl; the look after arming below is
		 * the one correctness rests on.
		 */
		if (!umcg__det_alarm_open(w))
			return give_up(w, d, &umcg__det_counts.no_alarm);
		if (umcg__det_ring_last(w) != DET_LAST_SLEEP)
			return give_up(w, d, &umcg__det_counts.woke_early);
		if (!umcg__det_alarm_arm(w))
			return give_up(w, d, &umcg__det_counts.no_alarm);
		if (umcg__det_ring_last(w) != DET_LAST_SLEEP) {
			umcg__det_alarm_disarm(w);
			return give_up(w, d, &umcg__det_counts.woke_early);
		}
	}
	/*
	 * The CAS alone has ABA: the worker may have returned from the call
	 * that slept and entered another one (SYSCALL again) that has not
	 * slept. The ring after the CAS tells: the newest record must still
	 * be a sleep (for a raw sleep this look comes after arming, above).
	 */
	if (!raw && umcg__det_ring_last(w) != DET_LAST_SLEEP)
		return give_up(w, d, &umcg__det_counts.woke_early);
	if (!t || !make_blocked(t)) {
		if (raw)
			umcg__det_alarm_disarm(w);
		return give_up(w, d, &umcg__det_counts.not_running);
	}
	/*
	 * The server to wake is read while the worker is still TAKING: once
	 * TAKEN_* is published the worker may park, be run by another server
	 * and have a new server_tid, and that server must not be woken in
	 * place of the one that ran it (found as a server left IDLE forever).
	 */
	uint32_t stid = umcg__load_u32(&t->server_tid);
	if (atomic_load_explicit(&server->supervise, memory_order_relaxed) == w)
		atomic_store_explicit(&server->supervise, NULL, memory_order_relaxed);
	/* counted first: the worker may park, run and finish before our next step */
	atomic_fetch_add_explicit(raw ? &umcg__det_counts.taken_raw : &umcg__det_counts.taken_sys,
				  1, memory_order_relaxed);
	atomic_store_explicit(&w->det, raw ? DET_TAKEN_RAW : DET_TAKEN_SYS, memory_order_release);

	/* T6: wake the worker's server (CAS IDLE -> RUNNING, ttwu) */
	if (stid)
		umcg__wake_server(stid, false);
	return true;
}

void umcg__det_supervise(struct umcg_ktask *w)
{
	struct umcg_task *t = atomic_load_explicit(&w->self, memory_order_relaxed);
	if (!t || atomic_load_explicit(&w->det, memory_order_relaxed) == DET_OFF)
		return;
	struct umcg_ktask *sk = umcg__registry_lookup(umcg__load_u32(&t->server_tid));
	if (!sk || atomic_load_explicit(&sk->worker, memory_order_relaxed))
		return;
	atomic_store_explicit(&sk->supervise, w, memory_order_release);
	umcg__watch(sk);
}

/* ---- the worker's side ------------------------------------------------------ */

/*
 * Wait out a server's TAKING (a few instructions, unless the watcher was
 * preempted). The watcher is SCHED_IDLE and usually on our CPU: spinning
 * or sched_yield() would starve it (seen: milliseconds of CPU burnt here
 * under load), so after a short spin we sleep in 50 us steps (a timed
 * futex wait on det: it returns at once if det changed) to give it the
 * CPU. The watcher does not wake us: the step bounds the delay, and the
 * case is rare (the worker woke while its sleep was being taken). Such a
 * sleep is seen by the watcher as a sleep of ours; it may then complete
 * the take, and we park (we did sleep in the call it was taking).
 */
static int settle(struct umcg_ktask *k)
{
	int d;
	for (int spins = 0;
	     (d = atomic_load_explicit(&k->det, memory_order_acquire)) == DET_TAKING;)
		if (++spins > 64)
			umcg__futex_wait((_Atomic uint32_t *)&k->det, (uint32_t)DET_TAKING,
					 umcg_now_ns() + 50000);
	return d;
}

/*
 * A server took us (TAKEN_*): we are BLOCKED; run T7 (inside libumcg: det
 * LIB) and come back RUNNING, det USER (release: see the top).
 */
static void park_taken(struct umcg_ktask *k, int d)
{
	/*
	 * Claim the park: our own alarm signal can arrive between the caller
	 * seeing TAKEN_* and here, and its handler parks us first (then det
	 * is USER again and we must not park a second time), or it arrives
	 * after this CAS and finds LIB. A CAS on our own word is atomic with
	 * respect to our signal handlers.
	 */
	if (!atomic_compare_exchange_strong_explicit(&k->det, &d, DET_LIB, memory_order_acq_rel,
						     memory_order_acquire))
		return;
	if (d == DET_TAKEN_RAW)
		umcg__det_alarm_disarm(k);
	atomic_fetch_add_explicit(&umcg__det_counts.parks, 1, memory_order_relaxed);
	umcg__wake_point(k);
	atomic_store_explicit(&k->det, DET_USER, memory_order_release);
}

int umcg__det_lib_enter(struct umcg_ktask *k)
{
	for (;;) {
		int d = settle(k);
		if (d == DET_OFF || d == DET_LIB)
			return d;
		if (d == DET_TAKEN_SYS || d == DET_TAKEN_RAW) {
			park_taken(k, d);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			&k->det, &d, DET_LIB, memory_order_acq_rel, memory_order_acquire))
			return d;
	}
}

void umcg__det_lib_leave(struct umcg_ktask *k, int prev)
{
	if (prev == DET_OFF || prev == DET_LIB)
		return;
	/* release: the switch-in record of our last sleep is published (see top) */
	atomic_store_explicit(&k->det, prev, memory_order_release);
}

int umcg__det_sys_enter(struct umcg_ktask *k)
{
	for (;;) {
		int d = settle(k);
		if (d == DET_OFF)
			return DET_CALL_EAGER;
		if (d == DET_TAKEN_SYS || d == DET_TAKEN_RAW) {
			park_taken(k, d);
			continue;
		}
		if (d != DET_USER)
			return DET_CALL_PLAIN; /* nested in a wrapper, or inside libumcg */
		if (atomic_compare_exchange_weak_explicit(
			&k->det, &d, DET_SYSCALL, memory_order_acq_rel, memory_order_acquire))
			return DET_CALL_LAZY;
	}
}

void umcg__det_sys_leave(struct umcg_ktask *k)
{
	for (;;) {
		int d = DET_SYSCALL;
		if (atomic_compare_exchange_strong_explicit(
			&k->det, &d, DET_USER, memory_order_acq_rel, memory_order_acquire))
			return; /* the fast path: the call did not sleep, or nobody noticed */
		d = settle(k);
		if (d == DET_TAKEN_SYS || d == DET_TAKEN_RAW) {
			park_taken(k, d); /* the server ran while we slept */
			return;
		}
		/*
		 * USER: a signal handler that ran during our call (it woke us)
		 * found the take-over and parked us already (a wrapper or an
		 * interposed call in the handler, umcg__det_sys_enter); the
		 * rest of our call ran unmarked. Nothing left to do.
		 */
		if (d != DET_SYSCALL)
			return;
		/* SYSCALL again: the watcher looked, saw the sleep was over, gave up */
	}
}

void umcg__det_signal(struct umcg_ktask *k)
{
	if (k->nopark) {
		/* inside a libumcg section: park when it ends (umcg__nopark_leave) */
		atomic_store_explicit(&k->park_pending, true, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&umcg__det_counts.signals, 1, memory_order_relaxed);
	int d = settle(k);
	if (d != DET_TAKEN_RAW)
		return; /* late or repeated signal: nothing to do */
	park_taken(k, d);
}

void umcg__nopark_leave_slow(struct umcg_ktask *k)
{
	if (atomic_exchange_explicit(&k->park_pending, false, memory_order_relaxed))
		umcg__det_signal(k);
}
