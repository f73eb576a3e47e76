/* SPDX-License-Identifier: MIT */
/*
 * bench_designs: part 1, idle-server wake-up latency (and the loop part 2b reuses).
 * (bench/designs/main.c explains the parts and the output.)
 */
#include "designs.h"

/* ================================================================================
 * Part 1: idle-server wake-up latency (and part 2b: its system calls)
 * ================================================================================ */

static struct lat_ctx {
	struct umcg_task srv; /* 64-byte aligned by its type */
	struct token tok;
	struct umcg_idle_group g;
	int design; /* of the group: a design, or D_FUTEX */
	bool nogp;  /* D_NOGP: stack group, nogp_wait() */
	enum bench_pin pin;
	size_t total;
	_Atomic uint32_t srv_tid;
	_Atomic long armed; /* sample index + 1 the server is about to wait for */
	_Atomic uint32_t go, ack;
	_Atomic uint64_t t0;
	/* per sample */
	uint64_t *lat;
	int16_t *scpu, *wcpu;
	struct sc *wk, *sv;
	long *nv;
	long spurious;
} L;

/*
 * The stk-nogp diagnostic: the stack design's idle wait written with the
 * public list calls (what umcg_idle_group_wait does for the stack: IDLE,
 * push, re-check, sleep, settle, GC) but run with the library's test hook
 * umcg__isl_no_grace_period set, so that the GC does not wait for a grace
 * period (and without group.c's taken(), which waits for one as well).
 * NOT a safe design: it only shows what the grace-period waits cost (up to
 * 6e45b6b the waker's read section enclosed its FUTEX_WAKE, and those waits
 * cost ~10 us per same-CPU wake-up; docs/idle-designs.md, F1). Safe here:
 * one server, and one waker whose pop and CAS have completed before the
 * server runs, so the server's node is not in use when it is re-pushed.
 */
