/* SPDX-License-Identifier: MIT */
/*
 * test_interpose.c - libc's blocking calls interposed by libumcg
 * (src/detect/interpose.c, docs/detection.md "Interposed libc calls").
 *
 * A detected worker that calls read(), usleep(), nanosleep(), ... through
 * libc's public names takes the lazy wrapper path: a call that sleeps is
 * reported as a wrapped one (taken_sys, parked on return, no alarm and no
 * signal), a call that does not sleep costs no switch. Everybody else -
 * plain threads, servers, workers without detection, or everybody with
 * interposition turned off - gets exactly libc's behaviour. As in
 * test_detect.c, a block that goes unseen leaves the only server asleep
 * and the test fails by timeout.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "detect_util.h"
#include "sched_util.h"
#include "umcg.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"
#include "detect/interpose.h"
#include "kern/kern.h"
#include "util/util.h"

/* Run the pair; returns how many take-overs were of each kind. */
static void run_pair(struct du_pair *p, uint64_t *sys, uint64_t *raw)
{
	struct du_counts grew;
	du_run_pair(p, &grew);
	*sys = grew.taken_sys;
	*raw = grew.taken_raw;
	/* every take-over parked exactly once */
	CHECK_EQ(grew.parks, *sys + *raw);
}

/* ---- a sleep or a read through libc's names is a lazy call ----------------------------- */

static void block_usleep(struct du_pair *p)
{
	(void)p;
	CHECK_EQ(usleep(100 * 1000), 0); /* B must run while we sleep */
}

static void block_nanosleep(struct du_pair *p)
{
	(void)p;
	struct timespec ts = {0, 100 * 1000 * 1000};
	CHECK_EQ(nanosleep(&ts, NULL), 0);
}

static void block_clock_nanosleep(struct du_pair *p)
{
	(void)p;
	struct timespec ts = {0, 100 * 1000 * 1000};
	CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
}

static void block_read(struct du_pair *p)
{
	char c;
	CHECK_EQ(read(p->fd[0], &c, 1), 1);
	CHECK_EQ(c, 'x');
}

static void block_poll(struct du_pair *p)
{
	struct pollfd pf = {.fd = p->fd[0], .events = POLLIN};
	CHECK_EQ(poll(&pf, 1, 10000), 1);
	char c;
	CHECK_EQ(read(p->fd[0], &c, 1), 1);
}

static void release_nothing(struct du_pair *p)
{
	(void)p;
}

static void release_write(struct du_pair *p)
{
	char c = 'x';
	CHECK_EQ(write(p->fd[1], &c, 1), 1);
}

static void expect_lazy(void (*block)(struct du_pair *), void (*release)(struct du_pair *))
{
	if (!du_detection_available())
		return;
	uint64_t sys = 0, raw = 0;
	/*
	 * A second try only if A was taken in a raw sleep instead (B ran, so
	 * A's call found B's write and never slept): a sleep before the call
	 * (seen once in a CI run under load: a page fault, or the first
	 * resolution of a libc name). Broken interposition fails both tries.
	 */
	for (int tries = 0; tries < 2; tries++) {
		struct du_pair p = {.block = block, .release = release};
		CHECK(pipe(p.fd) == 0);
		run_pair(&p, &sys, &raw);
		close(p.fd[0]);
		close(p.fd[1]);
		if (sys || !raw)
			break;
		printf("    try %d: taken raw %llu, wrapped 0: A slept before its call; again\n",
		       tries + 1, (unsigned long long)raw);
	}
	CHECK(sys >= 1);  /* the sleep was reported as a wrapped one */
	CHECK_EQ(raw, 0); /* no switch-in alarm, no signal */
}

TEST_T(usleep_is_lazy, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	expect_lazy(block_usleep, release_nothing);
}

TEST_T(nanosleep_is_lazy, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	expect_lazy(block_nanosleep, release_nothing);
}

TEST_T(clock_nanosleep_is_lazy, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	expect_lazy(block_clock_nanosleep, release_nothing);
}

