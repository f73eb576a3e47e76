/* SPDX-License-Identifier: MIT */
/*
 * bench_designs: options, checks, system-call counting and small helpers shared by the parts.
 * (bench/designs/main.c explains the parts and the output.)
 */
#include "designs.h"

int ncpus;		   /* CPUs we may run on ... */
int cpu_list[CPU_SETSIZE]; /* ... and their ids */
FILE *tsv;
int failures;
struct designs_opt opt;

void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_designs: CHECK FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

const char *dname(int d)
{
	if (d == D_FUTEX)
		return "futex";
	if (d == D_THREAD)
		return "threads";
	if (d == D_NOGP)
		return "stk-nogp";
	return umcg_idle_design_name((enum umcg_idle_design)d);
}

void tsv_row(const char *fmt, ...)
{
	if (!tsv)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(tsv, fmt, ap);
	va_end(ap);
	fputc('\n', tsv);
}

void loadavg(char *buf, size_t len)
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
static const char *const sc_names[SC_NR] = {"futex_wait", "futex_wake", "efd_write", "setaff",
					    "poll",	  "read",	"yield",     "epoll_wait"};

__thread uint64_t tl_poll, tl_read, tl_yield;
__thread uint64_t tl_epoll; /* epoll_wait() calls made by part 2 (epx) */

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

void sc_now(struct sc *s)
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
void sc_acc(struct sc *acc, const struct sc *a, const struct sc *b)
{
	for (int i = 0; i < SC_NR; i++)
		acc->v[i] += b->v[i] - a->v[i];
}

uint64_t sc_total(const struct sc *s)
{
	uint64_t t = 0;
	for (int i = 0; i < SC_NR; i++)
		t += s->v[i];
	return t;
}

/* "futex_wake=1.00 poll=1.00": the non-zero counts of s, divided by n */
const char *sc_str(const struct sc *s, double n, char *buf, size_t len)
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

long nvcsw_self(void)
{
	struct rusage r;
	if (getrusage(RUSAGE_THREAD, &r))
		return 0;
	return r.ru_nvcsw;
}

/* ---- small helpers ------------------------------------------------------------- */

void nap_us(long u)
{
	struct timespec ts = {u / 1000000, (u % 1000000) * 1000};
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

int proc_stat_open(uint32_t tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%u/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die("open %s: %s", path, strerror(errno));
	return fd;
}

/* The scheduler state letter of a thread (R, S, D, ...). */
char proc_state(int fd)
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
long proc_nvcsw(uint32_t tid)
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

void server_register(struct umcg_task *t, _Atomic uint32_t *tid_out)
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

void unregister(void)
{
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL))
		bench_die("umcg_ctl(UNREGISTER): %s", strerror(errno));
}

pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, fn, arg);
	if (r)
		bench_die("pthread_create: %s", strerror(r));
	return t;
}

void join_thread(pthread_t t)
{
	int r = pthread_join(t, NULL);
	if (r)
		bench_die("pthread_join: %s", strerror(r));
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		bench_die("out of memory");
	return p;
}

int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median_dbl(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
