/* SPDX-License-Identifier: MIT */
/*
 * ctl.c - umcg_ctl(): registration (T1, T2), unregistration (T10),
 * thread exit (T11). fork (T12) is handled in registry.c.
 *
 * Validation order (spec 6.1), with our documented deviations marked (*):
 *   1. flags == UNREGISTER: self must be NULL and the caller registered,
 *      else EINVAL; unregister; 0.
 *   2. REGISTER missing, or other bits than WORKER -> EINVAL.
 *   3. already registered -> EINVAL.
 *   4. copy the 64 bytes of *self -> EFAULT (NULL or unreadable).
 *   4b.(*) self not 64-byte aligned -> EINVAL (v0.3 had no check; our
 *      atomics and the ABI need natural alignment; PeterZ's v2 checks it).
 *   5. api_version != 1 -> return 1 (the highest supported version).
 *   6. server_tid or next_tid non-zero -> EINVAL.
 *   7. worker: state must be exactly IDLE -> else EINVAL;
 *      (*) idle_workers_ptr == 0 -> EINVAL (v0.3 killed the worker at its
 *      first wake point; the header documents the field as required).
 *      Then T2: queue as idle, wake an idle server, sleep until RUNNING.
 *   8. server: state must be exactly RUNNING -> else EINVAL.
 *   (*) out of memory for the task record -> ENOMEM.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "detect/detect.h"
#include "kern/kern.h"

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void unregister(struct umcg_ktask *k, bool exiting)
{
	uint32_t tid = atomic_load_explicit(&k->tid, memory_order_relaxed);
	if (!exiting)
		umcg__det_lib_enter(k); /* a pending take-over parks first */
	umcg__det_close(k);
	umcg__registry_remove(tid);
	if (!exiting)
		umcg__unpin(k); /* give the thread back its own affinity */
	umcg__set_current(NULL);
	umcg__ktask_free(k);
}

/* T11: a registered thread exits: forget it; its server is not woken. */
static void on_thread_exit(void *p)
{
	struct umcg_ktask *k = p;
	if (k && umcg__current() == k)
		unregister(k, true);
}

static void make_exit_key(void)
{
	pthread_key_create(&exit_key, on_thread_exit);
}

/* Copy *self like copy_from_user: EFAULT instead of SIGSEGV on a bad pointer. */
static int copy_from_user(struct umcg_task *dst, const struct umcg_task *src)
{
	if (!src)
		return -EFAULT;
	struct iovec local = {dst, sizeof *dst};
	struct iovec remote = {(void *)(uintptr_t)src, sizeof *src};
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)sizeof *dst)
		return 0;
	if (n >= 0 || errno == EFAULT)
		return -EFAULT;
	/* process_vm_readv unavailable (seccomp, old kernel): trust the pointer */
	memcpy(dst, src, sizeof *dst);
	return 0;
}

/*
 * A new ktask for the caller, published in the registry and as the
 * thread's current task. NULL: out of memory.
 */
static struct umcg_ktask *publish(struct umcg_task *self, bool worker)
{
	struct umcg_ktask *k = umcg__ktask_alloc();
	if (!k)
		return NULL;
	uint32_t tid = umcg__gettid();
	atomic_store_explicit(&k->worker, worker, memory_order_relaxed);
	atomic_store_explicit(&k->pinned_cpu, -1, memory_order_relaxed);
	atomic_store_explicit(&k->sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&k->hook_depth, 0, memory_order_relaxed);
	atomic_store_explicit(&k->det, DET_OFF, memory_order_relaxed);
	k->det_explicit = 0;
	atomic_store_explicit(&k->supervise, NULL, memory_order_relaxed);
	atomic_store_explicit(&k->park_pending, false, memory_order_relaxed);
	atomic_store_explicit(&k->watch_moved, true, memory_order_relaxed);
	k->nopark = 0;
	k->klocked = false;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof allowed, &allowed))
		CPU_ZERO(&allowed); /* no placement hints for this task */
	umcg__set_allowed(k, &allowed);
	atomic_store_explicit(&k->bound, CPU_COUNT(&allowed) == 1, memory_order_relaxed);
	atomic_store_explicit(&k->tid, tid, memory_order_relaxed);
	atomic_store_explicit(&k->self, self, memory_order_relaxed);
	if (umcg__registry_insert(tid, k)) { /* release: publishes the fields above */
		umcg__ktask_free(k);
		return NULL;
	}
	umcg__set_current(k);
	pthread_once(&exit_key_once, make_exit_key);
	pthread_setspecific(exit_key, k);
	return k;
}

