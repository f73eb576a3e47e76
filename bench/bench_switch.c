/* SPDX-License-Identifier: MIT */
/*
 * bench_switch - server -> worker -> server round trip through umcg_wait,
 * against a raw futex ping-pong between two plain threads.
 *
 * UMCG: the server runs the worker (own state IDLE, worker RUNNING,
 * next_tid = worker, umcg_wait(0,0)); the worker yields back (own state
 * IDLE, server IDLE -> RUNNING, umcg_wait(0,0), which wakes server_tid).
 * Baseline: thread A posts B's futex word and waits on its own; B waits,
 * then posts A (FUTEX_WAKE + FUTEX_WAIT, private futexes).
 *
 * Metrics per round trip i (thread 0 = server / A, thread 1 = worker / B):
 *   rtt  t3 - t0: thread 0 before the switch -> thread 0 running again
 *   s2w  t1 - t0: thread 0 before the switch -> thread 1 running
 *   w2s  t3 - t2: thread 1 before its switch back -> thread 0 running
 * Each is measured with both threads pinned to one CPU, to two CPUs and
 * unpinned, and (UMCG only) with UMCG_TUNE_CURRENT_CPU_HINT 0 and 1.
 * "samecpu" is the share of round trips in which both threads ran on the
 * same CPU (sched_getcpu() of thread 1 before its switch back and of
 * thread 0 after it). Last row, "repin": the cost of one
 * sched_setaffinity() move of a sleeping thread, what the WF_CURRENT_CPU
 * emulation pays when it has to move a wakee.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "bench_common.h"
#include "umcg_lists.h"

static struct ctx {
	struct bench_server srv;
	struct umcg_task wtask;
	uint64_t iwl, isl;
	_Atomic uint32_t wtid;
	_Atomic int stop;
	_Atomic uint64_t t1, t2;
	_Atomic int wcpu;
	_Atomic uint32_t sem_a, sem_b;
	enum bench_pin pin;
	size_t total;
	uint64_t *s2w, *w2s, *rtt;
	long samecpu;
} C;

/* ---- UMCG --------------------------------------------------------------- */

/*
 * Thread 0, after round trip i (sent at t0, back at t3): the samples, from
 * the worker's (thread 1's) stamps t1 (running) and t2 (switching back).
 */
static void record(size_t i, uint64_t t0, uint64_t t3)
{
	int cpu = sched_getcpu();
	C.s2w[i] = atomic_load_explicit(&C.t1, memory_order_relaxed) - t0;
	C.w2s[i] = t3 - atomic_load_explicit(&C.t2, memory_order_relaxed);
	C.rtt[i] = t3 - t0;
	if (cpu == atomic_load_explicit(&C.wcpu, memory_order_relaxed))
		C.samecpu++;
}

static void *umcg_server(void *arg)
{
	bench_pin_self(bench_pin_cpu(C.pin, 0));
	bench_server_register(&C.srv);
	bench_server_idle(&C.srv, &C.iwl, &C.isl, NULL);
	bench_server_take(&C.iwl, &C.wtask);
	uint32_t wtid = atomic_load(&C.wtid);
	for (size_t i = 0; i < C.total; i++) {
		uint64_t t0 = bench_now();
		uint32_t st = bench_server_run(&C.srv, &C.wtask, wtid);
		uint64_t t3 = bench_now();
		if (st != UMCG_TASK_IDLE)
			bench_die("switch: worker state %#x after its yield", st);
		record(i, t0, t3);
	}
	atomic_store(&C.stop, 1);
	uint32_t st = bench_server_run(&C.srv, &C.wtask, wtid);
	if (st != UMCG_TASK_RUNNING)
		bench_die("switch: finishing worker in state %#x", st);
	bench_server_unregister(&C.srv);
	return NULL;
}

static void *umcg_worker(void *arg)
{
	bench_pin_self(bench_pin_cpu(C.pin, 1));
	atomic_store(&C.wtid, umcg_gettid());
	bench_worker_register(&C.wtask, &C.iwl, &C.isl);
	struct umcg_task *me = &C.wtask, *srv = &C.srv.task;
	for (;;) {
		atomic_store_explicit(&C.t1, bench_now(), memory_order_relaxed);
		if (atomic_load(&C.stop))
			break;
		atomic_store_explicit(&C.wcpu, sched_getcpu(), memory_order_relaxed);
		atomic_store_explicit(&C.t2, bench_now(), memory_order_relaxed);
		/* yield: own IDLE, server IDLE -> RUNNING, umcg_wait wakes server_tid */
		umcg_state_store(me, UMCG_TASK_IDLE);
		uint32_t exp = UMCG_TASK_IDLE;
		if (!umcg_state_cas(srv, &exp, UMCG_TASK_RUNNING))
			bench_die("switch: server state %#x at yield", exp);
		if (umcg_wait(0, 0))
			bench_die("worker umcg_wait: %s", strerror(errno));
	}
	bench_worker_finish(me, srv);
	return NULL;
}

/* ---- futex baseline ----------------------------------------------------- */

