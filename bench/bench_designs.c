/* SPDX-License-Identifier: MIT */
/*
 * bench_designs - issue 3: the three idle-server designs, measured side by
 * side in one run (v0.3 idle-servers stack, the review's eventfd
 * "idle_fd", v0.4's tid word with chaining), each driven through struct
 * umcg_idle_group (include/umcg_idle.h), so that the scheduler code is the
 * same for all three and only the group's design differs.
 *
 * Parts (-P, default all):
 *
 *  1 lat   Idle-server wake-up latency. One server sleeps in
 *          umcg_idle_group_wait(); a waker thread (not a UMCG task) plays
 *          the kernel's wake point with a dummy worker: t0 = now, then
 *          umcg_idle_workers_push() + umcg__wake_idle_server() (the exact
 *          code a real worker's umcg_wake_point() runs after turning IDLE).
 *          t1 = the server's return from umcg_idle_group_wait() (so the
 *          design's own after-wake work is included: the stack's settle +
 *          GC + grace period, the tid word's grace period + chaining, the
 *          eventfd's read). Latency = t1 - t0. Before every sample the
 *          waker checks that the server really sleeps (its /proc state is
 *          S after it announced the wait), so every sample is a wake-up of
 *          a sleeping server. Baseline, same run, same pinning, same
 *          shape: a plain thread sleeping in FUTEX_WAIT on a semaphore word,
 *          woken by the waker's post (bench_sem_post: one FUTEX_WAKE).
 *          Pinning: "same" = server and waker on the same CPU, "diff" =
 *          server on one CPU, waker on another, "none" = both unpinned.
 *
 *  2 sys   System calls per wake-up, counted exactly. libumcg counts its
 *          own futex wait/wake, eventfd writes and sched_setaffinity calls
 *          per thread (struct umcg__stats, src/util/util.h). The eventfd
 *          design's poll() and read() in umcg_idle_group_wait() and the
 *          sched_yield() of the lists are libc calls: this file defines
 *          poll(), read() and sched_yield() (the executable's definitions
 *          win over libc's when libumcg.a is linked in), which count per
 *          thread and then make the raw system call. So every system call
 *          libumcg makes on these paths is counted, on the thread that made
 *          it (a contended pthread mutex would not be, see the notes).
 *          Scenarios: (a) "busy": nobody sleeps (one server spins on the
 *          idle-workers list): waker's calls per append, goal 0, and its
 *          time per append; (b) "1 sleeper": the part-1 loop, unpinned:
 *          waker's calls per wake-up (goal exactly 1) and the server's per
 *          idle/wake cycle, with its voluntary context switches
 *          (getrusage(RUSAGE_THREAD)) as the count of real sleeps;
 *          (c) "2 sleepers, 1 append" and (d) "2 sleepers, 2 appends back
 *          to back": how many servers wake (the herd of poll on one
 *          eventfd, the tid word's chaining), the waker's and the servers'
 *          calls per round, until both servers sleep again.
 *
 *  3 cpu   CPU time burnt by idle servers: -I servers per design (and as
 *          many futex-sleeping threads, the baseline) sleep in
 *          umcg_idle_group_wait() for -T seconds (default 10) with no work;
 *          their thread CPU clocks (pthread_getcpuclockid) and voluntary
 *          context switches (/proc/self/task/TID/status) are read before
 *          and after. All groups idle at the same time (they are
 *          independent), so the part takes -T seconds, not 4 x -T.
 *
 *  4 tput  Throughput under load, per workload (-L W:c:u:k): W real UMCG
 *          workers each do k operations of c us computation + a u us
 *          sleep entered through the block and wake points (the body of
 *          umcg_usleep(), src/detect/wrap.c, inlined so the wake point's
 *          calls can be counted apart from the block point's), run by a
 *          FIFO scheduler on S servers (-S, default 1..2*CPUs): drain the
 *          idle-workers list into a FIFO run queue, run the head (server
 *          IDLE first, then the worker RUNNING), kick another server with
 *          umcg_idle_group_wake_one() when the queue still has work, idle
 *          in umcg_idle_group_wait(). ops/s over -r runs (median, min..max)
 *          and per operation: idle waits, idle sleeps, wake-ups issued.
 *          Operation and run counts are checked exactly; a mismatch exits 1.
 *          Baseline: the same workers as plain threads (kernel scheduling).
 *          Default workloads: 64 workers x (20 us + 50 us): saturated, the
 *          servers almost never idle (what the brief's "many workers" gives
 *          on 2 CPUs); 8 workers x (10 us + 200 us): servers idle and are
 *          woken about once per operation, so the idle path is measured.
 *          The timer slack of every thread is left at the default (50 us):
 *          a "50 us" sleep lasts ~100 us.
 *
 * Output: tables on stdout; with -o FILE a TSV (one section name per row,
 * "#"-headers per section) for scripts/plot-designs.sh.
 * Exit: 0 ok, 1 a failed check, 2 usage/setup error, 3 watchdog (a hang).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "kern/kern.h"
#include "util/util.h"
#include "umcg.h"
#include "umcg_idle.h"
#include "umcg_lists.h"
#include "lists/lists.h" /* umcg__isl_no_grace_period: the stk-nogp diagnostic */

/* part 4's default workloads (workers:compute_us:sleep_us:ops per worker) */
#define DEFAULT_WORKLOADS  "64:20:50:150" /* many workers, saturated: servers seldom idle */
#define DEFAULT_WORKLOADS2 "8:10:200:600" /* wake-heavy: idle waits on the critical path */
#define NDESIGN		   3
#define D_FUTEX		   (-1) /* the futex baseline, where a design index is expected */
#define D_THREAD	   (-2) /* plain threads (throughput baseline) */
#define D_NOGP		   (-3) /* diagnostic: the stack without the server\'s grace-period waits */

/* ---- options --------------------------------------------------------------- */

enum { PART_LAT = 1, PART_SYS = 2, PART_CPU = 4, PART_TPUT = 8 };

static struct {
	unsigned parts;	      /* -P */
	unsigned designs;     /* -d: bit per enum umcg_idle_design */
	unsigned pins;	      /* -p: bit per enum bench_pin */
	long lat_n, lat_warm; /* -n, -w */
	long rounds;	      /* -R: part 2 rounds per scenario */
	long idle_secs;	      /* -T */
	int idle_servers;     /* -I */
	struct workload {     /* -L */
		int workers;
		long compute_us, sleep_us, ops;
		char name[48];
	} wl[8];
	int nwl;
	int srv_counts[16]; /* -S */
	int nsrv_counts;
	int reps;	  /* -r */
	bool pin_servers; /* -A */
	bool no_diag;	  /* -x: skip part 1's stk-nogp diagnostic */
	const char *out;  /* -o */
} opt;

static void usage(const char *argv0, int status) __attribute__((noreturn));
static int ncpus;		  /* CPUs we may run on ... */
static int cpu_list[CPU_SETSIZE]; /* ... and their ids */
static FILE *tsv;
static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_designs: CHECK FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

static const char *dname(int d)
{
	if (d == D_FUTEX)
		return "futex";
	if (d == D_THREAD)
		return "threads";
	if (d == D_NOGP)
		return "stk-nogp";
	return umcg_idle_design_name((enum umcg_idle_design)d);
}

static bool design_on(int d)
{
	return opt.designs & (1u << d);
}

static double us(double ns)
{
	return ns / 1000.0;
}

static void tsv_row(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tsv_row(const char *fmt, ...)
{
	if (!tsv)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(tsv, fmt, ap);
	va_end(ap);
	fputc('\n', tsv);
}

static void loadavg(char *buf, size_t len)
{
	snprintf(buf, len, "?");
	FILE *f = fopen("/proc/loadavg", "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f)) {
		char *p = buf;
		for (int sp = 0; *p; p++) /* keep the three averages */
			if (*p == ' ' && ++sp == 3) {
				*p = 0;
				break;
			}
		buf[strcspn(buf, "\n")] = 0;
	}
	fclose(f);
}

/* ---- counting system calls ---------------------------------------------------- */

/*
 * libumcg's own per-thread counts (umcg__stats) plus the libc calls it
 * makes on the idle paths, counted by the definitions below.
 */
enum { SC_FWAIT, SC_FWAKE, SC_EFDW, SC_SETAFF, SC_POLL, SC_READ, SC_YIELD, SC_EPOLL, SC_NR };
static const char *const sc_names[SC_NR] = {"futex_wait", "futex_wake", "efd_write", "setaff",
					    "poll",	  "read",	"yield",     "epoll_wait"};

struct sc {
	uint64_t v[SC_NR];
};

static __thread uint64_t tl_poll, tl_read, tl_yield;
static __thread uint64_t tl_epoll; /* epoll_wait() calls made by this file (part 2, epx) */

/*
 * Counting stand-ins for libc's poll(), read() and sched_yield(): a
 * definition in the executable takes precedence over libc's for every
 * object linked into it, libumcg.a included (and over a sanitizer's
 * interceptor). Each makes exactly one raw system call. Only libumcg
 * (idle_fd.c, group.c, the lists) and this file call them: stdio and the
 * sanitizer runtimes use internal entry points.
 */
int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	tl_poll++;
#ifdef SYS_poll
	return (int)syscall(SYS_poll, fds, nfds, timeout);
#else
	struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
	return (int)syscall(SYS_ppoll, fds, nfds, timeout < 0 ? NULL : &ts, NULL, 0);
#endif
}

ssize_t read(int fd, void *buf, size_t count)
{
	tl_read++;
	return (ssize_t)syscall(SYS_read, fd, buf, count);
}

int sched_yield(void)
{
	tl_yield++;
	return (int)syscall(SYS_sched_yield);
}

static void sc_now(struct sc *s)
{
	s->v[SC_FWAIT] = umcg__stats.futex_wait;
	s->v[SC_FWAKE] = umcg__stats.futex_wake;
	s->v[SC_EFDW] = umcg__stats.eventfd_write;
	s->v[SC_SETAFF] = umcg__stats.setaffinity;
	s->v[SC_POLL] = tl_poll;
	s->v[SC_READ] = tl_read;
	s->v[SC_YIELD] = tl_yield;
	s->v[SC_EPOLL] = tl_epoll;
}

