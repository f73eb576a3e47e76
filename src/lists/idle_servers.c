/* SPDX-License-Identifier: MIT */
/*
 * idle_servers.c - the idle-servers stack (spec 7.2): user space pushes,
 * the "kernel" pops by marking nodes deleted, user space collects garbage.
 *
 * Shape: head -> node -> node -> 0; a node is the address of a server's
 * idle_servers_ptr word and holds (next node | UMCG_IDLE_NODE_DELETED).
 *
 * Invariants and who may touch what:
 *   I1  A node's word is written only by: its owner's push (unlinked node:
 *       set to the old head, mark cleared); pop/remove (CAS unmarked ->
 *       marked, the only change to a linked node's word by anyone but GC);
 *       GC (CAS a *predecessor's* unmarked word from "points to a marked
 *       node X" to "X's successor").
 *   I2  A marked node's word never changes while linked (nobody CASes a
 *       marked word), so following it is stable.
 *   I3  The head changes by push (CAS old -> new node) and by GC unlinking
 *       a marked first node (CAS X -> X's successor). Pops never unlink,
 *       which keeps the pop free of ABA on the head, as in v0.3.
 *   I4  A node is pushed only while unlinked; a server re-pushes only after
 *       umcg_idle_servers_gc() returned (its node, marked when the server
 *       was popped or removed itself, is then unlinked and out of every
 *       pop's reach).
 *
 * Reclamation (the race found in review, spec 7.4): a pop may have read
 * the address of node X, be delayed, while GC unlinks X and X's owner
 * re-pushes, resets or frees it; the pop would then mark or follow a
 * reused node. Here every pop (ours: the kernel's, and the exported one)
 * runs inside a read-side section of a two-counter epoch scheme, and GC
 * waits for a grace period (every section that could have seen the
 * unlinked nodes has ended) before it returns. Pops are bounded scans, so
 * a grace period is short. This is the protocol v0.3 could not have
 * between kernel and user space; we can, because both sides are ours.
 *
 * The same read sections also cover the state change of the wake-up that
 * follows a pop (the kernel's T7/T8, umcg_idle_servers_wake(), and the
 * tid-word design's exchange; the ttwu itself comes after the section, it
 * only touches never-freed library memory): a server that finds itself popped but is already
 * RUNNING (it timed out, or was woken otherwise) waits for a grace period before it goes IDLE
 * again, so a popper that was delayed between its mark and its IDLE -> RUNNING CAS cannot end the
 * server's *next* context switch.
 *
 * Grace period, memory ordering: a reader increments readers[e & 1] for
 * the epoch e it read, then re-reads the epoch and retries if it changed
 * (all seq_cst). GC unlinks, then advances the epoch (seq_cst) and waits
 * until readers[old & 1] is 0 (seq_cst loads); grace periods never overlap
 * (gp_lock), so no reader of an older epoch hides in the other counter.
 * In the single total order
 * either the reader's re-read precedes the advance, so its increment
 * precedes GC's counter loads and GC waits for it; or it follows, so the
 * reader sees the new epoch and started its scan after the unlinking
 * CASes, which precede the advance: it cannot reach the unlinked nodes.
 * The reader's exit decrement is a release, pairing with GC's loads, so
 * the reader's last accesses to a node happen before the owner reuses it.
 *
 * Scan bound: a pop examines at most nr_cpu_ids*2 nodes (v0.3). Reaching
 * the bound is "no idle server" (the header's documented meaning), not a
 * kill as in v0.3's code. A lost marking CAS re-examines the same node
 * with the value the CAS returned (v0.3 moved on to the next node, which
 * could skip a still idle server when GC had relinked its predecessor).
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern/kern.h"
#include "lists/lists.h"
#include "umcg_lists.h"

#define DELETED UMCG_IDLE_NODE_DELETED

int umcg__isl_no_grace_period;
_Atomic int umcg__test_wake_delay_us;

void umcg__test_wake_delay(void)
{
	int us = atomic_load_explicit(&umcg__test_wake_delay_us, memory_order_relaxed);
	if (us)
		usleep((useconds_t)us);
}

static _Atomic uint64_t gp_epoch;
static _Atomic long gp_readers[2];
static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * Grace periods must not overlap: with two counters, a second one that
 * advances the epoch while the first still waits would wait only on the
 * other counter and return while readers of the first epoch are still
 * inside (found by spin/idle_servers.pml, TAKEN_GP=1 GP_LOCK=0). Lock
 * order: gc_lock, then gp_lock.
 */
