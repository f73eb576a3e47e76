/* SPDX-License-Identifier: MIT */
/* idle.h - the waker's side of the idle-server designs (called by the wake point). */
#ifndef UMCG_IDLE_INTERNAL_H
#define UMCG_IDLE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* eventfd design: write 1 if a server announced it waits. true if written. */
bool umcg__idle_fd_signal(uint64_t idle_fd_ptr);
/* tid-word design: take the published tid and wake it. true if one was woken. */
bool umcg__idle_tid_wake(uint64_t idle_server_tid_ptr);
/*
 * The same on a word: exchange with 0, make the server RUNNING inside a read
 * section, ttwu after it. at_wake_point: kill on a non-UMCG tid and place
 * with the current-CPU hint (the kernel's path); else ignore (user helpers).
 */
bool umcg__idle_tid_take(uint32_t *word, bool at_wake_point);

#endif
