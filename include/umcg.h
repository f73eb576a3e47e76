/* SPDX-License-Identifier: MIT */
/*
 * umcg.h - User Managed Concurrency Groups, the UMCG RFC v0.3 ABI on stock Linux.
 *
 * This header is the whole kernel-facing contract of the v0.3 proposal
 * (struct umcg_task, states, flags, umcg_ctl(), umcg_wait()), implemented
 * in user space by libumcg, plus the two "kernel hook" entry points that
 * a worker calls around a possibly blocking operation (umcg_block_point()
 * / umcg_wake_point()) because no kernel patch is available to call them.
 *
 * Errors: every call returns -1 and sets errno as documented in
 * docs/man/ (one page per call). The only positive return is
 * umcg_ctl(REGISTER) with an unsupported api_version, which returns the
 * highest supported version (1).
 *
 * The ABI words are plain integers, exactly as in the uapi header. Other
 * threads (and libumcg) access them atomically; user code should use the
 * GCC/Clang __atomic builtins (C11 memory model) or the umcg_state_*()
 * helpers below whenever a word may be read or written concurrently.
 */
#ifndef UMCG_H
#define UMCG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ABI version ------------------------------------------------------ */

/* The only api_version this library implements. */
#define UMCG_API_VERSION 1

/* ---- state word (struct umcg_task::state) ----------------------------- */
/*
 * bits 0-7   task state (UMCG_TASK_*)
 * bits 8-15  state flags (UMCG_TF_*)
 * bits 16-23 reserved, must be zero
 * bits 24-31 free for user space (never interpreted by the library)
 */
#define UMCG_TASK_NONE	  0u
#define UMCG_TASK_RUNNING 1u
#define UMCG_TASK_IDLE	  2u
#define UMCG_TASK_BLOCKED 3u /* workers only */

#define UMCG_TF_STATE_MASK 0xffu
/* Locked by user space: block and wake detection ignore the worker. */
#define UMCG_TF_LOCKED (1u << 8)
/*
 * Extension (timeouts are not in v0.3): set by libumcg on a worker whose
 * umcg_wait() deadline passed, from the moment it claims itself (CAS
 * IDLE -> IDLE|TIMEDOUT) until a server runs it. The worker is then on
 * (or on its way to) its idle-workers list and belongs to whoever pops
 * it: a direct wake-up that CASes the exact IDLE word fails. See
 * umcg_wait(3), "Timeouts".
 */
#define UMCG_TF_TIMEDOUT  (1u << 10)
#define UMCG_TF_USER_MASK 0xff000000u

/* ---- umcg_ctl() flags ------------------------------------------------- */
#define UMCG_CTL_REGISTER   0x00001u
#define UMCG_CTL_UNREGISTER 0x00002u
#define UMCG_CTL_WORKER	    0x10000u

/* ---- umcg_wait() flags ------------------------------------------------ */
/* Wake next_tid and return without sleeping. */
#define UMCG_WAIT_WAKE_ONLY 1u
/* With WAKE_ONLY: place the woken task on the caller's CPU if allowed. */
#define UMCG_WAIT_WF_CURRENT_CPU 2u

/* ---- idle lists ------------------------------------------------------- */
/* Bit 0 of an idle-servers node word: the node was popped ("deleted"). */
#define UMCG_IDLE_NODE_DELETED 1ull

/*
 * struct umcg_task - one per UMCG thread, normally in its TLS.
 *
 * @state:            UMCG_TASK_* | UMCG_TF_* | user bits; see above.
 * @api_version:      must be UMCG_API_VERSION when registering; never changed.
 * @server_tid:       worker: tid of the server to wake when this worker
 *                    blocks (0 = none). server: its own tid, used to wake it
 *                    after it was popped from the idle-servers stack. Must
 *                    be 0 at registration.
 * @next_tid:         tid to wake / switch to in umcg_wait(); 0 = none. Must
 *                    be 0 at registration. Not consumed by the library.
 * @idle_servers_ptr: worker: address of the shared idle-servers head (a
 *                    uint64_t), or 0 for "no idle-server stack".
 *                    server: its own link node while on that stack.
 * @idle_workers_ptr: worker: address of the shared idle-workers head (a
 *                    uint64_t) while not queued; the "next" link while
 *                    queued. Must be non-zero for workers.
 *
 * Extensions in v0.3's padding (bytes 32-63). A struct whose extension
 * words are 0 behaves exactly as v0.3; the words are read at every wake
 * point, so a scheduler may change them while the worker is not queued.
 * @idle_fd_ptr:      worker: address of a struct umcg_idle_fd (see
 *                    umcg_idle.h), or 0. When the worker is appended to its
 *                    idle-workers list and no server was woken through the
 *                    idle-servers stack, libumcg writes 1 to that eventfd if
 *                    a server announced it waits on it (the review's
 *                    "idle_fd"). Global, per-server or mixed fds are a
 *                    matter of which struct each worker points to.
 * @idle_server_tid_ptr: worker: address of a uint32_t holding the tid of
 *                    one idle server (the v0.4 protocol), or 0. When the
 *                    worker is appended and nobody was woken yet, libumcg
 *                    exchanges the word with 0 and wakes that server.
 * @reserved:         must be left alone; not interpreted.
 *
 * 64 bytes, 64-byte aligned (libumcg refuses a misaligned one, EINVAL).
 */
