/* SPDX-License-Identifier: MIT */
/*
 * backend.c - who plays the kernel's part: the running kernel (a Linux
 * with the UMCG patch of kernel/) or libumcg's own emulation (the rest of
 * src/kern/, with src/detect/ for block detection).
 *
 * Decision, made once per process on the first call that needs it
 * (umcg__backend_slow()):
 *   UMCG_BACKEND=user    the emulation;
 *   UMCG_BACKEND=kernel  the kernel, or "none" if it lacks UMCG: then
 *                        umcg_ctl() and umcg_wait() fail with ENOSYS and
 *                        one line on stderr says why;
 *   unset, "auto"        the kernel if it has UMCG, else the emulation
 *                        (any other value: the same, with a stderr line).
 * "The kernel has UMCG" means: /proc/sys/kernel/umcg_version reads 1 and
 * /proc/sys/kernel/umcg_syscalls gives the two syscall numbers. We never
 * call a bare syscall number: 451/452 are other calls on newer kernels.
 *
 * The seam. On the kernel backend:
 *   - umcg_ctl()/umcg_wait() are the system calls (ctl.c, wait.c). The
 *     registry (registry.c) still records registered threads, as the
 *     kernel's task list does, so that umcg_self() and library code that
 *     wakes a server by tid (umcg_idle_servers_wake(), the tid word's
 *     chaining) find the struct; ktask fields for the emulation's sleep,
 *     placement and detection stay unused.
 *   - the block and wake points are no-ops (hooks.c): the kernel's hooks
 *     run at every real sleep of a worker, so a wrapper (umcg_wrap.h)
 *     becomes the plain call, and detection is never opened.
 *   - a library-side wake-up (umcg__ttwu(), sched.c) is umcg_wait(WAKE_ONLY)
 *     with next_tid set: umcg__kwake() below.
 * The runtime (src/rt/) uses only the public calls and works on both.
 *
 * The decision is a relaxed atomic int: deciding twice (two threads, or a
 * handler) gives the same answer from the same files, so the first CAS
 * from UNSET wins and only the winner prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kern/kern.h"

_Atomic int umcg__backend_v; /* UMCG__B_* ; 0 = not decided yet */
/*
 * Written before the release CAS that publishes the decision; atomic
 * (relaxed) because two threads deciding at once both write them (the
 * same values).
 */
static _Atomic long nr_ctl, nr_wait;

/* Read a small /proc file (open/read: usable in fork children and handlers). */
static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* 1 if the running kernel has UMCG (and fills the numbers), else 0. */
static int probe_kernel(long *ctl, long *wait)
{
	char buf[64];
	char *end;
	if (read_small("/proc/sys/kernel/umcg_version", buf, sizeof buf) ||
	    strtol(buf, NULL, 10) != UMCG_API_VERSION)
		return 0;
	if (read_small("/proc/sys/kernel/umcg_syscalls", buf, sizeof buf))
		return 0;
	*ctl = strtol(buf, &end, 10);
	*wait = strtol(end, NULL, 10);
	return *ctl > 0 && *wait > 0;
}

int umcg__backend_slow(void)
{
	const char *e = getenv("UMCG_BACKEND");
	long c = 0, w = 0;
	int have = probe_kernel(&c, &w);
	int b = have ? UMCG__B_KERNEL : UMCG__B_USER;
	const char *msg = NULL;
	if (e && !strcmp(e, "user"))
		b = UMCG__B_USER;
	else if (e && !strcmp(e, "kernel") && !have) {
		b = UMCG__B_NONE;
		msg = "libumcg: UMCG_BACKEND=kernel, but this kernel has no UMCG "
		      "(no /proc/sys/kernel/umcg_version): umcg_ctl() fails with ENOSYS\n";
	} else if (e && *e && strcmp(e, "kernel") && strcmp(e, "auto"))
		msg = "libumcg: UMCG_BACKEND is not kernel, user or auto: using auto\n";
	atomic_store_explicit(&nr_ctl, c, memory_order_relaxed);
	atomic_store_explicit(&nr_wait, w, memory_order_relaxed);
	int expected = 0;
	if (atomic_compare_exchange_strong_explicit(&umcg__backend_v, &expected, b,
						    memory_order_release, memory_order_acquire)) {
		if (msg && write(2, msg, strlen(msg)) < 0) {
			/* nothing to do: stderr is gone */
		}
		return b;
	}
	return expected;
}