/* acc += b - a */
static void sc_acc(struct sc *acc, const struct sc *a, const struct sc *b)
{
	for (int i = 0; i < SC_NR; i++)
		acc->v[i] += b->v[i] - a->v[i];
}

static uint64_t sc_total(const struct sc *s)
{
	uint64_t t = 0;
	for (int i = 0; i < SC_NR; i++)
		t += s->v[i];
	return t;
}

/* "futex_wake=1.00 poll=1.00": the non-zero counts of s, divided by n */
static const char *sc_str(const struct sc *s, double n, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < SC_NR && o < len; i++)
		if (s->v[i])
			o += (size_t)snprintf(buf + o, len - o, "%s%s=%.2f", o ? " " : "",
					      sc_names[i], (double)s->v[i] / n);
	if (!o)
		snprintf(buf, len, "-");
	return buf;
}

static long nvcsw_self(void)
{
	struct rusage r;
	if (getrusage(RUSAGE_THREAD, &r))
		return 0;
	return r.ru_nvcsw;
}

/* ---- small helpers ------------------------------------------------------------- */

/* A dummy worker: what the wake point appends, without a thread behind it. */
struct token {
	struct umcg_task t; /* first: a list node converts back with a cast */
	_Atomic int queued;
};

static void nap_us(long u)
{
	struct timespec ts = {u / 1000000, (u % 1000000) * 1000};
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static int proc_stat_open(uint32_t tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%u/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	return fd;
}

/* The scheduler state letter of a thread (R, S, D, ...). */
static char proc_state(int fd)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* comm may contain spaces */
	return p && p[1] == ' ' ? p[2] : '?';
}

/* voluntary_ctxt_switches of a thread, from /proc/self/task/TID/status */
static long proc_nvcsw(uint32_t tid)
{
	char path[64], line[128];
	long v = -1;
	snprintf(path, sizeof path, "/proc/self/task/%u/status", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void server_register(struct umcg_task *t, _Atomic uint32_t *tid_out)
{
	memset(t, 0, sizeof *t);
	t->state = UMCG_TASK_RUNNING;
	t->api_version = UMCG_API_VERSION;
	if (umcg_ctl(UMCG_CTL_REGISTER, t))
		bench_die("umcg_ctl(REGISTER server): %s", strerror(errno));
	uint32_t tid = umcg_gettid();
	__atomic_store_n(&t->server_tid, tid, __ATOMIC_RELEASE);
	if (tid_out)
		atomic_store(tid_out, tid);
}

static void unregister(void)
{
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		bench_die("umcg_ctl(UNREGISTER): %s", strerror(errno));
}

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, fn, arg);
	if (r)
		bench_die("pthread_create: %s", strerror(r));
	return t;
}

