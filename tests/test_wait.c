/* SPDX-License-Identifier: MIT */
/*
 * test_wait.c - umcg_wait(): validation order (spec 6.2 and our documented
 * deviations, see src/kern/wait.c), ESRCH, the "already RUNNING" fast
 * path, timeouts, EINTR, WAKE_ONLY semantics and next_tid persistence.
 *
 * All tasks here are servers ("basic tasks"). Where a wrong implementation
 * would sleep instead of failing, the call is given a deadline so that the
 * failure shows up as a wrong errno (ETIMEDOUT), and the test has a short
 * timeout for the calls that cannot have one.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"

#define USER_BIT  0x01000000u
#define MS	  1000000ull
#define NOT_A_TID 0x3fffffffu /* above PID_MAX_LIMIT: never a task */

static void init_server(struct umcg_task *t)
{
	memset(t, 0, sizeof *t);
	t->state = UMCG_TASK_RUNNING;
	t->api_version = UMCG_API_VERSION;
}

/* Register the calling thread as a server with `t`. */
static void register_server(struct umcg_task *t)
{
	init_server(t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, t), 0);
	t->server_tid = umcg_gettid();
}

static void unregister(void)
{
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
}

/*
 * Wake protocol, waker side: target IDLE -> RUNNING. The target may not be
 * IDLE yet (it sets IDLE just before its umcg_wait): the lost-wakeup rule
 * of spec 5.3 says the waker retries; the library never does.
 */
static void make_running(struct umcg_task *t)
{
	for (unsigned n = 0;; n++) {
		uint32_t exp = UMCG_TASK_IDLE;
		if (umcg_state_cas(t, &exp, UMCG_TASK_RUNNING))
			return;
		CHECK_EQ(exp, UMCG_TASK_RUNNING);
		if (n > 64)
			sched_yield();
	}
}

/* ---- a registered peer that sleeps once in umcg_wait -------------------- */

struct peer {
	struct umcg_task t;
	uint64_t deadline;    /* for its umcg_wait */
	_Atomic uint32_t tid; /* published once registered */
	_Atomic int done;
	_Atomic int release; /* the peer unregisters only once this is set */
	int ret, err;
	uint32_t state_after;
	pthread_t th;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	register_server(&p->t);
	atomic_store(&p->tid, umcg_gettid());
	umcg_state_store(&p->t, UMCG_TASK_IDLE);
	errno = 0;
	p->ret = umcg_wait(0, p->deadline);
	p->err = errno;
	p->state_after = umcg_state_load(&p->t);
	atomic_store(&p->done, 1);
	while (!atomic_load(&p->release))
		usleep(100);
	umcg_state_store(&p->t, UMCG_TASK_RUNNING);
	unregister();
	return NULL;
}

static void peer_start(struct peer *p, uint64_t deadline)
{
	memset(p, 0, sizeof *p);
	p->deadline = deadline;
	CHECK_EQ(pthread_create(&p->th, NULL, peer_main, p), 0);
	while (!atomic_load(&p->tid))
		usleep(50);
}

/* Wait for the peer's umcg_wait to return; check its result. */
static void peer_finish(struct peer *p, int ret, int err)
{
	while (!atomic_load(&p->done))
		usleep(50);
	CHECK_EQ(p->ret, ret);
	if (ret)
		CHECK_EQ(p->err, err);
	atomic_store(&p->release, 1);
	CHECK_EQ(pthread_join(p->th, NULL), 0);
}

/* ---- a live thread that is not a UMCG task ------------------------------ */

static _Atomic uint32_t plain_tid;
static _Atomic int plain_stop;

static void *plain_main(void *arg)
{
	atomic_store(&plain_tid, umcg_gettid());
	while (!atomic_load(&plain_stop))
		usleep(1000);
	return NULL;
}

static pthread_t plain_start(void)
{
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, plain_main, NULL), 0);
	while (!atomic_load(&plain_tid))
		usleep(50);
	return th;
}

static void plain_stop_join(pthread_t th)
{
	atomic_store(&plain_stop, 1);
	CHECK_EQ(pthread_join(th, NULL), 0);
}

/* ---- validation ---------------------------------------------------------- */

