/* SPDX-License-Identifier: MIT */
/* sched_util.c - the test scheduler toolkit of sched_util.h. */
#include "sched_util.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "umcg_lists.h"

#define ST_LOW(st) ((st)&UMCG_TF_STATE_MASK)

/*
 * The seq_cst fence of the idle protocol (context: push own node, fence,
 * re-check the idle-workers list). libumcg's push and empty() are seq_cst
 * operations themselves, which is what ThreadSanitizer sees; the fence keeps
 * this code correct without relying on that. gcc's -Wtsan rejects fences
 * under -fsanitize=thread, hence the pragma.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
static inline void full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic pop
#endif

size_t su_stack_size(void)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	return 512 * 1024; /* sanitizer runtimes use more stack */
#else
	return 64 * 1024;
#endif
}

void su_msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool su_wait_state(const struct umcg_task *t, uint32_t want, int timeout_ms)
{
	uint64_t deadline = umcg_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (umcg_state_load(t) != want) {
		if (umcg_now_ns() > deadline)
			return false;
		sched_yield();
	}
	return true;
}

struct su_worker *su_worker_alloc(void)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, sizeof(struct su_worker)))
		th_fail(__FILE__, __LINE__, "posix_memalign failed");
	memset(p, 0, sizeof(struct su_worker));
	return p;
}

/*
 * CAS the low state byte of t from IDLE to RUNNING, keeping flags and user
 * bits. false if it was not IDLE.
 */
static bool cas_idle_to_running(struct umcg_task *t)
{
	uint32_t st = umcg_state_load(t);
	while (ST_LOW(st) == UMCG_TASK_IDLE)
		if (umcg_state_cas(t, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING))
			return true;
	return false;
}

/* ---- worker side --------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct su_worker *w = arg;
	struct su_group *g = w->g;
	memset(&w->task, 0, sizeof w->task); /* no other mechanism, no stale words */
	w->task.state = UMCG_TASK_IDLE;
	w->task.api_version = UMCG_API_VERSION;
	w->task.idle_workers_ptr = (uint64_t)(uintptr_t)&g->iwl;
	w->task.idle_servers_ptr = g->no_isl ? 0 : (uint64_t)(uintptr_t)&g->isl;
	atomic_store(&w->tid, umcg_gettid());
	/* queued on g->iwl, returns once a server made us RUNNING */
	int r = umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &w->task);
	if (r != 0)
		th_fail(__FILE__, __LINE__, "worker %ld: register returned %d (errno %d)", w->id, r,
			errno);
	atomic_fetch_add(&g->registered, 1);
	if (!su_check_running(w))
		th_fail(__FILE__, __LINE__, "worker %ld: not running after register (state %#x)",
			w->id, umcg_state_load(&w->task));
	if (w->fn)
		w->fn(w);
	if (!w->exit_running)
		su_worker_finish(w);
	return NULL;
}

void su_worker_start(struct su_worker *w, struct su_group *g, su_payload_fn fn, void *arg)
{
	w->g = g;
	w->fn = fn;
	w->arg = arg;
	atomic_store(&w->tid, 0);
	atomic_store(&w->server, NULL);
	atomic_store(&w->done, NULL);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, su_stack_size());
	int e = pthread_create(&w->thread, &a, worker_main, w);
	pthread_attr_destroy(&a);
	if (e)
		th_fail(__FILE__, __LINE__, "pthread_create: %s", strerror(e));
}

void su_worker_join(struct su_worker *w)
{
	int e = pthread_join(w->thread, NULL);
	if (e)
		th_fail(__FILE__, __LINE__, "pthread_join: %s", strerror(e));
}

uint32_t su_worker_tid(struct su_worker *w)
{
	uint32_t tid;
	while (!(tid = atomic_load(&w->tid)))
		sched_yield();
	return tid;
}

