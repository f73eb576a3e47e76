/* SPDX-License-Identifier: MIT */
/*
 * idle_fd.c - the eventfd idle-server design (the review's "idle_fd").
 *
 * Protocol (struct umcg_idle_fd, umcg_idle.h):
 *   server  waiters += 1 (seq_cst RMW); re-check the idle-workers list;
 *           if empty wait on fd (read/poll/epoll); then waiters -= 1 and
 *           read fd (consume).
 *   waker   (libumcg at a wake point) append the worker (seq_cst CAS on
 *           the list head); if waiters != 0 (seq_cst load): write(fd, 1).
 *   Store-load on both sides with seq_cst: if the waker reads waiters == 0,
 *   the server's increment is later in the total order, so its re-check
 *   (after the increment) sees the append. Otherwise the waker writes and
 *   the eventfd stays readable until some server reads it: the counter is
 *   the "wake-up pending" state, so a write that precedes the server's
 *   wait is not lost either.
 *   The write is skipped when nobody waits: zero system calls on the
 *   waker's side in the busy case, one when a server sleeps.
 *   The decrement is a release: it only needs to stop future writes.
 */
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "idle/idle.h"
#include "kern/kern.h"
#include "util/util.h"
#include "umcg_idle.h"
#include "umcg_lists.h"

static inline _Atomic uint32_t *waiters_of(struct umcg_idle_fd *f)
{
	return (_Atomic uint32_t *)&f->waiters;
}

UMCG_EXPORT int umcg_idle_fd_init(struct umcg_idle_fd *f)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -1;
	f->fd = fd;
	atomic_store_explicit(waiters_of(f), 0, memory_order_relaxed);
	return 0;
}

UMCG_EXPORT void umcg_idle_fd_destroy(struct umcg_idle_fd *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

UMCG_EXPORT bool umcg_idle_fd_prepare(struct umcg_idle_fd *f, const uint64_t *iwl_head)
{
	atomic_fetch_add_explicit(waiters_of(f), 1, memory_order_seq_cst);
	if (__atomic_load_n(iwl_head, __ATOMIC_SEQ_CST) == 0)
		return true;
	atomic_fetch_sub_explicit(waiters_of(f), 1, memory_order_release);
	return false;
}

UMCG_EXPORT uint64_t umcg_idle_fd_finish(struct umcg_idle_fd *f)
{
	atomic_fetch_sub_explicit(waiters_of(f), 1, memory_order_release);
	uint64_t cnt = 0;
	if (read(f->fd, &cnt, sizeof cnt) != (ssize_t)sizeof cnt)
		cnt = 0; /* EAGAIN: nothing pending, or another server took it */
	return cnt;
}

UMCG_EXPORT int umcg_idle_fd_wait(struct umcg_idle_fd *f, const uint64_t *iwl_head, int timeout_ms)
{
	if (!umcg_idle_fd_prepare(f, iwl_head))
		return 1;
	struct pollfd p = {.fd = f->fd, .events = POLLIN};
	int r = poll(&p, 1, timeout_ms);
	int e = errno;
	umcg_idle_fd_finish(f);
	if (r < 0) {
		errno = e;
		return -1;
	}
	return r > 0 ? 1 : 0;
}

/* The waker's side, called by the wake point after the append. */
bool umcg__idle_fd_signal(uint64_t ptr)
{
	struct umcg_idle_fd *f = (struct umcg_idle_fd *)(uintptr_t)ptr;
	if (!atomic_load_explicit(waiters_of(f), memory_order_seq_cst))
		return false;
	uint64_t one = 1;
	int fd = __atomic_load_n(&f->fd, __ATOMIC_RELAXED);
	umcg__stats.eventfd_write++;
	ssize_t n = write(fd, &one, sizeof one);
	/* EAGAIN: the counter is saturated, a wake-up is pending anyway */
	if (n < 0 && errno != EAGAIN)
		umcg__die("cannot signal idle_fd %d (errno %d)", fd, errno);
	return true;
}
