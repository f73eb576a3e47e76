/* SPDX-License-Identifier: MIT */
/*
 * test_core.c - spec 9.2 (the v0.1 umcg_core_test) ported to the v0.3
 * model, with "basic tasks": servers without workers that only wake, wait
 * and context-switch among themselves.
 *
 * v0.1 had queued wake-ups (a wake before the wait was remembered). v0.3
 * has none: the state word is the wake-up. A waiter writes IDLE before it
 * calls umcg_wait(); a waker CASes the target IDLE -> RUNNING and then
 * makes the target's tid its next_tid for umcg_wait(). If the CAS finds
 * the target still RUNNING, the target has not gone IDLE yet, and by the
 * lost-wakeup rule of spec 5.3 the waker retries (the library never
 * spins). A lost wake-up hangs these tests; an extra one breaks the counts.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"

static void register_basic_task(struct umcg_task *t)
{
	memset(t, 0, sizeof *t);
	t->state = UMCG_TASK_RUNNING;
	t->api_version = UMCG_API_VERSION;
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, t), 0);
	t->server_tid = umcg_gettid();
}

/*
 * Back off in a spin loop: spin, then yield, then sleep a little, so that
 * a spinner does not starve the thread it waits for on a loaded machine.
 */
static void backoff(unsigned n)
{
	if (n < 64)
		__atomic_signal_fence(__ATOMIC_SEQ_CST); /* cheap spin */
	else if (n < 256)
		sched_yield();
	else
		usleep(20);
}

/* Waker side of the protocol: IDLE -> RUNNING, retrying while RUNNING. */
static void make_running(struct umcg_task *t)
{
	for (unsigned n = 0;; n++) {
		uint32_t exp = UMCG_TASK_IDLE;
		if (umcg_state_cas(t, &exp, UMCG_TASK_RUNNING))
			return;
		/* anything but "not IDLE yet" is a broken protocol */
		CHECK_EQ(exp, UMCG_TASK_RUNNING);
		backoff(n);
	}
}

/* Wake `t` (tid `tid`) without sleeping. */
static void wake(struct umcg_task *self, struct umcg_task *t, uint32_t tid)
{
	make_running(t);
	self->next_tid = tid;
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
	self->next_tid = 0;
}

/* ---- (a) wake/wait race (spec 9.2 umcg_wake_wait) ------------------------ */

#define WW_ITERS 10000 /* the spec'd number, not scaled */

static struct umcg_task ww_main_task, ww_waiter_task;
static _Atomic uint32_t ww_waiter_tid;
static _Atomic int ww_waiting, ww_stop, ww_main_done;
static long ww_waits;
static bool ww_jitter;

static void *ww_waiter(void *arg)
{
	(void)arg;
	register_basic_task(&ww_waiter_task);
	atomic_store(&ww_waiter_tid, umcg_gettid());
	for (long i = 0;; i++) {
		atomic_store(&ww_waiting, 1);
		if (i % 5 == 0)
			usleep(1); /* provoke the waker into finding us still RUNNING */
		umcg_state_store(&ww_waiter_task, UMCG_TASK_IDLE);
		if (ww_jitter) {
			/*
			 * A varying delay between going IDLE and sleeping, so the
			 * waker's CAS + wake lands at every point of our way into
			 * the idle loop, including between its state check and
			 * its sleep (where a lost wake-up would hide).
			 */
			for (volatile unsigned j = (unsigned)(i * 7919) % 600; j; j--)
				;
		}
		CHECK_EQ(umcg_wait(0, 0), 0);
		/* only a real wake returns: we were made RUNNING */
		CHECK_EQ(umcg_state_load(&ww_waiter_task), UMCG_TASK_RUNNING);
		ww_waits++;
		if (atomic_load(&ww_stop))
			break;
	}
	/* stay registered until the last wake was delivered (else it is ESRCH) */
	while (!atomic_load(&ww_main_done))
		usleep(100);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

static void ww_wait_flag(void)
{
	for (unsigned n = 0; !atomic_exchange(&ww_waiting, 0); n++)
		backoff(n);
}

static void wake_wait_race(long iters, bool jitter)
{
	ww_jitter = jitter;
	register_basic_task(&ww_main_task);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, ww_waiter, NULL), 0);
	while (!atomic_load(&ww_waiter_tid))
		usleep(50);
	uint32_t tid = atomic_load(&ww_waiter_tid);
	long wakes = 0;
	for (long i = 0; i < iters; i++) {
		ww_wait_flag();
		wake(&ww_main_task, &ww_waiter_task, tid);
		wakes++;
	}
	/* The waiter checks `stop` only after a wake, so set it between its
	 * announcing the next wait and our waking it. */
	ww_wait_flag();
	atomic_store(&ww_stop, 1);
	wake(&ww_main_task, &ww_waiter_task, tid);
	wakes++;
	atomic_store(&ww_main_done, 1);
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(wakes, iters + 1);
	/* no lost wake-up (we would hang) and no extra one */
	CHECK_EQ(ww_waits, iters + 1);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
}

TEST_T(wake_wait_race, 170)
{
	wake_wait_race(WW_ITERS, false);
}

/* Not in the spec: the same with jitter, tuned to hit the lost-wake-up window. */
TEST_T(wake_wait_race_jitter, 170)
{
	wake_wait_race(th_scaled(20000, 2000), true);
}

/* ---- (b) ping-pong (spec 9.2, six variants) ------------------------------ */