static void join_thread(pthread_t t)
{
	int r = pthread_join(t, NULL);
	if (r)
		bench_die("pthread_join: %s", strerror(r));
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		bench_die("out of memory");
	return p;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ================================================================================
 * Part 1: idle-server wake-up latency (and part 2b: its system calls)
 * ================================================================================ */

static struct lat_ctx {
	struct umcg_task srv; /* 64-byte aligned by its type */
	struct token tok;
	struct umcg_idle_group g;
	int design; /* of the group: a design, or D_FUTEX */
	bool nogp;  /* D_NOGP: stack group, nogp_wait() */
	enum bench_pin pin;
	size_t total;
	_Atomic uint32_t srv_tid;
	_Atomic long armed; /* sample index + 1 the server is about to wait for */
	_Atomic uint32_t go, ack;
	_Atomic uint64_t t0;
	/* per sample */
	uint64_t *lat;
	int16_t *scpu, *wcpu;
	struct sc *wk, *sv;
	long *nv;
	long spurious;
} L;

struct lat_result {
	int design;
	enum bench_pin pin;
	struct bench_stats st;
	double samecpu;
	struct sc wk, sv; /* sums over the measured samples */
	uint64_t wk_min, wk_max, sv_min, sv_max;
	long nv_sum, spurious;
	bool done;
};

/*
 * The stk-nogp diagnostic: the stack design's idle wait written with the
 * public list calls (what umcg_idle_group_wait does for the stack: IDLE,
 * push, re-check, sleep, settle, GC) but run with the library's test hook
 * umcg__isl_no_grace_period set, so that the GC does not wait for a grace
 * period (and without group.c's taken(), which waits for one as well).
 * NOT a safe design: it only shows what the grace-period waits cost (up to
 * 6e45b6b the waker's read section enclosed its FUTEX_WAKE, and those waits
 * cost ~10 us per same-CPU wake-up; docs/idle-designs.md, F1). Safe here:
 * one server, and one waker whose pop and CAS have completed before the
 * server runs, so the server's node is not in use when it is re-pushed.
 */
static void nogp_wait(struct umcg_idle_group *g, struct umcg_task *me)
{
	uint32_t st = umcg_state_load(me);
	umcg_state_store(me, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_IDLE);
	umcg_idle_servers_push(&g->idle_servers, me); /* seq_cst, then the re-check */
	if (umcg_idle_workers_empty(&g->idle_workers))
		umcg_wait(0, 0); /* EINTR: settled below */
	if (umcg_idle_servers_remove(me)) {
		st = umcg_state_load(me);
		while ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING &&
		       !umcg_state_cas(me, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING))
			;
	} else {
		while ((umcg_state_load(me) & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
			umcg_wait(0, 0);
	}
	umcg_idle_servers_gc(&g->idle_servers, NULL, NULL);
}

static void *lat_server(void *arg)
{
	(void)arg;
	bench_pin_self(bench_pin_cpu(L.pin, 0));
	if (L.design >= 0)
		server_register(&L.srv, NULL);
	atomic_store(&L.srv_tid, umcg_gettid());
	for (size_t i = 0; i < L.total; i++) {
		struct sc a, b;
		long nv0 = nvcsw_self();
		sc_now(&a);
		atomic_store(&L.armed, (long)i + 1);
		uint64_t t1;
		if (L.design < 0) {
			bench_sem_wait(&L.go);
			t1 = bench_now();
		} else {
			for (;;) {
				if (L.nogp)
					nogp_wait(&L.g, &L.srv);
				else if (umcg_idle_group_wait(&L.g, &L.srv, 0))
					bench_die("umcg_idle_group_wait: %s", strerror(errno));
				t1 = bench_now();
				if (!umcg_idle_workers_empty(&L.g.idle_workers))
					break;
				L.spurious++; /* a return with nothing queued: wait again */
			}
		}
		L.scpu[i] = (int16_t)sched_getcpu();
		sc_now(&b);
		L.nv[i] = nvcsw_self() - nv0;
		memset(&L.sv[i], 0, sizeof L.sv[i]);
		sc_acc(&L.sv[i], &a, &b);
		L.lat[i] = t1 - atomic_load_explicit(&L.t0, memory_order_relaxed);
		if (L.design >= 0) {
			struct umcg_task *w = umcg_idle_workers_pop_all(&L.g.idle_workers);
			if (w != &L.tok.t || umcg_idle_workers_next(w, &L.g.idle_workers))
				bench_die("lat: unexpected idle-workers list content");
			atomic_store(&L.tok.queued, 0);
		}
		bench_sem_post(&L.ack);
	}
	if (L.design >= 0)
		unregister();
	return NULL;
}

static void *lat_waker(void *arg)
{
	(void)arg;
	bench_pin_self(bench_pin_cpu(L.pin, 1));
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* short naps really short */
	while (!atomic_load(&L.srv_tid))
		nap_us(100);
	int fd = proc_stat_open(atomic_load(&L.srv_tid));
	for (size_t i = 0; i < L.total; i++) {
		/* the server announced sample i and sleeps (state S) */
		while (atomic_load(&L.armed) != (long)i + 1 || proc_state(fd) != 'S')
			nap_us(5);
		if (L.design >= 0) {
			umcg_idle_group_worker_init(&L.g, &L.tok.t);
			atomic_store(&L.tok.queued, 1);
		}
		struct sc a, b;
		L.wcpu[i] = (int16_t)sched_getcpu();
		sc_now(&a);
		atomic_store_explicit(&L.t0, bench_now(), memory_order_relaxed);
		if (L.design < 0) {
			bench_sem_post(&L.go);
		} else {
			/* what a worker's wake point does once it is IDLE */
			umcg_idle_workers_push(&L.g.idle_workers, &L.tok.t);
			umcg__wake_idle_server(&L.tok.t);
		}
		sc_now(&b);
		memset(&L.wk[i], 0, sizeof L.wk[i]);
		sc_acc(&L.wk[i], &a, &b);
		if (L.design < 0)
			L.wk[i].v[SC_FWAKE] = 1; /* bench_sem_post: always one FUTEX_WAKE */
		bench_sem_wait(&L.ack);
	}
	close(fd);
	return NULL;
}

static void lat_run(int design, enum bench_pin pin, long n, long warm, struct lat_result *r)
{
	memset(r, 0, sizeof *r);
	r->design = design;
	r->pin = pin;
	size_t total = (size_t)(n + warm);
	memset(&L, 0, sizeof L);
	L.nogp = design == D_NOGP;
	L.design = L.nogp ? UMCG_IDLE_STACK : design;
	L.pin = pin;
	L.total = total;
	L.lat = xcalloc(total, sizeof *L.lat);
	L.scpu = xcalloc(total, sizeof *L.scpu);
	L.wcpu = xcalloc(total, sizeof *L.wcpu);
	L.wk = xcalloc(total, sizeof *L.wk);
	L.sv = xcalloc(total, sizeof *L.sv);
	L.nv = xcalloc(total, sizeof *L.nv);
	if (L.design >= 0 && umcg_idle_group_init(&L.g, (enum umcg_idle_design)L.design))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	umcg__isl_no_grace_period = L.nogp;
	bench_watchdog(120);
	pthread_t s = start_thread(lat_server, NULL);
	pthread_t w = start_thread(lat_waker, NULL);
	join_thread(s);
	join_thread(w);
	bench_watchdog(0);
	umcg__isl_no_grace_period = 0;
	if (L.design >= 0)
		umcg_idle_group_destroy(&L.g);

	size_t same = 0;
	r->wk_min = r->sv_min = UINT64_MAX;
	for (size_t i = (size_t)warm; i < total; i++) {
		same += L.scpu[i] == L.wcpu[i];
		for (int k = 0; k < SC_NR; k++) {
			r->wk.v[k] += L.wk[i].v[k];
			r->sv.v[k] += L.sv[i].v[k];
		}
		uint64_t wt = sc_total(&L.wk[i]), st = sc_total(&L.sv[i]);
		r->wk_min = wt < r->wk_min ? wt : r->wk_min;
		r->wk_max = wt > r->wk_max ? wt : r->wk_max;
		r->sv_min = st < r->sv_min ? st : r->sv_min;
		r->sv_max = st > r->sv_max ? st : r->sv_max;
		r->nv_sum += L.nv[i];
	}
	r->samecpu = 100.0 * (double)same / (double)n;
	r->spurious = L.spurious;
	bench_stats_compute(L.lat + warm, (size_t)n, &r->st);
	r->done = true;
	free(L.lat);
	free(L.scpu);
	free(L.wcpu);
	free(L.wk);
	free(L.sv);
	free(L.nv);
}

static double median_dbl(double *v, int n);

/* part 1's numbers of one case, over the repetitions */
struct lat_agg {
	bool done;
	int design;
	size_t n;			/* samples per repetition */
	double p50, p99, mean, samecpu; /* medians over the repetitions (ns, %) */
	double p50lo, p50hi, min, max;	/* range of p50; extremes over all samples */
	double wk, sv;			/* system calls per sample, all repetitions */
	uint64_t wk_min, wk_max;
};

static void lat_aggregate(const struct lat_result *r, int reps, struct lat_agg *a)
{
	double p50[64], p99[64], mean[64], same[64];
	double n = 0, wk = 0, sv = 0;
	memset(a, 0, sizeof *a);
	a->min = 1e30;
	a->wk_min = UINT64_MAX;
	for (int i = 0; i < reps; i++) {
		p50[i] = (double)r[i].st.p50;
		p99[i] = (double)r[i].st.p99;
		mean[i] = r[i].st.mean;
		same[i] = r[i].samecpu;
		a->min = (double)r[i].st.min < a->min ? (double)r[i].st.min : a->min;
		a->max = (double)r[i].st.max > a->max ? (double)r[i].st.max : a->max;
		a->wk_min = r[i].wk_min < a->wk_min ? r[i].wk_min : a->wk_min;
		a->wk_max = r[i].wk_max > a->wk_max ? r[i].wk_max : a->wk_max;
		n += (double)r[i].st.n;
		wk += (double)sc_total(&r[i].wk);
		sv += (double)sc_total(&r[i].sv);
	}
	a->done = true;
	a->design = r[0].design;
	a->n = r[0].st.n;
	a->p50 = median_dbl(p50, reps);
	a->p50lo = p50[0]; /* sorted by median_dbl */
	a->p50hi = p50[reps - 1];
	a->p99 = median_dbl(p99, reps);
	a->mean = median_dbl(mean, reps);
	a->samecpu = median_dbl(same, reps);
	a->wk = wk / n;
	a->sv = sv / n;
}

static void part_lat(void)
{
	static const int order[] = {D_FUTEX, UMCG_IDLE_STACK, UMCG_IDLE_EVENTFD, UMCG_IDLE_TID_WORD,
				    D_NOGP};
	enum { NK = 5 };
	int reps = opt.reps;
	struct lat_result *res = xcalloc((size_t)(BENCH_PIN_NR * NK * reps), sizeof *res);
	struct lat_agg agg[BENCH_PIN_NR][NK];
	char la[64];
	memset(agg, 0, sizeof agg);
	loadavg(la, sizeof la);
	printf(
	    "\n== 1. idle-server wake-up latency (us): t0 = waker, just before the append + wake "
	    "(dummy worker:\n"
	    "   umcg_idle_workers_push + umcg__wake_idle_server) -> t1 = server returned from "
	    "umcg_idle_group_wait\n"
	    "   (futex: from sem_wait). Server asleep (state S) at t0 in every sample. %d runs "
	    "of n=%ld (after %ld warm-up)\n"
	    "   per case, interleaved; p50/mean/p99 = median over the runs, p50 range = "
	    "min..max over the runs. load %s\n",
	    reps, opt.lat_n, opt.lat_warm, la);
	printf("   pin: same = server+waker on cpu%d; diff = server cpu%d, waker cpu%d; none = "
	       "unpinned\n",
	       bench_pin_cpu(BENCH_PIN_SAME, 0), bench_pin_cpu(BENCH_PIN_DIFF, 0),
	       bench_pin_cpu(BENCH_PIN_DIFF, 1));
	printf("%-8s %-5s %5s %7s %7s %13s %7s %8s %9s %6s %6s %6s %6s %5s %5s %5s\n", "design",
	       "pin", "n", "min", "p50", "p50 range", "mean", "p99", "max", "x50fut", "x99fut",
	       "x50stk", "x99stk", "same%", "wk_sc", "sv_sc");
	tsv_row("#lat\tdesign\tpin\tn\tmin_us\tp50_us\tmean_us\tp99_us\tmax_us\tx50_futex\tx99_"
		"futex\tx50_stack\tx99_stack\tsamecpu_pct\twaker_sc\tserver_sc\truns\tp50_lo_"
		"us\tp50_hi_us");
	for (int p = 0; p < BENCH_PIN_NR; p++) {
		if (!(opt.pins & (1u << p)))
			continue;
		if (!bench_pin_available((enum bench_pin)p)) {
			printf("(pin %s: needs two CPUs, skipped)\n", bench_pin_name(p));
			continue;
		}
		bool on[NK];
		for (int k = 0; k < NK; k++) {
			int d = order[k];
			on[k] = !((d >= 0 && !design_on(d)) ||
				  (d == D_NOGP && (opt.no_diag || !design_on(UMCG_IDLE_STACK))));
		}
		for (int i = 0; i < reps; i++) /* interleaved: drift hits every case alike */
			for (int k = 0; k < NK; k++)
				if (on[k])
					lat_run(order[k], (enum bench_pin)p, opt.lat_n,
						opt.lat_warm, &res[(p * NK + k) * reps + i]);
		for (int k = 0; k < NK; k++)
			if (on[k])
				lat_aggregate(&res[(p * NK + k) * reps], reps, &agg[p][k]);
		for (int k = 0; k < NK; k++) {
			struct lat_agg *a = &agg[p][k];
			if (!a->done)
				continue;
			const struct lat_agg *f = &agg[p][0],
					     *st = agg[p][1].done ? &agg[p][1] : NULL;
			double x50f = a->p50 / f->p50, x99f = a->p99 / f->p99;
			double x50s = st ? a->p50 / st->p50 : 0, x99s = st ? a->p99 / st->p99 : 0;
			char range[32];
			snprintf(range, sizeof range, "%.2f..%.2f", us(a->p50lo), us(a->p50hi));
			printf(
			    "%-8s %-5s %5zu %7.2f %7.2f %13s %7.2f %8.2f %9.1f %6.2f %6.2f %6.2f "
			    "%6.2f %5.1f %5.2f %5.2f\n",
			    dname(a->design), bench_pin_name(p), a->n, us(a->min), us(a->p50),
			    range, us(a->mean), us(a->p99), us(a->max), x50f, x99f, x50s, x99s,
			    a->samecpu, a->wk, a->sv);
			tsv_row(
			    "lat\t%s\t%s\t%zu\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%."
			    "3f\t%.1f\t%.3f\t%.3f\t%d\t%.3f\t%.3f",
			    dname(a->design), bench_pin_name(p), a->n, us(a->min), us(a->p50),
			    us(a->mean), us(a->p99), us(a->max), x50f, x99f, x50s, x99s, a->samecpu,
			    a->wk, a->sv, reps, us(a->p50lo), us(a->p50hi));
			if (a->design != D_FUTEX && (a->wk_min != 1 || a->wk_max != 1))
				fail("lat %s/%s: waker made %llu..%llu system calls per wake-up, "
				     "expected exactly 1",
				     dname(a->design), bench_pin_name(p),
				     (unsigned long long)a->wk_min, (unsigned long long)a->wk_max);
		}
	}
	free(res);
	printf("   x50fut/x99fut: p50/p99 over the futex baseline's (same pinning, same run); "
	       "x50stk/x99stk: over the stack's.\n"
	       "   same%%: samples where the server returned on the CPU the waker ran on; wk_sc / "
	       "sv_sc: system calls\n"
	       "   per wake-up on the waker's side / per idle-wait cycle on the server's side "
	       "(part 2 breaks them down).\n"
	       "   stk-nogp (diagnostic, -x skips it): the stack with the server's grace-period "
	       "waits switched off\n"
	       "   (test hook umcg__isl_no_grace_period; unsafe in general): what those waits "
	       "cost.\n");
}

/* ================================================================================
 * Part 2: system calls per wake-up
 * ================================================================================ */

/* (a) nobody sleeps: one server spins on the idle-workers list */
#define BUSY_TOKENS 16
static struct busy_ctx {
	struct umcg_task srv;
	struct token tok[BUSY_TOKENS];
	struct umcg_idle_group g;
	_Atomic int stop;
	_Atomic long consumed;
} B;

static void *busy_server(void *arg)
{
	(void)arg;
	server_register(&B.srv, NULL);
	for (;;) {
		struct umcg_task *w = umcg_idle_workers_pop_all(&B.g.idle_workers);
		if (!w) {
			if (atomic_load(&B.stop))
				break;
			sched_yield();
			continue;
		}
		while (w) {
			struct umcg_task *next = umcg_idle_workers_next(w, &B.g.idle_workers);
			struct token *tk = (struct token *)(void *)w;
			if (atomic_exchange(&tk->queued, 0) != 1)
				bench_die("busy: token consumed twice");
			atomic_fetch_add(&B.consumed, 1);
			w = next;
		}
	}
	unregister();
	return NULL;
}

struct busy_result {
	struct sc wk;
	uint64_t wk_max;
	double ns_per_append;
	long appends;
};

/*
 * push_only: append without the wake-up check (the reference: what the
 * append alone costs). ns_per_append: median over 5 batches.
 */
static void busy_run(int design, bool push_only, long appends, struct busy_result *r)
{
	memset(r, 0, sizeof *r);
	memset(&B, 0, sizeof B);
	if (umcg_idle_group_init(&B.g, (enum umcg_idle_design)design))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog(120);
	pthread_t s = start_thread(busy_server, NULL);
	uint64_t ns = 0, batch[5];
	long per = appends / 5 > 0 ? appends / 5 : 1;
	appends = per * 5;
	for (long m = 0; m < appends; m++) {
		struct token *tk = &B.tok[m % BUSY_TOKENS];
		while (atomic_load(&tk->queued))
			sched_yield();
		atomic_store(&tk->queued, 1);
		umcg_idle_group_worker_init(&B.g, &tk->t);
		struct sc a, b;
		sc_now(&a);
		uint64_t t = bench_now();
		umcg_idle_workers_push(&B.g.idle_workers, &tk->t);
		if (!push_only)
			umcg__wake_idle_server(&tk->t);
		ns += bench_now() - t;
		if ((m + 1) % per == 0) {
			batch[m / per] = ns;
			ns = 0;
		}
		sc_now(&b);
		sc_acc(&r->wk, &a, &b);
		uint64_t tot = sc_total(&b) - sc_total(&a);
		r->wk_max = tot > r->wk_max ? tot : r->wk_max;
	}
	while (atomic_load(&B.consumed) != appends)
		nap_us(100);
	atomic_store(&B.stop, 1);
	join_thread(s);
	bench_watchdog(0);
	umcg_idle_group_destroy(&B.g);
	r->appends = appends;
	r->ns_per_append = (double)bench_median(batch, 5) / (double)per;
}

/* (c), (d): two sleeping servers, one or two appends per round */
#define MULTI_SERVERS 2
static struct multi_ctx {
	struct msrv {
		struct umcg_task t;
		_Atomic uint32_t tid;
		_Atomic int in_wait;
		_Atomic long returns;
		_Atomic uint64_t sc[SC_NR];
		_Atomic int exited;
	} s[MULTI_SERVERS];
	struct token tok[2];
	struct umcg_idle_group g;
	_Atomic long consumed;
	_Atomic int stop;
	int fds[MULTI_SERVERS];
	bool epx; /* eventfd design, servers wait in epoll_wait with EPOLLEXCLUSIVE */
} M;

/*
 * The eventfd design's idle wait with one epoll instance per server, the
 * shared eventfd registered EPOLLEXCLUSIVE (the public umcg_idle_fd_prepare /
 * umcg_idle_fd_finish around the wait, as umcg_idle_group_wait does around
 * its poll()): a write wakes one of the waiting servers, not all.
 */
static void epx_wait(int ep)
{
	if (!umcg_idle_fd_prepare(&M.g.idle_fd, &M.g.idle_workers))
		return;
	struct epoll_event ev;
	tl_epoll++;
	while (epoll_wait(ep, &ev, 1, -1) < 0) {
		if (errno != EINTR)
			bench_die("epoll_wait: %s", strerror(errno));
		tl_epoll++;
	}
	umcg_idle_fd_finish(&M.g.idle_fd);
}

static void *multi_server(void *arg)
{
	struct msrv *me = &M.s[(long)arg];
	int ep = -1;
	if (M.epx) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, M.g.idle_fd.fd, &ev))
			bench_die("epoll (EPOLLEXCLUSIVE): %s", strerror(errno));
	}
	server_register(&me->t, &me->tid);
	for (;;) {
		struct sc a, b;
		sc_now(&a);
		atomic_store(&me->in_wait, 1);
		if (M.epx)
			epx_wait(ep);
		else if (umcg_idle_group_wait(&M.g, &me->t, 0))
			bench_die("umcg_idle_group_wait: %s", strerror(errno));
		atomic_store(&me->in_wait, 0);
		sc_now(&b);
		for (int k = 0; k < SC_NR; k++)
			atomic_fetch_add_explicit(&me->sc[k], b.v[k] - a.v[k],
						  memory_order_relaxed);
		atomic_fetch_add(&me->returns, 1);
		for (struct umcg_task *w = umcg_idle_workers_pop_all(&M.g.idle_workers); w;) {
			struct umcg_task *next = umcg_idle_workers_next(w, &M.g.idle_workers);
			if (atomic_exchange(&((struct token *)(void *)w)->queued, 0) != 1)
				bench_die("multi: token consumed twice");
			atomic_fetch_add(&M.consumed, 1);
			w = next;
		}
		if (atomic_load(&M.stop))
			break;
	}
	unregister();
	if (ep >= 0)
		close(ep);
	atomic_store(&me->exited, 1);
	return NULL;
}