/*
 * Kernel backend (backend.c): the system call validates (the same order
 * and errno) and runs T2; the registry records the task only then, for
 * umcg_self() and library-side wake-ups by tid (a worker in T2 is not
 * looked up, and a server is not idle before its umcg_ctl() returns).
 */
static int register_kernel(uint32_t flags, struct umcg_task *self)
{
	long r = umcg__kctl(flags, self);
	if (r)
		return (int)r;
	if (!publish(self, flags & UMCG_CTL_WORKER)) {
		umcg__kctl(UMCG_CTL_UNREGISTER, NULL);
		return -ENOMEM;
	}
	return 0;
}

static int do_register(uint32_t flags, struct umcg_task *self)
{
	if (umcg__on_kernel())
		return register_kernel(flags, self);
	struct umcg_task copy;
	bool worker = flags & UMCG_CTL_WORKER;
	int r = copy_from_user(&copy, self);
	if (r)
		return r;
	if ((uintptr_t)self % _Alignof(struct umcg_task))
		return -EINVAL;
	if (copy.api_version != UMCG_API_VERSION)
		return UMCG_API_VERSION;
	if (copy.server_tid || copy.next_tid)
		return -EINVAL;
	if (worker && (copy.state != UMCG_TASK_IDLE || !copy.idle_workers_ptr))
		return -EINVAL;
	if (!worker && copy.state != UMCG_TASK_RUNNING)
		return -EINVAL;

	struct umcg_ktask *k = publish(self, worker);
	if (!k)
		return -ENOMEM;
	if (worker) {
		/* det LIB from here (if detected): T2's sleeps are ours */
		bool detected = umcg__det_open(k, true) == 0;
		umcg__wake_point(k); /* T2: queue, wake an idle server, wait to run */
		if (detected)
			umcg__det_lib_leave(k, DET_USER);
	}
	return 0;
}

UMCG_EXPORT int umcg_ctl(uint32_t flags, struct umcg_task *self)
{
	struct umcg_ktask *cur = umcg__current();
	int r;
	if (umcg__backend() == UMCG__B_NONE) {
		r = -ENOSYS; /* UMCG_BACKEND=kernel without UMCG in the kernel */
	} else if (flags == UMCG_CTL_UNREGISTER) {
		if (self || !cur) {
			r = -EINVAL;
		} else if (umcg__on_kernel() && (r = (int)umcg__kctl(flags, NULL)) < 0) {
			/* the kernel refused (cannot happen while we agree on registration) */
		} else {
			pthread_setspecific(exit_key, NULL);
			unregister(cur, false);
			r = 0;
		}
	} else if (!(flags & UMCG_CTL_REGISTER) ||
		   (flags & ~UMCG_CTL_REGISTER) & ~UMCG_CTL_WORKER) {
		r = -EINVAL;
	} else if (cur) {
		r = -EINVAL;
	} else {
		r = do_register(flags, self);
	}
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

UMCG_EXPORT struct umcg_task *umcg_self(void)
{
	struct umcg_ktask *k = umcg__current();
	return k ? atomic_load_explicit(&k->self, memory_order_relaxed) : NULL;
}

UMCG_EXPORT int umcg_detect_thread(int on)
{
	struct umcg_ktask *k = umcg__current();
	if (!k || !k->worker || on < -1 || on > 1) {
		errno = EINVAL;
		return -1;
	}
	if (umcg__on_kernel()) {
		if (on)
			return 1;   /* the kernel reports every sleep of a worker */
		errno = EOPNOTSUPP; /* and cannot be told not to: use LOCKED */
		return -1;
	}
	bool is_on = atomic_load_explicit(&k->det, memory_order_relaxed) != DET_OFF;
	if (on < 0 || on == is_on)
		return is_on;
	int prev = umcg__det_lib_enter(k); /* a pending take-over parks first */
	if (!on) {
		umcg__det_close(k);
		return 0;
	}
	int r = umcg__det_open(k, false);
	if (r) {
		errno = -r;
		return -1;
	}
	umcg__det_lib_leave(k, prev == DET_OFF ? DET_USER : prev);
	return 1;
}
