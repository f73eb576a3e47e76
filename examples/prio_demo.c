/* SPDX-License-Identifier: MIT */
/*
 * prio_demo.c - strict priorities with time-slice preemption on the umcg
 * runtime (umcg_rt_policy_prio, attr.preempt_slice_ns).
 *
 * B batch workers (priority 0; by default one more than there are
 * servers) compute in endless loops: they never yield, block or park, so
 * every server is busy for good. One interactive worker (priority 7)
 * sleeps 1 ms, then computes 10 us, N times (200 by default). Without
 * preemption it would wait behind an endless loop for ever; with it, the
 * runtime's timer (and the waking worker itself) preempts a batch worker,
 * which goes back to the policy's queue, and the batch workers share the
 * servers by time slices. The demo prints the interactive worker's
 * timer-expiry-to-done latency (p50/p99/max: from the end of its 1 ms
 * sleep until its 10 us of work are done) and the preemption counts.
 * Then main calls umcg_rt_shutdown(): the batch workers see
 * umcg_rt_stopping() and return, and the shutdown joins them.
 *
 * Run:   make examples && build/plain/examples/prio_demo [-s servers]
 *            [-b batch] [-n rounds] [-q slice_us] [-x trace.json]
 * Exit status: 0 if the interactive worker did all its rounds, the batch
 * workers computed, never yielded or parked, were preempted (with at least
 * as many batch workers as servers), and all ended at the shutdown; 1 on a failed check (3: no
 * progress for 20 s, e.g. no preemption); 2 on bad usage.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umcg.h"
#include "umcg_rt.h"

#define DEMO_NAME  "prio_demo"
#define DEMO_USAGE "[-s servers] [-b batch] [-n rounds] [-q slice_us] [-x trace.json]"
#include "demo_util.h"

static int nr_servers = 2, nr_batch = -1, nr_rounds = 200;
static long slice_us = 1000;
static const char *trace_path;

enum { MAX_BATCH = 64 };
static _Atomic uint64_t batch_loops[MAX_BATCH]; /* compute loops per batch worker */
static _Atomic int batch_ended;
static _Atomic int rounds_done;
static uint64_t *lat; /* ns, one per round */

/* CPU-bound for ever: only preemption takes the server away, only the shutdown ends it. */
static void *batch(void *arg)
{
	_Atomic uint64_t *loops = arg;
	struct umcg_rt *rt = umcg_rt_current();
	while (!umcg_rt_stopping(rt)) {
		demo_compute(20000);
		atomic_fetch_add_explicit(loops, 1, memory_order_relaxed);
	}
	atomic_fetch_add(&batch_ended, 1);
	return NULL;
}

