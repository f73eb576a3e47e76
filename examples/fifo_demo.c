/* SPDX-License-Identifier: MIT */
/*
 * fifo_demo.c - M workers on N servers in first-in first-out order, on the
 * umcg runtime (umcg_rt.h).
 *
 * N servers (one per CPU by default) run M workers (64 by default). Each
 * worker does K operations (200 by default); one operation is
 *
 *     ~50 us of computation              (a busy loop: runs on a server's CPU)
 *     usleep(300)                        (really sleeps: a block and a wake)
 *     write() + read() of one byte on a pipe  (two short syscalls)
 *
 * The blocking calls are all in blocking_step(), and they are plain libc
 * calls: libumcg sees the worker really sleep (transparent detection,
 * docs/detection.md), makes it BLOCKED (its server runs another worker)
 * and queues it on the idle-workers list when it wakes (a server picks it
 * up again); a call that does not sleep costs nothing. libumcg interposes
 * libc's clock_nanosleep(), write() and read(), so these take the lazy
 * path of the wrappers (UMCG_INTERPOSE=0: they go to libc, and the sleep
 * is parked by the detection signal instead). With -W they go
 * through the umcg_wrap.h wrappers instead (lazy with detection; without
 * it, UMCG_DETECT=0, every wrapped call is a block). The scheduler itself - servers,
 * the idle protocol of the chosen design (-i), the FIFO run queue, worker
 * registration and exit - is the runtime's: umcg_rt_create() with the
 * "fifo" policy, umcg_rt_spawn() per worker, umcg_rt_shutdown(). The
 * hand-written v0.3 scheduler this file used to carry is what
 * src/rt/server.c and src/rt/worker.c do now (docs/runtime.md).
 *
 * Usage: fifo_demo [-i stack|eventfd|tid] [-s servers] [-w workers] [-n ops]
 *                  [-c compute_us] [-u sleep_us] [-p|-U] [-W] [-H] [-T idle_ms]
 *                  [-t watchdog_s] [-x trace.json]
 * Exit status: 0 if every worker completed every operation and all the
 * counters agree; 1 on a failed check; 2 on bad usage; 3 if the watchdog
 * saw no progress (a lost wake-up: a library or runtime bug).
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "umcg.h"
#include "umcg_idle.h"
#include "umcg_rt.h"
#include "umcg_wrap.h"

#define DEMO_NAME "fifo_demo"
#include "demo_util.h"

/* ---- configuration ------------------------------------------------------- */

static int nr_servers;	       /* -s */
static int nr_workers = 64;    /* -w */
static long nr_ops = 200;      /* -n */
static long compute_us = 50;   /* -c */
static long sleep_us = 300;    /* -u */
static int pin_servers = -1;   /* -p 1, -U 0; default: 1 iff servers <= CPUs */
static bool use_wrappers;      /* -W */
static bool no_cpu_hint;       /* -H */
static long idle_timeout_ms;   /* -T, 0: idle waits without timeout */
static long watchdog_s = 20;   /* -t */
static const char *trace_path; /* -x */
static int nr_cpus;	       /* CPUs we may run on */
static int cpu_list[CPU_SETSIZE];
static enum umcg_idle_design idle_design = UMCG_IDLE_STACK; /* -i */

enum { NR_PIPES = 8 };
static int pipes[NR_PIPES][2];

/* A worker's bookkeeping (the runtime owns the thread and its umcg_task). */
struct worker {
	int idx;
	_Atomic int finished;
	_Atomic long ops; /* completed operations (read by the watchdog) */
	bool detected;	  /* libumcg sees it sleep anywhere (umcg_detect_thread) */
	long interrupted; /* plain sleeps interrupted by a late detection signal */
	long errors;
	struct umcg_rt_worker *h;
};

static struct worker *workers;
static _Atomic int nr_finished;

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fifo_demo: FATAL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(1);
}

/* ---- the worker -------------------------------------------------------------- */

/*
 * After a wrapper returned, a worker runs again: its ABI struct is
 * RUNNING with a server, and the runtime knows which server that is.
 */
