/* SPDX-License-Identifier: MIT */
/*
 * bench_designs: part 3, CPU time burnt by idle servers.
 * (bench/designs/main.c explains the parts and the output.)
 */
#include "designs.h"

/* ================================================================================
 * Part 3: CPU burnt by idle servers
 * ================================================================================ */

#define IDLE_GROUPS (NDESIGN + 1) /* [0] = futex baseline, [1 + d] = design d */

static struct idle_ctx {
	struct isrv {
		struct umcg_task t;
		int group;
		_Atomic uint32_t tid;
		_Atomic int in_wait;
		_Atomic int exited;
		_Atomic long returns;
		clockid_t cid; /* published by the release store of tid */
	} * s;
	int n;
	struct umcg_idle_group g[IDLE_GROUPS];
	_Atomic uint32_t sem;
	_Atomic int stop;
} I;

static void *idle_server(void *arg)
{
	struct isrv *me = arg;
	int d = me->group - 1;
	if (d >= 0)
		server_register(&me->t, NULL);
	if (pthread_getcpuclockid(pthread_self(), &me->cid))
		bench_die("pthread_getcpuclockid failed");
	atomic_store(&me->tid, umcg_gettid());
	for (;;) {
		atomic_store(&me->in_wait, 1);
		if (d < 0)
			bench_sem_wait(&I.sem);
		else if (umcg_idle_group_wait(&I.g[me->group], &me->t, 0))
			bench_die("umcg_idle_group_wait: %s", strerror(errno));
		atomic_store(&me->in_wait, 0);
		atomic_fetch_add(&me->returns, 1);
		if (atomic_load(&I.stop))
			break;
	}
	if (d >= 0)
		unregister();
	atomic_store(&me->exited, 1);
	return NULL;
}

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;
	if (clock_gettime(c, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void part_cpu(void)
{
	char la[64];
	int per = opt.idle_servers;
	memset(&I, 0, sizeof I);
	I.n = per * IDLE_GROUPS;
	I.s = aligned_alloc(64, sizeof *I.s * (size_t)I.n);
	if (!I.s)
		bench_die("out of memory");
	memset(I.s, 0, sizeof *I.s * (size_t)I.n);
	for (int d = 0; d < NDESIGN; d++)
		if (umcg_idle_group_init(&I.g[1 + d], (enum umcg_idle_design)d))
			bench_die("umcg_idle_group_init: %s", strerror(errno));
	bench_watchdog((unsigned)opt.idle_secs + 60);
	pthread_t *th = xcalloc((size_t)I.n, sizeof *th);
	bool *on = xcalloc((size_t)I.n, sizeof *on);
	for (int i = 0; i < I.n; i++) {
		I.s[i].group = i / per;
		on[i] = I.s[i].group == 0 || design_on(I.s[i].group - 1);
		if (on[i])
			th[i] = start_thread(idle_server, &I.s[i]);
	}
	/* wait until every server sleeps, then let things settle */
	for (int i = 0; i < I.n; i++) {
		if (!on[i])
			continue;
		while (!atomic_load(&I.s[i].tid))
			nap_us(100);
		int fd = proc_stat_open(atomic_load(&I.s[i].tid));
		while (!atomic_load(&I.s[i].in_wait) || proc_state(fd) != 'S')
			nap_us(100);
		close(fd);
	}
	nap_us(100000);
	loadavg(la, sizeof la);
	uint64_t *c0 = xcalloc((size_t)I.n, sizeof *c0), *c1 = xcalloc((size_t)I.n, sizeof *c1);
	long *v0 = xcalloc((size_t)I.n, sizeof *v0), *v1 = xcalloc((size_t)I.n, sizeof *v1);
	long *r0 = xcalloc((size_t)I.n, sizeof *r0), *r1 = xcalloc((size_t)I.n, sizeof *r1);
	for (int i = 0; i < I.n; i++)
		if (on[i]) {
			c0[i] = cpu_ns(I.s[i].cid);
			v0[i] = proc_nvcsw(atomic_load(&I.s[i].tid));
			r0[i] = atomic_load(&I.s[i].returns);
		}
	uint64_t t0 = bench_now();
	nap_us(opt.idle_secs * 1000000L);
	uint64_t t1 = bench_now();
	for (int i = 0; i < I.n; i++)
		if (on[i]) {
			c1[i] = cpu_ns(I.s[i].cid);
			v1[i] = proc_nvcsw(atomic_load(&I.s[i].tid));
			r1[i] = atomic_load(&I.s[i].returns);
		}
	/* shutdown */
	atomic_store(&I.stop, 1);
	for (int i = 0; i < I.n; i++) {
		if (!on[i])
			continue;
		while (!atomic_load(&I.s[i].exited)) {
			if (I.s[i].group == 0)
				bench_sem_post(&I.sem);
			else
				umcg_idle_group_wake_one(&I.g[I.s[i].group]);
			nap_us(200);
		}
		join_thread(th[i]);
	}
	bench_watchdog(0);
	double secs = (double)(t1 - t0) / 1e9;
	printf("\n== 3. CPU burnt by idle servers: %d per design (+ %d futex-sleeping threads), "
	       "all idle at once for %.2f s, unpinned. load %s\n",
	       per, per, secs, la);
	printf("%-8s %8s %14s %16s %10s %10s\n", "design", "servers", "cpu_us_total",
	       "us_cpu/server/s", "nvcsw", "returns");
	tsv_row("#cpu\tdesign\tservers\tsecs\tcpu_us_total\tcpu_us_per_server_per_s\tnvcsw\t"
		"returns");
	for (int gi = 0; gi < IDLE_GROUPS; gi++) {
		int d = gi - 1;
		if (d >= 0 && !design_on(d))
			continue;
		uint64_t cpu = 0;
		long nv = 0, ret = 0;
		for (int i = gi * per; i < (gi + 1) * per; i++) {
			cpu += c1[i] - c0[i];
			nv += v1[i] - v0[i];
			ret += r1[i] - r0[i];
		}
		double per_s = us((double)cpu) / per / secs;
		printf("%-8s %8d %14.1f %16.3f %10ld %10ld\n", dname(d), per, us((double)cpu),
		       per_s, nv, ret);
		tsv_row("cpu\t%s\t%d\t%.3f\t%.1f\t%.4f\t%ld\t%ld", dname(d), per, secs,
			us((double)cpu), per_s, nv, ret);
		if (ret)
			fail("cpu %s: %ld idle-wait returns with no work and no wake_one", dname(d),
			     ret);
	}
	printf("   cpu: thread CPU clocks (pthread_getcpuclockid) over the window; nvcsw: "
	       "voluntary context switches\n"
	       "   (a wake-up that slept again); returns: idle waits that returned (0 expected: "
	       "no work, no wake_one).\n");
	for (int d = 0; d < NDESIGN; d++)
		umcg_idle_group_destroy(&I.g[1 + d]);
	free(c0);
	free(c1);
	free(v0);
	free(v1);
	free(r0);
	free(r1);
	free(th);
	free(on);
	free(I.s);
}
