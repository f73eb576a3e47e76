/* SPDX-License-Identifier: MIT */
/*
 * bench_rt - the runtime (umcg_rt.h) against plain pthreads:
 *
 *   spawn   umcg_rt_spawn() + umcg_rt_join() of an empty function from a
 *           plain thread (the worker thread comes from the pool), against
 *           pthread_create() + pthread_join();
 *   spawnw  the same, spawned and joined by a worker (the joiner parks);
 *   ring2 / ring64   a token passed around a ring of N workers, each
 *           passing it with umcg_rt_switch_to(next, UMCG_RT_SWITCH_PARK)
 *           on one server, against N pthreads passing it through futex
 *           semaphores (FUTEX_WAKE + FUTEX_WAIT per pass); time per pass.
 *
 * One server, pinned to the first allowed CPU; the pthread baselines are
 * pinned to the same CPU (-p none: neither is pinned). Samples are per
 * operation; -n samples, -w warm-up discarded.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "umcg_rt.h"

static struct bench_opts O;
static bool pinned = true;

static void *empty(void *arg)
{
	return arg;
}

static struct umcg_rt *mk_rt(void)
{
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.nr_servers = 1;
	a.pin_servers = pinned;
	struct umcg_rt *rt = umcg_rt_create(&a);
	if (!rt)
		bench_die("umcg_rt_create: %s", strerror(errno));
	return rt;
}

/* ---- spawn ---------------------------------------------------------------- */

static void spawn_rt(struct umcg_rt *rt, uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = bench_now();
		struct umcg_rt_worker *w = umcg_rt_spawn(rt, empty, NULL, NULL);
		if (!w || umcg_rt_join(w, NULL))
			bench_die("spawn/join: %s", strerror(errno));
		v[i] = bench_now() - t0;
	}
}

static void spawn_pthread(uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = bench_now();
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024); /* as the runtime's default */
		if (pthread_create(&t, &a, empty, NULL))
			bench_die("pthread_create");
		pthread_join(t, NULL);
		pthread_attr_destroy(&a);
		v[i] = bench_now() - t0;
	}
}

struct spawnw_arg {
	struct umcg_rt *rt;
	uint64_t *v;
	size_t n;
};

static void *spawnw_main(void *arg)
{
	struct spawnw_arg *a = arg;
	spawn_rt(a->rt, a->v, a->n);
	return NULL;
}

/* ---- ring ------------------------------------------------------------------ */

static struct {
	int n;
	long passes;
	_Atomic long token;
	_Atomic(struct umcg_rt_worker *) w[64];
	_Atomic uint32_t sem[64];
	_Atomic int ready;
} R;

static void *ring_rt(void *arg)
{
	int me = (int)(intptr_t)arg, next = (me + 1) % R.n;
	atomic_fetch_add(&R.ready, 1);
	for (;;) {
		long t;
		while ((t = atomic_load(&R.token)) % R.n != me) {
			if (t >= R.passes)
				goto out;
			umcg_rt_park();
		}
		if (t >= R.passes)
			break;
		atomic_store(&R.token, t + 1);
		umcg_rt_switch_to(atomic_load(&R.w[next]), UMCG_RT_SWITCH_PARK);
	}
out:
	umcg_rt_unpark(atomic_load(&R.w[next]));
	return NULL;
}

static void *ring_pthread(void *arg)
{
	int me = (int)(intptr_t)arg, next = (me + 1) % R.n;
	bench_pin_self(pinned ? 0 : -1);
	for (;;) {
		bench_sem_wait(&R.sem[me]);
		long t = atomic_load(&R.token);
		if (t < R.passes)
			atomic_store(&R.token, t + 1);
		bench_sem_post(&R.sem[next]);
		if (t >= R.passes)
			return NULL;
	}
}

