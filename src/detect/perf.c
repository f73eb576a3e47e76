/* SPDX-License-Identifier: MIT */
/*
 * perf.c - the per-worker perf event that tells when a worker sleeps.
 *
 * perf_event_open(pid = the worker's tid, cpu = -1), a software dummy
 * event with context_switch = 1 and exclude_kernel = 1: unprivileged at
 * perf_event_paranoid <= 2, it counts nothing and only writes side-band
 * PERF_RECORD_SWITCH records (8 bytes each: no sample_id) into a ring of
 * one data page. The server's watcher thread (watcher.c) reads the ring;
 * nobody polls it, and its wakeup watermark is the whole ring: a wake-up
 * is an irq_work, a self-IPI, which costs ~15 us in these VMs (measured:
 * a same-CPU futex round trip went from 5-7 us to 35-47 us with a wake-up
 * per record, 8-9 us without).
 *
 * Ring protocol (the kernel's, perf_event_open(2)): the kernel writes
 * records, then publishes data_head (release); we load data_head with
 * acquire, read the records, then store data_tail with release so the
 * kernel may reuse the space. det_lock serialises the readers of one
 * worker's ring (the watcher of the server that runs it, a server that
 * took it and re-checks), and the owner takes it before it unmaps.
 *
 * If the ring was full, the kernel drops records and writes a
 * PERF_RECORD_LOST with the next record that fits; a ring found full, or
 * a LOST record, means the newest switch kind is re-derived from the
 * thread's state in /proc/self/task/TID/stat (S or D: asleep).
 *
 * The switch-in alarm: for a worker taken while it slept in code no
 * wrapper saw (TAKEN_RAW), a second event on it, with a wake-up on every
 * record, O_ASYNC, owner = the worker thread (F_SETOWN_EX, F_OWNER_TID)
 * and F_SETSIG = the detection signal. The kernel then signals the worker
 * from the irq_work that follows its next record, which is its own
 * switch-in: the signal is raised on the worker's CPU while it runs in
 * the kernel, and the handler parks it before any user code runs. The
 * alarm is opened at the worker's first raw take-over and kept, disabled
 * (no records, no signals) except between the take-over and the park:
 * enabled only after the switch-out was seen (a signal raised by a
 * switch-out would interrupt the sleep: EINTR), disabled by the worker
 * when it parks. Enabling costs one ioctl; opening it costs ~30 us.
 * In these VMs the irq_work is now and then delivered late (up to a
 * tick): the worker then runs user code BLOCKED until the signal comes,
 * and if it sleeps again meanwhile, that call fails with EINTR
 * (docs/detection.md, "The window"; counted in umcg__det_counts.eintr).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "detect/detect.h"
#include "util/util.h"

#define RING_PAGES 1 /* data pages; plus one metadata page */

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE); /* from the auxiliary vector: no system call */
}

/* ---- process-wide switches ------------------------------------------------ */

/* 1: detect workers registered from now on (UMCG_TUNE_DETECT, UMCG_DETECT=0). */
_Atomic int umcg__detect_default = -1;

static _Atomic bool warned;
static _Atomic int handler_state; /* 0 not installed, 1 ours, -1 refused */

int umcg__detect_signal(void)
{
	static int sig;
	if (!sig) {
		const char *e = getenv("UMCG_DETECT_SIGNAL");
		int s = e ? atoi(e) : 0;
		sig = (s >= SIGRTMIN && s <= SIGRTMAX) ? s : SIGRTMAX - 1;
	}
	return sig;
}

static bool detect_default(void)
{
	int d = atomic_load_explicit(&umcg__detect_default, memory_order_relaxed);
	if (d < 0) {
		const char *e = getenv("UMCG_DETECT");
		d = !(e && e[0] == '0');
		int expected = -1;
		atomic_compare_exchange_strong(&umcg__detect_default, &expected, d);
		d = atomic_load_explicit(&umcg__detect_default, memory_order_relaxed);
	}
	return d == 1;
}

/* Say once, on stderr, that detection is off and why; never silently. */
static void warn_once(const char *what, int err)
{
	if (atomic_exchange(&warned, true))
		return;
	char msg[256];
	int n =
	    snprintf(msg, sizeof msg,
		     "libumcg: transparent block detection unavailable (%s: %s); workers "
		     "fall back to explicit block points (umcg_wrap.h). See docs/detection.md.\n",
		     what, strerror(err));
	if (n > 0 && write(2, msg, (size_t)n) < 0)
		return;
}

