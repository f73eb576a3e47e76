/* SPDX-License-Identifier: MIT */
/*
 * demo_pthreads.c - the peers benchmark's workload 1 on plain pthreads:
 * the same work as examples/fifo_demo.c (M threads x K operations; one
 * operation = ~C us of computation, usleep(U), a one-byte write + read on
 * a pipe shared by a few threads), one kernel thread per worker, the
 * kernel's scheduler. Prints "elapsed S s" like fifo_demo.
 *
 * Usage: demo_pthreads [-w workers] [-n ops] [-c compute_us] [-u sleep_us]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { NR_PIPES = 8 };
static int pipes[NR_PIPES][2];
static long nr_ops = 200, compute_us = 50, sleep_us = 300;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
		usleep((useconds_t)sleep_us);
		char c = (char)idx;
		if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) {
			perror("demo_pthreads: pipe");
			exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int nr_workers = 64, opt;
	while ((opt = getopt(argc, argv, "w:n:c:u:")) != -1) {
		switch (opt) {
		case 'w':
			nr_workers = atoi(optarg);
			break;
		case 'n':
			nr_ops = atol(optarg);
			break;
		case 'c':
			compute_us = atol(optarg);
			break;
		case 'u':
			sleep_us = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-w workers] [-n ops] [-c us] [-u us]\n",
				argv[0]);
			return 2;
		}
	}
	if (nr_workers < 1 || nr_workers > 100000 || nr_ops < 1)
		return 2;
	for (int i = 0; i < NR_PIPES; i++)
		if (pipe(pipes[i]))
			return 1;
	pthread_t *t = calloc((size_t)nr_workers, sizeof *t);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	uint64_t t0 = now_ns();
	for (long i = 0; i < nr_workers; i++)
		if (pthread_create(&t[i], &a, worker, (void *)(intptr_t)i))
			return 1;
	for (int i = 0; i < nr_workers; i++)
		pthread_join(t[i], NULL);
	printf("  elapsed             %.3f s\n", (double)(now_ns() - t0) / 1e9);
	free(t);
	return 0;
}