static void check_running(struct worker *w, const char *what)
{
	struct umcg_task *t = umcg_self();
	/*
	 * A sleep libumcg took over whose switch-in signal comes late (some VMs
	 * deliver the kernel's irq_work up to a tick late, docs/detection.md):
	 * we run BLOCKED until the signal parks us. Wait for that.
	 */
	uint64_t t0 = umcg_now_ns();
	while (t && (umcg_state_load(t) & UMCG_TF_STATE_MASK) == UMCG_TASK_BLOCKED &&
	       umcg_now_ns() - t0 < 2000000000ull)
		;
	uint32_t st = t ? umcg_state_load(t) : 0;
	uint32_t server_tid = t ? __atomic_load_n(&t->server_tid, __ATOMIC_RELAXED) : 0;
	if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING || !server_tid ||
	    umcg_rt_server_index() < 0) {
		demo_fail("worker %d after %s: state %#x server_tid %u server %d", w->idx, what, st,
			  server_tid, umcg_rt_server_index());
		w->errors++;
	}
}

/*
 * usleep() without a wrapper. A detection signal that comes late (in some
 * VMs the kernel's irq_work is delivered up to a tick late,
 * docs/detection.md) can interrupt the sleep: count it and sleep on to the
 * same deadline.
 */
static int plain_sleep(struct worker *w, long us)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += us * 1000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	int r;
	while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL)) == EINTR)
		w->interrupted++;
	errno = r;
	return r ? -1 : 0;
}

/*
 * The workload's blocking calls, all in one place: plain libc calls (the
 * worker's server runs others while it really sleeps, and it comes back
 * through the idle-workers list), or with -W (or without detection) the
 * wrappers. A byte goes through a pipe shared by a few workers: each
 * worker writes before it reads, so a read never waits long.
 */
static void blocking_step(struct worker *w)
{
	int *p = pipes[w->idx % NR_PIPES];
	bool wrap = use_wrappers || !w->detected;
	if (wrap ? umcg_usleep((unsigned int)sleep_us) : plain_sleep(w, sleep_us))
		demo_fail("worker %d: usleep: %s", w->idx, strerror(errno));
	check_running(w, "usleep");
	char c = (char)w->idx;
	if ((wrap ? umcg_write(p[1], &c, 1) : write(p[1], &c, 1)) != 1)
		demo_fail("worker %d: write: %s", w->idx, strerror(errno));
	check_running(w, "write");
	if ((wrap ? umcg_read(p[0], &c, 1) : read(p[0], &c, 1)) != 1)
		demo_fail("worker %d: read: %s", w->idx, strerror(errno));
	check_running(w, "read");
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	check_running(w, "start");
	w->detected = umcg_detect_thread(-1) == 1;
	for (long i = 0; i < nr_ops; i++) {
		demo_compute((uint64_t)compute_us * 1000);
		blocking_step(w);
		atomic_store_explicit(&w->ops, i + 1, memory_order_relaxed);
	}
	atomic_store(&w->finished, 1);
	atomic_fetch_add(&nr_finished, 1);
	return NULL;
}

