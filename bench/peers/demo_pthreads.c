/* SPDX-License-Identifier: MIT */
/*
 * demo_pthreads - the README demo's workload (examples/fifo_demo.c) on plain
 * pthreads, one thread per worker, the kernel scheduling them: the peer the
 * demo is measured against (scripts/demo-vs-pthreads.sh).
 *
 * M threads (64) x K operations (200): ~50 us of computation (the demo's
 * loop), usleep(300), one byte written to and read back from a pipe shared
 * by M/8 threads. Prints "elapsed X s" like fifo_demo. No libumcg.
 *
 *   demo_pthreads [-w M] [-n K] [-c compute_us] [-u sleep_us]
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { NR_PIPES = 8 };
static int pipes[NR_PIPES][2];
static long nr_workers = 64, nr_ops = 200, compute_us = 50, sleep_us = 300;
static _Atomic long ops_done;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* the demo's compute loop */
static void compute(uint64_t ns)
{
	static _Thread_local volatile uint64_t sink;
	uint64_t end = now_ns() + ns;
	do {
		for (int i = 0; i < 64; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (now_ns() < end);
}

static void *worker(void *arg)
{
	long idx = (long)(intptr_t)arg;
	int *p = pipes[idx % NR_PIPES];
	for (long i = 0; i < nr_ops; i++) {
		compute((uint64_t)compute_us * 1000);
		if (usleep((useconds_t)sleep_us) && errno != EINTR)
			abort();
		char c = (char)idx;
		if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1)
			abort();
		atomic_fetch_add(&ops_done, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "w:n:c:u:")) != -1) {
		long v = atol(optarg);
		switch (opt) {
		case 'w':
			nr_workers = v;
			break;
		case 'n':
			nr_ops = v;
			break;
		case 'c':
			compute_us = v;
			break;
		case 'u':
			sleep_us = v;
			break;
		default:
			fprintf(stderr, "usage: %s [-w M] [-n K] [-c us] [-u us]\n", argv[0]);
			return 2;
		}
	}
	for (int i = 0; i < NR_PIPES; i++)
		if (pipe(pipes[i]))
			return 1;
	pthread_t *th = calloc((size_t)nr_workers, sizeof *th);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	uint64_t t0 = now_ns();
	for (long i = 0; i < nr_workers; i++)
		if (pthread_create(&th[i], &attr, worker, (void *)(intptr_t)i))
			return 1;
	for (long i = 0; i < nr_workers; i++)
		pthread_join(th[i], NULL);
	double el = (double)(now_ns() - t0) / 1e9;
	printf("demo_pthreads: %ld threads x %ld ops (compute %ld us, usleep %ld us, pipe "
	       "write+read)\n",
	       nr_workers, nr_ops, compute_us, sleep_us);
	printf("  elapsed             %.3f s\n", el);
	return ops_done == nr_workers * nr_ops ? 0 : 1;
}
