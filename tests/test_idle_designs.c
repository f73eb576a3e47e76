/* SPDX-License-Identifier: MIT */
/*
 * test_idle_designs.c - lost-wakeup stress for the three idle-server
 * designs (v0.3 stack, eventfd, v0.4 tid word with chaining).
 *
 * Servers (registered UMCG servers) loop: take the whole idle-workers list,
 * "run" each entry (count it, hand the token back), and when there is
 * nothing, umcg_idle_group_wait() with no timeout. Appenders play the
 * kernel's wake point with dummy worker structs (tokens): append, seq_cst
umcg__wake_idle_server() (the exact code the wake point runs).
 * Each appender owns one token and waits until a server consumed it, so
 * servers keep racing to sleep while tokens are appended.
 *
 * A lost wake-up shows as: every server asleep while a token is queued.
 * A watchdog fails the test if that state persists for 500 ms (a server
 * that decided to sleep is asleep within microseconds). Counts are exact:
 * every append consumed exactly once.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "harness.h"
#include "kern/kern.h"
#include "util/util.h"
#include "umcg.h"
#include "umcg_idle.h"
#include "umcg_lists.h"

USER_BACKEND_ONLY("drives the emulation's wake-point code (umcg__wake_idle_server) with dummy "
		  "workers; the kernel's wake hook has test_sched, test_stress and kernel/tests")

#define NSERV 2
#define NAPP  2

struct token {
	struct umcg_task t; /* first: container_of is a cast */
	_Atomic int queued;
};

static struct umcg_idle_group grp;
static struct token tokens[NAPP];
static _Atomic long appended, consumed, sleeps;
static _Atomic int sleeping_servers, stop, appenders_done;
static long target;
static _Atomic uint32_t server_tids[NSERV];
static _Atomic int nserver_tids;

/* true if every server thread is blocked in the kernel (state S). */
static bool servers_blocked(void)
{
	for (int i = 0; i < NSERV; i++)
		if (!th_thread_sleeps(atomic_load(&server_tids[i])))
			return false;
	return true;
}

static void *server_main(void *arg)
{
	struct umcg_task me = {.state = UMCG_TASK_RUNNING, .api_version = 1};
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &me), 0);
	me.server_tid = umcg_gettid();
	server_tids[atomic_fetch_add(&nserver_tids, 1)] = me.server_tid;
	for (;;) {
		struct umcg_task *w = umcg_idle_workers_pop_all(&grp.idle_workers);
		int n = 0;
		while (w) {
			struct umcg_task *next = umcg_idle_workers_next(w, &grp.idle_workers);
			struct token *tk = (struct token *)w;
			CHECK_EQ(atomic_exchange(&tk->queued, 0), 1); /* exactly once */
			n++;
			w = next;
		}
		if (n) {
			atomic_fetch_add(&consumed, n);
			continue;
		}
		if (atomic_load(&stop))
			break;
		atomic_fetch_add(&sleeping_servers, 1);
		int r = umcg_idle_group_wait(&grp, &me, 0);
		atomic_fetch_sub(&sleeping_servers, 1);
		CHECK_EQ(r, 0);
		atomic_fetch_add(&sleeps, 1);
		CHECK_EQ(umcg_state_load(&me) & UMCG_TF_STATE_MASK, UMCG_TASK_RUNNING);
	}
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

static void *appender_main(void *arg)
{
	struct token *tk = &tokens[(long)arg];
	/* until the servers went through target sleep/wake cycles */
	while (atomic_load(&sleeps) < target) {
		atomic_fetch_add(&appended, 1);
		for (int spins = 0; atomic_load_explicit(&tk->queued, memory_order_acquire);)
			if (++spins > 16)
				sched_yield();
		atomic_store(&tk->queued, 1);
		umcg_idle_group_worker_init(&grp, &tk->t);
		/* what the wake point does after turning the worker IDLE: */
		umcg_idle_workers_push(&grp.idle_workers, &tk->t); /* seq_cst */
		umcg__wake_idle_server(&tk->t);
	}
	atomic_fetch_add(&appenders_done, 1);
	return NULL;
}

