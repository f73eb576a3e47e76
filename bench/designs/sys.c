/* SPDX-License-Identifier: MIT */
/*
 * bench_designs: part 2, system calls per wake-up, counted exactly.
 * (bench/designs/main.c explains the parts and the output.)
 */
#include "designs.h"

/* ================================================================================
 * Part 2: system calls per wake-up
 * ================================================================================ */

/* (a) nobody sleeps: one server spins on the idle-workers list */
#define BUSY_TOKENS 16
static struct busy_ctx {
	struct umcg_task srv;
	struct token tok[BUSY_TOKENS];
	struct umcg_idle_group g;
	_Atomic int stop;
	_Atomic long consumed;
} B;

static void *busy_server(void *arg)
{
	(void)arg;
	server_register(&B.srv, NULL);
	for (;;) {
		struct umcg_task *w = umcg_idle_workers_pop_all(&B.g.idle_workers);
		if (!w) {
			if (atomic_load(&B.stop))
				break;
			sched_yield();
			continue;
		}
		while (w) {
			struct umcg_task *next = umcg_idle_workers_next(w, &B.g.idle_workers);
			struct token *tk = (struct token *)(void *)w;
			if (atomic_exchange(&tk->queued, 0) != 1)
				bench_die("busy: token consumed twice");
			atomic_fetch_add(&B.consumed, 1);
			w = next;
		}
	}
	unregister();
	return NULL;
}

struct busy_result {
	struct sc wk;
	uint64_t wk_max;
	double ns_per_append;
	long appends;
};

/*
 * push_only: append without the wake-up check (the reference: what the
 * append alone costs). ns_per_append: median over 5 batches.
 */
static void busy_run(int design, bool push_only, long appends, struct busy_result *r)
{
	memset(r, 0, sizeof *r);
	memset(&B, 0, sizeof B);
	if (umcg_idle_group_init(&B.g, (enum umcg_idle_design)design))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog(120);
	pthread_t s = start_thread(busy_server, NULL);
	uint64_t ns = 0, batch[5];
	long per = appends / 5 > 0 ? appends / 5 : 1;
	appends = per * 5;
	for (long m = 0; m < appends; m++) {
		struct token *tk = &B.tok[m % BUSY_TOKENS];
		while (atomic_load(&tk->queued))
			sched_yield();
		atomic_store(&tk->queued, 1);
		umcg_idle_group_worker_init(&B.g, &tk->t);
		struct sc a, b;
		sc_now(&a);
		uint64_t t = bench_now();
		umcg_idle_workers_push(&B.g.idle_workers, &tk->t);
		if (!push_only)
			umcg__wake_idle_server(&tk->t);
		ns += bench_now() - t;
		if ((m + 1) % per == 0) {
			batch[m / per] = ns;
			ns = 0;
		}
		sc_now(&b);
		sc_acc(&r->wk, &a, &b);
		uint64_t tot = sc_total(&b) - sc_total(&a);
		r->wk_max = tot > r->wk_max ? tot : r->wk_max;
	}
	while (atomic_load(&B.consumed) != appends)
		nap_us(100);
	atomic_store(&B.stop, 1);
	join_thread(s);
	bench_watchdog(0);
	umcg_idle_group_destroy(&B.g);
	r->appends = appends;
	r->ns_per_append = (double)bench_median(batch, 5) / (double)per;
}

/* (c), (d): two sleeping servers, one or two appends per round */
#define MULTI_SERVERS 2
static struct multi_ctx {
	struct msrv {
		struct umcg_task t;
		_Atomic uint32_t tid;
		_Atomic int in_wait;
		_Atomic long returns;
		_Atomic uint64_t sc[SC_NR];
		_Atomic int exited;
	} s[MULTI_SERVERS];
	struct token tok[2];
	struct umcg_idle_group g;
	_Atomic long consumed;
	_Atomic int stop;
	int fds[MULTI_SERVERS];
	bool epx; /* eventfd design, servers wait in epoll_wait with EPOLLEXCLUSIVE */
} M;

/*
 * The eventfd design's idle wait with one epoll instance per server, the
 * shared eventfd registered EPOLLEXCLUSIVE (the public umcg_idle_fd_prepare /
 * umcg_idle_fd_finish around the wait, as umcg_idle_group_wait does around
 * its poll()): a write wakes one of the waiting servers, not all.
 */