void su_worker_finish(struct su_worker *w)
{
	struct su_server *s = atomic_load(&w->server);
	/*
	 * LOCKED: nothing below is block/wake detected. A CAS from RUNNING:
	 * detection may have left us BLOCKED in its window (bench_common.c,
	 * bench_worker_finish); the switch-in alarm parks us, then we run.
	 */
	uint32_t st = umcg_state_load(&w->task);
	for (;;) {
		if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING) {
			sched_yield(); /* BLOCKED: the alarm parks us, a server runs us */
			st = umcg_state_load(&w->task);
		} else if (umcg_state_cas(&w->task, &st, UMCG_TASK_RUNNING | UMCG_TF_LOCKED)) {
			break; /* (flags and user bits cleared, as the store did) */
		}
	}
	atomic_store(&w->done, s);
	/* our server is IDLE in su_run(), waiting for us */
	if (!cas_idle_to_running(&s->task))
		th_fail(__FILE__, __LINE__, "worker %ld finishing: server state %#x, not IDLE",
			w->id, umcg_state_load(&s->task));
	w->task.next_tid = s->tid;
	/*
	 * Once its state is RUNNING the server may return before this wake
	 * (any earlier wake-up of it re-checks the state) and even unregister:
	 * ESRCH is then fine.
	 */
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) != 0 && errno != ESRCH)
		th_fail(__FILE__, __LINE__, "worker %ld: wake server: errno %d", w->id, errno);
	w->task.next_tid = 0;
	/*
	 * Counted only now: whoever sees every worker finished knows that no
	 * server is still IDLE in su_run() waiting for one of them.
	 */
	atomic_fetch_add(&w->g->finished, 1);
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL) != 0)
		th_fail(__FILE__, __LINE__, "worker %ld: unregister: errno %d", w->id, errno);
	if (umcg_self() != NULL)
		th_fail(__FILE__, __LINE__, "worker %ld: still registered", w->id);
}

