/* SPDX-License-Identifier: MIT */
/*
 * bench_detect - what transparent block detection costs and how fast it is
 * (docs/detection.md). One server and its worker, both pinned to one CPU
 * (the placement pinned servers give their workers), unless -p says
 * otherwise. Every case is measured in the same run as its baseline.
 *
 *   call     write() + read() of a pipe that has data, per call: libc's
 *            functions on a plain thread (baseline, found like libumcg finds
 *            them: dlsym(RTLD_NEXT)); libc's names on a plain thread (through
 *            libumcg's interposers: pass-through); a detected worker with the
 *            umcg_wrap.h wrappers (lazy) and with libc's names (interposed:
 *            lazy too); the wrappers with detection off (eager: a switch
 *            round trip).
 *   block    a worker's raw read() of an empty pipe -> its server running
 *            again (the watcher saw the sleep and did T6), the same through
 *            libc's read() (interposed: a lazy call); beside them the
 *            explicit umcg_block_point() and a futex hand-off (baseline).
 *   window   after a raw sleep that was taken over: time the worker ran
 *            its own code before the switch-in alarm parked it (0 when it
 *            parked before any user code, the intended case).
 *   compute  a worker that never blocks, 20 x 50 ms of computation:
 *            detection on vs off (loop iterations per second).
 *
 * On the kernel backend (UMCG_BACKEND=kernel, docs/kernel.md) the same
 * call and block cases measure the kernel's hooks instead: its block hook
 * sees the raw read() sleep. The cases that only the user-space detection
 * has (eager wrappers and detection off, the explicit block point, which
 * is a no-op there, the window, the compute overhead) are left out. Without
 * perf events (no /proc/sys/kernel/perf_event_paranoid) on the user-space
 * backend there is no detection to measure: it says so and exits 0.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_common.h"
#include "detect/interpose.h"
#include "umcg_wrap.h"
#include "util/util.h"

static long iters = 20000;
static uint64_t *samples;

/* ---- a worker and its server, driven by a per-case payload ---------------- */

struct ctx {
	struct bench_server srv;
	struct umcg_task worker __attribute__((aligned(64)));
	uint64_t iwl;
	_Atomic uint32_t wtid;
	void (*payload)(struct ctx *c);
	int fd[2];
	int detect; /* for the worker: 1 on, 0 off */
	int libc;   /* calls: libc's names (interposed), not the umcg_ wrappers */
	_Atomic uint64_t t_block;
	long n;
	_Atomic int done;
};

static void *worker_main(void *arg)
{
	struct ctx *c = arg;
	bench_pin_self(0);
	c->wtid = umcg_gettid();
	memset(&c->worker, 0, sizeof c->worker);
	bench_worker_register(&c->worker, &c->iwl, NULL);
	if (umcg_detect_thread(c->detect) != c->detect)
		bench_die("umcg_detect_thread(%d): %s", c->detect, strerror(errno));
	c->payload(c);
	atomic_store(&c->done, 1);
	bench_worker_finish(&c->worker, &c->srv.task);
	return NULL;
}

/* The server: run the worker until it finishes; call `on_return` after each run. */
static void serve(struct ctx *c, void (*on_return)(struct ctx *c))
{
	bench_pin_self(0);
	bench_server_register(&c->srv);
	void *th;
	bench_thread_start(worker_main, c, &th);
	while (!atomic_load(&c->done)) {
		/* wait (yielding the shared CPU) until the worker is queued */
		while (!__atomic_load_n(&c->iwl, __ATOMIC_ACQUIRE))
			sched_yield();
		bench_server_take(&c->iwl, &c->worker);
		bench_server_run(&c->srv, &c->worker, c->wtid);
		if (on_return)
			on_return(c);
	}
	bench_thread_join(th);
	bench_server_unregister(&c->srv);
}

/* ---- call: wrapped read that does not sleep ------------------------------------ */

static void calls(struct ctx *c)
{
	char buf[64];
	for (long i = 0; i < c->n; i++) {
		uint64_t t0 = bench_now();
		for (int k = 0; k < 10; k++) {
			if (c->libc ? write(c->fd[1], "x", 1) != 1 || read(c->fd[0], buf, 1) != 1
				    : umcg_write(c->fd[1], "x", 1) != 1 ||
					  umcg_read(c->fd[0], buf, 1) != 1)
				bench_die("pipe: %s", strerror(errno));
		}
		samples[i] = (bench_now() - t0) / 10;
	}
}

