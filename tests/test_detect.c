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
#include "kern/kern.h"
#include "util/util.h"
#include <linux/perf_event.h>

/* ---- a worker that blocks on what a second worker releases ------------------- */

/*
 * The pair's run and checks (du_run_pair), where detection is available;
 * and A slept, was taken and parked at least once (the kernel keeps no
 * count).
 */
static void run_pair(struct du_pair *p)
{
	if (!du_detection_available())
		return;
	struct du_counts grew;
	du_run_pair(p, &grew);
	if (!th_on_kernel())
		CHECK(grew.parks > 0);
}

static void block_raw_read(struct du_pair *p)
{
	char c;
	CHECK_EQ(syscall(SYS_read, p->fd[0], &c, 1), 1);
}

static void release_raw_write(struct du_pair *p)
{
	char c = 'x';
	CHECK_EQ(syscall(SYS_write, p->fd[1], &c, 1), 1);
}

TEST_T(raw_read_on_empty_pipe, T_DETECT)
{
	struct du_pair p = {.block = block_raw_read, .release = release_raw_write};
	CHECK(pipe(p.fd) == 0);
	run_pair(&p);
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
	run_pair(&p);
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
	run_pair(&p);
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
	run_pair(&p);
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
	run_pair(&p);
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
	run_pair(&p);
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
	run_pair(&p);
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
	/* the late-signal window is the exception (docs/detection.md) */
	CHECK(atomic_load(&unsupervised) * 10 < count);
	CHECK(atomic_load(&eintrs) * 100 <= count);
	CHECK(atomic_load(&eintrs) <= (long)atomic_load(&umcg__det_counts.eintr));
	printf("    signals %llu, parks %llu, woke_early %llu\n",
	       (unsigned long long)umcg__det_counts.signals,
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
	run_pair(&p);
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

/* ---- unavailable: said once on stderr, explicit points instead ------------------------ */

static void expect_fallback(struct su_worker *w)
{
	CHECK_EQ(umcg_detect_thread(-1), 0);
	errno = 0;
	CHECK_EQ(umcg_detect_thread(1), -1); /* the reason, not a silent no */
	CHECK_EQ(errno, EMFILE);
	/* the wrappers are explicit block points: one block, one park per call */
	long runs = atomic_load(&w->g->runs);
	char c = 0;
	int *fd = w->arg;
	CHECK_EQ(umcg_write(fd[1], &c, 1), 1);
	CHECK(atomic_load(&w->g->runs) > runs); /* (the other worker may have run too) */
	CHECK(du_check_running(w));
}

TEST_T(unavailable_says_so_once_and_falls_back, T_DETECT)
{
	SKIP_ON_KERNEL("about perf_event_open, which the kernel backend does not use");
	int fd[2], err[2];
	CHECK(pipe(fd) == 0);
	CHECK(pipe(err) == 0);
	CHECK(fcntl(err[0], F_SETFL, O_NONBLOCK) == 0);
	int saved = dup(2);
	CHECK(saved >= 0);
	if (!getenv("DBG"))
		CHECK(dup2(err[1], 2) == 2);
	/* no fd left for the perf events: perf_event_open fails with EMFILE */
	int next = dup(0);
	CHECK(next >= 0);
	close(next);
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	struct rlimit low = {(rlim_t)next, rl.rlim_max};
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	struct su_group g;
	memset(&g, 0, sizeof g);
	struct su_worker *w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = su_worker_alloc();
		su_worker_start(w[i], &g, expect_fallback, fd);
	}
	du_serve(&g, 2);
	for (int i = 0; i < 2; i++) {
		su_worker_join(w[i]);
		free(w[i]);
	}
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	dup2(saved, 2);
	close(saved);
	char buf[4096];
	ssize_t n = read(err[0], buf, sizeof buf - 1);
	CHECK(n > 0);
	buf[n] = 0;
	const char *first = strstr(buf, "transparent block detection unavailable");
	CHECK(first != NULL);
	CHECK(strstr(first + 1, "transparent block detection unavailable") == NULL); /* once */
	CHECK_EQ(atomic_load(&g.bad_state), 0);
}

/* ---- a page fault on an evicted file mapping ---------------------------------------- */

static _Atomic int pf_a_done;
static _Atomic long pf_b_ran; /* B's iterations while A was still faulting */
static const char *pf_map;
static size_t pf_len;

static void fault_pages(struct su_worker *w)
{
	long sum = 0;
	for (size_t o = 0; o < pf_len; o += 4096)
		sum += pf_map[o]; /* each a major fault: the kernel reads the page, we sleep */
	CHECK_EQ(sum, (long)(pf_len / 4096) * 7);
	atomic_store(&pf_a_done, 1);
	du_settle(w);
	CHECK(du_check_running(w));
}

static void run_while_a_faults(struct su_worker *w)
{
	while (!atomic_load(&pf_a_done)) {
		atomic_fetch_add(&pf_b_ran, 1);
		struct timespec ts = {0, 100 * 1000};
		syscall(SYS_nanosleep, &ts, NULL); /* a raw sleep: lets the server run A again */
		du_settle(w);
	}
}

TEST_T(page_faults_on_an_evicted_mapping, 120)
{
	SKIP_ON_KERNEL(
	    "needs a disk to evict a file page to; the test guest has only RAM file systems");
	if (!du_detection_available())
		return;
	char path[64];
	snprintf(path, sizeof path, "/var/tmp/umcg-test-pf-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	unlink(path);
	pf_len = 4 << 20;
	char *buf = malloc(1 << 20);
	memset(buf, 7, 1 << 20);
	for (size_t i = 0; i < pf_len; i += 1 << 20)
		CHECK_EQ(write(fd, buf, 1 << 20), 1 << 20);
	free(buf);
	CHECK(fsync(fd) == 0);
	/* evict it from the page cache: every first touch now waits for the disk */
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	void *m = mmap(NULL, pf_len, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK(madvise(m, pf_len, MADV_RANDOM) == 0); /* no read-ahead: one fault per page */
	pf_map = m;
	struct su_group g;
	uint64_t raw0 = atomic_load(&umcg__det_counts.taken_raw);
	du_run_two(&g, fault_pages, run_while_a_faults, NULL);
	munmap(m, pf_len);
	close(fd);
	/* the faults were seen: B got the CPU while A waited for the disk */
	CHECK(atomic_load(&umcg__det_counts.taken_raw) > raw0);
	CHECK(atomic_load(&pf_b_ran) > 0);
	printf("    %zu pages; B ran %ld times while A faulted; %llu raw take-overs\n",
	       pf_len / 4096, atomic_load(&pf_b_ran),
	       (unsigned long long)(atomic_load(&umcg__det_counts.taken_raw) - raw0));
}

/* ---- kernel backend: a page fault that sleeps on the mmap lock -------------- */

/*
 * The kernel's block hook sees every sleep of a worker, a page fault's
 * included. The guest has no disk to evict a page to, so the fault is
 * made to sleep on the mmap lock instead: a plain thread holds it for
 * writing again and again (mprotect() of a big populated region), and
 * worker A touches fresh anonymous pages (each first touch is a fault that
 * takes the lock for reading: it sleeps whenever the writer holds it). A
 * fault that slept handed the CPU to worker B, which counts its runs until
 * A is done. Kernel only: the emulation's detection has the test above.
 */
static _Atomic int mw_stop;
static char *mw_big;
static size_t mw_big_len;

static void *mmap_lock_writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&mw_stop)) {
		mprotect(mw_big, mw_big_len, PROT_READ);
		mprotect(mw_big, mw_big_len, PROT_READ | PROT_WRITE);
	}
	return NULL;
}