TEST_T(not_registered, 60)
{
	CHECK_ERR(umcg_wait(0, 0), EINVAL);
	CHECK_ERR(umcg_wait(0, umcg_now_ns() + 100 * MS), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), EINVAL);
	CHECK_ERR(umcg_wait(4, 0), EINVAL);
	/* and again after a register/unregister cycle */
	static struct umcg_task t;
	register_server(&t);
	unregister();
	umcg_state_store(&t, UMCG_TASK_IDLE);
	t.next_tid = umcg_gettid();
	CHECK_ERR(umcg_wait(0, 0), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), EINVAL);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
}

TEST(wake_only_next_tid_zero)
{
	static struct umcg_task t;
	register_server(&t);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), EINVAL);
	/* server_tid (set to our own tid) is not used for WAKE_ONLY */
	CHECK_EQ(t.server_tid, umcg_gettid());
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), EINVAL);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	unregister();
}

TEST(wake_only_with_timeout)
{
	static struct umcg_task t;
	register_server(&t);
	t.next_tid = umcg_gettid(); /* a valid target: ourselves */
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, umcg_now_ns() + 1000 * MS), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 1), EINVAL);
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 1), EINVAL);
	/* checked before the lookup: EINVAL, not ESRCH */
	t.next_tid = NOT_A_TID;
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 1), EINVAL);
	/* the valid call works */
	t.next_tid = umcg_gettid();
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
	t.next_tid = 0;
	unregister();
}

TEST(wake_only_unknown_flag)
{
	static struct umcg_task t;
	register_server(&t);
	t.next_tid = umcg_gettid();
	const uint32_t extra[] = {4, 8, 0x100, 0x10000, 0x80000000u};
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | extra[i], 0), EINVAL);
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU | extra[i], 0),
			  EINVAL);
	}
	/* flags are checked before the lookup: EINVAL, not ESRCH */
	t.next_tid = NOT_A_TID;
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | 4, 0), EINVAL);
	t.next_tid = 0;
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	unregister();
}

/* Helper thread: register and WAKE_ONLY `tid`; report errno (0 = success). */
struct waker {
	uint32_t tid;
	uint32_t flags;
	int err;
};

static void *waker_main(void *arg)
{
	struct waker *w = arg;
	static __thread struct umcg_task me;
	register_server(&me);
	me.next_tid = w->tid;
	errno = 0;
	int r = umcg_wait(w->flags, 0);
	w->err = r ? errno : 0;
	if (r)
		CHECK_EQ(r, -1);
	me.next_tid = 0;
	unregister();
	return NULL;
}

static int wake_from_other_thread(uint32_t tid, uint32_t flags)
{
	struct waker w = {.tid = tid, .flags = flags};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, waker_main, &w), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	return w.err;
}

TEST(wake_only_esrch)
{
	/* the main thread while it is not registered */
	uint32_t me = umcg_gettid();
	CHECK_EQ(wake_from_other_thread(me, UMCG_WAIT_WAKE_ONLY), ESRCH);
	CHECK_EQ(wake_from_other_thread(me, UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU), ESRCH);
	/* ... and once it is registered, it is found */
	static struct umcg_task t;
	register_server(&t);
	CHECK_EQ(wake_from_other_thread(me, UMCG_WAIT_WAKE_ONLY), 0);
	CHECK_EQ(wake_from_other_thread(me, UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU), 0);

	/* tids that are not UMCG tasks */
	pthread_t pl = plain_start();
	const uint32_t bad[] = {NOT_A_TID, 0xffffffffu, 0x7fffffffu, (uint32_t)getppid(),
				atomic_load(&plain_tid)};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t.next_tid = bad[i];
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), ESRCH);
		CHECK_EQ(t.next_tid, bad[i]);
	}
	plain_stop_join(pl);
	/* after unregistering, the main thread is not found any more */
	t.next_tid = 0;
	unregister();
	CHECK_EQ(wake_from_other_thread(me, UMCG_WAIT_WAKE_ONLY), ESRCH);
}

/* Without WAKE_ONLY every flag bit is EINVAL (our deviation: v0.3 ignored them). */
TEST_T(flags_without_wake_only, 60)
{
	static struct umcg_task t;
	register_server(&t);
	const uint32_t bad[] = {UMCG_WAIT_WF_CURRENT_CPU, 4, 8, 0x80000000u};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* IDLE, so that an implementation ignoring the flag would sleep */
		umcg_state_store(&t, UMCG_TASK_IDLE);
		CHECK_ERR(umcg_wait(bad[i], umcg_now_ns() + 2000 * MS), EINVAL);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
		CHECK_ERR(umcg_wait(bad[i], 0), EINVAL);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
	}
	umcg_state_store(&t, UMCG_TASK_RUNNING);
	unregister();
}