/* ---- main: set up, watch, report ---------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-i stack|eventfd|tid] [-s servers] [-w workers] [-n ops]\n"
		"          [-c compute_us] [-u sleep_us] [-p|-U] [-W] [-H] [-T idle_ms]\n"
		"          [-t watchdog_s]\n"
		"          [-x trace.json]\n"
		"  -i D  idle-server design (umcg_idle.h): stack (v0.3, default), eventfd\n"
		"        (the review's idle_fd), tid (v0.4's idle_server_tid_ptr)\n"
		"  -s N  servers (default: one per CPU we may run on)\n"
		"  -w M  workers (default 64)\n"
		"  -n K  operations per worker (default 200)\n"
		"  -c U  computation per operation, microseconds (default 50)\n"
		"  -u U  usleep() per operation, microseconds (default 300)\n"
		"  -p    pin server i to CPU i (mod the number of CPUs); the default when\n"
		"        there are no more servers than CPUs\n"
		"  -U    do not pin the servers\n"
		"  -W    the blocking calls go through the umcg_wrap.h wrappers\n"
		"  -H    no current-CPU placement hint (umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 0))\n"
		"  -T MS idle waits time out after MS milliseconds (default: no timeout)\n"
		"  -t S  watchdog: fail if nothing progresses for S seconds (default 20)\n"
		"  -x F  trace the servers, write Chrome/Perfetto trace JSON to F\n",
		argv0);
	exit(2);
}

static long parse_num(const char *s, long min, long max, const char *argv0)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage(argv0);
	return v;
}

static uint64_t progress(void)
{
	uint64_t p = (uint64_t)atomic_load(&nr_finished);
	for (int i = 0; i < nr_workers; i++)
		p += (uint64_t)atomic_load_explicit(&workers[i].ops, memory_order_relaxed);
	return p;
}

static void dump_state(void)
{
	fprintf(stderr, "fifo_demo: no progress for %ld s: lost wake-up? finished %d/%d\n",
		watchdog_s, atomic_load(&nr_finished), nr_workers);
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];
		if (!atomic_load(&w->finished))
			fprintf(stderr, "  worker %d ops %ld\n", i,
				atomic_load_explicit(&w->ops, memory_order_relaxed));
	}
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void parse_args(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "i:s:w:n:c:u:pUWHT:t:x:h")) != -1) {
		switch (opt) {
		case 'i':
			if (umcg_idle_design_parse(optarg, &idle_design))
				usage(argv[0]);
			break;
		case 's':
			nr_servers = (int)parse_num(optarg, 1, 1024, argv[0]);
			break;
		case 'w':
			nr_workers = (int)parse_num(optarg, 1, 100000, argv[0]);
			break;
		case 'n':
			nr_ops = parse_num(optarg, 1, 100000000, argv[0]);
			break;
		case 'c':
			compute_us = parse_num(optarg, 0, 1000000, argv[0]);
			break;
		case 'u':
			sleep_us = parse_num(optarg, 0, 1000000, argv[0]);
			break;
		case 'p':
			pin_servers = 1;
			break;
		case 'U':
			pin_servers = 0;
			break;
		case 'W':
			use_wrappers = true;
			break;
		case 'H':
			no_cpu_hint = true;
			break;
		case 'T':
			idle_timeout_ms = parse_num(optarg, 0, 3600000, argv[0]);
			break;
		case 't':
			watchdog_s = parse_num(optarg, 1, 3600, argv[0]);
			break;
		case 'x':
			trace_path = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	if (pin_servers < 0) /* one server per CPU: pin them (the fast placement) */
		pin_servers = nr_servers <= nr_cpus;
}