static pthread_mutex_t gp_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t umcg__gp_read_lock(void)
{
	umcg__nopark_enter();
	for (;;) {
		uint64_t e = atomic_load_explicit(&gp_epoch, memory_order_seq_cst);
		atomic_fetch_add_explicit(&gp_readers[e & 1], 1, memory_order_seq_cst);
		if (atomic_load_explicit(&gp_epoch, memory_order_seq_cst) == e)
			return e;
		atomic_fetch_sub_explicit(&gp_readers[e & 1], 1, memory_order_release);
	}
}

void umcg__gp_read_unlock(uint64_t e)
{
	atomic_fetch_sub_explicit(&gp_readers[e & 1], 1, memory_order_release);
	umcg__nopark_leave();
}

void umcg__gp_synchronize(void)
{
	pthread_mutex_lock(&gp_lock);
	uint64_t e = atomic_fetch_add_explicit(&gp_epoch, 1, memory_order_seq_cst);
	for (int spins = 0; atomic_load_explicit(&gp_readers[e & 1], memory_order_seq_cst);)
		if (++spins > 64)
			sched_yield(); /* the reader was preempted: let it finish */
	pthread_mutex_unlock(&gp_lock);
}

/*
 * fork (registry.c runs these from its pthread_atfork handlers): the
 * child has one thread, so no read section, GC or grace period of the
 * parent's other threads will ever end in it. prepare takes both locks (in
 * the documented order) so that the child's copy of them and of the
 * protected state is consistent and the parent's handlers can release
 * them; the child releases the locks and forgets every reader count
 * it inherited (a parent thread inside a read section at fork time would
 * otherwise make the child's first grace period wait forever).
 */
void umcg__isl_fork_prepare(void)
{
	pthread_mutex_lock(&gc_lock);
	pthread_mutex_lock(&gp_lock);
}

void umcg__isl_fork_parent(void)
{
	pthread_mutex_unlock(&gp_lock);
	pthread_mutex_unlock(&gc_lock);
}

void umcg__isl_fork_child(void)
{
	/* held by the forking thread, our only thread: unlock (ThreadSanitizer
	 * follows an unlock; it reports a re-initialised held mutex) */
	pthread_mutex_unlock(&gp_lock);
	pthread_mutex_unlock(&gc_lock);
	atomic_store_explicit(&gp_readers[0], 0, memory_order_relaxed);
	atomic_store_explicit(&gp_readers[1], 0, memory_order_relaxed);
	atomic_store_explicit(&gp_epoch, 0, memory_order_relaxed);
}

static inline uint64_t *word(uint64_t node)
{
	return (uint64_t *)(uintptr_t)node;
}

