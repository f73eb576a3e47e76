/* SPDX-License-Identifier: MIT */
/* util.c - small process-wide helpers: tid, clock, nr_cpu_ids, "kill the task". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kern/kern.h"
#include "util/util.h"

static __thread uint32_t tls_tid;
__thread struct umcg__stats umcg__stats;
struct umcg__det_counts umcg__det_counts;

uint32_t umcg__gettid(void)
{
	/* Cached per thread; fork() resets it through umcg__fork_child(). */
	if (!tls_tid)
		tls_tid = (uint32_t)syscall(SYS_gettid);
	return tls_tid;
}

void umcg__reset_tid_cache(void)
{
	tls_tid = 0;
}

UMCG_EXPORT uint32_t umcg_gettid(void)
{
	return umcg__gettid();
}

UMCG_EXPORT uint64_t umcg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * nr_cpu_ids: the number of possible CPU ids, i.e. 1 + the highest id in
 * /sys/devices/system/cpu/possible ("0-1", "0-3,8-11", ...). Falls back to
 * the number of configured CPUs. Computed once (benign race: every thread
 * computes the same value).
 */
static _Atomic int nr_cpu_ids_cache;

UMCG_EXPORT int umcg_nr_cpu_ids(void)
{
	int n = atomic_load_explicit(&nr_cpu_ids_cache, memory_order_relaxed);
	if (n)
		return n;
	/* open/read, not stdio: no malloc (this runs in fork children and handlers) */
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[256];
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len > 0) {
			buf[len] = 0;
			/* the highest number in the list is the last one */
			long hi = -1;
			for (char *p = buf; *p;) {
				if (*p < '0' || *p > '9') { /* '-', ',', '\n' */
					p++;
					continue;
				}
				char *end;
				long v = strtol(p, &end, 10);
				if (v > hi)
					hi = v;
				p = end;
			}
			if (hi >= 0)
				n = (int)hi + 1;
		}
	}
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_CONF);
		n = c > 0 ? (int)c : 1;
	}
	atomic_store_explicit(&nr_cpu_ids_cache, n, memory_order_relaxed);
	return n;
}

void umcg__die(const char *fmt, ...)
{
	char buf[256];
	int len = snprintf(buf, sizeof buf, "umcg: killing task %u: ", umcg__gettid());
	va_list ap;
	va_start(ap, fmt);
	if (len > 0 && len < (int)sizeof buf)
		len += vsnprintf(buf + len, sizeof buf - (size_t)len, fmt, ap);
	va_end(ap);
	if (len >= (int)sizeof buf - 1)
		len = (int)sizeof buf - 2;
	buf[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, (size_t)len);
	(void)w;
	/*
	 * Like the kernel's force_sig(SIGSEGV): the default action, even if
	 * the application handles, ignores or blocks SIGSEGV. It terminates
	 * the whole process (as it does for a thread group in the kernel).
	 */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGSEGV, &sa, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGSEGV);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	syscall(SYS_tgkill, getpid(), umcg__gettid(), SIGSEGV);
	abort(); /* not reached */
}

/* Computed at load time, so that a fork child never needs to. */
__attribute__((constructor)) static void nr_cpu_ids_init(void)
{
	umcg_nr_cpu_ids();
}
