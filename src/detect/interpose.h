/* SPDX-License-Identifier: MIT */
/*
 * interpose.h - libc's blocking calls as libumcg sees them.
 *
 * libumcg exports its own read(), write(), nanosleep(), poll(), ... (the
 * list of umcg_wrap.h) so that a worker calling them through libc's
 * public symbols takes the lazy wrapper path (interpose.c,
 * docs/detection.md). umcg__libc_X() is the next definition of X after
 * libumcg's (libc's, or a sanitizer's interceptor), for the wrappers and
 * for the interposers themselves.
 */
#ifndef UMCG_INTERPOSE_H
#define UMCG_INTERPOSE_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/* 1: interposed calls of detected workers are lazy (UMCG_TUNE_INTERPOSE); 0: pass-through. */
extern _Atomic int umcg__interpose_on;

ssize_t umcg__libc_read(int fd, void *buf, size_t count);
ssize_t umcg__libc_write(int fd, const void *buf, size_t count);
ssize_t umcg__libc_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t umcg__libc_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t umcg__libc_pread(int fd, void *buf, size_t count, off_t off);
ssize_t umcg__libc_pwrite(int fd, const void *buf, size_t count, off_t off);
ssize_t umcg__libc_preadv(int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t umcg__libc_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t umcg__libc_recv(int fd, void *buf, size_t len, int flags);
ssize_t umcg__libc_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
			    socklen_t *addrlen);
ssize_t umcg__libc_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t umcg__libc_send(int fd, const void *buf, size_t len, int flags);
ssize_t umcg__libc_sendto(int fd, const void *buf, size_t len, int flags,
			  const struct sockaddr *dst, socklen_t addrlen);
ssize_t umcg__libc_sendmsg(int fd, const struct msghdr *msg, int flags);
int umcg__libc_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
int umcg__libc_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int umcg__libc_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
int umcg__libc_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int umcg__libc_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
		     const sigset_t *mask);
int umcg__libc_select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo);
int umcg__libc_pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
		       const sigset_t *mask);
int umcg__libc_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
int umcg__libc_epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
			   const sigset_t *mask);
int umcg__libc_nanosleep(const struct timespec *req, struct timespec *rem);
int umcg__libc_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			       struct timespec *rem);
int umcg__libc_usleep(unsigned int usec);
unsigned int umcg__libc_sleep(unsigned int seconds);
int umcg__libc_fsync(int fd);
int umcg__libc_fdatasync(int fd);
pid_t umcg__libc_waitpid(pid_t pid, int *status, int options);

/* The system-call fallbacks (no cancellation point, not seen by sanitizers). */
ssize_t umcg__sys_read(int fd, void *buf, size_t count);
ssize_t umcg__sys_write(int fd, const void *buf, size_t count);
ssize_t umcg__sys_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t umcg__sys_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t umcg__sys_pread(int fd, void *buf, size_t count, off_t off);
ssize_t umcg__sys_pwrite(int fd, const void *buf, size_t count, off_t off);
ssize_t umcg__sys_preadv(int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t umcg__sys_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t umcg__sys_recv(int fd, void *buf, size_t len, int flags);
ssize_t umcg__sys_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
			   socklen_t *addrlen);
ssize_t umcg__sys_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t umcg__sys_send(int fd, const void *buf, size_t len, int flags);
ssize_t umcg__sys_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst,
			 socklen_t addrlen);
ssize_t umcg__sys_sendmsg(int fd, const struct msghdr *msg, int flags);
int umcg__sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
int umcg__sys_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int umcg__sys_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
int umcg__sys_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int umcg__sys_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
		    const sigset_t *mask);
int umcg__sys_select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo);
int umcg__sys_pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
		      const sigset_t *mask);
int umcg__sys_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
int umcg__sys_epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
			  const sigset_t *mask);
int umcg__sys_nanosleep(const struct timespec *req, struct timespec *rem);
int umcg__sys_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			      struct timespec *rem);
int umcg__sys_usleep(unsigned int usec);
unsigned int umcg__sys_sleep(unsigned int seconds);
int umcg__sys_fsync(int fd);
int umcg__sys_fdatasync(int fd);
pid_t umcg__sys_waitpid(pid_t pid, int *status, int options);

#endif