static void epx_wait(int ep)
{
	if (!umcg_idle_fd_prepare(&M.g.idle_fd, &M.g.idle_workers))
		return;
	struct epoll_event ev;
	tl_epoll++;
	while (epoll_wait(ep, &ev, 1, -1) < 0) {
		if (errno != EINTR)
			bench_die("epoll_wait: %s", strerror(errno));
		tl_epoll++;
	}
	umcg_idle_fd_finish(&M.g.idle_fd);
}

static void *multi_server(void *arg)
{
	struct msrv *me = &M.s[(long)arg];
	int ep = -1;
	if (M.epx) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, M.g.idle_fd.fd, &ev))
			bench_die("epoll (EPOLLEXCLUSIVE): %s", strerror(errno));
	}
	server_register(&me->t, &me->tid);
	for (;;) {
		struct sc a, b;
		sc_now(&a);
		atomic_store(&me->in_wait, 1);
		if (M.epx)
			epx_wait(ep);
		else if (umcg_idle_group_wait(&M.g, &me->t, 0))
			bench_die("umcg_idle_group_wait: %s", strerror(errno));
		atomic_store(&me->in_wait, 0);
		sc_now(&b);
		for (int k = 0; k < SC_NR; k++)
			atomic_fetch_add_explicit(&me->sc[k], b.v[k] - a.v[k],
						  memory_order_relaxed);
		atomic_fetch_add(&me->returns, 1);
		for (struct umcg_task *w = umcg_idle_workers_pop_all(&M.g.idle_workers); w;) {
			struct umcg_task *next = umcg_idle_workers_next(w, &M.g.idle_workers);
			if (atomic_exchange(&((struct token *)(void *)w)->queued, 0) != 1)
				bench_die("multi: token consumed twice");
			atomic_fetch_add(&M.consumed, 1);
			w = next;
		}
		if (atomic_load(&M.stop))
			break;
	}
	unregister();
	if (ep >= 0)
		close(ep);
	atomic_store(&me->exited, 1);
	return NULL;
}

struct msnap {
	long returns, nv;
	struct sc sc;
};

static void multi_snap(struct msnap *m)
{
	memset(m, 0, sizeof *m);
	for (int i = 0; i < MULTI_SERVERS; i++) {
		m->returns += atomic_load(&M.s[i].returns);
		m->nv += proc_nvcsw(atomic_load(&M.s[i].tid)); /* exact, at quiescence */
		for (int k = 0; k < SC_NR; k++)
			m->sc.v[k] += atomic_load_explicit(&M.s[i].sc[k], memory_order_relaxed);
	}
}

static bool multi_all_asleep(void)
{
	for (int i = 0; i < MULTI_SERVERS; i++)
		if (!atomic_load(&M.s[i].in_wait) || proc_state(M.fds[i]) != 'S')
			return false;
	return true;
}

/* Every server sleeps in its idle wait, and nothing moved for 2 ms. */
static void multi_quiesce(void)
{
	for (;;) {
		if (!multi_all_asleep()) {
			nap_us(50);
			continue;
		}
		long r0 = 0, r1 = 0;
		for (int i = 0; i < MULTI_SERVERS; i++)
			r0 += atomic_load(&M.s[i].returns);
		nap_us(2000);
		for (int i = 0; i < MULTI_SERVERS; i++)
			r1 += atomic_load(&M.s[i].returns);
		if (r0 == r1 && multi_all_asleep())
			return;
	}
}

struct multi_result {
	struct sc wk, sv;
	uint64_t wk_min, wk_max;
	long woken, woken_min, woken_max, nv;
	long rounds;
};

