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

#endif