static void *interactive(void *arg)
{
	(void)arg;
	for (int i = 0; i < nr_rounds; i++) {
		uint64_t due = umcg_now_ns() + 1000000;
		umcg_rt_sleep_ns(1000000); /* blocks: its server runs a batch worker */
		demo_compute(10000);
		uint64_t done = umcg_now_ns();
		lat[i] = done > due ? done - due : 0; /* timer expiry -> work done */
		atomic_fetch_add_explicit(&rounds_done, 1, memory_order_relaxed);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "s:b:n:q:x:")) != -1) {
		switch (opt) {
		case 's':
			nr_servers = demo_num(optarg, 1, 64);
			break;
		case 'b':
			nr_batch = demo_num(optarg, 0, MAX_BATCH);
			break;
		case 'n':
			nr_rounds = demo_num(optarg, 1, 1000000);
			break;
		case 'q':
			slice_us = demo_num(optarg, 50, 1000000);
			break;
		case 'x':
			trace_path = optarg;
			break;
		default:
			demo_usage();
		}
	}
	if (optind != argc)
		demo_usage();
	if (nr_batch < 0)
		nr_batch = nr_servers + 1 <= MAX_BATCH ? nr_servers + 1 : MAX_BATCH;
	lat = calloc((size_t)nr_rounds, sizeof *lat);
	if (!lat)
		return 1;

	struct umcg_rt_attr attr;
	umcg_rt_attr_init(&attr);
	attr.nr_servers = nr_servers;
	attr.policy = &umcg_rt_policy_prio;
	attr.preempt_slice_ns = (uint64_t)slice_us * 1000;
	attr.pin_servers = nr_servers <= sysconf(_SC_NPROCESSORS_ONLN);
	attr.pool_max = 0; /* no thread pool: a thread that waits in it would count as a park */
	if (trace_path)
		attr.trace_events = 1u << 18;
	printf(
	    "prio_demo: %d servers, %d batch workers (priority 0, endless compute loops), "
	    "1 interactive\n"
	    "           (priority 7: %d x {sleep 1 ms, compute 10 us}), slice %ld us, policy %s\n",
	    nr_servers, nr_batch, nr_rounds, slice_us, attr.policy->name);
	struct umcg_rt *rt = umcg_rt_create(&attr);
	if (!rt)
		demo_die("umcg_rt_create");
	struct umcg_rt_spawn_attr lo = {.flags = UMCG_RT_SPAWN_DETACHED, .priority = 0};
	struct umcg_rt_spawn_attr hi = {.flags = 0, .priority = 7};
	for (int i = 0; i < nr_batch; i++)
		if (!umcg_rt_spawn(rt, batch, &batch_loops[i], &lo))
			demo_die("umcg_rt_spawn");
	struct umcg_rt_worker *iw = umcg_rt_spawn(rt, interactive, NULL, &hi);
	if (!iw)
		demo_die("umcg_rt_spawn");
	/* a watchdog: without preemption the interactive worker would never run */
	int last = -1;
	uint64_t last_change = umcg_now_ns();
	while (atomic_load(&rounds_done) < nr_rounds) {
		usleep(10000);
		int r = atomic_load(&rounds_done);
		if (r != last) {
			last = r;
			last_change = umcg_now_ns();
		} else if (umcg_now_ns() - last_change > 20000000000ull) {
			struct umcg_rt_stats st;
			umcg_rt_get_stats(rt, &st);
			fprintf(stderr,
				"prio_demo: no progress for 20 s (%d of %d rounds); runs %llu, "
				"wakes %llu, preempt signals %llu, preempts %llu, threads %llu\n",
				r, nr_rounds, (unsigned long long)st.runs,
				(unsigned long long)st.wakes,
				(unsigned long long)st.preempt_signals,
				(unsigned long long)st.preempts, (unsigned long long)st.threads);
			for (int i = 0; i < nr_batch; i++)
				fprintf(stderr, "  batch %d: %llu loops\n", i,
					(unsigned long long)atomic_load(&batch_loops[i]));
			_exit(3);
		}
	}
	if (umcg_rt_join(iw, NULL))
		demo_fail("umcg_rt_join: %s", strerror(errno));
	/* the batch workers are detached: the shutdown waits until they returned */
	if (umcg_rt_shutdown(rt))
		demo_die("umcg_rt_shutdown");

	/* ---- exact end-of-run checks ---- */
	struct umcg_rt_stats st;
	umcg_rt_get_stats(rt, &st);
	qsort(lat, (size_t)nr_rounds, sizeof *lat, cmp_u64);
	printf("  interactive  %d rounds; wake-to-done latency p50 %.1f us, p99 %.1f us, max %.1f "
	       "us\n",
	       atomic_load(&rounds_done), (double)lat[nr_rounds / 2] / 1e3,
	       (double)lat[(size_t)nr_rounds * 99 / 100] / 1e3, (double)lat[nr_rounds - 1] / 1e3);
	printf("  preemption   %llu signals sent, %llu workers preempted\n",
	       (unsigned long long)st.preempt_signals, (unsigned long long)st.preempts);
	printf("  runtime      %llu runs, %llu blocks, %llu yields, %llu parks, %llu exits\n",
	       (unsigned long long)st.runs, (unsigned long long)st.blocks,
	       (unsigned long long)st.yields, (unsigned long long)st.parks,
	       (unsigned long long)st.exits);
	uint64_t loops = 0;
	for (int i = 0; i < nr_batch; i++) {
		uint64_t n = atomic_load(&batch_loops[i]);
		printf("  batch %-2d     %llu compute loops of 20 us\n", i, (unsigned long long)n);
		loops += n;
	}
	/* (each one ran at least at the shutdown: see batch_ended below) */
	if (nr_batch && !loops)
		demo_fail("the batch workers never computed");
	if (atomic_load(&rounds_done) != nr_rounds)
		demo_fail("interactive worker did %d of %d rounds", atomic_load(&rounds_done),
			  nr_rounds);
	if (atomic_load(&batch_ended) != nr_batch)
		demo_fail("%d of %d batch workers ended at the shutdown", atomic_load(&batch_ended),
			  nr_batch);
	if (st.exits != (uint64_t)nr_batch + 1)
		demo_fail("%llu workers returned, expected %d", (unsigned long long)st.exits,
			  nr_batch + 1);
	/* nobody yields or parks; only the interactive worker's sleeps block */
	if (st.yields || st.parks || st.switches)
		demo_fail("%llu yields, %llu parks, %llu switches: the workload does none",
			  (unsigned long long)st.yields, (unsigned long long)st.parks,
			  (unsigned long long)st.switches);
	if (st.blocks < (uint64_t)nr_rounds)
		demo_fail("%llu blocks, but %d sleeps of 1 ms", (unsigned long long)st.blocks,
			  nr_rounds);
	if (st.preempts > st.preempt_signals)
		demo_fail("%llu preempts > %llu signals", (unsigned long long)st.preempts,
			  (unsigned long long)st.preempt_signals);
	/* more batch workers than servers: only preemption let the interactive one run */
	if (nr_batch >= nr_servers && !st.preempts)
		demo_fail("no preemption, yet %d batch workers held %d servers", nr_batch,
			  nr_servers);
	demo_trace(rt, trace_path, "  trace        ");
	umcg_rt_destroy(rt);
	free(lat);
	if (demo_failed())
		return 1;
	printf("prio_demo: OK, the interactive worker did all %d rounds beside endless batch "
	       "workers\n",
	       nr_rounds);
	return 0;
}
