/* SPDX-License-Identifier: MIT */
/*
 * lat_pthreads.c - the peers benchmark's workload 2 on plain pthreads: one
 * interactive thread (sleep until a deadline 1 ms ahead, then ~10 us of
 * computation, -n times) beside -b CPU-bound batch threads (default: one
 * per CPU) at nice -N (default 19; the kernel's own way to say "batch").
 * Reports the interactive thread's timer-expiry-to-done time (the sleep's
 * deadline to the end of the computation): p50, p99, max.
 *
 * Timer slack: PR_SET_TIMERSLACK 1 ns before any thread starts (inherited).
 * Usage: lat_pthreads [-b batch] [-n samples] [-s sleep_us] [-c compute_us]
 *                     [-N batch_nice] [-I]   (-I: batch threads SCHED_IDLE)
 * Prints "lat_p50_us X lat_p99_us Y lat_max_us Z".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static _Atomic int stop, running;
static int batch_nice = 19;
static int batch_idle;

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

static void *batch(void *arg)
{
	(void)arg;
	if (batch_idle) {
		struct sched_param sp = {0};
		if (sched_setscheduler(0, SCHED_IDLE, &sp))
			perror("lat_pthreads: SCHED_IDLE");
	} else if (setpriority(PRIO_PROCESS, (id_t)gettid(), batch_nice)) {
		perror("lat_pthreads: setpriority");
	}
	atomic_fetch_add(&running, 1);
	volatile uint64_t x = 1;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		for (int i = 0; i < 256; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int nr_batch = (int)sysconf(_SC_NPROCESSORS_ONLN), opt;
	long n = 1000, sleep_us = 1000, compute_us = 10;
	while ((opt = getopt(argc, argv, "b:n:s:c:N:I")) != -1) {
		switch (opt) {
		case 'b':
			nr_batch = atoi(optarg);
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 's':
			sleep_us = atol(optarg);
			break;
		case 'c':
			compute_us = atol(optarg);
			break;
		case 'N':
			batch_nice = atoi(optarg);
			break;
		case 'I':
			batch_idle = 1;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: %s [-b batch] [-n samples] [-s us] [-c us] [-N nice] [-I]\n",
			    argv[0]);
			return 2;
		}
	}
	if (nr_batch < 0 || nr_batch > 4096 || n < 1)
		return 2;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_t *t = calloc((size_t)nr_batch + 1, sizeof *t);
	uint64_t *lat = calloc((size_t)n, sizeof *lat);
	if (!t || !lat)
		return 1;
	for (int i = 0; i < nr_batch; i++)
		if (pthread_create(&t[i], NULL, batch, NULL))
			return 1;
	while (atomic_load(&running) < nr_batch)
		usleep(1000);
	usleep(20000); /* the batch threads own every CPU */
	for (long i = 0; i < n; i++) {
		uint64_t due = now_ns() + (uint64_t)sleep_us * 1000;
		struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
			;
		compute((uint64_t)compute_us * 1000);
		lat[i] = now_ns() - due;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < nr_batch; i++)
		pthread_join(t[i], NULL);
	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	printf("lat_p50_us %.1f lat_p99_us %.1f lat_max_us %.1f\n", (double)lat[n / 2] / 1e3,
	       (double)lat[n * 99 / 100] / 1e3, (double)lat[n - 1] / 1e3);
	free(t);
	free(lat);
	return 0;
}
