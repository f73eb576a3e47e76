/* SPDX-License-Identifier: MIT */
/*
 * steal_demo.c - work stealing on the umcg runtime (umcg_rt_policy_steal).
 *
 * The "steal" policy keeps one FIFO queue per server: a worker spawned or
 * yielding on server i is queued on server i. Here all the work is spawned
 * from ONE place: a single spawner worker starts M workers (200 by default)
 * from the server it runs on, so they are all queued there. Each worker
 * computes K slices (100 us each by default) and yields between them
 * (a yield queues it again on the server that ran it). The other servers
 * find their own queues empty and steal from the loaded one; the demo
 * prints per server how many runs it made, how many workers it stole and
 * how many workers it started.
 *
 * Run:   make examples && build/plain/examples/steal_demo [-s servers]
 *            [-w workers] [-k slices] [-c compute_us] [-x trace.json]
 * Exit status: 0 if every worker ran exactly once and did all its slices,
 * the counters agree, and (with more than one server) steals happened;
 * 1 on a failed check; 2 on bad usage.
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

#define DEMO_NAME  "steal_demo"
#define DEMO_USAGE "[-s servers] [-w workers] [-k slices] [-c compute_us] [-x trace.json]"
#include "demo_util.h"

static int nr_servers = 2, nr_workers = 200, nr_slices = 5;
static long compute_us = 100;
static const char *trace_path;

struct worker {
	_Atomic int runs;   /* times worker_main ran: must be exactly 1 */
	_Atomic int slices; /* slices computed */
	int first_server;   /* where it started */
	struct umcg_rt_worker *h;
};
static struct worker *workers;
static _Atomic int started_on[64]; /* workers that started on server i */
static int spawned_on[64];	   /* workers spawned (so queued) on server i */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	atomic_fetch_add(&w->runs, 1);
	w->first_server = umcg_rt_server_index();
	if (w->first_server >= 0 && w->first_server < 64)
		atomic_fetch_add(&started_on[w->first_server], 1);
	for (int i = 0; i < nr_slices; i++) {
		demo_compute((uint64_t)compute_us * 1000);
		atomic_fetch_add(&w->slices, 1);
		if (i + 1 < nr_slices)
			umcg_rt_yield(); /* queued again on the server that ran us */
	}
	return NULL;
}

/* The one place all the work comes from: every spawn queues on our server. */
/* Warm-up: all M alive at once (a barrier), so that M threads go to the pool. */
static void *barrier(void *arg)
{
	umcg_rt_wg_done(arg);
	umcg_rt_wg_wait(arg);
	return NULL;
}

