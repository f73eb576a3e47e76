/* SPDX-License-Identifier: MIT */
/*
 * registry.c - tid -> ktask map (the kernel's find_task_by_vpid for UMCG
 * tasks) and the ktask pool.
 *
 * Map: a two-level radix table indexed by tid. Linux tids are below
 * PID_MAX_LIMIT (4 Mi on 64-bit), so 1024 directory slots of 4096-entry
 * chunks cover every possible tid. Chunks are allocated on first use and
 * never freed, so lookups are wait-free: two acquire loads.
 *
 * Who writes what:
 *   - dir[i] goes NULL -> chunk exactly once (CAS, release; losers free
 *     their chunk). Readers load it with acquire, pairing with that CAS,
 *     so the zeroed chunk is visible before it is used.
 *   - chunk[j] is written only by the thread whose tid it is (insert at
 *     registration, remove at unregistration/exit), with release; the
 *     lookup's acquire load pairs with it, so the ktask's fields written
 *     before publication (self, tid, worker, allowed) are visible.
 *   Ktasks come from a pool and are never freed (type-stable, see kern.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kern/kern.h"
#include "lists/lists.h"
#include "util/util.h"

#define DIR_BITS   10
#define CHUNK_BITS 12
#define DIR_SIZE   (1u << DIR_BITS)
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define TID_LIMIT  (DIR_SIZE * CHUNK_SIZE)

typedef _Atomic(struct umcg_ktask *) slot_t;
static _Atomic(slot_t *) dir[DIR_SIZE];

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct umcg_ktask *pool_free;
static __thread struct umcg_ktask *tls_current;

struct umcg_ktask *umcg__current(void)
{
	return tls_current;
}

void umcg__set_current(struct umcg_ktask *k)
{
	tls_current = k;
}

struct umcg_ktask *umcg__ktask_alloc(void)
{
	pthread_mutex_lock(&pool_lock);
	struct umcg_ktask *k = pool_free;
	if (k)
		pool_free = k->free_next;
	pthread_mutex_unlock(&pool_lock);
	if (!k) {
		/* Carve a new slab; slabs are never returned (type stability). */
		enum { SLAB = 64 };
		struct umcg_ktask *slab = calloc(SLAB, sizeof *slab);
		if (!slab)
			return NULL;
		for (int i = 0; i < SLAB; i++) {
			atomic_init(&slab[i].pinned_cpu, -1);
			atomic_init(&slab[i].det_fd, -1);
			slab[i].alarm_fd = -1;
		}
		pthread_mutex_lock(&pool_lock);
		for (int i = 1; i < SLAB; i++) {
			slab[i].free_next = pool_free;
			pool_free = &slab[i];
		}
		pthread_mutex_unlock(&pool_lock);
		k = &slab[0];
	}
	k->free_next = NULL;
	return k;
}

void umcg__ktask_free(struct umcg_ktask *k)
{
	atomic_store_explicit(&k->self, NULL, memory_order_release);
	atomic_store_explicit(&k->tid, 0, memory_order_release);
	pthread_mutex_lock(&pool_lock);
	k->free_next = pool_free;
	pool_free = k;
	pthread_mutex_unlock(&pool_lock);
}

static slot_t *slot_of(uint32_t tid, bool create)
{
	if (tid == 0 || tid >= TID_LIMIT)
		return NULL;
	_Atomic(slot_t *) *d = &dir[tid >> CHUNK_BITS];
	slot_t *chunk = atomic_load_explicit(d, memory_order_acquire);
	if (!chunk && create) {
		slot_t *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
		if (!fresh)
			return NULL;
		slot_t *expected = NULL;
		if (atomic_compare_exchange_strong_explicit(
			d, &expected, fresh, memory_order_acq_rel, memory_order_acquire)) {
			chunk = fresh;
		} else {
			free(fresh);
			chunk = expected;
		}
	}
	return chunk ? &chunk[tid & (CHUNK_SIZE - 1)] : NULL;
}

