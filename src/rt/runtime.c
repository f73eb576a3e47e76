/* SPDX-License-Identifier: MIT */
/*
 * runtime.c - the runtime object: create, shutdown, destroy, counters.
 *
 * Shutdown order (each step waits for the one before):
 *   1. stopping = 1: umcg_rt_spawn() fails with ECANCELED from now on
 *      (spawn raises nr_live, then reads stopping; we set stopping, then
 *      read nr_live: seq_cst both, one of the two sees the other);
 *   2. wait until nr_live is 0: every spawned worker returned;
 *   3. close the pool and hand each pooled thread an "end" worker (fn
 *      NULL); threads that return later find the pool closed and end;
 *   4. wait until nr_threads is 0: every thread unregistered;
 *   5. stop the servers (done, wake the idle ones, join them);
 *   6. join every worker thread.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt/rt.h"

void rt__fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("umcg_rt: FATAL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

void rt__futex_wait(_Atomic uint32_t *word, uint32_t val, int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	syscall(SYS_futex, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, val, &ts, NULL, 0);
}

void rt__futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

UMCG_RT_EXPORT void umcg_rt_attr_init(struct umcg_rt_attr *attr)
{
	memset(attr, 0, sizeof *attr);
	attr->pin_servers = true;
	attr->idle_design = UMCG_IDLE_STACK;
	attr->pool_max = 256;
}

static int nr_allowed_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set))
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

UMCG_RT_EXPORT struct umcg_rt *umcg_rt_create(const struct umcg_rt_attr *attr)
{
	struct umcg_rt_attr a;
	if (attr)
		a = *attr;
	else
		umcg_rt_attr_init(&a);
	if (a.nr_servers < 0 || a.nr_servers > 4096 || a.pool_max < 0 ||
	    (unsigned)a.idle_design > UMCG_IDLE_TID_WORD ||
	    (a.policy && (!a.policy->enqueue || !a.policy->pick_next)) ||
	    (a.stack_size && a.stack_size < 16384) || a.preempt_signal < 0 ||
	    a.preempt_signal >= NSIG || a.preempt_signal == SIGKILL ||
	    a.preempt_signal == SIGSTOP ||
	    (a.preempt_slice_ns && !(a.policy ? a.policy : &umcg_rt_policy_fifo)->tick)) {
		errno = EINVAL;
		return NULL;
	}
	if (!a.nr_servers)
		a.nr_servers = nr_allowed_cpus();
	if (!a.policy)
		a.policy = &umcg_rt_policy_fifo;
	if (!a.stack_size)
		a.stack_size = 256 * 1024;
	if (!a.preempt_signal)
		a.preempt_signal = SIGURG;

	struct umcg_rt *rt = aligned_alloc(64, (sizeof *rt + 63) & ~(size_t)63);
	if (!rt) {
		errno = ENOMEM;
		return NULL;
	}
	memset(rt, 0, sizeof *rt);
	rt->attr = a;
	rt->pol = a.policy;
	rt->nr_servers = a.nr_servers;
	size_t sz = sizeof(struct rt_server) * (size_t)a.nr_servers;
	rt->servers = aligned_alloc(64, sz);
	if (!rt->servers) {
		free(rt);
		errno = ENOMEM;
		return NULL;
	}
	memset(rt->servers, 0, sz);
	for (int i = 0; i < a.nr_servers; i++)
		rt->servers[i].epfd = -1;
	if (rt__trace_init(rt)) {
		errno = ENOMEM;
		goto fail_mem;
	}
	if (umcg_idle_group_init(&rt->grp, a.idle_design))
		goto fail_mem;
	rt->pd = rt->pol->init ? rt->pol->init(a.nr_servers) : NULL;
	if (rt->pol->init && !rt->pd)
		goto fail_grp;
	if (rt__servers_start(rt)) {
		int e = errno;
		for (int i = 0; i < a.nr_servers; i++)
			if (rt->servers[i].epfd >= 0)
				close(rt->servers[i].epfd);
		errno = e;
		goto fail_pol;
	}
	if (a.preempt_slice_ns && rt__preempt_start(rt)) {
		int e = errno;
		atomic_store(&rt->stopping, 1);
		rt__servers_stop(rt);
		errno = e;
		goto fail_pol;
	}
	return rt;
fail_pol:
	if (rt->pol->fini)
		rt->pol->fini(rt->pd);
fail_grp : {
	int e = errno;
	umcg_idle_group_destroy(&rt->grp);
	errno = e;
}
fail_mem:
	rt__trace_free(rt);
	free(rt->servers);
	free(rt);
	return NULL;
}

static void wait_zero(_Atomic uint32_t *count)
{
	uint32_t n;
	while ((n = atomic_load(count)))
		rt__futex_wait(count, n, 100);
}

/* shutdown/destroy: a runtime, and not called from one of its own workers */
static int check_outside(struct umcg_rt *rt)
{
	if (!rt) {
		errno = EINVAL;
		return -1;
	}
	if (umcg_rt_current() == rt) {
		errno = EDEADLK;
		return -1;
	}
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_shutdown(struct umcg_rt *rt)
{
	if (check_outside(rt))
		return -1;
	if (atomic_exchange(&rt->shut, 1)) {
		errno = EALREADY;
		return -1;
	}
	atomic_store(&rt->stopping, 1);
	wait_zero(&rt->nr_live);

	rt__spin_lock(&rt->pool_lock);
	rt->pool_closed = true;
	struct rt_thread *pool = rt->pool;
	rt->pool = NULL;
	rt->pool_len = 0;
	rt__spin_unlock(&rt->pool_lock);
	while (pool) {
		struct rt_thread *th = pool;
		pool = th->pool_next;
		struct umcg_rt_worker *end = calloc(1, sizeof *end);
		if (!end)
			rt__fatal("shutdown: out of memory");
		end->rt = rt;
		end->th = th;
		atomic_store_explicit(&th->next, end, memory_order_release);
		rt__unpark_thread(th);
	}
	wait_zero(&rt->nr_threads);
	rt__preempt_stop(rt);
	rt__servers_stop(rt);

	rt__spin_lock(&rt->pool_lock);
	struct rt_thread *all = rt->all;
	rt->all = NULL;
	rt__spin_unlock(&rt->pool_lock);
	while (all) {
		struct rt_thread *th = all;
		all = th->all_next;
		pthread_join(th->thread, NULL);
		free(th);
	}
	return 0;
}

UMCG_RT_EXPORT int umcg_rt_destroy(struct umcg_rt *rt)
{
	if (check_outside(rt))
		return -1;
	if (!atomic_load(&rt->shut) && umcg_rt_shutdown(rt))
		return -1;
	if (rt->pol->fini)
		rt->pol->fini(rt->pd);
	umcg_idle_group_destroy(&rt->grp);
	rt__trace_free(rt);
	free(rt->servers);
	free(rt);
	return 0;
}

/*
 * A relaxed load is enough: the flag only tells a worker to finish; what
 * the worker published before it returns is ordered by its exit (the
 * shutdown's wait on nr_live), not by this flag.
 */
UMCG_RT_EXPORT int umcg_rt_stopping(const struct umcg_rt *rt)
{
	return rt ? atomic_load_explicit(&rt->stopping, memory_order_relaxed) != 0 : 0;
}

UMCG_RT_EXPORT int umcg_rt_nr_servers(const struct umcg_rt *rt)
{
	return rt ? rt->nr_servers : 0;
}

#define SUM(f) atomic_load_explicit(&s->f, memory_order_relaxed)
static void add_server(struct umcg_rt_stats *o, struct rt_server *s)
{
	o->runs += SUM(runs);
	o->blocks += SUM(blocks);
	o->wakes += SUM(wakes);
	o->yields += SUM(yields);
	o->parks += SUM(parks);
	o->switches += SUM(switches);
	o->steals += SUM(steals);
	o->idle_waits += SUM(idle_waits);
	o->idle_timeouts += SUM(idle_timeouts);
	o->kicks += SUM(kicks);
	o->preempts += SUM(preempts);
}
#undef SUM

UMCG_RT_EXPORT void umcg_rt_get_stats(struct umcg_rt *rt, struct umcg_rt_stats *o)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < rt->nr_servers; i++)
		add_server(o, &rt->servers[i]);
	o->spawns = atomic_load_explicit(&rt->spawns, memory_order_relaxed);
	o->pool_reuses = atomic_load_explicit(&rt->pool_reuses, memory_order_relaxed);
	o->threads = atomic_load_explicit(&rt->threads, memory_order_relaxed);
	o->exits = atomic_load_explicit(&rt->exits, memory_order_relaxed);
	o->preempt_signals = atomic_load_explicit(&rt->preempt_signals, memory_order_relaxed);
	o->wakes += atomic_load_explicit(&rt->wakes, memory_order_relaxed);
	o->preempts += atomic_load_explicit(&rt->preempts, memory_order_relaxed);
}

UMCG_RT_EXPORT int umcg_rt_get_server_stats(struct umcg_rt *rt, int server, struct umcg_rt_stats *o)
{
	if (!rt || !o || server < 0 || server >= rt->nr_servers) {
		errno = EINVAL;
		return -1;
	}
	memset(o, 0, sizeof *o);
	add_server(o, &rt->servers[server]);
	return 0;
}