TEST_T(read_on_empty_pipe_is_lazy, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	expect_lazy(block_read, release_write);
}

TEST_T(poll_is_lazy, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	expect_lazy(block_poll, release_write);
}

/* ---- turned off: the same sleep goes to libc and is parked by the alarm ----------------- */

TEST_T(tune_interpose_off_falls_back_to_the_alarm, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	CHECK_ERR(umcg_tune(UMCG_TUNE_INTERPOSE, 2), EINVAL);
	CHECK_ERR(umcg_tune(UMCG_TUNE_INTERPOSE, -1), EINVAL);
	if (!du_detection_available())
		return;
	CHECK(umcg_tune(UMCG_TUNE_INTERPOSE, 0) == 0);
	struct du_pair p = {.block = block_usleep, .release = release_nothing};
	uint64_t sys, raw;
	run_pair(&p, &sys, &raw);
	CHECK_EQ(sys, 0);
	CHECK(raw >= 1);
	CHECK(umcg_tune(UMCG_TUNE_INTERPOSE, 1) == 0);
	run_pair(&p, &sys, &raw);
	CHECK(sys >= 1);
	CHECK_EQ(raw, 0);
}

/* ---- calls that do not sleep cost no switch; no detection: no block point ------------- */

static void no_sleep_calls(struct su_worker *w)
{
	int *fd = w->arg;
	long runs = atomic_load(&w->g->runs);
	for (int i = 0; i < 2000; i++) {
		char c = 'y';
		CHECK_EQ(write(fd[1], &c, 1), 1);
		CHECK_EQ(read(fd[0], &c, 1), 1);
		struct pollfd pf = {.fd = fd[1], .events = POLLOUT};
		CHECK_EQ(poll(&pf, 1, 0), 1);
		CHECK(du_check_running(w));
	}
	/* one run from registration to exit: nothing was reported as a block */
	CHECK_EQ(atomic_load(&w->g->runs), runs);
}

/* Run one worker to its end; runs >= 0: exactly that many runs (one: no block reported). */
static void run_one(su_payload_fn fn, void *arg, long runs)
{
	struct su_group g;
	du_run_one(&g, fn, arg, 0);
	if (runs >= 0)
		CHECK_EQ(atomic_load(&g.runs), runs);
}

TEST_T(calls_that_do_not_sleep_cost_no_switch, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	if (!du_detection_available())
		return;
	int fd[2];
	CHECK(pipe(fd) == 0);
	uint64_t sys0 = atomic_load(&umcg__det_counts.taken_sys);
	run_one(no_sleep_calls, fd, 1);
	CHECK_EQ(atomic_load(&umcg__det_counts.taken_sys), sys0);
}

static void undetected_calls(struct su_worker *w)
{
	CHECK_EQ(umcg_detect_thread(0), 0);
	/* libc's names are not block points: the worker keeps its server */
	long runs = atomic_load(&w->g->runs);
	no_sleep_calls(w);
	CHECK_EQ(usleep(1000), 0);
	CHECK(du_check_running(w));
	CHECK_EQ(atomic_load(&w->g->runs), runs);
}

TEST_T(worker_without_detection_gets_plain_libc, T_DETECT)
{
	SKIP_ON_KERNEL("turns one worker's detection off (umcg_detect_thread(0)); the kernel's "
		       "cannot be (EOPNOTSUPP)");
	int fd[2];
	CHECK(pipe(fd) == 0);
	run_one(undetected_calls, fd, 1);
}

/* ---- a handler that makes a call after our interposed call was taken ------------------ */

static _Atomic int handler_ran;
static int handler_fd = -1;

static void on_usr1(int sig)
{
	(void)sig;
	int e = errno;
	char c = 'h';
	/* a lazy call of its own: it parks the pending take-over of the read first */
	if (write(handler_fd, &c, 1) == 1)
		atomic_store(&handler_ran, 1);
	errno = e;
}

