/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the shipped policies: one global FIFO queue ("fifo"), a FIFO
 * queue per server with work stealing ("steal"), and strict priorities
 * with time-slice preemption ("prio").
 *
 * All three keep workers in singly linked FIFOs (struct rt_list) through
 * umcg_rt_link.next, each under a spin lock (one per queue; prio: one for
 * all its levels; rt__spin_lock: acquire/release hand the queue from
 * holder to holder; holders never sleep). A worker is in at most one
 * queue: the runtime hands it to enqueue() only when it is in none, and
 * takes it back only through pick_next()/steal().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rt/rt.h"

/* A FIFO of links; no lock of its own: the caller holds the lock that guards it. */
struct rt_list {
	struct umcg_rt_link *head, *tail;
};

static void list_append(struct rt_list *q, struct umcg_rt_link *l)
{
	l->next = NULL;
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
}

/* The oldest link, taken off; NULL if q is empty. */
static struct umcg_rt_link *list_take(struct rt_list *q)
{
	struct umcg_rt_link *l = q->head;
	if (l) {
		q->head = l->next;
		if (!q->head)
			q->tail = NULL;
		l->next = NULL;
	}
	return l;
}

struct rt_queue {
	_Atomic uint32_t lock;
	struct rt_list list;
	_Atomic long len;
} __attribute__((aligned(64)));

static void q_push(struct rt_queue *q, struct umcg_rt_link *l)
{
	rt__spin_lock(&q->lock);
	list_append(&q->list, l);
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
	struct umcg_rt_link *l = list_take(&q->list);
	if (l)
		atomic_store_explicit(&q->len,
				      atomic_load_explicit(&q->len, memory_order_relaxed) - 1,
				      memory_order_relaxed);
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

/* ---- strict priorities ----------------------------------------------------------------
 *
 * One global lock, a FIFO per level (0..7, 7 first) and a mask of the
 * non-empty levels. The mask is read without the lock by pick (a stale 0
 * is harmless: the runtime retries while nr_queued says work exists) and
 * by tick on the timer thread (a stale value makes one spurious or one
 * late preemption).
 */
enum { PRIO_LEVELS = 8 };

struct prio {
	_Atomic uint32_t lock;
	_Atomic uint32_t mask;
	struct rt_list q[PRIO_LEVELS];
};

static int prio_level(int p)
{
	return p < 0 ? 0 : p >= PRIO_LEVELS ? PRIO_LEVELS - 1 : p;
}

static void *prio_init(int nr_servers)
{
	struct prio *p = calloc(1, sizeof *p);
	if (!p)
		errno = ENOMEM;
	return p;
}

static void prio_enqueue(void *pd, int server, struct umcg_rt_worker *w, unsigned flags)
{
	struct prio *p = pd;
	int lvl = prio_level(umcg_rt_worker_priority(w));
	rt__spin_lock(&p->lock);
	list_append(&p->q[lvl], umcg_rt_link_of(w));
	atomic_fetch_or_explicit(&p->mask, 1u << lvl, memory_order_relaxed);
	rt__spin_unlock(&p->lock);
}

static struct umcg_rt_worker *prio_pick(void *pd, int server)
{
	struct prio *p = pd;
	if (!atomic_load_explicit(&p->mask, memory_order_relaxed))
		return NULL;
	rt__spin_lock(&p->lock);
	struct umcg_rt_link *l = NULL;
	uint32_t m = atomic_load_explicit(&p->mask, memory_order_relaxed);
	if (m) {
		int lvl = 31 - __builtin_clz(m);
		l = list_take(&p->q[lvl]); /* not NULL: the mask says which levels hold links */
		if (!p->q[lvl].head)
			atomic_fetch_and_explicit(&p->mask, ~(1u << lvl), memory_order_relaxed);
	}
	rt__spin_unlock(&p->lock);
	return l ? umcg_rt_worker_of(l) : NULL;
}

static int prio_tick(void *pd, int server, int running_prio, uint64_t ran_ns, uint64_t slice_ns)
{
	struct prio *p = pd;
	uint32_t m = atomic_load_explicit(&p->mask, memory_order_relaxed);
	if (!m)
		return 0;
	int top = 31 - __builtin_clz(m), lvl = prio_level(running_prio);
	return top > lvl || (top == lvl && ran_ns >= slice_ns);
}

UMCG_RT_EXPORT const struct umcg_rt_policy umcg_rt_policy_prio = {
    .name = "prio",
    .init = prio_init,
    .fini = fifo_fini,
    .enqueue = prio_enqueue,
    .pick_next = prio_pick,
    .tick = prio_tick,
};

UMCG_RT_EXPORT const struct umcg_rt_policy *umcg_rt_policy_by_name(const char *name)
{
	if (name && !strcmp(name, "fifo"))
		return &umcg_rt_policy_fifo;
	if (name && !strcmp(name, "steal"))
		return &umcg_rt_policy_steal;
	if (name && !strcmp(name, "prio"))
		return &umcg_rt_policy_prio;
	errno = EINVAL;
	return NULL;
}
