/* SPDX-License-Identifier: MIT */
/*
 * test_rt_sync.c - the runtime's synchronisation objects: exact counts
 * under stress (workers of two servers plus plain threads), producer /
 * consumer on the condition variable and the semaphore, wait groups,
 * errno values, and that uncontended operations never park.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"
#include "umcg_rt.h"

static struct umcg_rt *mk(int servers, const struct umcg_rt_policy *pol)
{
	struct umcg_rt_attr a;
	umcg_rt_attr_init(&a);
	a.nr_servers = servers;
	a.policy = pol;
	struct umcg_rt *rt = umcg_rt_create(&a);
	CHECK(rt != NULL);
	return rt;
}

static void stats(struct umcg_rt *rt, struct umcg_rt_stats *st)
{
	CHECK_EQ(umcg_rt_shutdown(rt), 0);
	umcg_rt_get_stats(rt, st);
	CHECK_EQ(umcg_rt_destroy(rt), 0);
}

/* ---- errors and the uncontended path ----------------------------------------------- */

TEST_T(errors, 10)
{
	struct umcg_rt_mutex m;
	umcg_rt_mutex_init(&m);
	CHECK_ERR(umcg_rt_mutex_unlock(&m), EPERM);
	CHECK_EQ(umcg_rt_mutex_trylock(&m), 0);
	CHECK_ERR(umcg_rt_mutex_trylock(&m), EBUSY);
	CHECK_EQ(umcg_rt_mutex_unlock(&m), 0);
	struct umcg_rt_sem s;
	CHECK_ERR(umcg_rt_sem_init(&s, -1), EINVAL);
	CHECK_EQ(umcg_rt_sem_init(&s, 1), 0);
	CHECK_EQ(umcg_rt_sem_trywait(&s), 0);
	CHECK_ERR(umcg_rt_sem_trywait(&s), EAGAIN);
	CHECK_EQ(umcg_rt_sem_post(&s), 0);
	CHECK_EQ(umcg_rt_sem_wait(&s), 0);
	struct umcg_rt_wg g;
	umcg_rt_wg_init(&g);
	CHECK_EQ(umcg_rt_wg_wait(&g), 0); /* count 0: returns at once */
	CHECK_ERR(umcg_rt_wg_done(&g), EINVAL);
	CHECK_EQ(umcg_rt_wg_add(&g, 2), 0);
	CHECK_ERR(umcg_rt_wg_add(&g, -3), EINVAL);
	CHECK_EQ(umcg_rt_wg_add(&g, -2), 0);
	CHECK_EQ(umcg_rt_wg_wait(&g), 0);
	/* signal and broadcast without waiters are no-ops */
	struct umcg_rt_cond c;
	umcg_rt_cond_init(&c);
	CHECK_EQ(umcg_rt_cond_signal(&c), 0);
	CHECK_EQ(umcg_rt_cond_broadcast(&c), 0);
}

static struct umcg_rt_mutex um;
static struct umcg_rt_sem us;
static long uncontended_csw = -1;
static struct umcg_rt_stats uncontended_st;

static void *uncontended(void *arg)
{
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	for (int i = 0; i < 100000; i++) {
		umcg_rt_mutex_lock(&um);
		umcg_rt_mutex_unlock(&um);
		umcg_rt_sem_post(&us);
		umcg_rt_sem_wait(&us);
	}
	getrusage(RUSAGE_THREAD, &r1);
	uncontended_csw = r1.ru_nvcsw - r0.ru_nvcsw;
	umcg_rt_get_stats(umcg_rt_current(), &uncontended_st); /* before the pool's park */
	return NULL;
}

