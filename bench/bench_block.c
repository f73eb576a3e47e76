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

static struct bench_cycle *cyc;

/* Samples of metric m over the measured cycles into v; returns the count. */
static size_t collect(const struct bench_opts *o, enum metric m, uint64_t *v, size_t *notslept)
{
	size_t k = 0;
	*notslept = 0;
	for (size_t i = (size_t)o->warmup; i < (size_t)(o->warmup + o->iters); i++) {
		const struct bench_cycle *c = &cyc[i];
		if (m == M_BLOCK) {
			v[k++] = c->t_srv - c->t_block;
		} else if (c->idle_res != BENCH_IDLE_SLEPT) {
			(*notslept)++;
		} else {
			v[k++] = c->t_run - c->t_ret;
		}
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
	size_t ns;
	size_t n = collect(o, M_BLOCK, v, &ns);
	bench_stats_compute(v, n, &r->s[M_BLOCK]);
	n = collect(o, M_WAKE, v, &r->notslept);
	bench_stats_compute(v, n, &r->s[M_WAKE]);
}

static void report(const struct bench_opts *o, enum bench_pin pin, int hint, const struct result *r,
		   const struct result *base)
{
	static const char *const names[2][2] = {{"futex_blk", "futex_wake"},
						{"umcg_blk", "umcg_wake"}};
	char c0[16], c1[16], extra[96];
	for (int m = 0; m < 2; m++) {
		snprintf(extra, sizeof extra, "samecpu=%.0f%% cpus=%s,%s", r->samecpu,
			 bench_cpu_str(pin, 0, c0, sizeof c0),
			 bench_cpu_str(pin, 1, c1, sizeof c1));
		if (m == M_WAKE) {
			size_t len = strlen(extra);
			snprintf(extra + len, sizeof extra - len, " notslept=%zu", r->notslept);
		}
		bench_report(o, "block", names[hint >= 0][m], pin, hint, &r->s[m],
			     base ? &base->s[m] : NULL, extra);
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_init();
	bench_parse_args(argc, argv, &o, 5000, 200, 100,
			 "block point -> server running, and wake point -> worker running "
			 "again, vs plain futex hand-offs.");
	size_t total = (size_t)(o.iters + o.warmup);
	cyc = calloc(total, sizeof *cyc);
	uint64_t *v = bench_alloc_samples(total);
	if (!cyc)
		bench_die("out of memory");
	char roles[256];
	snprintf(roles, sizeof roles,
		 "thread 0 = server, thread 1 = worker; blocking call = clock_nanosleep(%ld us); "
		 "x_ = ratio vs futex baseline of the same pinning, measured just before",
		 o.sleep_us);
	bench_print_banner("bench_block", &o, roles);
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