bool su_running_ok(struct su_worker *w)
{
	/*
	 * LOCKED for the check: with transparent block detection a worker can
	 * be taken at any sleep, a page fault in the middle of this check
	 * included (seen under ASan), which would tear the picture.
	 */
	uint32_t st = UMCG_TASK_RUNNING;
	bool locked = umcg_state_cas(&w->task, &st, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	struct su_server *s = atomic_load(&w->server);
	bool ok = locked && s && __atomic_load_n(&w->task.server_tid, __ATOMIC_RELAXED) == s->tid &&
		  ST_LOW(umcg_state_load(&s->task)) == UMCG_TASK_IDLE &&
		  atomic_load(&s->current) == w;
	if (locked)
		umcg_state_store(&w->task, UMCG_TASK_RUNNING);
	return ok;
}

bool su_check_running(struct su_worker *w)
{
	bool ok = su_running_ok(w);
	if (!ok)
		atomic_fetch_add(&w->g->bad_state, 1);
	return ok;
}

int su_yield(struct su_worker *w, uint64_t abs_timeout)
{
	struct su_server *s = atomic_load(&w->server);
	umcg_state_store(&w->task, UMCG_TASK_IDLE);
	if (!cas_idle_to_running(&s->task))
		th_fail(__FILE__, __LINE__, "worker %ld yield: server state %#x, not IDLE", w->id,
			umcg_state_load(&s->task));
	/* next_tid 0: umcg_wait wakes our server_tid, then sleeps until RUNNING */
	return umcg_wait(0, abs_timeout);
}

void su_switch_to(struct su_worker *w, struct su_worker *to)
{
	struct su_server *s = atomic_load(&w->server);
	uint32_t exp = UMCG_TASK_IDLE;
	/* to: IDLE -> RUNNING|LOCKED while we wire it up */
	if (!umcg_state_cas(&to->task, &exp, UMCG_TASK_RUNNING | UMCG_TF_LOCKED))
		th_fail(__FILE__, __LINE__, "switch %ld -> %ld: target state %#x, not IDLE", w->id,
			to->id, exp);
	/* self: RUNNING -> IDLE|LOCKED (umcg_wait clears LOCKED before sleeping) */
	umcg_state_store(&w->task, UMCG_TASK_IDLE | UMCG_TF_LOCKED);
	atomic_store(&to->server, s);
	if (s)
		atomic_store(&s->current, to);
	__atomic_store_n(&to->task.server_tid, w->task.server_tid, __ATOMIC_RELAXED);
	w->task.next_tid = su_worker_tid(to);
	umcg_state_store(&to->task, UMCG_TASK_RUNNING); /* unlock */
	int r = umcg_wait(0, 0);
	w->task.next_tid = 0;
	if (r != 0)
		th_fail(__FILE__, __LINE__, "switch %ld -> %ld: umcg_wait errno %d", w->id, to->id,
			errno);
}

/* ---- server side --------------------------------------------------------- */

void su_server_register(struct su_server *s, struct su_group *g)
{
	memset(&s->task, 0, sizeof s->task);
	s->task.state = UMCG_TASK_RUNNING;
	s->task.api_version = UMCG_API_VERSION;
	s->g = g;
	atomic_store(&s->current, NULL);
	if (umcg_ctl(UMCG_CTL_REGISTER, &s->task) != 0)
		th_fail(__FILE__, __LINE__, "server register: errno %d", errno);
	s->tid = umcg_gettid();
	/* so that a wake point that pops us from the idle-servers stack can wake us */
	__atomic_store_n(&s->task.server_tid, s->tid, __ATOMIC_RELEASE);
}

void su_server_unregister(struct su_server *s)
{
	if (umcg_ctl(UMCG_CTL_UNREGISTER, NULL) != 0)
		th_fail(__FILE__, __LINE__, "server unregister: errno %d", errno);
}

int su_pop_all_fifo(struct su_group *g, struct su_worker **out, int max)
{
	int n = 0;
	for (struct umcg_task *t = umcg_idle_workers_pop_all(&g->iwl); t;) {
		if (n == max)
			th_fail(__FILE__, __LINE__, "more than %d workers queued", max);
		out[n++] = su_worker_of(t);
		t = umcg_idle_workers_next(t, &g->iwl); /* re-points t's word to the head */
	}
	/* the list is LIFO: reverse for FIFO order */
	for (int i = 0, j = n - 1; i < j; i++, j--) {
		struct su_worker *x = out[i];
		out[i] = out[j];
		out[j] = x;
	}
	return n;
}

struct su_worker *su_poll_one(struct su_group *g, int timeout_ms)
{
	uint64_t deadline = umcg_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct umcg_task *t;
	while (!(t = umcg_idle_workers_pop_all(&g->iwl))) {
		if (umcg_now_ns() > deadline)
			return NULL;
		sched_yield();
	}
	if (umcg_idle_workers_next(t, &g->iwl) != NULL)
		th_fail(__FILE__, __LINE__, "expected exactly one queued worker");
	return su_worker_of(t);
}

uint32_t su_run_until(struct su_server *s, struct su_worker *w, uint64_t abs_timeout, int *err)
{
	uint32_t st = umcg_state_load(&s->task);
	if (st != UMCG_TASK_RUNNING)
		th_fail(__FILE__, __LINE__, "su_run: server state %#x, not RUNNING", st);
	uint32_t wtid = su_worker_tid(w);
	atomic_store(&w->server, s);
	atomic_store(&s->current, w);
	__atomic_store_n(&w->task.server_tid, s->tid, __ATOMIC_RELAXED);
	/*
	 * Ourselves IDLE before the worker can run: a worker that blocks at
	 * once must find us IDLE, or its wake-up of us would be lost.
	 */
	umcg_state_store(&s->task, UMCG_TASK_IDLE);
	/* a worker popped after its deadline passed carries UMCG_TF_TIMEDOUT: ours to run */
	uint32_t exp = umcg_state_load(&w->task);
	if (exp != (UMCG_TASK_IDLE | UMCG_TF_TIMEDOUT))
		exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&w->task, &exp, UMCG_TASK_RUNNING))
		th_fail(__FILE__, __LINE__, "su_run: worker %ld state %#x, not IDLE", w->id, exp);
	s->task.next_tid = wtid;
	int r = umcg_wait(0, abs_timeout);
	int e = errno;
	s->task.next_tid = 0;
	if (r && e == ESRCH) {
		/*
		 * w saw RUNNING before it slept, ran, finished and unregistered
		 * before our umcg_wait() looked its tid up; it made us RUNNING
		 * first, so waiting without a next_tid returns at once.
		 */
		r = umcg_wait(0, abs_timeout);
		e = errno;
	}
	atomic_store(&s->current, NULL);
	atomic_fetch_add(&s->g->runs, 1);
	if (err)
		*err = r ? e : 0;
	else if (r)
		th_fail(__FILE__, __LINE__, "su_run: umcg_wait errno %d", e);
	st = umcg_state_load(&s->task);
	if (st != UMCG_TASK_RUNNING)
		th_fail(__FILE__, __LINE__, "su_run: server state %#x after wait", st);
	return umcg_state_load(&w->task);
}

