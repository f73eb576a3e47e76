/* SPDX-License-Identifier: MIT */
/*
 * bench_cycle.c - the block/wake cycle of bench_block and bench_idle
 * (bench_common.h "block/wake cycle"): one server and one worker thread
 * (or two plain threads for the futex baseline) and the per-case
 * measurement over their cycles.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "bench_common.h"
#include "umcg_idle.h"
#include "umcg_lists.h"

/* ---- block/wake cycle ---------------------------------------------------- */

static struct cycle_ctx {
	struct bench_server srv;
	struct umcg_task wtask;
	uint64_t iwl, isl;
	_Atomic uint32_t wtid;
	_Atomic int stop;
	_Atomic uint32_t sem_s, sem_w;
	_Atomic size_t srv_cycles; /* cycles the server saw (a block ended its run) */
	enum bench_pin pin;
	long sleep_us;
	struct bench_cycle *c;
	size_t n;
} CY;

/*
 * BENCH_IDLE=eventfd: the cycle's idle server waits on the review's
 * idle_fd (umcg_idle.h) instead of the idle-servers stack; the worker
 * names the fd (idle_fd_ptr) and no stack. The kernel backend's wake hook
 * then signals the eventfd (eventfd_signal() on the return-to-user path),
 * the emulation's wake point writes it.
 */
static bool cycle_eventfd;
static struct umcg_idle_fd cycle_ifd;

static enum bench_idle_result cycle_idle_eventfd(uint64_t *woke_ns)
{
	enum bench_idle_result res = BENCH_IDLE_FOUND_WORK;
	for (;;) {
		if (!umcg_idle_workers_empty(&CY.iwl)) {
			*woke_ns = bench_now();
			return res;
		}
		if (!umcg_idle_fd_prepare(&cycle_ifd, &CY.iwl))
			continue; /* queued meanwhile */
		struct pollfd p = {cycle_ifd.fd, POLLIN, 0};
		int r = poll(&p, 1, 10000);
		uint64_t t = bench_now();
		umcg_idle_fd_finish(&cycle_ifd);
		if (r == 0)
			CY.srv.timeouts++;
		else if (!umcg_idle_workers_empty(&CY.iwl)) {
			*woke_ns = t;
			return BENCH_IDLE_SLEPT;
		}
	}
}

static void *cycle_umcg_server(void *arg)
{
	bench_pin_self(bench_pin_cpu(CY.pin, 0));
	bench_server_register(&CY.srv);
	uint64_t t0;
	if (cycle_eventfd)
		cycle_idle_eventfd(&t0);
	else
		bench_server_idle(&CY.srv, &CY.iwl, &CY.isl, NULL);
	bench_server_take(&CY.iwl, &CY.wtask);
	uint32_t wtid = atomic_load(&CY.wtid);
	for (size_t i = 0; i < CY.n; i++) {
		uint32_t st = bench_server_run(&CY.srv, &CY.wtask, wtid);
		CY.c[i].t_srv = bench_now();
		atomic_store(&CY.srv_cycles, i + 1);
		/* IDLE: it blocked and already came back (we were slow to run) */
		if (st != UMCG_TASK_BLOCKED && st != UMCG_TASK_IDLE)
			bench_die("cycle %zu: worker state %#x, expected BLOCKED", i, st);
		CY.c[i].idle_res =
		    (uint8_t)(cycle_eventfd
				  ? cycle_idle_eventfd(&CY.c[i].t_idle)
				  : bench_server_idle(&CY.srv, &CY.iwl, &CY.isl, &CY.c[i].t_idle));
		CY.c[i].cpu_srv = (int16_t)sched_getcpu();
		bench_server_take(&CY.iwl, &CY.wtask);
	}
	atomic_store(&CY.stop, 1);
	uint32_t st = bench_server_run(&CY.srv, &CY.wtask, wtid);
	if (st != UMCG_TASK_RUNNING)
		bench_die("cycle: finishing worker in state %#x", st);
	bench_server_unregister(&CY.srv);
	return NULL;
}

/*
 * The kernel backend's hooks run inside the sleep: the block hook before
 * the worker leaves the CPU, the wake hook before the sleep call returns
 * to user space. So there "the call returned" cannot be timestamped by
 * the worker; t_ret is then the sleep's deadline (an absolute sleep, timer
 * slack 1 ns), which adds the timer's expiry latency. With
 * BENCH_FROM_DEADLINE=1 in the environment every case (the user-space
 * backend and the futex baseline too) measures from the deadline, so that
 * runs on both backends compare.
 */
static bool cycle_from_deadline;

