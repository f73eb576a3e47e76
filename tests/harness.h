/* SPDX-License-Identifier: MIT */
/*
 * harness.h - a tiny test harness: each TEST() runs in its own forked child
 * (so registration state, crashes and kill paths are isolated), with a
 * timeout. The binary prints one line per test and a closing
 * "N passed, N failed" line; it exits non-zero if any test failed.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ(a, b); CHECK_ERR(call(), EINVAL); }
 *
 * A skipped test (see SKIP_ON_KERNEL) prints "skip" and its reason, and the
 * closing line adds "(N skipped)".
 * Options: -t NAME runs only tests whose name contains NAME; -l lists.
 * Env: UMCG_TEST_TIMEOUT (seconds per test, default 120), UMCG_TEST_SCALE
 * (divides iteration counts of stress tests, default 1; sanitizer builds
 * set it from run-tests.sh).
 */
#ifndef UMCG_TEST_HARNESS_H
#define UMCG_TEST_HARNESS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct th_test {
	const char *name;
	void (*fn)(void);
	int timeout; /* seconds, 0 = default */
	struct th_test *next;
};

void th_register(struct th_test *t);
void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* Iteration count scaled down for slow (sanitizer) builds; never below min. */
long th_scaled(long n, long min);
/* Is thread `tid` of this process blocked in an interruptible sleep (/proc state S)? */
int th_thread_sleeps(long tid);

#define TEST_T(name, secs)                                                                         \
	static void th_fn_##name(void);                                                            \
	static struct th_test th_t_##name = {#name, th_fn_##name, secs, NULL};                     \
	__attribute__((constructor)) static void th_reg_##name(void)                               \
	{                                                                                          \
		th_register(&th_t_##name);                                                         \
	}                                                                                          \
	static void th_fn_##name(void)

#define TEST(name) TEST_T(name, 0)

/*
 * Tests of libumcg's user-space emulation only (its detection, hooks,
 * grace periods, placement): on the kernel backend (umcg_backend(3)) they
 * are skipped with the reason printed, and counted as skipped.
 * SKIP_ON_KERNEL("why") inside a test skips that test; USER_BACKEND_ONLY("why")
 * at file scope skips every test of the binary.
 */
void th_skip(const char *reason) __attribute__((noreturn));
int th_on_kernel(void);
extern const char *th_user_only_reason;
#define SKIP_ON_KERNEL(reason)                                                                     \
	do {                                                                                       \
		if (th_on_kernel())                                                                \
			th_skip(reason);                                                           \
	} while (0)
#define USER_BACKEND_ONLY(reason)                                                                  \
	__attribute__((constructor)) static void th_user_only(void)                                \
	{                                                                                          \
		th_user_only_reason = reason;                                                      \
	}

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			th_fail(__FILE__, __LINE__, "CHECK(%s) failed (errno %d %s)", #c, errno,   \
				strerror(errno));                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long th_a = (long long)(a), th_b = (long long)(b);                            \
		if (th_a != th_b)                                                                  \
			th_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b,      \
				th_a, th_b);                                                       \
	} while (0)

/* expr must return -1 and set errno to e. */
#define CHECK_ERR(expr, e)                                                                         \
	do {                                                                                       \
		errno = 0;                                                                         \
		long long th_r = (long long)(expr);                                                \
		int th_e = errno;                                                                  \
		if (th_r != -1 || th_e != (e))                                                     \
			th_fail(__FILE__, __LINE__,                                                \
				"%s: got %lld errno %d (%s), want -1 errno %s", #expr, th_r, th_e, \
				strerror(th_e), #e);                                               \
	} while (0)

#endif