struct sig_ctx {
	int fd[2];
	_Atomic uint32_t tid;
};

static void read_interrupted(struct su_worker *w)
{
	struct sig_ctx *c = w->arg;
	atomic_store(&c->tid, umcg_gettid());
	char ch;
	CHECK_EQ(read(c->fd[0], &ch, 1), 1); /* SA_RESTART: restarted after the handler */
	CHECK_EQ(ch, 'x');
	CHECK_EQ(atomic_load(&handler_ran), 1);
	CHECK(du_check_running(w));
}

/* A plain thread: wait until the read was taken, signal it, then release it. */
static void *signaller(void *arg)
{
	struct sig_ctx *c = arg;
	uint64_t sys0 = atomic_load(&umcg__det_counts.taken_sys);
	while (!atomic_load(&c->tid))
		su_msleep(1);
	uint64_t t0 = umcg_now_ns();
	while (atomic_load(&umcg__det_counts.taken_sys) == sys0 &&
	       umcg_now_ns() - t0 < 5000000000ull)
		su_msleep(1);
	syscall(SYS_tgkill, getpid(), atomic_load(&c->tid), SIGUSR1);
	while (!atomic_load(&handler_ran) && umcg_now_ns() - t0 < 10000000000ull)
		su_msleep(1);
	su_msleep(20);
	char ch = 'x';
	CHECK_EQ(write(c->fd[1], &ch, 1), 1);
	return NULL;
}

TEST_T(handler_call_during_a_taken_call, T_DETECT)
{
	SKIP_ON_KERNEL(
	    "interposition feeds the user-space detection; the kernel reports sleeps itself");
	if (!du_detection_available())
		return;
	struct sig_ctx c;
	memset(&c, 0, sizeof c);
	CHECK(pipe(c.fd) == 0);
	handler_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(handler_fd >= 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	uint64_t parks0 = atomic_load(&umcg__det_counts.parks);
	uint64_t sys0 = atomic_load(&umcg__det_counts.taken_sys);
	uint64_t raw0 = atomic_load(&umcg__det_counts.taken_raw);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, signaller, &c) == 0);
	run_one(read_interrupted, &c, -1);
	pthread_join(th, NULL);
	/* the read was taken, the handler parked it; the restarted read may be taken again */
	CHECK(atomic_load(&umcg__det_counts.taken_sys) > sys0);
	CHECK_EQ(atomic_load(&umcg__det_counts.parks) - parks0,
		 atomic_load(&umcg__det_counts.taken_sys) - sys0 +
		     atomic_load(&umcg__det_counts.taken_raw) - raw0);
}

/* ---- everybody else: exactly libc ------------------------------------------------------ */

