/* SPDX-License-Identifier: MIT */
/*
 * test_detect_edge.c - transparent block detection at its edges
 * (docs/detection.md): unavailable (said once, explicit points instead),
 * page faults that sleep (an evicted file mapping, a contended mmap lock
 * on the kernel backend), a worker-to-worker switch that moves the
 * watcher, and a ring that overflows. test_detect.c has the forms of
 * blocking, the lazy wrappers and the stress.
 */
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "detect_util.h"
#include "sched_util.h"
#include "umcg.h"
#include "umcg_lists.h"
#include "umcg_wrap.h"
#include "kern/kern.h"
#include "util/util.h"
#include <linux/perf_event.h>

/* ---- unavailable: said once on stderr, explicit points instead ------------------------ */

static void expect_fallback(struct su_worker *w)
{
	CHECK_EQ(umcg_detect_thread(-1), 0);
	errno = 0;
	CHECK_EQ(umcg_detect_thread(1), -1); /* the reason, not a silent no */
	CHECK_EQ(errno, EMFILE);
	/* the wrappers are explicit block points: one block, one park per call */
	long runs = atomic_load(&w->g->runs);
	char c = 0;
	int *fd = w->arg;
	CHECK_EQ(umcg_write(fd[1], &c, 1), 1);
	CHECK(atomic_load(&w->g->runs) > runs); /* (the other worker may have run too) */
	CHECK(du_check_running(w));
}

TEST_T(unavailable_says_so_once_and_falls_back, T_DETECT)
{
	SKIP_ON_KERNEL("about perf_event_open, which the kernel backend does not use");
	int fd[2], err[2];
	CHECK(pipe(fd) == 0);
	CHECK(pipe(err) == 0);
	CHECK(fcntl(err[0], F_SETFL, O_NONBLOCK) == 0);
	int saved = dup(2);
	CHECK(saved >= 0);
	if (!getenv("DBG"))
		CHECK(dup2(err[1], 2) == 2);
	/* no fd left for the perf events: perf_event_open fails with EMFILE */
	int next = dup(0);
	CHECK(next >= 0);
	close(next);
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	struct rlimit low = {(rlim_t)next, rl.rlim_max};
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	struct su_group g;
	memset(&g, 0, sizeof g);
	struct su_worker *w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = su_worker_alloc();
		su_worker_start(w[i], &g, expect_fallback, fd);
	}
	du_serve(&g, 2);
	for (int i = 0; i < 2; i++) {
		su_worker_join(w[i]);
		free(w[i]);
	}
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	dup2(saved, 2);
	close(saved);
	char buf[4096];
	ssize_t n = read(err[0], buf, sizeof buf - 1);
	CHECK(n > 0);
	buf[n] = 0;
	const char *first = strstr(buf, "transparent block detection unavailable");
	CHECK(first != NULL);
	CHECK(strstr(first + 1, "transparent block detection unavailable") == NULL); /* once */
	CHECK_EQ(atomic_load(&g.bad_state), 0);
}

/* ---- a page fault on an evicted file mapping ---------------------------------------- */

static _Atomic int pf_a_done;
static _Atomic long pf_b_ran; /* B's iterations while A was still faulting */
static const char *pf_map;
static size_t pf_len;

static void fault_pages(struct su_worker *w)
{
	long sum = 0;
	for (size_t o = 0; o < pf_len; o += 4096)
		sum += pf_map[o]; /* each a major fault: the kernel reads the page, we sleep */
	CHECK_EQ(sum, (long)(pf_len / 4096) * 7);
	atomic_store(&pf_a_done, 1);
	du_settle(w);
	CHECK(du_check_running(w));
}

static void run_while_a_faults(struct su_worker *w)
{
	while (!atomic_load(&pf_a_done)) {
		atomic_fetch_add(&pf_b_ran, 1);
		struct timespec ts = {0, 100 * 1000};
		syscall(SYS_nanosleep, &ts, NULL); /* a raw sleep: lets the server run A again */
		du_settle(w);
	}
}

