/* SPDX-License-Identifier: MIT */
/*
 * detect.h - transparent block detection (docs/detection.md).
 *
 * The kernel version of UMCG learns that a worker sleeps from the
 * scheduler. We learn it from the scheduler too, one step removed: each
 * detected worker has a perf event on itself (software dummy event,
 * context_switch = 1, exclude_kernel) whose ring buffer receives a
 * PERF_RECORD_SWITCH on every switch-out and switch-in of the thread. A
 * switch-out without PERF_RECORD_MISC_SWITCH_OUT_PREEMPT means the thread
 * went to sleep. A SCHED_IDLE watcher thread per server (watcher.c) reads
 * the ring when the server's CPU falls idle and does the worker's T6 when
 * the newest record says the worker slept; the server itself does the same
 * check before each sleep of its context switch and every 1-8 ms
 * (kern/sched.c umcg__idle_loop_watch). Any number of threads may run
 * the check on one worker at once: the CAS on det picks one.
 *
 * Who may change a worker's detection word `det` (struct umcg_ktask):
 *
 *   USER    worker runs its own code; the worker moves it to SYSCALL or
 *           LIB (CAS), a supervising server to TAKING (CAS).
 *   SYSCALL worker is inside a lazy wrapper's call; the worker moves it
 *           back to USER (CAS: the fast path), a server to TAKING (CAS).
 *   LIB     worker is inside libumcg's own code (waits, wake points);
 *           only the worker changes it (store). Switch-outs here are the
 *           library's own sleeps and are never reported.
 *   TAKING  a server claimed the worker and is doing T6 for it; only that
 *           server changes it (store TAKEN_*, or the old value back). The
 *           worker waits (a few instructions) if it meets it.
 *   TAKEN_SYS, TAKEN_RAW
 *           the server made the worker BLOCKED and ran T6; the worker
 *           moves it to LIB, runs T7 (parks), then USER. TAKEN_SYS: it
 *           slept inside a wrapper, which parks on return. TAKEN_RAW: it
 *           slept in code we do not see; its event is armed (O_ASYNC) so
 *           the record of its switch-in sends it the detection signal,
 *           whose handler parks it before it runs user code.
 *   OFF     no detection for this worker (explicit points only).
 *
 * Only the CAS from USER/SYSCALL to TAKING can race with the worker's own
 * CASes; whoever wins decides: the worker returned from its call first
 * (no block reported: the record was about a sleep that is over), or the
 * server took it (the worker parks when it gets back).
 */
#ifndef UMCG_DETECT_H
#define UMCG_DETECT_H

#include <stdbool.h>

#include "kern/kern.h"

enum {
	DET_OFF = 0,
	DET_USER,
	DET_SYSCALL,
	DET_LIB,
	DET_TAKING,
	DET_TAKEN_SYS,
	DET_TAKEN_RAW,
};

/* What the newest record in a worker's ring says (struct umcg_ktask::det_last). */
enum {
	DET_LAST_NONE = 0, /* no record yet */
	DET_LAST_IN,	   /* switched in: on a CPU */
	DET_LAST_PREEMPT,  /* switched out while runnable */
	DET_LAST_SLEEP,	   /* switched out to sleep */
};

/* ---- perf.c: the per-worker event ---------------------------------------- */
/* The detection signal (UMCG_DETECT_SIGNAL, default SIGRTMAX - 1). */
int umcg__detect_signal(void);
/* Process-wide default for workers registered from now on: -1 unset, 0, 1. */
extern _Atomic int umcg__detect_default;
/*
 * Open the calling worker's event and set det LIB. by_default: only if
 * the process default says so. 0, or -errno (then explicit points only).
 */
int umcg__det_open(struct umcg_ktask *k, bool by_default);
/* Close it (unregister, exit, umcg_detect_thread(0)). Only the owner calls. */
void umcg__det_close(struct umcg_ktask *k);
/*
 * Consume w's new records and return the newest switch kind (DET_LAST_*),
 * remembered across calls. Ring overflow falls back to /proc.
 */
int umcg__det_ring_last(struct umcg_ktask *w);
/*
 * Arm (enable; opened on first use and kept) / disarm the switch-in alarm
 * of a worker being taken while it sleeps in code no wrapper saw.
 */
bool umcg__det_alarm_arm(struct umcg_ktask *w);
/* Only open it (disabled), so that arming is one ioctl right after a last look. */
bool umcg__det_alarm_open(struct umcg_ktask *w);
void umcg__det_alarm_disarm(struct umcg_ktask *w);
/* Drop the alarm's records (the relay: a full ring would record, and wake, no more). */
void umcg__det_alarm_drain(struct umcg_ktask *w);
/*
 * Open a switch-record event on thread tid with its ring (*len bytes
 * mapped), a wake-up every `wakeup` bytes: the fd, or -errno (*ring NULL:
 * perf_event_open failed, else the mmap: perf_event_mlock_kb /
 * RLIMIT_MEMLOCK).
 */
int umcg__det_event_open(uint32_t tid, uint32_t wakeup, void **ring, size_t *len);
/* data_head of w's ring, not consumed: has anything been recorded? */
uint64_t umcg__det_ring_head(struct umcg_ktask *w);

/* ---- relay.c: the alarm's signal where the kernel does not send it ---------- */
/* Must a thread of ours send the alarm's signal? (asked once: a probe) */
bool umcg__det_relay_needed(void);
/*
 * At a worker's detection open (an ordinary thread, unlike a SCHED_IDLE
 * watcher): probe, and start the relay thread if it is needed.
 */
void umcg__det_relay_prepare(void);
/* Watch w's (disabled, empty) alarm: signal w when it records while TAKEN_RAW. */
bool umcg__det_relay_add(struct umcg_ktask *w, int alarm_fd);

/* ---- takeover.c: the server's side ----------------------------------------- */
/*
 * Called by the watcher of `server`, or by `server` itself, which runs
 * (or ran) w: if w went to sleep while RUNNING (not LOCKED), do its T6 (w
 * BLOCKED, its server - the one in w's server_tid - woken). true if w was
 * taken. Safe to run concurrently on one w (the det CAS decides).
 */
bool umcg__det_check(struct umcg_ktask *server, struct umcg_ktask *w);
/* w is now run by its server: point that server's watcher at w. */
void umcg__det_supervise(struct umcg_ktask *w);

/* ---- watcher.c ------------------------------------------------------------------ */
/* server->supervise changed: make sure its watcher runs (creates it). */
void umcg__watch(struct umcg_ktask *server);

/* ---- the worker's side (takeover.c) ------------------------------------------ */
/*
 * Enter/leave libumcg's own code on a worker (det LIB). Entering first
 * finishes a take-over that raced with the worker's return (parks). The
 * value returned goes to umcg__det_lib_leave().
 */
int umcg__det_lib_enter(struct umcg_ktask *k);
void umcg__det_lib_leave(struct umcg_ktask *k, int prev);
/*
 * Wrappers: how to bracket the call. EAGER: no detection, explicit block
 * and wake points around it. LAZY: det SYSCALL, then umcg__det_sys_leave().
 * PLAIN: nested in another call (a signal handler's) or inside libumcg:
 * just make the call.
 */
enum { DET_CALL_EAGER, DET_CALL_LAZY, DET_CALL_PLAIN };
int umcg__det_sys_enter(struct umcg_ktask *k);
void umcg__det_sys_leave(struct umcg_ktask *k);
/* The detection signal's work, in the handler (TAKEN_RAW: park). */
void umcg__det_signal(struct umcg_ktask *k);

#endif