struct umcg_task {
	uint32_t state;
	uint32_t api_version;
	uint32_t server_tid;
	uint32_t next_tid;
	uint64_t idle_servers_ptr;
	uint64_t idle_workers_ptr;
	/* extensions, 0 = plain v0.3 */
	uint64_t idle_fd_ptr;
	uint64_t idle_server_tid_ptr;
	uint64_t reserved[2];
} __attribute__((aligned(64)));

#if defined(__cplusplus)
static_assert(sizeof(struct umcg_task) == 64, "umcg_task ABI size");
#else
_Static_assert(sizeof(struct umcg_task) == 64, "umcg_task ABI size");
_Static_assert(_Alignof(struct umcg_task) == 64, "umcg_task ABI alignment");
_Static_assert(offsetof(struct umcg_task, state) == 0, "state offset");
_Static_assert(offsetof(struct umcg_task, api_version) == 4, "api_version offset");
_Static_assert(offsetof(struct umcg_task, server_tid) == 8, "server_tid offset");
_Static_assert(offsetof(struct umcg_task, next_tid) == 12, "next_tid offset");
_Static_assert(offsetof(struct umcg_task, idle_servers_ptr) == 16, "idle_servers_ptr offset");
_Static_assert(offsetof(struct umcg_task, idle_workers_ptr) == 24, "idle_workers_ptr offset");
_Static_assert(offsetof(struct umcg_task, idle_fd_ptr) == 32, "idle_fd_ptr offset");
_Static_assert(offsetof(struct umcg_task, idle_server_tid_ptr) == 40, "idle_server_tid_ptr offset");
#endif

/* ---- the two "system calls" ------------------------------------------- */

/*
 * umcg_ctl - register or unregister the calling thread.
 *
 * flags == UMCG_CTL_UNREGISTER, self == NULL: unregister (the caller's
 * server is NOT woken; do it yourself first).
 * flags == UMCG_CTL_REGISTER: register a server (self->state must be
 * exactly UMCG_TASK_RUNNING).
 * flags == UMCG_CTL_REGISTER | UMCG_CTL_WORKER: register a worker
 * (self->state must be exactly UMCG_TASK_IDLE); the worker is queued on
 * its idle-workers list, an idle server is woken, and the call returns
 * only once a server has made the worker RUNNING.
 *
 * Returns 0, 1 (api_version unsupported: 1 is the highest supported), or
 * -1 with errno EINVAL / EFAULT. See umcg_ctl(3).
 */
int umcg_ctl(uint32_t flags, struct umcg_task *self);

/*
 * umcg_wait - wake next_tid and/or sleep until the caller is RUNNING.
 *
 * abs_timeout: 0 = none, else an absolute CLOCK_MONOTONIC time in ns.
 * Returns 0 or -1 with errno EINVAL / ESRCH / EFAULT / EINTR / ETIMEDOUT.
 * See umcg_wait(3).
 */
int umcg_wait(uint32_t flags, uint64_t abs_timeout);

/* ---- kernel hook points, called by (or on behalf of) a worker --------- */

/*
 * umcg_block_point - the calling worker is about to block.
 *
 * Does what the kernel does when a worker sleeps: if the caller is a
 * RUNNING, unlocked worker, it becomes BLOCKED and its server (server_tid)
 * is made RUNNING and woken on this CPU. Returns 1 if the transition was
 * made, 0 if nothing had to be done (not a worker, LOCKED, not RUNNING).
 * Calls pair with umcg_wake_point(); a pair nested inside another (a
 * signal handler that blocks while the worker is blocked or parked) does
 * nothing: the worker is already accounted for.
 * Never fails; a broken contract (see umcg(7)) kills the process with
 * SIGSEGV, as the kernel kills the task.
 */