static void nogp_wait(struct umcg_idle_group *g, struct umcg_task *me)
{
	uint32_t st = umcg_state_load(me);
	umcg_state_store(me, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_IDLE);
	umcg_idle_servers_push(&g->idle_servers, me); /* seq_cst, then the re-check */
	if (umcg_idle_workers_empty(&g->idle_workers))
		umcg_wait(0, 0); /* EINTR: settled below */
	if (umcg_idle_servers_remove(me)) {
		st = umcg_state_load(me);
		while ((st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING &&
		       !umcg_state_cas(me, &st, (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING))
			;
	} else {
		while ((umcg_state_load(me) & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
			umcg_wait(0, 0);
	}
	umcg_idle_servers_gc(&g->idle_servers, NULL, NULL);
}

static void *lat_server(void *arg)
{
	(void)arg;
	bench_pin_self(bench_pin_cpu(L.pin, 0));
	if (L.design >= 0)
		server_register(&L.srv, NULL);
	atomic_store(&L.srv_tid, umcg_gettid());
	for (size_t i = 0; i < L.total; i++) {
		struct sc a, b;
		long nv0 = nvcsw_self();
		sc_now(&a);
		atomic_store(&L.armed, (long)i + 1);
		uint64_t t1;
		if (L.design < 0) {
			bench_sem_wait(&L.go);
			t1 = bench_now();
		} else {
			for (;;) {
				if (L.nogp)
					nogp_wait(&L.g, &L.srv);
				else if (umcg_idle_group_wait(&L.g, &L.srv, 0))
					bench_die("umcg_idle_group_wait: %s", strerror(errno));
				t1 = bench_now();
				if (!umcg_idle_workers_empty(&L.g.idle_workers))
					break;
				L.spurious++; /* a return with nothing queued: wait again */
			}
		}
		L.scpu[i] = (int16_t)sched_getcpu();
		sc_now(&b);
		L.nv[i] = nvcsw_self() - nv0;
		memset(&L.sv[i], 0, sizeof L.sv[i]);
		sc_acc(&L.sv[i], &a, &b);
		L.lat[i] = t1 - atomic_load_explicit(&L.t0, memory_order_relaxed);
		if (L.design >= 0) {
			struct umcg_task *w = umcg_idle_workers_pop_all(&L.g.idle_workers);
			if (w != &L.tok.t || umcg_idle_workers_next(w, &L.g.idle_workers))
				bench_die("lat: unexpected idle-workers list content");
			atomic_store(&L.tok.queued, 0);
		}
		bench_sem_post(&L.ack);
	}
	if (L.design >= 0)
		unregister();
	return NULL;
}

static void *lat_waker(void *arg)
{
	(void)arg;
	bench_pin_self(bench_pin_cpu(L.pin, 1));
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* short naps really short */
	while (!atomic_load(&L.srv_tid))
		nap_us(100);
	int fd = proc_stat_open(atomic_load(&L.srv_tid));
	for (size_t i = 0; i < L.total; i++) {
		/* the server announced sample i and sleeps (state S) */
		while (atomic_load(&L.armed) != (long)i + 1 || proc_state(fd) != 'S')
			nap_us(5);
		if (L.design >= 0) {
			umcg_idle_group_worker_init(&L.g, &L.tok.t);
			atomic_store(&L.tok.queued, 1);
		}
		struct sc a, b;
		L.wcpu[i] = (int16_t)sched_getcpu();
		sc_now(&a);
		atomic_store_explicit(&L.t0, bench_now(), memory_order_relaxed);
		if (L.design < 0) {
			bench_sem_post(&L.go);
		} else {
			/* what a worker's wake point does once it is IDLE */
			umcg_idle_workers_push(&L.g.idle_workers, &L.tok.t);
			umcg__wake_idle_server(&L.tok.t);
		}
		sc_now(&b);
		memset(&L.wk[i], 0, sizeof L.wk[i]);
		sc_acc(&L.wk[i], &a, &b);
		if (L.design < 0)
			L.wk[i].v[SC_FWAKE] = 1; /* bench_sem_post: always one FUTEX_WAKE */
		bench_sem_wait(&L.ack);
	}
	close(fd);
	return NULL;
}

void lat_run(int design, enum bench_pin pin, long n, long warm, struct lat_result *r)
{
	memset(r, 0, sizeof *r);
	r->design = design;
	r->pin = pin;
	size_t total = (size_t)(n + warm);
	memset(&L, 0, sizeof L);
	L.nogp = design == D_NOGP;
	L.design = L.nogp ? UMCG_IDLE_STACK : design;
	L.pin = pin;
	L.total = total;
	L.lat = xcalloc(total, sizeof *L.lat);
	L.scpu = xcalloc(total, sizeof *L.scpu);
	L.wcpu = xcalloc(total, sizeof *L.wcpu);
	L.wk = xcalloc(total, sizeof *L.wk);
	L.sv = xcalloc(total, sizeof *L.sv);
	L.nv = xcalloc(total, sizeof *L.nv);
	if (L.design >= 0 && umcg_idle_group_init(&L.g, (enum umcg_idle_design)L.design))
		bench_die("umcg_idle_group_init: %s", strerror(errno));
	umcg__isl_no_grace_period = L.nogp;
	bench_watchdog(120);
	pthread_t s = start_thread(lat_server, NULL);
	pthread_t w = start_thread(lat_waker, NULL);
	join_thread(s);
	join_thread(w);
	bench_watchdog(0);
	umcg__isl_no_grace_period = 0;
	if (L.design >= 0)
		umcg_idle_group_destroy(&L.g);

	size_t same = 0;
	r->wk_min = r->sv_min = UINT64_MAX;
	for (size_t i = (size_t)warm; i < total; i++) {
		same += L.scpu[i] == L.wcpu[i];
		for (int k = 0; k < SC_NR; k++) {
			r->wk.v[k] += L.wk[i].v[k];
			r->sv.v[k] += L.sv[i].v[k];
		}
		uint64_t wt = sc_total(&L.wk[i]), st = sc_total(&L.sv[i]);
		r->wk_min = wt < r->wk_min ? wt : r->wk_min;
		r->wk_max = wt > r->wk_max ? wt : r->wk_max;
		r->sv_min = st < r->sv_min ? st : r->sv_min;
		r->sv_max = st > r->sv_max ? st : r->sv_max;
		r->nv_sum += L.nv[i];
	}
	r->samecpu = 100.0 * (double)same / (double)n;
	r->spurious = L.spurious;
	bench_stats_compute(L.lat + warm, (size_t)n, &r->st);
	r->done = true;
	free(L.lat);
	free(L.scpu);
	free(L.wcpu);
	free(L.wk);
	free(L.sv);
	free(L.nv);
}

/* part 1's numbers of one case, over the repetitions */
struct lat_agg {
	bool done;
	int design;
	size_t n;			/* samples per repetition */
	double p50, p99, mean, samecpu; /* medians over the repetitions (ns, %) */
	double p50lo, p50hi, min, max;	/* range of p50; extremes over all samples */
	double wk, sv;			/* system calls per sample, all repetitions */
	uint64_t wk_min, wk_max;
};

static void lat_aggregate(const struct lat_result *r, int reps, struct lat_agg *a)
{
	double p50[64], p99[64], mean[64], same[64];
	double n = 0, wk = 0, sv = 0;
	memset(a, 0, sizeof *a);
	a->min = 1e30;
	a->wk_min = UINT64_MAX;
	for (int i = 0; i < reps; i++) {
		p50[i] = (double)r[i].st.p50;
		p99[i] = (double)r[i].st.p99;
		mean[i] = r[i].st.mean;
		same[i] = r[i].samecpu;
		a->min = (double)r[i].st.min < a->min ? (double)r[i].st.min : a->min;
		a->max = (double)r[i].st.max > a->max ? (double)r[i].st.max : a->max;
		a->wk_min = r[i].wk_min < a->wk_min ? r[i].wk_min : a->wk_min;
		a->wk_max = r[i].wk_max > a->wk_max ? r[i].wk_max : a->wk_max;
		n += (double)r[i].st.n;
		wk += (double)sc_total(&r[i].wk);
		sv += (double)sc_total(&r[i].sv);
	}
	a->done = true;
	a->design = r[0].design;
	a->n = r[0].st.n;
	a->p50 = median_dbl(p50, reps);
	a->p50lo = p50[0]; /* sorted by median_dbl */
	a->p50hi = p50[reps - 1];
	a->p99 = median_dbl(p99, reps);
	a->mean = median_dbl(mean, reps);
	a->samecpu = median_dbl(same, reps);
	a->wk = wk / n;
	a->sv = sv / n;
}

void part_lat(void)
{
	static const int order[] = {D_FUTEX, UMCG_IDLE_STACK, UMCG_IDLE_EVENTFD, UMCG_IDLE_TID_WORD,
				    D_NOGP};
	enum { NK = 5 };
	int reps = opt.reps;
	struct lat_result *res = xcalloc((size_t)(BENCH_PIN_NR * NK * reps), sizeof *res);
	struct lat_agg agg[BENCH_PIN_NR][NK];
	char la[64];
	memset(agg, 0, sizeof agg);
	loadavg(la, sizeof la);
	printf(
	    "\n== 1. idle-server wake-up latency (us): t0 = waker, just before the append + wake "
	    "(dummy worker:\n"
	    "   umcg_idle_workers_push + umcg__wake_idle_server) -> t1 = server returned from "
	    "umcg_idle_group_wait\n"
	    "   (futex: from sem_wait). Server asleep (state S) at t0 in every sample. %d runs "
	    "of n=%ld (after %ld warm-up)\n"
	    "   per case, interleaved; p50/mean/p99 = median over the runs, p50 range = "
	    "min..max over the runs. load %s\n",
	    reps, opt.lat_n, opt.lat_warm, la);
	printf("   pin: same = server+waker on cpu%d; diff = server cpu%d, waker cpu%d; none = "
	       "unpinned\n",
	       bench_pin_cpu(BENCH_PIN_SAME, 0), bench_pin_cpu(BENCH_PIN_DIFF, 0),
	       bench_pin_cpu(BENCH_PIN_DIFF, 1));
	printf("%-8s %-5s %5s %7s %7s %13s %7s %8s %9s %6s %6s %6s %6s %5s %5s %5s\n", "design",
	       "pin", "n", "min", "p50", "p50 range", "mean", "p99", "max", "x50fut", "x99fut",
	       "x50stk", "x99stk", "same%", "wk_sc", "sv_sc");
	tsv_row("#lat\tdesign\tpin\tn\tmin_us\tp50_us\tmean_us\tp99_us\tmax_us\tx50_futex\tx99_"
		"futex\tx50_stack\tx99_stack\tsamecpu_pct\twaker_sc\tserver_sc\truns\tp50_lo_"
		"us\tp50_hi_us");
	for (int p = 0; p < BENCH_PIN_NR; p++) {
		if (!(opt.pins & (1u << p)))
			continue;
		if (!bench_pin_available((enum bench_pin)p)) {
			printf("(pin %s: needs two CPUs, skipped)\n", bench_pin_name(p));
			continue;
		}
		bool on[NK];
		for (int k = 0; k < NK; k++) {
			int d = order[k];
			on[k] = !((d >= 0 && !design_on(d)) ||
				  (d == D_NOGP && (opt.no_diag || !design_on(UMCG_IDLE_STACK))));
		}
		for (int i = 0; i < reps; i++) /* interleaved: drift hits every case alike */
			for (int k = 0; k < NK; k++)
				if (on[k])
					lat_run(order[k], (enum bench_pin)p, opt.lat_n,
						opt.lat_warm, &res[(p * NK + k) * reps + i]);
		for (int k = 0; k < NK; k++)
			if (on[k])
				lat_aggregate(&res[(p * NK + k) * reps], reps, &agg[p][k]);
		for (int k = 0; k < NK; k++) {
			struct lat_agg *a = &agg[p][k];
			if (!a->done)
				continue;
			const struct lat_agg *f = &agg[p][0],
					     *st = agg[p][1].done ? &agg[p][1] : NULL;
			double x50f = a->p50 / f->p50, x99f = a->p99 / f->p99;
			double x50s = st ? a->p50 / st->p50 : 0, x99s = st ? a->p99 / st->p99 : 0;
			char range[32];
			snprintf(range, sizeof range, "%.2f..%.2f", us(a->p50lo), us(a->p50hi));
			printf(
			    "%-8s %-5s %5zu %7.2f %7.2f %13s %7.2f %8.2f %9.1f %6.2f %6.2f %6.2f "
			    "%6.2f %5.1f %5.2f %5.2f\n",
			    dname(a->design), bench_pin_name(p), a->n, us(a->min), us(a->p50),
			    range, us(a->mean), us(a->p99), us(a->max), x50f, x99f, x50s, x99s,
			    a->samecpu, a->wk, a->sv);
			tsv_row(
			    "lat\t%s\t%s\t%zu\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%."
			    "3f\t%.1f\t%.3f\t%.3f\t%d\t%.3f\t%.3f",
			    dname(a->design), bench_pin_name(p), a->n, us(a->min), us(a->p50),
			    us(a->mean), us(a->p99), us(a->max), x50f, x99f, x50s, x99s, a->samecpu,
			    a->wk, a->sv, reps, us(a->p50lo), us(a->p50hi));
			if (a->design != D_FUTEX && (a->wk_min != 1 || a->wk_max != 1))
				fail("lat %s/%s: waker made %llu..%llu system calls per wake-up, "
				     "expected exactly 1",
				     dname(a->design), bench_pin_name(p),
				     (unsigned long long)a->wk_min, (unsigned long long)a->wk_max);
		}
	}
	free(res);
	printf("   x50fut/x99fut: p50/p99 over the futex baseline's (same pinning, same run); "
	       "x50stk/x99stk: over the stack's.\n"
	       "   same%%: samples where the server returned on the CPU the waker ran on; wk_sc / "
	       "sv_sc: system calls\n"
	       "   per wake-up on the waker's side / per idle-wait cycle on the server's side "
	       "(part 2 breaks them down).\n"
	       "   stk-nogp (diagnostic, -x skips it): the stack with the server's grace-period "
	       "waits switched off\n"
	       "   (test hook umcg__isl_no_grace_period; unsafe in general): what those waits "
	       "cost.\n");
}
