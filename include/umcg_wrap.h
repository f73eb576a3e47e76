/* SPDX-License-Identifier: MIT */
/*
 * umcg_wrap.h - blocking calls bracketed by the UMCG block and wake points.
 *
 * Each umcg_X() behaves exactly like the libc call X() (same arguments,
 * return value and errno). On a worker with transparent block detection
 * (the default, umcg_detect_thread(3)) the wrapper is lazy: it marks the
 * worker "in a call", makes the call, and takes the mark back with one
 * atomic instruction; only if the worker really slept (its server then
 * got its CPU back) does it park on return, queued as idle until a server
 * runs it again. A call that does not sleep costs no switch, and the
 * wrapper never lets a detection signal interrupt the call. On a worker
 * without detection, the wrapper is an explicit block point:
 * umcg_block_point() before and umcg_wake_point() after every call. On a
 * non-worker thread the wrappers cost one TLS load and branch.
 *
 * With detection, blocking outside the wrappers (raw syscalls, page
 * faults, locks inside other libraries) is seen too; the wrappers remain
 * the fast and exact path (docs/detection.md). libumcg also exports libc's
 * own names of these calls (read(), usleep(), poll(), ...): a detected
 * worker calling them takes the same lazy path, every other thread gets
 * libc's call (UMCG_INTERPOSE=0 or umcg_tune(UMCG_TUNE_INTERPOSE, 0) turns
 * that off; umcg_wrap(3)).
 */
#ifndef UMCG_WRAP_H
#define UMCG_WRAP_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

ssize_t umcg_read(int fd, void *buf, size_t count);
ssize_t umcg_write(int fd, const void *buf, size_t count);
ssize_t umcg_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t umcg_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t umcg_pread(int fd, void *buf, size_t count, off_t offset);
ssize_t umcg_pwrite(int fd, const void *buf, size_t count, off_t offset);
ssize_t umcg_preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset);
ssize_t umcg_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset);

ssize_t umcg_recv(int fd, void *buf, size_t len, int flags);
ssize_t umcg_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
		      socklen_t *addrlen);
ssize_t umcg_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t umcg_send(int fd, const void *buf, size_t len, int flags);
ssize_t umcg_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst,
		    socklen_t addrlen);
ssize_t umcg_sendmsg(int fd, const struct msghdr *msg, int flags);
int umcg_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
int umcg_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int umcg_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

int umcg_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int umcg_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask);
int umcg_select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo);
int umcg_pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
		 const sigset_t *mask);
int umcg_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
int umcg_epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
		     const sigset_t *mask);

int umcg_nanosleep(const struct timespec *req, struct timespec *rem);
int umcg_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			 struct timespec *rem);
int umcg_usleep(unsigned int usec); /* usleep(3): useconds_t is unsigned int */
unsigned int umcg_sleep(unsigned int seconds);

int umcg_fsync(int fd);
int umcg_fdatasync(int fd);
pid_t umcg_waitpid(pid_t pid, int *status, int options);

#ifdef __cplusplus
}
#endif

#endif /* UMCG_WRAP_H */
