/* SPDX-License-Identifier: MIT */
/*
 * rt_ring.c - the peers benchmark's workload 3 on the umcg runtime: -r N
 * workers pass a token around a ring, -n passes. A member that gets the
 * token bumps it and hands its server straight to the next member with
 * umcg_rt_switch_to(next, UMCG_RT_SWITCH_PARK) - the runtime's cheapest
 * hand-off (one futex wake, no trip through the policy, the server stays
 * asleep) - and parks until the token comes round again.
 *
 * -p: every member's thread pinned to the first allowed CPU, where server 0
 * is pinned (with -s 1: the whole ring on one CPU, as pthreads' -p).
 *
 * Usage: rt_ring [-s servers] [-r members] [-n passes] [-p] [-U]
 * Prints "switches_per_s X elapsed_s Y" (one switch = one pass) and the
 * runtime's direct-switch count.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umcg.h"
#include "umcg_rt.h"

static int nr = 2, pin_cpu = -1;
static long passes = 1000000;
static _Atomic long token;
static _Atomic int ready;
static _Atomic(struct umcg_rt_worker *) *members;

static void *member(void *arg)
{
	int me = (int)(intptr_t)arg, next = (me + 1) % nr;
	if (pin_cpu >= 0) { /* -p: the member's thread on the first CPU, with server 0 */
		cpu_set_t c;
		CPU_ZERO(&c);
		CPU_SET(pin_cpu, &c);
		sched_setaffinity(0, sizeof c, &c);
	}
	atomic_fetch_add(&ready, 1);
	for (;;) {
		long t;
		while ((t = atomic_load(&token)) % nr != me || t < 0) {
			if (t >= passes)
				goto out;
			umcg_rt_park();
		}
		if (t >= passes)
			break;
		atomic_store(&token, t + 1);
		umcg_rt_switch_to(atomic_load(&members[next]), UMCG_RT_SWITCH_PARK);
	}
out:
	/* the end: wake the next member, which sees it and wakes its next */
	umcg_rt_unpark(atomic_load(&members[next]));
	return NULL;
}

int main(int argc, char **argv)
{
	int servers = 0, opt;
	bool pin = true;
	while ((opt = getopt(argc, argv, "s:r:n:pU")) != -1) {
		switch (opt) {
		case 's':
			servers = atoi(optarg);
			break;
		case 'r':
			nr = atoi(optarg);
			break;
		case 'n':
			passes = atol(optarg);
			break;
		case 'p': {
			cpu_set_t c;
			sched_getaffinity(0, sizeof c, &c);
			for (pin_cpu = 0; pin_cpu < CPU_SETSIZE && !CPU_ISSET(pin_cpu, &c);
			     pin_cpu++)
				;
			break;
		}
		case 'U':
			pin = false;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s servers] [-r members] [-n passes] [-p] [-U]\n",
				argv[0]);
			return 2;
		}
	}
	if (nr < 2 || nr > 100000 || passes < 1)
		return 2;
	members = calloc((size_t)nr, sizeof *members);
	struct umcg_rt_worker **w = calloc((size_t)nr, sizeof *w);
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.nr_servers = servers;
	a.pin_servers = pin;
	a.pool_max = nr;
	struct umcg_rt *rt = umcg_rt_create(&a);
	if (!rt || !w || !members) {
		fprintf(stderr, "rt_ring: umcg_rt_create: %s\n", strerror(errno));
		return 1;
	}
	atomic_store(&token, -1); /* park every member first; token 0 is member 0's */
	for (int i = 0; i < nr; i++) {
		w[i] = umcg_rt_spawn(rt, member, (void *)(intptr_t)i, NULL);
		if (!w[i]) {
			fprintf(stderr, "rt_ring: umcg_rt_spawn: %s\n", strerror(errno));
			return 1;
		}
		atomic_store(&members[i], w[i]);
	}
	while (atomic_load(&ready) < nr)
		usleep(1000);
	usleep(10000);
	uint64_t t0 = umcg_now_ns();
	atomic_store(&token, 0);
	umcg_rt_unpark(w[0]);
	for (int i = 0; i < nr; i++)
		umcg_rt_join(w[i], NULL);
	double el = (double)(umcg_now_ns() - t0) / 1e9;
	struct umcg_rt_stats st;
	umcg_rt_shutdown(rt);
	umcg_rt_get_stats(rt, &st);
	printf("switches_per_s %.0f elapsed_s %.3f\n", (double)passes / el, el);
	printf("# direct switches %llu, runs %llu, parks %llu\n", (unsigned long long)st.switches,
	       (unsigned long long)st.runs, (unsigned long long)st.parks);
	umcg_rt_destroy(rt);
	free(w);
	free(members);
	return 0;
}
