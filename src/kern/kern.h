/* SPDX-License-Identifier: MIT */
/*
 * kern.h - libumcg's emulation of the kernel side of UMCG v0.3.
 *
 * The kernel keeps, per UMCG task, the user pointer to struct umcg_task
 * and a "this is a worker" flag; everything else is in user memory. We do
 * the same in struct umcg_ktask (our task_struct), plus what the kernel
 * gets for free from the scheduler: a way to put the task to sleep and to
 * wake it ("ttwu"), and its placement.
 *
 * Sleep/wake ("ttwu") protocol, per ktask:
 *   - the sleeper (only ever the task itself) publishes sleeping = 1,
 *     reads wake_seq, re-reads its ABI state word, and FUTEX_WAITs on
 *     wake_seq with the value it read, unless the state already says
 *     RUNNING;
 *   - a waker first writes the target's state (that is the caller's job,
 *     as with the real syscalls), then increments wake_seq and, if the
 *     target may be sleeping, FUTEX_WAKEs it.
 *   Orderings: the increment is a seq_cst RMW and the sleeper's store of
 *   `sleeping` and load of wake_seq are seq_cst, so either the waker sees
 *   sleeping == 1 (and issues the futex wake), or the sleeper's load of
 *   wake_seq already returns the increment; in that case it also sees the
 *   state written before it (the RMW is a release, the load an acquire),
 *   or its FUTEX_WAIT fails with EAGAIN because wake_seq moved. A wake is
 *   never lost; spurious wake-ups only cause a re-check.
 *   The futex word is in library memory, never in user memory: a stale
 *   waker can only cause a spurious wake, never touch freed user memory.
 *
 * Lifetime: ktasks are type-stable. They are allocated from a pool and
 * never freed, only recycled, so a tid lookup that races with unregister
 * returns a ktask that is still valid memory (at worst recycled: a
 * spurious wake-up, which every sleeper tolerates). Lookups compare the
 * ktask's tid after loading it. Like the v0.3 kernel, we cannot make the
 * *user* struct of a task that unregisters concurrently safe to touch;
 * user space must not free a struct before its thread unregistered and
 * its peers stopped naming its tid.
 */
#ifndef UMCG_KERN_H
#define UMCG_KERN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "umcg.h"

#ifdef UMCG_BUILD_SHARED
#define UMCG_EXPORT __attribute__((visibility("default")))
#else
#define UMCG_EXPORT
#endif

struct umcg_ktask {
	/* The registered struct; NULL while the ktask is free. */
	_Atomic(struct umcg_task *) self;
	/* Kernel tid of the owner; written before publication in the registry. */
	_Atomic uint32_t tid;
	/*
	 * Fields a waker reads after a lookup are atomic (relaxed is enough:
	 * they are published by the registry's release store), because a
	 * racing waker may read a record that is being recycled for a new
	 * registration; it then reads a stale or new value, never a torn one.
	 */
	_Atomic bool worker;
	/* futex word of the sleep/wake protocol above */
	_Atomic uint32_t wake_seq;
	_Atomic uint32_t sleeping;
	/*
	 * Nesting of block/wake points, touched only by the task itself and
	 * its signal handlers (seq_cst, so a handler sees program order): 0 =
	 * outside, 1 = between a block point and its wake point or inside a
	 * wake point, >1 = a nested pair (a handler calling a wrapper), which
	 * does nothing: the v0.3 kernel cleared PF_UMCG_WORKER for the same
	 * reason while it ran T7.
	 */
	_Atomic int hook_depth;
	/* Placement: the CPU we pinned the task to, or -1 (not pinned by us). */
	_Atomic int pinned_cpu;
	/* Affinity of the thread at registration: the "allowed" CPUs (bitmap). */
	_Atomic uint64_t allowed[CPU_SETSIZE / 64];
	/* allowed holds exactly one CPU: the task "stands for" that CPU. */
	_Atomic bool bound;
	/*
	 * Transparent detection (src/detect/detect.h). Worker side: the
	 * detection word, the perf event and its ring (owner opens/closes
	 * them; others read the ring only under det_lock, which also guards
	 * det_last), and the deferred park of a signal that arrived while
	 * the worker was inside a libumcg section (owner and its handler).
	 */
	_Atomic int det;
	_Atomic int det_fd;
	void *det_ring;
	int alarm_fd; /* the switch-in alarm of a TAKEN_RAW worker (perf.c) */
	void *alarm_ring;
	_Atomic int det_lock;
	int det_last;
	int nopark;
	/*
	 * An explicit umcg_block_point() made us BLOCKED: det is LIB until the
	 * wake point that ends the pair, which stores this value back (wait.c).
	 * 0: none. Owner and its handlers only.
	 */
	int det_explicit;
	bool klocked; /* kernel backend: LOCKED set by umcg__nopark_enter (owner only) */
	_Atomic bool park_pending;
	/*
	 * Server side: the worker this server runs and whose sleeps its
	 * watcher thread looks for (NULL: none), and that watcher (created
	 * on first use, kept when the ktask is recycled).
	 */
	_Atomic(struct umcg_ktask *) supervise;
	_Atomic(struct umcg_watcher *) watcher; /* published with release (watcher.c) */
	_Atomic bool watch_moved; /* registered anew: the watcher follows its affinity */
	/* Pool free-list link. */
	struct umcg_ktask *free_next;
};

