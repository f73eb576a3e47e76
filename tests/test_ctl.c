/* SPDX-License-Identifier: MIT */
/*
 * test_ctl.c - umcg_ctl(): every error path, the validation order of spec
 * 6.1 (plus our documented deviations, see src/kern/ctl.c), successful
 * registration cycles, fork (T12), thread exit (T11) and the ABI layout.
 *
 * "Not registered" is checked three ways: umcg_self() == NULL, UNREGISTER
 * fails with EINVAL, and another registered thread cannot wake the tid
 * (WAKE_ONLY -> ESRCH), i.e. the library's tid registry forgot it too.
 *
 * Worker registrations that must fail run under a short test timeout: a
 * registration that wrongly succeeds would sleep forever (no server).
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "umcg.h"

#define USER_BIT 0x01000000u

static uint64_t iwl_head; /* idle-workers head for the worker structs */

static void init_server(struct umcg_task *t)
{
	memset(t, 0, sizeof *t);
	t->state = UMCG_TASK_RUNNING;
	t->api_version = UMCG_API_VERSION;
}

static void init_worker(struct umcg_task *t)
{
	memset(t, 0, sizeof *t);
	t->state = UMCG_TASK_IDLE;
	t->api_version = UMCG_API_VERSION;
	t->idle_workers_ptr = (uint64_t)(uintptr_t)&iwl_head;
}

/* ---- probe: can a registered thread wake `tid`? ------------------------- */

struct probe {
	uint32_t tid;
	int ret, err;
};

static void *probe_main(void *arg)
{
	struct probe *p = arg;
	static __thread struct umcg_task me;
	init_server(&me);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &me), 0);
	me.next_tid = p->tid;
	errno = 0;
	p->ret = umcg_wait(UMCG_WAIT_WAKE_ONLY, 0);
	p->err = errno;
	me.next_tid = 0;
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

/* 0 if a registered thread can WAKE_ONLY `tid`, else the errno it got. */
static int probe_wake(uint32_t tid)
{
	struct probe p = {.tid = tid};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, probe_main, &p), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	if (p.ret == 0)
		return 0;
	CHECK_EQ(p.ret, -1);
	return p.err;
}

/* The calling thread is not a UMCG task, by every observable. */
#define CHECK_UNREGISTERED()                                                                       \
	do {                                                                                       \
		CHECK(umcg_self() == NULL);                                                        \
		CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);                            \
		CHECK_EQ(probe_wake(umcg_gettid()), ESRCH);                                        \
	} while (0)

/* The calling thread is registered with `t`. */
#define CHECK_REGISTERED(t)                                                                        \
	do {                                                                                       \
		CHECK(umcg_self() == (t));                                                         \
		CHECK_EQ(probe_wake(umcg_gettid()), 0);                                            \
	} while (0)

/* A good server registration still works afterwards (no half state left). */
static void check_can_register(void)
{
	static struct umcg_task good;
	init_server(&good);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &good), 0);
	CHECK_REGISTERED(&good);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* ---- ABI layout ---------------------------------------------------------- */

static __thread struct umcg_task tls_task;
static struct umcg_task static_tasks[3];

