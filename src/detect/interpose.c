/* SPDX-License-Identifier: MIT */
/*
 * interpose.c - libc's common blocking calls, exported by libumcg so that
 * a detected worker that calls them through libc's public symbols takes
 * the lazy wrapper path instead of the switch-in alarm (docs/detection.md,
 * "Interposed libc calls").
 *
 * A program linked with libumcg (shared or static) that calls read(),
 * usleep(), poll(), ... binds to the definitions below, which come before
 * libc's in the link order. Each one:
 *   - not a UMCG task (one TLS load), a task without detection (servers,
 *     workers with detection off), or interposition turned off
 *     (UMCG_INTERPOSE=0, umcg_tune(UMCG_TUNE_INTERPOSE, 0)): calls the
 *     next definition (libc's, or a sanitizer's interceptor) and nothing
 *     else - no block point, no switch, errno untouched;
 *   - a detected worker running its own code (det USER): the lazy wrapper
 *     (wrap.c): det USER -> SYSCALL, the call, SYSCALL -> USER; if its
 *     watcher took it while it slept (TAKEN_SYS) it parks before it
 *     returns. No alarm, no signal: the call is never interrupted by
 *     libumcg;
 *   - nested (a wrapper or another interposed call is in progress, det
 *     SYSCALL; libumcg's own code, det LIB): just the call.
 * Calls libc makes internally (fread() -> __read, getaddrinfo(), sleep()
 * inside system(), ...) and raw syscall() do not come here: they are seen
 * by the perf records and parked by the switch-in alarm, as before.
 *
 * The next definition is found with dlsym(RTLD_NEXT) once, in a
 * constructor (each pointer written once, read relaxed: a thread that
 * still sees NULL uses the fallback). Before that, in a fully static
 * program (no dynamic linker to ask), or if the lookup fails, the
 * fallback makes the system call directly: same result and errno, but
 * not a pthread cancellation point and not seen by sanitizers.
 */
#undef _FORTIFY_SOURCE /* we define read() etc. ourselves: no inline fortify versions */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "detect/detect.h"
#include "detect/interpose.h"
#include "kern/kern.h"

_Atomic int umcg__interpose_on = 1;

/* glibc's socket calls take a transparent union in GNU mode; we pass its pointer on. */
#if defined(__USE_GNU) && defined(__SOCKADDR_ALLTYPES)
#define SA_ARG	  __SOCKADDR_ARG
#define CSA_ARG	  __CONST_SOCKADDR_ARG
#define SA_PTR(a) ((a).__sockaddr__)
#else
#define SA_ARG	  struct sockaddr *
#define CSA_ARG	  const struct sockaddr *
#define SA_PTR(a) (a)
#endif

/* ---- the next definitions ----------------------------------------------------- */

static void *next_symbol(const char *name, void *self)
{
	void *p = dlsym(RTLD_NEXT, name);
	return p == self ? NULL : p; /* never ourselves: that would recurse */
}

/*
 * REAL(ret, name, params, args, fallback) defines umcg__libc_name(params):
 * the next definition of name, or umcg__sys_name(params) while there is
 * none: `fallback`, an expression over params that makes the system call
 * (exposed for the tests, which compare it with libc's).
 */