struct umcg_task *umcg__isl_pop_locked(uint64_t *head)
{
	struct umcg_task *found = NULL;
	int bound = umcg_nr_cpu_ids() * 2;
	/* seq_cst: the waker's half of the Dekker pair of hooks.c */
	uint64_t node = __atomic_load_n(head, __ATOMIC_SEQ_CST);
	for (int seen = 0; node && seen < bound; seen++) {
		if (node & DELETED)
			break; /* a link to a marked address: corrupt, treat as the end */
		uint64_t v = __atomic_load_n(word(node), __ATOMIC_ACQUIRE);
		while (!(v & DELETED)) {
			/* acquire: the server's IDLE state and node are published */
			if (__atomic_compare_exchange_n(word(node), &v, v | DELETED, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				found = UMCG_ISL_TASK(node);
				goto out;
			}
			if (++seen >= bound)
				goto out;
		}
		node = v & ~DELETED;
	}
out:
	return found;
}

UMCG_EXPORT void umcg_idle_servers_push(uint64_t *head, struct umcg_task *server)
{
	uint64_t node = UMCG_ISL_NODE(server);
	uint64_t old = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	do {
		__atomic_store_n(&server->idle_servers_ptr, old, __ATOMIC_RELAXED);
		/* seq_cst: publishes the node, and the Dekker pair of hooks.c */
	} while (!__atomic_compare_exchange_n(head, &old, node, false, __ATOMIC_SEQ_CST,
					      __ATOMIC_ACQUIRE));
}

UMCG_EXPORT struct umcg_task *umcg_idle_servers_pop(uint64_t *head)
{
	uint64_t e = umcg__gp_read_lock();
	struct umcg_task *s = umcg__isl_pop_locked(head);
	umcg__gp_read_unlock(e);
	return s;
}

UMCG_EXPORT struct umcg_task *umcg_idle_servers_wake(uint64_t *head)
{
	uint64_t e = umcg__gp_read_lock();
	struct umcg_task *s = umcg__isl_pop_locked(head);
	struct umcg_ktask *wake = NULL;
	if (s) {
		umcg__test_wake_delay();
		wake = umcg__server_make_running(umcg__load_u32(&s->server_tid), false);
	}
	umcg__gp_read_unlock(e);
	if (wake)
		umcg__ttwu(wake, false); /* after the section: see hooks.c */
	return s;
}

UMCG_EXPORT bool umcg_idle_servers_remove(struct umcg_task *server)
{
	uint64_t v = __atomic_load_n(&server->idle_servers_ptr, __ATOMIC_ACQUIRE);
	while (!(v & DELETED))
		if (__atomic_compare_exchange_n(&server->idle_servers_ptr, &v, v | DELETED, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

UMCG_EXPORT bool umcg_idle_servers_is_deleted(const struct umcg_task *server)
{
	return __atomic_load_n(&server->idle_servers_ptr, __ATOMIC_ACQUIRE) & DELETED;
}

UMCG_EXPORT bool umcg_idle_servers_empty(const uint64_t *head)
{
	uint64_t e = umcg__gp_read_lock();
	bool empty = true;
	int bound = umcg_nr_cpu_ids() * 2 + 1;
	uint64_t node = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	/* unbounded lists are possible with many servers; walk them all */
	for (int n = 0; node && !(node & DELETED); n++) {
		uint64_t v = __atomic_load_n(word(node), __ATOMIC_ACQUIRE);
		if (!(v & DELETED)) {
			empty = false;
			break;
		}
		node = v & ~DELETED;
		if (n > bound * 1024)
			break; /* a cycle: corrupt list, say empty rather than hang */
	}
	umcg__gp_read_unlock(e);
	return empty;
}

UMCG_EXPORT size_t umcg_idle_servers_gc(uint64_t *head,
					void (*unlinked)(struct umcg_task *server, void *arg),
					void *arg)
{
	/*
	 * The unlinked nodes, for the callback: on the stack for the usual few
	 * (no malloc on a server's idle path, and none in a fork child whose
	 * allocator a sanitizer runtime left locked), on the heap beyond.
	 */
	struct umcg_task *local[16];
	size_t n = 0, cap = sizeof local / sizeof local[0];
	struct umcg_task **gone = local;
	umcg__nopark_enter(); /* a worker parked holding gc_lock would stall every GC */
	pthread_mutex_lock(&gc_lock);
restart:;
	uint64_t *prev = head; /* the word that points to node */
	uint64_t node = __atomic_load_n(prev, __ATOMIC_ACQUIRE);
	while (node) {
		if (node & DELETED)
			goto restart; /* prev got marked under us: start over */
		uint64_t v = __atomic_load_n(word(node), __ATOMIC_ACQUIRE);
		if (!(v & DELETED)) {
			prev = word(node);
			node = v;
			continue;
		}
		/* node is marked: unlink it from prev (prev must still point to it, unmarked) */
		uint64_t expected = node;
		if (!__atomic_compare_exchange_n(prev, &expected, v & ~DELETED, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			goto restart;
		if (n == cap) {
			cap *= 2;
			struct umcg_task **g =
			    realloc(gone == local ? NULL : gone, cap * sizeof *g);
			if (!g)
				abort();
			if (gone == local)
				memcpy(g, local, sizeof local);
			gone = g;
		}
		gone[n++] = UMCG_ISL_TASK(node);
		node = v & ~DELETED;
	}
	if (n && !umcg__isl_no_grace_period)
		umcg__gp_synchronize();
	pthread_mutex_unlock(&gc_lock);
	umcg__nopark_leave();
	if (unlinked)
		for (size_t i = 0; i < n; i++)
			unlinked(gone[i], arg);
	if (gone != local)
		free(gone);
	return n;
}
