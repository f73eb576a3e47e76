/* SPDX-License-Identifier: MIT */
/*
 * relay.c - the switch-in alarm on kernels that do not signal it.
 *
 * perf.c's switch-in alarm asks the kernel for a signal (O_ASYNC,
 * F_SETSIG) on every record of an event that writes nothing but switch
 * records. Linux raises that signal for such records only since 6.9
 * (Kyle Huey's "perf/ring_buffer: Trigger FASYNC signals for watermark
 * wakeups", 2024). Before it (Debian 12's 6.1, Ubuntu 22.04's 5.15) only a
 * sampling overflow signals; a record only wakes the fd's pollers. There
 * a raw sleep that a server took over would never park: the worker would
 * run its own code BLOCKED until it entered libumcg again (found in the
 * 6.1 test guest: every raw-block test of test_detect timed out).
 *
 * So libumcg asks the running kernel once (probe(): an alarm-style event
 * on the calling thread, one short sleep, is the signal pending?), and
 * where the kernel does not signal, one relay thread per process waits in
 * epoll_wait() on every opened alarm and sends the detection signal itself
 * (tgkill) when an alarm becomes readable. UMCG_DETECT_ALARM=relay forces
 * the relay (tests run it on kernels that signal), =kernel forbids it.
 *
 * The relay's decision for a readable alarm of worker w:
 *   - det TAKING: the take-over is being decided (the alarm is armed
 *     before the worker is made BLOCKED, takeover.c): look again in 1 ms
 *     (a record that came between the arming and TAKEN_RAW must not be
 *     dropped, or the worker runs BLOCKED), without holding up the other
 *     alarms;
 *   - det not TAKEN_RAW: nothing to do (given up, or parked already: the
 *     park disarms the alarm, and a late record is harmless);
 *   - drop the alarm's records (a full ring records, and wakes us, no
 *     more: page faults in the window filled it);
 *   - signal w. The handler (perf.c, umcg__det_signal) parks it. We
 *     signal for every record of the take-over, as the kernel's own
 *     signal does: one signal per take-over was tried and lost parks
 *     under TSan, whose runtime merges a signal into one still pending;
 *     and skipping a worker whose newest record is a sleep (to spare that
 *     sleep an EINTR) deadlocked bench_detect: the worker, BLOCKED in its
 *     window, slept again on a pipe that only its server writes, after
 *     the server ran it again, which needs the park first. A signal
 *     interrupts that sleep, as the kernel's does on the switch-out.
 * Ordering: our acquire load of det pairs with the server's release store
 * of TAKEN_RAW (takeover.c), after it made w BLOCKED; the alarm's ring is
 * drained under det_lock, like the owner's disarm.
 *
 * perf_poll() hands out EPOLLIN once per wake-up (it exchanges the ready
 * bits with 0), so a readable alarm is reported once per record batch;
 * an alarm is registered when it is opened, disabled and empty, so no
 * record predates its registration. Registrations hold w, a slot of the
 * registry that is never freed; closing the alarm fd removes it from the
 * epoll set. After fork() the child makes its own epoll set and thread
 * (the inherited epoll fd is the parent's instance).
 *
 * Cost against the kernel's signal: the signal now comes from another
 * thread after a wake-up of the relay, so the worker runs some of its own
 * code BLOCKED before it parks (the window, docs/detection.md section 2),
 * and a worker that sleeps again in that window gets its sleep
 * interrupted: EINTR for a call that is not restarted (counted in
 * umcg__det_counts.eintr).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "detect/detect.h"
#include "util/util.h"

/* ---- does the kernel signal an alarm record? -------------------------------- */

static _Atomic int relay_mode = -1; /* -1 unknown, 0 the kernel signals, 1 relay */

/*
 * An alarm-style event on this thread (wake-up on every record, O_ASYNC,
 * F_SETSIG = the detection signal, blocked here so that it stays
 * pending), one short sleep (a switch-out and a switch-in record), then
 * up to ~20 ms for the signal (irq_work may come late, up to a tick).
 * true if the kernel signalled. A probe that cannot open the event says
 * true: then the alarm itself cannot be opened either (no take-over).
 */
static bool kernel_signals(void)
{
	int sig = umcg__detect_signal();
	void *ring;
	size_t len;
	int fd = umcg__det_event_open(umcg_gettid(), 1, &ring, &len);
	if (fd < 0)
		return true;
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	struct f_owner_ex own = {.type = F_OWNER_TID, .pid = (pid_t)umcg_gettid()};
	bool got = false;
	if (fcntl(fd, F_SETOWN_EX, &own) == 0 && fcntl(fd, F_SETSIG, sig) == 0 &&
	    fcntl(fd, F_SETFL, O_ASYNC) == 0) {
		for (int i = 0; i < 40 && !got; i++) {
			struct timespec ts = {0, 500000}, zero = {0, 0};
			syscall(SYS_nanosleep, &ts, NULL); /* switched out and in */
			got = sigtimedwait(&set, NULL, &zero) == sig;
		}
	}
	munmap(ring, len);
	close(fd); /* no more signals: O_ASYNC goes with the file */
	/* one may have come after our last look: it must not reach the handler */
	struct timespec zero = {0, 0};
	while (sigtimedwait(&set, NULL, &zero) == sig)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return got;
}

