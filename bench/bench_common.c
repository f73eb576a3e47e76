/* SPDX-License-Identifier: MIT */
/* bench_common.c - see bench_common.h. */
#include <errno.h>
#include <getopt.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "umcg_lists.h"

/*
 * Safety timeout of a server idle wait in ns (0: none). Default none: a
 * FUTEX_WAIT with a timeout arms an hrtimer, which would add to the
 * measured wake-up path; hangs are caught by the watchdog instead.
 */
#ifndef BENCH_IDLE_TIMEOUT_NS
#define BENCH_IDLE_TIMEOUT_NS 0ull
#endif

/* ---- errors -------------------------------------------------------------- */

void bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- options ------------------------------------------------------------- */

static unsigned parse_pins(const char *arg)
{
	unsigned m = 0;
	char buf[64];
	snprintf(buf, sizeof buf, "%s", arg);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "same"))
			m |= 1u << BENCH_PIN_SAME;
		else if (!strcmp(t, "diff"))
			m |= 1u << BENCH_PIN_DIFF;
		else if (!strcmp(t, "none"))
			m |= 1u << BENCH_PIN_NONE;
		else if (!strcmp(t, "srv"))
			m |= 1u << BENCH_PIN_SRV;
		else if (!strcmp(t, "all"))
			m |= (1u << BENCH_PIN_MODES) - 1;
		else
			bench_die("-p: unknown pin mode '%s' (same,diff,none,srv,all)", t);
	}
	return m;
}

static long parse_long(const char *arg, char opt, long min)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || *end || v < min)
		bench_die("-%c: bad value '%s' (integer >= %ld)", opt, arg, min);
	return v;
}