TEST_T(page_faults_on_an_evicted_mapping, 120)
{
	SKIP_ON_KERNEL(
	    "needs a disk to evict a file page to; the test guest has only RAM file systems");
	if (!du_detection_available())
		return;
	char path[64];
	snprintf(path, sizeof path, "/var/tmp/umcg-test-pf-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 && errno == ENOENT) { /* the test guest: no /var/tmp, no disk */
		printf("    skipped: no /var/tmp to put a file on a disk\n");
		return;
	}
	CHECK(fd >= 0);
	unlink(path);
	pf_len = 4 << 20;
	char *buf = malloc(1 << 20);
	memset(buf, 7, 1 << 20);
	for (size_t i = 0; i < pf_len; i += 1 << 20)
		CHECK_EQ(write(fd, buf, 1 << 20), 1 << 20);
	free(buf);
	CHECK(fsync(fd) == 0);
	/* evict it from the page cache: every first touch now waits for the disk */
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	void *m = mmap(NULL, pf_len, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK(madvise(m, pf_len, MADV_RANDOM) == 0); /* no read-ahead: one fault per page */
	pf_map = m;
	struct su_group g;
	uint64_t raw0 = atomic_load(&umcg__det_counts.taken_raw);
	du_run_two(&g, fault_pages, run_while_a_faults, NULL);
	munmap(m, pf_len);
	close(fd);
	/* the faults were seen: B got the CPU while A waited for the disk */
	CHECK(atomic_load(&umcg__det_counts.taken_raw) > raw0);
	CHECK(atomic_load(&pf_b_ran) > 0);
	printf("    %zu pages; B ran %ld times while A faulted; %llu raw take-overs\n",
	       pf_len / 4096, atomic_load(&pf_b_ran),
	       (unsigned long long)(atomic_load(&umcg__det_counts.taken_raw) - raw0));
}

/* ---- kernel backend: a page fault that sleeps on the mmap lock -------------- */

/*
 * The kernel's block hook sees every sleep of a worker, a page fault's
 * included. The guest has no disk to evict a page to, so the fault is
 * made to sleep on the mmap lock instead: a plain thread holds it for
 * writing again and again (mprotect() of a big populated region), and
 * worker A touches fresh anonymous pages (each first touch is a fault that
 * takes the lock for reading: it sleeps whenever the writer holds it). A
 * fault that slept handed the CPU to worker B, which counts its runs until
 * A is done. Kernel only: the emulation's detection has the test above.
 */
static _Atomic int mw_stop;
static char *mw_big;
static size_t mw_big_len;

static void *mmap_lock_writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&mw_stop)) {
		mprotect(mw_big, mw_big_len, PROT_READ);
		mprotect(mw_big, mw_big_len, PROT_READ | PROT_WRITE);
	}
	return NULL;
}

static void touch_fresh_pages(struct su_worker *w)
{
	for (size_t o = 0; o < pf_len; o += 4096)
		((volatile char *)pf_map)[o] = 1; /* a fault; sleeps if the writer holds the lock */
	atomic_store(&pf_a_done, 1);
	CHECK(du_check_running(w));
}