/* On this (plain) thread: libc's functions directly, or libc's names (interposed). */
static void raw_calls(long n, bool interposed)
{
	int fd[2];
	char buf[64];
	if (pipe(fd))
		bench_die("pipe");
	for (long i = 0; i < n; i++) {
		uint64_t t0 = bench_now();
		for (int k = 0; k < 10; k++)
			if (interposed ? write(fd[1], "x", 1) != 1 || read(fd[0], buf, 1) != 1
				       : umcg__libc_write(fd[1], "x", 1) != 1 ||
					     umcg__libc_read(fd[0], buf, 1) != 1)
				bench_die("pipe: %s", strerror(errno));
		samples[i] = (bench_now() - t0) / 10;
	}
	close(fd[0]);
	close(fd[1]);
}

static void run_calls(struct bench_stats *st, int detect, int libc, long n)
{
	struct ctx *c = aligned_alloc(64, sizeof *c);
	memset(c, 0, sizeof *c);
	if (pipe(c->fd))
		bench_die("pipe");
	c->payload = calls;
	c->detect = detect;
	c->libc = libc;
	c->n = n;
	serve(c, NULL);
	bench_stats_compute(samples, (size_t)n, st);
	close(c->fd[0]);
	close(c->fd[1]);
	free(c);
}

/* ---- block: raw read of an empty pipe -> server running ----------------------------- */

static void blockers(struct ctx *c)
{
	char b;
	for (long i = 0; i < c->n; i++) {
		atomic_store(&c->t_block, bench_now());
		if ((c->libc ? read(c->fd[0], &b, 1) : syscall(SYS_read, c->fd[0], &b, 1)) != 1)
			bench_die("read: %s", strerror(errno));
	}
}

static long nblock;

static void block_returned(struct ctx *c)
{
	uint64_t t = bench_now();
	if (nblock < c->n)
		samples[nblock++] = t - atomic_load(&c->t_block);
	/* release the worker: it parks (alarm), is queued, and we run it again */
	if (write(c->fd[1], "x", 1) != 1)
		bench_die("write");
}

static void explicit_blockers(struct ctx *c)
{
	for (long i = 0; i < c->n; i++) {
		atomic_store(&c->t_block, bench_now());
		umcg_block_point();
		umcg_wake_point();
	}
}

static void explicit_returned(struct ctx *c)
{
	uint64_t t = bench_now();
	if (nblock < c->n)
		samples[nblock++] = t - atomic_load(&c->t_block);
}

static void run_block(struct bench_stats *st, bool explicit_point, int libc, long n)
{
	struct ctx *c = aligned_alloc(64, sizeof *c);
	memset(c, 0, sizeof *c);
	if (pipe(c->fd))
		bench_die("pipe");
	c->payload = explicit_point ? explicit_blockers : blockers;
	c->detect = !explicit_point;
	c->libc = libc;
	c->n = n;
	nblock = 0;
	serve(c, explicit_point ? explicit_returned : block_returned);
	bench_stats_compute(samples, (size_t)nblock, st);
	close(c->fd[0]);
	close(c->fd[1]);
	free(c);
}

/* futex baseline: W posts S and sleeps on its own word; S timestamps when it runs */
static _Atomic uint32_t fx_s, fx_w;
static _Atomic uint64_t fx_t;
static long fx_n;

static void *fx_worker(void *arg)
{
	(void)arg;
	bench_pin_self(0);
	for (long i = 0; i < fx_n; i++) {
		atomic_store(&fx_t, bench_now());
		bench_sem_post(&fx_s);
		bench_sem_wait(&fx_w);
	}
	return NULL;
}

static void run_futex(struct bench_stats *st, long n)
{
	bench_pin_self(0);
	fx_n = n;
	void *th;
	bench_thread_start(fx_worker, NULL, &th);
	for (long i = 0; i < n; i++) {
		bench_sem_wait(&fx_s);
		samples[i] = bench_now() - atomic_load(&fx_t);
		bench_sem_post(&fx_w);
	}
	bench_thread_join(th);
	bench_stats_compute(samples, (size_t)n, st);
}

/* ---- window: user code run after a taken raw sleep, before the park ------------------- */

static void window_sleepers(struct ctx *c)
{
	for (long i = 0; i < c->n; i++) {
		struct timespec ts = {0, 200 * 1000};
		uint64_t p0 = atomic_load(&umcg__det_counts.parks);
		if (syscall(SYS_nanosleep, &ts, NULL) && errno != EINTR)
			bench_die("nanosleep: %s", strerror(errno));
		uint64_t t0 = bench_now(), w = 0;
		if (umcg_state_load(&c->worker) == UMCG_TASK_BLOCKED) {
			while (atomic_load(&umcg__det_counts.parks) == p0)
				;
			w = bench_now() - t0;
		}
		samples[i] = w;
	}
}

/* ---- compute: a worker that never blocks ----------------------------------------------- */

static _Atomic double compute_rate;