int umcg_block_point(void);

/*
 * umcg_wake_point - the calling worker returned from a (possibly)
 * blocking operation.
 *
 * Unless the caller is LOCKED or RUNNING with a server, it becomes IDLE,
 * is pushed on its idle-workers list, one idle server is popped from its
 * idle-servers stack and woken, and the call sleeps until a server makes
 * the worker RUNNING again. Returns 1 if it parked, 0 otherwise. errno is
 * preserved. Signals received while parked run their handlers and the
 * worker parks again (it never runs user code without a server).
 */
int umcg_wake_point(void);

/* ---- introspection and tuning ----------------------------------------- */

/* The calling thread's registered struct, or NULL. */
struct umcg_task *umcg_self(void);

/* The calling thread's kernel tid (gettid()). */
uint32_t umcg_gettid(void);

/* The library's nr_cpu_ids: number of possible CPUs (scan bounds). */
int umcg_nr_cpu_ids(void);

/* Absolute CLOCK_MONOTONIC time in ns, the clock of umcg_wait(). */
uint64_t umcg_now_ns(void);

enum umcg_tunable {
	/*
	 * Emulate WF_CURRENT_CPU (value 1, default) by moving the woken task
	 * to the waker's CPU with sched_setaffinity() when the hint applies,
	 * or ignore the hint (0). See docs/design.md, "Placement".
	 */
	UMCG_TUNE_CURRENT_CPU_HINT = 1,
	/*
	 * Transparent block detection for workers registered from now on
	 * (value 1, default unless the environment has UMCG_DETECT=0), or
	 * explicit block points only (0). See umcg_detect_thread(3).
	 */
	UMCG_TUNE_DETECT = 2,
	/*
	 * libc's common blocking calls (read, write, poll, nanosleep, usleep,
	 * ...: the list of umcg_wrap.h), called by a detected worker through
	 * libc's public symbols, take the lazy wrapper path inside libumcg
	 * (value 1, default unless the environment has UMCG_INTERPOSE=0), or
	 * go straight to libc and are seen only by the switch records (0).
	 * See umcg_wrap(3), docs/detection.md.
	 */
	UMCG_TUNE_INTERPOSE = 3,
};

/* Set a process-wide tunable. 0 on success, -1/EINVAL on a bad name/value. */
int umcg_tune(enum umcg_tunable what, long value);

/*
 * Which part plays the kernel's role for this process (decided once, at
 * the first call; see umcg_backend(3)): UMCG_BACKEND_KERNEL (a kernel with
 * the UMCG patch: real system calls, the kernel's block detection) or
 * UMCG_BACKEND_USER (libumcg's emulation). -1 with errno ENOSYS if
 * UMCG_BACKEND=kernel was asked for and the kernel has no UMCG.
 */
#define UMCG_BACKEND_USER   1
#define UMCG_BACKEND_KERNEL 2
int umcg_backend(void);

/*
 * Transparent block detection of the calling worker (docs/detection.md):
 * libumcg notices when the worker really sleeps in the kernel, in any
 * call or page fault, reports the block to its server (T6) and parks the
 * worker when it wakes (T7); the umcg_wrap.h wrappers then cost no switch
 * for a call that does not sleep. on = 1 turns it on, 0 off, -1 asks.
 * Returns 1 (on) or 0 (off), or -1 with errno: EINVAL (not a registered
 * worker, or on not -1, 0, 1), or why it cannot be turned on (EACCES:
 * perf_event_paranoid; EMFILE; ENOMEM / EPERM: locked-memory limit; ...).
 */
int umcg_detect_thread(int on);

/* ---- atomic helpers for the ABI words --------------------------------- */

static inline uint32_t umcg_state_load(const struct umcg_task *t)
{
	return __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
}

static inline void umcg_state_store(struct umcg_task *t, uint32_t v)
{
	__atomic_store_n(&t->state, v, __ATOMIC_RELEASE);
}

/* CAS the whole state word; on failure *expected gets the current value. */
static inline bool umcg_state_cas(struct umcg_task *t, uint32_t *expected, uint32_t desired)
{
	return __atomic_compare_exchange_n(&t->state, expected, desired, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

#ifdef __cplusplus
}
#endif

#endif /* UMCG_H */
