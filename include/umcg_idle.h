/* SPDX-License-Identifier: MIT */
/*
 * umcg_idle.h - the two alternatives to v0.3's idle-servers stack, as ABI
 * extensions (struct umcg_task::idle_fd_ptr, ::idle_server_tid_ptr).
 *
 * How a server with nothing to run finds out that a worker was appended
 * to the idle-workers list; three designs, selectable per group (a worker
 * names the mechanisms of its group in its struct):
 *
 *   stack   (v0.3)  idle_servers_ptr: idle servers push themselves; the
 *                   waker pops one (marks it) and futex-wakes it.
 *   eventfd (review) idle_fd_ptr: idle servers wait in read/poll/epoll on an
 *                   eventfd, beside their own file descriptors; the waker
 *                   writes 1 to it.
 *   tid word (v0.4) idle_server_tid_ptr: one idle server publishes its tid
 *                   in a word; the waker exchanges it with 0 and wakes that
 *                   server; other idle servers wait behind it in user space
 *                   and a woken server wakes the next one ("chaining").
 *
 * At a wake point libumcg appends the worker (a seq_cst RMW), then
 * tries the worker's mechanisms in this order and stops at the first that
 * woke somebody: stack pop, tid word, eventfd. Each costs no system call
 * when no server sleeps (an empty stack, a zero word, no announced
 * waiter), and exactly one (FUTEX_WAKE or write) when one does.
 *
 * No lost wake-up, for every design: the server announces itself (push /
 * CAS of its tid / waiters increment: a seq_cst RMW) and re-checks the
 * idle-workers list (a seq_cst load) before it sleeps; the waker appends
 * (a seq_cst RMW) and then looks for an announced server (seq_cst loads).
 * Store-load on both sides, in one total order: at least one of them sees
 * the other.
 */
#ifndef UMCG_IDLE_H
#define UMCG_IDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "umcg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- eventfd design ---------------------------------------------------- */

/*
 * struct umcg_idle_fd - an eventfd plus the count of servers waiting on it.
 * @fd:      an eventfd (umcg_idle_fd_init() makes a non-blocking one).
 * @waiters: servers that announced they are about to wait on @fd. libumcg
 *           writes to @fd only while it is non-zero; a runtime that wants
 *           the review's literal "write on every append" keeps it >= 1.
 *
 * Counts: the eventfd counter coalesces (n appends while servers sleep may
 * read as one count n); a server that wakes reads the counter (resetting
 * it) and then takes the whole idle-workers list, so one wake-up serves
 * any number of appends. A wake-up that finds the list empty (another
 * server drained it first, or a count left over from an announcement that
 * found work) is spurious: the server re-announces and waits again.
 * Several servers on one fd: with poll/read all of them wake (herd); use
 * epoll with EPOLLEXCLUSIVE to wake one per write.
 */
struct umcg_idle_fd {
	int32_t fd;
	uint32_t waiters;
};

/* Create a non-blocking, close-on-exec eventfd. 0, or -1 with errno. */
int umcg_idle_fd_init(struct umcg_idle_fd *f);
/* Close it. */
void umcg_idle_fd_destroy(struct umcg_idle_fd *f);

/*
 * Announce that the caller is about to wait on f->fd for workers appended
 * at @iwl_head. Returns true if it may now wait (then it must call
 * umcg_idle_fd_finish() after waking), false if workers are already
 * queued (nothing announced: go and take them).
 */
bool umcg_idle_fd_prepare(struct umcg_idle_fd *f, const uint64_t *iwl_head);

/*
 * After a wait that umcg_idle_fd_prepare() allowed (whether the fd became
 * readable, another fd did, or it timed out): withdraw the announcement and
 * consume the eventfd counter. Returns the count read (0: nothing was
 * written, or another server consumed it).
 */
uint64_t umcg_idle_fd_finish(struct umcg_idle_fd *f);

/*
 * Convenience: prepare, poll() the fd for up to @timeout_ms (-1: forever),
 * finish. Returns 1 if workers may be queued (go and look), 0 on timeout,
 * -1 with errno (EINTR) on error. Spurious returns of 1 are possible.
 */