/* A context switch to a non-UMCG tid fails with ESRCH before sleeping. */
TEST_T(switch_to_non_umcg_tid, 60)
{
	static struct umcg_task t;
	register_server(&t);
	pthread_t pl = plain_start();
	const uint32_t bad[] = {NOT_A_TID, 0xffffffffu, (uint32_t)getppid(),
				atomic_load(&plain_tid)};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		umcg_state_store(&t, UMCG_TASK_IDLE);
		t.next_tid = bad[i];
		/* with a deadline: sleeping first would give ETIMEDOUT */
		CHECK_ERR(umcg_wait(0, umcg_now_ns() + 2000 * MS), ESRCH);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
		CHECK_EQ(t.next_tid, bad[i]);
		/* without one: sleeping would hang (test timeout) */
		CHECK_ERR(umcg_wait(0, 0), ESRCH);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
		CHECK_EQ(t.next_tid, bad[i]);
	}
	plain_stop_join(pl);
	t.next_tid = 0;
	umcg_state_store(&t, UMCG_TASK_RUNNING);
	unregister();
}

/* A server's server_tid is not a switch target (only a worker's is). */
TEST_T(server_tid_ignored_for_servers, 60)
{
	static struct umcg_task t;
	register_server(&t);
	t.server_tid = NOT_A_TID;
	umcg_state_store(&t, UMCG_TASK_IDLE);
	CHECK_ERR(umcg_wait(0, 1), ETIMEDOUT); /* not ESRCH */
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	t.server_tid = umcg_gettid();
	unregister();
}

/* ---- already RUNNING ----------------------------------------------------- */

TEST_T(already_running_returns_immediately, 60)
{
	static struct umcg_task t;
	register_server(&t);
	CHECK_EQ(umcg_wait(0, 0), 0);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	/* only the low byte is compared; the word is left alone */
	umcg_state_store(&t, UMCG_TASK_RUNNING | USER_BIT);
	CHECK_EQ(umcg_wait(0, 0), 0);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING | USER_BIT);
	umcg_state_store(&t, UMCG_TASK_RUNNING);
	/* RUNNING beats an expired deadline */
	CHECK_EQ(umcg_wait(0, 1), 0);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	/* a switch to ourselves while RUNNING: wake self, return */
	t.next_tid = umcg_gettid();
	CHECK_EQ(umcg_wait(0, 0), 0);
	CHECK_EQ(t.next_tid, umcg_gettid());
	t.next_tid = 0;
	unregister();
}

/* ---- timeouts ------------------------------------------------------------ */

TEST_T(timeout_in_the_past, 60)
{
	static struct umcg_task t;
	register_server(&t);
	const uint64_t now = umcg_now_ns();
	const uint64_t past[] = {1, now - 1 * MS, now};
	for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
		umcg_state_store(&t, UMCG_TASK_IDLE);
		CHECK_ERR(umcg_wait(0, past[i]), ETIMEDOUT);
		/* a timed-out server is put back RUNNING */
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	}
	/* the restore is a state transition: flag and user bits are kept */
	umcg_state_store(&t, UMCG_TASK_IDLE | USER_BIT);
	CHECK_ERR(umcg_wait(0, 1), ETIMEDOUT);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING | USER_BIT);
	umcg_state_store(&t, UMCG_TASK_RUNNING);
	unregister();
}

TEST_T(timeout_in_the_future, 60)
{
	static struct umcg_task t;
	register_server(&t);
	const uint64_t rel[] = {20 * MS, 5 * MS, 20 * MS};
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		umcg_state_store(&t, UMCG_TASK_IDLE);
		uint64_t t0 = umcg_now_ns();
		uint64_t deadline = t0 + rel[i];
		CHECK_ERR(umcg_wait(0, deadline), ETIMEDOUT);
		uint64_t t1 = umcg_now_ns();
		/* not before the deadline (no upper bound: 2-core VM) */
		CHECK(t1 >= deadline);
		CHECK(t1 - t0 >= rel[i]);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	}
	unregister();
}

