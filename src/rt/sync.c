/* SPDX-License-Identifier: MIT */
/*
 * sync.c - mutex, condition variable, semaphore and wait group that park
 * waiting workers in the runtime.
 *
 * Waiting. Every object has a wait queue (struct umcg_rt_waitq: a spin
 * lock and a FIFO of waiters). A waiter is a struct rt_waiter on the
 * waiting thread's stack: it queues itself under the queue's lock, and
 * then waits until its `granted` word is 1:
 *   - a worker parks (rt__park_thread: its server runs the next worker at
 *     once; park returns may be spurious, hence the loop on granted);
 *   - any other thread sleeps in FUTEX_WAIT on `granted`.
 * The waker unlinks the waiter under the queue's lock, reads what it needs
 * from it (the thread), stores granted = 1 (release: pairs with the
 * waiter's acquire load; everything the waker did before is visible to the
 * waiter), and only then unparks the thread (a worker's rt_thread lives
 * until the runtime ends) or FUTEX_WAKEs the word (a futex wake on a word
 * whose frame has been left is harmless: it wakes nobody). After the
 * store the waker never touches the waiter again.
 *
 * Fast paths are a single atomic RMW on the object's word: no system call,
 * no queue lock, when nobody waits.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt/rt.h"

struct rt_waiter {
	struct rt_waiter *next;
	struct rt_thread *th; /* NULL: not a worker, sleeps on the futex */
	_Atomic uint32_t granted;
};

static void waiter_init(struct rt_waiter *wt)
{
	wt->next = NULL;
	wt->th = rt__self_thread;
	atomic_init(&wt->granted, 0);
}

/* queue lock held */
static void wq_append(struct umcg_rt_waitq *q, struct rt_waiter *wt)
{
	struct rt_waiter *tail = q->tail;
	if (tail)
		tail->next = wt;
	else
		q->head = wt;
	q->tail = wt;
}

/* queue lock held */
static struct rt_waiter *wq_pop(struct umcg_rt_waitq *q)
{
	struct rt_waiter *wt = q->head;
	if (wt) {
		q->head = wt->next;
		if (!q->head)
			q->tail = NULL;
	}
	return wt;
}

/* queue lock held: take the whole queue */
static struct rt_waiter *wq_take_all(struct umcg_rt_waitq *q)
{
	struct rt_waiter *wt = q->head;
	q->head = q->tail = NULL;
	return wt;
}

static void waiter_wait(struct rt_waiter *wt)
{
	while (!atomic_load_explicit(&wt->granted, memory_order_acquire)) {
		if (wt->th)
			rt__park_thread(wt->th);
		else
			syscall(SYS_futex, &wt->granted, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL,
				NULL, 0);
	}
}