TEST(abi_layout)
{
	/* volatile: make the compiler produce these at run time */
	volatile size_t sz = sizeof(struct umcg_task), al = alignof(struct umcg_task);
	CHECK_EQ(sz, 64);
	CHECK_EQ(al, 64);
	CHECK_EQ(offsetof(struct umcg_task, state), 0);
	CHECK_EQ(offsetof(struct umcg_task, api_version), 4);
	CHECK_EQ(offsetof(struct umcg_task, server_tid), 8);
	CHECK_EQ(offsetof(struct umcg_task, next_tid), 12);
	CHECK_EQ(offsetof(struct umcg_task, idle_servers_ptr), 16);
	CHECK_EQ(offsetof(struct umcg_task, idle_workers_ptr), 24);
	/* libumcg's extensions live in v0.3's padding (bytes 32-63) */
	CHECK_EQ(offsetof(struct umcg_task, idle_fd_ptr), 32);
	CHECK_EQ(offsetof(struct umcg_task, idle_server_tid_ptr), 40);
	CHECK_EQ(offsetof(struct umcg_task, reserved), 48);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->state), 4);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->api_version), 4);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->server_tid), 4);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->next_tid), 4);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->idle_servers_ptr), 8);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->idle_workers_ptr), 8);
	CHECK_EQ(sizeof(((struct umcg_task *)0)->reserved), 16);

	/* instances are 64-byte aligned wherever they live */
	struct umcg_task on_stack;
	struct umcg_task *heap = aligned_alloc(alignof(struct umcg_task), sizeof *heap);
	CHECK(heap != NULL);
	volatile uintptr_t a[] = {(uintptr_t)&tls_task, (uintptr_t)&static_tasks[0],
				  (uintptr_t)&static_tasks[1], (uintptr_t)&on_stack,
				  (uintptr_t)heap};
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
		CHECK_EQ(a[i] % 64, 0);
	CHECK_EQ((uintptr_t)&static_tasks[2] - (uintptr_t)&static_tasks[1], 64);
	free(heap);

	/* the uapi constants */
	CHECK_EQ(UMCG_API_VERSION, 1);
	CHECK_EQ(UMCG_TASK_NONE, 0);
	CHECK_EQ(UMCG_TASK_RUNNING, 1);
	CHECK_EQ(UMCG_TASK_IDLE, 2);
	CHECK_EQ(UMCG_TASK_BLOCKED, 3);
	CHECK_EQ(UMCG_TF_STATE_MASK, 0xff);
	CHECK_EQ(UMCG_TF_LOCKED, 0x100);
	CHECK_EQ(UMCG_TF_USER_MASK, 0xff000000u);
	CHECK_EQ(UMCG_CTL_REGISTER, 0x1);
	CHECK_EQ(UMCG_CTL_UNREGISTER, 0x2);
	CHECK_EQ(UMCG_CTL_WORKER, 0x10000);
	CHECK_EQ(UMCG_WAIT_WAKE_ONLY, 1);
	CHECK_EQ(UMCG_WAIT_WF_CURRENT_CPU, 2);
	CHECK_EQ(UMCG_IDLE_NODE_DELETED, 1);
}

/* ---- unregister --------------------------------------------------------- */

TEST(unregister_when_not_registered)
{
	CHECK(umcg_self() == NULL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);
	/* after a register/unregister cycle, too */
	static struct umcg_task t;
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

TEST(unregister_with_self)
{
	static struct umcg_task t;
	init_server(&t);
	/* not registered, self != NULL */
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, &t), EINVAL);
	CHECK_UNREGISTERED();

	/* registered, self != NULL (even the registered struct): refused, still registered */
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, &t), EINVAL);
	static struct umcg_task other;
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, &other), EINVAL);
	CHECK_REGISTERED(&t);
	/* UNREGISTER with another bit is not "flags == UNREGISTER": step 2, no REGISTER bit */
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER | UMCG_CTL_WORKER, NULL), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER | 0x4, NULL), EINVAL);
	CHECK_REGISTERED(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* ---- flags validation (step 2) ------------------------------------------ */

TEST_T(register_bit_missing, 60)
{
	static struct umcg_task s, w;
	init_server(&s);
	init_worker(&w);
	const uint32_t bad[] = {
	    0,		UMCG_CTL_WORKER,       0x4,
	    0x8,	UMCG_CTL_WORKER | 0x4, UMCG_CTL_UNREGISTER | UMCG_CTL_WORKER,
	    0x80000000u};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_ERR(umcg_ctl(bad[i], &s), EINVAL);
		CHECK_ERR(umcg_ctl(bad[i], &w), EINVAL);
		/* flags are checked before the copy: NULL self is still EINVAL */
		CHECK_ERR(umcg_ctl(bad[i], NULL), EINVAL);
		CHECK_UNREGISTERED();
	}
	check_can_register();
}