int umcg__registry_insert(uint32_t tid, struct umcg_ktask *k)
{
	slot_t *s = slot_of(tid, true);
	if (!s)
		return -ENOMEM;
	atomic_store_explicit(s, k, memory_order_release);
	return 0;
}

void umcg__registry_remove(uint32_t tid)
{
	slot_t *s = slot_of(tid, false);
	if (s)
		atomic_store_explicit(s, NULL, memory_order_release);
}

struct umcg_ktask *umcg__registry_lookup(uint32_t tid)
{
	slot_t *s = slot_of(tid, false);
	if (!s)
		return NULL;
	struct umcg_ktask *k = atomic_load_explicit(s, memory_order_acquire);
	/* A recycled ktask may now belong to another tid: check. */
	if (!k || atomic_load_explicit(&k->tid, memory_order_acquire) != tid ||
	    !atomic_load_explicit(&k->self, memory_order_acquire))
		return NULL;
	return k;
}

/*
 * fork() (T12): the child has one thread and is not a UMCG task; it may
 * register anew (umcg(7) says what else it may do). Every piece of
 * process-wide library state is either reset here or valid as copied:
 *   - registry slots: cleared (no parent task exists in the child); the
 *     chunks stay allocated. The parent's ktasks are leaked (bounded).
 *   - ktask pool (pool_lock): held across fork, so the free list is
 *     consistent; released in the child.
 *   - grace periods (idle_servers.c: epoch, reader counts, gp_lock, GC
 *     lock): the locks held across fork and released in the child, the
 *     counts reset.
 *   - the forking thread's TLS: current task, tid cache; a thread we had
 *     pinned for the placement hint gets its registration-time affinity
 *     back (the child is not a worker any more).
 *   - exit_key (ctl.c): its value in the child names a ktask that is no
 *     longer current, which on_thread_exit() ignores.
 *   - umcg__current_cpu_hint, the nr_cpu_ids cache: process settings, kept.
 * Lock order of the prepare handler: gc_lock, gp_lock (as in GC), then
 * pool_lock (never held with another lock).
 * A worker that forks holds these locks between the handlers: a detection
 * signal that arrives meanwhile must not park it (every server's GC would
 * wait for gc_lock while the worker waits for a server: seen under TSan,
 * which delivers a pending signal inside the parent handler's unlock), so
 * the handlers are a nopark section. In the child the forking thread is not
 * a worker any more: the section and a deferred park are dropped.
 */
static void atfork_prepare(void)
{
	umcg__nopark_enter(); /* a worker holds our locks across fork (kern.h) */
	umcg__isl_fork_prepare();
	pthread_mutex_lock(&pool_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&pool_lock);
	umcg__isl_fork_parent();
	umcg__nopark_leave(); /* a park deferred meanwhile happens here, no lock held */
}

static void atfork_child(void)
{
	pthread_mutex_unlock(&pool_lock); /* held by the forking thread, now our only one */
	umcg__isl_fork_child();
	if (tls_current) {
		tls_current->nopark = 0;
		atomic_store_explicit(&tls_current->park_pending, false, memory_order_relaxed);
	}
	for (unsigned i = 0; i < DIR_SIZE; i++) {
		slot_t *chunk = atomic_load_explicit(&dir[i], memory_order_relaxed);
		if (chunk)
			memset((void *)chunk, 0, CHUNK_SIZE * sizeof *chunk);
	}
	struct umcg_ktask *k = tls_current;
	tls_current = NULL;
	umcg__reset_tid_cache(); /* first: the unpin below needs our new tid */
	umcg__fork_gen++;	 /* watcher threads did not survive the fork */
	if (k && atomic_load_explicit(&k->pinned_cpu, memory_order_relaxed) >= 0) {
		/* k is the parent's record (leaked here): aim the unpin at us */
		atomic_store_explicit(&k->tid, umcg__gettid(), memory_order_relaxed);
		umcg__unpin(k);
	}
}

__attribute__((constructor)) static void registry_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