struct msnap {
	long returns, nv;
	struct sc sc;
};

static void multi_snap(struct msnap *m)
{
	memset(m, 0, sizeof *m);
	for (int i = 0; i < MULTI_SERVERS; i++) {
		m->returns += atomic_load(&M.s[i].returns);
		m->nv += proc_nvcsw(atomic_load(&M.s[i].tid)); /* exact, at quiescence */
		for (int k = 0; k < SC_NR; k++)
			m->sc.v[k] += atomic_load_explicit(&M.s[i].sc[k], memory_order_relaxed);
	}
}

static bool multi_all_asleep(void)
{
	for (int i = 0; i < MULTI_SERVERS; i++)
		if (!atomic_load(&M.s[i].in_wait) || proc_state(M.fds[i]) != 'S')
			return false;
	return true;
}

/* Every server sleeps in its idle wait, and nothing moved for 2 ms. */
static void multi_quiesce(void)
{
	for (;;) {
		if (!multi_all_asleep()) {
			nap_us(50);
			continue;
		}
		long r0 = 0, r1 = 0;
		for (int i = 0; i < MULTI_SERVERS; i++)
			r0 += atomic_load(&M.s[i].returns);
		nap_us(2000);
		for (int i = 0; i < MULTI_SERVERS; i++)
			r1 += atomic_load(&M.s[i].returns);
		if (r0 == r1 && multi_all_asleep())
			return;
	}
}

struct multi_result {
	struct sc wk, sv;
	uint64_t wk_min, wk_max;
	long woken, woken_min, woken_max, nv;
	long rounds;
};

static void multi_run(int design, bool epx, int appends, long rounds, struct multi_result *r)
{
	memset(r, 0, sizeof *r);
	memset(&M, 0, sizeof M);
	M.epx = epx;
	if (umcg_idle_group_init(&M.g, (enum umcg_idle_design)design))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog(120);
	pthread_t th[MULTI_SERVERS];
	for (long i = 0; i < MULTI_SERVERS; i++)
		th[i] = start_thread(multi_server, (void *)i);
	for (int i = 0; i < MULTI_SERVERS; i++) {
		while (!atomic_load(&M.s[i].tid))
			nap_us(100);
		M.fds[i] = proc_stat_open(atomic_load(&M.s[i].tid));
	}
	r->wk_min = UINT64_MAX;
	r->woken_min = LONG_MAX;
	long expect = 0;
	for (long round = 0; round < rounds; round++) {
		struct msnap s0, s1;
		struct sc a, b;
		multi_quiesce();
		multi_snap(&s0);
		sc_now(&a);
		for (int k = 0; k < appends; k++) {
			struct token *tk = &M.tok[k];
			umcg_idle_group_worker_init(&M.g, &tk->t);
			atomic_store(&tk->queued, 1);
			umcg_idle_workers_push(&M.g.idle_workers, &tk->t);
			umcg__wake_idle_server(&tk->t);
		}
		sc_now(&b);
		expect += appends;
		while (atomic_load(&M.consumed) != expect)
			nap_us(20);
		multi_quiesce();
		multi_snap(&s1);
		sc_acc(&r->wk, &a, &b);
		sc_acc(&r->sv, &s0.sc, &s1.sc);
		uint64_t wt = sc_total(&b) - sc_total(&a);
		long woken = s1.returns - s0.returns;
		r->wk_min = wt < r->wk_min ? wt : r->wk_min;
		r->wk_max = wt > r->wk_max ? wt : r->wk_max;
		r->woken += woken;
		r->woken_min = woken < r->woken_min ? woken : r->woken_min;
		r->woken_max = woken > r->woken_max ? woken : r->woken_max;
		r->nv += s1.nv - s0.nv;
	}
	r->rounds = rounds;
	/* shutdown: wake until both servers are gone */
	atomic_store(&M.stop, 1);
	for (int i = 0; i < MULTI_SERVERS; i++) {
		while (!atomic_load(&M.s[i].exited)) {
			umcg_idle_group_wake_one(&M.g);
			nap_us(200);
		}
		join_thread(th[i]);
		close(M.fds[i]);
	}
	bench_watchdog(0);
	umcg_idle_group_destroy(&M.g);
}

