/* SPDX-License-Identifier: MIT */
/*
 * test_detect.c - transparent block detection (docs/detection.md).
 *
 * Each test gives a server fewer CPUs than it has blocked workers: a
 * worker blocks in code no wrapper sees (a raw system call, a contended
 * pthread mutex, a condition variable, a semaphore, stdio on a FIFO, the
 * resolver inside getaddrinfo()) on
 * something only a second worker can release. If the block goes unseen,
 * the server never gets its CPU back, the second worker never runs and
 * the test times out: it fails, it does not hang the suite.
 */
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "detect_util.h"
#include "sched_util.h"
#include "umcg.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"
#include "detect/detect.h"
#include "kern/kern.h"
#include "util/util.h"
#include <linux/perf_event.h>

/* ---- a worker that blocks on what a second worker releases ------------------- */

TEST_T(raw_read_on_empty_pipe, T_DETECT)
{
	struct du_pair p = {.block = du_block_raw_read, .release = du_release_raw_write};
	CHECK(pipe(p.fd) == 0);
	du_run_pair_parked(&p);
}

static void block_mutex(struct du_pair *p)
{
	/* B cannot unlock a mutex it does not own: a helper thread holds it */
	CHECK(pthread_mutex_lock(&p->mu) == 0);
	pthread_mutex_unlock(&p->mu);
}

static void release_mutex(struct du_pair *p)
{
	char c = 'x';
	CHECK_EQ(write(p->fd[1], &c, 1), 1); /* the owner unlocks when B ran */
}

/* The mutex's owner: locks it, says so, unlocks it once B has run. */
static void *mutex_owner(void *arg)
{
	struct du_pair *p = arg;
	char c;
	pthread_mutex_lock(&p->mu);
	sem_post(&p->sem);
	if (read(p->fd[0], &c, 1) == 1)
		pthread_mutex_unlock(&p->mu);
	return NULL;
}

TEST_T(contended_pthread_mutex, T_DETECT)
{
	struct du_pair p = {.block = block_mutex, .release = release_mutex};
	CHECK(pipe(p.fd) == 0);
	CHECK(sem_init(&p.sem, 0, 0) == 0);
	pthread_mutex_init(&p.mu, NULL);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, mutex_owner, &p) == 0);
	CHECK(sem_wait(&p.sem) == 0); /* A will find the mutex taken */
	du_run_pair_parked(&p);
	pthread_join(th, NULL);
}

