/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h - helpers shared by the bench_* binaries: options,
 * timing, percentiles, CPU pinning, result printing, a raw futex
 * semaphore for the baselines, the UMCG server-side steps (idle protocol,
 * run a worker, drain the idle-workers list), the side-by-side driver
 * (futex baseline, then UMCG per hint) of bench_block, bench_idle and
 * bench_switch, and the block/wake cycle driver of bench_block and
 * bench_idle (bench_cycle.c).
 *
 * Every benchmark measures each case with threads created for that case:
 * each thread pins itself (pthread_setaffinity_np) BEFORE it registers,
 * so its registration-time affinity (the "allowed" set of the
 * WF_CURRENT_CPU emulation) is the pinning. Unpinned threads get the
 * affinity the process started with.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umcg.h"

/* ---- options ---------------------------------------------------------- */

enum bench_pin {
	BENCH_PIN_SAME, /* both threads pinned to the same CPU */
	BENCH_PIN_DIFF, /* pinned to two different CPUs */
	BENCH_PIN_NONE, /* not pinned (the process's initial affinity) */
	BENCH_PIN_NR,	/* number of the symmetric modes above */
	/*
	 * Thread 0 (the server) pinned, thread 1 (the worker) not: the setup
	 * in which the library applies the WF_CURRENT_CPU hint (a waker bound
	 * to one CPU, a worker allowed elsewhere; src/kern/sched.c).
	 */
	BENCH_PIN_SRV = BENCH_PIN_NR,
	BENCH_PIN_MODES, /* all modes */
};

struct bench_opts {
	long iters;	/* -n: measured samples per case */
	long warmup;	/* -w: discarded samples per case */
	long sleep_us;	/* -s: length of the blocking call (block/idle benches) */
	unsigned pins;	/* -p: bit (1 << enum bench_pin) per selected pin mode */
	unsigned hints; /* -H: bit 0 = hint 0 measured, bit 1 = hint 1 measured */
	bool machine;	/* -m: also print machine-readable RESULT lines */
};

/*
 * Parse the common options. def_iters/def_warmup/def_sleep_us are the
 * defaults of this benchmark; summary is printed by -h. Exits on error.
 */
void bench_parse_args(int argc, char **argv, struct bench_opts *o, long def_iters, long def_warmup,
		      long def_sleep_us, const char *summary);

/* ---- timing ------------------------------------------------------------ */

/* CLOCK_MONOTONIC in ns (the library's umcg_now_ns()). */
static inline uint64_t bench_now(void)
{
	return umcg_now_ns();
}

/* Sleep for us microseconds (clock_nanosleep, relative; restarts on EINTR). */
void bench_sleep_us(long us);

/* ---- statistics -------------------------------------------------------- */

struct bench_stats {
	size_t n;
	double mean;
	uint64_t min, p50, p90, p99, max;
};

/* Sort v[0..n) in place and fill *s (nearest-rank percentiles). n may be 0. */
void bench_stats_compute(uint64_t *v, size_t n, struct bench_stats *s);

/* Median of v[0..n) (sorts v). */
uint64_t bench_median(uint64_t *v, size_t n);

/* Allocate a zeroed sample array of n entries (exits on failure). */
uint64_t *bench_alloc_samples(size_t n);

/* ---- pinning ----------------------------------------------------------- */

/*
 * Record the process's initial affinity and install the watchdog's
 * SIGALRM handler; call once from main() first.
 */
void bench_init(void);

/*
 * Arm (secs > 0) or disarm (0) the watchdog: if it fires, the process
 * exits with status 3 and a message (a hang: lost wake-up?).
 */
void bench_watchdog(unsigned secs);
#define BENCH_CASE_TIMEOUT_S 50

/* Whether the mode can be measured here (DIFF needs two allowed CPUs). */
bool bench_pin_available(enum bench_pin pin);

/* The CPU thread `role` (0 or 1) uses in mode pin; -1 = unpinned. */
int bench_pin_cpu(enum bench_pin pin, int role);

/*
 * Pin the calling thread to cpu (cpu < 0: restore the process's initial
 * affinity). Exits on failure.
 */
void bench_pin_self(int cpu);

/* "same", "diff", "none", "srv" */
const char *bench_pin_name(enum bench_pin pin);

/* "cpu0" or "any" for a role in a mode, into buf. */
const char *bench_cpu_str(enum bench_pin pin, int role, char *buf, size_t len);