static void part_sys(void)
{
	char la[64], b1[160], b2[160];
	loadavg(la, sizeof la);
	long appends = opt.rounds * 40;
	printf("\n== 2. system calls per wake-up (exact counts; unpinned). load %s\n", la);
	printf("   (a) busy: nobody sleeps, a server spins on the list; %ld appends\n", appends);
	printf("%-8s %10s %8s %12s\n", "design", "sc/append", "max", "ns/append");
	tsv_row("#sys_busy\tdesign\tappends\twaker_sc_per_append\twaker_sc_max\tns_per_append");
	for (int d = -1; d < NDESIGN; d++) {
		if (d >= 0 && !design_on(d))
			continue;
		struct busy_result r;
		busy_run(d < 0 ? UMCG_IDLE_STACK : d, d < 0, appends, &r);
		const char *name = d < 0 ? "(push)" : dname(d);
		double sc = (double)sc_total(&r.wk) / (double)r.appends;
		printf("%-8s %10.4f %8llu %12.1f\n", name, sc, (unsigned long long)r.wk_max,
		       r.ns_per_append);
		tsv_row("sys_busy\t%s\t%ld\t%.4f\t%llu\t%.1f", name, r.appends, sc,
			(unsigned long long)r.wk_max, r.ns_per_append);
		if (r.wk_max != 0)
			fail("sys busy %s: waker made a system call with no server asleep", name);
	}
	printf("   ns/append: push + wake-up check, median of 5 batches, clock reads included; "
	       "(push) = the append alone\n");

	printf("   (b) 1 sleeper: %ld idle/wake cycles of part 1's loop, unpinned. Waker: calls "
	       "per wake-up; server: calls\n"
	       "       per cycle (inside umcg_idle_group_wait), nvcsw = its voluntary context "
	       "switches (real sleeps) per cycle\n",
	       opt.rounds);
	printf("%-8s %-14s %-44s %5s\n", "design", "waker min/avg/max", "server per cycle",
	       "nvcsw");
	tsv_row("#sys_one\tdesign\tcycles\twaker_min\twaker_mean\twaker_max\tserver_mean\tserver_"
		"min\tserver_max\tnvcsw_mean\tsrv_futex_wait\tsrv_futex_wake\tsrv_poll\tsrv_"
		"read\tsrv_yield\tspurious");
	static const int order[] = {D_FUTEX, UMCG_IDLE_STACK, UMCG_IDLE_EVENTFD,
				    UMCG_IDLE_TID_WORD};
	for (int k = 0; k < 4; k++) {
		int d = order[k];
		if (d >= 0 && !design_on(d))
			continue;
		struct lat_result r;
		lat_run(d, BENCH_PIN_NONE, opt.rounds, 20, &r);
		double n = (double)r.st.n;
		char wk[32];
		snprintf(wk, sizeof wk, "%llu/%.2f/%llu", (unsigned long long)r.wk_min,
			 (double)sc_total(&r.wk) / n, (unsigned long long)r.wk_max);
		if (d < 0)
			snprintf(b1, sizeof b1, "futex_wait (FUTEX_WAIT in sem_wait, not counted)");
		else
			sc_str(&r.sv, n, b1, sizeof b1);
		printf("%-8s %-14s %-44s %5.2f%s\n", dname(d), wk, b1, (double)r.nv_sum / n,
		       r.spurious ? " (spurious returns!)" : "");
		tsv_row("sys_one\t%s\t%zu\t%llu\t%.3f\t%llu\t%.3f\t%llu\t%llu\t%.3f\t%.3f\t%.3f\t%."
			"3f\t%.3f\t%.3f\t%ld",
			dname(d), r.st.n, (unsigned long long)r.wk_min, (double)sc_total(&r.wk) / n,
			(unsigned long long)r.wk_max, (double)sc_total(&r.sv) / n,
			(unsigned long long)r.sv_min, (unsigned long long)r.sv_max,
			(double)r.nv_sum / n, (double)r.sv.v[SC_FWAIT] / n,
			(double)r.sv.v[SC_FWAKE] / n, (double)r.sv.v[SC_POLL] / n,
			(double)r.sv.v[SC_READ] / n, (double)r.sv.v[SC_YIELD] / n, r.spurious);
		if (d >= 0 && (r.wk_min != 1 || r.wk_max != 1))
			fail("sys one %s: waker made %llu..%llu calls, expected exactly 1",
			     dname(d), (unsigned long long)r.wk_min, (unsigned long long)r.wk_max);
	}

	long mrounds = opt.rounds / 2 > 20 ? opt.rounds / 2 : 20;
	printf("   (c)/(d) 2 servers asleep, 1 append / 2 appends back to back per round, %ld "
	       "rounds; per round, until\n"
	       "       both sleep again: waker's calls, servers woken (wait returns), servers' "
	       "calls and voluntary switches\n",
	       mrounds);
	printf("%-8s %-4s %-14s %-12s %-52s %5s\n", "design", "app", "waker min/avg/max",
	       "woken m/a/M", "servers per round", "nvcsw");
	tsv_row("#sys_two\tdesign\tappends\trounds\twaker_min\twaker_mean\twaker_max\twoken_"
		"min\twoken_mean\twoken_max\tserver_sc_mean\tnvcsw_mean");
	/* the eventfd design twice: umcg_idle_group_wait's poll(), and epoll EPOLLEXCLUSIVE */
	static const int vd[4] = {UMCG_IDLE_STACK, UMCG_IDLE_EVENTFD, UMCG_IDLE_EVENTFD,
				  UMCG_IDLE_TID_WORD};
	static const char *const vname[4] = {"stack", "eventfd", "efd+epx", "tid"};
	for (int appn = 1; appn <= 2; appn++)
		for (int v = 0; v < 4; v++) {
			int d = vd[v];
			if (!design_on(d))
				continue;
			struct multi_result r;
			multi_run(d, v == 2, appn, mrounds, &r);
			double n = (double)r.rounds;
			char wk[32], wo[32];
			snprintf(wk, sizeof wk, "%llu/%.2f/%llu", (unsigned long long)r.wk_min,
				 (double)sc_total(&r.wk) / n, (unsigned long long)r.wk_max);
			snprintf(wo, sizeof wo, "%ld/%.2f/%ld", r.woken_min, (double)r.woken / n,
				 r.woken_max);
			printf("%-8s %-4d %-14s %-12s %-52s %5.2f\n", vname[v], appn, wk, wo,
			       sc_str(&r.sv, n, b2, sizeof b2), (double)r.nv / n);
			tsv_row(
			    "sys_two\t%s\t%d\t%ld\t%llu\t%.3f\t%llu\t%ld\t%.3f\t%ld\t%.3f\t%.3f",
			    vname[v], appn, r.rounds, (unsigned long long)r.wk_min,
			    (double)sc_total(&r.wk) / n, (unsigned long long)r.wk_max, r.woken_min,
			    (double)r.woken / n, r.woken_max, (double)sc_total(&r.sv) / n,
			    (double)r.nv / n);
		}
}

/* ================================================================================
 * Part 3: CPU burnt by idle servers
 * ================================================================================ */

#define IDLE_GROUPS (NDESIGN + 1) /* [0] = futex baseline, [1 + d] = design d */

static struct idle_ctx {
	struct isrv {
		struct umcg_task t;
		int group;
		_Atomic uint32_t tid;
		_Atomic int in_wait;
		_Atomic int exited;
		_Atomic long returns;
		clockid_t cid; /* published by the release store of tid */
	} * s;
	int n;
	struct umcg_idle_group g[IDLE_GROUPS];
	_Atomic uint32_t sem;
	_Atomic int stop;
} I;

static void *idle_server(void *arg)
{
	struct isrv *me = arg;
	int d = me->group - 1;
	if (d >= 0)
		server_register(&me->t, NULL);
	if (pthread_getcpuclockid(pthread_self(), &me->cid))
		bench_die("pthread_getcpuclockid failed");
	atomic_store(&me->tid, umcg_gettid());
	for (;;) {
		atomic_store(&me->in_wait, 1);
		if (d < 0)
			bench_sem_wait(&I.sem);
		else if (umcg_idle_group_wait(&I.g[me->group], &me->t, 0))
			bench_die("umcg_idle_group_wait: %s", strerror(errno));
		atomic_store(&me->in_wait, 0);
		atomic_fetch_add(&me->returns, 1);
		if (atomic_load(&I.stop))
			break;
	}
	if (d >= 0)
		unregister();
	atomic_store(&me->exited, 1);
	return NULL;
}

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void part_cpu(void)
{
	char la[64];
	int per = opt.idle_servers;
	memset(&I, 0, sizeof I);
	I.n = per * IDLE_GROUPS;
	I.s = aligned_alloc(64, sizeof *I.s * (size_t)I.n);
	if (!I.s)
		bench_die("out of memory");
	memset(I.s, 0, sizeof *I.s * (size_t)I.n);
	for (int d = 0; d < NDESIGN; d++)
		if (umcg_idle_group_init(&I.g[1 + d], (enum umcg_idle_design)d))
			bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog((unsigned)opt.idle_secs + 60);
	pthread_t *th = xcalloc((size_t)I.n, sizeof *th);
	bool *on = xcalloc((size_t)I.n, sizeof *on);
	for (int i = 0; i < I.n; i++) {
		I.s[i].group = i / per;
		on[i] = I.s[i].group == 0 || design_on(I.s[i].group - 1);
		if (on[i])
			th[i] = start_thread(idle_server, &I.s[i]);
	}
	/* wait until every server sleeps, then let things settle */
	for (int i = 0; i < I.n; i++) {
		if (!on[i])
			continue;
		while (!atomic_load(&I.s[i].tid))
			nap_us(100);
		int fd = proc_stat_open(atomic_load(&I.s[i].tid));
		while (!atomic_load(&I.s[i].in_wait) || proc_state(fd) != 'S')
			nap_us(100);
		close(fd);
	}
	nap_us(100000);
	loadavg(la, sizeof la);
	uint64_t *c0 = xcalloc((size_t)I.n, sizeof *c0), *c1 = xcalloc((size_t)I.n, sizeof *c1);
	long *v0 = xcalloc((size_t)I.n, sizeof *v0), *v1 = xcalloc((size_t)I.n, sizeof *v1);
	long *r0 = xcalloc((size_t)I.n, sizeof *r0), *r1 = xcalloc((size_t)I.n, sizeof *r1);
	for (int i = 0; i < I.n; i++)
		if (on[i]) {
			c0[i] = cpu_ns(I.s[i].cid);
			v0[i] = proc_nvcsw(atomic_load(&I.s[i].tid));
			r0[i] = atomic_load(&I.s[i].returns);
		}
	uint64_t t0 = bench_now();
	nap_us(opt.idle_secs * 1000000L);
	uint64_t t1 = bench_now();
	for (int i = 0; i < I.n; i++)
		if (on[i]) {
			c1[i] = cpu_ns(I.s[i].cid);
			v1[i] = proc_nvcsw(atomic_load(&I.s[i].tid));
			r1[i] = atomic_load(&I.s[i].returns);
		}
	/* shutdown */
	atomic_store(&I.stop, 1);
	for (int i = 0; i < I.n; i++) {
		if (!on[i])
			continue;
		while (!atomic_load(&I.s[i].exited)) {
			if (I.s[i].group == 0)
				bench_sem_post(&I.sem);
			else
				umcg_idle_group_wake_one(&I.g[I.s[i].group]);
			nap_us(200);
		}
		join_thread(th[i]);
	}
	bench_watchdog(0);
	double secs = (double)(t1 - t0) / 1e9;
	printf("\n== 3. CPU burnt by idle servers: %d per design (+ %d futex-sleeping threads), "
	       "all idle at once for %.2f s, unpinned. load %s\n",
	       per, per, secs, la);
	printf("%-8s %8s %14s %16s %10s %10s\n", "design", "servers", "cpu_us_total",
	       "us_cpu/server/s", "nvcsw", "returns");
	tsv_row("#cpu\tdesign\tservers\tsecs\tcpu_us_total\tcpu_us_per_server_per_s\tnvcsw\t"
		"returns");
	for (int gi = 0; gi < IDLE_GROUPS; gi++) {
		int d = gi - 1;
		if (d >= 0 && !design_on(d))
			continue;
		uint64_t cpu = 0;
		long nv = 0, ret = 0;
		for (int i = gi * per; i < (gi + 1) * per; i++) {
			cpu += c1[i] - c0[i];
			nv += v1[i] - v0[i];
			ret += r1[i] - r0[i];
		}
		double per_s = us((double)cpu) / per / secs;
		printf("%-8s %8d %14.1f %16.3f %10ld %10ld\n", dname(d), per, us((double)cpu),
		       per_s, nv, ret);
		tsv_row("cpu\t%s\t%d\t%.3f\t%.1f\t%.4f\t%ld\t%ld", dname(d), per, secs,
			us((double)cpu), per_s, nv, ret);
		if (ret)
			fail("cpu %s: %ld idle-wait returns with no work and no wake_one", dname(d),
			     ret);
	}
	printf("   cpu: thread CPU clocks (pthread_getcpuclockid) over the window; nvcsw: "
	       "voluntary context switches\n"
	       "   (a wake-up that slept again); returns: idle waits that returned (0 expected: "
	       "no work, no wake_one).\n");
	for (int d = 0; d < NDESIGN; d++)
		umcg_idle_group_destroy(&I.g[1 + d]);
	free(c0);
	free(c1);
	free(v0);
	free(v1);
	free(r0);
	free(r1);
	free(th);
	free(on);
	free(I.s);
}