TEST_T(register_and_unregister_bits, 60)
{
	static struct umcg_task s, w;
	init_server(&s);
	init_worker(&w);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_UNREGISTER, &s), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_UNREGISTER, NULL), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_UNREGISTER | UMCG_CTL_WORKER, &w), EINVAL);
	CHECK_UNREGISTERED();
	check_can_register();
}

TEST_T(register_unknown_bit, 60)
{
	static struct umcg_task s, w;
	init_server(&s);
	init_worker(&w);
	const uint32_t extra[] = {0x4, 0x8, 0x100, 0x8000, 0x20000, 0x80000000u};
	for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | extra[i], &s), EINVAL);
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER | extra[i], &w), EINVAL);
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | extra[i], NULL), EINVAL);
		CHECK_UNREGISTERED();
	}
	check_can_register();
}

/* ---- already registered (step 3, before the copy) ----------------------- */

TEST_T(double_registration, 60)
{
	static struct umcg_task t, again, w;
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	struct umcg_task before = t;

	init_server(&again);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &again), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &t), EINVAL);
	/* EINVAL wins over EFAULT: the copy is never attempted */
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, NULL), EINVAL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, NULL), EINVAL);
	/* ... and over the api_version answer (step 5 returns 1) */
	again.api_version = 1234;
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &again), EINVAL);
	/* a registered thread cannot become a worker either (must not sleep) */
	init_worker(&w);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &w), EINVAL);
	CHECK_EQ(umcg_state_load(&w), UMCG_TASK_IDLE);

	/* still registered with the first struct, which is untouched */
	CHECK_REGISTERED(&t);
	CHECK(memcmp(&before, &t, sizeof t) == 0);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* ---- the copy (step 4) --------------------------------------------------- */

TEST(null_self)
{
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, NULL), EFAULT);
	CHECK_UNREGISTERED();
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, NULL), EFAULT);
	CHECK_UNREGISTERED();
	check_can_register();
}

TEST(unmapped_self)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p =
	    mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	struct umcg_task good;
	init_server(&good);
	memcpy(p, &good, sizeof good); /* it would be valid if it were still there */
	CHECK_EQ(munmap(p, (size_t)pg), 0);
	/*
	 * Both calls before CHECK_UNREGISTERED(): its probe thread may map
	 * something at p (it did in the static test binaries of kernel/).
	 */
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, (struct umcg_task *)(void *)p), EFAULT);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, (struct umcg_task *)(void *)p),
		  EFAULT);
	CHECK_UNREGISTERED();

	/* a mapped but unreadable page */
	p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	memcpy(p, &good, sizeof good);
	CHECK_EQ(mprotect(p, (size_t)pg, PROT_NONE), 0);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, (struct umcg_task *)(void *)p), EFAULT);
	CHECK_UNREGISTERED();
	CHECK_EQ(munmap(p, (size_t)pg), 0);
	check_can_register();
}

/*
 * All 64 bytes are copied, not just the 32 bytes of named fields: a struct
 * whose padding half lies on an unmapped page is EFAULT. That pointer is
 * necessarily misaligned (pages are multiples of 64), so this also shows
 * the copy comes before the alignment check. The last 64-byte slot of the
 * page is fine.
 */
TEST(self_crossing_into_unmapped_page)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p =
	    mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	CHECK_EQ(munmap(p + pg, (size_t)pg), 0);
	struct umcg_task good;
	init_server(&good);

	char *tail = p + pg - 32; /* fields mapped, reserved[] on the unmapped page */
	memcpy(tail, &good, 32);
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, (struct umcg_task *)(void *)tail), EFAULT);
	CHECK_UNREGISTERED();
	for (int off = 1; off < 64; off += 7) {
		char *q = p + pg - 64 + off;
		memcpy(q, &good, (size_t)(64 - off));
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, (struct umcg_task *)(void *)q), EFAULT);
		CHECK_UNREGISTERED();
	}

	char *last = p + pg - 64; /* aligned, entirely mapped */
	memcpy(last, &good, sizeof good);
	struct umcg_task *lt = (struct umcg_task *)(void *)last;
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, lt), 0);
	CHECK_REGISTERED(lt);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
	CHECK_EQ(munmap(p, (size_t)pg), 0);
}

