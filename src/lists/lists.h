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
/* T7's pop of an idle server (mark deleted); NULL if none within the bound. */
struct umcg_task *umcg__isl_pop(uint64_t *head);

/* Test hook: disable the GC grace period to reproduce the review's race. */
extern int umcg__isl_no_grace_period;

#endif
