/* SPDX-License-Identifier: MIT */
/*
 * test_rt_preempt.c - the strict-priority policy and time-slice
 * preemption: a worker in an endless loop is preempted for a more urgent
 * one, equal priorities share one server by time slices, an interactive
 * worker keeps a short wake-up latency beside CPU-bound ones, and the
 * errno of a preemption without a tick; umcg_rt_stopping() ends endless
 * workers at the shutdown.
 */
#include <pthread.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"
#include "umcg_rt.h"
#include "umcg_wrap.h"

static struct umcg_rt *mk_prio_design(int servers, uint64_t slice_ns, enum umcg_idle_design d)
{
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.idle_design = d;
	a.nr_servers = servers;
	a.policy = &umcg_rt_policy_prio;
	a.preempt_slice_ns = slice_ns;
	struct umcg_rt *rt = umcg_rt_create(&a);
	CHECK(rt != NULL);
	return rt;
}

static struct umcg_rt *mk_prio(int servers, uint64_t slice_ns)
{
	return mk_prio_design(servers, slice_ns, UMCG_IDLE_STACK);
}

static struct umcg_rt_spawn_attr prio_attr(int p)
{
	struct umcg_rt_spawn_attr sa = {.flags = 0, .priority = p};
	return sa;
}

TEST_T(preempt_needs_tick, 10)
{
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.preempt_slice_ns = 1000000;
	CHECK(umcg_rt_create(&a) == NULL); /* fifo has no tick */
	CHECK_EQ(errno, EINVAL);
	umcg_rt_attr_init(&a);
	a.preempt_signal = 9; /* SIGKILL */
	CHECK(umcg_rt_create(&a) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(umcg_rt_policy_by_name("prio") == &umcg_rt_policy_prio);
}

/* ---- an endless loop is preempted for a more urgent worker ------------------------- */

static _Atomic int stop, spinning;
static _Atomic long spins[2];

static void *endless(void *arg)
{
	long i = (long)(intptr_t)arg;
	atomic_store(&spinning, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		atomic_fetch_add_explicit(&spins[i], 1, memory_order_relaxed);
	return NULL;
}

static void *stopper(void *arg)
{
	atomic_store(&stop, 1);
	return (void *)(intptr_t)umcg_rt_server_index();
}

TEST_T(endless_loop_preempted_for_higher_priority, 30)
{
	struct umcg_rt *rt = mk_prio(1, 2000000);
	atomic_store(&stop, 0);
	atomic_store(&spinning, 0);
	struct umcg_rt_spawn_attr lo = prio_attr(0), hi = prio_attr(5);
	struct umcg_rt_worker *a = umcg_rt_spawn(rt, endless, (void *)0, &lo);
	CHECK(a != NULL);
	while (!atomic_load(&spinning))
		usleep(1000);
	/* the only server is busy for good: only preemption lets this run */
	struct umcg_rt_worker *b = umcg_rt_spawn(rt, stopper, NULL, &hi);
	CHECK(b != NULL);
	void *ret = (void *)-1L;
	CHECK_EQ(umcg_rt_join(b, &ret), 0);
	CHECK_EQ((long)(intptr_t)ret, 0);
	CHECK_EQ(umcg_rt_join(a, NULL), 0);
	struct umcg_rt_stats st;
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, &st);
	CHECK(st.preempt_signals >= 1);
	CHECK(st.preempts >= 1);
	CHECK(st.preempts <= st.preempt_signals);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

static void equal_priorities_share(enum umcg_idle_design d)
{
	struct umcg_rt *rt = mk_prio_design(1, 2000000, d);
	atomic_store(&stop, 0);
	atomic_store(&spins[0], 0);
	atomic_store(&spins[1], 0);
	struct umcg_rt_spawn_attr sa = prio_attr(1);
	struct umcg_rt_worker *a = umcg_rt_spawn(rt, endless, (void *)0, &sa);
	struct umcg_rt_worker *b = umcg_rt_spawn(rt, endless, (void *)1, &sa);
	CHECK(a && b);
	/*
	 * 200 ms, or longer until both ran: on a loaded machine (TSan, 16
	 * runs in parallel) the second thread's start alone took that long.
	 * Without time slices the second never runs and this times out.
	 */
	usleep(200000);
	while (!atomic_load(&spins[0]) || !atomic_load(&spins[1]))
		usleep(10000);
	long s0 = atomic_load(&spins[0]), s1 = atomic_load(&spins[1]);
	atomic_store(&stop, 1); /* main is no worker: it can always set it */
	CHECK_EQ(umcg_rt_join(a, NULL), 0);
	CHECK_EQ(umcg_rt_join(b, NULL), 0);
	struct umcg_rt_stats st;
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, &st);
	printf("    spins %ld / %ld; %llu signals, %llu preempts\n", s0, s1,
	       (unsigned long long)st.preempt_signals, (unsigned long long)st.preempts);
	CHECK(s0 > 0);
	CHECK(s1 > 0);
	CHECK(st.preempts >= 2); /* both ran: the first was preempted at least once */
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

/* stack: a preempted worker's wake point is quiet (the timer's next look drains it) */
TEST_T(equal_priorities_share_by_time_slices, 30)
{
	equal_priorities_share(UMCG_IDLE_STACK);
}

/* eventfd: it writes the group's eventfd, which wakes the timer */
TEST_T(equal_priorities_share_by_time_slices_eventfd, 30)
{
	equal_priorities_share(UMCG_IDLE_EVENTFD);
}

/* ---- interactive latency beside CPU-bound workers ----------------------------------- */

static uint64_t lat[1000];
static long nr_lat;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void *interactive(void *arg)
{
	for (long i = 0; i < nr_lat; i++) {
		uint64_t due = umcg_now_ns() + 1000000;
		umcg_rt_sleep_ns(1000000);
		uint64_t now = umcg_now_ns();
		lat[i] = now > due ? now - due : 0; /* timer expiry -> running again */
	}
	return NULL;
}

TEST_T(interactive_latency_beside_batch, 60)
{
	struct umcg_rt *rt = mk_prio(2, 1000000);
	atomic_store(&stop, 0);
	nr_lat = th_scaled(300, 50);
	struct umcg_rt_spawn_attr lo = prio_attr(0), hi = prio_attr(7);
	struct umcg_rt_worker *batch[3];
	for (int i = 0; i < 3; i++)
		CHECK((batch[i] = umcg_rt_spawn(rt, endless, (void *)0, &lo)) != NULL);
	struct umcg_rt_worker *iw = umcg_rt_spawn(rt, interactive, NULL, &hi);
	CHECK(iw != NULL);
	CHECK_EQ(umcg_rt_join(iw, NULL), 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(umcg_rt_join(batch[i], NULL), 0);
	qsort(lat, (size_t)nr_lat, sizeof lat[0], cmp_u64);
	uint64_t p50 = lat[nr_lat / 2], p99 = lat[nr_lat * 99 / 100];
	fprintf(stderr, "    interactive wake-up latency: p50 %.1f us, p99 %.1f us, max %.1f us\n",
		(double)p50 / 1e3, (double)p99 / 1e3, (double)lat[nr_lat - 1] / 1e3);
	/* without preemption it would wait behind an endless loop for ever */
	CHECK(p50 < 20000000);
	struct umcg_rt_stats st;
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, &st);
	CHECK(st.preempts >= 1);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

/*
 * Wake-up preemption: a slice of 400 ms made the timer look every 100 ms
 * (before it slept until a slice end or a wake-up), so an urgent worker
 * that waited for the timer waited ~50 ms per wake-up. Waking from
 * umcg_rt_sleep_ns() it preempts the batch worker itself (user space), or
 * the wake point, finding no idle server, writes the timer's eventfd (the
 * kernel's wake hook queues the worker before it returns to user space,
 * so it comes too late for the former) and the timer looks at once. Each
 * idle design: the stack and tid word designs point the workers'
 * idle_fd_ptr at the timer's own eventfd; the eventfd design shares the
 * group's.
 */
static void *interactive_wrapped(void *arg)
{
	for (long i = 0; i < nr_lat; i++) {
		uint64_t due = umcg_now_ns() + 1000000;
		struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
		/* a wrapped call: its block and wake points, no rt__wake_preempt() */
		while (umcg_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		uint64_t now = umcg_now_ns();
		lat[i] = now > due ? now - due : 0;
	}
	return NULL;
}

static void wakeup_preempts_at_once(enum umcg_idle_design d, umcg_rt_fn fn)
{
	struct umcg_rt *rt = mk_prio_design(1, 400000000, d);
	atomic_store(&stop, 0);
	atomic_store(&spinning, 0);
	nr_lat = 20;
	struct umcg_rt_spawn_attr lo = prio_attr(0), hi = prio_attr(7);
	struct umcg_rt_worker *b = umcg_rt_spawn(rt, endless, (void *)0, &lo);
	CHECK(b != NULL);
	while (!atomic_load(&spinning))
		usleep(1000);
	/* spawned behind a running batch worker: the spawn pokes the timer */
	uint64_t t0 = umcg_now_ns();
	struct umcg_rt_worker *iw = umcg_rt_spawn(rt, fn, NULL, &hi);
	CHECK(iw != NULL);
	CHECK_EQ(umcg_rt_join(iw, NULL), 0);
	uint64_t took = umcg_now_ns() - t0;
	atomic_store(&stop, 1);
	CHECK_EQ(umcg_rt_join(b, NULL), 0);
	qsort(lat, (size_t)nr_lat, sizeof lat[0], cmp_u64);
	fprintf(stderr, "    wake-up to running: p50 %.1f us, max %.1f us; 20 rounds in %.1f ms\n",
		(double)lat[nr_lat / 2] / 1e3, (double)lat[nr_lat - 1] / 1e3, (double)took / 1e6);
	CHECK(lat[nr_lat / 2] < 20000000); /* a look per quarter slice: ~50 ms */
	/*
	 * No bound on `took`: a signal lost under TSan is resent a slice
	 * (400 ms here) later, and one such round would break it.
	 */
	struct umcg_rt_stats st;
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, &st);
	/* a wake-up that finds the server free (the batch worker not yet back) needs none */
	CHECK(st.preempt_signals >= 1);
	CHECK(st.preempts >= 1);
	CHECK(st.preempts <= st.preempt_signals);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

TEST_T(sleep_wakeup_preempts_at_once, 60)
{
	wakeup_preempts_at_once(UMCG_IDLE_STACK, interactive);
}

TEST_T(sleep_wakeup_preempts_at_once_eventfd, 60)
{
	wakeup_preempts_at_once(UMCG_IDLE_EVENTFD, interactive);
}

TEST_T(sleep_wakeup_preempts_at_once_tid, 60)
{
	wakeup_preempts_at_once(UMCG_IDLE_TID_WORD, interactive);
}

TEST_T(wrapped_wakeup_preempts_at_once, 60)
{
	wakeup_preempts_at_once(UMCG_IDLE_STACK, interactive_wrapped);
}

TEST_T(wrapped_wakeup_preempts_at_once_eventfd, 60)
{
	wakeup_preempts_at_once(UMCG_IDLE_EVENTFD, interactive_wrapped);
}

/* ---- the timer sleeps while no run can reach its slice with work queued ------------- */

/* The timer thread's voluntary context switches (its sleeps), or -1. */
static long timer_sleeps(void)
{
	char path[300], line[128];
	long n = -1;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int is = fgets(line, sizeof line, f) && !strncmp(line, "umcg-rt-timer", 13);
		fclose(f);
		if (!is)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof line, f))
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
				break;
		if (f)
			fclose(f);
		break;
	}
	if (d)
		closedir(d);
	return n;
}

/*
 * With a 200 us slice the timer used to wake every 50 us (4000 times in
 * 200 ms). Now it sleeps while nothing is queued: idle, and beside one
 * endless worker on its only server (its slice ends, but no tick could
 * preempt it for nothing). Then a second endless worker of the same
 * priority: both get slices (the timer looks at each slice end).
 */
TEST_T(timer_sleeps_while_nothing_is_queued, 60)
{
	struct umcg_rt *rt = mk_prio(1, 200000);
	atomic_store(&stop, 0);
	atomic_store(&spinning, 0);
	atomic_store(&spins[0], 0);
	atomic_store(&spins[1], 0);
	usleep(20000);
	long n0 = timer_sleeps();
	CHECK(n0 >= 0);
	usleep(200000);
	long n1 = timer_sleeps();
	struct umcg_rt_spawn_attr sa = prio_attr(1);
	struct umcg_rt_worker *a = umcg_rt_spawn(rt, endless, (void *)0, &sa);
	CHECK(a != NULL);
	while (!atomic_load(&spinning))
		usleep(1000);
	usleep(20000);
	long n2 = timer_sleeps();
	usleep(200000);
	long n3 = timer_sleeps();
	struct umcg_rt_worker *b = umcg_rt_spawn(rt, endless, (void *)1, &sa);
	CHECK(b != NULL);
	usleep(200000);
	while (!atomic_load(&spins[1]))
		usleep(10000);
	long n4 = timer_sleeps();
	atomic_store(&stop, 1);
	CHECK_EQ(umcg_rt_join(a, NULL), 0);
	CHECK_EQ(umcg_rt_join(b, NULL), 0);
	struct umcg_rt_stats st;
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, &st);
	fprintf(stderr,
		"    timer sleeps in 200 ms: idle %ld, one endless worker %ld; "
		"two: %ld (%llu preempts)\n",
		n1 - n0, n3 - n2, n4 - n3, (unsigned long long)st.preempts);
	CHECK(n1 - n0 <= 10);
	CHECK(n3 - n2 <= 10);
	CHECK(st.preempts >= 2); /* both ran: the first was preempted at least once */
	CHECK(n4 - n3 >= 2);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

/* ---- preemption does not break the sync objects -------------------------------------- */

static struct umcg_rt_mutex m;
static long counter, per_worker;

static void *incr_spin(void *arg)
{
	for (long i = 0; i < per_worker; i++) {
		umcg_rt_mutex_lock(&m);
		long v = counter;
		for (volatile int k = 0; k < 2000; k++) /* long enough to be preempted inside */
			;
		counter = v + 1;
		umcg_rt_mutex_unlock(&m);
	}
	return NULL;
}

TEST_T(mutex_exact_count_under_preemption, 120)
{
	struct umcg_rt *rt = mk_prio(2, 200000);
	umcg_rt_mutex_init(&m);
	counter = 0;
	per_worker = th_scaled(2000, 50);
	enum { W = 8 };
	struct umcg_rt_worker *w[W];
	for (int i = 0; i < W; i++) {
		struct umcg_rt_spawn_attr sa = prio_attr(i % 3);
		CHECK((w[i] = umcg_rt_spawn(rt, incr_spin, NULL, &sa)) != NULL);
	}
	for (int i = 0; i < W; i++)
		CHECK_EQ(umcg_rt_join(w[i], NULL), 0);
	CHECK_EQ(counter, W * per_worker);
	struct umcg_rt_stats st;
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, &st);
	fprintf(stderr, "    preempt signals %llu, preempts %llu, parks %llu\n",
		(unsigned long long)st.preempt_signals, (unsigned long long)st.preempts,
		(unsigned long long)st.parks);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

/* ---- umcg_rt_stopping(): endless workers end at the shutdown -------------------------- */

static _Atomic int until_stop_ran;

static void *until_stopping(void *arg)
{
	(void)arg;
	struct umcg_rt *rt = umcg_rt_current();
	atomic_fetch_add(&until_stop_ran, 1);
	while (!umcg_rt_stopping(rt)) /* never yields: only preemption shares the server */
		;
	return NULL;
}

TEST_T(stopping_ends_endless_detached_workers, 30)
{
	struct umcg_rt *rt = mk_prio(1, 2000000);
	atomic_store(&until_stop_ran, 0);
	CHECK_EQ(umcg_rt_stopping(NULL), 0);
	CHECK_EQ(umcg_rt_stopping(rt), 0);
	struct umcg_rt_spawn_attr sa = prio_attr(1);
	sa.flags = UMCG_RT_SPAWN_DETACHED;
	for (int i = 0; i < 2; i++)
		CHECK(umcg_rt_spawn(rt, until_stopping, NULL, &sa) != NULL);
	/* both run on the one server: the second only by a time slice */
	for (int i = 0; i < 2000 && atomic_load(&until_stop_ran) < 2; i++)
		usleep(1000);
	CHECK_EQ(atomic_load(&until_stop_ran), 2);
	CHECK_EQ(umcg_rt_stopping(rt), 0);
	CHECK_EQ(umcg_rt_shutdown(rt), 0); /* returns: both saw the flag */
	CHECK_EQ(umcg_rt_stopping(rt), 1);
	struct umcg_rt_stats st;
	umcg_rt_get_stats(rt, &st);
	CHECK_EQ(st.exits, 2);
	CHECK_EQ(st.yields, 0);
	/*
	 * The second got the server from a time slice - or, on a loaded
	 * machine, because the first really slept in the kernel (detection
	 * reports it: seen under TSan with 20 runs in parallel).
	 */
	CHECK(st.preempts + st.blocks >= 1);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

/*
 * A preemption signal that reaches a worker the server has marked running
 * but not yet made RUNNING does nothing; the timer must signal that run
 * again (before the fix, the run kept its server for good: one of three
 * runs of 20 rounds hung; now 50 rounds). Two later fixes: such a signal
 * left the thread's block/wake pair open, so that every later preemption
 * of the endless run was a nested no-op; and a signal that is lost (under
 * TSan, a second one merges into a first still queued) is sent again a
 * slice later (TSan, 10 runs in parallel: 9 hung before, 0 after).
 */
TEST_T(urgent_worker_beside_fresh_endless_ones, 90)
{
	for (int round = 0; round < 50; round++) {
		struct umcg_rt *rt = mk_prio(1, 1000000);
		atomic_store(&stop, 0);
		struct umcg_rt_spawn_attr lo = prio_attr(0), hi = prio_attr(7);
		struct umcg_rt_worker *a = umcg_rt_spawn(rt, endless, (void *)0, &lo);
		struct umcg_rt_worker *b = umcg_rt_spawn(rt, endless, (void *)1, &lo);
		usleep((useconds_t)(round % 5) * 200); /* vary where the first tick lands */
		struct umcg_rt_worker *c = umcg_rt_spawn(rt, stopper, NULL, &hi);
		CHECK(a && b && c);
		CHECK_EQ(umcg_rt_join(c, NULL), 0); /* hangs if a preemption was lost */
		CHECK_EQ(umcg_rt_join(a, NULL), 0);
		CHECK_EQ(umcg_rt_join(b, NULL), 0);
		CHECK_EQ(umcg_rt_destroy(rt), 0);
	}
}
