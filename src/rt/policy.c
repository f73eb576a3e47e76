/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the shipped policies: one global FIFO queue ("fifo"), and a
 * FIFO queue per server with work stealing ("steal").
 *
 * Both keep workers in singly linked queues through umcg_rt_link.next,
 * each queue under its own spin lock (rt__spin_lock: acquire/release
 * hand the queue from holder to holder; holders never sleep). A worker
 * is in at most one queue: the runtime hands it to enqueue() only when it
 * is in none, and takes it back only through pick_next()/steal().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt/rt.h"

struct rt_queue {
	_Atomic uint32_t lock;
	struct umcg_rt_link *head, *tail;
	_Atomic long len;
} __attribute__((aligned(64)));

static void q_push(struct rt_queue *q, struct umcg_rt_link *l)
{
	l->next = NULL;
	rt__spin_lock(&q->lock);
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	rt__spin_unlock(&q->lock);
}

static struct umcg_rt_worker *q_pop(struct rt_queue *q)
{
	/* a relaxed peek saves the lock on empty queues; the runtime retries
	 * while nr_queued says work exists, so a stale 0 is harmless */
	if (!atomic_load_explicit(&q->len, memory_order_relaxed))
		return NULL;
	rt__spin_lock(&q->lock);
	struct umcg_rt_link *l = q->head;
	if (l) {
		q->head = l->next;
		if (!q->head)
			q->tail = NULL;
		l->next = NULL;
		atomic_store_explicit(&q->len,
				      atomic_load_explicit(&q->len, memory_order_relaxed) - 1,
				      memory_order_relaxed);
	}
	rt__spin_unlock(&q->lock);
	return l ? umcg_rt_worker_of(l) : NULL;
}

/* ---- fifo ------------------------------------------------------------------ */

static void *fifo_init(int nr_servers)
{
	struct rt_queue *q = aligned_alloc(64, sizeof *q);
	if (q)
		memset(q, 0, sizeof *q);
	else
		errno = ENOMEM;
	return q;
}

static void fifo_fini(void *pd)
{
	free(pd);
}

static void fifo_enqueue(void *pd, int server, struct umcg_rt_worker *w, unsigned flags)
{
	q_push(pd, umcg_rt_link_of(w));
}

static struct umcg_rt_worker *fifo_pick(void *pd, int server)
{
	return q_pop(pd);
}

UMCG_RT_EXPORT const struct umcg_rt_policy umcg_rt_policy_fifo = {
    .name = "fifo",
    .init = fifo_init,
    .fini = fifo_fini,
    .enqueue = fifo_enqueue,
    .pick_next = fifo_pick,
};

/* ---- per-server queues with stealing ------------------------------------------ */

struct steal {
	int n;
	_Atomic unsigned rr; /* enqueues from outside a server: round robin */
	struct rt_queue q[];
};

static void *steal_init(int nr_servers)
{
	size_t sz = sizeof(struct steal) + sizeof(struct rt_queue) * (size_t)nr_servers;
	struct steal *st = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	if (!st) {
		errno = ENOMEM;
		return NULL;
	}
	memset(st, 0, sz);
	st->n = nr_servers;
	return st;
}

static void steal_enqueue(void *pd, int server, struct umcg_rt_worker *w, unsigned flags)
{
	struct steal *st = pd;
	if (server < 0 || server >= st->n)
		server = (int)(atomic_fetch_add_explicit(&st->rr, 1, memory_order_relaxed) %
			       (unsigned)st->n);
	umcg_rt_link_of(w)->server = server;
	q_push(&st->q[server], umcg_rt_link_of(w));
}

static struct umcg_rt_worker *steal_pick(void *pd, int server)
{
	struct steal *st = pd;
	return q_pop(&st->q[server]);
}

static struct umcg_rt_worker *steal_steal(void *pd, int server)
{
	struct steal *st = pd;
	for (int i = 1; i < st->n; i++) {
		struct umcg_rt_worker *w = q_pop(&st->q[(server + i) % st->n]);
		if (w)
			return w;
	}
	return NULL;
}

UMCG_RT_EXPORT const struct umcg_rt_policy umcg_rt_policy_steal = {
    .name = "steal",
    .init = steal_init,
    .fini = fifo_fini,
    .enqueue = steal_enqueue,
    .pick_next = steal_pick,
    .steal = steal_steal,
};

UMCG_RT_EXPORT const struct umcg_rt_policy *umcg_rt_policy_by_name(const char *name)
{
	if (name && !strcmp(name, "fifo"))
		return &umcg_rt_policy_fifo;
	if (name && !strcmp(name, "steal"))
		return &umcg_rt_policy_steal;
	errno = EINVAL;
	return NULL;
}