int umcg_idle_fd_wait(struct umcg_idle_fd *f, const uint64_t *iwl_head, int timeout_ms);

/* ---- tid-word design (v0.4 idle_server_tid_ptr) ------------------------- */

/*
 * Publish @tid (an IDLE server, usually the caller) as the idle server in
 * @word. true if the word was 0 and now holds @tid; false if another
 * server is published already (wait behind it, e.g. on an idle-servers
 * stack that only user space pops).
 */
bool umcg_idle_tid_publish(uint32_t *word, uint32_t tid);

/*
 * Take @tid back out of @word. true if it was still there (nobody will
 * wake it through the word), false if a waker took it: that waker has then
 * finished making @tid RUNNING and waking it (this call waits for it), so a
 * server that timed out may go IDLE again without being woken late.
 */
bool umcg_idle_tid_withdraw(uint32_t *word, uint32_t tid);

/* ---- choosing a design per group --------------------------------------- */

enum umcg_idle_design {
	UMCG_IDLE_STACK = 0,	/* v0.3 idle_servers_ptr stack (default) */
	UMCG_IDLE_EVENTFD = 1,	/* the review's idle_fd: one eventfd per group */
	UMCG_IDLE_TID_WORD = 2, /* v0.4 idle_server_tid_ptr, with chaining */
};

/*
 * struct umcg_idle_group - the idle-signalling state of one group of
 * servers and workers, for any of the three designs. A scheduler that
 * goes through these calls runs unchanged on each design.
 * Fields are the ABI words the workers point to; treat them as opaque.
 */
struct umcg_idle_group {
	uint64_t idle_workers;	     /* idle-workers head (all designs) */
	uint64_t idle_servers;	     /* stack: the idle-servers stack; tid word:
					servers waiting behind the published one */
	uint32_t idle_server_tid;    /* tid word */
	uint32_t design;	     /* enum umcg_idle_design */
	struct umcg_idle_fd idle_fd; /* eventfd */
};

/* Set up @g for @design. 0, or -1 with errno (EINVAL, eventfd errors). */
int umcg_idle_group_init(struct umcg_idle_group *g, enum umcg_idle_design design);
void umcg_idle_group_destroy(struct umcg_idle_group *g);
/* "stack" / "eventfd" / "tid" (NULL for a bad value); parse: 0 or -1/EINVAL. */
const char *umcg_idle_design_name(enum umcg_idle_design d);
int umcg_idle_design_parse(const char *name, enum umcg_idle_design *out);

/*
 * Point a worker's list words at @g before it registers (or before it runs
 * again): idle_workers_ptr, and the design's idle_servers_ptr /
 * idle_server_tid_ptr / idle_fd_ptr. Zeroes the other extension words.
 */
void umcg_idle_group_worker_init(struct umcg_idle_group *g, struct umcg_task *worker);

/*
 * The calling server (registered, RUNNING, next_tid 0, server_tid = own
 * tid) has nothing to run: wait until a worker may have been appended to
 * g->idle_workers, someone called umcg_idle_group_wake_one(), or the
 * absolute CLOCK_MONOTONIC deadline @abs_timeout (0 = none) passed.
 * Returns 0 (look at the idle-workers list: a return may be spurious) or
 * -1 with errno ETIMEDOUT, or (eventfd design) an error of poll(), e.g.
 * EBADF after umcg_idle_group_destroy(). The server is RUNNING again on return, and its
 * node is unlinked (it may call this again at once).
 */
int umcg_idle_group_wait(struct umcg_idle_group *g, struct umcg_task *self, uint64_t abs_timeout);

/*
 * Wake one idle server of @g, if any is waiting (e.g. to share out a run
 * queue, or at shutdown). Returns 1 if one was woken, 0 if none waited.
 * The caller need not be a UMCG task.
 */
int umcg_idle_group_wake_one(struct umcg_idle_group *g);

#ifdef __cplusplus
}
#endif

#endif /* UMCG_IDLE_H */