static void run_design(enum umcg_idle_design d, long n)
{
	target = n;
	CHECK_EQ(umcg_idle_group_init(&grp, d), 0);
	pthread_t s[NSERV], a[NAPP];
	for (long i = 0; i < NSERV; i++)
		CHECK_EQ(pthread_create(&s[i], NULL, server_main, NULL), 0);
	for (long i = 0; i < NAPP; i++)
		CHECK_EQ(pthread_create(&a[i], NULL, appender_main, (void *)i), 0);

	/*
	 * Watchdog: a lost wake-up is every server blocked in the kernel (state
	 * S in /proc, not merely inside umcg_idle_group_wait: a woken server may
	 * wait long for a CPU on a loaded machine) while work stays queued and
	 * nothing is consumed, for 2 s.
	 */
	uint64_t stuck_since = 0;
	long last_consumed = -1;
	for (;;) {
		long c = atomic_load(&consumed);
		if (atomic_load(&sleeps) >= target && atomic_load(&appenders_done) == NAPP &&
		    c == atomic_load(&appended))
			break;
		bool stuck = c == last_consumed && atomic_load(&sleeping_servers) == NSERV &&
			     !umcg_idle_workers_empty(&grp.idle_workers) && servers_blocked();
		last_consumed = c;
		uint64_t now = umcg_now_ns();
		if (!stuck)
			stuck_since = 0;
		else if (!stuck_since)
			stuck_since = now;
		else if (now - stuck_since > 2000000000ull)
			th_fail(__FILE__, __LINE__,
				"%s: lost wake-up: %d servers asleep, work queued for 2 s "
				"(appended %ld, consumed %ld; tid word %u, fd waiters %u)",
				umcg_idle_design_name(d), NSERV, atomic_load(&appended), c,
				__atomic_load_n(&grp.idle_server_tid, __ATOMIC_RELAXED),
				__atomic_load_n(&grp.idle_fd.waiters, __ATOMIC_RELAXED));
		usleep(1000);
	}
	for (int i = 0; i < NAPP; i++)
		pthread_join(a[i], NULL);
	atomic_store(&stop, 1);
	while (umcg_idle_group_wake_one(&grp) || atomic_load(&sleeping_servers))
		usleep(100);
	for (int i = 0; i < NSERV; i++)
		pthread_join(s[i], NULL);
	CHECK(atomic_load(&sleeps) >= target);
	CHECK_EQ(atomic_load(&consumed), atomic_load(&appended));
	CHECK(umcg_idle_workers_empty(&grp.idle_workers));
	printf("    %-8s %ld appends, %ld server sleeps (idle/wake cycles)\n",
	       umcg_idle_design_name(d), atomic_load(&appended), atomic_load(&sleeps));
	umcg_idle_group_destroy(&grp);
}

/*
 * 10^6 idle/wake cycles per design, in every build (the sanitizer builds
 * too: the count is the point of the test, UMCG_TEST_SCALE does not apply).
 */
TEST_T(stack_no_lost_wakeup, 600)
{
	run_design(UMCG_IDLE_STACK, 1000000);
}

TEST_T(eventfd_no_lost_wakeup, 600)
{
	run_design(UMCG_IDLE_EVENTFD, 1000000);
}

TEST_T(tid_word_no_lost_wakeup, 600)
{
	run_design(UMCG_IDLE_TID_WORD, 1000000);
}