void bench_parse_args(int argc, char **argv, struct bench_opts *o, long def_iters, long def_warmup,
		      long def_sleep_us, const char *summary)
{
	o->iters = def_iters;
	o->warmup = def_warmup;
	o->sleep_us = def_sleep_us;
	o->pins = (1u << BENCH_PIN_MODES) - 1;
	o->hints = 3;
	o->machine = false;
	int c;
	while ((c = getopt(argc, argv, "n:w:s:p:H:mh")) != -1) {
		switch (c) {
		case 'n':
			o->iters = parse_long(optarg, 'n', 1);
			break;
		case 'w':
			o->warmup = parse_long(optarg, 'w', 0);
			break;
		case 's':
			o->sleep_us = parse_long(optarg, 's', 1);
			break;
		case 'p':
			o->pins = parse_pins(optarg);
			break;
		case 'H':
			if (!strcmp(optarg, "0"))
				o->hints = 1;
			else if (!strcmp(optarg, "1"))
				o->hints = 2;
			else if (!strcmp(optarg, "both"))
				o->hints = 3;
			else
				bench_die("-H: 0, 1 or both");
			break;
		case 'm':
			o->machine = true;
			break;
		case 'h':
		default:
			fprintf(
			    c == 'h' ? stdout : stderr,
			    "usage: %s [-n iters] [-w warmup] [-s sleep_us] [-p "
			    "same,diff,none,srv] "
			    "[-H 0|1|both] [-m]\n%s\n"
			    "  -n  measured samples per case (default %ld)\n"
			    "  -w  warm-up samples discarded per case (default %ld)\n"
			    "  -s  blocking-call length in us (block/idle benches; default %ld)\n"
			    "  -p  pin modes to run (default all): same = both threads on one "
			    "CPU,\n"
			    "      diff = on two CPUs, none = unpinned, srv = server (thread 0)\n"
			    "      pinned, worker (thread 1) unpinned\n"
			    "  -H  UMCG_TUNE_CURRENT_CPU_HINT values to run (default both)\n"
			    "  -m  also print machine-readable RESULT lines (times in ns)\n",
			    argv[0], summary, def_iters, def_warmup, def_sleep_us);
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (optind != argc)
		bench_die("unexpected argument '%s' (-h for help)", argv[optind]);
}

/* ---- timing -------------------------------------------------------------- */

void bench_sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* nearest rank: the smallest value with at least q*n values <= it */
static uint64_t pct(const uint64_t *v, size_t n, double q)
{
	size_t r = (size_t)(q * (double)n + 0.999999);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

void bench_stats_compute(uint64_t *v, size_t n, struct bench_stats *s)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	if (!n)
		return;
	qsort(v, n, sizeof *v, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	s->mean = sum / (double)n;
	s->min = v[0];
	s->max = v[n - 1];
	s->p50 = pct(v, n, 0.50);
	s->p90 = pct(v, n, 0.90);
	s->p99 = pct(v, n, 0.99);
}

uint64_t bench_median(uint64_t *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	return v[(n - 1) / 2];
}

uint64_t *bench_alloc_samples(size_t n)
{
	uint64_t *v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		bench_die("out of memory (%zu samples)", n);
	return v;
}

/* ---- pinning ------------------------------------------------------------- */

static cpu_set_t initial_set;
static int cpu_a = -1, cpu_b = -1, nr_allowed;

static void watchdog_fired(int sig)
{
	static const char msg[] = "bench: watchdog: a case did not finish in time "
				  "(hang, lost wake-up?)\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)w;
	_exit(3);
}

void bench_watchdog(unsigned secs)
{
	alarm(secs);
}

void bench_init(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = watchdog_fired;
	sigaction(SIGALRM, &sa, NULL);
	if (sched_getaffinity(0, sizeof initial_set, &initial_set))
		bench_die("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &initial_set))
			continue;
		nr_allowed++;
		if (cpu_a < 0)
			cpu_a = c;
		else if (cpu_b < 0)
			cpu_b = c;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
}

bool bench_pin_available(enum bench_pin pin)
{
	return pin != BENCH_PIN_DIFF || cpu_b >= 0;
}

int bench_pin_cpu(enum bench_pin pin, int role)
{
	switch (pin) {
	case BENCH_PIN_SAME:
		return cpu_a;
	case BENCH_PIN_DIFF:
		return role ? cpu_b : cpu_a;
	case BENCH_PIN_SRV:
		return role ? -1 : cpu_a;
	default:
		return -1;
	}
}

void bench_pin_self(int cpu)
{
	cpu_set_t set;
	if (cpu < 0) {
		set = initial_set;
	} else {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	int r = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	if (r)
		bench_die("pthread_setaffinity_np(cpu %d): %s", cpu, strerror(r));
}

const char *bench_pin_name(enum bench_pin pin)
{
	static const char *const names[] = {"same", "diff", "none", "srv"};
	return pin < BENCH_PIN_MODES ? names[pin] : "?";
}

const char *bench_cpu_str(enum bench_pin pin, int role, char *buf, size_t len)
{
	int c = bench_pin_cpu(pin, role);
	if (c < 0)
		snprintf(buf, len, "any");
	else
		snprintf(buf, len, "cpu%d", c);
	return buf;
}

/* ---- output -------------------------------------------------------------- */

void bench_date_uname(char *date, size_t len, struct utsname *u)
{
	snprintf(date, len, "?");
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm))
		strftime(date, len, "%Y-%m-%d %H:%M:%S %z", &tm);
	if (uname(u))
		memset(u, 0, sizeof *u);
}

void bench_print_banner(const char *name, const struct bench_opts *o, const char *roles)
{
	struct utsname u;
	char date[64];
	bench_date_uname(date, sizeof date, &u);
	printf("# %s  %s  kernel %s %s  online cpus %ld, allowed %d (pinning uses cpu%d", name,
	       date, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN), nr_allowed, cpu_a);
	if (cpu_b >= 0)
		printf(" and cpu%d", cpu_b);
	printf(")\n# n=%ld samples per case after %ld warm-up; times in microseconds; clock "
	       "CLOCK_MONOTONIC\n",
	       o->iters, o->warmup);
	if (roles)
		printf("# %s\n", roles);
}

void bench_print_table_header(void)
{
	printf("%-10s %-5s %-4s %7s %8s %8s %8s %8s %9s %9s %7s %7s  %s\n", "metric", "pin", "hint",
	       "n", "min", "p50", "mean", "p99", "base_p50", "base_p99", "x_p50", "x_p99", "notes");
}

static double us(double ns)
{
	return ns / 1000.0;
}

void bench_report(const struct bench_opts *o, const char *bench, const char *metric,
		  enum bench_pin pin, int hint, const struct bench_stats *s,
		  const struct bench_stats *base, const char *extra)
{
	char hs[16];
	if (hint < 0)
		snprintf(hs, sizeof hs, "-");
	else
		snprintf(hs, sizeof hs, "%d", hint);
	double r50 = 0, r99 = 0;
	if (base && base->p50 && base->p99) {
		r50 = (double)s->p50 / (double)base->p50;
		r99 = (double)s->p99 / (double)base->p99;
	}
	printf("%-10s %-5s %-4s %7zu %8.2f %8.2f %8.2f %8.2f", metric, bench_pin_name(pin), hs,
	       s->n, us((double)s->min), us((double)s->p50), us(s->mean), us((double)s->p99));
	if (base)
		printf(" %9.2f %9.2f %7.2f %7.2f", us((double)base->p50), us((double)base->p99),
		       r50, r99);
	else
		printf(" %9s %9s %7s %7s", "-", "-", "-", "-");
	printf("  %s\n", extra ? extra : "");
	if (!o->machine)
		return;
	printf("RESULT bench=%s metric=%s pin=%s hint=%s n=%zu min=%llu p50=%llu mean=%.0f "
	       "p99=%llu max=%llu",
	       bench, metric, bench_pin_name(pin), hs, s->n, (unsigned long long)s->min,
	       (unsigned long long)s->p50, s->mean, (unsigned long long)s->p99,
	       (unsigned long long)s->max);
	if (base)
		printf(" base_p50=%llu base_p99=%llu r50=%.3f r99=%.3f",
		       (unsigned long long)base->p50, (unsigned long long)base->p99, r50, r99);
	if (extra && *extra)
		printf(" %s", extra);
	printf("\n");
}

/* ---- futex semaphore ----------------------------------------------------- */

void bench_sem_post(_Atomic uint32_t *w)
{
	atomic_fetch_add_explicit(w, 1, memory_order_release);
	syscall(SYS_futex, w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

bool bench_sem_wait(_Atomic uint32_t *w)
{
	bool slept = false;
	for (;;) {
		uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
		while (v) {
			if (atomic_compare_exchange_weak_explicit(
				w, &v, v - 1, memory_order_acquire, memory_order_relaxed))
				return slept;
		}
		syscall(SYS_futex, w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0);
		slept = true;
	}
}

/* ---- threads ------------------------------------------------------------- */

void bench_thread_start(void *(*fn)(void *), void *arg, void **handle)
{
	pthread_t *t = malloc(sizeof *t);
	if (!t)
		bench_die("out of memory");
	int r = pthread_create(t, NULL, fn, arg);
	if (r)
		bench_die("pthread_create: %s", strerror(r));
	*handle = t;
}

void bench_thread_join(void *handle)
{
	pthread_t *t = handle;
	int r = pthread_join(*t, NULL);
	if (r)
		bench_die("pthread_join: %s", strerror(r));
	free(t);
}

void bench_run_threads(void *(*fn0)(void *), void *(*fn1)(void *))
{
	void *h0, *h1;
	bench_watchdog(BENCH_CASE_TIMEOUT_S);
	bench_thread_start(fn0, NULL, &h0);
	bench_thread_start(fn1, NULL, &h1);
	bench_thread_join(h0);
	bench_thread_join(h1);
	bench_watchdog(0);
}

/* ---- side by side -------------------------------------------------------- */

static void ab_report(const struct bench_opts *o, const struct bench_ab *ab, enum bench_pin pin,
		      int hint, const struct bench_result *r, const struct bench_result *base)
{
	char c0[16], c1[16], metric[32], extra[96];
	for (int m = 0; m < ab->nmetrics; m++) {
		int len = snprintf(extra, sizeof extra, "samecpu=%.0f%% cpus=%s,%s", r->samecpu,
				   bench_cpu_str(pin, 0, c0, sizeof c0),
				   bench_cpu_str(pin, 1, c1, sizeof c1));
		if (ab->notslept & (1u << m))
			snprintf(extra + len, sizeof extra - (size_t)len, " notslept=%zu",
				 r->notslept);
		snprintf(metric, sizeof metric, "%s_%s", hint < 0 ? "futex" : "umcg",
			 ab->metrics[m]);
		bench_report(o, ab->bench, metric, pin, hint, &r->s[m], base ? &base->s[m] : NULL,
			     extra);
	}
}

void bench_ab_run(const struct bench_opts *o, const struct bench_ab *ab)
{
	for (int p = 0; p < BENCH_PIN_MODES; p++) {
		enum bench_pin pin = (enum bench_pin)p;
		if (!(o->pins & (1u << p)))
			continue;
		if (!bench_pin_available(pin)) {
			printf("# pin=%s skipped: fewer than two allowed CPUs\n",
			       bench_pin_name(pin));
			continue;
		}
		struct bench_result base, r;
		ab->measure(o, ab, pin, false, &base);
		ab_report(o, ab, pin, -1, &base, NULL);
		for (int hint = 0; hint < 2; hint++) {
			if (!(o->hints & (1u << hint)))
				continue;
			if (umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, hint))
				bench_die("umcg_tune: %s", strerror(errno));
			ab->measure(o, ab, pin, true, &r);
			ab_report(o, ab, pin, hint, &r, &base);
		}
	}
}

/* ---- UMCG server side ---------------------------------------------------- */

void bench_server_register(struct bench_server *s)
{
	memset(&s->task, 0, sizeof s->task);
	s->task.state = UMCG_TASK_RUNNING;
	s->task.api_version = UMCG_API_VERSION;
	s->timeouts = 0;
	if (umcg_ctl(UMCG_CTL_REGISTER, &s->task))
		bench_die("umcg_ctl(REGISTER server): %s", strerror(errno));
	s->tid = umcg_gettid();
	__atomic_store_n(&s->task.server_tid, s->tid, __ATOMIC_RELEASE);
}

void bench_server_unregister(struct bench_server *s)
{
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		bench_die("umcg_ctl(UNREGISTER server): %s", strerror(errno));
}

enum bench_idle_result bench_server_idle(struct bench_server *s, uint64_t *iwl, uint64_t *isl,
					 uint64_t *woke_ns)
{
	struct umcg_task *me = &s->task;
	enum bench_idle_result res = BENCH_IDLE_FOUND_WORK;
	for (;;) {
		if (!umcg_idle_workers_empty(iwl)) {
			if (woke_ns)
				*woke_ns = bench_now();
			return res;
		}
		umcg_state_store(me, UMCG_TASK_IDLE);
		umcg_idle_servers_push(isl, me);
		atomic_thread_fence(memory_order_seq_cst);
		if (!umcg_idle_workers_empty(iwl)) {
			if (umcg_idle_servers_remove(me)) {
				/* nobody popped us: back to RUNNING (unless someone woke us) */
				uint32_t exp = UMCG_TASK_IDLE;
				umcg_state_cas(me, &exp, UMCG_TASK_RUNNING);
			} else {
				/* popped: the popper makes us RUNNING and wakes us */
				if (umcg_wait(0, 0))
					bench_die("server umcg_wait (popped): %s", strerror(errno));
				if (woke_ns)
					*woke_ns = bench_now();
				res = BENCH_IDLE_RACED;
			}
		} else {
			int r = umcg_wait(
			    0, BENCH_IDLE_TIMEOUT_NS ? bench_now() + BENCH_IDLE_TIMEOUT_NS : 0);
			uint64_t t = bench_now();
			if (r == 0) {
				if (woke_ns)
					*woke_ns = t;
				res = BENCH_IDLE_SLEPT;
			} else if (errno == ETIMEDOUT) {
				s->timeouts++; /* state restored RUNNING by the library */
			} else {
				bench_die("server umcg_wait (idle): %s", strerror(errno));
			}
			if (!umcg_idle_servers_is_deleted(me))
				umcg_idle_servers_remove(me);
		}
		umcg_idle_servers_gc(isl, NULL, NULL);
		uint32_t st = umcg_state_load(me) & UMCG_TF_STATE_MASK;
		if (st != UMCG_TASK_RUNNING)
			bench_die("server not RUNNING after its idle wait (state %#x)", st);
	}
}

void bench_server_take(uint64_t *iwl, struct umcg_task *expected)
{
	struct umcg_task *w = umcg_idle_workers_pop_all(iwl);
	if (w != expected)
		bench_die("idle-workers list: got %p, expected %p", (void *)w, (void *)expected);
	if (umcg_idle_workers_next(w, iwl) != NULL)
		bench_die("idle-workers list: more than one worker queued");
	uint32_t st = umcg_state_load(w);
	if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_IDLE)
		bench_die("queued worker not IDLE (state %#x)", st);
}

uint32_t bench_server_run(struct bench_server *s, struct umcg_task *w, uint32_t wtid)
{
	struct umcg_task *me = &s->task;
	/*
	 * Own IDLE first (spec 5.3): if w ran and blocked before we are IDLE,
	 * its block point would find us RUNNING, not wake us, and we would
	 * then sleep for good.
	 */
	umcg_state_store(me, UMCG_TASK_IDLE);
	__atomic_store_n(&w->server_tid, s->tid, __ATOMIC_RELAXED);
	umcg_state_store(w, UMCG_TASK_RUNNING);
	__atomic_store_n(&me->next_tid, wtid, __ATOMIC_RELAXED);
	if (umcg_wait(0, 0))
		bench_die("server umcg_wait (run worker): %s", strerror(errno));
	__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED);
	return umcg_state_load(w) & UMCG_TF_STATE_MASK;
}

void bench_worker_finish(struct umcg_task *w, struct umcg_task *server)
{
	/*
	 * A CAS from RUNNING, not a store: detection may have taken our last
	 * sleep and left us BLOCKED in its window (its server already woken)
	 * until the switch-in alarm parks us and a server runs us again (seen
	 * in the 6.1 guest, where a relay thread sends that signal).
	 */
	uint32_t st = umcg_state_load(w);
	for (;;) {
		if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING) {
			sched_yield(); /* BLOCKED: the alarm parks us, a server runs us */
			st = umcg_state_load(w);
		} else if (umcg_state_cas(w, &st, UMCG_TASK_RUNNING | UMCG_TF_LOCKED)) {
			break; /* (flags and user bits cleared, as the store did) */
		}
	}
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(server, &exp, UMCG_TASK_RUNNING))
		bench_die("finish: server not IDLE (state %#x)", exp);
	__atomic_store_n(&w->next_tid, __atomic_load_n(&w->server_tid, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0))
		bench_die("finish: umcg_wait(WAKE_ONLY): %s", strerror(errno));
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		bench_die("finish: umcg_ctl(UNREGISTER): %s", strerror(errno));
}

void bench_worker_register(struct umcg_task *w, uint64_t *iwl, uint64_t *isl)
{
	memset(w, 0, sizeof *w);
	w->state = UMCG_TASK_IDLE;
	w->api_version = UMCG_API_VERSION;
	w->idle_workers_ptr = (uint64_t)(uintptr_t)iwl;
	w->idle_servers_ptr = (uint64_t)(uintptr_t)isl;
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, w))
		bench_die("umcg_ctl(REGISTER worker): %s", strerror(errno));
	uint32_t st = umcg_state_load(w);
	if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
		bench_die("worker not RUNNING after registration (state %#x)", st);
}