static void computer(struct ctx *c)
{
	uint64_t n = 0, t0 = bench_now();
	for (int r = 0; r < 20; r++) {
		uint64_t end = bench_now() + 50000000;
		while (bench_now() < end) {
			for (volatile int k = 0; k < 100; k++)
				;
			n++;
		}
	}
	atomic_store(&compute_rate, (double)n / ((double)(bench_now() - t0) / 1e9));
	(void)c;
}

static double run_compute(int detect)
{
	struct ctx *c = aligned_alloc(64, sizeof *c);
	memset(c, 0, sizeof *c);
	c->payload = computer;
	c->detect = detect;
	serve(c, NULL);
	free(c);
	return atomic_load(&compute_rate);
}

static void row(const char *what, const char *variant, const struct bench_stats *s,
		const struct bench_stats *base)
{
	printf("%-8s %-28s n=%-6zu p50 %8.2f us  p99 %8.2f us  max %9.2f us", what, variant, s->n,
	       s->p50 / 1e3, s->p99 / 1e3, s->max / 1e3);
	if (base && base->p50)
		printf("  x%.2f p50 vs baseline", (double)s->p50 / (double)base->p50);
	printf("\n");
}

int main(int argc, char **argv)
{
	bench_init();
	if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9' || atol(argv[1]) < 10)) {
		printf("usage: %s [samples >= 10]  (default 20000)\n"
		       "transparent detection: wrapped-call cost, block notification, window,\n"
		       "compute overhead; server and worker pinned to CPU 0 (docs/detection.md)\n",
		       argv[0]);
		return argv[1][0] == '-' && argv[1][1] == 'h' ? 0 : 2;
	}
	if (argc > 1)
		iters = atol(argv[1]);
	samples = bench_alloc_samples((size_t)iters);
	bool kernel = umcg_backend() == UMCG_BACKEND_KERNEL;
	printf(
	    "bench_detect: %ld samples per case, server and worker pinned to CPU 0, %s backend\n",
	    iters, kernel ? "kernel (its block hook)" : "user-space (perf detection)");
	if (!kernel && access("/proc/sys/kernel/perf_event_paranoid", R_OK)) {
		printf("bench_detect: no perf events in this kernel: no transparent detection to "
		       "measure\n");
		return 0;
	}
	bench_watchdog(300);

	struct bench_stats raw, plain, lazy, lazy_libc, eager;
	raw_calls(iters / 10, false); /* warm-up */
	raw_calls(iters, false);
	bench_stats_compute(samples, (size_t)iters, &raw);
	raw_calls(iters, true);
	bench_stats_compute(samples, (size_t)iters, &plain);
	run_calls(&lazy, 1, 0, iters);
	run_calls(&lazy_libc, 1, 1, iters);
	if (!kernel)
		run_calls(&eager, 0, 0, iters / 10);
	row("call", "libc, plain thread (base)", &raw, NULL);
	row("call", "libc names, plain thread", &plain, &raw);
	row("call", "umcg_ wrappers, lazy", &lazy, &raw);
	row("call", "libc names, lazy (interp.)", &lazy_libc, &raw);
	if (!kernel)
		row("call", "umcg_ wrappers, eager", &eager, &raw);

	long nb = iters / 4;
	struct bench_stats fx, blk, blk_libc, expl;
	run_futex(&fx, nb);
	run_block(&blk, false, 0, nb);
	run_block(&blk_libc, false, 1, nb);
	row("block", "futex hand-off (base)", &fx, NULL);
	row("block", "raw read(), detected", &blk, &fx);
	row("block", "libc read(), interposed", &blk_libc, &fx);
	if (kernel)
		return 0; /* the rest is the user-space detection's alone */
	run_block(&expl, true, 0, nb);
	row("block", "umcg_block_point()", &expl, &fx);

	struct ctx *c = aligned_alloc(64, sizeof *c);
	memset(c, 0, sizeof *c);
	c->payload = window_sleepers;
	c->detect = 1;
	c->n = iters / 10;
	uint64_t late0 = 0;
	serve(c, NULL);
	for (long i = 0; i < c->n; i++)
		late0 += samples[i] != 0;
	struct bench_stats win;
	bench_stats_compute(samples, (size_t)c->n, &win);
	row("window", "user code before the park", &win, NULL);
	printf("window   %llu of %ld taken sleeps ran user code before parking; EINTR %llu\n",
	       (unsigned long long)late0, c->n, (unsigned long long)umcg__det_counts.eintr);
	free(c);

	double off = run_compute(0), on = run_compute(1), off2 = run_compute(0);
	printf("compute  detection off %.0f, on %.0f, off %.0f iterations/s: on = %.2f %% of off\n",
	       off, on, off2, 100.0 * on / ((off + off2) / 2));
	return 0;
}