static void block_cond(struct du_pair *p)
{
	pthread_mutex_lock(&p->mu);
	while (!atomic_load(&p->released))
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

static void release_cond(struct du_pair *p)
{
	pthread_mutex_lock(&p->mu);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

TEST_T(pthread_cond_wait_unwrapped, T_DETECT)
{
	struct du_pair p = {.block = block_cond, .release = release_cond};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	du_run_pair_parked(&p);
}

static void block_sem(struct du_pair *p)
{
	CHECK(sem_wait(&p->sem) == 0);
}

static void release_sem(struct du_pair *p)
{
	CHECK(sem_post(&p->sem) == 0);
}

TEST_T(sem_wait_unwrapped, T_DETECT)
{
	struct du_pair p = {.block = block_sem, .release = release_sem};
	CHECK(sem_init(&p.sem, 0, 0) == 0);
	du_run_pair_parked(&p);
}

static void block_nanosleep(struct du_pair *p)
{
	struct timespec ts = {0, 200 * 1000 * 1000};
	/* raw: no libc wrapper; B must run (and set released) while we sleep */
	CHECK_EQ(syscall(SYS_nanosleep, &ts, NULL), 0);
}

static void release_nothing(struct du_pair *p)
{
	(void)p;
}

TEST_T(raw_nanosleep, T_DETECT)
{
	struct du_pair p = {.block = block_nanosleep, .release = release_nothing};
	du_run_pair_parked(&p);
}

static void block_fifo(struct du_pair *p)
{
	FILE *f = fopen(p->path, "r"); /* blocks in open() until B opens the write end */
	CHECK(f != NULL);
	char buf[8];
	CHECK_EQ(fread(buf, 1, 3, f), 3); /* and in read() until B wrote */
	CHECK(memcmp(buf, "abc", 3) == 0);
	fclose(f);
}

static void release_fifo(struct du_pair *p)
{
	int fd = open(p->path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "abc", 3), 3);
	close(fd);
}

TEST_T(fread_on_fifo, T_DETECT)
{
	struct du_pair p = {.block = block_fifo, .release = release_fifo};
	snprintf(p.path, sizeof p.path, "/tmp/umcg-test-fifo-%d", (int)getpid());
	unlink(p.path);
	CHECK(mkfifo(p.path, 0600) == 0);
	du_run_pair_parked(&p);
	unlink(p.path);
}

/*
 * getaddrinfo(): the resolver's sleep (poll() for the DNS reply, inside
 * libc) must be seen. A resolves until B has run, at most 400 times: B can
 * only run while A sleeps in the resolver and has been taken.
 */
static int gai_once(int i)
{
	char name[96];
	snprintf(name, sizeof name, "umcg-detect-test-%d-%d.invalid", (int)getpid(), i);
	struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
	int e = getaddrinfo(name, NULL, &hints, &res);
	if (!e)
		freeaddrinfo(res);
	return e;
}

static void block_gai(struct du_pair *p)
{
	for (int i = 0; i < 400 && !atomic_load(&p->released); i++)
		gai_once(i);
}

/* Does a lookup sleep here at all (a name server that answers, or one that does not)? */
static void *gai_probe(void *arg)
{
	struct rusage r0, r1; /* voluntary switches: did the lookup sleep at all? */
	getrusage(RUSAGE_THREAD, &r0);
	gai_once(-1);
	getrusage(RUSAGE_THREAD, &r1);
	*(uint64_t *)arg = (uint64_t)(r1.ru_nvcsw - r0.ru_nvcsw);
	return NULL;
}

TEST_T(getaddrinfo_unwrapped, T_DETECT)
{
	setenv("RES_OPTIONS", "timeout:1 attempts:1", 1); /* a silent name server: 1 s */
	uint64_t ns = 0;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, gai_probe, &ns) == 0);
	pthread_join(th, NULL);
	if (ns == 0) {
		/* no name server reachable (the lookup failed at once): nothing sleeps */
		printf("    skipped: a lookup does not sleep here (no name server reachable)\n");
		return;
	}
	struct du_pair p = {.block = block_gai, .release = release_nothing};
	du_run_pair_parked(&p);
}

/* ---- a loop of raw sleeps: every take-over parks the worker exactly once --------- */

static _Atomic long unsupervised; /* iterations that found us BLOCKED in user code */
static _Atomic long eintrs;	  /* nanosleeps interrupted by a late detection signal */
static _Atomic uint64_t window_max_ns, window_max_cpu_ns; /* the longest of those */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void note_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t m = atomic_load(max);
	while (v > m && !atomic_compare_exchange_weak(max, &m, v))
		;
}

/* a stretch of wall time ns, CPU time cpu_ns, run BLOCKED before the park */
static void note_window(uint64_t ns, uint64_t cpu_ns)
{
	note_max(&window_max_ns, ns);
	note_max(&window_max_cpu_ns, cpu_ns);
}

static void sleep_loop(struct su_worker *w)
{
	for (long i = 0; i < w->count; i++) {
		struct timespec ts = {0, 300 * 1000};
		if (syscall(SYS_nanosleep, &ts, NULL)) {
			CHECK_EQ(errno,
				 EINTR); /* a late signal: counted in umcg__det_counts.eintr */
			atomic_fetch_add(&eintrs, 1);
		}
		/*
		 * The switch-in alarm's signal parks us before user code runs,
		 * unless the kernel delivers its irq_work late (seen here: up to
		 * a tick): then we run BLOCKED for a while and park a bit later.
		 */
		uint32_t st = umcg_state_load(&w->task);
		if (st == UMCG_TASK_BLOCKED) {
			atomic_fetch_add(&unsupervised, 1);
			uint64_t t0 = umcg_now_ns(), c0 = thread_cpu_ns();
			while (umcg_state_load(&w->task) == UMCG_TASK_BLOCKED)
				if (umcg_now_ns() - t0 > 2000000000ull)
					th_fail(__FILE__, __LINE__,
						"iteration %ld: BLOCKED for 2 s", i);
			note_window(umcg_now_ns() - t0, thread_cpu_ns() - c0);
		}
		if (!du_check_running(w))
			th_fail(__FILE__, __LINE__, "iteration %ld: state %#x after a raw sleep", i,
				umcg_state_load(&w->task));
	}
}