#define REAL(ret_t, name, params, args, fallback)                                                  \
	typedef ret_t(*name##_fn) params;                                                          \
	static _Atomic(name##_fn) real_##name;                                                     \
	ret_t umcg__sys_##name params                                                              \
	{                                                                                          \
		return fallback;                                                                   \
	}                                                                                          \
	ret_t umcg__libc_##name params                                                             \
	{                                                                                          \
		name##_fn f_ = atomic_load_explicit(&real_##name, memory_order_relaxed);           \
		if (f_)                                                                            \
			return f_ args;                                                            \
		return umcg__sys_##name args;                                                      \
	}                                                                                          \
	__attribute__((constructor)) static void init_##name(void)                                 \
	{                                                                                          \
		atomic_store_explicit(&real_##name,                                                \
				      (name##_fn)next_symbol(#name, (void *)(uintptr_t)&name),     \
				      memory_order_relaxed);                                       \
	}

/* raw-syscall fallbacks whose semantics differ from the kernel's */
static int fb_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			      struct timespec *rem)
{
	int e = errno;
	long r = syscall(SYS_clock_nanosleep, clk, flags, req, rem);
	int ret = r < 0 ? errno : 0;
	errno = e;
	return ret; /* the error number, not -1 (clock_nanosleep(2)) */
}

static int fb_usleep(unsigned int usec)
{
	struct timespec ts = {.tv_sec = usec / 1000000u, .tv_nsec = (long)(usec % 1000000u) * 1000};
	return (int)syscall(SYS_nanosleep, &ts, NULL);
}

static unsigned int fb_sleep(unsigned int seconds)
{
	struct timespec ts = {.tv_sec = seconds, .tv_nsec = 0};
	if (syscall(SYS_nanosleep, &ts, &ts) == 0)
		return 0;
	return (unsigned int)ts.tv_sec + (ts.tv_nsec >= 500000000);
}

/* the kernel writes the time left into ppoll's and pselect6's timeout; libc's callers keep theirs
 */
static int fb_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *m)
{
	struct timespec t, *tp = NULL;
	if (tmo) {
		t = *tmo;
		tp = &t;
	}
	return (int)syscall(SYS_ppoll, fds, nfds, tp, m, _NSIG / 8);
}

static int fb_pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
		      const sigset_t *m)
{
	struct timespec t, *tp = NULL;
	if (tmo) {
		t = *tmo;
		tp = &t;
	}
	struct {
		const sigset_t *ss;
		size_t len;
	} data = {m, _NSIG / 8};
	return (int)syscall(SYS_pselect6, n, r, w, e, tp, m ? &data : NULL);
}

REAL(ssize_t, read, (int fd, void *buf, size_t count), (fd, buf, count),
     syscall(SYS_read, fd, buf, count))
REAL(ssize_t, write, (int fd, const void *buf, size_t count), (fd, buf, count),
     syscall(SYS_write, fd, buf, count))
REAL(ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt),
     syscall(SYS_readv, fd, iov, iovcnt))
REAL(ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt),
     syscall(SYS_writev, fd, iov, iovcnt))
REAL(ssize_t, pread, (int fd, void *buf, size_t count, off_t off), (fd, buf, count, off),
     syscall(SYS_pread64, fd, buf, count, off))
REAL(ssize_t, pwrite, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off),
     syscall(SYS_pwrite64, fd, buf, count, off))
REAL(ssize_t, preadv, (int fd, const struct iovec *iov, int iovcnt, off_t off),
     (fd, iov, iovcnt, off), syscall(SYS_preadv, fd, iov, iovcnt, (long)off, 0L))
REAL(ssize_t, pwritev, (int fd, const struct iovec *iov, int iovcnt, off_t off),
     (fd, iov, iovcnt, off), syscall(SYS_pwritev, fd, iov, iovcnt, (long)off, 0L))
REAL(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags),
     syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL))
REAL(ssize_t, recvfrom,
     (int fd, void *buf, size_t len, int flags, struct sockaddr *src, socklen_t *addrlen),
     (fd, buf, len, flags, src, addrlen), syscall(SYS_recvfrom, fd, buf, len, flags, src, addrlen))
REAL(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags),
     syscall(SYS_recvmsg, fd, msg, flags))
REAL(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags),
     syscall(SYS_sendto, fd, buf, len, flags, NULL, 0))
REAL(ssize_t, sendto,
     (int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst,
      socklen_t addrlen),
     (fd, buf, len, flags, dst, addrlen), syscall(SYS_sendto, fd, buf, len, flags, dst, addrlen))
REAL(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags),
     syscall(SYS_sendmsg, fd, msg, flags))
