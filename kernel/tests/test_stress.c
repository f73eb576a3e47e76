// SPDX-License-Identifier: GPL-2.0
/*
 * test_stress.c - many transitions: yield round trips (T3/T4), blocking
 * round trips through the block hook, the wake hook and the idle-servers
 * stack (T6/T7/T8), and two independent groups at once on the 2 vCPUs.
 * Counts are scaled for TCG; every iteration checks the states.
 * transitions: a counted number of state transitions, yields and blocks
 * mixed (10^6 by default; 10^7 in `make kernel-stress`).
 */
#include "kts.h"

#define YIELDS 100000
#define BLOCKS 10000

static void fn_yields(struct worker *w)
{
	for (int i = 0; i < YIELDS; i++) {
		atomic_store(&w->phase, i + 1);
		worker_yield(w);
	}
}

static void yield_stress(void)
{
	static struct umcg_task s;
	static struct group g;
	static struct worker w;
	server_register(&s, &g);
	worker_start(&w, &g, &s, fn_yields);
	CHECK(take_one(&g, 5000) == &w);
	uint64_t t0 = kt_now();
	for (int i = 1; i <= YIELDS; i++) {
		uint32_t st = run(&s, &w);
		CHECK((st & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE && atomic_load(&w.phase) == i);
	}
	uint64_t dt = kt_now() - t0;
	run(&s, &w);
	CHECK(atomic_load(&w.done));
	pthread_join(w.th, NULL);
	printf("  %d server->worker->server round trips, %.0f ns each (TCG)\n", YIELDS,
	       (double)dt / YIELDS);
}

/* ---- blocking round trips -------------------------------------------- */

struct bgroup {
	struct umcg_task s;
	struct group g;
	struct worker w;
	int to_helper[2], from_helper[2];
	pthread_t helper;
	int n;
	_Atomic long blocked, queued;
};

static void *echo_helper(void *arg)
{
	struct bgroup *b = arg;
	char c;
	while (read(b->to_helper[0], &c, 1) == 1 && c != 'q')
		CHECK(write(b->from_helper[1], &c, 1) == 1);
	return NULL;
}

static void fn_pingpong(struct worker *w)
{
	struct bgroup *b = (struct bgroup *)((char *)w - offsetof(struct bgroup, w));
	for (int i = 0; i < b->n; i++) {
		char c = (char)('a' + i % 16), r; /* never 'q' */
		CHECK(syscall(SYS_write, b->to_helper[1], &c, 1) == 1);
		CHECK(syscall(SYS_read, b->from_helper[0], &r, 1) == 1); /* blocks */
		CHECK(r == c);
		atomic_store(&w->phase, i + 1);
	}
	char q = 'q';
	CHECK(write(b->to_helper[1], &q, 1) == 1);
}

/* The server: run the worker; when it blocks, sleep on the idle-servers stack. */
static void *block_server(void *arg)
{
	struct bgroup *b = arg;
	CHECK(pipe(b->to_helper) == 0 && pipe(b->from_helper) == 0);
	CHECK(pthread_create(&b->helper, NULL, echo_helper, b) == 0);
	server_register(&b->s, &b->g);
	worker_start(&b->w, &b->g, &b->s, fn_pingpong);
	struct worker *w = take_one(&b->g, 5000), *x[4];
	for (;;) {
		uint32_t st = run(&b->s, w);
		if (atomic_load(&w->done))
			break;
		CHECK(!atomic_load(&w->yielded));
		/* the worker blocked (the read), or already came back queued */
		CHECK(st == UMCG_TASK_BLOCKED || st == UMCG_TASK_IDLE);
		atomic_fetch_add(&b->blocked, 1);
		if (!__atomic_load_n(&b->g.idle_workers, __ATOMIC_ACQUIRE))
			server_idle_wait(&b->s, &b->g);
		CHECK(drain(&b->g, x, 4) == 1 && x[0] == w);
		atomic_fetch_add(&b->queued, 1);
	}
	pthread_join(w->th, NULL);
	pthread_join(b->helper, NULL);
	return NULL;
}

static struct bgroup b[2];

static void dump(void)
{
	for (int i = 0; i < 2; i++)
		printf("  group %d: phase %d blocked %ld queued %ld server %#x worker %#x "
		       "idle_workers %#llx idle_servers %#llx node %#llx\n",
		       i, atomic_load(&b[i].w.phase), atomic_load(&b[i].blocked),
		       atomic_load(&b[i].queued), b[i].s.state, b[i].w.t.state,
		       (unsigned long long)b[i].g.idle_workers,
		       (unsigned long long)b[i].g.idle_servers,
		       (unsigned long long)b[i].s.idle_servers_ptr);
}

static void block_stress_n(int groups, int n)
{
	kt_on_timeout = dump;
	pthread_t th[2];
	uint64_t t0 = kt_now();
	for (int i = 0; i < groups; i++) {
		memset(&b[i], 0, sizeof b[i]);
		b[i].n = n;
		CHECK(pthread_create(&th[i], NULL, block_server, &b[i]) == 0);
	}
	for (int i = 0; i < groups; i++) {
		pthread_join(th[i], NULL);
		CHECK(atomic_load(&b[i].w.phase) == n);
		/* reads block unless the helper answered first (often, on 2 vCPUs) */
		CHECK(atomic_load(&b[i].blocked) > 0);
		CHECK(atomic_load(&b[i].queued) == atomic_load(&b[i].blocked));
	}
	uint64_t dt = kt_now() - t0;
	printf("  %d group(s) x %d blocking round trips (%ld, %ld blocked): %.0f us each (TCG)\n",
	       groups, n, atomic_load(&b[0].blocked), atomic_load(&b[1].blocked),
	       (double)dt / n / 1000);
}

static void block_stress(void)
{
	block_stress_n(1, BLOCKS);
}

static void two_groups(void)
{
	block_stress_n(2, BLOCKS / 2);
}

/* ---- a counted number of transitions --------------------------------- */

/*
 * Two groups at once (a server, a worker, a pipe), each until it has made
 * its half of KT_TRANSITIONS state transitions (umcg.transitions=N on the
 * kernel command line; default 10^6). The worker makes 15 yield round
 * trips, then one read() of an empty pipe; the server writes the byte only
 * after it saw the worker BLOCKED, so every read blocks: the count is
 * exact, not a lower bound. Each step's transitions, each checked by the
 * server right after it:
 *   yield round trip (4): server RUNNING->IDLE and worker IDLE->RUNNING
 *     (run), worker RUNNING->IDLE (T3) and server IDLE->RUNNING (its CAS);
 *   block round trip (5, +2): the run's 2, worker RUNNING->BLOCKED and
 *     server IDLE->RUNNING (block hook, T6), worker BLOCKED->IDLE (wake
 *     hook, T7); +2 when the server waits on the idle-servers stack for it
 *     (RUNNING->IDLE, then IDLE->RUNNING by the kernel's pop or its own
 *     re-check).
 * The worker counts its yields and reads; the server its runs: both must
 * agree (runs = yields + reads + the final hand-back).
 */
struct tgroup {
	struct umcg_task s;
	struct group g;
	struct worker w;
	int fd[2];
	long want, trans, runs, yields, reads, idle_waits;
	_Atomic long go_on; /* the server's verdict for the worker's next step */
};

static void fn_counted(struct worker *w)
{
	struct tgroup *t = (struct tgroup *)((char *)w - offsetof(struct tgroup, w));
	for (long i = 0; atomic_load(&t->go_on); i++) {
		if (i % 16 == 15) {
			char c;
			CHECK(syscall(SYS_read, t->fd[0], &c, 1) == 1); /* always blocks */
			t->reads++;
		} else {
			t->yields++;
			worker_yield(w);
		}
	}
}

static void *counted_server(void *arg)
{
	struct tgroup *t = arg;
	CHECK(pipe(t->fd) == 0);
	server_register(&t->s, &t->g);
	atomic_store(&t->go_on, 1);
	worker_start(&t->w, &t->g, &t->s, fn_counted);
	struct worker *w = take_one(&t->g, 5000), *x[4];
	for (;;) {
		if (t->trans >= t->want)
			atomic_store(&t->go_on, 0); /* the worker reads it before its next step */
		uint32_t st = run(&t->s, w);
		t->runs++;
		if (atomic_load(&w->done))
			break;
		t->trans += 2;
		if (atomic_load(&w->yielded)) {
			/* IDLE|LOCKED until the worker's own wait: we may wake first */
			CHECK((st & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
			t->trans += 2;
			continue;
		}
		CHECK(st == UMCG_TASK_BLOCKED); /* nothing to read yet: it cannot be back */
		t->trans += 2;
		CHECK(kt_load(&t->w.t.state) == UMCG_TASK_BLOCKED);
		CHECK(write(t->fd[1], "x", 1) == 1);
		if (!__atomic_load_n(&t->g.idle_workers, __ATOMIC_ACQUIRE)) {
			server_idle_wait(&t->s, &t->g);
			t->idle_waits++;
			t->trans += 2;
		}
		CHECK(drain(&t->g, x, 4) == 1 && x[0] == w);
		CHECK((kt_load(&w->t.state) & UMCG_TF_STATE_MASK) == UMCG_TASK_IDLE);
		t->trans += 1;
	}
	pthread_join(w->th, NULL);
	CHECK(t->runs == t->yields + t->reads + 1);
	close(t->fd[0]);
	close(t->fd[1]);
	return NULL;
}

static struct tgroup tg[2];

static void transitions(void)
{
	const char *e = getenv("KT_TRANSITIONS");
	long want = e ? atol(e) : 1000000;
	CHECK(want >= 100);
	pthread_t th[2];
	uint64_t t0 = kt_now();
	for (int i = 0; i < 2; i++) {
		memset(&tg[i], 0, sizeof tg[i]);
		tg[i].want = want / 2;
		CHECK(pthread_create(&th[i], NULL, counted_server, &tg[i]) == 0);
	}
	long total = 0;
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK(tg[i].trans >= tg[i].want && tg[i].trans < tg[i].want + 16);
		CHECK(tg[i].reads > 0 && tg[i].yields > 0);
		total += tg[i].trans;
	}
	double s = (double)(kt_now() - t0) / 1e9;
	printf(
	    "  %ld transitions (want %ld) in 2 groups: %ld + %ld yields, %ld + %ld blocking reads "
	    "(%ld + %ld idle waits), %.1f s, %.0f ns each (TCG)\n",
	    total, want, tg[0].yields, tg[1].yields, tg[0].reads, tg[1].reads, tg[0].idle_waits,
	    tg[1].idle_waits, s, s * 1e9 / (double)total);
	CHECK(total >= want);
}

KT_MAIN(KT_CASE_T(yield_stress, 120), KT_CASE_T(block_stress, 120), KT_CASE_T(two_groups, 120),
	KT_CASE_T(transitions, 600))
