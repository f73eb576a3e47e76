/* SPDX-License-Identifier: MIT */
/*
 * watcher.c - one thread per server that notices when the server's worker
 * goes to sleep.
 *
 * The kernel's scheduler runs UMCG's block hook at the moment a worker
 * sleeps. Our substitute is a thread of the lowest scheduling class,
 * SCHED_IDLE, with the server's CPU affinity: it only runs when its CPU
 * has nothing else to run, which, with the server asleep in umcg_wait(),
 * is exactly when the worker has gone to sleep. It then reads the
 * worker's switch records (perf.c) and does the worker's T6 for it
 * (takeover.c); waking the server is a same-CPU futex wake. No wake-up by
 * the perf event is needed (that would be an irq_work self-IPI per
 * record: ~15 us here), and a worker that computes is never disturbed:
 * a SCHED_IDLE thread never preempts it, and when it is scheduled anyway
 * (its tiny fair share) it yields at once.
 *
 * Protocol with the server (who may touch what):
 *   - server->supervise is written by the server (and, for a
 *     worker-to-worker switch, by the switching worker) with release,
 *     and cleared when the wait ends; the watcher only reads it
 *     (acquire: the worker's registration and ring are visible).
 *   - seq is the watcher's futex word. umcg__watch() bumps it (seq_cst
 *     RMW) after the store of supervise, then loads `sleeping` (seq_cst)
 *     and wakes the watcher if set. The watcher stores sleeping (seq_cst),
 *     loads supervise (seq_cst) and FUTEX_WAITs on the seq value it read
 *     before: either it sees the new supervise, or the bump makes its
 *     futex wait fail (EAGAIN), or the waker sees it sleeping. Same
 *     pattern as the ttwu protocol of kern.h.
 *   - A watcher that finds nothing to do on an otherwise idle CPU spins
 *     (sched_yield) a little, then sleeps: until bumped if there is no
 *     worker to watch, else for 50 us doubling up to 1 ms (the worker
 *     runs on another CPU, or sleeps inside libumcg).
 *   - The watcher is not the only checker: the server runs the same check
 *     before it sleeps and every 1-8 ms while it sleeps (kern/sched.c
 *     umcg__idle_loop_watch). That covers a watcher that does not get the
 *     CPU (other processes keep it busy: SCHED_IDLE can starve for
 *     seconds) and saves the watcher's hop when the worker the server
 *     woke preempted it and then slept before the server's own sleep.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include "detect/detect.h"
#include "util/util.h"

struct umcg_watcher {
	struct umcg_ktask *server;
	_Atomic uint32_t seq;
	_Atomic uint32_t sleeping;
	_Atomic pid_t tid; /* for its affinity */
	unsigned gen;
};

_Atomic unsigned umcg__fork_gen;

/*
 * SPINS yields in a row that return at once (nothing else wanted the CPU:
 * YIELD_BUSY_NS) mean we spin on an idle CPU: sleep. A yield that took
 * longer let another task run (the worker, on our CPU): keep looking, it
 * costs that task nothing but the switch.
 */
enum { SPINS = 200, YIELD_BUSY_NS = 20000, BACKOFF_MIN_NS = 50000, BACKOFF_MAX_NS = 1000000 };

