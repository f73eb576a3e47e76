/* SPDX-License-Identifier: MIT */
/*
 * idle_workers.c - the idle-workers stack (spec 7.1).
 *
 * Shape: head (a user uint64_t) -> node -> node -> 0, where a node is the
 * address of a worker's idle_workers_ptr word and holds the next node.
 *
 * Who touches what:
 *   - pushers (libumcg at a wake point, or a scheduler re-queueing a
 *     worker) write their own node, then CAS the head;
 *   - one consumer at a time or many: pop_all swaps the head with 0 and
 *     owns the whole chain it got; nothing else writes those nodes until
 *     the consumer re-points each one to the head address
 *     (umcg_idle_workers_next) and lets the worker run.
 *   No node is ever removed from the middle, so there is no ABA: a node
 *   can only be pushed again after its worker ran, i.e. after the chain
 *   that contained it was taken whole.
 *
 * Ordering: the push stores node->next (relaxed) and then publishes the
 * node with a release (in fact seq_cst, for the idle-server handshake of
 * hooks.c) CAS on the head; pop_all's acquire exchange pairs
 * with it, and each pusher's CAS read the previous head with acquire, so
 * the whole chain's links are visible to the consumer (release sequence
 * through the head's RMWs).
 *
 * Bound: v0.3's kernel gave up after nr_cpu_ids*2 failed CASes and killed
 * the worker (its header promised "sleep and retry"). User-space pushers
 * can be preempted inside the loop, so contention is unbounded in
 * principle; we retry with sched_yield() after every nr_cpu_ids*2
 * failures instead of killing: the push is lock-free, some pusher always
 * succeeds.
 */
#include <sched.h>

#include "kern/kern.h"
#include "lists/lists.h"
#include "umcg_lists.h"

void umcg__iwl_push(uint64_t *head, struct umcg_task *worker)
{
	uint64_t node = UMCG_IWL_NODE(worker);
	uint64_t old = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	int bound = umcg_nr_cpu_ids() * 2, tries = 0;
	for (;;) {
		__atomic_store_n(&worker->idle_workers_ptr, old, __ATOMIC_RELAXED);
		/* seq_cst: release for the consumer, and the Dekker pair (hooks.c) */
		if (__atomic_compare_exchange_n(head, &old, node, false, __ATOMIC_SEQ_CST,
						__ATOMIC_ACQUIRE))
			return;
		if (++tries == bound) {
			tries = 0;
			sched_yield();
		}
	}
}

UMCG_EXPORT void umcg_idle_workers_push(uint64_t *head, struct umcg_task *worker)
{
	umcg__iwl_push(head, worker);
}

UMCG_EXPORT struct umcg_task *umcg_idle_workers_pop_all(uint64_t *head)
{
	uint64_t first = __atomic_exchange_n(head, 0, __ATOMIC_ACQUIRE);
	return first ? UMCG_IWL_TASK(first) : NULL;
}

UMCG_EXPORT struct umcg_task *umcg_idle_workers_next(struct umcg_task *worker, uint64_t *head)
{
	uint64_t next = __atomic_load_n(&worker->idle_workers_ptr, __ATOMIC_RELAXED);
	/* The re-point rule: the worker's word is its head pointer again. */
	__atomic_store_n(&worker->idle_workers_ptr, (uint64_t)(uintptr_t)head, __ATOMIC_RELAXED);
	return next ? UMCG_IWL_TASK(next) : NULL;
}

UMCG_EXPORT bool umcg_idle_workers_empty(const uint64_t *head)
{
	return __atomic_load_n(head, __ATOMIC_SEQ_CST) == 0; /* a server's re-check */
}