/* ---- alignment (step 4b, our deviation) --------------------------------- */

TEST_T(misaligned_self, 60)
{
	static _Alignas(64) char buf[256];
	struct umcg_task good;
	const int offs[] = {1, 4, 8, 16, 32, 63};
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		char *q = buf + 64 + offs[i];
		struct umcg_task *mt = (struct umcg_task *)(void *)q;
		init_server(&good);
		memcpy(q, &good, sizeof good);
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, mt), EINVAL);
		CHECK_UNREGISTERED();
		init_worker(&good);
		memcpy(q, &good, sizeof good);
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, mt), EINVAL);
		CHECK_UNREGISTERED();
		/* alignment is checked before api_version (which would return 1) */
		init_server(&good);
		good.api_version = 1234;
		memcpy(q, &good, sizeof good);
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, mt), EINVAL);
		CHECK_UNREGISTERED();
	}
	/* the same bytes at an aligned address register fine */
	init_server(&good);
	memcpy(buf + 64, &good, sizeof good);
	struct umcg_task *at = (struct umcg_task *)(void *)(buf + 64);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, at), 0);
	CHECK_REGISTERED(at);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* ---- api_version (step 5) ------------------------------------------------ */

TEST_T(api_version, 60)
{
	static struct umcg_task t;
	const uint32_t bad[] = {0, 2, 1234, 0xffffffffu};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		init_server(&t);
		t.api_version = bad[i];
		CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 1);
		CHECK_UNREGISTERED();
		init_worker(&t);
		t.api_version = bad[i];
		CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), 1);
		CHECK_UNREGISTERED();
	}
	/* version 1 -> 0 (spec 9.2 umcg_api_version) */
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* The version answer comes before every field check (steps 6-8). */
TEST_T(api_version_before_field_checks, 60)
{
	static struct umcg_task t;
	init_server(&t);
	t.api_version = 2;
	t.server_tid = 5;
	t.next_tid = 7;
	t.state = UMCG_TASK_IDLE | UMCG_TF_LOCKED;
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 1);
	CHECK_UNREGISTERED();

	init_worker(&t);
	t.api_version = 0;
	t.server_tid = 5;
	t.next_tid = 7;
	t.state = UMCG_TASK_RUNNING;
	t.idle_workers_ptr = 0;
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), 1);
	CHECK_UNREGISTERED();
	check_can_register();
}

/* ---- tids (step 6) ------------------------------------------------------- */

TEST_T(nonzero_tids, 60)
{
	static struct umcg_task t;
	const uint32_t tids[] = {1, 0x3fffffffu, 0xffffffffu, 0 /* own tid, filled in */};
	for (size_t i = 0; i < sizeof tids / sizeof tids[0]; i++) {
		uint32_t tid = tids[i] ? tids[i] : umcg_gettid();
		init_server(&t);
		t.server_tid = tid;
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &t), EINVAL);
		CHECK_UNREGISTERED();
		init_server(&t);
		t.next_tid = tid;
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &t), EINVAL);
		CHECK_UNREGISTERED();
		init_worker(&t);
		t.server_tid = tid;
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), EINVAL);
		CHECK_UNREGISTERED();
		init_worker(&t);
		t.next_tid = tid;
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), EINVAL);
		CHECK_UNREGISTERED();
	}
	check_can_register();
}

/* ---- state (steps 7, 8): exact 32-bit compare ---------------------------- */

TEST_T(server_bad_state, 60)
{
	static struct umcg_task t;
	const uint32_t bad[] = {
	    UMCG_TASK_NONE,
	    UMCG_TASK_IDLE,
	    UMCG_TASK_BLOCKED,
	    4,
	    0xff,
	    UMCG_TASK_RUNNING | UMCG_TF_LOCKED,
	    UMCG_TASK_RUNNING | USER_BIT,
	    UMCG_TASK_RUNNING | 0x80000000u,
	    UMCG_TASK_RUNNING | 0x10000u, /* reserved bits 16-23 */
	    UMCG_TASK_RUNNING | 0x200u,	  /* unknown flag */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		init_server(&t);
		t.state = bad[i];
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER, &t), EINVAL);
		CHECK_EQ(t.state, bad[i]); /* not written */
		CHECK_UNREGISTERED();
	}
	check_can_register();
}