TEST_T(raw_sleeps_always_park, 60)
{
	SKIP_ON_KERNEL("counts take-overs of the user-space detection");
	if (!du_detection_available())
		return;
	struct su_group g;
	long count = th_scaled(2000, 100);
	uint64_t taken0 = atomic_load(&umcg__det_counts.taken_raw);
	uint64_t parks0 = atomic_load(&umcg__det_counts.parks);
	du_run_one(&g, sleep_loop, NULL, count);
	uint64_t taken = atomic_load(&umcg__det_counts.taken_raw) - taken0;
	uint64_t parks = atomic_load(&umcg__det_counts.parks) - parks0;
	CHECK_EQ(parks, taken); /* every take-over parked once, none twice */
	CHECK(taken > 0);	/* seen at all (how many depends on the load: a sleep that ends
				   before the watcher looks is not reported) */
	/*
	 * The late-signal window is the exception (docs/detection.md), where
	 * the kernel signals the switch-in; where the relay thread does
	 * (kernels before 6.9, UMCG_DETECT_ALARM=relay), it is the rule.
	 */
	if (!umcg__det_relay_needed())
		CHECK(atomic_load(&unsupervised) * 10 < count);
	CHECK(atomic_load(&eintrs) * 100 <= count);
	CHECK(atomic_load(&eintrs) <= (long)atomic_load(&umcg__det_counts.eintr));
	printf("    signals %llu (relayed %llu), parks %llu, woke_early %llu\n",
	       (unsigned long long)umcg__det_counts.signals,
	       (unsigned long long)umcg__det_counts.relayed,
	       (unsigned long long)umcg__det_counts.parks,
	       (unsigned long long)umcg__det_counts.woke_early);
	printf("    %ld sleeps, %llu taken, %ld seen BLOCKED before the park (longest "
	       "until run again %llu us, %llu us of CPU), %ld EINTR\n",
	       count, (unsigned long long)taken, atomic_load(&unsupervised),
	       (unsigned long long)atomic_load(&window_max_ns) / 1000,
	       (unsigned long long)atomic_load(&window_max_cpu_ns) / 1000, atomic_load(&eintrs));
}

/*
 * A worker that says it blocks (umcg_block_point) is BLOCKED and its
 * server runs; its sleep up to umcg_wake_point() is not the watcher's: no
 * take-over is tried (before, each such sleep was looked at, the alarm
 * armed and the take given up only on finding the worker BLOCKED, and a
 * worker that woke meanwhile waited for its SCHED_IDLE watcher).
 */
static void explicit_sleep_loop(struct su_worker *w)
{
	for (long i = 0; i < w->count; i++) {
		CHECK_EQ(umcg_block_point(), 1);
		struct timespec ts = {0, 300000};
		/* raw: only detection could see it */
		CHECK_EQ(syscall(SYS_nanosleep, &ts, NULL), 0);
		umcg_wake_point();
		if (!du_check_running(w))
			th_fail(__FILE__, __LINE__, "iteration %ld: state %#x after the wake point",
				i, umcg_state_load(&w->task));
	}
}

TEST_T(explicit_block_point_keeps_detection_away, T_DETECT)
{
	SKIP_ON_KERNEL("counts take-overs of the user-space detection");
	if (!du_detection_available())
		return;
	struct su_group g;
	long count = th_scaled(500, 50);
	uint64_t taken0 =
	    atomic_load(&umcg__det_counts.taken_raw) + atomic_load(&umcg__det_counts.taken_sys);
	uint64_t tried0 =
	    atomic_load(&umcg__det_counts.not_running) + atomic_load(&umcg__det_counts.woke_early);
	du_run_one(&g, explicit_sleep_loop, NULL, count);
	CHECK_EQ(atomic_load(&umcg__det_counts.taken_raw) +
		     atomic_load(&umcg__det_counts.taken_sys),
		 taken0);
	CHECK_EQ(atomic_load(&umcg__det_counts.not_running) +
		     atomic_load(&umcg__det_counts.woke_early),
		 tried0);
	CHECK_EQ(atomic_load(&g.finished), 1);
}