/* ---- output ------------------------------------------------------------ */

/* Banner: benchmark name, date, kernel, CPUs, options. */
/* The local date ("YYYY-mm-dd HH:MM:SS +zzzz", "?" if unknown) and uname (zeroed on failure). */
struct utsname;
void bench_date_uname(char *date, size_t len, struct utsname *u);
void bench_print_banner(const char *name, const struct bench_opts *o, const char *roles);

/* Column header of the table printed by bench_report(). */
void bench_print_table_header(void);

/*
 * One result row. hint < 0: not applicable (baseline). base (may be NULL)
 * is the baseline the ratio is computed against. extra (may be NULL) is
 * appended to the row and the RESULT line (e.g. "samecpu=97%").
 * Prints a table row and, with -m, a machine-readable line:
 * RESULT bench=.. metric=.. pin=.. hint=.. n=.. min=.. p50=.. mean=.. p99=..
 *        max=.. [base_p50=.. base_p99=.. r50=.. r99=..] (times in ns).
 */
void bench_report(const struct bench_opts *o, const char *bench, const char *metric,
		  enum bench_pin pin, int hint, const struct bench_stats *s,
		  const struct bench_stats *base, const char *extra);

/* Print a message on stderr and exit(2). */
__attribute__((noreturn, format(printf, 1, 2))) void bench_die(const char *fmt, ...);

/* ---- raw futex semaphore (the baselines) -------------------------------- */

/*
 * A counting semaphore on one futex word. post: increment, FUTEX_WAKE
 * (always: the raw baseline, no "is anybody sleeping" shortcut). wait:
 * take one count, sleeping in FUTEX_WAIT while there is none; returns true
 * if it had to call FUTEX_WAIT. Private futexes, like the library's.
 */
void bench_sem_post(_Atomic uint32_t *w);
bool bench_sem_wait(_Atomic uint32_t *w);

/* ---- threads ----------------------------------------------------------- */

/* Start a thread (exits on failure). */
void bench_thread_start(void *(*fn)(void *), void *arg, void **handle);
void bench_thread_join(void *handle);

/*
 * One case's two threads: start fn0 (thread 0) and fn1 (thread 1), join
 * both, all under the watchdog (BENCH_CASE_TIMEOUT_S).
 */
void bench_run_threads(void *(*fn0)(void *), void *(*fn1)(void *));

/* ---- side by side: futex baseline, then UMCG per hint ------------------ */

enum { BENCH_MAX_METRICS = 3 };

/* One case's results. */
struct bench_result {
	struct bench_stats s[BENCH_MAX_METRICS]; /* per metric */
	double samecpu;				 /* % of samples with both threads on one CPU */
	size_t notslept; /* cycles left out because the server did not sleep */
};

struct bench_cycle;

struct bench_ab {
	const char *bench;			/* the rows' bench= ("block") */
	const char *metrics[BENCH_MAX_METRICS]; /* "blk": rows futex_blk and umcg_blk */
	int nmetrics;
	unsigned notslept; /* bit m: metric m's rows also say notslept= */
	/* Measure one case: the futex baseline (umcg false) or UMCG, threads pinned per pin. */
	void (*measure)(const struct bench_opts *o, const struct bench_ab *ab, enum bench_pin pin,
			bool umcg, struct bench_result *r);
	/* With measure = bench_cycle_measure: metric m of cycle c (see there). */
	uint64_t (*sample)(const struct bench_cycle *c, int m);
};

/*
 * For each pin mode selected by -p that can be measured here: the futex
 * baseline, then UMCG with each hint selected by -H
 * (umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT)), reported row by row
 * (bench_report) with the ratios to that baseline, measured just before.
 */
void bench_ab_run(const struct bench_opts *o, const struct bench_ab *ab);

/* ---- UMCG server-side steps ------------------------------------------- */

/*
 * A server: its umcg_task and its tid. Registered by bench_server_register
 * (state RUNNING, then server_tid = own tid, see context.md).
 */
struct bench_server {
	struct umcg_task task;
	uint32_t tid;
	long timeouts; /* idle waits that timed out (should stay 0) */
};

void bench_server_register(struct bench_server *s);
void bench_server_unregister(struct bench_server *s);