TEST_T(worker_bad_state, 60)
{
	static struct umcg_task t;
	const uint32_t bad[] = {
	    UMCG_TASK_NONE,
	    UMCG_TASK_RUNNING,
	    UMCG_TASK_BLOCKED,
	    UMCG_TASK_IDLE | UMCG_TF_LOCKED,
	    UMCG_TASK_IDLE | USER_BIT,
	    UMCG_TASK_IDLE | 0x10000u,
	    UMCG_TASK_RUNNING | UMCG_TF_LOCKED,
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		init_worker(&t);
		t.state = bad[i];
		CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), EINVAL);
		CHECK_EQ(t.state, bad[i]);
		CHECK_UNREGISTERED();
	}
	check_can_register();
}

TEST_T(worker_without_idle_workers_ptr, 60)
{
	static struct umcg_task t;
	init_worker(&t);
	t.idle_workers_ptr = 0;
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), EINVAL);
	CHECK_UNREGISTERED();
	/* idle_servers_ptr set does not help */
	t.idle_servers_ptr = (uint64_t)(uintptr_t)&iwl_head;
	CHECK_ERR(umcg_ctl(UMCG_CTL_REGISTER | UMCG_CTL_WORKER, &t), EINVAL);
	CHECK_UNREGISTERED();
	/* nothing was queued */
	CHECK_EQ(__atomic_load_n(&iwl_head, __ATOMIC_ACQUIRE), 0);
	check_can_register();
}

/* ---- success ------------------------------------------------------------- */

TEST(server_register_unregister_cycles)
{
	static struct umcg_task a, b;
	init_server(&a);
	init_server(&b);
	/* the idle-list words and reserved[] are not validated for servers */
	b.idle_servers_ptr = 0x1234;
	b.idle_workers_ptr = 0x5678;
	b.reserved[0] = ~0ull;
	b.reserved[1] = 42;
	for (int i = 0; i < 5; i++) {
		struct umcg_task *t = (i & 1) ? &b : &a;
		struct umcg_task before = *t;
		CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, t), 0);
		CHECK_REGISTERED(t);
		/* registration does not write the struct */
		CHECK(memcmp(&before, t, sizeof *t) == 0);
		CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
		CHECK(memcmp(&before, t, sizeof *t) == 0);
		CHECK_UNREGISTERED();
	}
}

TEST(umcg_self_and_gettid)
{
	CHECK(umcg_self() == NULL);
	CHECK_EQ(umcg_gettid(), (uint32_t)syscall(SYS_gettid));
	CHECK_EQ(umcg_gettid(), (uint32_t)getpid()); /* the test runs on a main thread */
	static struct umcg_task t;
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	CHECK(umcg_self() == &t);
	CHECK(umcg_self() == &t);
	/* a registered struct is usable through umcg_self() */
	t.server_tid = umcg_gettid();
	CHECK_EQ(umcg_self()->server_tid, umcg_gettid());
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK(umcg_self() == NULL);
}

/* Registrations are per thread: a second thread sees its own, or NULL. */
struct reg_thread {
	struct umcg_task *main_task;
	int ok;
};

static void *reg_thread_main(void *arg)
{
	struct reg_thread *r = arg;
	static __thread struct umcg_task me;
	CHECK(umcg_self() == NULL);
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);
	init_server(&me);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &me), 0);
	CHECK(umcg_self() == &me);
	CHECK(umcg_self() != r->main_task);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	r->ok = 1;
	return NULL;
}