/* Exact checks of the end-of-run counts; returns the total of operations. */
static long check_totals(const struct umcg_rt_stats *st)
{
	long ops = 0, errors = 0, interrupted = 0;
	int finished = 0, detected = 0;
	for (int i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];
		long o = atomic_load(&w->ops);
		if (o != nr_ops)
			demo_fail("worker %d did %ld ops, not %ld", i, o, nr_ops);
		ops += o;
		detected += w->detected;
		interrupted += w->interrupted;
		errors += w->errors;
		finished += atomic_load(&w->finished);
	}
	long M = nr_workers, K = nr_ops;
	if (ops != M * K)
		demo_fail("total ops %ld, expected %ld", ops, M * K);
	if (finished != M || (long)st->exits != M)
		demo_fail("finished workers %d (runtime: %llu exits), expected %ld", finished,
			  (unsigned long long)st->exits, M);
	/*
	 * Without detection every wrapper call is one block (T6) and one trip
	 * through the list (T7). With it, only calls that really slept are
	 * (usleep always does, the pipe calls rarely): at most 3 per operation.
	 */
	long blocks = (long)st->blocks;
	if (detected != 0 && detected != M)
		demo_fail("%d of %ld workers detected: expected all or none", detected, M);
	if (!detected && blocks != 3 * M * K)
		demo_fail("blocks %ld, expected %ld (explicit block points)", blocks, 3 * M * K);
	if (detected && (blocks < 1 || blocks > 3 * M * K))
		demo_fail("blocks %ld, expected 1..%ld", blocks, 3 * M * K);
	if (interrupted)
		printf("  interrupted sleeps  %ld (EINTR from a late detection signal, resumed)\n",
		       interrupted);
	/* Each worker entered the list once at registration, then once per block. */
	long taken = (long)(st->wakes + st->threads);
	if (taken != blocks + M || (long)st->threads != M)
		demo_fail("workers taken from the idle list %ld, expected blocks + M = %ld", taken,
			  blocks + M);
	/* Each run ends with a block or with the worker's exit (no pool: -> ends). */
	if ((long)st->runs != blocks + M)
		demo_fail("switches %llu, expected blocks + M = %ld", (unsigned long long)st->runs,
			  blocks + M);
	if (st->yields || st->parks || st->switches)
		demo_fail("%llu yields, %llu parks, %llu switches: the workload does none",
			  (unsigned long long)st->yields, (unsigned long long)st->parks,
			  (unsigned long long)st->switches);
	/* On the stack and the tid word, a kick took one announced server. */
	if (idle_design != UMCG_IDLE_EVENTFD && st->kicks > st->idle_waits)
		demo_fail("%llu servers woken by the runtime, but only %llu idle waits",
			  (unsigned long long)st->kicks, (unsigned long long)st->idle_waits);
	if (!idle_timeout_ms && st->idle_timeouts)
		demo_fail("%llu idle waits timed out without a timeout",
			  (unsigned long long)st->idle_timeouts);
	if (errors)
		demo_fail("%ld protocol errors (see above)", errors);
	return ops;
}