TEST_T(page_fault_on_a_contended_mmap_lock_hands_back, 120)
{
	if (!th_on_kernel())
		th_skip("kernel backend only (the emulation's page-fault test is the one above)");
	mw_big_len = 32u << 20;
	mw_big = mmap(NULL, mw_big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mw_big != MAP_FAILED);
	memset(mw_big, 1, mw_big_len); /* populated: every mprotect walks its page tables */
	pf_len = 16u << 20;
	void *m = mmap(NULL, pf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	pf_map = m;
	pthread_t wt;
	CHECK_EQ(pthread_create(&wt, NULL, mmap_lock_writer, NULL), 0);
	struct su_group g;
	du_run_two(&g, touch_fresh_pages, run_while_a_faults, NULL);
	atomic_store(&mw_stop, 1);
	CHECK_EQ(pthread_join(wt, NULL), 0);
	printf("    %zu fresh pages; B ran %ld times while A faulted\n", pf_len / 4096,
	       atomic_load(&pf_b_ran));
	/* some fault slept on the lock and was reported: B got the CPU meanwhile */
	CHECK(atomic_load(&pf_b_ran) > 0);
	munmap(m, pf_len);
	munmap(mw_big, mw_big_len);
}

/* ---- a worker-to-worker switch hands the watcher to the new worker ------------------ */

static struct su_worker *w2w_b;
static int w2w_fd[2];
static _Atomic int w2w_b_blocked;

static void w2w_a(struct su_worker *w)
{
	/* take B off the idle-workers list and switch to it: our server sleeps on */
	struct su_worker *b = NULL;
	for (long i = 0; i < 100000000 && !b; i++) {
		struct umcg_task *t = umcg_idle_workers_pop_all(&w->g->iwl);
		if (t) {
			CHECK(umcg_idle_workers_next(t, &w->g->iwl) == NULL);
			b = su_worker_of(t);
		} else {
			sched_yield(); /* not a sleep: our server must not get the CPU back */
		}
	}
	CHECK(b == w2w_b);
	su_switch_to(w, b);
	CHECK(du_check_running(w));
}

static void w2w_b_payload(struct su_worker *w)
{
	char c;
	atomic_store(&w2w_b_blocked, 1);
	CHECK_EQ(syscall(SYS_read, w2w_fd[0], &c, 1), 1); /* seen: our server is told */
	CHECK(du_check_running(w));
}

TEST_T(worker_to_worker_switch_moves_the_watcher, T_DETECT)
{
	if (!du_detection_available())
		return;
	CHECK(pipe(w2w_fd) == 0);
	struct su_group g;
	memset(&g, 0, sizeof g);
	struct su_server s;
	memset(&s, 0, sizeof s);
	struct su_worker *a = su_worker_alloc();
	w2w_b = su_worker_alloc();
	a->id = 1;
	w2w_b->id = 2;
	du_start_in_order(a, &g, w2w_a, NULL);
	su_server_register(&s, &g);
	struct su_worker *first = su_poll_one(&g, 5000);
	CHECK(first == a);
	su_worker_start(w2w_b, &g, w2w_b_payload, NULL);
	/* A switches to B; B blocks in a raw read: only the watcher can wake us */
	uint32_t st = su_run(&s, a);
	CHECK_EQ(st & UMCG_TF_STATE_MASK, UMCG_TASK_IDLE); /* A parked in its switch */
	CHECK_EQ(umcg_state_load(&w2w_b->task), UMCG_TASK_BLOCKED);
	CHECK_EQ(atomic_load(&w2w_b_blocked), 1);
	char c = 'x';
	CHECK_EQ(write(w2w_fd[1], &c, 1), 1);
	struct su_worker *next = su_poll_one(&g, 5000); /* B parked when it woke */
	CHECK(next == w2w_b);
	su_run(&s, w2w_b); /* B finishes */
	su_run(&s, a);	   /* A, IDLE after its switch, finishes */
	su_worker_join(a);
	su_worker_join(w2w_b);
	CHECK_EQ(atomic_load(&g.finished), 2);
	CHECK_EQ(atomic_load(&g.bad_state), 0);
	su_server_unregister(&s);
	free(a);
	free(w2w_b);
}

/* ---- ring overflow: records lost, the state comes from /proc ------------------------ */

static _Atomic int ov_spin_stop, ov_filled;

static void *ov_spinner(void *arg)
{
	cpu_set_t *cpus = arg;
	pthread_setaffinity_np(pthread_self(), sizeof *cpus, cpus);
	while (!atomic_load(&ov_spin_stop))
		sched_yield();
	return NULL;
}

/* A: far more switch records than the ring holds, then a raw blocking read */
static void block_after_overflow(struct du_pair *p)
{
	/* a plain thread on our CPU: each of our yields is a switch out and in */
	cpu_set_t cpus;
	CHECK(pthread_getaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0);
	int cpu = 0;
	while (!CPU_ISSET(cpu, &cpus))
		cpu++;
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus); /* the server's CPU, so its watcher cannot drain the ring */
	CHECK(pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus) == 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, ov_spinner, &cpus) == 0);
	/* until our ring is full (the watcher cannot run: our CPU is never idle) */
	struct umcg_ktask *k = umcg__current();
	for (int i = 0; i < 200000; i++) {
		struct perf_event_mmap_page *mp = k->det_ring;
		if (mp && __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE) -
				  __atomic_load_n(&mp->data_tail, __ATOMIC_ACQUIRE) >
			      (uint64_t)sysconf(_SC_PAGESIZE) - 64) {
			atomic_store(&ov_filled, 1);
			break;
		}
		sched_yield();
	}
	atomic_store(&ov_spin_stop, 1);
	pthread_join(th, NULL);
	du_block_raw_read(p);
}

TEST_T(ring_overflow_does_not_hang, T_DETECT)
{
	SKIP_ON_KERNEL("about the perf ring of the user-space detection");
	struct du_pair p = {.block = block_after_overflow, .release = du_release_raw_write};
	CHECK(pipe(p.fd) == 0);
	/* the server (and so its watcher) on the first CPU we may use, as A will be */
	cpu_set_t cpus;
	CHECK(sched_getaffinity(0, sizeof cpus, &cpus) == 0);
	int cpu = 0;
	while (!CPU_ISSET(cpu, &cpus))
		cpu++;
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	CHECK(sched_setaffinity(0, sizeof cpus, &cpus) == 0);
	uint64_t lost0 = atomic_load(&umcg__det_counts.lost);
	du_run_pair_parked(&p);
	/*
	 * The hang is what this test fails on (du_run_pair's exact checks). Whether
	 * records were really lost is not under its control: "nearly full" is
	 * not "overflowed", and the server's own periodic look at the ring
	 * (every 1-8 ms) can drain it between the fill and the next record; so
	 * the overflow path is reported, not required (seen 1-3 in 20 under TSan).
	 */
	if (!atomic_load(&ov_filled))
		printf("    the ring did not fill in 200000 yields: overflow path not exercised\n");
	else if (atomic_load(&umcg__det_counts.lost) == lost0)
		printf("    the ring filled but was drained before it overflowed: path not "
		       "exercised\n");
}
