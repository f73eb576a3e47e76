/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kts.h - a minimal user-space scheduler on the raw v0.3 calls, for the
 * in-guest tests: a group (idle-workers head, idle-servers head), worker
 * threads, and the server-side steps (drain the idle workers, run one,
 * wait on the idle-servers stack). Single-server helpers unless noted.
 */
#ifndef KTS_H
#define KTS_H

#include "kt.h"

struct group {
	uint64_t idle_workers; /* kernel pushes, we pop all */
	uint64_t idle_servers; /* we push, the kernel pops by marking */
};

struct worker {
	struct umcg_task t; /* first: 64-byte aligned */
	struct group *g;
	uint32_t tid;
	_Atomic int phase;
	_Atomic int done;
	_Atomic int yielded; /* set by worker_yield, cleared by run */
	void (*fn)(struct worker *);
	void *arg;
	pthread_t th;
	long reg_ret;
};

static __thread struct umcg_task *kts_self; /* this thread's struct */

/* ---- server side ------------------------------------------------------ */

static inline void server_register(struct umcg_task *s, struct group *g)
{
	memset(s, 0, sizeof *s);
	s->state = UMCG_TASK_RUNNING;
	s->api_version = UMCG_API_VERSION;
	CHECK(umcg_ctl(UMCG_CTL_REGISTER, s) == 0);
	s->server_tid = kt_tid(); /* own tid, for the idle-servers pop */
	(void)g;
	kts_self = s;
}

/* Take every queued worker (LIFO order), restore their head pointers. */
static inline int drain(struct group *g, struct worker **out, int max)
{
	uint64_t node = __atomic_exchange_n(&g->idle_workers, 0, __ATOMIC_ACQ_REL);
	int n = 0;
	while (node) {
		struct umcg_task *t =
		    (struct umcg_task *)(uintptr_t)(node -
						    offsetof(struct umcg_task, idle_workers_ptr));
		uint64_t next = __atomic_load_n((uint64_t *)(uintptr_t)node, __ATOMIC_ACQUIRE);
		__atomic_store_n((uint64_t *)(uintptr_t)node, (uint64_t)(uintptr_t)&g->idle_workers,
				 __ATOMIC_RELEASE);
		CHECK(n < max);
		out[n++] = (struct worker *)t;
		node = next;
	}
	return n;
}

/* Wait until one worker is queued and take it (spinning, yielding). */
static inline struct worker *take_one(struct group *g, int ms)
{
	struct worker *w[64];
	WAIT_FOR(__atomic_load_n(&g->idle_workers, __ATOMIC_ACQUIRE) != 0, ms);
	int n = drain(g, w, 64);
	CHECK(n == 1);
	return w[0];
}

/*
 * Run worker w until it blocks, yields or finishes: the server goes IDLE,
 * the worker RUNNING with us as its server, and one sys_umcg_wait()
 * switches. Returns the worker's state word afterwards.
 */