/* ================================================================================
 * Part 4: throughput of a wake-heavy workload under a FIFO scheduler
 * ================================================================================ */

struct tp_worker;

struct tp_server {
	struct umcg_task task;
	uint32_t tid;
	int idx, cpu;
	_Atomic(struct tp_worker *) finished; /* set by a worker that finishes (T10) */
	_Atomic int exited;
	pthread_t th;
	/* the server thread's own counters, read after join */
	long runs, taken, finishes, idle_calls, idle_empty, kicks, kicks_ok;
	struct sc idle_sc, kick_sc, all_sc;
} __attribute__((aligned(64)));

struct tp_worker {
	struct umcg_task task;
	uint32_t tid;
	int idx;
	struct tp_worker *rq_next;
	struct tp_server *server; /* the server running it */
	pthread_t th;
	long ops, parks, polls, errors;
	struct sc wp_sc, all_sc; /* wake point only / everything after "go" */
} __attribute__((aligned(64)));

static struct tp_ctx {
	struct umcg_idle_group g;
	struct tp_server *srv;
	struct tp_worker *wrk;
	int nsrv, nwrk;
	long ops;
	uint64_t compute_ns;
	unsigned sleep_us;
	pthread_mutex_t rq_lock;
	struct tp_worker *rq_head, *rq_tail;
	long rq_len;
	_Atomic int registered, go, finished;
	_Atomic uint64_t t_end;
} T;

static void compute(uint64_t ns)
{
	static _Thread_local volatile uint64_t sink;
	uint64_t end = bench_now() + ns;
	do {
		for (int i = 0; i < 32; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (bench_now() < end);
}

static void tp_drain(struct tp_server *s)
{
	struct umcg_task *t = umcg_idle_workers_pop_all(&T.g.idle_workers);
	if (!t)
		return;
	struct tp_worker *first = NULL, *last = NULL;
	long n = 0;
	while (t) { /* the list is LIFO: prepend to reverse it (FIFO) */
		struct umcg_task *next = umcg_idle_workers_next(t, &T.g.idle_workers);
		struct tp_worker *w = (struct tp_worker *)(void *)t;
		if ((umcg_state_load(t) & UMCG_TF_STATE_MASK) != UMCG_TASK_IDLE)
			bench_die("tput: queued worker %d not IDLE (%#x)", w->idx,
				  umcg_state_load(t));
		w->rq_next = first;
		first = w;
		if (!last)
			last = w;
		n++;
		t = next;
	}
	s->taken += n;
	pthread_mutex_lock(&T.rq_lock);
	if (T.rq_tail)
		T.rq_tail->rq_next = first;
	else
		T.rq_head = first;
	T.rq_tail = last;
	T.rq_len += n;
	pthread_mutex_unlock(&T.rq_lock);
}

static struct tp_worker *tp_pop(long *left)
{
	pthread_mutex_lock(&T.rq_lock);
	struct tp_worker *w = T.rq_head;
	if (w) {
		T.rq_head = w->rq_next;
		if (!T.rq_head)
			T.rq_tail = NULL;
		w->rq_next = NULL;
		T.rq_len--;
	}
	*left = T.rq_len;
	pthread_mutex_unlock(&T.rq_lock);
	return w;
}

static void tp_run_worker(struct tp_server *s, struct tp_worker *w)
{
	struct umcg_task *me = &s->task;
	w->server = s; /* published by the worker's state CAS (release) */
	__atomic_store_n(&w->task.server_tid, s->tid, __ATOMIC_RELAXED);
	umcg_state_store(me, UMCG_TASK_IDLE); /* server IDLE first ... */
	uint32_t exp = UMCG_TASK_IDLE;	      /* ... then the worker RUNNING */
	if (!umcg_state_cas(&w->task, &exp, UMCG_TASK_RUNNING))
		bench_die("tput: worker %d to run in state %#x", w->idx, exp);
	__atomic_store_n(&me->next_tid, w->tid, __ATOMIC_RELAXED);
	s->runs++;
	while (umcg_wait(0, 0)) {
		if (errno == ESRCH) /* it finished and unregistered: we are RUNNING */
			__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED);
		else if (errno != EINTR)
			bench_die("tput: server umcg_wait: %s", strerror(errno));
	}
	__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED);
	struct tp_worker *fw = atomic_exchange_explicit(&s->finished, NULL, memory_order_acquire);
	if (fw) {
		if (fw != w)
			bench_die("tput: worker %d finished while %d ran", fw->idx, w->idx);
		s->finishes++;
	}
}

static void *tp_server_main(void *arg)
{
	struct tp_server *s = arg;
	if (s->cpu >= 0)
		bench_pin_self(s->cpu); /* before registering: the "allowed" set */
	server_register(&s->task, NULL);
	s->tid = umcg_gettid();
	struct sc all0, all1;
	sc_now(&all0);
	for (;;) {
		tp_drain(s);
		long left;
		struct tp_worker *w = tp_pop(&left);
		if (w) {
			if (left) {
				struct sc a, b;
				sc_now(&a);
				s->kicks_ok += umcg_idle_group_wake_one(&T.g);
				sc_now(&b);
				sc_acc(&s->kick_sc, &a, &b);
				s->kicks++;
			}
			tp_run_worker(s, w);
			continue;
		}
		if (atomic_load(&T.finished) == T.nwrk)
			break;
		struct sc a, b;
		sc_now(&a);
		s->idle_calls++;
		if (umcg_idle_group_wait(&T.g, &s->task, 0))
			bench_die("tput: umcg_idle_group_wait: %s", strerror(errno));
		sc_now(&b);
		sc_acc(&s->idle_sc, &a, &b);
		if (umcg_idle_workers_empty(&T.g.idle_workers))
			s->idle_empty++;
	}
	sc_now(&all1);
	sc_acc(&s->all_sc, &all0, &all1);
	unregister();
	atomic_store(&s->exited, 1);
	return NULL;
}

/* One blocking call, the body of umcg_usleep() with the wake point counted apart. */
static void tp_block(struct tp_worker *w, unsigned u, bool count)
{
	if (umcg_block_point() != 1) {
		w->errors++;
		fail("tput: worker %d: block point did not block", w->idx);
	}
	usleep(u);
	struct sc a, b;
	sc_now(&a);
	if (umcg_wake_point() != 1) {
		w->errors++;
		fail("tput: worker %d: wake point did not park", w->idx);
	}
	sc_now(&b);
	w->parks++;
	if (count)
		sc_acc(&w->wp_sc, &a, &b);
	uint32_t st = umcg_state_load(&w->task);
	if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING ||
	    !__atomic_load_n(&w->task.server_tid, __ATOMIC_RELAXED)) {
		w->errors++;
		fail("tput: worker %d runs in state %#x", w->idx, st);
	}
}

