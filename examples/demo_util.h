/* SPDX-License-Identifier: MIT */
/*
 * demo_util.h - the few lines the runtime demos (fifo_demo.c, prio_demo.c,
 * steal_demo.c) would otherwise each write again. Header only: a demo is
 * still one .c file (plus this), built with just libumcg.
 *
 * A demo defines DEMO_NAME (its name, for messages) before including it,
 * and DEMO_USAGE (its options, for the usage line) if it uses demo_num().
 *
 *   demo_compute(ns)        busy CPU work for ns nanoseconds
 *   demo_num(s, min, max)   an option's number, or the usage line and exit 2
 *   demo_usage()            the usage line and exit 2
 *   demo_die(what)          "DEMO_NAME: what: strerror(errno)" and exit 1
 *   demo_fail(fmt, ...)     a failed end-of-run check: said and counted
 *   demo_trace(rt, path, label)  -x: export the runtime's trace to path
 *   demo_failed()           the verdict: the failed checks, if any, said
 */
#ifndef UMCG_EXAMPLES_DEMO_UTIL_H
#define UMCG_EXAMPLES_DEMO_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umcg.h"
#include "umcg_rt.h"

#ifndef DEMO_NAME
#error "define DEMO_NAME before including demo_util.h"
#endif

/* Compute for ns nanoseconds: a busy loop with no system call but the clock's. */
static inline void demo_compute(uint64_t ns)
{
	static _Thread_local volatile uint64_t sink;
	uint64_t end = umcg_now_ns() + ns;
	do {
		for (int i = 0; i < 64; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (umcg_now_ns() < end);
}

#ifdef DEMO_USAGE
static inline __attribute__((noreturn)) void demo_usage(void)
{
	fprintf(stderr, "usage: " DEMO_NAME " " DEMO_USAGE "\n");
	exit(2);
}

/* The number s in [min, max]; otherwise the usage line and exit status 2. */
static inline int demo_num(const char *s, int min, int max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < min || v > max)
		demo_usage();
	return (int)v;
}
#endif

/* A call the demo cannot go on without failed (errno says why): exit status 1. */
static inline __attribute__((noreturn)) void demo_die(const char *what)
{
	fprintf(stderr, DEMO_NAME ": %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Failed checks so far (any thread may fail one). */
static _Atomic int demo_failures;

/* A failed check: "DEMO_NAME: FAILED: ..." on stderr, counted; the run goes on. */
static inline __attribute__((format(printf, 1, 2))) void demo_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(DEMO_NAME ": FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	atomic_fetch_add(&demo_failures, 1);
}

/* -x: export rt's trace to path (nothing without a path); a failure is a failed check. */
static inline void demo_trace(struct umcg_rt *rt, const char *path, const char *label)
{
	if (!path)
		return;
	if (umcg_rt_trace_export(rt, path))
		demo_fail("umcg_rt_trace_export(%s): %s", path, strerror(errno));
	else
		printf("%s%s (scripts/plot-trace.sh)\n", label, path);
}

/* The verdict: true (and "DEMO_NAME: FAILED (N failed checks)") if a check failed. */
static inline bool demo_failed(void)
{
	int n = atomic_load(&demo_failures);
	if (n)
		printf(DEMO_NAME ": FAILED (%d failed checks)\n", n);
	return n != 0;
}

#endif