/* Grant (outside the queue lock); wt may be gone once granted is stored. */
static void waiter_grant(struct rt_waiter *wt)
{
	struct rt_thread *th = wt->th;
	atomic_store_explicit(&wt->granted, 1, memory_order_release);
	if (th)
		rt__unpark_thread(th);
	else
		syscall(SYS_futex, &wt->granted, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

/* Grant the first waiter of q, if any: taken off under the queue lock, granted after it. */
static void wq_wake_one(struct umcg_rt_waitq *q)
{
	rt__spin_lock(&q->lock);
	struct rt_waiter *wt = wq_pop(q);
	rt__spin_unlock(&q->lock);
	if (wt)
		waiter_grant(wt);
}

/* Grant every waiter of q: all taken off under the queue lock, granted after it. */
static void wq_wake_all(struct umcg_rt_waitq *q)
{
	rt__spin_lock(&q->lock);
	struct rt_waiter *wt = wq_take_all(q);
	rt__spin_unlock(&q->lock);
	while (wt) {
		struct rt_waiter *next = wt->next; /* before the grant */
		waiter_grant(wt);
		wt = next;
	}
}

/* ---- mutex ---------------------------------------------------------------------
 *
 * state: 0 free, 1 locked, 2 locked and maybe waiters (Drepper's futex
 * mutex, with the wait queue in place of the futex).
 * lock:   CAS 0 -> 1 (acquire), done. Else, under the queue lock:
 *         exchange(state, 2); if it was 0 we own the lock; otherwise
 *         queue ourselves, drop the queue lock, wait, retry.
 * unlock: exchange(state, 0) (release); if it was 2, pop one waiter under
 *         the queue lock and grant it (it retries; barging is allowed).
 * No lost wake-up: a waiter's exchange to 2 and its append happen under
 * the queue lock. If the unlocker's exchange reads that 2 (acq_rel RMWs
 * on one word: it synchronises with the waiter's), its later queue-lock
 * acquisition follows the waiter's release of the queue lock, so the
 * waiter is in the queue. If the unlocker's exchange came first, the
 * waiter's exchange reads 0 and it owns the lock.
 */

UMCG_RT_EXPORT void umcg_rt_mutex_init(struct umcg_rt_mutex *m)
{
	memset(m, 0, sizeof *m);
}

UMCG_RT_EXPORT int umcg_rt_mutex_trylock(struct umcg_rt_mutex *m)
{
	uint32_t v = 0;
	if (atomic_compare_exchange_strong_explicit(&m->state, &v, 1, memory_order_acquire,
						    memory_order_relaxed))
		return 0;
	errno = EBUSY;
	return -1;
}

UMCG_RT_EXPORT int umcg_rt_mutex_lock(struct umcg_rt_mutex *m)
{
	uint32_t v = 0;
	if (atomic_compare_exchange_strong_explicit(&m->state, &v, 1, memory_order_acquire,
						    memory_order_relaxed))
		return 0;
	for (;;) {
		struct rt_waiter wt;
		waiter_init(&wt);
		rt__spin_lock(&m->q.lock);
		if (atomic_exchange_explicit(&m->state, 2, memory_order_acq_rel) == 0) {
			rt__spin_unlock(&m->q.lock);
			return 0;
		}
		wq_append(&m->q, &wt);
		rt__spin_unlock(&m->q.lock);
		waiter_wait(&wt);
	}
}

UMCG_RT_EXPORT int umcg_rt_mutex_unlock(struct umcg_rt_mutex *m)
{
	uint32_t v = atomic_exchange_explicit(&m->state, 0, memory_order_acq_rel);
	if (v == 1)
		return 0;
	if (v == 0) {
		errno = EPERM;
		return -1;
	}
	wq_wake_one(&m->q);
	return 0;
}

/* ---- condition variable ------------------------------------------------------------
 *
 * wait: queue ourselves under the condvar's queue lock BEFORE unlocking
 * the mutex, so a signal sent by anyone who takes the mutex after us (and
 * sees our predicate false) finds us queued. signal pops one, broadcast
 * takes all; a granted waiter locks the mutex again.
 */

UMCG_RT_EXPORT void umcg_rt_cond_init(struct umcg_rt_cond *c)
{
	memset(c, 0, sizeof *c);
}

UMCG_RT_EXPORT int umcg_rt_cond_wait(struct umcg_rt_cond *c, struct umcg_rt_mutex *m)
{
	struct rt_waiter wt;
	waiter_init(&wt);
	rt__spin_lock(&c->q.lock);
	wq_append(&c->q, &wt);
	rt__spin_unlock(&c->q.lock);
	umcg_rt_mutex_unlock(m);
	waiter_wait(&wt);
	return umcg_rt_mutex_lock(m);
}

UMCG_RT_EXPORT int umcg_rt_cond_signal(struct umcg_rt_cond *c)
{
	wq_wake_one(&c->q);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_cond_broadcast(struct umcg_rt_cond *c)
{
	wq_wake_all(&c->q);
	return 0;
}

/* ---- semaphore ----------------------------------------------------------------------
 *
 * value >= 0: tokens; value < 0: -value waiters that found no token.
 * wait: fetch_sub(1) (acquire); old > 0: got a token. Else we are owed the
 *       token of a later post: under the queue lock, take one of the
 *       `handoffs` (posts that came before we queued) or queue and wait.
 * post: fetch_add(1) (release); old >= 0: a token for later. Else it
 *       belongs to a waiter: under the queue lock, grant the first queued
 *       waiter, or count a hand-off for one that has not queued yet.
 * Each post that sees old < 0 matches exactly one wait that saw old <= 0.
 */

UMCG_RT_EXPORT int umcg_rt_sem_init(struct umcg_rt_sem *s, int64_t value)
{
	if (value < 0) {
		errno = EINVAL;
		return -1;
	}
	memset(s, 0, sizeof *s);
	atomic_init(&s->value, value);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_sem_trywait(struct umcg_rt_sem *s)
{
	int64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	while (v > 0)
		if (atomic_compare_exchange_weak_explicit(
			&s->value, &v, v - 1, memory_order_acquire, memory_order_relaxed))
			return 0;
	errno = EAGAIN;
	return -1;
}

UMCG_RT_EXPORT int umcg_rt_sem_wait(struct umcg_rt_sem *s)
{
	if (atomic_fetch_sub_explicit(&s->value, 1, memory_order_acq_rel) > 0)
		return 0;
	struct rt_waiter wt;
	waiter_init(&wt);
	rt__spin_lock(&s->q.lock);
	if (s->handoffs) {
		s->handoffs--;
		rt__spin_unlock(&s->q.lock);
		return 0;
	}
	wq_append(&s->q, &wt);
	rt__spin_unlock(&s->q.lock);
	waiter_wait(&wt);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_sem_post(struct umcg_rt_sem *s)
{
	if (atomic_fetch_add_explicit(&s->value, 1, memory_order_acq_rel) >= 0)
		return 0;
	rt__spin_lock(&s->q.lock);
	struct rt_waiter *wt = wq_pop(&s->q);
	if (!wt)
		s->handoffs++;
	rt__spin_unlock(&s->q.lock);
	if (wt)
		waiter_grant(wt);
	return 0;
}

/* ---- wait group ----------------------------------------------------------------------
 *
 * add: CAS the count (acq_rel); if it reaches 0, grant every queued
 *      waiter (under the queue lock: take all).
 * wait: count 0 (acquire) -> return. Else, under the queue lock, look again
 *      and queue. The add that makes the count 0 takes the queue lock after
 *      its CAS; if it took it before we did, our second look (after our
 *      acquisition of the lock, which follows its release) sees 0; if
 *      after, it finds us queued.
 */

UMCG_RT_EXPORT void umcg_rt_wg_init(struct umcg_rt_wg *g)
{
	memset(g, 0, sizeof *g);
}

UMCG_RT_EXPORT int umcg_rt_wg_add(struct umcg_rt_wg *g, int64_t n)
{
	int64_t v = atomic_load_explicit(&g->count, memory_order_relaxed);
	do {
		if (v + n < 0) {
			errno = EINVAL;
			return -1;
		}
	} while (!atomic_compare_exchange_weak_explicit(&g->count, &v, v + n, memory_order_acq_rel,
							memory_order_relaxed));
	if (v + n == 0 && n < 0)
		wq_wake_all(&g->q);
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_wg_done(struct umcg_rt_wg *g)
{
	return umcg_rt_wg_add(g, -1);
}

UMCG_RT_EXPORT int umcg_rt_wg_wait(struct umcg_rt_wg *g)
{
	if (!atomic_load_explicit(&g->count, memory_order_acquire))
		return 0;
	struct rt_waiter wt;
	waiter_init(&wt);
	rt__spin_lock(&g->q.lock);
	if (!atomic_load_explicit(&g->count, memory_order_acquire)) {
		rt__spin_unlock(&g->q.lock);
		return 0;
	}
	wq_append(&g->q, &wt);
	rt__spin_unlock(&g->q.lock);
	waiter_wait(&wt);
	return 0;
}