/* ---- lazy wrappers ----------------------------------------------------------------- */

static void read_with_data(struct su_worker *w)
{
	int *fd = w->arg;
	for (long i = 0; i < w->count; i++) {
		char c;
		CHECK_EQ(umcg_read(fd[0], &c, 1), 1);
		CHECK(du_check_running(w));
	}
}

TEST_T(wrapped_call_that_does_not_sleep_costs_no_switch, T_DETECT)
{
	if (!du_detection_available())
		return;
	int fd[2];
	CHECK(pipe(fd) == 0);
	char buf[10000];
	memset(buf, 'x', sizeof buf);
	CHECK_EQ(write(fd[1], buf, sizeof buf), (long)sizeof buf);
	uint64_t sys0 = atomic_load(&umcg__det_counts.taken_sys);
	struct su_group g;
	du_run_one(&g, read_with_data, fd, 10000);
	/* one run from registration to exit: no call reported a block */
	CHECK_EQ(atomic_load(&g.runs), 1);
	CHECK_EQ(atomic_load(&umcg__det_counts.taken_sys), sys0);
}

static void block_wrapped_read(struct du_pair *p)
{
	char c;
	uint64_t sys0 = atomic_load(&umcg__det_counts.taken_sys);
	CHECK_EQ(umcg_read(p->fd[0], &c, 1), 1);
	/* the wrapper parked us on return: the server had taken us */
	CHECK(atomic_load(&umcg__det_counts.taken_sys) > sys0);
}

static void release_wrapped_write(struct du_pair *p)
{
	char c = 'x';
	CHECK_EQ(umcg_write(p->fd[1], &c, 1), 1);
}

TEST_T(wrapped_call_that_sleeps_is_reported, T_DETECT)
{
	SKIP_ON_KERNEL("counts the lazy wrapper's take-overs");
	struct du_pair p = {.block = block_wrapped_read, .release = release_wrapped_write};
	CHECK(pipe(p.fd) == 0);
	du_run_pair_parked(&p);
}

/* ---- LOCKED workers are ignored ------------------------------------------------------ */

static _Atomic int b_ran;

