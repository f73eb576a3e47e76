/* SPDX-License-Identifier: MIT */
/*
 * bench/designs/designs.h - what the parts of bench_designs share: the
 * options, the checks, the exact system-call counts and small helpers
 * (common.c). main.c describes the benchmark; lat.c, sys.c, cpu.c and
 * tput.c are its four parts. Internal to the benchmark executable.
 */
#ifndef BENCH_DESIGNS_H
#define BENCH_DESIGNS_H

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

struct designs_opt {
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
};

extern struct designs_opt opt;
extern int ncpus;		  /* CPUs we may run on ... */
extern int cpu_list[CPU_SETSIZE]; /* ... and their ids */
extern FILE *tsv;		  /* -o: the TSV, or NULL */
extern int failures;		  /* checks failed so far (the exit status) */

/* the parts, in the order main() runs them */
void part_lat(void);
void part_sys(void);
void part_cpu(void);
void part_tput(void);

/* checks and output */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *dname(int d);
void tsv_row(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void loadavg(char *buf, size_t len);

static inline bool design_on(int d)
{
	return opt.designs & (1u << d);
}

static inline double us(double ns)
{
	return ns / 1000.0;
}

/*
 * Counting system calls: libumcg's own per-thread counts (umcg__stats)
 * plus the libc calls it makes on the idle paths (poll, read,
 * sched_yield: common.c defines counting stand-ins) and part 2's
 * epoll_wait() calls.
 */
enum { SC_FWAIT, SC_FWAKE, SC_EFDW, SC_SETAFF, SC_POLL, SC_READ, SC_YIELD, SC_EPOLL, SC_NR };

struct sc {
	uint64_t v[SC_NR];
};

extern __thread uint64_t tl_poll, tl_read, tl_yield, tl_epoll;

void sc_now(struct sc *s);
void sc_acc(struct sc *acc, const struct sc *a, const struct sc *b); /* acc += b - a */
uint64_t sc_total(const struct sc *s);
const char *sc_str(const struct sc *s, double n, char *buf, size_t len);
long nvcsw_self(void);

/* A dummy worker: what the wake point appends, without a thread behind it. */
struct token {
	struct umcg_task t; /* first: a list node converts back with a cast */
	_Atomic int queued;
};

/* part 1's loop, which part 2b reuses: n samples (after warm) of one design */
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

void lat_run(int design, enum bench_pin pin, long n, long warm, struct lat_result *r);

/* small helpers */
void nap_us(long u);
int proc_stat_open(uint32_t tid);
char proc_state(int fd);       /* the scheduler state letter of a thread (R, S, D, ...) */
long proc_nvcsw(uint32_t tid); /* voluntary_ctxt_switches, from /proc */
void server_register(struct umcg_task *t, _Atomic uint32_t *tid_out);
void unregister(void);
pthread_t start_thread(void *(*fn)(void *), void *arg);
void join_thread(pthread_t t);
void *xcalloc(size_t n, size_t size);
int cmp_dbl(const void *a, const void *b);
double median_dbl(double *v, int n); /* sorts v */

#endif