/* A switch with a deadline: the target runs, nobody wakes us -> ETIMEDOUT. */
TEST_T(switch_then_timeout, 60)
{
	static struct umcg_task t;
	register_server(&t);
	struct peer p;
	peer_start(&p, 0);
	make_running(&p.t);
	umcg_state_store(&t, UMCG_TASK_IDLE);
	t.next_tid = atomic_load(&p.tid);
	uint64_t deadline = umcg_now_ns() + 20 * MS;
	CHECK_ERR(umcg_wait(0, deadline), ETIMEDOUT);
	CHECK(umcg_now_ns() >= deadline);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	CHECK_EQ(t.next_tid, atomic_load(&p.tid)); /* not consumed */
	peer_finish(&p, 0, 0);			   /* the switch did wake it */
	CHECK_EQ(p.state_after, UMCG_TASK_RUNNING);
	t.next_tid = 0;
	unregister();
}

/* A wake (RUNNING + WAKE_ONLY) before the deadline: 0, state RUNNING. */
struct timed_wake {
	struct umcg_task *target;
	uint32_t target_tid;
	uint32_t flags;
};

static void *timed_waker_main(void *arg)
{
	struct timed_wake *w = arg;
	static __thread struct umcg_task me;
	register_server(&me);
	usleep(5000); /* let the target go to sleep (not required for correctness) */
	make_running(w->target);
	me.next_tid = w->target_tid;
	CHECK_EQ(umcg_wait(w->flags, 0), 0);
	me.next_tid = 0;
	unregister();
	return NULL;
}

TEST_T(wake_before_deadline, 60)
{
	static struct umcg_task t;
	register_server(&t);
	const uint32_t flags[] = {UMCG_WAIT_WAKE_ONLY,
				  UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU};
	for (int i = 0; i < 4; i++) {
		struct timed_wake w = {&t, umcg_gettid(), flags[i & 1]};
		umcg_state_store(&t, UMCG_TASK_IDLE);
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, timed_waker_main, &w), 0);
		uint64_t deadline = umcg_now_ns() + 20000 * MS;
		CHECK_EQ(umcg_wait(0, deadline), 0);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
		CHECK_EQ(pthread_join(th, NULL), 0);
	}
	unregister();
}

/* A wake without the RUNNING store is spurious: the waiter sleeps on. */
static _Atomic int spurious_stop;

static void *spurious_waker_main(void *arg)
{
	uint32_t target = *(uint32_t *)arg;
	static __thread struct umcg_task me;
	register_server(&me);
	me.next_tid = target;
	while (!atomic_load(&spurious_stop)) {
		CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
		usleep(500);
	}
	me.next_tid = 0;
	unregister();
	return NULL;
}

TEST_T(wake_without_running_is_spurious, 60)
{
	static struct umcg_task t;
	register_server(&t);
	uint32_t me = umcg_gettid();
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, spurious_waker_main, &me), 0);
	umcg_state_store(&t, UMCG_TASK_IDLE);
	uint64_t deadline = umcg_now_ns() + 100 * MS;
	CHECK_ERR(umcg_wait(0, deadline), ETIMEDOUT);
	CHECK(umcg_now_ns() >= deadline);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	atomic_store(&spurious_stop, 1);
	CHECK_EQ(pthread_join(th, NULL), 0);
	unregister();
}

/* ---- signals: EINTR, SA_RESTART ---------------------------------------- */

static _Atomic int sig_count;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sig_count, 1);
}