/* Time per pass of one ring run (ns). */
static uint64_t ring_once(struct umcg_rt *rt, int n, long passes)
{
	R.n = n;
	R.passes = passes;
	atomic_store(&R.token, 0);
	atomic_store(&R.ready, 0);
	uint64_t t0, t1;
	if (rt) {
		struct umcg_rt_worker *w[64];
		for (int i = 0; i < n; i++)
			atomic_store(&R.w[i], NULL);
		/* park the members first: token 0 belongs to member 0, who starts */
		atomic_store(&R.token, -1);
		for (int i = 0; i < n; i++) {
			w[i] = umcg_rt_spawn(rt, ring_rt, (void *)(intptr_t)i, NULL);
			atomic_store(&R.w[i], w[i]);
		}
		while (atomic_load(&R.ready) < n)
			sched_yield();
		t0 = bench_now();
		atomic_store(&R.token, 0);
		umcg_rt_unpark(w[0]);
		for (int i = 0; i < n; i++)
			umcg_rt_join(w[i], NULL);
		t1 = bench_now();
	} else {
		pthread_t t[64];
		for (int i = 0; i < n; i++)
			atomic_store(&R.sem[i], 0);
		for (int i = 0; i < n; i++)
			pthread_create(&t[i], NULL, ring_pthread, (void *)(intptr_t)i);
		t0 = bench_now();
		bench_sem_post(&R.sem[0]);
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		t1 = bench_now();
	}
	return (t1 - t0) / (uint64_t)passes;
}

int main(int argc, char **argv)
{
	bench_init();
	bench_parse_args(argc, argv, &O, 2000, 200, 0,
			 "bench_rt: umcg runtime spawn/join and token ring vs pthreads");
	pinned = O.pins & (1u << BENCH_PIN_SAME) || O.pins == 0;
	bench_print_banner("bench_rt", &O, "one server (pinned to the first CPU), pthreads pinned");
	bench_print_table_header();
	size_t n = (size_t)(O.iters + O.warmup);
	uint64_t *a = bench_alloc_samples(n), *b = bench_alloc_samples(n);
	struct bench_stats sa, sb;
	enum bench_pin pin = pinned ? BENCH_PIN_SAME : BENCH_PIN_NONE;

	bench_watchdog(BENCH_CASE_TIMEOUT_S);
	bench_pin_self(pinned ? bench_pin_cpu(BENCH_PIN_SAME, 0) : -1);
	spawn_pthread(b, n);
	bench_stats_compute(b + O.warmup, (size_t)O.iters, &sb);
	bench_report(&O, "rt", "pthread_create+join", pin, -1, &sb, NULL, NULL);
	struct umcg_rt *rt = mk_rt();
	spawn_rt(rt, a, n);
	bench_stats_compute(a + O.warmup, (size_t)O.iters, &sa);
	bench_report(&O, "rt", "spawn+join", pin, -1, &sa, &sb, NULL);
	struct spawnw_arg sw = {rt, a, n};
	umcg_rt_join(umcg_rt_spawn(rt, spawnw_main, &sw, NULL), NULL);
	bench_stats_compute(a + O.warmup, (size_t)O.iters, &sa);
	bench_report(&O, "rt", "spawn+join(worker)", pin, -1, &sa, &sb, NULL);

	size_t runs = 21;
	for (int ringn = 2; ringn <= 64; ringn *= 32) {
		long passes = 20000;
		for (size_t i = 0; i < runs; i++) {
			b[i] = ring_once(NULL, ringn, passes);
			a[i] = ring_once(rt, ringn, passes);
		}
		char m[32], mb[32];
		snprintf(m, sizeof m, "ring%d/pass", ringn);
		snprintf(mb, sizeof mb, "ring%d/pass(pthread)", ringn);
		bench_stats_compute(b, runs, &sb);
		bench_report(&O, "rt", mb, pin, -1, &sb, NULL, NULL);
		bench_stats_compute(a, runs, &sa);
		bench_report(&O, "rt", m, pin, -1, &sa, &sb, NULL);
	}
	struct umcg_rt_stats st;
	umcg_rt_shutdown(rt);
	umcg_rt_get_stats(rt, &st);
	printf("runtime: %llu spawns, %llu from the pool, %llu threads; %llu direct switches\n",
	       (unsigned long long)st.spawns, (unsigned long long)st.pool_reuses,
	       (unsigned long long)st.threads, (unsigned long long)st.switches);
	umcg_rt_destroy(rt);
	bench_watchdog(0);
	return 0;
}