static void *tp_worker_main(void *arg)
{
	struct tp_worker *w = arg;
	struct umcg_task *me = &w->task;
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_IDLE;
	me->api_version = UMCG_API_VERSION;
	umcg_idle_group_worker_init(&T.g, me);
	w->tid = umcg_gettid(); /* published by the registration's push */
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, me))
		bench_die("tput: umcg_ctl(REGISTER|WORKER): %s", strerror(errno));
	atomic_fetch_add(&T.registered, 1);
	while (!atomic_load(&T.go)) {
		tp_block(w, 200, false);
		w->polls++;
	}
	struct sc a, b;
	sc_now(&a);
	for (long i = 0; i < T.ops; i++) {
		compute(T.compute_ns);
		tp_block(w, T.sleep_us, true);
		w->ops++;
	}
	sc_now(&b);
	sc_acc(&w->all_sc, &a, &b);
	/* T10: locked, tell the server, make it RUNNING, wake it, unregister */
	struct tp_server *s = w->server;
	umcg_state_store(me, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	atomic_store_explicit(&s->finished, w, memory_order_relaxed);
	if (atomic_fetch_add(&T.finished, 1) + 1 == T.nwrk)
		atomic_store(&T.t_end, bench_now());
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&s->task, &exp, UMCG_TASK_RUNNING)) /* release: finished */
		bench_die("tput: worker %d: server not IDLE (%#x)", w->idx, exp);
	__atomic_store_n(&me->next_tid, __atomic_load_n(&me->server_tid, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0))
		bench_die("tput: worker wakes server: %s", strerror(errno));
	unregister();
	return NULL;
}

static void *tp_thread_main(void *arg)
{
	struct tp_worker *w = arg;
	atomic_fetch_add(&T.registered, 1);
	while (!atomic_load(&T.go))
		usleep(200);
	for (long i = 0; i < T.ops; i++) {
		compute(T.compute_ns);
		usleep(T.sleep_us);
		w->ops++;
	}
	if (atomic_fetch_add(&T.finished, 1) + 1 == T.nwrk)
		atomic_store(&T.t_end, bench_now());
	return NULL;
}

/* per-operation counts of a run */
enum {
	TP_IWAIT,
	TP_ISLEEP,
	TP_IEMPTY,
	TP_WPWAKE,
	TP_KICK,
	TP_KICKSC,
	TP_CHAIN,
	TP_WRKSC,
	TP_SRVSC,
	TP_SETAFF,
	TP_NR
};

struct tp_result {
	double ops_s;
	double per_op[TP_NR];
};

/* One run: design d (D_THREAD: plain threads) on nsrv servers. */
static void tp_run(const struct workload *wl, int d, int nsrv, struct tp_result *r)
{
	memset(r, 0, sizeof *r);
	memset(&T, 0, sizeof T);
	pthread_mutex_init(&T.rq_lock, NULL);
	T.nsrv = d == D_THREAD ? 0 : nsrv;
	T.nwrk = wl->workers;
	T.ops = wl->ops;
	T.compute_ns = (uint64_t)wl->compute_us * 1000;
	T.sleep_us = (unsigned)wl->sleep_us;
	T.srv = aligned_alloc(64, sizeof *T.srv * (size_t)(T.nsrv ? T.nsrv : 1));
	T.wrk = aligned_alloc(64, sizeof *T.wrk * (size_t)T.nwrk);
	if (!T.srv || !T.wrk)
		bench_die("out of memory");
	memset(T.srv, 0, sizeof *T.srv * (size_t)(T.nsrv ? T.nsrv : 1));
	memset(T.wrk, 0, sizeof *T.wrk * (size_t)T.nwrk);
	if (d >= 0 && umcg_idle_group_init(&T.g, (enum umcg_idle_design)d))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog(120);
	for (int i = 0; i < T.nsrv; i++) {
		T.srv[i].idx = i;
		T.srv[i].cpu = opt.pin_servers ? cpu_list[i % ncpus] : -1;
		T.srv[i].th = start_thread(tp_server_main, &T.srv[i]);
	}
	for (int i = 0; i < T.nwrk; i++) {
		T.wrk[i].idx = i;
		T.wrk[i].th =
		    start_thread(d == D_THREAD ? tp_thread_main : tp_worker_main, &T.wrk[i]);
	}
	while (atomic_load(&T.registered) != T.nwrk)
		nap_us(1000);
	uint64_t t0 = bench_now();
	atomic_store(&T.go, 1);
	for (int i = 0; i < T.nwrk; i++)
		join_thread(T.wrk[i].th);
	uint64_t t1 = atomic_load(&T.t_end);
	/* every worker is done: wake idle servers until all left */
	for (int i = 0; i < T.nsrv; i++) {
		while (!atomic_load(&T.srv[i].exited)) {
			umcg_idle_group_wake_one(&T.g);
			nap_us(100);
		}
		join_thread(T.srv[i].th);
	}
	bench_watchdog(0);
	if (d >= 0)
		umcg_idle_group_destroy(&T.g);

	/* exact checks */
	long ops = 0, parks = 0, runs = 0, taken = 0, finishes = 0, errors = 0;
	long total = (long)T.nwrk * T.ops;
	struct sc wp = {{0}}, wall = {{0}}, idle = {{0}}, kick = {{0}}, sall = {{0}};
	long idle_calls = 0, idle_empty = 0, kicks_ok = 0;
	for (int i = 0; i < T.nwrk; i++) {
		struct tp_worker *w = &T.wrk[i];
		ops += w->ops;
		parks += w->parks;
		errors += w->errors;
		for (int k = 0; k < SC_NR; k++) {
			wp.v[k] += w->wp_sc.v[k];
			wall.v[k] += w->all_sc.v[k];
		}
	}
	for (int i = 0; i < T.nsrv; i++) {
		struct tp_server *s = &T.srv[i];
		runs += s->runs;
		taken += s->taken;
		finishes += s->finishes;
		idle_calls += s->idle_calls;
		idle_empty += s->idle_empty;
		kicks_ok += s->kicks_ok;
		for (int k = 0; k < SC_NR; k++) {
			idle.v[k] += s->idle_sc.v[k];
			kick.v[k] += s->kick_sc.v[k];
			sall.v[k] += s->all_sc.v[k];
		}
	}
	if (ops != total)
		fail("tput %s/%d: %ld operations done, expected %ld", dname(d), nsrv, ops, total);
	if (d >= 0) {
		/* each worker runs once at registration and once after every park */
		if (runs != T.nwrk + parks)
			fail("tput %s/%d: %ld runs, expected %d registrations + %ld parks",
			     dname(d), nsrv, runs, T.nwrk, parks);
		if (taken != runs)
			fail("tput %s/%d: %ld workers taken from the list, %ld runs", dname(d),
			     nsrv, taken, runs);
		if (finishes != T.nwrk)
			fail("tput %s/%d: %ld finishes seen, expected %d", dname(d), nsrv, finishes,
			     T.nwrk);
		if (errors)
			fail("tput %s/%d: %ld worker errors", dname(d), nsrv, errors);
	}
	if (atomic_load(&T.finished) != T.nwrk || t1 <= t0)
		fail("tput %s/%d: %d of %d workers finished", dname(d), nsrv,
		     atomic_load(&T.finished), T.nwrk);
	double n = (double)total;
	r->ops_s = t1 > t0 ? n / ((double)(t1 - t0) / 1e9) : 0;
	double *po = r->per_op;
	po[TP_IWAIT] = (double)idle_calls / n;
	po[TP_ISLEEP] = (double)(idle.v[SC_FWAIT] + idle.v[SC_POLL]) / n;
	po[TP_IEMPTY] = (double)idle_empty / n;
	po[TP_WPWAKE] = (double)(wp.v[SC_FWAKE] + wp.v[SC_EFDW]) / n;
	po[TP_KICK] = (double)kicks_ok / n;
	po[TP_KICKSC] = (double)sc_total(&kick) / n;
	po[TP_CHAIN] = (double)(idle.v[SC_FWAKE] + idle.v[SC_EFDW]) / n;
	po[TP_WRKSC] = (double)sc_total(&wall) / n;
	po[TP_SRVSC] = (double)sc_total(&sall) / n;
	po[TP_SETAFF] = (double)(wall.v[SC_SETAFF] + sall.v[SC_SETAFF]) / n;
	pthread_mutex_destroy(&T.rq_lock);
	free(T.srv);
	free(T.wrk);
}

