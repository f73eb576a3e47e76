/* SPDX-License-Identifier: MIT */
/*
 * bench_idle - waking an idle server through the idle-servers stack,
 * against waking a sleeping plain thread with a futex.
 *
 * The server has nothing to do: it follows the idle protocol (IDLE, push
 * itself on the idle-servers stack, full fence, re-check the idle-workers
 * list, umcg_wait). Its only worker is blocked in clock_nanosleep(-s us)
 * (entered through umcg_block_point()). When the sleep returns, the worker
 * timestamps and enters umcg_wake_point(): it becomes IDLE, pushes itself
 * on the idle-workers list, pops the server from the idle-servers stack
 * (marks its node deleted), makes it RUNNING and wakes it; the server
 * timestamps as soon as its umcg_wait returns. It then removes/GCs its
 * node, drains the idle-workers list and runs the worker again.
 *
 * Metrics (cycle driver: bench_cycle_run() in bench_common.h):
 *   idle  worker's wake point entry -> idle server running (t_idle - t_ret)
 *   run   idle server running -> worker running again (t_run - t_idle):
 *         stack GC, list drain and the server -> worker switch
 * Baseline (same pinning, same run): the "worker" thread returns from the
 * same sleep, timestamps, posts a futex semaphore the "server" thread
 * sleeps on (idle), then waits on its own, which the server posts (run).
 * Only cycles in which the server really went to sleep with an empty
 * idle-workers list count (for the baseline: its FUTEX_WAIT was entered);
 * the others are reported as notslept=.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

enum metric { M_IDLE, M_RUN };

/* Metric m of cycle c: only the cycles in which the server slept count. */
static uint64_t sample(const struct bench_cycle *c, int m)
{
	if (c->idle_res != BENCH_IDLE_SLEPT)
		return BENCH_NO_SAMPLE;
	return m == M_IDLE ? c->t_idle - c->t_ret : c->t_run - c->t_idle;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_init();
	bench_parse_args(argc, argv, &o, 5000, 200, 100,
			 "wake point entry -> idle server (asleep on the idle-servers stack) "
			 "running, vs a futex wake of a sleeping thread.");
	char roles[256];
	snprintf(roles, sizeof roles,
		 "thread 0 = idle server, thread 1 = worker; the worker's blocking call = "
		 "clock_nanosleep(%ld us); x_ = ratio vs futex baseline of the same pinning, "
		 "measured just before",
		 o.sleep_us);
	bench_print_banner("bench_idle", &o, roles);
	bench_print_table_header();
	static const struct bench_ab ab = {
	    .bench = "idle",
	    .metrics = {"idle", "run"},
	    .nmetrics = 2,
	    .notslept = 1u << M_IDLE | 1u << M_RUN,
	    .measure = bench_cycle_measure,
	    .sample = sample,
	};
	bench_ab_run(&o, &ab);
	return 0;
}