REAL(int, accept, (int fd, struct sockaddr *addr, socklen_t *addrlen), (fd, addr, addrlen),
     (int)syscall(SYS_accept, fd, addr, addrlen))
REAL(int, accept4, (int fd, struct sockaddr *addr, socklen_t *addrlen, int flags),
     (fd, addr, addrlen, flags), (int)syscall(SYS_accept4, fd, addr, addrlen, flags))
REAL(int, connect, (int fd, const struct sockaddr *addr, socklen_t addrlen), (fd, addr, addrlen),
     (int)syscall(SYS_connect, fd, addr, addrlen))
REAL(int, poll, (struct pollfd * fds, nfds_t nfds, int timeout), (fds, nfds, timeout),
     (int)syscall(SYS_poll, fds, nfds, timeout))
REAL(int, ppoll,
     (struct pollfd * fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask),
     (fds, nfds, tmo, mask), fb_ppoll(fds, nfds, tmo, mask))
REAL(int, select, (int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo),
     (nfds, r, w, e, tmo), (int)syscall(SYS_select, nfds, r, w, e, tmo))
REAL(int, pselect,
     (int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo, const sigset_t *mask),
     (nfds, r, w, e, tmo, mask), fb_pselect(nfds, r, w, e, tmo, mask))
REAL(int, epoll_wait, (int epfd, struct epoll_event *events, int maxevents, int timeout),
     (epfd, events, maxevents, timeout),
     (int)syscall(SYS_epoll_wait, epfd, events, maxevents, timeout))
REAL(int, epoll_pwait,
     (int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *mask),
     (epfd, events, maxevents, timeout, mask),
     (int)syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, mask, _NSIG / 8))
REAL(int, nanosleep, (const struct timespec *req, struct timespec *rem), (req, rem),
     (int)syscall(SYS_nanosleep, req, rem))
REAL(int, clock_nanosleep,
     (clockid_t clk, int flags, const struct timespec *req, struct timespec *rem),
     (clk, flags, req, rem), fb_clock_nanosleep(clk, flags, req, rem))
REAL(int, usleep, (unsigned int usec), (usec), fb_usleep(usec))
REAL(unsigned int, sleep, (unsigned int seconds), (seconds), fb_sleep(seconds))
REAL(int, fsync, (int fd), (fd), (int)syscall(SYS_fsync, fd))
REAL(int, fdatasync, (int fd), (fd), (int)syscall(SYS_fdatasync, fd))
REAL(pid_t, waitpid, (pid_t pid, int *status, int options), (pid, status, options),
     (pid_t)syscall(SYS_wait4, pid, status, options, NULL))

/* ---- the interposers ------------------------------------------------------------ */

__attribute__((constructor)) static void interpose_init(void)
{
	const char *e = getenv("UMCG_INTERPOSE");
	if (e && e[0] == '0')
		atomic_store_explicit(&umcg__interpose_on, 0, memory_order_relaxed);
}

/*
 * Enter the lazy path? Only for a detected worker (det not OFF) with
 * interposition on; umcg__det_sys_enter() then parks first if a late
 * take-over is pending, and says LAZY (det was USER, now SYSCALL) or PLAIN
 * (nested, or inside libumcg). The first load is relaxed: det leaves OFF
 * only by the worker itself (umcg__det_open), so it sees its own value;
 * for anybody else's changes det_sys_enter loads with acquire.
 */
static inline bool enter_lazy(struct umcg_ktask *k)
{
	if (atomic_load_explicit(&k->det, memory_order_relaxed) == DET_OFF ||
	    !atomic_load_explicit(&umcg__interpose_on, memory_order_relaxed))
		return false;
	return umcg__det_sys_enter(k) == DET_CALL_LAZY;
}

/*
 * Weak: a program that defines one of these functions itself (its own
 * interposer, a counting stand-in) keeps its definition - the static
 * archive would otherwise fail to link with a duplicate symbol; its
 * definition then replaces ours (and the lazy path) for that function.
 */
