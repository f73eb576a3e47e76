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

static struct bench_cycle *cyc;

static size_t collect(const struct bench_opts *o, enum metric m, uint64_t *v, size_t *notslept)
{
	size_t k = 0;
	*notslept = 0;
	for (size_t i = (size_t)o->warmup; i < (size_t)(o->warmup + o->iters); i++) {
		const struct bench_cycle *c = &cyc[i];
		if (c->idle_res != BENCH_IDLE_SLEPT)
			(*notslept)++;
		else
			v[k++] = m == M_IDLE ? c->t_idle - c->t_ret : c->t_run - c->t_idle;
	}
	return k;
}

struct result {
	struct bench_stats s[2];
	size_t notslept;
	double samecpu;
};

static void measure(const struct bench_opts *o, enum bench_pin pin, bool umcg, uint64_t *v,
		    struct result *r)
{
	size_t total = (size_t)(o->iters + o->warmup);
	bench_cycle_run(pin, umcg, o->sleep_us, cyc, total);
	r->samecpu = bench_cycle_samecpu(cyc, (size_t)o->warmup, total);
	size_t n = collect(o, M_IDLE, v, &r->notslept);
	bench_stats_compute(v, n, &r->s[M_IDLE]);
	n = collect(o, M_RUN, v, &r->notslept);
	bench_stats_compute(v, n, &r->s[M_RUN]);
}

static void report(const struct bench_opts *o, enum bench_pin pin, int hint, const struct result *r,
		   const struct result *base)
{
	static const char *const names[2][2] = {{"futex_idle", "futex_run"},
						{"umcg_idle", "umcg_run"}};
	char c0[16], c1[16], extra[96];
	snprintf(extra, sizeof extra, "samecpu=%.0f%% cpus=%s,%s notslept=%zu", r->samecpu,
		 bench_cpu_str(pin, 0, c0, sizeof c0), bench_cpu_str(pin, 1, c1, sizeof c1),
		 r->notslept);
	for (int m = 0; m < 2; m++)
		bench_report(o, "idle", names[hint >= 0][m], pin, hint, &r->s[m],
			     base ? &base->s[m] : NULL, extra);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_init();
	bench_parse_args(argc, argv, &o, 5000, 200, 100,
			 "wake point entry -> idle server (asleep on the idle-servers stack) "
			 "running, vs a futex wake of a sleeping thread.");
	size_t total = (size_t)(o.iters + o.warmup);
	cyc = calloc(total, sizeof *cyc);
	uint64_t *v = bench_alloc_samples(total);
	if (!cyc)
		bench_die("out of memory");
	char roles[256];
	snprintf(roles, sizeof roles,
		 "thread 0 = idle server, thread 1 = worker; the worker's blocking call = "
		 "clock_nanosleep(%ld us); x_ = ratio vs futex baseline of the same pinning, "
		 "measured just before",
		 o.sleep_us);
	bench_print_banner("bench_idle", &o, roles);
	bench_print_table_header();
	for (int p = 0; p < BENCH_PIN_MODES; p++) {
		enum bench_pin pin = (enum bench_pin)p;
		if (!(o.pins & (1u << p)))
			continue;
		if (!bench_pin_available(pin)) {
			printf("# pin=%s skipped: fewer than two allowed CPUs\n",
			       bench_pin_name(pin));
			continue;
		}
		struct result base, r;
		measure(&o, pin, false, v, &base);
		report(&o, pin, -1, &base, NULL);
		for (int hint = 0; hint < 2; hint++) {
			if (!(o.hints & (1u << hint)))
				continue;
			if (umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, hint))
				bench_die("umcg_tune: %s", strerror(errno));
			measure(&o, pin, true, v, &r);
			report(&o, pin, hint, &r, &base);
		}
	}
	free(v);
	free(cyc);
	return 0;
}