static double median_dbl(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void tp_report(const struct workload *wl, int d, int nsrv, struct tp_result *runs, int reps)
{
	double ops[64], mean[TP_NR] = {0};
	for (int i = 0; i < reps; i++) {
		ops[i] = runs[i].ops_s;
		for (int k = 0; k < TP_NR; k++)
			mean[k] += runs[i].per_op[k] / reps;
	}
	double med = median_dbl(ops, reps), lo = ops[0], hi = ops[reps - 1];
	printf("%-8s %4d %9.0f %9.0f %9.0f %5.1f%% %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f "
	       "%6.2f %6.2f %6.3f\n",
	       dname(d), nsrv, med, lo, hi, med > 0 ? 100.0 * (hi - lo) / med : 0, mean[0], mean[1],
	       mean[2], mean[3], mean[4], mean[5], mean[6], mean[7], mean[8], mean[9]);
	tsv_row(
	    "tput\t%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%."
	    "4f\t%.4f\t%.4f",
	    wl->name, dname(d), nsrv, reps, med, lo, hi, mean[0], mean[1], mean[2], mean[3],
	    mean[4], mean[5], mean[6], mean[7], mean[8], mean[9]);
}

static void part_tput(void)
{
	char la[64];
	int reps = opt.reps;
	struct tp_result *runs = xcalloc((size_t)reps, sizeof *runs);
	tsv_row(
	    "#tput\tworkload\tdesign\tservers\truns\tops_s_median\tops_s_min\tops_s_max\tidle_"
	    "waits_per_op\tidle_sleeps_per_op\tidle_empty_per_op\twp_wakes_per_op\tkicks_per_"
	    "op\tkick_sc_per_op\tchain_wakes_per_op\tworker_sc_per_op\tserver_sc_per_op\tsetaff_"
	    "per_op");
	for (int wi = 0; wi < opt.nwl; wi++) {
		const struct workload *wl = &opt.wl[wi];
		loadavg(la, sizeof la);
		printf("\n== 4. throughput, workload %s: %d workers x %ld ops (compute %ld us + "
		       "sleep %ld us through\n"
		       "   the block/wake points), FIFO scheduler, servers %s; median of %d runs "
		       "(spread = (max-min)/median). load %s\n",
		       wl->name, wl->workers, wl->ops, wl->compute_us, wl->sleep_us,
		       opt.pin_servers ? "pinned round-robin to CPUs" : "unpinned", reps, la);
		printf("%-8s %4s %9s %9s %9s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n",
		       "design", "srv", "ops/s", "min", "max", "spread", "iwait", "isleep",
		       "iempty", "wpwake", "kick", "kicksc", "chain", "wrk_sc", "srv_sc", "setaff");
		for (int i = 0; i < reps; i++)
			tp_run(wl, D_THREAD, 0, &runs[i]);
		tp_report(wl, D_THREAD, 0, runs, reps);
		for (int si = 0; si < opt.nsrv_counts; si++) {
			int nsrv = opt.srv_counts[si];
			/* interleave the designs within each repetition: drift hits all alike */
			struct tp_result *all = xcalloc((size_t)(reps * NDESIGN), sizeof *all);
			for (int i = 0; i < reps; i++)
				for (int d = 0; d < NDESIGN; d++)
					if (design_on(d))
						tp_run(wl, d, nsrv, &all[d * reps + i]);
			for (int d = 0; d < NDESIGN; d++)
				if (design_on(d))
					tp_report(wl, d, nsrv, &all[d * reps], reps);
			free(all);
		}
	}
	printf("   per operation: iwait = idle waits (umcg_idle_group_wait calls), isleep = "
	       "blocking calls in them\n"
	       "   (futex_wait, poll), iempty = idle waits that returned to an empty list, wpwake "
	       "= idle-server wake-ups\n"
	       "   issued by workers' wake points (futex_wake + eventfd write), kick = "
	       "umcg_idle_group_wake_one() that\n"
	       "   woke a server, kicksc = its system calls, chain = wake-ups issued inside idle "
	       "waits (tid chaining),\n"
	       "   wrk_sc/srv_sc = all counted system calls of workers/servers (block point, "
	       "park, switches), setaff =\n"
	       "   sched_setaffinity (placement hint). threads = the same workers as plain "
	       "threads, kernel-scheduled.\n");
	free(runs);
}

static void add_workload(const char *spec, const char *argv0)
{
	struct workload *w = &opt.wl[opt.nwl];
	char rest;
	if (opt.nwl == 8 ||
	    sscanf(spec, "%d:%ld:%ld:%ld%c", &w->workers, &w->compute_us, &w->sleep_us, &w->ops,
		   &rest) != 4 ||
	    w->workers < 1 || w->workers > 4096 || w->compute_us < 0 || w->sleep_us < 1 ||
	    w->ops < 1)
		usage(argv0, 2);
	snprintf(w->name, sizeof w->name, "W%dc%ldu%ld", w->workers, w->compute_us, w->sleep_us);
	opt.nwl++;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(const char *argv0, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-P parts] [-d designs] [-o out.tsv] [-n N] [-w N] [-p pins] [-R N]\n"
		"          [-T secs] [-I N] [-L W:c:u:k,...] [-S list] [-r N] [-A] [-x]\n"
		"  -P  parts: lat,sys,cpu,tput or 1,2,3,4 or all (default all)\n"
		"  -d  designs: stack,eventfd,tid (default all; the futex baseline always runs)\n"
		"  -o  write the TSV for scripts/plot-designs.sh to this file\n"
		"  part 1 (lat): -n samples per case and run (default 2000), -w warm-up (default "
		"200),\n"
		"                -p pin modes same,diff,none (default all),\n"
		"                -x no stk-nogp diagnostic row\n"
		"  part 2 (sys): -R rounds per scenario (default 400)\n"
		"  part 3 (cpu): -T idle seconds (default 10), -I idle servers per design "
		"(default 2*CPUs)\n"
		"  part 4 (tput): -L workloads, each workers:compute_us:sleep_us:ops_per_worker\n"
		"                (default " DEFAULT_WORKLOADS "," DEFAULT_WORKLOADS2 ")\n"
		"                -S server counts, e.g. 1,2,4 (default 1..2*CPUs), -r runs "
		"(default 3;\n"
		"                also part 1's repetitions),\n"
		"                -A pin servers round-robin to CPUs (default unpinned)\n",
		argv0);
	exit(status);
}

static long num(const char *s, long min, long max, const char *argv0)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage(argv0, 2);
	return v;
}

static void parse(int argc, char **argv)
{
	opt.parts = PART_LAT | PART_SYS | PART_CPU | PART_TPUT;
	opt.designs = 7;
	opt.pins = (1u << BENCH_PIN_NR) - 1;
	opt.lat_n = 2000;
	opt.lat_warm = 200;
	opt.rounds = 400;
	opt.idle_secs = 10;
	opt.idle_servers = 2 * ncpus;
	opt.reps = 3;
	for (int i = 0; i < 2 * ncpus && i < 16; i++)
		opt.srv_counts[opt.nsrv_counts++] = i + 1;
	add_workload(DEFAULT_WORKLOADS, argv[0]);
	add_workload(DEFAULT_WORKLOADS2, argv[0]);
	bool wl_given = false;
	int c;
	char buf[256];
	while ((c = getopt(argc, argv, "P:d:o:n:w:p:R:T:I:L:S:r:Axh")) != -1) {
		char *save = NULL, *t;
		switch (c) {
		case 'P':
			opt.parts = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!strcmp(t, "lat") || !strcmp(t, "1"))
					opt.parts |= PART_LAT;
				else if (!strcmp(t, "sys") || !strcmp(t, "2"))
					opt.parts |= PART_SYS;
				else if (!strcmp(t, "cpu") || !strcmp(t, "3"))
					opt.parts |= PART_CPU;
				else if (!strcmp(t, "tput") || !strcmp(t, "4"))
					opt.parts |= PART_TPUT;
				else if (!strcmp(t, "all"))
					opt.parts |= 15;
				else
					usage(argv[0], 2);
			}
			break;
		case 'd':
			opt.designs = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				enum umcg_idle_design d;
				if (umcg_idle_design_parse(t, &d))
					usage(argv[0], 2);
				opt.designs |= 1u << d;
			}
			break;
		case 'p':
			opt.pins = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (!strcmp(t, "same"))
					opt.pins |= 1u << BENCH_PIN_SAME;
				else if (!strcmp(t, "diff"))
					opt.pins |= 1u << BENCH_PIN_DIFF;
				else if (!strcmp(t, "none"))
					opt.pins |= 1u << BENCH_PIN_NONE;
				else
					usage(argv[0], 2);
			}
			break;
		case 'S':
			opt.nsrv_counts = 0;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (opt.nsrv_counts == 16)
					usage(argv[0], 2);
				opt.srv_counts[opt.nsrv_counts++] = (int)num(t, 1, 256, argv[0]);
			}
			break;
		case 'o':
			opt.out = optarg;
			break;
		case 'n':
			opt.lat_n = num(optarg, 1, 10000000, argv[0]);
			break;
		case 'w':
			opt.lat_warm = num(optarg, 0, 10000000, argv[0]);
			break;
		case 'R':
			opt.rounds = num(optarg, 1, 10000000, argv[0]);
			break;
		case 'T':
			opt.idle_secs = num(optarg, 1, 3600, argv[0]);
			break;
		case 'I':
			opt.idle_servers = (int)num(optarg, 1, 256, argv[0]);
			break;
		case 'L':
			if (!wl_given)
				opt.nwl = 0;
			wl_given = true;
			snprintf(buf, sizeof buf, "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
				add_workload(t, argv[0]);
			break;
		case 'r':
			opt.reps = (int)num(optarg, 1, 64, argv[0]);
			break;
		case 'A':
			opt.pin_servers = true;
			break;
		case 'x':
			opt.no_diag = true;
			break;
		case 'h':
			usage(argv[0], 0);
			break;
		default:
			usage(argv[0], 2);
		}
	}
	if (optind != argc || !opt.designs)
		usage(argv[0], 2);
}

int main(int argc, char **argv)
{
	bench_init();
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set))
		bench_die("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			cpu_list[ncpus++] = c;
	parse(argc, argv);
	if (opt.out) {
		tsv = fopen(opt.out, "we");
		if (!tsv)
			bench_die("%s: %s", opt.out, strerror(errno));
	}
	struct utsname u;
	char date[64] = "?", la[64];
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm))
		strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
	if (uname(&u))
		memset(&u, 0, sizeof u);
	loadavg(la, sizeof la);
	printf("# bench_designs  %s  kernel %s %s  %d CPUs allowed  load %s\n", date, u.release,
	       u.machine, ncpus, la);
	printf("# designs:%s%s%s (+ futex baseline); times in microseconds, CLOCK_MONOTONIC\n",
	       design_on(0) ? " stack" : "", design_on(1) ? " eventfd" : "",
	       design_on(2) ? " tid" : "");
	tsv_row("#meta\tkey\tvalue");
	tsv_row("meta\tdate\t%s", date);
	tsv_row("meta\tkernel\t%s", u.release);
	tsv_row("meta\tcpus\t%d", ncpus);
	tsv_row("meta\tload_start\t%s", la);
	uint64_t t0 = bench_now();
	if (opt.parts & PART_LAT)
		part_lat();
	if (opt.parts & PART_SYS)
		part_sys();
	if (opt.parts & PART_CPU)
		part_cpu();
	if (opt.parts & PART_TPUT)
		part_tput();
	loadavg(la, sizeof la);
	double secs = (double)(bench_now() - t0) / 1e9;
	tsv_row("meta\tload_end\t%s", la);
	tsv_row("meta\tseconds\t%.1f", secs);
	printf("\n# done in %.1f s, load %s; %s\n", secs, la,
	       failures ? "CHECKS FAILED" : "all checks passed");
	if (tsv && fclose(tsv))
		bench_die("%s: %s", opt.out, strerror(errno));
	return failures ? 1 : 0;
}
