/* SPDX-License-Identifier: MIT */
/* bench_common.c - see bench_common.h. */
#include <errno.h>
#include <getopt.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "umcg_idle.h"
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

void bench_print_banner(const char *name, const struct bench_opts *o, const char *roles)
{
	struct utsname u;
	char date[64] = "?";
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm))
		strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
	if (uname(&u))
		memset(&u, 0, sizeof u);
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
	umcg_state_store(w, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
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
	void *h0, *h1;
	bench_watchdog(BENCH_CASE_TIMEOUT_S);
	bench_thread_start(umcg ? cycle_umcg_server : cycle_futex_server, NULL, &h0);
	bench_thread_start(umcg ? cycle_umcg_worker : cycle_futex_worker, NULL, &h1);
	bench_thread_join(h0);
	bench_thread_join(h1);
	bench_watchdog(0);
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