/* The same checks for libc's names (interposed), and for the system-call fallbacks. */
static void check_semantics(bool fallback)
{
	int fd[2];
	CHECK(pipe(fd) == 0);
	char c = 'a';
	errno = 0;
	CHECK_EQ(fallback ? umcg__sys_write(fd[1], &c, 1) : write(fd[1], &c, 1), 1);
	CHECK_EQ(fallback ? umcg__sys_read(fd[0], &c, 1) : read(fd[0], &c, 1), 1);
	CHECK_EQ(c, 'a');
	CHECK_ERR(fallback ? umcg__sys_read(-1, &c, 1) : read(-1, &c, 1), EBADF);
	CHECK_ERR(fallback ? umcg__sys_write(-1, &c, 1) : write(-1, &c, 1), EBADF);

	/* poll/ppoll/select/pselect with nothing ready and no wait */
	struct pollfd pf = {.fd = fd[0], .events = POLLIN};
	CHECK_EQ(fallback ? umcg__sys_poll(&pf, 1, 0) : poll(&pf, 1, 0), 0);
	struct timespec tmo = {0, 1000 * 1000};
	CHECK_EQ(fallback ? umcg__sys_ppoll(&pf, 1, &tmo, NULL) : ppoll(&pf, 1, &tmo, NULL), 0);
	CHECK_EQ(tmo.tv_nsec, 1000 * 1000); /* the caller's timeout is left alone */
	fd_set rs;
	FD_ZERO(&rs);
	FD_SET(fd[0], &rs);
	tmo.tv_nsec = 1000 * 1000;
	CHECK_EQ(fallback ? umcg__sys_pselect(fd[0] + 1, &rs, NULL, NULL, &tmo, NULL)
			  : pselect(fd[0] + 1, &rs, NULL, NULL, &tmo, NULL),
		 0);
	CHECK_EQ(tmo.tv_nsec, 1000 * 1000);
	struct timeval tv = {0, 0};
	FD_ZERO(&rs);
	FD_SET(fd[0], &rs);
	CHECK_EQ(fallback ? umcg__sys_select(fd[0] + 1, &rs, NULL, NULL, &tv)
			  : select(fd[0] + 1, &rs, NULL, NULL, &tv),
		 0);

	/* sleeps; clock_nanosleep returns the error number and leaves errno */
	CHECK_EQ(fallback ? umcg__sys_usleep(100) : usleep(100), 0);
	CHECK_EQ(fallback ? umcg__sys_sleep(0) : sleep(0), 0);
	struct timespec bad = {0, 2000000000L};
	CHECK_ERR(fallback ? umcg__sys_nanosleep(&bad, NULL) : nanosleep(&bad, NULL), EINVAL);
	errno = 1234;
	CHECK_EQ(fallback ? umcg__sys_clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL)
			  : clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL),
		 EINVAL);
	CHECK_EQ(errno, 1234);
	struct timespec ts = {0, 1000};
	CHECK_EQ(fallback ? umcg__sys_clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL)
			  : clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL),
		 0);

	/* sockets (none in the kernel-test guest: its tinyconfig kernel has no CONFIG_NET) */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		CHECK_EQ(errno, ENOSYS);
	} else {
		CHECK_EQ(fallback ? umcg__sys_send(sv[0], "hi", 2, 0) : send(sv[0], "hi", 2, 0), 2);
		char buf[4] = {0};
		CHECK_EQ(fallback ? umcg__sys_recv(sv[1], buf, sizeof buf, 0)
				  : recv(sv[1], buf, sizeof buf, 0),
			 2);
		CHECK(memcmp(buf, "hi", 2) == 0);
		CHECK_ERR(fallback ? umcg__sys_recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)
				   : recv(sv[1], buf, sizeof buf, MSG_DONTWAIT),
			  EAGAIN);
		CHECK_ERR(fallback ? umcg__sys_accept(fd[0], NULL, NULL)
				   : accept(fd[0], NULL, NULL),
			  ENOTSOCK);
		struct iovec iov = {.iov_base = buf, .iov_len = 1};
		CHECK_EQ(fallback ? umcg__sys_writev(sv[0], &iov, 1) : writev(sv[0], &iov, 1), 1);
		CHECK_EQ(fallback ? umcg__sys_readv(sv[1], &iov, 1) : readv(sv[1], &iov, 1), 1);
		close(sv[0]);
		close(sv[1]);
	}

	/* waitpid */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(7);
	int status = 0;
	CHECK_EQ(fallback ? umcg__sys_waitpid(pid, &status, 0) : waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	CHECK_ERR(fallback ? umcg__sys_waitpid(pid, &status, WNOHANG)
			   : waitpid(pid, &status, WNOHANG),
		  ECHILD);
	close(fd[0]);
	close(fd[1]);
}

TEST(plain_thread_gets_libc_semantics)
{
	check_semantics(false);
}

TEST(system_call_fallbacks_match_libc)
{
	check_semantics(true);
}

static void semantics_payload(struct su_worker *w)
{
	/* a detected worker: lazy path, same results and errno */
	check_semantics(false);
	CHECK(du_check_running(w));
}

TEST_T(detected_worker_gets_libc_semantics, T_DETECT)
{
	run_one(semantics_payload, NULL, -1);
}