UMCG_EXPORT int umcg_backend(void)
{
	int b = umcg__backend();
	if (b == UMCG__B_NONE) {
		errno = ENOSYS;
		return -1;
	}
	return b == UMCG__B_KERNEL ? UMCG_BACKEND_KERNEL : UMCG_BACKEND_USER;
}

/* The two system calls, kernel backend only: 0/positive or -errno. */
long umcg__kctl(uint32_t flags, struct umcg_task *self)
{
	long r = syscall(atomic_load_explicit(&nr_ctl, memory_order_relaxed), flags, self);
	return r < 0 ? -errno : r;
}

long umcg__kwait(uint32_t flags, uint64_t abs_timeout)
{
	long r = syscall(atomic_load_explicit(&nr_wait, memory_order_relaxed), flags, abs_timeout);
	return r < 0 ? -errno : r;
}

/*
 * Wake tid from library code (the emulation's ttwu). The kernel wakes
 * only through umcg_wait(WAKE_ONLY), which takes the target from the
 * caller's own next_tid and needs a registered caller. A registered
 * caller lends its next_tid for the call (only the task itself reads it,
 * in its own umcg_wait(); a signal handler that calls umcg_wait() in
 * between would see our value: library wake-ups do not run in handlers).
 * An unregistered caller (a non-UMCG thread calling
 * umcg_idle_servers_wake()) registers a server for the call, with a
 * thread-local struct: three system calls, on a path that is not hot.
 * Errors (the target exited: ESRCH) are ignored, as a stale ttwu is.
 */
void umcg__kwake(uint32_t tid, bool current_cpu)
{
	static __thread struct umcg_task tmp;
	uint32_t fl = UMCG_WAIT_WAKE_ONLY | (current_cpu ? UMCG_WAIT_WF_CURRENT_CPU : 0);
	struct umcg_task *self = umcg_self();
	if (self) {
		uint32_t old = __atomic_load_n(&self->next_tid, __ATOMIC_RELAXED);
		__atomic_store_n(&self->next_tid, tid, __ATOMIC_RELAXED);
		umcg__kwait(fl, 0);
		__atomic_store_n(&self->next_tid, old, __ATOMIC_RELAXED);
		return;
	}
	memset(&tmp, 0, sizeof tmp);
	tmp.state = UMCG_TASK_RUNNING;
	tmp.api_version = UMCG_API_VERSION;
	if (umcg__kctl(UMCG_CTL_REGISTER, &tmp))
		return;
	tmp.next_tid = tid;
	umcg__kwait(fl, 0);
	umcg__kctl(UMCG_CTL_UNREGISTER, NULL);
}

/*
 * Kernel backend: LOCKED around a libumcg section of a worker (kern.h,
 * umcg__nopark_enter). Only a RUNNING, unlocked worker is locked (one
 * that is LOCKED already, e.g. the runtime's IDLE|LOCKED hand-over, stays
 * as it is), and only what we set is cleared. The worker owns its state
 * word while it runs; the CAS and fetch_and keep any bit another thread
 * may change meanwhile (user bits).
 */
void umcg__klock(struct umcg_ktask *k, bool on)
{
	struct umcg_task *t = atomic_load_explicit(&k->self, memory_order_relaxed);
	if (!on) {
		__atomic_fetch_and(&t->state, ~UMCG_TF_LOCKED, __ATOMIC_RELEASE);
		k->klocked = false;
		return;
	}
	uint32_t st = umcg__load_u32(&t->state);
	while ((st & UMCG_TF_STATE_MASK) == UMCG_TASK_RUNNING && !(st & UMCG_TF_LOCKED)) {
		if (__atomic_compare_exchange_n(&t->state, &st, st | UMCG_TF_LOCKED, false,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
			k->klocked = true;
			return;
		}
	}
}
