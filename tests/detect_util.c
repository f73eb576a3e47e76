/* SPDX-License-Identifier: MIT */
/* detect_util.c - the detection test scaffold of detect_util.h. */
#include "detect_util.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"
#include "util/util.h"

_Atomic long du_late;

bool du_detection_available(void)
{
	return access("/proc/sys/kernel/perf_event_paranoid", R_OK) == 0;
}

void du_serve(struct su_group *g, long n)
{
	struct su_server s;
	memset(&s, 0, sizeof s);
	su_server_register(&s, g);
	struct su_worker *q[64];
	int qn = 0, qi = 0;
	uint64_t deadline = umcg_now_ns() + (uint64_t)T_DETECT * 1000000000ull;
	while (atomic_load(&g->finished) < n) {
		if (qi == qn) {
			qi = 0;
			qn = su_pop_all_fifo(g, q, 64);
			if (!qn) {
				if (umcg_now_ns() > deadline)
					th_fail(__FILE__, __LINE__, "no worker queued for %d s",
						T_DETECT);
				usleep(200); /* a server: interposition passes it through */
				continue;
			}
			/* T_DETECT counts from the last worker queued, not from the start */
			deadline = umcg_now_ns() + (uint64_t)T_DETECT * 1000000000ull;
		}
		su_run(&s, q[qi++]);
	}
	su_server_unregister(&s);
}

void du_start_in_order(struct su_worker *w, struct su_group *g, su_payload_fn fn, void *arg)
{
	su_worker_start(w, g, fn, arg);
	for (int i = 0; i < 4000; i++) {
		uint64_t head = __atomic_load_n(&g->iwl, __ATOMIC_ACQUIRE);
		if (head == (uint64_t)(uintptr_t)&w->task.idle_workers_ptr)
			return;
		usleep(500);
	}
	th_fail(__FILE__, __LINE__, "worker %ld was not queued", w->id);
}

void du_run_one(struct su_group *g, su_payload_fn fn, void *arg, long count)
{
	memset(g, 0, sizeof *g);
	struct su_worker *w = su_worker_alloc();
	w->count = count;
	su_worker_start(w, g, fn, arg);
	du_serve(g, 1);
	su_worker_join(w);
	CHECK_EQ(atomic_load(&g->bad_state), 0);
	free(w);
}

void du_run_two(struct su_group *g, su_payload_fn fa, su_payload_fn fb, void *arg)
{
	memset(g, 0, sizeof *g);
	struct su_worker *a = su_worker_alloc(), *b = su_worker_alloc();
	a->id = 1;
	b->id = 2;
	du_start_in_order(a, g, fa, arg);
	du_start_in_order(b, g, fb, arg);
	du_serve(g, 2);
	su_worker_join(a);
	su_worker_join(b);
	CHECK_EQ(atomic_load(&g->bad_state), 0);
	CHECK_EQ(atomic_load(&g->finished), 2);
	free(a);
	free(b);
}

static void a_payload(struct su_worker *w)
{
	struct du_pair *p = w->arg;
	atomic_store(&p->a_detected, umcg_detect_thread(-1));
	p->block(p);
	atomic_store(&p->a_done_after_b, atomic_load(&p->released));
	if (!du_check_running(w))
		th_fail(__FILE__, __LINE__, "A runs without its server after the block");
}

static void b_payload(struct su_worker *w)
{
	struct du_pair *p = w->arg;
	atomic_store(&p->released, 1);
	p->release(p);
	if (!du_check_running(w))
		th_fail(__FILE__, __LINE__, "B runs without its server");
}

void du_run_pair(struct du_pair *p, struct du_counts *grew)
{
	struct su_group g;
	uint64_t parks0 = atomic_load(&umcg__det_counts.parks);
	uint64_t sys0 = atomic_load(&umcg__det_counts.taken_sys);
	uint64_t raw0 = atomic_load(&umcg__det_counts.taken_raw);
	du_run_two(&g, a_payload, b_payload, p);
	CHECK_EQ(atomic_load(&p->a_detected), 1);
	CHECK_EQ(atomic_load(&p->a_done_after_b), 1);
	if (grew) {
		grew->parks = atomic_load(&umcg__det_counts.parks) - parks0;
		grew->taken_sys = atomic_load(&umcg__det_counts.taken_sys) - sys0;
		grew->taken_raw = atomic_load(&umcg__det_counts.taken_raw) - raw0;
	}
}

void du_settle(struct su_worker *w)
{
	if (umcg_state_load(&w->task) != UMCG_TASK_BLOCKED)
		return;
	atomic_fetch_add(&du_late, 1);
	uint64_t t0 = umcg_now_ns();
	/*
	 * Yield while we wait: where a relay thread sends the alarm's signal
	 * (relay.c), spinning workers that all run BLOCKED at once starved it
	 * (TSan, 128 workers: many BLOCKED for 2 s).
	 */
	while (umcg_state_load(&w->task) == UMCG_TASK_BLOCKED) {
		if (umcg_now_ns() - t0 > 2000000000ull)
			th_fail(__FILE__, __LINE__, "worker %ld BLOCKED for 2 s", w->id);
		sched_yield();
	}
}

bool du_check_running(struct su_worker *w)
{
	for (int tries = 0;; tries++) {
		du_settle(w); /* a late alarm: it parks first */
		/*
		 * A page fault between the settle and su_check_running()'s LOCK
		 * can be taken too, and its alarm be late as well: then we find
		 * ourselves BLOCKED at the LOCK. Settle again.
		 */
		if ((umcg_state_load(&w->task) & UMCG_TF_STATE_MASK) == UMCG_TASK_BLOCKED &&
		    tries < 100)
			continue;
		/*
		 * Counted as a bad state only when we give up: a take-over of a
		 * sleep that had ended can make us BLOCKED between the settle
		 * and the check's LOCK (the window), which the retry settles.
		 */
		if (su_running_ok(w))
			return true;
		/*
		 * Or BLOCKED at the LOCK and parked and run again by the time
		 * we look (seen with the relay's later signal): look again. A
		 * real violation stays for all 100 looks.
		 */
		if (tries >= 100) {
			atomic_fetch_add(&w->g->bad_state, 1);
			return false;
		}
	}
}

void du_run_pair_parked(struct du_pair *p)
{
	if (!du_detection_available())
		return;
	struct du_counts grew;
	du_run_pair(p, &grew);
	if (!th_on_kernel())
		CHECK(grew.parks > 0);
}

void du_block_raw_read(struct du_pair *p)
{
	char c;
	CHECK_EQ(syscall(SYS_read, p->fd[0], &c, 1), 1);
}

void du_release_raw_write(struct du_pair *p)
{
	char c = 'x';
	CHECK_EQ(syscall(SYS_write, p->fd[1], &c, 1), 1);
}