enum handover { WAKE_WAIT, SWAP };

struct pp_cfg {
	const char *name;
	enum handover ping, pong;
	bool loose;   /* pong does not wait first: it starts with a swap */
	bool payload; /* a syscall on each side every iteration */
};

static struct umcg_task ping_task, pong_task;
static _Atomic uint32_t ping_tid, pong_tid;
static const struct pp_cfg *pp;
static long pp_n;
/* Plain (non-atomic) on purpose: the handovers must order it (tsan checks). */
static long pp_counter;

/*
 * Give the CPU to the peer and sleep until it gives it back. We go IDLE
 * before making the peer RUNNING, so its hand-back (a CAS from IDLE) can
 * never find us RUNNING.
 *   WAKE_WAIT: WAKE_ONLY the peer, then umcg_wait() with next_tid 0.
 *   SWAP:      one umcg_wait() with next_tid = peer (wake it, then sleep).
 */
static void handover(struct umcg_task *self, struct umcg_task *peer, uint32_t peer_tid,
		     enum handover how)
{
	umcg_state_store(self, UMCG_TASK_IDLE);
	make_running(peer);
	self->next_tid = peer_tid;
	if (how == WAKE_WAIT) {
		CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
		self->next_tid = 0;
	}
	CHECK_EQ(umcg_wait(0, 0), 0);
	CHECK_EQ(umcg_state_load(self), UMCG_TASK_RUNNING);
}

static void payload(void)
{
	if (pp->payload)
		(void)syscall(SYS_gettid);
}

static void *pong_main(void *arg)
{
	(void)arg;
	register_basic_task(&pong_task);
	atomic_store(&pong_tid, umcg_gettid());
	const uint32_t ping = atomic_load(&ping_tid);
	if (!pp->loose) {
		/* wait for the first ping */
		umcg_state_store(&pong_task, UMCG_TASK_IDLE);
		CHECK_EQ(umcg_wait(0, 0), 0);
		CHECK_EQ(umcg_state_load(&pong_task), UMCG_TASK_RUNNING);
	}
	for (long i = 0; i < pp_n; i++) {
		if (pp->loose) {
			/*
			 * Uniform swap loop, no initial wait: the first swap's
			 * wake of ping is spurious (ping is RUNNING; nothing to
			 * hand back yet) and harmless; later ones hand back.
			 */
			umcg_state_store(&pong_task, UMCG_TASK_IDLE);
			if (i > 0)
				make_running(&ping_task);
			pong_task.next_tid = ping;
			CHECK_EQ(umcg_wait(0, 0), 0);
			CHECK_EQ(umcg_state_load(&pong_task), UMCG_TASK_RUNNING);
		}
		CHECK_EQ(pp_counter, 2 * i + 1);
		pp_counter = 2 * i + 2;
		payload();
		if (pp->loose)
			continue;
		if (i == pp_n - 1)
			break;
		handover(&pong_task, &ping_task, ping, pp->pong);
	}
	/* the last hand-back: wake ping, do not wait */
	wake(&pong_task, &ping_task, ping);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

static void ping_pong(const struct pp_cfg *cfg)
{
	pp = cfg;
	pp_n = th_scaled(100000, 2000);
	pp_counter = 0;
	register_basic_task(&ping_task);
	atomic_store(&ping_tid, umcg_gettid());
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, pong_main, NULL), 0);
	/* pong's tid; no other start-up handshake (make_running waits for IDLE) */
	while (!atomic_load(&pong_tid))
		usleep(50);
	const uint32_t pong = atomic_load(&pong_tid);
	uint64_t t0 = umcg_now_ns();
	for (long i = 0; i < pp_n; i++) {
		CHECK_EQ(pp_counter, 2 * i);
		pp_counter = 2 * i + 1;
		payload();
		handover(&ping_task, &pong_task, pong, pp->ping);
		CHECK_EQ(pp_counter, 2 * i + 2);
	}
	uint64_t t1 = umcg_now_ns();
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(pp_counter, 2 * pp_n);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	/* information only: no timing asserts */
	printf("    %s: %ld round trips, %.0f ns per switch\n", cfg->name, pp_n,
	       (double)(t1 - t0) / (2.0 * (double)pp_n));
}

TEST_T(no_swaps_nop, 170)
{
	static const struct pp_cfg c = {"no_swaps_nop", WAKE_WAIT, WAKE_WAIT, false, false};
	ping_pong(&c);
}

TEST_T(one_swap_nop, 170)
{
	static const struct pp_cfg c = {"one_swap_nop", SWAP, WAKE_WAIT, false, false};
	ping_pong(&c);
}

TEST_T(all_swaps_nop, 170)
{
	static const struct pp_cfg c = {"all_swaps_nop", SWAP, SWAP, false, false};
	ping_pong(&c);
}

TEST_T(all_swaps_loose_nop, 170)
{
	static const struct pp_cfg c = {"all_swaps_loose_nop", SWAP, SWAP, true, false};
	ping_pong(&c);
}

TEST_T(no_swaps_payload, 170)
{
	static const struct pp_cfg c = {"no_swaps_payload", WAKE_WAIT, WAKE_WAIT, false, true};
	ping_pong(&c);
}

TEST_T(all_swaps_payload, 170)
{
	static const struct pp_cfg c = {"all_swaps_payload", SWAP, SWAP, false, true};
	ping_pong(&c);
}