#define INTERPOSE(ret_t, name, params, args)                                                       \
	UMCG_EXPORT __attribute__((weak)) ret_t name params                                        \
	{                                                                                          \
		struct umcg_ktask *k_ = umcg__current();                                           \
		if (__builtin_expect(!k_, 1) || !enter_lazy(k_))                                   \
			return umcg__libc_##name args;                                             \
		ret_t r_ = umcg__libc_##name args;                                                 \
		int e_ = errno;                                                                    \
		umcg__det_sys_leave(k_);                                                           \
		errno = e_;                                                                        \
		return r_;                                                                         \
	}

INTERPOSE(ssize_t, read, (int fd, void *buf, size_t count), (fd, buf, count))
INTERPOSE(ssize_t, write, (int fd, const void *buf, size_t count), (fd, buf, count))
INTERPOSE(ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt))
INTERPOSE(ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt))
INTERPOSE(ssize_t, pread, (int fd, void *buf, size_t count, off_t off), (fd, buf, count, off))
INTERPOSE(ssize_t, pwrite, (int fd, const void *buf, size_t count, off_t off),
	  (fd, buf, count, off))
INTERPOSE(ssize_t, preadv, (int fd, const struct iovec *iov, int iovcnt, off_t off),
	  (fd, iov, iovcnt, off))
INTERPOSE(ssize_t, pwritev, (int fd, const struct iovec *iov, int iovcnt, off_t off),
	  (fd, iov, iovcnt, off))
INTERPOSE(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags))
INTERPOSE(ssize_t, recvfrom,
	  (int fd, void *buf, size_t len, int flags, SA_ARG src, socklen_t *addrlen),
	  (fd, buf, len, flags, SA_PTR(src), addrlen))
INTERPOSE(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags))
INTERPOSE(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags))
INTERPOSE(ssize_t, sendto,
	  (int fd, const void *buf, size_t len, int flags, CSA_ARG dst, socklen_t addrlen),
	  (fd, buf, len, flags, SA_PTR(dst), addrlen))
INTERPOSE(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags))
INTERPOSE(int, accept, (int fd, SA_ARG addr, socklen_t *addrlen), (fd, SA_PTR(addr), addrlen))
INTERPOSE(int, accept4, (int fd, SA_ARG addr, socklen_t *addrlen, int flags),
	  (fd, SA_PTR(addr), addrlen, flags))
INTERPOSE(int, connect, (int fd, CSA_ARG addr, socklen_t addrlen), (fd, SA_PTR(addr), addrlen))
INTERPOSE(int, poll, (struct pollfd * fds, nfds_t nfds, int timeout), (fds, nfds, timeout))
INTERPOSE(int, ppoll,
	  (struct pollfd * fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask),
	  (fds, nfds, tmo, mask))
INTERPOSE(int, select, (int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tmo),
	  (nfds, r, w, e, tmo))
INTERPOSE(int, pselect,
	  (int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
	   const sigset_t *mask),
	  (nfds, r, w, e, tmo, mask))
INTERPOSE(int, epoll_wait, (int epfd, struct epoll_event *events, int maxevents, int timeout),
	  (epfd, events, maxevents, timeout))
INTERPOSE(int, epoll_pwait,
	  (int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *mask),
	  (epfd, events, maxevents, timeout, mask))
INTERPOSE(int, nanosleep, (const struct timespec *req, struct timespec *rem), (req, rem))
INTERPOSE(int, clock_nanosleep,
	  (clockid_t clk, int flags, const struct timespec *req, struct timespec *rem),
	  (clk, flags, req, rem))
INTERPOSE(int, usleep, (useconds_t usec), (usec))
INTERPOSE(unsigned int, sleep, (unsigned int seconds), (seconds))
INTERPOSE(int, fsync, (int fd), (fd))
INTERPOSE(int, fdatasync, (int fd), (fd))
INTERPOSE(pid_t, waitpid, (pid_t pid, int *status, int options), (pid, status, options))