bool umcg__det_relay_needed(void)
{
	int m = atomic_load_explicit(&relay_mode, memory_order_acquire);
	if (m >= 0)
		return m;
	const char *e = getenv("UMCG_DETECT_ALARM");
	if (e && !strcmp(e, "relay"))
		m = 1;
	else if (e && !strcmp(e, "kernel"))
		m = 0;
	else
		m = !kernel_signals();
	/* racing probes agree (same kernel): the first answer stays */
	int expected = -1;
	atomic_compare_exchange_strong_explicit(&relay_mode, &expected, m, memory_order_acq_rel,
						memory_order_acquire);
	return atomic_load_explicit(&relay_mode, memory_order_acquire);
}

/* ---- the relay thread --------------------------------------------------------- */

/*
 * One readable alarm. true: done with it; false: det was TAKING, look
 * again soon (waiting here would hold up every other alarm behind a
 * checker that was preempted inside its take-over: seen as workers
 * running BLOCKED for seconds under load).
 */
static bool relay_one(struct umcg_ktask *w)
{
	int d = atomic_load_explicit(&w->det, memory_order_acquire);
	if (d == DET_TAKING)
		return false;
	if (d != DET_TAKEN_RAW)
		return true;
	/*
	 * Nobody reads the alarm's records: drop them before we look, or a
	 * worker that keeps sleeping and waking in the window (page faults)
	 * fills the ring and its next switch-in records, and wakes us, no
	 * more. A record written after this drain wakes us again.
	 */
	umcg__det_alarm_drain(w);
	pid_t tid = (pid_t)atomic_load_explicit(&w->tid, memory_order_relaxed);
	if (syscall(SYS_tgkill, getpid(), tid, umcg__detect_signal()) == 0)
		atomic_fetch_add_explicit(&umcg__det_counts.relayed, 1, memory_order_relaxed);
	return true;
}

enum { RELAY_EVENTS = 16, RELAY_LATER = 256, RELAY_RETRY_MS = 1 };

static void *relay_main(void *arg)
{
	int ep = (int)(intptr_t)arg;
	prctl(PR_SET_NAME, "umcg-relay");
	struct epoll_event ev[RELAY_EVENTS];
	struct umcg_ktask *later[RELAY_LATER]; /* alarms whose take-over was still TAKING */
	int nlater = 0;
	for (;;) {
		int n = (int)syscall(SYS_epoll_wait, ep, ev, RELAY_EVENTS,
				     nlater ? RELAY_RETRY_MS : -1);
		if (n < 0 && errno != EINTR)
			return NULL;
		int keep = 0;
		for (int i = 0; i < nlater; i++)
			if (!relay_one(later[i]))
				later[keep++] = later[i];
		nlater = keep;
		for (int i = 0; i < n; i++) {
			struct umcg_ktask *w = ev[i].data.ptr;
			while (!relay_one(w)) {
				if (nlater < RELAY_LATER) {
					later[nlater++] = w;
					break;
				}
				sched_yield(); /* 256 take-overs in flight: wait for this one */
			}
		}
	}
}

/* The epoll set of this process (after fork: of this child), or -1. */
static int relay_ep = -1;
static unsigned relay_gen;
static pthread_mutex_t relay_lock = PTHREAD_MUTEX_INITIALIZER;

static void relay_atfork_child(void)
{
	pthread_mutex_init(&relay_lock, NULL);
}

__attribute__((constructor)) static void relay_init(void)
{
	pthread_atfork(NULL, NULL, relay_atfork_child);
}

/* Under relay_lock: the epoll set, its thread started (first use, or after fork). */
static int relay_start_locked(void)
{
	unsigned gen = atomic_load_explicit(&umcg__fork_gen, memory_order_relaxed);
	if (relay_ep >= 0 && relay_gen == gen)
		return relay_ep;
	if (relay_ep >= 0)
		close(relay_ep); /* the parent's set, inherited: not ours to wait on */
	relay_ep = epoll_create1(EPOLL_CLOEXEC);
	if (relay_ep < 0)
		return -1;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	/*
	 * Not what the creator has: that may be a SCHED_IDLE watcher pinned
	 * to its server's CPU, and a SCHED_IDLE relay never runs while workers
	 * compute BLOCKED waiting for its signal (seen: no relay wake-up at
	 * all in a run where a watcher made it). SCHED_OTHER, the process's
	 * (main thread's) affinity.
	 */
	struct sched_param sp = {.sched_priority = 0};
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
	pthread_attr_setschedparam(&attr, &sp);
	cpu_set_t cpus;
	if (sched_getaffinity(getpid(), sizeof cpus, &cpus) == 0)
		pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the relay takes no signals */
	pthread_t th;
	int r = pthread_create(&th, &attr, relay_main, (void *)(intptr_t)relay_ep);
	if (r == EPERM) { /* an unprivileged SCHED_IDLE creator may not: inherit */
		pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
		r = pthread_create(&th, &attr, relay_main, (void *)(intptr_t)relay_ep);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r) {
		close(relay_ep);
		relay_ep = -1;
		return -1;
	}
	relay_gen = gen;
	return relay_ep;
}

void umcg__det_relay_prepare(void)
{
	if (!umcg__det_relay_needed())
		return;
	pthread_mutex_lock(&relay_lock);
	relay_start_locked();
	pthread_mutex_unlock(&relay_lock);
}

bool umcg__det_relay_add(struct umcg_ktask *w, int alarm_fd)
{
	pthread_mutex_lock(&relay_lock);
	int ep = relay_start_locked();
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
	bool ok = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, alarm_fd, &ev) == 0;
	pthread_mutex_unlock(&relay_lock);
	return ok;
}