static void install_handler(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = flags;
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* Wait (bounded) until `tid` sleeps; a best effort, not a correctness condition. */
static void wait_until_sleeping(pid_t tid)
{
	for (int i = 0; i < 2000 && !th_thread_sleeps(tid); i++)
		usleep(1000);
	usleep(2000);
}

struct signaller {
	pthread_t target;
	pid_t target_tid;
	int use_tgkill;
	_Atomic int stop;
	int sent;
};

static void send_sig(struct signaller *s)
{
	if (s->use_tgkill)
		CHECK_EQ(syscall(SYS_tgkill, getpid(), s->target_tid, SIGUSR1), 0);
	else
		CHECK_EQ(pthread_kill(s->target, SIGUSR1), 0);
	s->sent++;
}

static void *eintr_signaller(void *arg)
{
	struct signaller *s = arg;
	wait_until_sleeping(s->target_tid);
	/* If a signal still lands before the target sleeps, the next one counts. */
	while (!atomic_load(&s->stop)) {
		send_sig(s);
		usleep(20000);
	}
	return NULL;
}

/*
 * Any signal handler interrupts umcg_wait() with EINTR, as in v0.3, whether
 * or not it was installed with SA_RESTART, with or without a deadline;
 * the caller's state is left IDLE (umcg_wait(3), docs/spec-choices.md).
 */
static void check_eintr(int sa_flags)
{
	install_handler(sa_flags);
	static struct umcg_task t;
	register_server(&t);
	for (int variant = 0; variant < 4; variant++) {
		struct signaller s = {.target = pthread_self(),
				      .target_tid = (pid_t)umcg_gettid(),
				      .use_tgkill = variant & 1};
		/* variants 0,1: no deadline; 2,3: a far deadline (a restart would time out) */
		uint64_t deadline = variant >= 2 ? umcg_now_ns() + 20000 * MS : 0;
		umcg_state_store(&t, UMCG_TASK_IDLE);
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, eintr_signaller, &s), 0);
		int r = umcg_wait(0, deadline);
		int e = errno;
		atomic_store(&s.stop, 1);
		CHECK_EQ(pthread_join(th, NULL), 0);
		if (r != -1 || e != EINTR)
			th_fail(
			    __FILE__, __LINE__,
			    "sa_flags %#x variant %d (%s deadline): umcg_wait returned %d errno %d "
			    "(%s), want -1 EINTR",
			    sa_flags, variant, deadline ? "with" : "no", r, e, strerror(e));
		/* the state is left alone: still IDLE */
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
		CHECK(s.sent >= 1);
		CHECK(atomic_load(&sig_count) >= 1);
		/* still registered and usable: a past deadline times out normally */
		CHECK_ERR(umcg_wait(0, 1), ETIMEDOUT);
		CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	}
	unregister();
}

TEST_T(eintr_without_sa_restart, 60)
{
	check_eintr(0);
}

TEST_T(eintr_even_with_sa_restart, 60)
{
	check_eintr(SA_RESTART);
}

/* ---- WAKE_ONLY ----------------------------------------------------------- */

/* WAKE_ONLY neither reads nor writes the caller's state; it never sleeps. */
TEST_T(wake_only_leaves_caller_state, 60)
{
	static struct umcg_task t;
	register_server(&t);
	const uint32_t my_states[] = {UMCG_TASK_IDLE, UMCG_TASK_IDLE | USER_BIT, UMCG_TASK_RUNNING};
	for (int hint = 0; hint < 2; hint++) {
		CHECK_EQ(umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, hint), 0);
		for (size_t i = 0; i < sizeof my_states / sizeof my_states[0]; i++) {
			for (int cc = 0; cc < 2; cc++) {
				uint32_t flags =
				    UMCG_WAIT_WAKE_ONLY | (cc ? UMCG_WAIT_WF_CURRENT_CPU : 0);
				struct peer p;
				peer_start(&p, 0);
				umcg_state_store(&t, my_states[i]);
				make_running(&p.t);
				t.next_tid = atomic_load(&p.tid);
				/* IDLE and no deadline: sleeping here would hang */
				CHECK_EQ(umcg_wait(flags, 0), 0);
				CHECK_EQ(umcg_state_load(&t), my_states[i]);
				CHECK_EQ(t.next_tid, atomic_load(&p.tid));
				peer_finish(&p, 0, 0);
				CHECK_EQ(p.state_after, UMCG_TASK_RUNNING);
				umcg_state_store(&t, UMCG_TASK_RUNNING);
				t.next_tid = 0;
			}
		}
	}
	CHECK_EQ(umcg_tune(UMCG_TUNE_CURRENT_CPU_HINT, 1), 0);
	unregister();
}

/*
 * WAKE_ONLY|WF_CURRENT_CPU wakes the target, repeatedly, from either side.
 * The hint moves the wakee to the waker's CPU (sched_setaffinity in our
 * emulation); unregistering gives each thread its own affinity back.
 */
static struct umcg_task cc_a, cc_b;
static _Atomic uint32_t cc_b_tid;
static long cc_n;

static void check_same_affinity(const cpu_set_t *before)
{
	cpu_set_t now;
	CHECK_EQ(sched_getaffinity(0, sizeof now, &now), 0);
	CHECK(CPU_EQUAL(&now, before));
}

