/* SPDX-License-Identifier: MIT */
/* lists.h - the list operations libumcg performs in its "kernel" role. */
#ifndef UMCG_LISTS_INTERNAL_H
#define UMCG_LISTS_INTERNAL_H

#include <stdint.h>

#include "umcg.h"

/* Node <-> task conversions (container_of on the ABI fields). */
#define UMCG_IWL_NODE(t) ((uint64_t)(uintptr_t) & (t)->idle_workers_ptr)
#define UMCG_ISL_NODE(t) ((uint64_t)(uintptr_t) & (t)->idle_servers_ptr)
#define UMCG_IWL_TASK(n)                                                                           \
	((struct umcg_task *)(uintptr_t)((n)-offsetof(struct umcg_task, idle_workers_ptr)))
#define UMCG_ISL_TASK(n)                                                                           \
	((struct umcg_task *)(uintptr_t)((n)-offsetof(struct umcg_task, idle_servers_ptr)))

/* T7's push of a worker (retries until it succeeds, see idle_workers.c). */
void umcg__iwl_push(uint64_t *head, struct umcg_task *worker);
/*
 * Read sections (idle_servers.c): every wake-up through an idle list (pop
 * or tid exchange, then the server's IDLE -> RUNNING CAS and ttwu) runs
 * inside one, so that waiting for a grace period guarantees no such
 * wake-up is still on its way.
 */
uint64_t umcg__gp_read_lock(void);
void umcg__gp_read_unlock(uint64_t epoch);
/* Wait until every read section that started before this call has ended. */
void umcg__gp_synchronize(void);
/* Pop one idle server (mark deleted), inside the caller's read section. */
struct umcg_task *umcg__isl_pop_locked(uint64_t *head);

/* fork: called from registry.c's pthread_atfork handlers (lock order there). */
void umcg__isl_fork_prepare(void);
void umcg__isl_fork_parent(void);
void umcg__isl_fork_child(void);

/* Test hook: disable the GC grace period to reproduce the review's race. */
extern int umcg__isl_no_grace_period;
/*
 * Test hook: sleep this many microseconds between taking an idle server
 * (pop / tid exchange) and waking it, inside the read section: widens the
 * "late popper" window that tests/test_hooks.c checks is closed.
 */
extern _Atomic int umcg__test_wake_delay_us;
void umcg__test_wake_delay(void);

#endif