TEST_T(uncontended_never_parks, 20)
{
	struct umcg_rt *rt = mk(1, NULL);
	umcg_rt_mutex_init(&um);
	umcg_rt_sem_init(&us, 0);
	CHECK_EQ(umcg_rt_join(umcg_rt_spawn(rt, uncontended, NULL, NULL), NULL), 0);
	struct umcg_rt_stats st;
	stats(rt, &st);
	CHECK_EQ(uncontended_st.parks, 0);
	CHECK_EQ(uncontended_st.yields + uncontended_st.blocks, 0);
	CHECK_EQ(uncontended_st.runs, 1); /* never left its server */
	CHECK_EQ(uncontended_csw, 0);	  /* never slept in the kernel */
}

/* ---- mutex: exact count ------------------------------------------------------------ */

static struct umcg_rt_mutex m;
static long shared_count; /* protected by m only */
static long per_worker;

static void *incr(void *arg)
{
	for (long i = 0; i < per_worker; i++) {
		umcg_rt_mutex_lock(&m);
		long v = shared_count;
		if (i % 16 == 0)
			umcg_rt_yield(); /* inside: others queue on m */
		shared_count = v + 1;
		umcg_rt_mutex_unlock(&m);
	}
	return NULL;
}

static void *plain_incr(void *arg)
{
	for (long i = 0; i < per_worker; i++) {
		umcg_rt_mutex_lock(&m);
		shared_count++;
		umcg_rt_mutex_unlock(&m);
	}
	return NULL;
}

static void mutex_stress(const struct umcg_rt_policy *pol)
{
	struct umcg_rt *rt = mk(2, pol);
	umcg_rt_mutex_init(&m);
	shared_count = 0;
	per_worker = th_scaled(2000, 100);
	enum { W = 32, T = 2 };
	struct umcg_rt_worker *w[W];
	for (int i = 0; i < W; i++)
		CHECK((w[i] = umcg_rt_spawn(rt, incr, NULL, NULL)) != NULL);
	pthread_t t[T];
	for (int i = 0; i < T; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, plain_incr, NULL), 0);
	for (int i = 0; i < W; i++)
		CHECK_EQ(umcg_rt_join(w[i], NULL), 0);
	for (int i = 0; i < T; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	umcg_rt_mutex_lock(&m);
	CHECK_EQ(shared_count, (W + T) * per_worker);
	umcg_rt_mutex_unlock(&m);
	CHECK_EQ(atomic_load(&m.state), 0);
	struct umcg_rt_stats st;
	stats(rt, &st);
	CHECK(st.parks > 0); /* it was contended: waiters parked */
}

TEST_T(mutex_exact_count_fifo, 120)
{
	mutex_stress(&umcg_rt_policy_fifo);
}
TEST_T(mutex_exact_count_steal, 120)
{
	mutex_stress(&umcg_rt_policy_steal);
}

/* ---- condition variable: bounded buffer --------------------------------------------- */

enum { CAP = 4 };
static struct umcg_rt_cond not_full, not_empty;
static long buf[CAP], head, tail, items;
static _Atomic long consumed_sum, consumed_n;
static long nr_items;