int main(int argc, char **argv)
{
	cpu_set_t avail;
	if (sched_getaffinity(0, sizeof avail, &avail))
		CPU_ZERO(&avail);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &avail))
			cpu_list[nr_cpus++] = c;
	if (!nr_cpus) {
		nr_cpus = 1;
		cpu_list[0] = 0;
	}
	nr_servers = nr_cpus;
	parse_args(argc, argv);
	if (no_cpu_hint && umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 0))
		fatal("umcg_tune: %s", strerror(errno));
	for (int i = 0; i < NR_PIPES; i++)
		if (pipe(pipes[i]))
			fatal("pipe: %s", strerror(errno));
	workers = calloc((size_t)nr_workers, sizeof *workers);
	if (!workers)
		fatal("out of memory");

	struct umcg_rt_attr attr;
	umcg_rt_attr_init(&attr);
	attr.nr_servers = nr_servers;
	attr.pin_servers = pin_servers;
	attr.idle_design = idle_design;
	attr.idle_timeout_ns = (uint64_t)idle_timeout_ms * 1000000;
	attr.policy = &umcg_rt_policy_fifo;
	attr.pool_max = 0; /* every worker thread ends with its worker: exact counts */
	if (trace_path)
		attr.trace_events = 1u << 20;

	char idle_tmo[32] = "none";
	if (idle_timeout_ms)
		snprintf(idle_tmo, sizeof idle_tmo, "%ld ms", idle_timeout_ms);
	printf("fifo_demo: %d servers, %d workers x %ld ops "
	       "(compute %ld us, usleep %ld us, pipe write+read; %s)\n"
	       "           %d CPUs, servers %s, current-CPU hint %s\n"
	       "           idle design %s, idle-wait timeout %s, runtime policy %s\n",
	       nr_servers, nr_workers, nr_ops, compute_us, sleep_us,
	       use_wrappers ? "umcg_wrap.h wrappers" : "plain libc calls", nr_cpus,
	       pin_servers ? "pinned one per CPU" : "not pinned", no_cpu_hint ? "off" : "on",
	       umcg_idle_design_name(idle_design), idle_tmo, attr.policy->name);
	fflush(stdout);

	uint64_t t0 = umcg_now_ns();
	struct umcg_rt *rt = umcg_rt_create(&attr);
	if (!rt)
		fatal("umcg_rt_create: %s", strerror(errno));
	for (int i = 0; i < nr_workers; i++) {
		workers[i].idx = i;
		workers[i].h = umcg_rt_spawn(rt, worker_main, &workers[i], NULL);
		if (!workers[i].h)
			fatal("umcg_rt_spawn: %s", strerror(errno));
	}

	/* Watch for progress while the workers run (main is not a UMCG task). */
	uint64_t last = progress(), last_change = umcg_now_ns();
	uint64_t all = (uint64_t)nr_workers * (uint64_t)(nr_ops + 1);
	while (last != all) {
		usleep(20000);
		uint64_t p = progress(), now = umcg_now_ns();
		if (p != last) {
			last = p;
			last_change = now;
		} else if (now - last_change > (uint64_t)watchdog_s * 1000000000ull) {
			dump_state();
			_exit(3);
		}
	}
	for (int i = 0; i < nr_workers; i++)
		if (umcg_rt_join(workers[i].h, NULL))
			fatal("umcg_rt_join: %s", strerror(errno));
	if (umcg_rt_shutdown(rt))
		fatal("umcg_rt_shutdown: %s", strerror(errno));
	uint64_t t1 = umcg_now_ns();

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double elapsed = (double)(t1 - t0) / 1e9;
	double cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	struct umcg_rt_stats st;
	umcg_rt_get_stats(rt, &st);
	long ops = check_totals(&st);
	long M = nr_workers, K = nr_ops;

	printf("  elapsed             %.3f s\n", elapsed);
	printf("  operations          %ld (%ld workers x %ld), %llu workers finished\n", ops, M, K,
	       (unsigned long long)st.exits);
	printf("  switches            %llu server -> worker runs\n", (unsigned long long)st.runs);
	printf("  blocks              %llu worker RUNNING -> BLOCKED (%s)\n",
	       (unsigned long long)st.blocks,
	       workers[0].detected ? "seen by libumcg: the worker slept"
				   : "at a wrapper: no transparent detection");
	printf("  wakes               %llu workers taken from the idle-workers list\n"
	       "                      (= blocks + %ld registrations)\n",
	       (unsigned long long)(st.wakes + st.threads), M);
	printf("  server idle waits   %llu in the %s group, %llu timed out\n",
	       (unsigned long long)st.idle_waits, umcg_idle_design_name(idle_design),
	       (unsigned long long)st.idle_timeouts);
	printf("  idle-server wakes   %llu by the runtime (more queued work)\n"
	       "                      (the others: libumcg, at a worker's wake point)\n",
	       (unsigned long long)st.kicks);
	printf("  CPU utilisation     %.1f %% (user %.2f s + sys %.2f s over %.3f s x %d CPUs)\n",
	       100.0 * cpu / (elapsed * nr_cpus), tv_s(ru.ru_utime), tv_s(ru.ru_stime), elapsed,
	       nr_cpus);
	printf("  rate                %.0f switches/s, %.1f us per operation per CPU\n",
	       (double)st.runs / elapsed, elapsed * 1e6 * nr_cpus / (double)(M * K));
	for (int i = 0; i < nr_servers; i++) {
		struct umcg_rt_stats ss;
		umcg_rt_get_server_stats(rt, i, &ss);
		char cpu_s[16] = "-";
		if (pin_servers)
			snprintf(cpu_s, sizeof cpu_s, "%d", cpu_list[i % nr_cpus]);
		printf("  server %-3d cpu %-3s runs %-8llu idle waits %-6llu kicks %llu\n", i,
		       cpu_s, (unsigned long long)ss.runs, (unsigned long long)ss.idle_waits,
		       (unsigned long long)ss.kicks);
	}

	if (trace_path) {
		if (umcg_rt_trace_export(rt, trace_path))
			demo_fail("umcg_rt_trace_export(%s): %s", trace_path, strerror(errno));
		else
			printf("  trace               %s (chrome://tracing, ui.perfetto.dev)\n",
			       trace_path);
	}
	umcg_rt_destroy(rt);
	for (int i = 0; i < NR_PIPES; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	free(workers);
	if (demo_failed())
		return 1;
	printf("fifo_demo: OK, every worker completed all %ld operations\n", K);
	return 0;
}