/*
 * Did the signal interrupt a sleeping system call that now fails with
 * EINTR? (x86-64: the interrupted instruction is `syscall`, rax holds the
 * result.) Only counted, for tests and benchmarks: it means the signal
 * came late (docs/detection.md, "The window").
 */
static bool interrupted_a_call(void *uc)
{
#if defined(__x86_64__)
	const ucontext_t *u = uc;
	const unsigned char *ip = (const unsigned char *)u->uc_mcontext.gregs[REG_RIP];
	return u->uc_mcontext.gregs[REG_RAX] == -EINTR && ip[-2] == 0x0f && ip[-1] == 0x05;
#else
	(void)uc;
	return false;
#endif
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	struct umcg_ktask *k = umcg__current();
	if (!k)
		return;
	int e = errno;
	if (interrupted_a_call(uc))
		atomic_fetch_add_explicit(&umcg__det_counts.eintr, 1, memory_order_relaxed);
	umcg__det_signal(k);
	errno = e;
}

/* Install the detection signal's handler once; false if the signal is taken. */
static bool install_handler(void)
{
	int st = atomic_load(&handler_state);
	if (st)
		return st > 0;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	st = atomic_load(&handler_state);
	if (!st) {
		struct sigaction old, sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_signal;
		/* SA_RESTART: a restartable call that the signal meets restarts */
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		int sig = umcg__detect_signal();
		if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL &&
		    old.sa_sigaction != on_signal) {
			warn_once(
			    "the detection signal has a handler already; set UMCG_DETECT_SIGNAL",
			    EBUSY);
			st = -1;
		} else {
			st = sigaction(sig, &sa, NULL) == 0 ? 1 : -1;
			if (st < 0)
				warn_once("sigaction", errno);
		}
		atomic_store(&handler_state, st);
	}
	pthread_mutex_unlock(&lock);
	return st > 0;
}

/* ---- open / close ----------------------------------------------------------- */

static void lock_ring(struct umcg_ktask *w)
{
	for (int spins = 0; atomic_exchange_explicit(&w->det_lock, 1, memory_order_acquire);)
		if (++spins > 64)
			sched_yield();
}

static void unlock_ring(struct umcg_ktask *w)
{
	atomic_store_explicit(&w->det_lock, 0, memory_order_release);
}

int umcg__det_event_open(uint32_t tid, uint32_t wakeup, void **ring, size_t *len)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.size = sizeof a;
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_DUMMY;
	a.context_switch = 1;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	a.watermark = 1;
	a.wakeup_watermark = wakeup;
	*ring = NULL;
	*len = page_size() * (1 + RING_PAGES);
	int fd = (int)syscall(SYS_perf_event_open, &a, (pid_t)tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	void *m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		*ring = MAP_FAILED;
		return -e;
	}
	*ring = m;
	return fd;
}

/* The switch-record event on k's thread (umcg__det_event_open). */
static int open_event(struct umcg_ktask *k, uint32_t wakeup, void **ring)
{
	size_t len;
	return umcg__det_event_open(atomic_load_explicit(&k->tid, memory_order_relaxed), wakeup,
				    ring, &len);
}

int umcg__det_open(struct umcg_ktask *k, bool by_default)
{
	if (by_default && !detect_default())
		return -EPERM;
	if (!install_handler())
		return -EBUSY;
	/* the switch-in alarm's signal must reach this thread */
	sigset_t sig;
	sigemptyset(&sig);
	sigaddset(&sig, umcg__detect_signal());
	pthread_sigmask(SIG_UNBLOCK, &sig, NULL);
	void *ring;
	int fd = open_event(k, (uint32_t)(page_size() * RING_PAGES), &ring);
	if (fd < 0) {
		warn_once(ring ? "mmap of the perf ring (perf_event_mlock_kb, RLIMIT_MEMLOCK)"
			       : "perf_event_open",
			  -fd);
		return fd;
	}
	umcg__det_relay_prepare(); /* once per process (and per fork child) */
	lock_ring(k);		   /* the watchers read det_ring under it */
	k->det_ring = ring;
	k->det_last = DET_LAST_IN; /* we are running */
	atomic_store_explicit(&k->det_fd, fd, memory_order_relaxed);
	unlock_ring(k);
	/* release: a supervisor that sees det != OFF sees the ring (det_lock too) */
	atomic_store_explicit(&k->det, DET_LIB, memory_order_release);
	return 0;
}

