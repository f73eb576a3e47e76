/* SPDX-License-Identifier: MIT */
/*
 * rt_lat.c - the peers benchmark's workload 2 on the umcg runtime: one
 * interactive worker (umcg_rt_sleep_ns(1 ms), then ~10 us of computation,
 * -n times) at priority 7 beside -b CPU-bound batch workers (default: one
 * per server) at priority 0, on the "prio" policy with time-slice
 * preemption (slice -S us). Reports the interactive worker's
 * timer-expiry-to-done time (the sleep's deadline to the end of the
 * computation): p50, p99, max.
 *
 * Timer slack: PR_SET_TIMERSLACK 1 ns before the runtime starts (every
 * thread it creates inherits it). -N n: the batch workers' kernel threads
 * run at nice n (a worker is a real thread: the kernel then lets the
 * interactive worker's thread run its wake-up path at once).
 *
 * Usage: rt_lat [-s servers] [-b batch] [-n samples] [-u sleep_us]
 *               [-c compute_us] [-S slice_us] [-N batch_nice] [-U]
 * Prints "lat_p50_us X lat_p99_us Y lat_max_us Z" and the runtime's
 * preemption counts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "umcg.h"
#include "umcg_rt.h"

static _Atomic int stop, running;
static int batch_nice;
static long n = 1000, sleep_us = 1000, compute_us = 10;
static uint64_t *lat;

static void compute(uint64_t ns)
{
	static _Thread_local volatile uint64_t sink;
	uint64_t end = umcg_now_ns() + ns;
	do {
		for (int i = 0; i < 64; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (umcg_now_ns() < end);
}

static void *batch(void *arg)
{
	(void)arg;
	if (batch_nice && setpriority(PRIO_PROCESS, (id_t)gettid(), batch_nice))
		perror("rt_lat: setpriority");
	atomic_fetch_add(&running, 1);
	volatile uint64_t x = 1;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		for (int i = 0; i < 256; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
	if (batch_nice)
		setpriority(PRIO_PROCESS, (id_t)gettid(), 0); /* pooled threads are reused */
	return NULL;
}

static void *interactive(void *arg)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		uint64_t due = umcg_now_ns() + (uint64_t)sleep_us * 1000;
		umcg_rt_sleep_ns((uint64_t)sleep_us * 1000);
		compute((uint64_t)compute_us * 1000);
		lat[i] = umcg_now_ns() - due;
	}
	return NULL;
}

/*
 * The preemption timer thread: its sleeps (voluntary context switches) and
 * CPU time so far. It is named umcg-rt-timer since it sleeps until needed;
 * an older library's timer is unnamed: then the thread with the most sleeps
 * (its fixed period made it that one), marked as a guess.
 */
static char timer_stats[160] = "not found";

static void task_stats(const char *tid, long *sw, unsigned long long *cpu_ns)
{
	char path[300], line[128];
	*sw = -1;
	*cpu_ns = 0;
	snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", sw) == 1)
			break;
	if (f)
		fclose(f);
	snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", tid);
	f = fopen(path, "r");
	if (f && fscanf(f, "%llu", cpu_ns) != 1)
		*cpu_ns = 0;
	if (f)
		fclose(f);
}

static void timer_read(void)
{
	char path[300], line[128];
	long best_sw = -1;
	unsigned long long best_cpu = 0;
	int named = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == getpid())
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		int is = f && fgets(line, sizeof line, f) && !strncmp(line, "umcg-rt-timer", 13);
		if (f)
			fclose(f);
		long sw;
		unsigned long long cpu;
		task_stats(e->d_name, &sw, &cpu);
		if (is || (!named && sw > best_sw)) {
			best_sw = sw;
			best_cpu = cpu;
		}
		if (is) {
			named = 1;
			break;
		}
	}
	if (d)
		closedir(d);
	if (best_sw >= 0)
		snprintf(timer_stats, sizeof timer_stats, "%ld sleeps, %.1f ms CPU%s", best_sw,
			 (double)best_cpu / 1e6,
			 named ? "" : " (unnamed: the thread with most sleeps)");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int servers = 0, nr_batch = -1, opt;
	long slice_us = 200;
	bool pin = true;
	while ((opt = getopt(argc, argv, "s:b:n:u:c:S:N:U")) != -1) {
		switch (opt) {
		case 's':
			servers = atoi(optarg);
			break;
		case 'b':
			nr_batch = atoi(optarg);
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 'u':
			sleep_us = atol(optarg);
			break;
		case 'c':
			compute_us = atol(optarg);
			break;
		case 'S':
			slice_us = atol(optarg);
			break;
		case 'N':
			batch_nice = atoi(optarg);
			break;
		case 'U':
			pin = false;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s servers] [-b batch] [-n samples] [-u us] [-c us] "
				"[-S slice_us] [-N nice] [-U]\n",
				argv[0]);
			return 2;
		}
	}
	if (n < 1 || slice_us < 1 || nr_batch > 4096)
		return 2;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	lat = calloc((size_t)n, sizeof *lat);
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.nr_servers = servers;
	a.pin_servers = pin;
	a.policy = &umcg_rt_policy_prio;
	a.preempt_slice_ns = (uint64_t)slice_us * 1000;
	struct umcg_rt *rt = umcg_rt_create(&a);
	if (!rt || !lat) {
		fprintf(stderr, "rt_lat: umcg_rt_create: %s\n", strerror(errno));
		return 1;
	}
	if (nr_batch < 0)
		nr_batch = umcg_rt_nr_servers(rt);
	struct umcg_rt_spawn_attr lo = {.priority = 0}, hi = {.priority = 7};
	struct umcg_rt_worker **b = calloc((size_t)nr_batch + 1, sizeof *b);
	for (int i = 0; i < nr_batch; i++)
		if (!(b[i] = umcg_rt_spawn(rt, batch, NULL, &lo)))
			return 1;
	while (atomic_load(&running) < nr_batch)
		usleep(1000);
	usleep(20000);
	struct umcg_rt_worker *iw = umcg_rt_spawn(rt, interactive, NULL, &hi);
	if (!iw || umcg_rt_join(iw, NULL))
		return 1;
	timer_read();
	atomic_store(&stop, 1);
	for (int i = 0; i < nr_batch; i++)
		umcg_rt_join(b[i], NULL);
	struct umcg_rt_stats st;
	umcg_rt_shutdown(rt);
	umcg_rt_get_stats(rt, &st);
	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	long late = 0;
	for (long i = 0; i < n; i++)
		late += lat[i] > 1000000;
	printf("lat_p50_us %.1f lat_p99_us %.1f lat_max_us %.1f\n", (double)lat[n / 2] / 1e3,
	       (double)lat[n * 99 / 100] / 1e3, (double)lat[n - 1] / 1e3);
	printf("# late > 1 ms: %.1f %%; preemption timer: %s\n", 100.0 * (double)late / (double)n,
	       timer_stats);
	printf("# preempt signals %llu, preempts %llu, blocks %llu, wakes %llu\n",
	       (unsigned long long)st.preempt_signals, (unsigned long long)st.preempts,
	       (unsigned long long)st.blocks, (unsigned long long)st.wakes);
	umcg_rt_destroy(rt);
	free(b);
	free(lat);
	return 0;
}