static void multi_run(int design, bool epx, int appends, long rounds, struct multi_result *r)
{
	memset(r, 0, sizeof *r);
	memset(&M, 0, sizeof M);
	M.epx = epx;
	if (umcg_idle_group_init(&M.g, (enum umcg_idle_design)design))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog(120);
	pthread_t th[MULTI_SERVERS];
	for (long i = 0; i < MULTI_SERVERS; i++)
		th[i] = start_thread(multi_server, (void *)i);
	for (int i = 0; i < MULTI_SERVERS; i++) {
		while (!atomic_load(&M.s[i].tid))
			nap_us(100);
		M.fds[i] = proc_stat_open(atomic_load(&M.s[i].tid));
	}
	r->wk_min = UINT64_MAX;
	r->woken_min = LONG_MAX;
	long expect = 0;
	for (long round = 0; round < rounds; round++) {
		struct msnap s0, s1;
		struct sc a, b;
		multi_quiesce();
		multi_snap(&s0);
		sc_now(&a);
		for (int k = 0; k < appends; k++) {
			struct token *tk = &M.tok[k];
			umcg_idle_group_worker_init(&M.g, &tk->t);
			atomic_store(&tk->queued, 1);
			umcg_idle_workers_push(&M.g.idle_workers, &tk->t);
			umcg__wake_idle_server(&tk->t);
		}
		sc_now(&b);
		expect += appends;
		while (atomic_load(&M.consumed) != expect)
			nap_us(20);
		multi_quiesce();
		multi_snap(&s1);
		sc_acc(&r->wk, &a, &b);
		sc_acc(&r->sv, &s0.sc, &s1.sc);
		uint64_t wt = sc_total(&b) - sc_total(&a);
		long woken = s1.returns - s0.returns;
		r->wk_min = wt < r->wk_min ? wt : r->wk_min;
		r->wk_max = wt > r->wk_max ? wt : r->wk_max;
		r->woken += woken;
		r->woken_min = woken < r->woken_min ? woken : r->woken_min;
		r->woken_max = woken > r->woken_max ? woken : r->woken_max;
		r->nv += s1.nv - s0.nv;
	}
	r->rounds = rounds;
	/* shutdown: wake until both servers are gone */
	atomic_store(&M.stop, 1);
	for (int i = 0; i < MULTI_SERVERS; i++) {
		while (!atomic_load(&M.s[i].exited)) {
			umcg_idle_group_wake_one(&M.g);
			nap_us(200);
		}
		join_thread(th[i]);
		close(M.fds[i]);
	}
	bench_watchdog(0);
	umcg_idle_group_destroy(&M.g);
}

