/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kt.h - tiny harness for the in-guest kernel tests: every case runs in a
 * forked child with an alarm; a case passes if the child exits 0. The
 * binary prints "N passed, N failed" and exits 1 if any case failed.
 *
 * The UMCG calls are raw syscalls; their numbers come from the marker
 * /proc/sys/kernel/umcg_syscalls (never a bare number on an unknown
 * kernel). The struct and constants mirror include/uapi/linux/umcg.h.
 */
#ifndef KT_H
#define KT_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UMCG_API_VERSION	 1
#define UMCG_TASK_NONE		 0u
#define UMCG_TASK_RUNNING	 1u
#define UMCG_TASK_IDLE		 2u
#define UMCG_TASK_BLOCKED	 3u
#define UMCG_TF_STATE_MASK	 0xffu
#define UMCG_TF_LOCKED		 (1u << 8)
#define UMCG_CTL_REGISTER	 0x00001u
#define UMCG_CTL_UNREGISTER	 0x00002u
#define UMCG_CTL_WORKER		 0x10000u
#define UMCG_WAIT_WAKE_ONLY	 1u
#define UMCG_WAIT_WF_CURRENT_CPU 2u
#define UMCG_IDLE_NODE_DELETED	 1ull

struct umcg_task {
	uint32_t state;
	uint32_t api_version;
	uint32_t server_tid;
	uint32_t next_tid;
	uint64_t idle_servers_ptr;
	uint64_t idle_workers_ptr;
	uint64_t idle_fd_ptr;
	uint64_t idle_server_tid_ptr;
	uint64_t reserved[2];
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct umcg_task) == 64, "size");

static long kt_nr_ctl = -1, kt_nr_wait = -1;

/* Read the marker; 0 if the kernel has UMCG. */
static int kt_probe(void)
{
	FILE *f = fopen("/proc/sys/kernel/umcg_syscalls", "r");
	if (!f)
		return -1;
	int n = fscanf(f, "%ld %ld", &kt_nr_ctl, &kt_nr_wait);
	fclose(f);
	return n == 2 ? 0 : -1;
}

static inline long umcg_ctl(uint32_t flags, struct umcg_task *self)
{
	return syscall(kt_nr_ctl, flags, self);
}

static inline long umcg_wait(uint32_t flags, uint64_t abs_timeout)
{
	return syscall(kt_nr_wait, flags, abs_timeout);
}

static inline uint32_t kt_tid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

static inline uint64_t kt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint32_t kt_load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void kt_store(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline void kt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			printf("  %s:%d: CHECK(%s) failed (errno %d %s)\n", __FILE__, __LINE__,    \
			       #c, errno, strerror(errno));                                        \
			fflush(stdout);                                                            \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* CHECK_ERR(call, E): call returns -1 with errno E */
#define CHECK_ERR(call, e)                                                                         \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (call);                                                                  \
		if (r_ != -1 || errno != (e)) {                                                    \
			printf("  %s:%d: %s = %ld errno %d (%s), want -1 errno %d (%s)\n",         \
			       __FILE__, __LINE__, #call, r_, errno, strerror(errno), (e),         \
			       strerror(e));                                                       \
			fflush(stdout);                                                            \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Spin (yielding) until cond holds; fail the case after ms milliseconds. */
#define WAIT_FOR(cond, ms)                                                                         \
	do {                                                                                       \
		uint64_t dl_ = kt_now() + (uint64_t)(ms)*1000000ull;                               \
		while (!(cond)) {                                                                  \
			if (kt_now() > dl_) {                                                      \
				printf("  %s:%d: timed out waiting for %s\n", __FILE__, __LINE__,  \
				       #cond);                                                     \
				fflush(stdout);                                                    \
				_exit(1);                                                          \
			}                                                                          \
			sched_yield();                                                             \
		}                                                                                  \
	} while (0)

struct kt_case {
	const char *name;
	void (*fn)(void);
	int timeout_s;
};

#define KT_CASE(f)                                                                                 \
	{                                                                                          \
#f, f, 60                                                                          \
	}
#define KT_CASE_T(f, t)                                                                            \
	{                                                                                          \
#f, f, t                                                                           \
	}

/* Called (in the case's process) when its alarm fires, before it dies. */
static void (*kt_on_timeout)(void);

/* Print every thread's state and wait channel, and all stacks (sysrq t). */
static void kt_dump_tasks(void)
{
	char path[64], buf[256];
	for (int tid = getpid(); tid < getpid() + 16; tid++) {
		snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof buf, f))
			printf("  task %s", buf);
		fclose(f);
		snprintf(path, sizeof path, "/proc/self/task/%d/wchan", tid);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof buf, f))
			printf("    wchan %s\n", buf);
		if (f)
			fclose(f);
	}
	FILE *s = fopen("/proc/sysrq-trigger", "w");
	if (s) {
		fputs("t", s);
		fclose(s);
	}
}

static void kt_alarm(int sig)
{
	if (kt_on_timeout)
		kt_on_timeout();
	kt_dump_tasks();
	fflush(stdout);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int kt_main(const struct kt_case *cases, int n)
{
	int pass = 0, fail = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (kt_probe()) {
		printf("no UMCG marker in /proc/sys/kernel: not a UMCG kernel\n");
		printf("0 passed, %d failed\n", n);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		uint64_t t0 = kt_now();
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGALRM, kt_alarm);
			alarm((unsigned)cases[i].timeout_s);
			cases[i].fn();
			fflush(stdout);
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		double ms = (double)(kt_now() - t0) / 1e6;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			pass++;
			printf("ok   %s (%.0f ms)\n", cases[i].name, ms);
		} else {
			fail++;
			if (WIFSIGNALED(st))
				printf("FAIL %s (signal %d%s)\n", cases[i].name, WTERMSIG(st),
				       WTERMSIG(st) == SIGALRM ? ": timeout" : "");
			else
				printf("FAIL %s (exit %d)\n", cases[i].name, WEXITSTATUS(st));
		}
	}
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}

#define KT_MAIN(...)                                                                               \
	int main(void)                                                                             \
	{                                                                                          \
		static const struct kt_case c_[] = {__VA_ARGS__};                                  \
		return kt_main(c_, (int)(sizeof c_ / sizeof c_[0]));                               \
	}

#endif /* KT_H */