/* ---- backend (backend.c) ----------------------------------------------- */
/* Who plays the kernel's part: see backend.c. */
enum { UMCG__B_USER = 1, UMCG__B_KERNEL = 2, UMCG__B_NONE = 3 /* forced kernel, absent */ };
extern _Atomic int umcg__backend_v;
int umcg__backend_slow(void);
static inline int umcg__backend(void)
{
	/* acquire: pairs with the deciding CAS, which published the syscall numbers */
	int b = atomic_load_explicit(&umcg__backend_v, memory_order_acquire);
	return b ? b : umcg__backend_slow();
}

static inline bool umcg__on_kernel(void)
{
	return umcg__backend() == UMCG__B_KERNEL;
}

/* Kernel backend: the system calls (0/positive or -errno) and a library-side wake. */
long umcg__kctl(uint32_t flags, struct umcg_task *self);
long umcg__kwait(uint32_t flags, uint64_t abs_timeout);
void umcg__kwake(uint32_t tid, bool current_cpu);

/* ---- registry (registry.c) --------------------------------------------- */
struct umcg_ktask *umcg__ktask_alloc(void);
void umcg__ktask_free(struct umcg_ktask *k);
/* Publish k under tid / withdraw it. */
int umcg__registry_insert(uint32_t tid, struct umcg_ktask *k);
void umcg__registry_remove(uint32_t tid);
/* The registered ktask of tid, or NULL. */
struct umcg_ktask *umcg__registry_lookup(uint32_t tid);
/* The calling thread's ktask, or NULL. */
struct umcg_ktask *umcg__current(void);
void umcg__set_current(struct umcg_ktask *k);

/* ---- scheduling primitives (sched.c) ----------------------------------- */
/* ttwu: wake k; with current_cpu, place it on the caller's CPU if allowed. */
void umcg__ttwu(struct umcg_ktask *k, bool current_cpu);

/*
 * The idle loop of spec 5.2: sleep until k's state low byte is RUNNING.
 * Returns 0, -EINTR (only if interruptible) or -ETIMEDOUT.
 */
int umcg__idle_loop(struct umcg_ktask *k, uint64_t abs_timeout, bool interruptible);
/*
 * The same for a server whose context switch ran the detected worker w:
 * it also looks for w's sleep itself (T6) before each sleep and every
 * 1-8 ms (sched.c). w NULL: umcg__idle_loop().
 */
int umcg__idle_loop_watch(struct umcg_ktask *k, uint64_t abs_timeout, bool interruptible,
			  struct umcg_ktask *w);
