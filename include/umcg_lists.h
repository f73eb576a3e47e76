/* SPDX-License-Identifier: MIT */
/*
 * umcg_lists.h - the user-space side of the two UMCG v0.3 lists.
 *
 * Both lists are LIFO stacks of 64-bit words in user memory. A list head
 * is a plain uint64_t owned by the scheduler (one per group); a node is
 * the address of a task's idle_workers_ptr (resp. idle_servers_ptr) word.
 *
 * idle workers: libumcg (playing the kernel) pushes a worker when it wakes
 * from a block; the scheduler takes the whole list at once with
 * umcg_idle_workers_pop_all() and walks it with umcg_idle_workers_next(),
 * which also restores each worker's idle_workers_ptr to the head address
 * (the v0.3 "re-point" rule) before the worker may run again.
 *
 * idle servers: a server with nothing to do pushes its own node and
 * sleeps; libumcg pops one by marking its node "deleted"
 * (UMCG_IDLE_NODE_DELETED) and wakes it. Marked nodes stay linked until a
 * server runs umcg_idle_servers_gc(), which unlinks them and returns only
 * after every concurrent pop that might still be looking at them has
 * finished (a grace period), so the nodes can then be reused or freed.
 * That grace period is how libumcg closes the reclamation race found in
 * the v0.3 review (docs/design.md, docs/spin.md).
 *
 * All calls are thread-safe unless noted; none of them sleeps, except
 * umcg_idle_servers_gc() which may wait for concurrent pops.
 */
#ifndef UMCG_LISTS_H
#define UMCG_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umcg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- idle workers ------------------------------------------------------ */

/*
 * Push @worker on the idle-workers stack at @head (what libumcg does at a
 * wake point; exposed for schedulers that re-queue workers themselves).
 * The worker must not already be queued.
 */
void umcg_idle_workers_push(uint64_t *head, struct umcg_task *worker);

/*
 * Take every queued worker at once. Returns the most recently pushed one,
 * or NULL if the list was empty. Walk the rest with
 * umcg_idle_workers_next(); a worker must not run before it was passed to
 * umcg_idle_workers_next().
 */
struct umcg_task *umcg_idle_workers_pop_all(uint64_t *head);

/*
 * Return the worker after @worker in a chain returned by
 * umcg_idle_workers_pop_all() (NULL at the end), and restore
 * @worker->idle_workers_ptr to @head. Call it exactly once per worker.
 */
struct umcg_task *umcg_idle_workers_next(struct umcg_task *worker, uint64_t *head);

/* true if no worker is queued at @head. */
bool umcg_idle_workers_empty(const uint64_t *head);

/* ---- idle servers ------------------------------------------------------ */

/*
 * Push @server's own node (&server->idle_servers_ptr) on the stack at
 * @head. The node must not be linked (a new server, or after a
 * umcg_idle_servers_gc() that unlinked it). Its deleted mark is cleared.
 */
void umcg_idle_servers_push(uint64_t *head, struct umcg_task *server);

/*
 * Pop one idle server: mark the first unmarked node deleted and return its
 * task, or NULL if there is none within nr_cpu_ids*2 nodes. This is the
 * kernel's pop; the caller must then make the server RUNNING and wake it
 * (see umcg_idle_servers_wake() for why doing both in one call is safer).
 */
struct umcg_task *umcg_idle_servers_pop(uint64_t *head);

/*
 * Pop one idle server and wake it (make it RUNNING, ttwu), as libumcg does
 * at a wake point; returns it, or NULL if none. Prefer this to pop + your
 * own wake-up: the whole wake-up runs inside the list's read section, so
 * a server that timed out and GCs its node cannot be woken late, in the
 * middle of its next context switch. The caller need not be a UMCG task.
 */
struct umcg_task *umcg_idle_servers_wake(uint64_t *head);

/*
 * Mark @server's own node deleted if nobody popped it yet. Returns true if
 * this call marked it (the server was not popped and will not be woken
 * through the stack), false if it was already marked (a popper owns the
 * wake-up: expect to be made RUNNING).
 */
bool umcg_idle_servers_remove(struct umcg_task *server);

/* true if @server's node is marked deleted. */
bool umcg_idle_servers_is_deleted(const struct umcg_task *server);

/* true if every node reachable from @head is marked deleted. */
bool umcg_idle_servers_empty(const uint64_t *head);

/*
 * Unlink every node that is marked deleted. One GC runs at a time per
 * process (callers serialise on an internal mutex); it is safe against
 * concurrent push, pop and remove. When it returns, the unlinked nodes
 * are no longer referenced by any pop, every wake-up that followed a pop of
 * them has completed, and @unlinked (if not NULL) has been called once for
 * each unlinked server. Every node that was marked when the call started is
 * unlinked when it returns (by this call or an earlier one). Returns the
 * number this call unlinked.
 */
size_t umcg_idle_servers_gc(uint64_t *head, void (*unlinked)(struct umcg_task *server, void *arg),
			    void *arg);

#ifdef __cplusplus
}
#endif

#endif /* UMCG_LISTS_H */