/* Newest data_head of w's ring without consuming (the watcher's cheap check). */
uint64_t umcg__det_ring_head(struct umcg_ktask *w)
{
	lock_ring(w);
	struct perf_event_mmap_page *mp = w->det_ring;
	uint64_t h = mp ? __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE) : 0;
	unlock_ring(w);
	return h;
}

void umcg__det_close(struct umcg_ktask *k)
{
	int fd = atomic_load_explicit(&k->det_fd, memory_order_relaxed);
	if (fd < 0)
		return;
	lock_ring(k);
	atomic_store_explicit(&k->det, DET_OFF, memory_order_relaxed);
	void *ring = k->det_ring, *alarm_ring = k->alarm_ring;
	int alarm_fd = k->alarm_fd;
	k->det_ring = NULL;
	k->alarm_ring = NULL;
	k->alarm_fd = -1;
	atomic_store_explicit(&k->det_fd, -1, memory_order_relaxed);
	unlock_ring(k);
	munmap(ring, page_size() * (1 + RING_PAGES));
	close(fd);
	if (alarm_fd >= 0) {
		munmap(alarm_ring, page_size() * (1 + RING_PAGES));
		close(alarm_fd); /* no more signals: O_ASYNC goes with the file */
	}
}

/* ---- reading the ring ------------------------------------------------------- */

/* The thread's scheduler state from /proc: asleep (S, D) or not. */
static int last_from_proc(struct umcg_ktask *w)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%u/stat",
		 atomic_load_explicit(&w->tid, memory_order_relaxed));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return DET_LAST_IN;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return DET_LAST_IN;
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* comm may contain spaces */
	if (!p || p[1] != ' ')
		return DET_LAST_IN;
	return (p[2] == 'S' || p[2] == 'D') ? DET_LAST_SLEEP : DET_LAST_IN;
}

int umcg__det_ring_last(struct umcg_ktask *w)
{
	lock_ring(w);
	struct perf_event_mmap_page *mp = w->det_ring;
	if (!mp) {
		unlock_ring(w);
		return DET_LAST_NONE;
	}
	const char *data = (const char *)mp + page_size();
	uint64_t size = page_size() * RING_PAGES;
	uint64_t head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = mp->data_tail;
	/*
	 * A full ring drops what comes next, and says so (PERF_RECORD_LOST)
	 * only with the next record it can write: for a worker that has just
	 * gone to sleep, that is never. So a ring found (nearly) full counts
	 * as lost too.
	 */
	bool lost = head - tail > size - 64;
	int last = w->det_last;
	while (tail < head) {
		const struct perf_event_header *h = (const void *)(data + (tail % size));
		if (h->size < sizeof *h)
			break; /* cannot happen; never loop forever */
		if (h->type == PERF_RECORD_SWITCH) {
			if (!(h->misc & PERF_RECORD_MISC_SWITCH_OUT))
				last = DET_LAST_IN;
			else if (h->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT)
				last = DET_LAST_PREEMPT;
			else
				last = DET_LAST_SLEEP;
		} else if (h->type == PERF_RECORD_LOST) {
			lost = true;
		}
		tail += h->size;
	}
	__atomic_store_n(&mp->data_tail, head, __ATOMIC_RELEASE);
	if (lost) { /* the newest records may be the ones dropped */
		atomic_fetch_add_explicit(&umcg__det_counts.lost, 1, memory_order_relaxed);
		last = last_from_proc(w);
	}
	w->det_last = last;
	unlock_ring(w);
	return last;
}

/*
 * Does the relay (relay.c) send the alarm's signal? Asked before
 * lock_ring: the first answer may take a probe, which sleeps (in practice
 * the worker's umcg__det_open() asked first).
 */
static _Atomic bool alarm_relay;

static void alarm_mode(void)
{
	atomic_store_explicit(&alarm_relay, umcg__det_relay_needed(), memory_order_relaxed);
}