static void locked_sleeper(struct su_worker *w)
{
	uint32_t st = umcg_state_load(&w->task);
	umcg_state_store(&w->task, st | UMCG_TF_LOCKED);
	struct timespec ts = {0, 100 * 1000 * 1000};
	CHECK_EQ(syscall(SYS_nanosleep, &ts, NULL), 0);
	/* the block was not reported: our server did not run B meanwhile */
	CHECK_EQ(atomic_load(&b_ran), 0);
	CHECK_EQ(umcg_state_load(&w->task), UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	umcg_state_store(&w->task, UMCG_TASK_RUNNING);
}

static void mark_ran(struct su_worker *w)
{
	(void)w;
	atomic_store(&b_ran, 1);
}

TEST_T(locked_worker_is_not_taken, T_DETECT)
{
	if (!du_detection_available())
		return;
	struct su_group g;
	du_run_two(&g, locked_sleeper, mark_ran, NULL);
	CHECK_EQ(atomic_load(&b_ran), 1);
}

/* ---- the switches: umcg_detect_thread(), UMCG_TUNE_DETECT ---------------------------- */

static void toggle(struct su_worker *w)
{
	CHECK_EQ(umcg_detect_thread(-1), 1);
	CHECK_ERR(umcg_detect_thread(2), EINVAL);
	CHECK_ERR(umcg_detect_thread(-2), EINVAL);
	CHECK_EQ(umcg_detect_thread(0), 0);
	CHECK_EQ(umcg_detect_thread(-1), 0);
	CHECK_EQ(umcg_detect_thread(0), 0);
	/* off: a wrapper is an explicit block point again (one block, one park) */
	long runs = atomic_load(&w->g->runs);
	char c = 0;
	int *fd = w->arg;
	CHECK_EQ(umcg_write(fd[1], &c, 1), 1);
	CHECK_EQ(atomic_load(&w->g->runs), runs + 1);
	CHECK(du_check_running(w));
	CHECK_EQ(umcg_detect_thread(1), 1);
	CHECK_EQ(umcg_detect_thread(-1), 1);
	runs = atomic_load(&w->g->runs);
	CHECK_EQ(umcg_write(fd[1], &c, 1), 1); /* lazy again: no switch */
	CHECK_EQ(atomic_load(&w->g->runs), runs);
	CHECK(du_check_running(w));
}

TEST_T(detect_thread_on_off, T_DETECT)
{
	SKIP_ON_KERNEL("the kernel's detection cannot be turned off");
	CHECK_ERR(umcg_detect_thread(-1), EINVAL); /* not registered */
	if (!du_detection_available())
		return;
	int fd[2];
	CHECK(pipe(fd) == 0);
	struct su_group g;
	du_run_one(&g, toggle, fd, 0);
}

static void expect_off(struct su_worker *w)
{
	CHECK_EQ(umcg_detect_thread(-1), 0);
	CHECK(du_check_running(w));
}

TEST_T(tune_detect_off_falls_back_to_explicit_points, T_DETECT)
{
	SKIP_ON_KERNEL("explicit block points are no-ops on the kernel");
	CHECK_ERR(umcg_tune(UMCG_TUNE_DETECT, 2), EINVAL);
	CHECK(umcg_tune(UMCG_TUNE_DETECT, 0) == 0);
	struct su_group g;
	du_run_one(&g, expect_off, NULL, 0);
	CHECK(umcg_tune(UMCG_TUNE_DETECT, 1) == 0);
}

/* ---- stress: several servers, mixed raw and wrapped blocking, exact counts ------------- */

enum { ST_SERVERS = 4, ST_MAX_WORKERS = 1000 };

static pthread_mutex_t st_mu = PTHREAD_MUTEX_INITIALIZER; /* contended by workers */
static pthread_mutex_t st_q_mu = PTHREAD_MUTEX_INITIALIZER;
static struct su_worker *st_q[ST_MAX_WORKERS];
static int st_qn, st_qi;
static _Atomic long st_ops, st_eintr;
static long st_shared; /* under st_mu */

static void mixed_ops(struct su_worker *w)
{
	int fd[2];
	CHECK(pipe(fd) == 0);
	for (long i = 0; i < w->count; i++) {
		char c = 'x';
		struct timespec ts = {0, 50 * 1000};
		switch ((i + w->id) % 5) {
		case 0: /* raw sleep */
			if (syscall(SYS_nanosleep, &ts, NULL)) {
				CHECK_EQ(errno, EINTR);
				atomic_fetch_add(&st_eintr, 1);
			}
			break;
		case 1: /* wrapped sleep */
			CHECK_EQ(umcg_nanosleep(&ts, NULL), 0);
			break;
		case 2: /* raw pipe round trip (does not sleep) */
			CHECK_EQ(syscall(SYS_write, fd[1], &c, 1), 1);
			CHECK_EQ(syscall(SYS_read, fd[0], &c, 1), 1);
			break;
		case 3: /* wrapped pipe round trip */
			CHECK_EQ(umcg_write(fd[1], &c, 1), 1);
			CHECK_EQ(umcg_read(fd[0], &c, 1), 1);
			break;
		case 4: /* contended mutex, held across a raw sleep */
			pthread_mutex_lock(&st_mu);
			st_shared++;
			if (i % 20 == 4)
				syscall(SYS_nanosleep, &ts, NULL);
			pthread_mutex_unlock(&st_mu);
			break;
		}
		if (!du_check_running(w))
			th_fail(__FILE__, __LINE__, "worker %ld op %ld: state %#x", w->id, i,
				umcg_state_load(&w->task));
		atomic_fetch_add(&st_ops, 1);
	}
	close(fd[0]);
	close(fd[1]);
}

struct st_server_arg {
	struct su_group *g;
	long n;
};

static struct su_worker *st_next(struct su_group *g)
{
	pthread_mutex_lock(&st_q_mu);
	if (st_qi == st_qn) {
		st_qi = 0;
		st_qn = su_pop_all_fifo(g, st_q, ST_MAX_WORKERS);
	}
	struct su_worker *w = st_qi < st_qn ? st_q[st_qi++] : NULL;
	pthread_mutex_unlock(&st_q_mu);
	return w;
}

static void *st_server(void *arg)
{
	struct st_server_arg *a = arg;
	struct su_server *s = aligned_alloc(64, sizeof *s);
	memset(s, 0, sizeof *s);
	su_server_register(s, a->g);
	while (atomic_load(&a->g->finished) < a->n) {
		struct su_worker *w = st_next(a->g);
		if (w)
			su_run(s, w);
		else
			usleep(50);
	}
	su_server_unregister(s);
	free(s);
	return NULL;
}

TEST_T(stress_mixed_raw_and_wrapped, 240)
{
	struct su_group g;
	memset(&g, 0, sizeof g);
	/*
	 * The size (4 servers x 1000 workers x 1000 operations) with
	 * UMCG_TEST_STRESS_FULL=1 (run-tests.sh does, as root); a smaller one
	 * otherwise.
	 */
	const char *fe = getenv("UMCG_TEST_STRESS_FULL");
	bool full = fe != NULL;
	/*
	 * =N: N workers (unprivileged, locked memory allows ~500 workers that
	 * all block raw at once: 16 KiB of perf rings each; docs/detection.md)
	 */
	long nw = full ? (atol(fe) > 1 && atol(fe) <= ST_MAX_WORKERS ? atol(fe) : ST_MAX_WORKERS)
		       : th_scaled(128, 16);
	long ops = full ? th_scaled(1000, 20) : th_scaled(200, 20);
	if (full) { /* 2 perf events + a pipe per worker; 30 min */
		alarm(1800);
		struct rlimit rl;
		CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
		rl.rlim_cur = rl.rlim_max;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
		CHECK(rl.rlim_cur >= (rlim_t)nw * 4 + 64);
	}
	static struct su_worker *w[ST_MAX_WORKERS];
	for (long i = 0; i < nw; i++) {
		w[i] = su_worker_alloc();
		w[i]->id = i;
		w[i]->count = ops;
		su_worker_start(w[i], &g, mixed_ops, NULL);
	}
	struct st_server_arg a = {&g, nw};
	pthread_t th[ST_SERVERS];
	for (int i = 0; i < ST_SERVERS; i++)
		CHECK(pthread_create(&th[i], NULL, st_server, &a) == 0);
	for (int i = 0; i < ST_SERVERS; i++)
		pthread_join(th[i], NULL);
	for (long i = 0; i < nw; i++) {
		su_worker_join(w[i]);
		free(w[i]);
	}
	CHECK_EQ(atomic_load(&st_ops), nw * ops);
	CHECK_EQ(atomic_load(&g.finished), nw);
	CHECK_EQ(atomic_load(&g.bad_state), 0);
	long mutex_ops = 0;
	for (long i = 0; i < nw; i++)
		for (long j = 0; j < ops; j++)
			mutex_ops += (j + i) % 5 == 4;
	CHECK_EQ(st_shared, mutex_ops);
	CHECK_EQ(atomic_load(&umcg__det_counts.parks),
		 atomic_load(&umcg__det_counts.taken_raw) +
		     atomic_load(&umcg__det_counts.taken_sys));
	CHECK(atomic_load(&st_eintr) * 100 <= nw * ops);
	printf("    %ld ops; taken raw %llu wrapped %llu; late %ld; EINTR %ld\n", nw * ops,
	       (unsigned long long)umcg__det_counts.taken_raw,
	       (unsigned long long)umcg__det_counts.taken_sys, atomic_load(&du_late),
	       atomic_load(&st_eintr));
}