static void *cc_b_main(void *arg)
{
	cpu_set_t aff;
	CHECK_EQ(sched_getaffinity(0, sizeof aff, &aff), 0);
	register_server(&cc_b);
	atomic_store(&cc_b_tid, umcg_gettid());
	uint32_t a_tid = *(uint32_t *)arg;
	for (long i = 0; i < cc_n; i++) {
		umcg_state_store(&cc_b, UMCG_TASK_IDLE);
		cc_b.next_tid = 0;
		CHECK_EQ(umcg_wait(0, 0), 0);
		CHECK_EQ(umcg_state_load(&cc_b), UMCG_TASK_RUNNING);
		make_running(&cc_a);
		cc_b.next_tid = a_tid;
		CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), 0);
		CHECK_EQ(umcg_state_load(&cc_b), UMCG_TASK_RUNNING);
	}
	cc_b.next_tid = 0;
	unregister();
	check_same_affinity(&aff);
	return NULL;
}

TEST_T(wake_only_current_cpu, 60)
{
	cc_n = th_scaled(2000, 200);
	cpu_set_t aff;
	CHECK_EQ(sched_getaffinity(0, sizeof aff, &aff), 0);
	register_server(&cc_a);
	uint32_t me = umcg_gettid();
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, cc_b_main, &me), 0);
	while (!atomic_load(&cc_b_tid))
		usleep(50);
	for (long i = 0; i < cc_n; i++) {
		umcg_state_store(&cc_a, UMCG_TASK_IDLE);
		make_running(&cc_b);
		cc_a.next_tid = atomic_load(&cc_b_tid);
		CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), 0);
		/* IDLE as we left it, or already RUNNING because b woke us back */
		uint32_t st = umcg_state_load(&cc_a);
		CHECK(st == UMCG_TASK_IDLE || st == UMCG_TASK_RUNNING);
		cc_a.next_tid = 0;
		CHECK_EQ(umcg_wait(0, 0), 0);
		CHECK_EQ(umcg_state_load(&cc_a), UMCG_TASK_RUNNING);
	}
	CHECK_EQ(pthread_join(th, NULL), 0);
	unregister();
	check_same_affinity(&aff);
}

/* ---- next_tid is never consumed ------------------------------------------ */

static struct umcg_task *bounce_back; /* whom the bouncer wakes back */

static void *bounce_main(void *arg)
{
	/* woken by a switch: wake the switcher back */
	struct peer *p = arg;
	register_server(&p->t);
	atomic_store(&p->tid, umcg_gettid());
	umcg_state_store(&p->t, UMCG_TASK_IDLE);
	CHECK_EQ(umcg_wait(0, 0), 0);
	struct umcg_task *back = bounce_back;
	make_running(back);
	p->t.next_tid = back->server_tid;
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
	p->t.next_tid = 0;
	unregister();
	return NULL;
}

TEST_T(next_tid_not_consumed, 60)
{
	static struct umcg_task t;
	register_server(&t);
	uint32_t self = umcg_gettid();

	/* WAKE_ONLY */
	t.next_tid = self;
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
	CHECK_EQ(t.next_tid, self);
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), 0);
	CHECK_EQ(t.next_tid, self);
	/* EINVAL / ESRCH */
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | 4, 0), EINVAL);
	CHECK_EQ(t.next_tid, self);
	t.next_tid = NOT_A_TID;
	CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
	CHECK_EQ(t.next_tid, NOT_A_TID);
	/* ETIMEDOUT after a switch to ourselves */
	t.next_tid = self;
	umcg_state_store(&t, UMCG_TASK_IDLE);
	CHECK_ERR(umcg_wait(0, 1), ETIMEDOUT);
	CHECK_EQ(t.next_tid, self);

	/* a real context switch that returns 0 */
	static struct peer p;
	memset(&p, 0, sizeof p);
	bounce_back = &t;
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, bounce_main, &p), 0);
	while (!atomic_load(&p.tid))
		usleep(50);
	uint32_t ptid = atomic_load(&p.tid);
	umcg_state_store(&t, UMCG_TASK_IDLE);
	make_running(&p.t);
	t.next_tid = ptid;
	CHECK_EQ(umcg_wait(0, 0), 0);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_RUNNING);
	CHECK_EQ(t.next_tid, ptid);
	CHECK_EQ(pthread_join(th, NULL), 0);
	t.next_tid = 0;
	unregister();
}