static void *watcher_main(void *arg)
{
	struct umcg_watcher *w = arg;
	struct umcg_ktask *s = w->server;
	atomic_store_explicit(&w->tid, (pid_t)umcg_gettid(), memory_order_release);
	struct sched_param sp = {0};
	sched_setscheduler(0, SCHED_IDLE, &sp); /* failure: a plain thread, still correct */
	struct umcg_ktask *seen_w = NULL;
	uint64_t seen_head = 0, backoff = 0;
	int spins = 0;
	for (;;) {
		uint32_t seq = atomic_load_explicit(&w->seq, memory_order_seq_cst);
		struct umcg_ktask *wk = atomic_load_explicit(&s->supervise, memory_order_acquire);
		if (wk) {
			uint64_t head = umcg__det_ring_head(wk);
			if (wk != seen_w || head != seen_head) {
				seen_w = wk;
				seen_head = head;
				spins = 0;
				backoff = 0;
				umcg__det_check(s, wk);
				continue;
			}
		}
		uint64_t t0 = umcg_now_ns();
		sched_yield();
		if (umcg_now_ns() - t0 > YIELD_BUSY_NS)
			spins = 0; /* somebody else ran: we waste no CPU by looking again */
		if (++spins < SPINS)
			continue;
		/* nothing new for a while: sleep until bumped (or, while a worker runs, a while) */
		uint64_t until = 0;
		if (wk) {
			backoff =
			    backoff ? (backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : backoff * 2)
				    : BACKOFF_MIN_NS;
			until = umcg_now_ns() + backoff;
		}
		atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&s->supervise, memory_order_seq_cst) == wk) {
			atomic_fetch_add_explicit(&umcg__det_counts.watcher_sleeps, 1,
						  memory_order_relaxed);
			umcg__futex_wait(&w->seq, seq, until);
		}
		atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
		spins = 0;
	}
	return NULL;
}

static struct umcg_watcher *create(struct umcg_ktask *server)
{
	struct umcg_watcher *w = atomic_load_explicit(&server->watcher, memory_order_relaxed);
	if (!w) {
		w = calloc(1, sizeof *w);
		if (!w)
			return NULL;
		w->server = server;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	cpu_set_t cpus;
	pid_t tid = (pid_t)atomic_load_explicit(&server->tid, memory_order_relaxed);
	if (sched_getaffinity(tid, sizeof cpus, &cpus) == 0)
		pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the watcher takes no signals */
	pthread_t th;
	int r = pthread_create(&th, &attr, watcher_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r) {
		if (!atomic_load_explicit(&server->watcher, memory_order_relaxed))
			free(w);
		return NULL;
	}
	w->gen = atomic_load_explicit(&umcg__fork_gen, memory_order_relaxed);
	atomic_store_explicit(&server->watch_moved, false, memory_order_relaxed);
	/* release: a thread that loads the pointer (acquire) sees gen and the thread */
	atomic_store_explicit(&server->watcher, w, memory_order_release);
	return w;
}

/* The server's CPUs: the watcher runs where the worker runs (its server's CPU). */
static void follow_affinity(struct umcg_watcher *w, struct umcg_ktask *server)
{
	cpu_set_t cpus;
	pid_t tid = atomic_load_explicit(&w->tid, memory_order_acquire);
	if (tid &&
	    sched_getaffinity((pid_t)atomic_load_explicit(&server->tid, memory_order_relaxed),
			      sizeof cpus, &cpus) == 0)
		sched_setaffinity(tid, sizeof cpus, &cpus);
}

/*
 * Creation lock. A fork may copy it held by a thread that does not exist in
 * the child: the child re-initialises it.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void watch_atfork_child(void)
{
	pthread_mutex_init(&lock, NULL);
}

__attribute__((constructor)) static void watch_init(void)
{
	pthread_atfork(NULL, NULL, watch_atfork_child);
}

void umcg__watch(struct umcg_ktask *server)
{
	struct umcg_watcher *w = atomic_load_explicit(&server->watcher, memory_order_acquire);
	unsigned gen = atomic_load_explicit(&umcg__fork_gen, memory_order_relaxed);
	if (!w || w->gen != gen) {
		/* first use, or a watcher from before fork (threads do not survive it) */
		pthread_mutex_lock(&lock);
		w = atomic_load_explicit(&server->watcher, memory_order_relaxed);
		if (!w || w->gen != gen)
			w = create(server);
		pthread_mutex_unlock(&lock);
		if (!w)
			return; /* no thread: blocks of this server's workers go unseen */
	} else if (atomic_exchange_explicit(&server->watch_moved, false, memory_order_relaxed)) {
		follow_affinity(w,
				server); /* a recycled record: its watcher served another server */
	}
	atomic_fetch_add_explicit(&w->seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst))
		umcg__futex_wake(&w->seq, 1);
}
