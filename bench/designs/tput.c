/* SPDX-License-Identifier: MIT */
/*
 * bench_designs: part 4, throughput of a wake-heavy workload under a FIFO scheduler.
 * (bench/designs/main.c explains the parts and the output.)
 */
#include "designs.h"

/* ================================================================================
 * Part 4: throughput of a wake-heavy workload under a FIFO scheduler
 * ================================================================================ */

struct tp_worker;

struct tp_server {
	struct umcg_task task;
	uint32_t tid;
	int idx, cpu;
	_Atomic(struct tp_worker *) finished; /* set by a worker that finishes (T10) */
	_Atomic int exited;
	pthread_t th;
	/* the server thread's own counters, read after join */
	long runs, taken, finishes, idle_calls, idle_empty, kicks, kicks_ok;
	struct sc idle_sc, kick_sc, all_sc;
} __attribute__((aligned(64)));

struct tp_worker {
	struct umcg_task task;
	uint32_t tid;
	int idx;
	struct tp_worker *rq_next;
	struct tp_server *server; /* the server running it */
	pthread_t th;
	long ops, parks, polls, errors;
	struct sc wp_sc, all_sc; /* wake point only / everything after "go" */
} __attribute__((aligned(64)));

static struct tp_ctx {
	struct umcg_idle_group g;
	struct tp_server *srv;
	struct tp_worker *wrk;
	int nsrv, nwrk;
	long ops;
	uint64_t compute_ns;
	unsigned sleep_us;
	pthread_mutex_t rq_lock;
	struct tp_worker *rq_head, *rq_tail;
	long rq_len;
	_Atomic int registered, go, finished;
	_Atomic uint64_t t_end;
} T;

static void compute(uint64_t ns)
{
	static _Thread_local volatile uint64_t sink;
	uint64_t end = bench_now() + ns;
	do {
		for (int i = 0; i < 32; i++)
			sink = sink * 6364136223846793005ull + 1442695040888963407ull;
	} while (bench_now() < end);
}

static void tp_drain(struct tp_server *s)
{
	struct umcg_task *t = umcg_idle_workers_pop_all(&T.g.idle_workers);
	if (!t)
		return;
	struct tp_worker *first = NULL, *last = NULL;
	long n = 0;
	while (t) { /* the list is LIFO: prepend to reverse it (FIFO) */
		struct umcg_task *next = umcg_idle_workers_next(t, &T.g.idle_workers);
		struct tp_worker *w = (struct tp_worker *)(void *)t;
		if ((umcg_state_load(t) & UMCG_TF_STATE_MASK) != UMCG_TASK_IDLE)
			bench_die("tput: queued worker %d not IDLE (%#x)", w->idx,
				  umcg_state_load(t));
		w->rq_next = first;
		first = w;
		if (!last)
			last = w;
		n++;
		t = next;
	}
	s->taken += n;
	pthread_mutex_lock(&T.rq_lock);
	if (T.rq_tail)
		T.rq_tail->rq_next = first;
	else
		T.rq_head = first;
	T.rq_tail = last;
	T.rq_len += n;
	pthread_mutex_unlock(&T.rq_lock);
}

static struct tp_worker *tp_pop(long *left)
{
	pthread_mutex_lock(&T.rq_lock);
	struct tp_worker *w = T.rq_head;
	if (w) {
		T.rq_head = w->rq_next;
		if (!T.rq_head)
			T.rq_tail = NULL;
		w->rq_next = NULL;
		T.rq_len--;
	}
	*left = T.rq_len;
	pthread_mutex_unlock(&T.rq_lock);
	return w;
}

