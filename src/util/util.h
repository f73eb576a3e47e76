/* SPDX-License-Identifier: MIT */
/* util.h - internal helpers shared by the library's parts. */
#ifndef UMCG_UTIL_H
#define UMCG_UTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void umcg__reset_tid_cache(void);

/*
 * Per-thread counts of the system calls libumcg issues on its hot paths
 * (not registration). For benchmarks and tests: "how many system calls
 * did this wake-up cost the waker" is answered exactly, since libumcg
 * is the only code on those paths. Thread-local: no sharing, no atomics.
 */
struct umcg__stats {
	uint64_t futex_wait;
	uint64_t futex_wake;
	uint64_t eventfd_write;
	uint64_t setaffinity;
};
extern __thread struct umcg__stats umcg__stats;

/*
 * Process-wide counts of transparent detection (src/detect), for tests and
 * benchmarks: take-overs of a worker that slept inside a lazy wrapper or
 * in code no wrapper saw, parks after a take-over, raw sleeps that
 * ended while the alarm was being armed (not taken), raw sleeps not taken
 * for want of an alarm (limits), watcher futex sleeps, and detection
 * signals that interrupted a sleeping call (it fails with EINTR), and
 * rings that overflowed (state re-read from /proc), and sleeps not taken
 * because the worker was not RUNNING (LOCKED, or BLOCKED already), and
 * switch-in alarms signalled by the relay thread (relay.c).
 * Relaxed counters.
 */
struct umcg__det_counts {
	_Atomic uint64_t taken_sys, taken_raw, parks, woke_early, no_alarm, watcher_sleeps, eintr,
	    lost, signals, not_running, relayed;
};
extern struct umcg__det_counts umcg__det_counts;

static inline uint64_t umcg__stats_total(const struct umcg__stats *s)
{
	return s->futex_wait + s->futex_wake + s->eventfd_write + s->setaffinity;
}

/* FUTEX_WAIT_BITSET on a private word, absolute CLOCK_MONOTONIC deadline (0 = none). */
static inline int umcg__futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t abs_ns)
{
	struct timespec ts, *tp = NULL;
	umcg__stats.futex_wait++;
	if (abs_ns) {
		ts.tv_sec = (time_t)(abs_ns / 1000000000ull);
		ts.tv_nsec = (long)(abs_ns % 1000000000ull);
		tp = &ts;
	}
	if (syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, tp, NULL,
		    FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

static inline void umcg__futex_wake(_Atomic uint32_t *word, int n)
{
	umcg__stats.futex_wake++;
	syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

#endif