enum bench_idle_result {
	BENCH_IDLE_FOUND_WORK, /* the idle-workers list was not empty: no sleep */
	BENCH_IDLE_RACED,      /* popped between push and re-check: no real sleep */
	BENCH_IDLE_SLEPT,      /* went to sleep with an empty list, woken by a pop */
};

/*
 * The server idle protocol of context.md: IDLE, push self on *isl, full
 * fence, re-check *iwl, sleep in umcg_wait, remove/gc. Returns once *iwl
 * is not empty. *woke_ns (if not NULL) gets the time umcg_wait returned
 * (or the time the work was found). Waits without a timeout unless
 * bench_common.c is built with -DBENCH_IDLE_TIMEOUT_NS=<ns>; timeouts are
 * counted in s->timeouts (and treated as a lost wake-up by the callers).
 */
enum bench_idle_result bench_server_idle(struct bench_server *s, uint64_t *iwl, uint64_t *isl,
					 uint64_t *woke_ns);

/* Take exactly one worker from *iwl (asserts it is `expected` and alone). */
void bench_server_take(uint64_t *iwl, struct umcg_task *expected);

/*
 * Run worker w (tid wtid) until it blocks, yields or finishes: own state
 * IDLE first, then w->server_tid, w RUNNING, next_tid = wtid, umcg_wait(0,0),
 * next_tid = 0. Returns w's state low byte afterwards.
 */
uint32_t bench_server_run(struct bench_server *s, struct umcg_task *w, uint32_t wtid);

/* A worker that is done: wake its IDLE server and unregister (v0.3 T10). */
void bench_worker_finish(struct umcg_task *w, struct umcg_task *server);

/* Register the calling thread as a worker of (iwl, isl); returns when run. */
void bench_worker_register(struct umcg_task *w, uint64_t *iwl, uint64_t *isl);

/* ---- block/wake cycle (bench_block, bench_idle; bench_cycle.c) --------- */

/*
 * One iteration of a block/wake cycle between a server (thread 0) and one
 * worker (thread 1). UMCG:
 *   worker: t_block = now; umcg_block_point(); clock_nanosleep(sleep_us);
 *           t_ret = now; umcg_wake_point(); t_run = now.
 *   server: umcg_wait (running the worker) returns because it blocked:
 *           t_srv = now; idle protocol (IDLE, push on the idle-servers
 *           stack, sleep); the worker's wake point pops and wakes it:
 *           t_idle = now; drain the idle-workers list; run the worker.
 * Futex baseline, same shape with two plain threads and two semaphores:
 *   worker: t_block = now; post(S); sleep; t_ret = now; post(S); wait(W);
 *           t_run = now.
 *   server: wait(S); t_srv = now; wait(S); t_idle = now; post(W).
 * idle_res: the server's idle wait (enum bench_idle_result); for the
 * baseline BENCH_IDLE_SLEPT if wait(S) had to FUTEX_WAIT, else FOUND_WORK.
 * cpu_wrk / cpu_srv: sched_getcpu() of the worker at t_ret and of the
 * server at t_idle.
 */
struct bench_cycle {
	uint64_t t_block, t_srv, t_ret, t_idle, t_run;
	int16_t cpu_wrk, cpu_srv;
	uint8_t idle_res;
};

/* Share (0..100) of cycles c[from..to) with cpu_wrk == cpu_srv. */
double bench_cycle_samecpu(const struct bench_cycle *c, size_t from, size_t to);

/* What bench_cycle_measure()'s sample function returns for a cycle that does not count. */
#define BENCH_NO_SAMPLE UINT64_MAX

/*
 * A bench_ab's measure: one case of o->warmup + o->iters cycles
 * (bench_cycle_run), the warm-up ones left out. Metric m of cycle c is
 * ab->sample(c, m), or BENCH_NO_SAMPLE where c does not count for m (the
 * server did not sleep); r->notslept: the most cycles any metric left out.
 * The cycles and samples live in arrays allocated on the first call and
 * kept (every case writes the same pages).
 */
void bench_cycle_measure(const struct bench_opts *o, const struct bench_ab *ab, enum bench_pin pin,
			 bool umcg, struct bench_result *r);

/*
 * Run n cycles (threads pinned per pin, created and joined here) into c.
 * Exits if a server idle wait timed out (a lost wake-up).
 */
void bench_cycle_run(enum bench_pin pin, bool umcg, long sleep_us, struct bench_cycle *c, size_t n);

#endif