static void tp_run_worker(struct tp_server *s, struct tp_worker *w)
{
	struct umcg_task *me = &s->task;
	w->server = s; /* published by the worker's state CAS (release) */
	__atomic_store_n(&w->task.server_tid, s->tid, __ATOMIC_RELAXED);
	umcg_state_store(me, UMCG_TASK_IDLE); /* server IDLE first ... */
	uint32_t exp = UMCG_TASK_IDLE;	      /* ... then the worker RUNNING */
	if (!umcg_state_cas(&w->task, &exp, UMCG_TASK_RUNNING))
		bench_die("tput: worker %d to run in state %#x", w->idx, exp);
	__atomic_store_n(&me->next_tid, w->tid, __ATOMIC_RELAXED);
	s->runs++;
	while (umcg_wait(0, 0)) {
		if (errno == ESRCH) /* it finished and unregistered: we are RUNNING */
			__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED);
		else if (errno != EINTR)
			bench_die("tput: server umcg_wait: %s", strerror(errno));
	}
	__atomic_store_n(&me->next_tid, 0, __ATOMIC_RELAXED);
	struct tp_worker *fw = atomic_exchange_explicit(&s->finished, NULL, memory_order_acquire);
	if (fw) {
		if (fw != w)
			bench_die("tput: worker %d finished while %d ran", fw->idx, w->idx);
		s->finishes++;
	}
}

static void *tp_server_main(void *arg)
{
	struct tp_server *s = arg;
	if (s->cpu >= 0)
		bench_pin_self(s->cpu); /* before registering: the "allowed" set */
	server_register(&s->task, NULL);
	s->tid = umcg_gettid();
	struct sc all0, all1;
	sc_now(&all0);
	for (;;) {
		tp_drain(s);
		long left;
		struct tp_worker *w = tp_pop(&left);
		if (w) {
			if (left) {
				struct sc a, b;
				sc_now(&a);
				s->kicks_ok += umcg_idle_group_wake_one(&T.g);
				sc_now(&b);
				sc_acc(&s->kick_sc, &a, &b);
				s->kicks++;
			}
			tp_run_worker(s, w);
			continue;
		}
		if (atomic_load(&T.finished) == T.nwrk)
			break;
		struct sc a, b;
		sc_now(&a);
		s->idle_calls++;
		if (umcg_idle_group_wait(&T.g, &s->task, 0))
			bench_die("tput: umcg_idle_group_wait: %s", strerror(errno));
		sc_now(&b);
		sc_acc(&s->idle_sc, &a, &b);
		if (umcg_idle_workers_empty(&T.g.idle_workers))
			s->idle_empty++;
	}
	sc_now(&all1);
	sc_acc(&s->all_sc, &all0, &all1);
	unregister();
	atomic_store(&s->exited, 1);
	return NULL;
}

/* One blocking call, the body of umcg_usleep() with the wake point counted apart. */
static void tp_block(struct tp_worker *w, unsigned u, bool count)
{
	if (umcg_block_point() != 1) {
		w->errors++;
		fail("tput: worker %d: block point did not block", w->idx);
	}
	usleep(u);
	struct sc a, b;
	sc_now(&a);
	if (umcg_wake_point() != 1) {
		w->errors++;
		fail("tput: worker %d: wake point did not park", w->idx);
	}
	sc_now(&b);
	w->parks++;
	if (count)
		sc_acc(&w->wp_sc, &a, &b);
	uint32_t st = umcg_state_load(&w->task);
	if ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING ||
	    !__atomic_load_n(&w->task.server_tid, __ATOMIC_RELAXED)) {
		w->errors++;
		fail("tput: worker %d runs in state %#x", w->idx, st);
	}
}

