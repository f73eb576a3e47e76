/* SPDX-License-Identifier: MIT */
/*
 * bench_block - what a blocking call costs a worker, against two plain
 * threads doing the same hand-offs with a futex.
 *
 * One cycle (see bench_cycle_run() in bench_common.h): the worker
 * timestamps, calls umcg_block_point() (BLOCKED, its server made RUNNING
 * and woken), then blocks in clock_nanosleep(-s us); its server's
 * umcg_wait returns and timestamps, then goes idle on the idle-servers
 * stack. When the sleep returns the worker timestamps and calls
 * umcg_wake_point() (IDLE, pushed on the idle-workers list, the idle
 * server popped and woken), the server drains the list and runs it, and
 * the worker timestamps when it runs again.
 *
 * Metrics:
 *   block  block point entry -> server running (t_srv - t_block)
 *   wake   blocking call returned -> worker running again (t_run - t_ret):
 *          two hand-offs (worker -> idle server -> worker)
 * Baseline (same pinning, same run): thread W posts S's futex semaphore
 * and sleeps (block); after the sleep it posts S and waits on its own
 * semaphore, which S posts (wake). Cycles in which the server had not gone
 * to sleep yet when the worker came back are excluded from "wake" (their
 * number is reported as notslept=).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

enum metric { M_BLOCK, M_WAKE };

/* Metric m of cycle c ("wake": only the cycles in which the server slept). */
static uint64_t sample(const struct bench_cycle *c, int m)
{
	if (m == M_BLOCK)
		return c->t_srv - c->t_block;
	return c->idle_res == BENCH_IDLE_SLEPT ? c->t_run - c->t_ret : BENCH_NO_SAMPLE;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_init();
	bench_parse_args(argc, argv, &o, 5000, 200, 100,
			 "block point -> server running, and wake point -> worker running "
			 "again, vs plain futex hand-offs.");
	char roles[256];
	snprintf(roles, sizeof roles,
		 "thread 0 = server, thread 1 = worker; blocking call = clock_nanosleep(%ld us); "
		 "x_ = ratio vs futex baseline of the same pinning, measured just before",
		 o.sleep_us);
	bench_print_banner("bench_block", &o, roles);
	bench_print_table_header();
	static const struct bench_ab ab = {
	    .bench = "block",
	    .metrics = {"blk", "wake"},
	    .nmetrics = 2,
	    .notslept = 1u << M_WAKE,
	    .measure = bench_cycle_measure,
	    .sample = sample,
	};
	bench_ab_run(&o, &ab);
	return 0;
}