static inline uint32_t run(struct umcg_task *s, struct worker *w)
{
	CHECK((kt_load(&w->t.state) & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
	kt_store(&s->state, UMCG_TASK_IDLE);
	atomic_store(&w->yielded, 0);
	w->t.server_tid = kt_tid();
	kt_store(&w->t.state, UMCG_TASK_RUNNING);
	s->next_tid = w->tid;
	while (umcg_wait(0, 0)) {
		CHECK(errno == EINTR);
		s->next_tid = 0;
	}
	s->next_tid = 0;
	CHECK(kt_load(&s->state) == UMCG_TASK_RUNNING);
	return kt_load(&w->t.state);
}

/*
 * Sleep on the idle-servers stack until a worker wakes us (T7/T8) or one
 * is already queued (the Dekker re-check). One server per group only: the
 * stack holds at most our node, so "GC" is resetting the head.
 */
static inline void server_idle_wait(struct umcg_task *s, struct group *g)
{
	uint64_t *node = &s->idle_servers_ptr;
	kt_store(&s->state, UMCG_TASK_IDLE);
	__atomic_store_n(node, 0, __ATOMIC_RELAXED);
	uint64_t exp = 0;
	CHECK(__atomic_compare_exchange_n(&g->idle_servers, &exp, (uint64_t)(uintptr_t)node, false,
					  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	/* seq_cst push, then re-check: pairs with the kernel's push + smp_mb + pop */
	if (__atomic_load_n(&g->idle_workers, __ATOMIC_SEQ_CST)) {
		uint64_t v = 0;
		if (__atomic_compare_exchange_n(node, &v, UMCG_IDLE_NODE_DELETED, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			kt_store(&s->state, UMCG_TASK_RUNNING); /* removed ourselves */
	}
	while (umcg_wait(0, 0))
		CHECK(errno == EINTR);
	CHECK(kt_load(&s->state) == UMCG_TASK_RUNNING);
	CHECK(__atomic_load_n(node, __ATOMIC_ACQUIRE) & UMCG_IDLE_NODE_DELETED);
	exp = (uint64_t)(uintptr_t)node;
	CHECK(__atomic_compare_exchange_n(&g->idle_servers, &exp, 0, false, __ATOMIC_SEQ_CST,
					  __ATOMIC_SEQ_CST));
}

/* ---- worker side ------------------------------------------------------ */

/* Give the CPU back to the server (T3 + wake server): "park". */
static inline void worker_yield(struct worker *w)
{
	/* IDLE|LOCKED: a sleep before the wait (page fault) is not a block */
	atomic_store(&w->yielded, 1);
	kt_store(&w->t.state, UMCG_TASK_IDLE | UMCG_TF_LOCKED);
	/* our server is IDLE in its wait: make it RUNNING, the kernel wakes it */
	uint32_t exp = UMCG_TASK_IDLE;
	struct umcg_task *st = (struct umcg_task *)(uintptr_t)w->arg;
	CHECK(__atomic_compare_exchange_n(&st->state, &exp, UMCG_TASK_RUNNING, false,
					  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	while (umcg_wait(0, 0))
		CHECK(errno == EINTR);
	CHECK(kt_load(&w->t.state) == UMCG_TASK_RUNNING);
}

/* Leave: lock ourselves, hand the CPU back to the server, unregister. */
static void worker_finish(struct worker *w)
{
	struct umcg_task *st = (struct umcg_task *)(uintptr_t)w->arg;
	kt_store(&w->t.state, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	atomic_store(&w->done, 1);
	uint32_t exp = UMCG_TASK_IDLE;
	CHECK(__atomic_compare_exchange_n(&st->state, &exp, UMCG_TASK_RUNNING, false,
					  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	w->t.next_tid = w->t.server_tid;
	CHECK(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0) == 0);
	CHECK(umcg_ctl(UMCG_CTL_UNREGISTER, NULL) == 0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->tid = kt_tid();
	memset(&w->t, 0, sizeof w->t);
	w->t.state = UMCG_TASK_IDLE;
	w->t.api_version = UMCG_API_VERSION;
	w->t.idle_workers_ptr = (uint64_t)(uintptr_t)&w->g->idle_workers;
	w->t.idle_servers_ptr = (uint64_t)(uintptr_t)&w->g->idle_servers;
	w->reg_ret = umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &w->t);
	CHECK(w->reg_ret == 0);
	CHECK(kt_load(&w->t.state) == UMCG_TASK_RUNNING);
	kts_self = &w->t;
	w->fn(w);
	worker_finish(w);
	return NULL;
}

/* Start a worker thread whose server struct is s (w->arg). */
static inline void worker_start(struct worker *w, struct group *g, struct umcg_task *s,
				void (*fn)(struct worker *))
{
	memset(w, 0, sizeof *w);
	w->g = g;
	w->fn = fn;
	w->arg = s;
	CHECK(pthread_create(&w->th, NULL, worker_main, w) == 0);
}

/* Run w (already taken from the list) until it finishes. */
static inline void run_to_end(struct umcg_task *s, struct group *g, struct worker *w)
{
	for (;;) {
		uint32_t st = run(s, w);
		if (atomic_load(&w->done))
			break;
		if (!atomic_load(&w->yielded))
			w = take_one(g, 10000); /* blocked: it comes back through the idle list */
		else
			CHECK((st & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
	}
	pthread_join(w->th, NULL);
}

#endif /* KTS_H */
