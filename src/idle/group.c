/* SPDX-License-Identifier: MIT */
/*
 * group.c - the server's side of the three idle designs behind one call
 * (umcg_idle_group_wait), so a scheduler can switch designs per group.
 *
 * Common rule (umcg_idle.h): announce, seq_cst, re-check the idle-workers
 * list, sleep. What "announce" and "sleep" mean:
 *
 *   stack     state IDLE; push own node (seq_cst CAS); re-check (seq_cst
 *             load); sleep in umcg_wait() until
 *             a popper makes us RUNNING. Afterwards "settle": if our node
 *             is still unmarked, mark it ourselves (remove) and make
 *             ourselves RUNNING; if a popper marked it, it owns our wake-up:
 *             wait until it has made us RUNNING. Then GC, so the node is
 *             unlinked and may be pushed again (idle_servers.c, I4).
 *   tid word  state IDLE; publish own tid (seq_cst CAS); re-check; sleep;
 *             withdraw (CAS tid -> 0; if that fails a waker took us:
 *             taken()). A server that finds the word taken waits behind it
 *             on g->idle_servers (pushed and popped by user space only).
 *             Chaining: see wait_tid().
 *   eventfd   waiters += 1; re-check; poll() the eventfd; waiters -= 1 and
 *             consume the counter (idle_fd.c). The server stays RUNNING:
 *             a server blocked in poll is an ordinary RUNNING UMCG server.
 *
 * Contract: the caller is a registered server, RUNNING, with next_tid 0 and
 * server_tid set to its own tid.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "idle/idle.h"
#include "kern/kern.h"
#include "lists/lists.h"
#include "util/util.h"
#include "umcg_idle.h"
#include "umcg_lists.h"

static void set_idle(struct umcg_task *self)
{
	uint32_t st = umcg_state_load(self);
	while (!umcg_state_cas(self, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_IDLE))
		;
}

static void restore_running(struct umcg_task *self)
{
	uint32_t st = umcg_state_load(self);
	while ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING &&
	       !umcg_state_cas(self, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING))
		;
}

/* Somebody took our announcement and owes us a wake-up: wait for it. */
static void wait_until_running(struct umcg_task *self)
{
	while ((umcg_state_load(self) & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
		umcg_wait(0, 0); /* EINTR: just wait again */
}

/*
 * Somebody took our announcement: it makes us RUNNING and wakes us, inside
 * a read section (lists.h). If we were RUNNING already (timeout), that
 * wake-up may still be on its way: wait for a grace period, so it cannot
 * land in our next context switch, when we are IDLE again.
 */
static void taken(struct umcg_task *self)
{
	wait_until_running(self);
	umcg__gp_synchronize();
}

/* After a stack-style sleep: make sure we are RUNNING and our node unlinked. */
static void settle_stack(struct umcg_idle_group *g, struct umcg_task *self)
{
	if (umcg_idle_servers_remove(self))
		restore_running(self);
	else
		taken(self);
	umcg_idle_servers_gc(&g->idle_servers, NULL, NULL);
}

static int sleep_result(int r)
{
	return (r < 0 && errno == ETIMEDOUT) ? -ETIMEDOUT : 0;
}

static int wait_stack(struct umcg_idle_group *g, struct umcg_task *self, uint64_t abs_timeout)
{
	int ret = 0;
	set_idle(self);
	/* seq_cst push, then seq_cst re-check: the Dekker pair of umcg_idle.h */
	umcg_idle_servers_push(&g->idle_servers, self);
	if (umcg_idle_workers_empty(&g->idle_workers))
		ret = sleep_result(umcg_wait(0, abs_timeout));
	if (umcg_idle_servers_is_deleted(self))
		ret = 0; /* popped: work was appended, whatever woke us */
	settle_stack(g, self);
	return ret;
}

/* Wake one server waiting behind the published one (tid design), if any. */
static int wake_waiting_behind(struct umcg_idle_group *g)
{
	return umcg_idle_servers_wake(&g->idle_servers) != NULL;
}

/*
 * The tid-word protocol with the chaining rule verified by
 * spin/tid_word.pml (CHAIN=2, GP=1; docs/spin.md, "The chaining rule"):
 *  - whenever the word stops naming a server (a waker exchanged it, or the
 *    server withdrew itself for any reason), that server hands on: it wakes
 *    one server waiting behind, unconditionally, before it returns;
 *  - a server woken that way re-runs the protocol (publish, re-check, ...)
 *    instead of returning to take work directly;
 *  - a server that goes behind re-checks the word after announcing itself,
 *    and tries to publish again if the word is empty.
 * Invariant: if servers wait behind, the word names a server, or a server
 * is between leaving the word and handing on, or a handed-on server is on
 * its way to publish; so a waker's exchange finds an idle server whenever
 * one is idle.
 */
static int wait_tid(struct umcg_idle_group *g, struct umcg_task *self, uint64_t abs_timeout)
{
	uint32_t me = umcg__load_u32(&self->server_tid);
	for (;;) {
		int ret = 0;
		set_idle(self);
		if (umcg_idle_tid_publish(&g->idle_server_tid, me)) {  /* seq_cst CAS */
			if (umcg_idle_workers_empty(&g->idle_workers)) /* seq_cst re-check */
				ret = sleep_result(umcg_wait(0, abs_timeout));
			if (umcg_idle_tid_withdraw(&g->idle_server_tid, me)) {
				restore_running(self);
			} else {
				taken(self); /* a waker took us */
				ret = 0;
			}
			wake_waiting_behind(g); /* we left the word: hand on */
			return ret;
		}
		/* Another server is published: wait behind it. */
		umcg_idle_servers_push(&g->idle_servers, self); /* seq_cst */
		if (__atomic_load_n(&g->idle_server_tid, __ATOMIC_SEQ_CST) != 0)
			ret = sleep_result(umcg_wait(0, abs_timeout));
		bool handed_on = !umcg_idle_servers_remove(self);
		if (handed_on)
			taken(self); /* made RUNNING by the hand-on */
		else
			restore_running(self);
		umcg_idle_servers_gc(&g->idle_servers, NULL, NULL);
		if (ret < 0 && !handed_on)
			return ret; /* timed out behind: holds nothing, hands nothing on */
		/* the word was empty, or it was handed on to us: publish again */
	}
}

static int wait_eventfd(struct umcg_idle_group *g, uint64_t abs_timeout)
{
	if (!umcg_idle_fd_prepare(&g->idle_fd, &g->idle_workers))
		return 0;
	int ms = -1;
	if (abs_timeout) {
		uint64_t now = umcg_now_ns();
		uint64_t left = abs_timeout > now ? (abs_timeout - now + 999999) / 1000000 : 0;
		ms = left > INT_MAX ? INT_MAX : (int)left; /* > 24 days: a spurious return */
	}
	struct pollfd p = {.fd = g->idle_fd.fd, .events = POLLIN};
	int r = poll(&p, 1, ms);
	int e = errno;
	umcg_idle_fd_finish(&g->idle_fd);
	if (r < 0 && e != EINTR)
		return -e; /* a broken fd (EBADF...): report it, don't let the caller spin */
	return r == 0 ? -ETIMEDOUT : 0;
}

UMCG_EXPORT int umcg_idle_group_wait(struct umcg_idle_group *g, struct umcg_task *self,
				     uint64_t abs_timeout)
{
	int r;
	switch (g->design) {
	case UMCG_IDLE_STACK:
		r = wait_stack(g, self, abs_timeout);
		break;
	case UMCG_IDLE_TID_WORD:
		r = wait_tid(g, self, abs_timeout);
		break;
	case UMCG_IDLE_EVENTFD:
		r = wait_eventfd(g, abs_timeout);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

UMCG_EXPORT int umcg_idle_group_wake_one(struct umcg_idle_group *g)
{
	switch (g->design) {
	case UMCG_IDLE_STACK:
		return umcg_idle_servers_wake(&g->idle_servers) != NULL;
	case UMCG_IDLE_TID_WORD:
		/*
		 * Only the published server is woken; it hands the word on as it
		 * leaves. Servers behind it would only publish again (wait_tid),
		 * so each call takes the next published one.
		 */
		return umcg__idle_tid_take(&g->idle_server_tid, false);
	case UMCG_IDLE_EVENTFD: {
		if (!__atomic_load_n(&g->idle_fd.waiters, __ATOMIC_SEQ_CST))
			return 0;
		uint64_t one = 1;
		umcg__stats.eventfd_write++;
		return write(g->idle_fd.fd, &one, sizeof one) == (ssize_t)sizeof one;
	}
	}
	return 0;
}

UMCG_EXPORT int umcg_idle_group_init(struct umcg_idle_group *g, enum umcg_idle_design design)
{
	memset(g, 0, sizeof *g);
	g->idle_fd.fd = -1;
	switch (design) {
	case UMCG_IDLE_EVENTFD:
		if (umcg_idle_fd_init(&g->idle_fd))
			return -1;
		/* fall through */
	case UMCG_IDLE_STACK:
	case UMCG_IDLE_TID_WORD:
		g->design = design;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

UMCG_EXPORT void umcg_idle_group_destroy(struct umcg_idle_group *g)
{
	if (g->design == UMCG_IDLE_EVENTFD)
		umcg_idle_fd_destroy(&g->idle_fd);
}

UMCG_EXPORT void umcg_idle_group_worker_init(struct umcg_idle_group *g, struct umcg_task *w)
{
	w->idle_workers_ptr = (uint64_t)(uintptr_t)&g->idle_workers;
	w->idle_servers_ptr = 0;
	w->idle_server_tid_ptr = 0;
	w->idle_fd_ptr = 0;
	switch (g->design) {
	case UMCG_IDLE_STACK:
		w->idle_servers_ptr = (uint64_t)(uintptr_t)&g->idle_servers;
		break;
	case UMCG_IDLE_TID_WORD:
		w->idle_server_tid_ptr = (uint64_t)(uintptr_t)&g->idle_server_tid;
		break;
	case UMCG_IDLE_EVENTFD:
		w->idle_fd_ptr = (uint64_t)(uintptr_t)&g->idle_fd;
		break;
	}
}

static const char *const design_names[] = {"stack", "eventfd", "tid"};

UMCG_EXPORT const char *umcg_idle_design_name(enum umcg_idle_design d)
{
	return (unsigned)d < 3 ? design_names[d] : NULL;
}

UMCG_EXPORT int umcg_idle_design_parse(const char *name, enum umcg_idle_design *out)
{
	for (unsigned i = 0; i < 3; i++)
		if (name && !strcmp(name, design_names[i])) {
			*out = (enum umcg_idle_design)i;
			return 0;
		}
	errno = EINVAL;
	return -1;
}