enum su_idle_result su_server_idle(struct su_server *s, uint64_t abs_timeout)
{
	struct su_group *g = s->g;
	enum su_idle_result res;
	umcg_state_store(&s->task, UMCG_TASK_IDLE);
	umcg_idle_servers_push(&g->isl, &s->task);
	/* Dekker with the wake point's push-fence-pop: see umcg_lists.h */
	full_fence();
	if (!umcg_idle_workers_empty(&g->iwl) || atomic_load(&g->stop)) {
		if (umcg_idle_servers_remove(&s->task)) {
			/* nobody popped us; someone may still have set us RUNNING (kick) */
			cas_idle_to_running(&s->task);
			res = SU_IDLE_RECHECK;
		} else {
			/* a wake point popped us: it makes us RUNNING and wakes us */
			if (umcg_wait(0, 0) != 0)
				th_fail(__FILE__, __LINE__, "idle: umcg_wait errno %d", errno);
			res = SU_IDLE_POPPED;
		}
	} else if (umcg_wait(0, abs_timeout) == 0) {
		if (umcg_idle_servers_is_deleted(&s->task))
			res = SU_IDLE_POPPED;
		else if (umcg_idle_servers_remove(&s->task))
			res = SU_IDLE_WOKEN;
		else
			res = SU_IDLE_POPPED; /* popped after another waker made us RUNNING */
	} else {
		if (errno != ETIMEDOUT)
			th_fail(__FILE__, __LINE__, "idle: umcg_wait errno %d", errno);
		/* the library made us RUNNING again; a popper that marks us now finds
		 * us RUNNING and does not wake us (we drain the list anyway) */
		res = umcg_idle_servers_remove(&s->task) ? SU_IDLE_TIMEOUT : SU_IDLE_POPPED;
	}
	uint32_t st = umcg_state_load(&s->task);
	if (st != UMCG_TASK_RUNNING)
		th_fail(__FILE__, __LINE__, "idle: server state %#x on return", st);
	/* our node is marked: unlink it (and any other) before it is pushed again */
	umcg_idle_servers_gc(&g->isl, NULL, NULL);
	switch (res) {
	case SU_IDLE_RECHECK:
		atomic_fetch_add(&g->idle_recheck, 1);
		break;
	case SU_IDLE_POPPED:
		atomic_fetch_add(&g->idle_popped, 1);
		break;
	case SU_IDLE_WOKEN:
		atomic_fetch_add(&g->idle_woken, 1);
		break;
	case SU_IDLE_TIMEOUT:
		atomic_fetch_add(&g->idle_timeout, 1);
		break;
	}
	return res;
}

void su_wake_only(struct su_server *s, struct su_worker *w)
{
	__atomic_store_n(&w->task.server_tid, 0, __ATOMIC_RELAXED); /* no server: T9 */
	atomic_store(&w->server, NULL);
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&w->task, &exp, UMCG_TASK_RUNNING))
		th_fail(__FILE__, __LINE__, "wake_only: worker %ld state %#x, not IDLE", w->id,
			exp);
	s->task.next_tid = su_worker_tid(w);
	int r = umcg_wait(UMCG_WAIT_WAKE_ONLY, 0);
	s->task.next_tid = 0;
	if (r != 0)
		th_fail(__FILE__, __LINE__, "wake_only: errno %d", errno);
}

bool su_server_kick(struct umcg_task *self, struct su_server *target)
{
	if (!cas_idle_to_running(&target->task))
		return false;
	self->next_tid = target->tid;
	int r = umcg_wait(UMCG_WAIT_WAKE_ONLY, 0);
	self->next_tid = 0;
	if (r != 0 && errno != ESRCH)
		th_fail(__FILE__, __LINE__, "kick: errno %d", errno);
	return true;
}