static void *tp_worker_main(void *arg)
{
	struct tp_worker *w = arg;
	struct umcg_task *me = &w->task;
	memset(me, 0, sizeof *me);
	me->state = UMCG_TASK_IDLE;
	me->api_version = UMCG_API_VERSION;
	umcg_idle_group_worker_init(&T.g, me);
	w->tid = umcg_gettid(); /* published by the registration's push */
	if (umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, me))
		bench_die("tput: umcg_ctl(REGISTER|WORKER): %s", strerror(errno));
	atomic_fetch_add(&T.registered, 1);
	while (!atomic_load(&T.go)) {
		tp_block(w, 200, false);
		w->polls++;
	}
	struct sc a, b;
	sc_now(&a);
	for (long i = 0; i < T.ops; i++) {
		compute(T.compute_ns);
		tp_block(w, T.sleep_us, true);
		w->ops++;
	}
	sc_now(&b);
	sc_acc(&w->all_sc, &a, &b);
	/* T10: locked, tell the server, make it RUNNING, wake it, unregister */
	struct tp_server *s = w->server;
	umcg_state_store(me, UMCG_TASK_RUNNING | UMCG_TF_LOCKED);
	atomic_store_explicit(&s->finished, w, memory_order_relaxed);
	if (atomic_fetch_add(&T.finished, 1) + 1 == T.nwrk)
		atomic_store(&T.t_end, bench_now());
	uint32_t exp = UMCG_TASK_IDLE;
	if (!umcg_state_cas(&s->task, &exp, UMCG_TASK_RUNNING)) /* release: finished */
		bench_die("tput: worker %d: server not IDLE (%#x)", w->idx, exp);
	__atomic_store_n(&me->next_tid, __atomic_load_n(&me->server_tid, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	if (umcg_wait(UMCG_WAIT_WAKE_ONLY, 0))
		bench_die("tput: worker wakes server: %s", strerror(errno));
	unregister();
	return NULL;
}

static void *tp_thread_main(void *arg)
{
	struct tp_worker *w = arg;
	atomic_fetch_add(&T.registered, 1);
	while (!atomic_load(&T.go))
		usleep(200);
	for (long i = 0; i < T.ops; i++) {
		compute(T.compute_ns);
		usleep(T.sleep_us);
		w->ops++;
	}
	if (atomic_fetch_add(&T.finished, 1) + 1 == T.nwrk)
		atomic_store(&T.t_end, bench_now());
	return NULL;
}

/* per-operation counts of a run */
enum {
	TP_IWAIT,
	TP_ISLEEP,
	TP_IEMPTY,
	TP_WPWAKE,
	TP_KICK,
	TP_KICKSC,
	TP_CHAIN,
	TP_WRKSC,
	TP_SRVSC,
	TP_SETAFF,
	TP_NR
};

struct tp_result {
	double ops_s;
	double per_op[TP_NR];
};

/* One run: design d (D_THREAD: plain threads) on nsrv servers. */
static void tp_run(const struct workload *wl, int d, int nsrv, struct tp_result *r)
{
	memset(r, 0, sizeof *r);
	memset(&T, 0, sizeof T);
	pthread_mutex_init(&T.rq_lock, NULL);
	T.nsrv = d == D_THREAD ? 0 : nsrv;
	T.nwrk = wl->workers;
	T.ops = wl->ops;
	T.compute_ns = (uint64_t)wl->compute_us * 1000;
	T.sleep_us = (unsigned)wl->sleep_us;
	T.srv = aligned_alloc(64, sizeof *T.srv * (size_t)(T.nsrv ? T.nsrv : 1));
	T.wrk = aligned_alloc(64, sizeof *T.wrk * (size_t)T.nwrk);
	if (!T.srv || !T.wrk)
		bench_die("out of memory");
	memset(T.srv, 0, sizeof *T.srv * (size_t)(T.nsrv ? T.nsrv : 1));
	memset(T.wrk, 0, sizeof *T.wrk * (size_t)T.nwrk);
	if (d >= 0 && umcg_idle_group_init(&T.g, (enum umcg_idle_design)d))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog(120);
	for (int i = 0; i < T.nsrv; i++) {
		T.srv[i].idx = i;
		T.srv[i].cpu = opt.pin_servers ? cpu_list[i % ncpus] : -1;
		T.srv[i].th = start_thread(tp_server_main, &T.srv[i]);
	}
	for (int i = 0; i < T.nwrk; i++) {
		T.wrk[i].idx = i;
		T.wrk[i].th =
		    start_thread(d == D_THREAD ? tp_thread_main : tp_worker_main, &T.wrk[i]);
	}
	while (atomic_load(&T.registered) != T.nwrk)
		nap_us(1000);
	uint64_t t0 = bench_now();
	atomic_store(&T.go, 1);
	for (int i = 0; i < T.nwrk; i++)
		join_thread(T.wrk[i].th);
	uint64_t t1 = atomic_load(&T.t_end);
	/* every worker is done: wake idle servers until all left */
	for (int i = 0; i < T.nsrv; i++) {
		while (!atomic_load(&T.srv[i].exited)) {
			umcg_idle_group_wake_one(&T.g);
			nap_us(100);
		}
		join_thread(T.srv[i].th);
	}
	bench_watchdog(0);
	if (d >= 0)
		umcg_idle_group_destroy(&T.g);

	/* exact checks */
	long ops = 0, parks = 0, runs = 0, taken = 0, finishes = 0, errors = 0;
	long total = (long)T.nwrk * T.ops;
	struct sc wp = {{0}}, wall = {{0}}, idle = {{0}}, kick = {{0}}, sall = {{0}};
	long idle_calls = 0, idle_empty = 0, kicks_ok = 0;
	for (int i = 0; i < T.nwrk; i++) {
		struct tp_worker *w = &T.wrk[i];
		ops += w->ops;
		parks += w->parks;
		errors += w->errors;
		for (int k = 0; k < SC_NR; k++) {
			wp.v[k] += w->wp_sc.v[k];
			wall.v[k] += w->all_sc.v[k];
		}
	}
	for (int i = 0; i < T.nsrv; i++) {
		struct tp_server *s = &T.srv[i];
		runs += s->runs;
		taken += s->taken;
		finishes += s->finishes;
		idle_calls += s->idle_calls;
		idle_empty += s->idle_empty;
		kicks_ok += s->kicks_ok;
		for (int k = 0; k < SC_NR; k++) {
			idle.v[k] += s->idle_sc.v[k];
			kick.v[k] += s->kick_sc.v[k];
			sall.v[k] += s->all_sc.v[k];
		}
	}
	if (ops != total)
		fail("tput %s/%d: %ld operations done, expected %ld", dname(d), nsrv, ops, total);
	if (d >= 0) {
		/* each worker runs once at registration and once after every park */
		if (runs != T.nwrk + parks)
			fail("tput %s/%d: %ld runs, expected %d registrations + %ld parks",
			     dname(d), nsrv, runs, T.nwrk, parks);
		if (taken != runs)
			fail("tput %s/%d: %ld workers taken from the list, %ld runs", dname(d),
			     nsrv, taken, runs);
		if (finishes != T.nwrk)
			fail("tput %s/%d: %ld finishes seen, expected %d", dname(d), nsrv, finishes,
			     T.nwrk);
		if (errors)
			fail("tput %s/%d: %ld worker errors", dname(d), nsrv, errors);
	}
	if (atomic_load(&T.finished) != T.nwrk || t1 <= t0)
		fail("tput %s/%d: %d of %d workers finished", dname(d), nsrv,
		     atomic_load(&T.finished), T.nwrk);
	double n = (double)total;
	r->ops_s = t1 > t0 ? n / ((double)(t1 - t0) / 1e9) : 0;
	double *po = r->per_op;
	po[TP_IWAIT] = (double)idle_calls / n;
	po[TP_ISLEEP] = (double)(idle.v[SC_FWAIT] + idle.v[SC_POLL]) / n;
	po[TP_IEMPTY] = (double)idle_empty / n;
	po[TP_WPWAKE] = (double)(wp.v[SC_FWAKE] + wp.v[SC_EFDW]) / n;
	po[TP_KICK] = (double)kicks_ok / n;
	po[TP_KICKSC] = (double)sc_total(&kick) / n;
	po[TP_CHAIN] = (double)(idle.v[SC_FWAKE] + idle.v[SC_EFDW]) / n;
	po[TP_WRKSC] = (double)sc_total(&wall) / n;
	po[TP_SRVSC] = (double)sc_total(&sall) / n;
	po[TP_SETAFF] = (double)(wall.v[SC_SETAFF] + sall.v[SC_SETAFF]) / n;
	pthread_mutex_destroy(&T.rq_lock);
	free(T.srv);
	free(T.wrk);
}

static void tp_report(const struct workload *wl, int d, int nsrv, struct tp_result *runs, int reps)
{
	double ops[64], mean[TP_NR] = {0};
	for (int i = 0; i < reps; i++) {
		ops[i] = runs[i].ops_s;
		for (int k = 0; k < TP_NR; k++)
			mean[k] += runs[i].per_op[k] / reps;
	}
	double med = median_dbl(ops, reps), lo = ops[0], hi = ops[reps - 1];
	printf("%-8s %4d %9.0f %9.0f %9.0f %5.1f%% %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f "
	       "%6.2f %6.2f %6.3f\n",
	       dname(d), nsrv, med, lo, hi, med > 0 ? 100.0 * (hi - lo) / med : 0, mean[0], mean[1],
	       mean[2], mean[3], mean[4], mean[5], mean[6], mean[7], mean[8], mean[9]);
	tsv_row(
	    "tput\t%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%."
	    "4f\t%.4f\t%.4f",
	    wl->name, dname(d), nsrv, reps, med, lo, hi, mean[0], mean[1], mean[2], mean[3],
	    mean[4], mean[5], mean[6], mean[7], mean[8], mean[9]);
}

void part_tput(void)
{
	char la[64];
	int reps = opt.reps;
	struct tp_result *runs = xcalloc((size_t)reps, sizeof *runs);
	tsv_row(
	    "#tput\tworkload\tdesign\tservers\truns\tops_s_median\tops_s_min\tops_s_max\tidle_"
	    "waits_per_op\tidle_sleeps_per_op\tidle_empty_per_op\twp_wakes_per_op\tkicks_per_"
	    "op\tkick_sc_per_op\tchain_wakes_per_op\tworker_sc_per_op\tserver_sc_per_op\tsetaff_"
	    "per_op");
	for (int wi = 0; wi < opt.nwl; wi++) {
		const struct workload *wl = &opt.wl[wi];
		loadavg(la, sizeof la);
		printf("\n== 4. throughput, workload %s: %d workers x %ld ops (compute %ld us + "
		       "sleep %ld us through\n"
		       "   the block/wake points), FIFO scheduler, servers %s; median of %d runs "
		       "(spread = (max-min)/median). load %s\n",
		       wl->name, wl->workers, wl->ops, wl->compute_us, wl->sleep_us,
		       opt.pin_servers ? "pinned round-robin to CPUs" : "unpinned", reps, la);
		printf("%-8s %4s %9s %9s %9s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n",
		       "design", "srv", "ops/s", "min", "max", "spread", "iwait", "isleep",
		       "iempty", "wpwake", "kick", "kicksc", "chain", "wrk_sc", "srv_sc", "setaff");
		for (int i = 0; i < reps; i++)
			tp_run(wl, D_THREAD, 0, &runs[i]);
		tp_report(wl, D_THREAD, 0, runs, reps);
		for (int si = 0; si < opt.nsrv_counts; si++) {
			int nsrv = opt.srv_counts[si];
			/* interleave the designs within each repetition: drift hits all alike */
			struct tp_result *all = xcalloc((size_t)(reps * NDESIGN), sizeof *all);
			for (int i = 0; i < reps; i++)
				for (int d = 0; d < NDESIGN; d++)
					if (design_on(d))
						tp_run(wl, d, nsrv, &all[d * reps + i]);
			for (int d = 0; d < NDESIGN; d++)
				if (design_on(d))
					tp_report(wl, d, nsrv, &all[d * reps], reps);
			free(all);
		}
	}
	printf("   per operation: iwait = idle waits (umcg_idle_group_wait calls), isleep = "
	       "blocking calls in them\n"
	       "   (futex_wait, poll), iempty = idle waits that returned to an empty list, wpwake "
	       "= idle-server wake-ups\n"
	       "   issued by workers' wake points (futex_wake + eventfd write), kick = "
	       "umcg_idle_group_wake_one() that\n"
	       "   woke a server, kicksc = its system calls, chain = wake-ups issued inside idle "
	       "waits (tid chaining),\n"
	       "   wrk_sc/srv_sc = all counted system calls of workers/servers (block point, "
	       "park, switches), setaff =\n"
	       "   sched_setaffinity (placement hint). threads = the same workers as plain "
	       "threads, kernel-scheduled.\n");
	free(runs);
}