static void *producer(void *arg)
{
	long base = (long)(intptr_t)arg * nr_items;
	for (long i = 1; i <= nr_items; i++) {
		umcg_rt_mutex_lock(&m);
		while (items == CAP)
			umcg_rt_cond_wait(&not_full, &m);
		buf[tail++ % CAP] = base + i;
		items++;
		umcg_rt_cond_signal(&not_empty);
		umcg_rt_mutex_unlock(&m);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	long want = (long)(intptr_t)arg;
	for (long i = 0; i < want; i++) {
		umcg_rt_mutex_lock(&m);
		while (!items)
			umcg_rt_cond_wait(&not_empty, &m);
		long v = buf[head++ % CAP];
		items--;
		umcg_rt_cond_signal(&not_full);
		umcg_rt_mutex_unlock(&m);
		atomic_fetch_add(&consumed_sum, v);
		atomic_fetch_add(&consumed_n, 1);
	}
	return NULL;
}

TEST_T(cond_producer_consumer, 120)
{
	struct umcg_rt *rt = mk(2, &umcg_rt_policy_steal);
	umcg_rt_mutex_init(&m);
	umcg_rt_cond_init(&not_full);
	umcg_rt_cond_init(&not_empty);
	head = tail = items = 0;
	atomic_store(&consumed_sum, 0);
	atomic_store(&consumed_n, 0);
	nr_items = th_scaled(5000, 200);
	enum { P = 6, C = 4 };
	struct umcg_rt_worker *w[P + C];
	for (long i = 0; i < P; i++)
		CHECK((w[i] = umcg_rt_spawn(rt, producer, (void *)i, NULL)) != NULL);
	for (long i = 0; i < C - 1; i++)
		CHECK((w[P + i] = umcg_rt_spawn(rt, consumer, (void *)(P * nr_items / C), NULL)) !=
		      NULL);
	/* the last consumer is a plain thread: it sleeps on the futex */
	pthread_t t;
	long rest = P * nr_items - (C - 1) * (P * nr_items / C);
	CHECK_EQ(pthread_create(&t, NULL, consumer, (void *)rest), 0);
	for (int i = 0; i < P + C - 1; i++)
		CHECK_EQ(umcg_rt_join(w[i], NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	long n = P * nr_items;
	CHECK_EQ(atomic_load(&consumed_n), n);
	CHECK_EQ(atomic_load(&consumed_sum), n * (n + 1) / 2);
	CHECK_EQ(items, 0);
	struct umcg_rt_stats st;
	stats(rt, &st);
	CHECK(st.parks > 0);
}

/* broadcast wakes every waiter */
static _Atomic int bc_waiting, bc_woken;
static int bc_go;
static void *bc_waiter(void *arg)
{
	umcg_rt_mutex_lock(&m);
	atomic_fetch_add(&bc_waiting, 1);
	while (!bc_go)
		umcg_rt_cond_wait(&not_empty, &m);
	umcg_rt_mutex_unlock(&m);
	atomic_fetch_add(&bc_woken, 1);
	return NULL;
}

TEST_T(cond_broadcast_wakes_all, 30)
{
	struct umcg_rt *rt = mk(2, NULL);
	umcg_rt_mutex_init(&m);
	umcg_rt_cond_init(&not_empty);
	bc_go = 0;
	atomic_store(&bc_waiting, 0);
	atomic_store(&bc_woken, 0);
	enum { N = 40 };
	for (int i = 0; i < N; i++)
		CHECK(umcg_rt_spawn(rt, bc_waiter, NULL,
				    &(struct umcg_rt_spawn_attr){.flags = UMCG_RT_SPAWN_DETACHED}));
	while (atomic_load(&bc_waiting) < N)
		usleep(1000);
	usleep(10000);
	CHECK_EQ(atomic_load(&bc_woken), 0);
	umcg_rt_mutex_lock(&m);
	bc_go = 1;
	umcg_rt_cond_broadcast(&not_empty);
	umcg_rt_mutex_unlock(&m);
	struct umcg_rt_stats st;
	stats(rt, &st); /* the shutdown waits for all of them */
	CHECK_EQ(atomic_load(&bc_woken), N);
	CHECK(st.parks >= N);
}

/* ---- semaphore: producer / consumer with exact totals ---------------------------------- */

static struct umcg_rt_sem slots, filled;
static _Atomic long ring_put, ring_get;
static _Atomic long ring[64];

static void *sem_producer(void *arg)
{
	for (long i = 1; i <= nr_items; i++) {
		umcg_rt_sem_wait(&slots);
		long k = atomic_fetch_add(&ring_put, 1);
		atomic_store(&ring[k % 64], i);
		umcg_rt_sem_post(&filled);
	}
	return NULL;
}

static void *sem_consumer(void *arg)
{
	long want = (long)(intptr_t)arg;
	for (long i = 0; i < want; i++) {
		umcg_rt_sem_wait(&filled);
		long k = atomic_fetch_add(&ring_get, 1);
		long v;
		/* a slot is filled once its producer posted; ours may be a later one */
		while (!(v = atomic_exchange(&ring[k % 64], 0)))
			umcg_rt_yield();
		atomic_fetch_add(&consumed_sum, v);
		atomic_fetch_add(&consumed_n, 1);
		umcg_rt_sem_post(&slots);
	}
	return NULL;
}

TEST_T(sem_producer_consumer, 120)
{
	struct umcg_rt *rt = mk(2, NULL);
	CHECK_EQ(umcg_rt_sem_init(&slots, 8), 0);
	CHECK_EQ(umcg_rt_sem_init(&filled, 0), 0);
	atomic_store(&ring_put, 0);
	atomic_store(&ring_get, 0);
	atomic_store(&consumed_sum, 0);
	atomic_store(&consumed_n, 0);
	nr_items = th_scaled(5000, 200);
	enum { P = 4, C = 8 };
	struct umcg_rt_worker *w[P + C];
	for (long i = 0; i < P; i++)
		CHECK((w[i] = umcg_rt_spawn(rt, sem_producer, NULL, NULL)) != NULL);
	for (long i = 0; i < C; i++)
		CHECK((w[P + i] = umcg_rt_spawn(rt, sem_consumer, (void *)(P * nr_items / C),
						NULL)) != NULL);
	for (int i = 0; i < P + C; i++)
		CHECK_EQ(umcg_rt_join(w[i], NULL), 0);
	CHECK_EQ(atomic_load(&consumed_n), P * nr_items);
	CHECK_EQ(atomic_load(&consumed_sum), P * nr_items * (nr_items + 1) / 2);
	CHECK_EQ(atomic_load(&slots.value), 8);
	CHECK_EQ(atomic_load(&filled.value), 0);
	struct umcg_rt_stats st;
	stats(rt, &st);
	CHECK(st.parks > 0);
}

/* ---- wait group ---------------------------------------------------------------------- */

static struct umcg_rt_wg wg;
static _Atomic long wg_sum;

static void *wg_member(void *arg)
{
	umcg_rt_sleep_ns(100000);
	atomic_fetch_add(&wg_sum, 1);
	umcg_rt_wg_done(&wg);
	return NULL;
}

static void *wg_waiter(void *arg)
{
	umcg_rt_wg_wait(&wg);
	return (void *)atomic_load(&wg_sum); /* every member counted before done */
}

TEST_T(wait_group, 60)
{
	struct umcg_rt *rt = mk(2, &umcg_rt_policy_steal);
	long rounds = th_scaled(50, 5);
	for (long r = 0; r < rounds; r++) {
		enum { N = 20, WAITERS = 3 };
		umcg_rt_wg_init(&wg);
		atomic_store(&wg_sum, 0);
		CHECK_EQ(umcg_rt_wg_add(&wg, N), 0);
		struct umcg_rt_worker *ws[WAITERS];
		for (int i = 0; i < WAITERS; i++)
			CHECK((ws[i] = umcg_rt_spawn(rt, wg_waiter, NULL, NULL)) != NULL);
		struct umcg_rt_worker *ms[N];
		for (int i = 0; i < N; i++)
			CHECK((ms[i] = umcg_rt_spawn(rt, wg_member, NULL, NULL)) != NULL);
		CHECK_EQ(umcg_rt_wg_wait(&wg), 0); /* main: a plain thread */
		CHECK_EQ(atomic_load(&wg_sum), N);
		/* joined before wg is reused: a member may still be inside wg_done */
		for (int i = 0; i < N; i++)
			CHECK_EQ(umcg_rt_join(ms[i], NULL), 0);
		for (int i = 0; i < WAITERS; i++) {
			void *ret;
			CHECK_EQ(umcg_rt_join(ws[i], &ret), 0);
			CHECK_EQ((long)(intptr_t)ret, N);
		}
	}
	struct umcg_rt_stats st;
	stats(rt, &st);
	CHECK_EQ(st.exits, rounds * 23);
}
