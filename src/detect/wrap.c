/* SPDX-License-Identifier: MIT */
/*
 * wrap.c - the "explicit" detection backend: libc's blocking calls
 * bracketed by the block point (T6) and the wake point (T7).
 *
 * This is the seam for detection backends: a backend decides *when* a
 * worker blocked and returned, and calls umcg__block_point() /
 * umcg__wake_point() (kern/kern.h), which do what the kernel's hooks did.
 * The wrappers decide eagerly (every bracketed call counts as a block).
 * A transparent backend (perf context-switch records, docs/design.md)
 * will call the same two functions from its own notification path.
 *
 * errno: the wrapped call's errno is what the caller sees; the wake point
 * may make futex calls of its own and restores errno.
 */
#include <errno.h>
#include <unistd.h>

#include "detect/detect.h"
#include "detect/interpose.h"
#include "kern/kern.h"
#include "umcg_wrap.h"

/*
 * A detected worker (perf event open, det != OFF) runs the call lazily:
 * mark "in a call" (det SYSCALL), make it, and on return take the mark
 * back with one CAS. Only if its server saw it sleep meanwhile (and took
 * it: TAKEN_SYS) does it park on the way out. A call that does not sleep
 * costs two atomic instructions and no switch.
 */
#define WRAP(ret_t, name, params, args)                                                            \
	UMCG_EXPORT ret_t umcg_##name params                                                       \
	{                                                                                          \
		struct umcg_ktask *wrap_k_ = umcg__current();                                      \
		if (!wrap_k_)                                                                      \
			return umcg__libc_##name args;                                             \
		int wrap_m_ = umcg__det_sys_enter(wrap_k_);                                        \
		if (wrap_m_ == DET_CALL_EAGER)                                                     \
			umcg__block_point(wrap_k_);                                                \
		ret_t wrap_r_ = umcg__libc_##name args;                                            \
		int wrap_e_ = errno;                                                               \
		if (wrap_m_ == DET_CALL_LAZY)                                                      \
			umcg__det_sys_leave(wrap_k_);                                              \
		else if (wrap_m_ == DET_CALL_EAGER)                                                \
			umcg__wake_point(wrap_k_);                                                 \
		errno = wrap_e_;                                                                   \
		return wrap_r_;                                                                    \
	}

WRAP(ssize_t, read, (int fd, void *buf, size_t count), (fd, buf, count))
WRAP(ssize_t, write, (int fd, const void *buf, size_t count), (fd, buf, count))
WRAP(ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt))
WRAP(ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt))
WRAP(ssize_t, pread, (int fd, void *buf, size_t count, off_t off), (fd, buf, count, off))
WRAP(ssize_t, pwrite, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off))
WRAP(ssize_t, preadv, (int fd, const struct iovec *iov, int iovcnt, off_t off),
     (fd, iov, iovcnt, off))
WRAP(ssize_t, pwritev, (int fd, const struct iovec *iov, int iovcnt, off_t off),
     (fd, iov, iovcnt, off))

WRAP(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags))
WRAP(ssize_t, recvfrom,
     (int fd, void *buf, size_t len, int flags, struct sockaddr *src, socklen_t *addrlen),
     (fd, buf, len, flags, src, addrlen))
WRAP(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags))
WRAP(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags))
WRAP(ssize_t, sendto,
     (int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst,
      socklen_t addrlen),
     (fd, buf, len, flags, dst, addrlen))
WRAP(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags))
WRAP(int, accept, (int fd, struct sockaddr *addr, socklen_t *addrlen), (fd, addr, addrlen))
WRAP(int, accept4, (int fd, struct sockaddr *addr, socklen_t *addrlen, int flags),
     (fd, addr, addrlen, flags))
WRAP(int, connect, (int fd, const struct sockaddr *addr, socklen_t addrlen), (fd, addr, addrlen))

WRAP(int, poll, (struct pollfd * fds, nfds_t nfds, int timeout), (fds, nfds, timeout))
WRAP(int, ppoll,
     (struct pollfd * fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask),
     (fds, nfds, tmo, mask))
WRAP(int, select, (int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo),
     (nfds, r, w, e, tmo))
WRAP(int, pselect,
     (int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo, const sigset_t *mask),
     (nfds, r, w, e, tmo, mask))
WRAP(int, epoll_wait, (int epfd, struct epoll_event *events, int maxevents, int timeout),
     (epfd, events, maxevents, timeout))
WRAP(int, epoll_pwait,
     (int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *mask),
     (epfd, events, maxevents, timeout, mask))

WRAP(int, nanosleep, (const struct timespec *req, struct timespec *rem), (req, rem))
WRAP(int, clock_nanosleep,
     (clockid_t clk, int flags, const struct timespec *req, struct timespec *rem),
     (clk, flags, req, rem))
WRAP(int, usleep, (unsigned int usec), (usec))
WRAP(unsigned int, sleep, (unsigned int seconds), (seconds))

WRAP(int, fsync, (int fd), (fd))
WRAP(int, fdatasync, (int fd), (fd))
WRAP(pid_t, waitpid, (pid_t pid, int *status, int options), (pid, status, options))
