/* SPDX-License-Identifier: MIT */
/*
 * detect_util.h - the scaffold of the transparent block detection tests
 * (test_detect.c, test_interpose.c; docs/detection.md), on top of
 * sched_util.h.
 *
 * The idea of those tests: one server, fewer CPUs than blocked workers.
 * Worker A blocks on something only worker B can release; if A's block
 * goes unseen, the server never gets its CPU back, B never runs and the
 * test fails by timeout (T_DETECT) instead of hanging the suite.
 *
 *   du_detection_available()  can perf events be opened here at all
 *   du_serve()                one server runs g's workers in FIFO order
 *   du_start_in_order()       start a worker and wait until it is queued
 *   du_run_one()              one worker from start to finish on one server
 *   du_run_two()              workers A and B, queued in that order
 *   du_run_pair()             A blocks in p->block, B releases it (p->release)
 *   du_check_running()        the running invariant, after a late park
 *
 * Every failed expectation ends the test with th_fail() (harness.h).
 */
#ifndef UMCG_TEST_DETECT_UTIL_H
#define UMCG_TEST_DETECT_UTIL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched_util.h"

#define T_DETECT 30 /* seconds: an unseen block fails by timeout */

/* What umcg_detect_thread() relies on, checked without registering. */
bool du_detection_available(void);

/*
 * One server (the calling thread) runs the workers of g in FIFO order
 * until n have finished: each run ends when the worker blocks, yields or
 * finishes. Fails the test when no worker was queued for T_DETECT seconds.
 */
void du_serve(struct su_group *g, long n);

/* Start w and wait until it is queued (so the FIFO order is the start order). */
void du_start_in_order(struct su_worker *w, struct su_group *g, su_payload_fn fn, void *arg);

/*
 * One worker running fn(arg) (w->count = count) on one server until it
 * finishes; g is zeroed first and holds the group's counters afterwards.
 * Every check of the worker's state on the way must have held.
 */
void du_run_one(struct su_group *g, su_payload_fn fn, void *arg, long count);

/*
 * Worker A (id 1) running fa(arg) and worker B (id 2) running fb(arg),
 * queued in that order, on one server until both finished; g as in
 * du_run_one(). Every check of their states on the way must have held.
 */
void du_run_two(struct su_group *g, su_payload_fn fa, su_payload_fn fb, void *arg);

/*
 * Worker A blocks (p->block) on what worker B releases (p->release). The
 * objects are there for block and release; each test sets up the ones it
 * uses.
 */
struct du_pair {
	void (*block)(struct du_pair *p);   /* worker A */
	void (*release)(struct du_pair *p); /* worker B */
	int fd[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sem_t sem;
	char path[64];
	_Atomic int released;	    /* set by B before p->release */
	_Atomic int a_done_after_b; /* A returned after B released: 1 */
	_Atomic int a_detected;	    /* umcg_detect_thread(-1) in A */
};

/* How much umcg__det_counts grew during du_run_pair(). */
struct du_counts {
	uint64_t parks, taken_sys, taken_raw;
};

/*
 * Run the pair to its end. Checks: A was detected, A returned only after
 * B released, both finished, no failed running check. *grew (may be NULL)
 * gets how much the detection's counters grew meanwhile.
 */
void du_run_pair(struct du_pair *p, struct du_counts *grew);

/*
 * du_run_pair() where detection is available (a no-op elsewhere), and
 * also check that A slept, was taken and parked at least once (on the
 * user-space backend: the kernel keeps no count).
 */
void du_run_pair_parked(struct du_pair *p);

/* A pair's halves on p->fd: a raw read(2) of one byte, a raw write(2) of one. */
void du_block_raw_read(struct du_pair *p);
void du_release_raw_write(struct du_pair *p);

/*
 * A worker may still be BLOCKED after a raw sleep (the switch-in alarm was
 * late, docs/detection.md "The window"): wait until it is parked and run
 * again (counted in du_late); fails the test after 2 s.
 */
void du_settle(struct su_worker *w);
extern _Atomic long du_late; /* du_settle() calls that had to wait */

/* su_check_running() (which LOCKs the worker for the check) after a possible late park. */
bool du_check_running(struct su_worker *w);

#endif