TEST(registration_is_per_thread)
{
	static struct umcg_task t;
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	struct reg_thread r = {.main_task = &t};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, reg_thread_main, &r), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(r.ok, 1);
	CHECK_REGISTERED(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* ---- fork (T12, spec 9.2 register_and_fork) ------------------------------ */

TEST(register_and_fork)
{
	CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);
	static struct umcg_task t;
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	uint32_t parent_tid = umcg_gettid();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* th_fail() _exits non-zero: the parent sees it */
		CHECK(umcg_self() == NULL);
		CHECK_EQ(umcg_gettid(), (uint32_t)syscall(SYS_gettid));
		CHECK(umcg_gettid() != parent_tid);
		CHECK_ERR(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), EINVAL);
		CHECK_ERR(umcg_wait(0, 0), EINVAL);
		/* the child registers itself fresh (its copy of t is still RUNNING) */
		CHECK_EQ(t.state, UMCG_TASK_RUNNING);
		CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
		CHECK(umcg_self() == &t);
		/* the parent's registration did not leak into the child's registry */
		t.next_tid = parent_tid;
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
		/* but the child itself is found under its own tid */
		t.next_tid = umcg_gettid();
		CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
		t.next_tid = 0;
		CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
		CHECK(umcg_self() == NULL);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	/* the parent is unaffected */
	CHECK(umcg_self() == &t);
	t.next_tid = parent_tid;
	CHECK_EQ(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), 0);
	t.next_tid = 0;
	CHECK_REGISTERED(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}

/* A second registered thread in the parent is not a UMCG task in the child. */
static _Atomic uint32_t fork_peer_tid;
static _Atomic int fork_peer_stop;

static void *fork_peer_main(void *arg)
{
	static __thread struct umcg_task me;
	init_server(&me);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &me), 0);
	fork_peer_tid = umcg_gettid();
	while (!fork_peer_stop)
		usleep(1000);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	return NULL;
}

TEST(fork_with_registered_peer_thread)
{
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, fork_peer_main, NULL), 0);
	while (!fork_peer_tid)
		usleep(100);
	uint32_t peer = fork_peer_tid;
	CHECK_EQ(probe_wake(peer), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		static struct umcg_task c;
		init_server(&c);
		CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &c), 0);
		c.next_tid = peer;
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
		c.next_tid = 0;
		CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	CHECK_EQ(probe_wake(peer), 0); /* still registered in the parent */
	fork_peer_stop = 1;
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(probe_wake(peer), ESRCH);
}

/* ---- exit without unregister (T11) --------------------------------------- */

static void *register_and_exit(void *arg)
{
	static __thread struct umcg_task me;
	init_server(&me);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &me), 0);
	*(uint32_t *)arg = umcg_gettid();
	return NULL; /* no UNREGISTER */
}

static void *register_and_pthread_exit(void *arg)
{
	register_and_exit(arg);
	pthread_exit(NULL);
}

TEST(exit_without_unregister)
{
	enum { N = 20 };
	uint32_t tids[N] = {0};
	for (int i = 0; i < N; i++) {
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL,
					(i & 1) ? register_and_pthread_exit : register_and_exit,
					&tids[i]),
			 0);
		CHECK_EQ(pthread_join(th, NULL), 0);
		CHECK(tids[i] != 0);
	}
	static struct umcg_task t;
	init_server(&t);
	CHECK_EQ(umcg_ctl(UMCG_CTL_REGISTER, &t), 0);
	for (int i = 0; i < N; i++) {
		t.next_tid = tids[i];
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY, 0), ESRCH);
		CHECK_ERR(umcg_wait(UMCG_WAIT_WAKE_ONLY | UMCG_WAIT_WF_CURRENT_CPU, 0), ESRCH);
	}
	/* a context switch to it is ESRCH too, and does not sleep */
	umcg_state_store(&t, UMCG_TASK_IDLE);
	t.next_tid = tids[0];
	CHECK_ERR(umcg_wait(0, 0), ESRCH);
	CHECK_EQ(umcg_state_load(&t), UMCG_TASK_IDLE);
	umcg_state_store(&t, UMCG_TASK_RUNNING);
	t.next_tid = 0;
	/* new threads still register fine (the exited ones' records were recycled) */
	CHECK_EQ(probe_wake(umcg_gettid()), 0);
	CHECK_EQ(umcg_ctl(UMCG_CTL_UNREGISTER, NULL), 0);
	CHECK_UNREGISTERED();
}