/* The group's designs have the right ABI wiring. */
TEST(worker_init_wires_one_design)
{
	struct umcg_task w;
	memset(&w, 0xff, sizeof w);
	CHECK_EQ(umcg_idle_group_init(&grp, UMCG_IDLE_STACK), 0);
	umcg_idle_group_worker_init(&grp, &w);
	CHECK_EQ(w.idle_workers_ptr, (uintptr_t)&grp.idle_workers);
	CHECK_EQ(w.idle_servers_ptr, (uintptr_t)&grp.idle_servers);
	CHECK_EQ(w.idle_fd_ptr, 0);
	CHECK_EQ(w.idle_server_tid_ptr, 0);
	CHECK_EQ(umcg_idle_group_init(&grp, UMCG_IDLE_TID_WORD), 0);
	umcg_idle_group_worker_init(&grp, &w);
	CHECK_EQ(w.idle_servers_ptr, 0);
	CHECK_EQ(w.idle_server_tid_ptr, (uintptr_t)&grp.idle_server_tid);
	CHECK_EQ(umcg_idle_group_init(&grp, UMCG_IDLE_EVENTFD), 0);
	umcg_idle_group_worker_init(&grp, &w);
	CHECK_EQ(w.idle_fd_ptr, (uintptr_t)&grp.idle_fd);
	CHECK(grp.idle_fd.fd >= 0);
	umcg_idle_group_destroy(&grp);
	CHECK_ERR(umcg_idle_group_init(&grp, (enum umcg_idle_design)7), EINVAL);
	enum umcg_idle_design d;
	CHECK_EQ(umcg_idle_design_parse("tid", &d), 0);
	CHECK_EQ(d, UMCG_IDLE_TID_WORD);
	CHECK_ERR(umcg_idle_design_parse("futex", &d), EINVAL);
}

/* No system call on the waker's side when nobody sleeps (design goal). */
TEST(no_server_sleeping_means_no_wake)
{
	for (int d = 0; d < 3; d++) {
		CHECK_EQ(umcg_idle_group_init(&grp, (enum umcg_idle_design)d), 0);
		CHECK_EQ(umcg_idle_group_wake_one(&grp), 0);
		umcg_idle_group_destroy(&grp);
	}
}

/* ---- system calls on the waker's side (design goal: 0 / exactly 1) ---- */

static _Atomic int lone_server_ready, lone_server_woken;

static void *lone_server(void *arg)
{
	struct umcg_task me = {.state = UMCG_TASK_RUNNING, .api_version = 1};
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &me), 0);
	me.server_tid = umcg_gettid();
	server_tids[0] = me.server_tid;
	atomic_store(&lone_server_ready, 1);
	CHECK_EQ(umcg_idle_group_wait(&grp, &me, 0), 0);
	atomic_store(&lone_server_woken, 1);
	CHECK_EQ(umcg_state_load(&me) & UMCG_TF_STATE_MASK, UMCG_TASK_RUNNING);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

/* Append a dummy worker the way the wake point does; return syscalls made. */
static uint64_t append_and_count(struct token *tk)
{
	umcg_idle_group_worker_init(&grp, &tk->t);
	uint64_t before = umcg__stats_total(&umcg__stats);
	umcg_idle_workers_push(&grp.idle_workers, &tk->t);
	umcg__wake_idle_server(&tk->t);
	return umcg__stats_total(&umcg__stats) - before;
}

static bool lone_server_blocked(void)
{
	return th_thread_sleeps(atomic_load(&server_tids[0]));
}

TEST(waker_syscalls_zero_when_none_sleeps_one_when_one_does)
{
	for (int d = 0; d < 3; d++) {
		CHECK_EQ(umcg_idle_group_init(&grp, (enum umcg_idle_design)d), 0);
		/* nobody sleeps: no system call */
		CHECK_EQ(append_and_count(&tokens[0]), 0);
		CHECK(umcg_idle_workers_pop_all(&grp.idle_workers) == &tokens[0].t);
		/* one server sleeps: exactly one */
		atomic_store(&lone_server_ready, 0);
		atomic_store(&lone_server_woken, 0);
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, lone_server, NULL), 0);
		while (!atomic_load(&lone_server_ready) || !lone_server_blocked())
			usleep(1000);
		usleep(20000); /* blocked in its idle wait, not elsewhere */
		CHECK(lone_server_blocked());
		CHECK_EQ(append_and_count(&tokens[1]), 1);
		pthread_join(th, NULL);
		CHECK(atomic_load(&lone_server_woken));
		printf("    %-8s waker system calls: 0 with no sleeper, 1 with one\n",
		       umcg_idle_design_name((enum umcg_idle_design)d));
		umcg_idle_group_destroy(&grp);
	}
}
