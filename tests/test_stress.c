/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - many workers, few servers, every worker blocking over
 * and over: lost wake-ups stall the run (a watchdog, and failing that the
 * TEST_T timeout, turn that into a failure), lost or duplicated workers
 * break the exact counts.
 *
 * Servers run the full scheduler loop: take every idle worker (FIFO), run
 * each until its server is woken again, and with nothing to do go idle on
 * the idle-servers stack (sched_util's su_server_idle: no timeout). The
 * server that sees the last worker finish sets g.stop and kicks the others
 * out of their idle sleep.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "harness.h"
#include "sched_util.h"
#include "umcg.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"

/*
 * These tests count one switch per wrapped call: the explicit block and
 * wake points. Transparent detection reports only calls that really sleep
 * (tests/test_detect.c has its own stress test), so it is off here.
 */
__attribute__((constructor)) static void explicit_points_only(void)
{
	umcg_tune(UMCG_TUNE_DETECT, 0);
}

#define MAX_SERVERS 8

static struct su_group g;
static struct su_server servers[MAX_SERVERS];
static struct su_worker *workers;
static int nservers, nworkers;
static long ops_per_worker;
static _Atomic int servers_ready;
static _Atomic int finished_seen; /* workers that finished, as seen by their servers */

static void stop_all(struct su_server *self)
{
	atomic_store(&g.stop, 1);
	for (int i = 0; i < nservers; i++)
		if (&servers[i] != self)
			su_server_kick(&self->task, &servers[i]);
}

static void *server_main(void *arg)
{
	struct su_server *s = arg;
	su_server_register(s, &g);
	atomic_fetch_add(&servers_ready, 1);
	struct su_worker **batch = calloc((size_t)nworkers, sizeof *batch);
	CHECK(batch);
	long ran = 0;
	while (!atomic_load(&g.stop)) {
		int n = su_pop_all_fifo(&g, batch, nworkers);
		for (int i = 0; i < n; i++) {
			CHECK_EQ(umcg_state_load(&batch[i]->task), UMCG_TASK_IDLE);
			uint32_t st = su_run(s, batch[i]);
			ran++;
			/* it finished under us (not: blocked here, then finished elsewhere) */
			if (atomic_load(&batch[i]->done) == s) {
				CHECK_EQ(st, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
				/* the last one: no worker is left, nobody else may notice */
				if (atomic_fetch_add(&finished_seen, 1) + 1 == nworkers)
					stop_all(s);
			}
		}
		if (!n)
			su_server_idle(s, 0);
	}
	free(batch);
	su_server_unregister(s);
	return (void *)ran;
}

/*
 * Watchdog: fail (with a picture of the scheduler) when no server returned
 * from a worker for STALL_SECS: a lost wake-up, rather than waiting for the
 * TEST_T timeout. Stalls of a healthy run last milliseconds.
 */
#define STALL_SECS 15
static _Atomic int stress_over;

static void *watchdog(void *arg)
{
	long last = -1;
	uint64_t since = umcg_now_ns();
	while (!atomic_load(&stress_over)) {
		su_msleep(100);
		long runs = atomic_load(&g.runs);
		if (runs != last) {
			last = runs;
			since = umcg_now_ns();
			continue;
		}
		if (umcg_now_ns() - since < STALL_SECS * 1000000000ull)
			continue;
		char st[MAX_SERVERS * 12 + 1] = "";
		for (int i = 0; i < nservers; i++)
			snprintf(st + strlen(st), sizeof st - strlen(st), " %#x%s",
				 umcg_state_load(&servers[i].task),
				 umcg_idle_servers_is_deleted(&servers[i].task) ? "d" : "");
		th_fail(__FILE__, __LINE__,
			"no progress for %d s (lost wake-up?): runs %ld, registered %ld, "
			"finished %ld, idle workers queued: %s, idle servers: %s, server states:%s",
			STALL_SECS, runs, (long)g.registered, (long)g.finished,
			umcg_idle_workers_empty(&g.iwl) ? "no" : "yes",
			umcg_idle_servers_empty(&g.isl) ? "none" : "some", st);
	}
	return NULL;
}

struct stress_result {
	double secs;
	long ops, runs;
};

/* Run nw workers with payload fn on ns servers; check the exact counts. */
static struct stress_result run_stress(int ns, int nw, int window, su_payload_fn fn,
				       long expect_ops)
{
	nservers = ns;
	nworkers = nw;
	CHECK(ns <= MAX_SERVERS);
	CHECK_EQ(posix_memalign((void **)&workers, 64, (size_t)nw * sizeof *workers), 0);
	memset(workers, 0, (size_t)nw * sizeof *workers);
	uint64_t t0 = umcg_now_ns();
	pthread_t wd, sth[MAX_SERVERS];
	CHECK_EQ(pthread_create(&wd, NULL, watchdog, NULL), 0);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, su_stack_size());
	for (int i = 0; i < ns; i++)
		CHECK_EQ(pthread_create(&sth[i], &a, server_main, &servers[i]), 0);
	pthread_attr_destroy(&a);
	while (atomic_load(&servers_ready) < ns)
		sched_yield();
	/* window: at most that many worker threads alive at once (0: all) */
	int joined = 0;
	for (int i = 0; i < nw; i++) {
		workers[i].id = i;
		su_worker_start(&workers[i], &g, fn, NULL);
		if (window && i + 1 - joined >= window)
			su_worker_join(&workers[joined++]);
	}
	while (joined < nw)
		su_worker_join(&workers[joined++]);
	long runs = 0;
	for (int i = 0; i < ns; i++) {
		void *ran;
		CHECK_EQ(pthread_join(sth[i], &ran), 0);
		runs += (long)ran;
	}
	atomic_store(&stress_over, 1);
	CHECK_EQ(pthread_join(wd, NULL), 0);
	struct stress_result r = {(double)(umcg_now_ns() - t0) / 1e9, 0, runs};
	/* exact counts */
	CHECK_EQ(g.registered, nw);
	CHECK_EQ(g.finished, nw);
	CHECK_EQ(finished_seen, nw);
	for (int i = 0; i < nw; i++) {
		CHECK(atomic_load(&workers[i].done) != NULL);
		r.ops += workers[i].count;
	}
	CHECK_EQ(r.ops, expect_ops);
	CHECK_EQ(g.bad_state, 0);
	CHECK_EQ(g.runs, runs);
	CHECK_EQ(g.idle_timeout, 0);
	CHECK(g.idle_woken <= ns); /* only the final kicks wake servers otherwise */
	CHECK(umcg_idle_workers_empty(&g.iwl));
	CHECK(umcg_idle_servers_empty(&g.isl));
	/* a run ends when the worker blocks (once per op) or finishes: nothing else
	 * makes a server in su_run() RUNNING */
	/*
	 * Kernel backend: a run ends at every real sleep of the worker, not at
	 * a call: a usleep(0) that did not sleep ends none, and a sleep outside
	 * the payload's calls ends one too (a page fault waiting for the
	 * mmap_lock while main maps 1000 thread stacks, a contended libc lock).
	 * So no exact count there: in a quiet guest the 1000-worker case had
	 * 73-208 runs more than ops + workers (3 of 4 boots), under load far
	 * fewer (sleeps that did not sleep). The bound below only catches
	 * runaway runs; the exact per-run protocol checks (bad_state, g.runs,
	 * the ops) hold on both backends.
	 */
	if (th_on_kernel())
		CHECK(runs <= 2 * (expect_ops + nw) && runs >= nw);
	else
		CHECK_EQ(runs, expect_ops + nw);
	printf("    %d servers, %d workers: %ld ops in %.2fs (%.1f us/op), %ld runs, "
	       "idle: %ld popped, %ld rechecks, %ld kicked\n",
	       ns, nw, r.ops, r.secs, r.secs * 1e6 / (double)(r.ops ? r.ops : 1), runs,
	       (long)g.idle_popped, (long)g.idle_recheck, (long)g.idle_woken);
	free(workers);
	return r;
}

/* ---- 4 servers x 1000 workers x N umcg_usleep(0) -------------------------- */

static void payload_usleep0(struct su_worker *w)
{
	for (long i = 0; i < ops_per_worker; i++) {
		CHECK_EQ(umcg_usleep(0), 0);
		su_check_running(w); /* counted in g.bad_state */
		w->count++;
	}
}

/*
 * The spec's numbers: 4 servers, 1000 workers, 1000 blocking operations
 * each (1M in all; ~15-20 s plain on the 2-CPU reference VM, where
 * umcg_usleep(0) sleeps ~100 us: nanosleep's timer slack).
 * UMCG_STRESS_OPS overrides the per-worker count; sanitizer builds divide
 * it by UMCG_TEST_SCALE.
 */
#define OPS_PLAIN 1000

TEST_T(stress_4_servers_1000_workers_usleep, 150)
{
	const char *e = getenv("UMCG_STRESS_OPS");
	long ops = e ? atol(e) : OPS_PLAIN;
	ops_per_worker = th_scaled(ops, 5);
	run_stress(4, 1000, 0, payload_usleep0, 1000 * ops_per_worker);
}

/* ---- 2 servers, worker pairs ping-ponging over pipes ---------------------- */

#define PAIRS 100
static int pipes[PAIRS][2][2]; /* [pair][0: a->b, 1: b->a][read, write] */

static void payload_pingpong(struct su_worker *w)
{
	int pair = (int)(w->id / 2);
	bool a = w->id % 2 == 0;
	int rfd = pipes[pair][a ? 1 : 0][0], wfd = pipes[pair][a ? 0 : 1][1];
	char c = 'x';
	for (long i = 0; i < ops_per_worker; i += 2) {
		/* each wrapped call is one block point and one wake point */
		if (a) {
			CHECK_EQ(umcg_write(wfd, &c, 1), 1);
			su_check_running(w);
			CHECK_EQ(umcg_read(rfd, &c, 1), 1);
		} else {
			CHECK_EQ(umcg_read(rfd, &c, 1), 1);
			su_check_running(w);
			CHECK_EQ(umcg_write(wfd, &c, 1), 1);
		}
		su_check_running(w);
		w->count += 2;
	}
}

TEST_T(stress_2_servers_pipe_pairs_1M_transitions, 120)
{
	for (int i = 0; i < PAIRS; i++)
		for (int d = 0; d < 2; d++)
			CHECK_EQ(pipe2(pipes[i][d], O_CLOEXEC), 0);
	long total = th_scaled(1000000, 20000);
	ops_per_worker = total / (2 * PAIRS);
	ops_per_worker -= ops_per_worker % 2;
	run_stress(2, 2 * PAIRS, 0, payload_pingpong, 2L * PAIRS * ops_per_worker);
}

/* ---- registration churn: workers come and go while others run ------------- */

/*
 * 2 servers; 3000 short-lived workers (5 blocking operations each), at most
 * 40 alive at once: registrations, finishes and unregistrations overlap all
 * the time, so libumcg's per-task records are recycled while servers and
 * workers still wake each other.
 */
TEST_T(stress_churn_register_unregister, 120)
{
	int nw = (int)th_scaled(3000, 300);
	ops_per_worker = 5;
	run_stress(2, nw, 40, payload_usleep0, nw * ops_per_worker);
}
