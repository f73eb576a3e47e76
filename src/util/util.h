/* SPDX-License-Identifier: MIT */
/* util.h - internal helpers shared by the library's parts. */
#ifndef UMCG_UTIL_H
#define UMCG_UTIL_H

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void umcg__reset_tid_cache(void);

/* FUTEX_WAIT_BITSET on a private word, absolute CLOCK_MONOTONIC deadline (0 = none). */
static inline int umcg__futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t abs_ns)
{
	struct timespec ts, *tp = NULL;
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
	syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

#endif