/* Open w's alarm (first raw take-over only: ~30 us), disabled, kept; false if it cannot be had. */
static bool alarm_open_locked(struct umcg_ktask *w)
{
	if (w->alarm_fd >= 0)
		return true;
	void *ring;
	int fd = open_event(w, 1, &ring);
	if (fd < 0) {
		/* the sleep is not taken: say so, once (a silent hang is worse) */
		warn_once(ring ? "mmap of a switch-in alarm's ring (perf_event_mlock_kb, "
				 "RLIMIT_MEMLOCK): raw sleeps past it are not reported"
			       : "perf_event_open of a switch-in alarm",
			  -fd);
		return false;
	}
	pid_t tid = (pid_t)atomic_load_explicit(&w->tid, memory_order_relaxed);
	struct f_owner_ex own = {.type = F_OWNER_TID, .pid = tid};
	/* relay: a thread of ours sends the signal (relay.c); else the kernel does */
	bool relay = atomic_load_explicit(&alarm_relay, memory_order_relaxed);
	if (ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) ||
	    (relay ? !umcg__det_relay_add(w, fd)
		   : fcntl(fd, F_SETOWN_EX, &own) || fcntl(fd, F_SETSIG, umcg__detect_signal()) ||
			 fcntl(fd, F_SETFL, O_ASYNC))) {
		munmap(ring, page_size() * (1 + RING_PAGES));
		close(fd);
		return false;
	}
	w->alarm_ring = ring;
	w->alarm_fd = fd;
	return true;
}

bool umcg__det_alarm_open(struct umcg_ktask *w)
{
	alarm_mode();
	lock_ring(w); /* against the owner's umcg__det_close() */
	bool ok = w->det_ring && alarm_open_locked(w);
	unlock_ring(w);
	return ok;
}

bool umcg__det_alarm_arm(struct umcg_ktask *w)
{
	alarm_mode();
	lock_ring(w); /* against the owner's umcg__det_close() */
	bool ok = w->det_ring && alarm_open_locked(w) &&
		  ioctl(w->alarm_fd, PERF_EVENT_IOC_ENABLE, 0) == 0;
	unlock_ring(w);
	/*
	 * Full fence: the kernel's stores that enable the event (in our
	 * ioctl) come before our next load of the detection ring's data_head,
	 * pairing with the kernel's record write -> irq_work -> signal on the
	 * worker's CPU: either the switch-in record goes to the enabled alarm
	 * (a signal is raised) or our re-check sees it in the detection ring.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	return ok;
}

/* Under lock_ring: drop the alarm's records, so that the next one has room. */
static void alarm_drain_locked(struct umcg_ktask *w)
{
	struct perf_event_mmap_page *mp = w->alarm_ring;
	__atomic_store_n(&mp->data_tail, __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

void umcg__det_alarm_disarm(struct umcg_ktask *w)
{
	lock_ring(w);
	if (w->alarm_fd >= 0) {
		ioctl(w->alarm_fd, PERF_EVENT_IOC_DISABLE, 0);
		alarm_drain_locked(w); /* the next arming has room to write one */
	}
	unlock_ring(w);
}

void umcg__det_alarm_drain(struct umcg_ktask *w)
{
	lock_ring(w);
	if (w->alarm_fd >= 0)
		alarm_drain_locked(w);
	unlock_ring(w);
}

__attribute__((destructor)) static void det_report(void)
{
	if (!getenv("UMCG_DETECT_STATS"))
		return;
	fprintf(stderr,
		"libumcg detection: taken_sys %llu taken_raw %llu parks %llu woke_early %llu "
		"no_alarm %llu "
		"watcher_sleeps %llu eintr %llu signals %llu not_running %llu relayed %llu\n",
		(unsigned long long)umcg__det_counts.taken_sys,
		(unsigned long long)umcg__det_counts.taken_raw,
		(unsigned long long)umcg__det_counts.parks,
		(unsigned long long)umcg__det_counts.woke_early,
		(unsigned long long)umcg__det_counts.no_alarm,
		(unsigned long long)umcg__det_counts.watcher_sleeps,
		(unsigned long long)umcg__det_counts.eintr,
		(unsigned long long)umcg__det_counts.signals,
		(unsigned long long)umcg__det_counts.not_running,
		(unsigned long long)umcg__det_counts.relayed);
}