static void *futex_a(void *arg)
{
	bench_pin_self(bench_pin_cpu(C.pin, 0));
	for (size_t i = 0; i < C.total; i++) {
		uint64_t t0 = bench_now();
		bench_sem_post(&C.sem_b);
		bench_sem_wait(&C.sem_a);
		uint64_t t3 = bench_now();
		record(i, t0, t3);
	}
	return NULL;
}

static void *futex_b(void *arg)
{
	bench_pin_self(bench_pin_cpu(C.pin, 1));
	for (size_t i = 0; i < C.total; i++) {
		bench_sem_wait(&C.sem_b);
		atomic_store_explicit(&C.t1, bench_now(), memory_order_relaxed);
		atomic_store_explicit(&C.wcpu, sched_getcpu(), memory_order_relaxed);
		atomic_store_explicit(&C.t2, bench_now(), memory_order_relaxed);
		bench_sem_post(&C.sem_a);
	}
	return NULL;
}

/* ---- cost of one re-pin ------------------------------------------------- */

/*
 * What the WF_CURRENT_CPU emulation pays when it has to move a wakee:
 * one sched_setaffinity() of another, sleeping thread to a single CPU
 * (alternating between the two CPUs, so every call really moves it).
 * The library does this at most once per wake-up, and only when the
 * wakee's last pinned CPU differs from the waker's (src/kern/sched.c).
 */
static _Atomic uint32_t repin_tid, repin_sem;

static void *repin_sleeper(void *arg)
{
	atomic_store(&repin_tid, umcg_gettid());
	bench_sem_wait(&repin_sem);
	return NULL;
}

static void measure_repin(const struct bench_opts *o)
{
	if (!bench_pin_available(BENCH_PIN_DIFF) || !(o->pins & (1u << BENCH_PIN_NONE)))
		return;
	size_t total = (size_t)(o->iters + o->warmup);
	void *h;
	bench_thread_start(repin_sleeper, NULL, &h);
	while (!atomic_load(&repin_tid))
		sched_yield();
	bench_sleep_us(1000); /* let it reach FUTEX_WAIT */
	cpu_set_t set[2];
	for (int i = 0; i < 2; i++) {
		CPU_ZERO(&set[i]);
		CPU_SET(bench_pin_cpu(BENCH_PIN_DIFF, i), &set[i]);
	}
	pid_t tid = (pid_t)atomic_load(&repin_tid);
	for (size_t i = 0; i < total; i++) {
		uint64_t t0 = bench_now();
		if (sched_setaffinity(tid, sizeof set[0], &set[i & 1]))
			bench_die("sched_setaffinity: %s", strerror(errno));
		C.rtt[i] = bench_now() - t0;
	}
	bench_sem_post(&repin_sem);
	bench_thread_join(h);
	struct bench_stats s;
	bench_stats_compute(C.rtt + o->warmup, (size_t)o->iters, &s);
	bench_report(o, "switch", "repin", BENCH_PIN_NONE, -1, &s, NULL,
		     "sched_setaffinity(sleeping thread, other cpu)");
}

/* ---- driver ------------------------------------------------------------- */

enum metric { M_RTT, M_S2W, M_W2S };

static void run_case(const struct bench_opts *o, const struct bench_ab *ab, enum bench_pin pin,
		     bool umcg, struct bench_result *r)
{
	uint64_t *s2w = C.s2w, *w2s = C.w2s, *rtt = C.rtt;
	size_t total = C.total;
	memset(&C, 0, sizeof C);
	C.s2w = s2w;
	C.w2s = w2s;
	C.rtt = rtt;
	C.total = total;
	C.pin = pin;
	bench_run_threads(umcg ? umcg_server : futex_a, umcg ? umcg_worker : futex_b);
	if (C.srv.timeouts)
		bench_die("server idle wait timed out %ld times (lost wake-up?)", C.srv.timeouts);
	size_t w = (size_t)o->warmup, n = (size_t)o->iters;
	long same = C.samecpu;
	bench_stats_compute(C.rtt + w, n, &r->s[M_RTT]);
	bench_stats_compute(C.s2w + w, n, &r->s[M_S2W]);
	bench_stats_compute(C.w2s + w, n, &r->s[M_W2S]);
	r->samecpu = 100.0 * (double)same / (double)total;
	r->notslept = 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_init();
	bench_parse_args(argc, argv, &o, 20000, 1000, 0,
			 "server->worker->server round trip through umcg_wait vs a raw futex "
			 "ping-pong.");
	C.total = (size_t)(o.iters + o.warmup);
	C.s2w = bench_alloc_samples(C.total);
	C.w2s = bench_alloc_samples(C.total);
	C.rtt = bench_alloc_samples(C.total);
	bench_print_banner("bench_switch", &o,
			   "thread 0 = server (futex: A), thread 1 = worker (futex: B); "
			   "rtt = round trip, s2w/w2s = one-way switches; x_ = ratio vs futex "
			   "baseline of the same pinning, measured just before");
	bench_print_table_header();
	static const struct bench_ab ab = {
	    .bench = "switch",
	    .metrics = {"rtt", "s2w", "w2s"},
	    .nmetrics = 3,
	    .measure = run_case,
	};
	bench_ab_run(&o, &ab);
	measure_repin(&o);
	return 0;
}