/* cpu_set_t -> k->allowed */
void umcg__set_allowed(struct umcg_ktask *k, const cpu_set_t *set);
/* Undo our pinning of k (restore its registration-time affinity). */
void umcg__unpin(struct umcg_ktask *k);
extern _Atomic int umcg__current_cpu_hint;

/* ---- block and wake points (hooks.c) ----------------------------------- */
/* T6: k (a worker) is about to block. 1 if it became BLOCKED. */
int umcg__block_point(struct umcg_ktask *k);
/*
 * The same, for a caller that calls the wake point only when this returns 1
 * (the runtime's preemption handler): a call that does nothing (nested, not
 * RUNNING, LOCKED) leaves hook_depth as it was. umcg__block_point() leaves
 * the pair open for its wake point; called alone, its leftover depth made
 * every later block point of the thread a nested no-op until its next wake
 * point - an endless worker signalled once in the window before it became
 * RUNNING could then never be preempted.
 */
int umcg__block_point_unpaired(struct umcg_ktask *k);
/* T7: k (a worker, the caller itself) returned from a sleep. 1 if it parked. */
int umcg__wake_point(struct umcg_ktask *k);
/* Wake the server named by tid as the kernel does (IDLE -> RUNNING + ttwu). */
void umcg__wake_server(uint32_t server_tid, bool current_cpu);
/*
 * First half of a server wake-up, for callers inside a read section: CAS
 * the server's state IDLE -> RUNNING. Returns the ktask to umcg__ttwu()
 * after the section, or NULL if no ttwu is needed (already RUNNING, gone).
 */
struct umcg_ktask *umcg__server_make_running(uint32_t server_tid, bool die_if_unknown);
/*
 * The part of T7 after the (seq_cst) append: wake one idle server
 * through t's mechanisms (stack, tid word, eventfd; umcg_idle.h). Exposed
 * for tests, which drive the waker's side with unregistered dummy workers.
 */
void umcg__wake_idle_server(struct umcg_task *t);

/*
 * Sections of libumcg that a worker must not be parked in by the
 * detection signal (read sections, the GC's locks): the handler defers
 * the park to the end of the outermost section.
 */
/*
 * On the kernel backend every sleep of a worker is a block: one inside
 * such a section (a contended lock, a page fault) would wake its server,
 * which may then wait for the lock the parked worker holds. There the
 * outermost section makes a RUNNING worker LOCKED (umcg__klock(), in
 * backend.c): the kernel leaves its sleeps alone, as v0.3 intends LOCKED.
 */
void umcg__nopark_leave_slow(struct umcg_ktask *k);
void umcg__klock(struct umcg_ktask *k, bool on);
static inline void umcg__nopark_enter(void)
{
	struct umcg_ktask *k = umcg__current();
	if (k) {
		if (k->nopark++ == 0 && k->worker && umcg__on_kernel())
			umcg__klock(k, true);
		atomic_signal_fence(memory_order_seq_cst); /* before the section, for the handler */
	}
}

static inline void umcg__nopark_leave(void)
{
	struct umcg_ktask *k = umcg__current();
	if (k) {
		atomic_signal_fence(memory_order_seq_cst); /* after the section */
		if (--k->nopark == 0 && k->klocked)
			umcg__klock(k, false);
		if (k->nopark == 0 && atomic_load_explicit(&k->park_pending, memory_order_relaxed))
			umcg__nopark_leave_slow(k);
	}
}

/* Bumped in a fork child: per-ktask helper threads of the parent are gone. */
extern _Atomic unsigned umcg__fork_gen;

/* ---- misc (util) ------------------------------------------------------- */
uint32_t umcg__gettid(void);
/* "The kernel kills the task": diagnostic on stderr, then SIGSEGV. */
__attribute__((noreturn)) void umcg__die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ABI word accessors (user memory, accessed with __atomic builtins). */
static inline uint32_t umcg__load_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint64_t umcg__load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

#endif