static void touch_fresh_pages(struct su_worker *w)
{
	for (size_t o = 0; o < pf_len; o += 4096)
		((volatile char *)pf_map)[o] = 1; /* a fault; sleeps if the writer holds the lock */
	atomic_store(&pf_a_done, 1);
	CHECK(du_check_running(w));
}

TEST_T(page_fault_on_a_contended_mmap_lock_hands_back, 120)
{
	if (!th_on_kernel())
		th_skip("kernel backend only (the emulation's page-fault test is the one above)");
	mw_big_len = 32u << 20;
	mw_big = mmap(NULL, mw_big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mw_big != MAP_FAILED);
	memset(mw_big, 1, mw_big_len); /* populated: every mprotect walks its page tables */
	pf_len = 16u << 20;
	void *m = mmap(NULL, pf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	pf_map = m;
	pthread_t wt;
	CHECK_EQ(pthread_create(&wt, NULL, mmap_lock_writer, NULL), 0);
	struct su_group g;
	du_run_two(&g, touch_fresh_pages, run_while_a_faults, NULL);
	atomic_store(&mw_stop, 1);
	CHECK_EQ(pthread_join(wt, NULL), 0);
	printf("    %zu fresh pages; B ran %ld times while A faulted\n", pf_len / 4096,
	       atomic_load(&pf_b_ran));
	/* some fault slept on the lock and was reported: B got the CPU meanwhile */
	CHECK(atomic_load(&pf_b_ran) > 0);
	munmap(m, pf_len);
	munmap(mw_big, mw_big_len);
}

/* ---- a worker-to-worker switch hands the watcher to the new worker ------------------ */

static struct su_worker *w2w_b;
static int w2w_fd[2];
static _Atomic int w2w_b_blocked;

static void w2w_a(struct su_worker *w)
{
	/* take B off the idle-workers list and switch to it: our server sleeps on */
	struct su_worker *b = NULL;
	for (long i = 0; i < 100000000 && !b; i++) {
		struct umcg_task *t = umcg_idle_workers_pop_all(&w->g->iwl);
		if (t) {
			CHECK(umcg_idle_workers_next(t, &w->g->iwl) == NULL);
			b = su_worker_of(t);
		} else {
			sched_yield(); /* not a sleep: our server must not get the CPU back */
		}
	}
	CHECK(b == w2w_b);
	su_switch_to(w, b);
	CHECK(du_check_running(w));
}

static void w2w_b_payload(struct su_worker *w)
{
	char c;
	atomic_store(&w2w_b_blocked, 1);
	CHECK_EQ(syscall(SYS_read, w2w_fd[0], &c, 1), 1); /* seen: our server is told */
	CHECK(du_check_running(w));
}

TEST_T(worker_to_worker_switch_moves_the_watcher, T_DETECT)
{
	if (!du_detection_available())
		return;
	CHECK(pipe(w2w_fd) == 0);
	struct su_group g;
	memset(&g, 0, sizeof g);
	struct su_server s;
	memset(&s, 0, sizeof s);
	struct su_worker *a = su_worker_alloc();
	w2w_b = su_worker_alloc();
	a->id = 1;
	w2w_b->id = 2;
	du_start_in_order(a, &g, w2w_a, NULL);
	su_server_register(&s, &g);
	struct su_worker *first = su_poll_one(&g, 5000);
	CHECK(first == a);
	su_worker_start(w2w_b, &g, w2w_b_payload, NULL);
	/* A switches to B; B blocks in a raw read: only the watcher can wake us */
	uint32_t st = su_run(&s, a);
	CHECK_EQ(st & UMCG_TF_STATE_MASK, UMCG_TASK_IDLE); /* A parked in its switch */
	CHECK_EQ(umcg_state_load(&w2w_b->task), UMCG_TASK_BLOCKED);
	CHECK_EQ(atomic_load(&w2w_b_blocked), 1);
	char c = 'x';
	CHECK_EQ(write(w2w_fd[1], &c, 1), 1);
	struct su_worker *next = su_poll_one(&g, 5000); /* B parked when it woke */
	CHECK(next == w2w_b);
	su_run(&s, w2w_b); /* B finishes */
	su_run(&s, a);	   /* A, IDLE after its switch, finishes */
	su_worker_join(a);
	su_worker_join(w2w_b);
	CHECK_EQ(atomic_load(&g.finished), 2);
	CHECK_EQ(atomic_load(&g.bad_state), 0);
	su_server_unregister(&s);
	free(a);
	free(w2w_b);
}

/* ---- ring overflow: records lost, the state comes from /proc ------------------------ */

static _Atomic int ov_spin_stop, ov_filled;

static void *ov_spinner(void *arg)
{
	cpu_set_t *cpus = arg;
	pthread_setaffinity_np(pthread_self(), sizeof *cpus, cpus);
	while (!atomic_load(&ov_spin_stop))
		sched_yield();
	return NULL;
}

/* A: far more switch records than the ring holds, then a raw blocking read */
static void block_after_overflow(struct du_pair *p)
{
	/* a plain thread on our CPU: each of our yields is a switch out and in */
	cpu_set_t cpus;
	CHECK(pthread_getaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0);
	int cpu = 0;
	while (!CPU_ISSET(cpu, &cpus))
		cpu++;
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus); /* the server's CPU, so its watcher cannot drain the ring */
	CHECK(pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, ov_spinner, &cpus) == 0);
	/* until our ring is full (the watcher cannot run: our CPU is never idle) */
	struct umcg_ktask *k = umcg__current();
	for (int i = 0; i < 200000; i++) {
		struct perf_event_mmap_page *mp = k->det_ring;
		if (mp && __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE) -
				  __atomic_load_n(&mp->data_tail, __ATOMIC_ACQUIRE) >
			      (uint64_t)sysconf(_SC_PAGESIZE) - 64) {
			atomic_store(&ov_filled, 1);
			break;
		}
		sched_yield();
	}
	atomic_store(&ov_spin_stop, 1);
	pthread_join(th, NULL);
	block_raw_read(p);
}