static uint64_t cycle_sleep(uint64_t t_block)
{
	if (!cycle_from_deadline) {
		bench_sleep_us(CY.sleep_us);
		return bench_now();
	}
	/*
	 * The deadline is taken right before the call: one that passes before
	 * the task sleeps (the call's own entry under TCG took tens of us)
	 * means no sleep, hence on the kernel no block and no cycle for the
	 * server. The cycle's "blk" still starts at t_block.
	 */
	(void)t_block;
	uint64_t dl = bench_now() + (uint64_t)CY.sleep_us * 1000u;
	struct timespec ts = {(time_t)(dl / 1000000000u), (long)(dl % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return dl;
}

static void *cycle_umcg_worker(void *arg)
{
	bench_pin_self(bench_pin_cpu(CY.pin, 1));
	if (cycle_from_deadline)
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	atomic_store(&CY.wtid, umcg_gettid());
	if (cycle_eventfd) { /* registration's own wake-up goes through the fd too */
		memset(&CY.wtask, 0, sizeof CY.wtask);
		CY.wtask.state = UMCG_TASK_IDLE;
		CY.wtask.api_version = UMCG_API_VERSION;
		CY.wtask.idle_workers_ptr = (uint64_t)(uintptr_t)&CY.iwl;
		CY.wtask.idle_fd_ptr = (uint64_t)(uintptr_t)&cycle_ifd;
		if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &CY.wtask))
			bench_die("umcg_ctl(REGISTER worker): %s", strerror(errno));
	} else {
		bench_worker_register(&CY.wtask, &CY.iwl, &CY.isl);
	}
	bool kern = umcg_backend() == UMCG_BACKEND_KERNEL; /* the kernel's hooks: no points */
	for (size_t i = 0; !atomic_load(&CY.stop); i++) {
		if (i >= CY.n)
			bench_die("cycle: worker ran past the last iteration");
		CY.c[i].t_block = bench_now();
		if (!kern && umcg_block_point() != 1)
			bench_die("cycle %zu: umcg_block_point did not block", i);
		CY.c[i].t_ret = cycle_sleep(CY.c[i].t_block);
		/*
		 * Kernel: a sleep that did not happen (the deadline passed while
		 * this vCPU was descheduled by a loaded host) was no block; the
		 * server did not see a cycle: do this one again.
		 */
		if (kern && atomic_load(&CY.srv_cycles) == i) {
			i--;
			continue;
		}
		CY.c[i].cpu_wrk = (int16_t)sched_getcpu();
		if (!kern && umcg_wake_point() != 1)
			bench_die("cycle %zu: umcg_wake_point did not park", i);
		CY.c[i].t_run = bench_now();
	}
	bench_worker_finish(&CY.wtask, &CY.srv.task);
	return NULL;
}

static void *cycle_futex_server(void *arg)
{
	bench_pin_self(bench_pin_cpu(CY.pin, 0));
	for (size_t i = 0; i < CY.n; i++) {
		bench_sem_wait(&CY.sem_s);
		CY.c[i].t_srv = bench_now();
		bool slept = bench_sem_wait(&CY.sem_s);
		CY.c[i].t_idle = bench_now();
		CY.c[i].cpu_srv = (int16_t)sched_getcpu();
		CY.c[i].idle_res = slept ? BENCH_IDLE_SLEPT : BENCH_IDLE_FOUND_WORK;
		bench_sem_post(&CY.sem_w);
	}
	return NULL;
}

static void *cycle_futex_worker(void *arg)
{
	bench_pin_self(bench_pin_cpu(CY.pin, 1));
	if (cycle_from_deadline)
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	for (size_t i = 0; i < CY.n; i++) {
		CY.c[i].t_block = bench_now();
		bench_sem_post(&CY.sem_s);
		CY.c[i].t_ret = cycle_sleep(CY.c[i].t_block);
		CY.c[i].cpu_wrk = (int16_t)sched_getcpu();
		bench_sem_post(&CY.sem_s);
		bench_sem_wait(&CY.sem_w);
		CY.c[i].t_run = bench_now();
	}
	return NULL;
}

void bench_cycle_run(enum bench_pin pin, bool umcg, long sleep_us, struct bench_cycle *c, size_t n)
{
	memset(&CY, 0, sizeof CY);
	memset(c, 0, n * sizeof *c);
	const char *e = getenv("BENCH_FROM_DEADLINE");
	cycle_from_deadline = umcg_backend() == UMCG_BACKEND_KERNEL || (e && e[0] == '1');
	e = getenv("BENCH_IDLE");
	cycle_eventfd = umcg && e && !strcmp(e, "eventfd");
	if (cycle_eventfd && umcg_idle_fd_init(&cycle_ifd))
		bench_die("umcg_idle_fd_init: %s", strerror(errno));
	CY.pin = pin;
	CY.sleep_us = sleep_us;
	CY.c = c;
	CY.n = n;
	bench_run_threads(umcg ? cycle_umcg_server : cycle_futex_server,
			  umcg ? cycle_umcg_worker : cycle_futex_worker);
	if (cycle_eventfd)
		umcg_idle_fd_destroy(&cycle_ifd);
	if (CY.srv.timeouts)
		bench_die("server idle wait timed out %ld times (lost wake-up?)", CY.srv.timeouts);
}

double bench_cycle_samecpu(const struct bench_cycle *c, size_t from, size_t to)
{
	size_t same = 0;
	for (size_t i = from; i < to; i++)
		same += c[i].cpu_wrk == c[i].cpu_srv;
	return to > from ? 100.0 * (double)same / (double)(to - from) : 0;
}

void bench_cycle_measure(const struct bench_opts *o, const struct bench_ab *ab, enum bench_pin pin,
			 bool umcg, struct bench_result *r)
{
	static struct bench_cycle *cyc;
	static uint64_t *v;
	size_t from = (size_t)o->warmup, total = (size_t)(o->warmup + o->iters);
	if (!cyc) {
		cyc = calloc(total, sizeof *cyc);
		v = bench_alloc_samples(total);
		if (!cyc)
			bench_die("out of memory");
	}
	bench_cycle_run(pin, umcg, o->sleep_us, cyc, total);
	r->samecpu = bench_cycle_samecpu(cyc, from, total);
	r->notslept = 0;
	for (int m = 0; m < ab->nmetrics; m++) {
		size_t k = 0, left_out = 0;
		for (size_t i = from; i < total; i++) {
			uint64_t x = ab->sample(&cyc[i], m);
			if (x == BENCH_NO_SAMPLE)
				left_out++;
			else
				v[k++] = x;
		}
		bench_stats_compute(v, k, &r->s[m]);
		if (left_out > r->notslept)
			r->notslept = left_out;
	}
}