void part_sys(void)
{
	char la[64], b1[160], b2[160];
	loadavg(la, sizeof la);
	long appends = opt.rounds * 40;
	printf("\n== 2. system calls per wake-up (exact counts; unpinned). load %s\n", la);
	printf("   (a) busy: nobody sleeps, a server spins on the list; %ld appends\n", appends);
	printf("%-8s %10s %8s %12s\n", "design", "sc/append", "max", "ns/append");
	tsv_row("#sys_busy\tdesign\tappends\twaker_sc_per_append\twaker_sc_max\tns_per_append");
	for (int d = -1; d < NDESIGN; d++) {
		if (d >= 0 && !design_on(d))
			continue;
		struct busy_result r;
		busy_run(d < 0 ? UMCG_IDLE_STACK : d, d < 0, appends, &r);
		const char *name = d < 0 ? "(push)" : dname(d);
		double sc = (double)sc_total(&r.wk) / (double)r.appends;
		printf("%-8s %10.4f %8llu %12.1f\n", name, sc, (unsigned long long)r.wk_max,
		       r.ns_per_append);
		tsv_row("sys_busy\t%s\t%ld\t%.4f\t%llu\t%.1f", name, r.appends, sc,
			(unsigned long long)r.wk_max, r.ns_per_append);
		if (r.wk_max != 0)
			fail("sys busy %s: waker made a system call with no server asleep", name);
	}
	printf("   ns/append: push + wake-up check, median of 5 batches, clock reads included; "
	       "(push) = the append alone\n");

	printf("   (b) 1 sleeper: %ld idle/wake cycles of part 1's loop, unpinned. Waker: calls "
	       "per wake-up; server: calls\n"
	       "       per cycle (inside umcg_idle_group_wait), nvcsw = its voluntary context "
	       "switches (real sleeps) per cycle\n",
	       opt.rounds);
	printf("%-8s %-14s %-44s %5s\n", "design", "waker min/avg/max", "server per cycle",
	       "nvcsw");
	tsv_row("#sys_one\tdesign\tcycles\twaker_min\twaker_mean\twaker_max\tserver_mean\tserver_"
		"min\tserver_max\tnvcsw_mean\tsrv_futex_wait\tsrv_futex_wake\tsrv_poll\tsrv_"
		"read\tsrv_yield\tspurious");
	static const int order[] = {D_FUTEX, UMCG_IDLE_STACK, UMCG_IDLE_EVENTFD,
				    UMCG_IDLE_TID_WORD};
	for (int k = 0; k < 4; k++) {
		int d = order[k];
		if (d >= 0 && !design_on(d))
			continue;
		struct lat_result r;
		lat_run(d, BENCH_PIN_NONE, opt.rounds, 20, &r);
		double n = (double)r.st.n;
		char wk[32];
		snprintf(wk, sizeof wk, "%llu/%.2f/%llu", (unsigned long long)r.wk_min,
			 (double)sc_total(&r.wk) / n, (unsigned long long)r.wk_max);
		if (d < 0)
			snprintf(b1, sizeof b1, "futex_wait (FUTEX_WAIT in sem_wait, not counted)");
		else
			sc_str(&r.sv, n, b1, sizeof b1);
		printf("%-8s %-14s %-44s %5.2f%s\n", dname(d), wk, b1, (double)r.nv_sum / n,
		       r.spurious ? " (spurious returns!)" : "");
		tsv_row("sys_one\t%s\t%zu\t%llu\t%.3f\t%llu\t%.3f\t%llu\t%llu\t%.3f\t%.3f\t%.3f\t%."
			"3f\t%.3f\t%.3f\t%ld",
			dname(d), r.st.n, (unsigned long long)r.wk_min, (double)sc_total(&r.wk) / n,
			(unsigned long long)r.wk_max, (double)sc_total(&r.sv) / n,
			(unsigned long long)r.sv_min, (unsigned long long)r.sv_max,
			(double)r.nv_sum / n, (double)r.sv.v[SC_FWAIT] / n,
			(double)r.sv.v[SC_FWAKE] / n, (double)r.sv.v[SC_POLL] / n,
			(double)r.sv.v[SC_READ] / n, (double)r.sv.v[SC_YIELD] / n, r.spurious);
		if (d >= 0 && (r.wk_min != 1 || r.wk_max != 1))
			fail("sys one %s: waker made %llu..%llu calls, expected exactly 1",
			     dname(d), (unsigned long long)r.wk_min, (unsigned long long)r.wk_max);
	}

	long mrounds = opt.rounds / 2 > 20 ? opt.rounds / 2 : 20;
	printf("   (c)/(d) 2 servers asleep, 1 append / 2 appends back to back per round, %ld "
	       "rounds; per round, until\n"
	       "       both sleep again: waker's calls, servers woken (wait returns), servers' "
	       "calls and voluntary switches\n",
	       mrounds);
	printf("%-8s %-4s %-14s %-12s %-52s %5s\n", "design", "app", "waker min/avg/max",
	       "woken m/a/M", "servers per round", "nvcsw");
	tsv_row("#sys_two\tdesign\tappends\trounds\twaker_min\twaker_mean\twaker_max\twoken_"
		"min\twoken_mean\twoken_max\tserver_sc_mean\tnvcsw_mean");
	/* the eventfd design twice: umcg_idle_group_wait's poll(), and epoll EPOLLEXCLUSIVE */
	static const int vd[4] = {UMCG_IDLE_STACK, UMCG_IDLE_EVENTFD, UMCG_IDLE_EVENTFD,
				  UMCG_IDLE_TID_WORD};
	static const char *const vname[4] = {"stack", "eventfd", "efd+epx", "tid"};
	for (int appn = 1; appn <= 2; appn++)
		for (int v = 0; v < 4; v++) {
			int d = vd[v];
			if (!design_on(d))
				continue;
			struct multi_result r;
			multi_run(d, v == 2, appn, mrounds, &r);
			double n = (double)r.rounds;
			char wk[32], wo[32];
			snprintf(wk, sizeof wk, "%llu/%.2f/%llu", (unsigned long long)r.wk_min,
				 (double)sc_total(&r.wk) / n, (unsigned long long)r.wk_max);
			snprintf(wo, sizeof wo, "%ld/%.2f/%ld", r.woken_min, (double)r.woken / n,
				 r.woken_max);
			printf("%-8s %-4d %-14s %-12s %-52s %5.2f\n", vname[v], appn, wk, wo,
			       sc_str(&r.sv, n, b2, sizeof b2), (double)r.nv / n);
			tsv_row(
			    "sys_two\t%s\t%d\t%ld\t%llu\t%.3f\t%llu\t%ld\t%.3f\t%ld\t%.3f\t%.3f",
			    vname[v], appn, r.rounds, (unsigned long long)r.wk_min,
			    (double)sc_total(&r.wk) / n, (unsigned long long)r.wk_max, r.woken_min,
			    (double)r.woken / n, r.woken_max, (double)sc_total(&r.sv) / n,
			    (double)r.nv / n);
		}
}