TEST_T(ring_overflow_does_not_hang, T_DETECT)
{
	SKIP_ON_KERNEL("about the perf ring of the user-space detection");
	struct du_pair p = {.block = block_after_overflow, .release = release_raw_write};
	CHECK(pipe(p.fd) == 0);
	/* the server (and so its watcher) on the first CPU we may use, as A will be */
	cpu_set_t cpus;
	CHECK(sched_getaffinity(0, sizeof cpus, &cpus) == 0);
	int cpu = 0;
	while (!CPU_ISSET(cpu, &cpus))
		cpu++;
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	CHECK(sched_setaffinity(0, sizeof cpus, &cpus) == 0);
	uint64_t lost0 = atomic_load(&umcg__det_counts.lost);
	run_pair(&p);
	/*
	 * The hang is what this test fails on (run_pair's exact checks). Whether
	 * records were really lost is not under its control: "nearly full" is
	 * not "overflowed", and the server's own periodic look at the ring
	 * (every 1-8 ms) can drain it between the fill and the next record; so
	 * the overflow path is reported, not required (seen 1-3 in 20 under TSan).
	 */
	if (!atomic_load(&ov_filled))
		printf("    the ring did not fill in 200000 yields: overflow path not exercised\n");
	else if (atomic_load(&umcg__det_counts.lost) == lost0)
		printf("    the ring filled but was drained before it overflowed: path not "
		       "exercised\n");
}