static void *spawner(void *arg)
{
	struct umcg_rt *rt = umcg_rt_current();
	(void)arg;
	for (int i = 0; i < nr_workers; i++) {
		int s = umcg_rt_server_index();
		if (s >= 0 && s < 64)
			spawned_on[s]++;
		if (!(workers[i].h = umcg_rt_spawn(rt, worker_main, &workers[i], NULL)))
			return (void *)(intptr_t)errno;
	}
	for (int i = 0; i < nr_workers; i++) /* a joining worker parks: its server runs others */
		if (umcg_rt_join(workers[i].h, NULL))
			return (void *)(intptr_t)errno;
	return NULL;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "s:w:k:c:x:")) != -1) {
		switch (opt) {
		case 's':
			nr_servers = demo_num(optarg, 1, 64);
			break;
		case 'w':
			nr_workers = demo_num(optarg, 1, 100000);
			break;
		case 'k':
			nr_slices = demo_num(optarg, 1, 100000);
			break;
		case 'c':
			compute_us = demo_num(optarg, 0, 1000000);
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
	workers = calloc((size_t)nr_workers, sizeof *workers);
	if (!workers)
		return 1;

	struct umcg_rt_attr attr;
	umcg_rt_attr_init(&attr);
	attr.nr_servers = nr_servers;
	attr.policy = &umcg_rt_policy_steal;
	attr.pin_servers = nr_servers <= sysconf(_SC_NPROCESSORS_ONLN);
	if (trace_path)
		attr.trace_events = 1u << 18;
	printf("steal_demo: %d servers, %d workers x %d slices of %ld us, all spawned from one "
	       "worker, policy %s\n",
	       nr_servers, nr_workers, nr_slices, compute_us, attr.policy->name);
	uint64_t t0 = umcg_now_ns();
	struct umcg_rt *rt = umcg_rt_create(&attr);
	if (!rt)
		demo_die("umcg_rt_create");
	/*
	 * Warm the thread pool up first: then most spawns are queue operations
	 * that never block (creating a thread can: the spawner may then come
	 * back on another server), so nearly every worker is queued on the
	 * spawner's server.
	 */
	struct umcg_rt_wg all;
	umcg_rt_wg_init(&all);
	umcg_rt_wg_add(&all, nr_workers);
	for (int i = 0; i < nr_workers; i++)
		if (!(workers[i].h = umcg_rt_spawn(rt, barrier, &all, NULL)))
			return 1;
	for (int i = 0; i < nr_workers; i++)
		if (umcg_rt_join(workers[i].h, NULL))
			return 1;
	/* (a worker's thread is back in the pool before its joiner runs) */
	struct umcg_rt_stats warm, warm_s[64];
	umcg_rt_get_stats(rt, &warm);
	for (int i = 0; i < nr_servers; i++)
		umcg_rt_get_server_stats(rt, i, &warm_s[i]);
	memset((void *)started_on, 0, sizeof started_on);
	void *err = NULL;
	struct umcg_rt_worker *sp = umcg_rt_spawn(rt, spawner, NULL, NULL);
	if (!sp || umcg_rt_join(sp, &err) || err) {
		fprintf(stderr, "steal_demo: spawn/join: %s\n",
			strerror(err ? (int)(intptr_t)err : errno));
		return 1;
	}
	if (umcg_rt_shutdown(rt))
		demo_die("umcg_rt_shutdown");
	double elapsed = (double)(umcg_now_ns() - t0) / 1e9;

	/* ---- exact end-of-run checks ---- */
	struct umcg_rt_stats st;
	umcg_rt_get_stats(rt, &st);
	int servers_used = 0;
	long started = 0;
	uint64_t steals = 0, runs = 0;
	printf("  elapsed   %.3f s (with a warm-up of the thread pool)\n", elapsed);
	for (int i = 0; i < nr_servers; i++) {
		struct umcg_rt_stats ss;
		umcg_rt_get_server_stats(rt, i, &ss);
		ss.runs -= warm_s[i].runs; /* this phase only */
		ss.steals -= warm_s[i].steals;
		int n = atomic_load(&started_on[i]);
		printf("  server %-2d runs %-6llu steals %-5llu workers spawned here %-5d started "
		       "here %d\n",
		       i, (unsigned long long)ss.runs, (unsigned long long)ss.steals, spawned_on[i],
		       n);
		servers_used += n > 0;
		started += n;
		steals += ss.steals;
		runs += ss.runs;
	}
	for (int i = 0; i < nr_workers; i++) {
		if (atomic_load(&workers[i].runs) != 1)
			demo_fail("worker %d ran %d times, not once", i,
				  atomic_load(&workers[i].runs));
		if (atomic_load(&workers[i].slices) != nr_slices)
			demo_fail("worker %d did %d slices, not %d", i,
				  atomic_load(&workers[i].slices), nr_slices);
	}
	if (started != nr_workers)
		demo_fail("%ld workers started on a server, expected %d", started, nr_workers);
	if (st.exits != 2 * (uint64_t)nr_workers + 1 || st.spawns != 2 * (uint64_t)nr_workers + 1)
		demo_fail("%llu spawns, %llu exits, expected %d each (with the warm-up)",
			  (unsigned long long)st.spawns, (unsigned long long)st.exits,
			  2 * nr_workers + 1);
	if (st.yields != (uint64_t)nr_workers * (uint64_t)(nr_slices - 1))
		demo_fail("%llu yields, expected %d", (unsigned long long)st.yields,
			  nr_workers * (nr_slices - 1));
	st.runs -= warm.runs;
	st.steals -= warm.steals;
	if (steals != st.steals || runs != st.runs)
		demo_fail("per-server sums (steals %llu, runs %llu) differ from the totals",
			  (unsigned long long)steals, (unsigned long long)runs);
	if (nr_servers == 1 && st.steals)
		demo_fail("%llu steals with one server", (unsigned long long)st.steals);
	if (nr_servers > 1 && !st.steals)
		demo_fail("no steals with %d servers", nr_servers);
	/*
	 * Not a failure: on a loaded machine the other servers may not get a
	 * CPU before the loaded one is done (seen on a shared 2-vCPU VM).
	 */
	if (nr_servers > 1 && servers_used < 2)
		printf("  note      every worker started on one server: the others got no CPU "
		       "in time?\n");
	printf("  total     %llu runs, %llu steals, %llu yields, %llu of %d spawns served by the "
	       "pool (after the warm-up)\n",
	       (unsigned long long)st.runs, (unsigned long long)st.steals,
	       (unsigned long long)st.yields,
	       (unsigned long long)(st.pool_reuses - warm.pool_reuses), nr_workers + 1);
	demo_trace(rt, trace_path, "  trace     ");
	umcg_rt_destroy(rt);
	free(workers);
	if (demo_failed())
		return 1;
	printf("steal_demo: OK, every worker ran exactly once; %llu steals\n",
	       (unsigned long long)st.steals);
	return 0;
}
