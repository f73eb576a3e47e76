/* SPDX-License-Identifier: MIT */
/*
 * ring_pthreads.c - the peers benchmark's workload 3 on plain pthreads, a
 * reference: -r N threads pass a token around a ring, -n passes; each
 * thread waits on its own futex word (a binary semaphore: FUTEX_WAIT while
 * 0) and the holder posts the next one's (FUTEX_WAKE). -p: every thread
 * pinned to the first allowed CPU (a pass is then a plain context switch).
 *
 * Usage: ring_pthreads [-r members] [-n passes] [-p]
 * Prints "switches_per_s X elapsed_s Y" (one switch = one pass).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int nr = 2, pin_cpu = -1;
static long passes = 1000000;
static _Atomic uint32_t *sem;
static long token;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Binary semaphore: 0 empty, 1 posted. One waiter per word. */
static void sem_wait1(_Atomic uint32_t *s)
{
	for (;;) {
		uint32_t one = 1;
		if (atomic_compare_exchange_strong(s, &one, 0)) /* acquire: the token */
			return;
		syscall(SYS_futex, s, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	}
}

static void sem_post1(_Atomic uint32_t *s)
{
	atomic_store(s, 1); /* release: pairs with the waiter's CAS */
	syscall(SYS_futex, s, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *member(void *arg)
{
	int me = (int)(intptr_t)arg, next = (me + 1) % nr;
	if (pin_cpu >= 0) {
		cpu_set_t c;
		CPU_ZERO(&c);
		CPU_SET(pin_cpu, &c);
		sched_setaffinity(0, sizeof c, &c);
	}
	for (;;) {
		sem_wait1(&sem[me]);
		long t = token;
		if (t < passes)
			token = t + 1;
		sem_post1(&sem[next]);
		if (t >= passes)
			return NULL;
	}
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "r:n:p")) != -1) {
		switch (opt) {
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
		default:
			fprintf(stderr, "usage: %s [-r members] [-n passes] [-p]\n", argv[0]);
			return 2;
		}
	}
	if (nr < 2 || nr > 100000 || passes < 1)
		return 2;
	sem = calloc((size_t)nr, sizeof *sem);
	pthread_t *t = calloc((size_t)nr, sizeof *t);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	if (!sem || !t)
		return 1;
	for (int i = 0; i < nr; i++)
		if (pthread_create(&t[i], &a, member, (void *)(intptr_t)i))
			return 1;
	usleep(10000);
	uint64_t t0 = now_ns();
	sem_post1(&sem[0]);
	for (int i = 0; i < nr; i++)
		pthread_join(t[i], NULL);
	double el = (double)(now_ns() - t0) / 1e9;
	printf("switches_per_s %.0f elapsed_s %.3f\n", (double)passes / el, el);
	free(sem);
	free(t);
	return 0;
}
