/* SPDX-License-Identifier: MIT */
/*
 * hooks.c - the kernel's two worker hooks (spec 5.1, T6/T7), done in user
 * space.
 *
 * Block point (T6), run when a worker is about to sleep:
 *   skip if LOCKED or not RUNNING; else CAS RUNNING -> BLOCKED (flags and
 *   user bits kept); if server_tid != 0, wake that server: CAS its state
 *   IDLE -> RUNNING and ttwu it on this CPU; if it was RUNNING already,
 *   no wake; anything else breaks the contract and kills the task.
 *
 * Wake point (T7), run by the worker itself after it returns from a
 * sleep:
 *   (a) LOCKED: nothing; (b) RUNNING with server_tid != 0: nothing;
 *   (c) otherwise: state -> IDLE, push the worker's node on its
 *   idle-workers list (seq_cst), pop one idle server from its
 *   idle-servers stack (if any) and wake it as in T6 (or, with the
 *   extensions of umcg_idle.h, take the published idle server tid or
 *   signal the idle eventfd), then sleep until RUNNING. If the worker is then RUNNING without a
 * server (T9: "wake without running"), it is queued again.
 *
 * The append in (c) and the first read of the idle-servers head are
 * seq_cst, and so are a server's push of its own node and its re-check of
 * the idle-workers list (umcg_idle.h, src/idle/group.c): a store-load
 * (Dekker) pattern, the one place where seq_cst is needed. In the single
 * total order of seq_cst operations one of the two stores comes first, so
 * either the worker's pop sees the server's node, or the server's
 * re-check sees the worker; a worker is never left queued while every
 * server sleeps. (seq_cst RMWs rather than fences: same cost on x86, and
 * ThreadSanitizer understands them.)
 *
 * Contract violations (unreadable words can't be detected in user space,
 * but zero heads, failed CASes and unknown servers can) kill the process
 * with SIGSEGV, as the v0.3 kernel does with force_sig(SIGSEGV).
 */
#include <errno.h>

#include "idle/idle.h"
#include "kern/kern.h"
#include "lists/lists.h"

/*
 * The server state change of T6/T8. v0.3's code compared the whole word
 * (exactly IDLE -> exactly RUNNING), which breaks as soon as user space
 * uses the user bits (tglx's review); we follow the documented meaning:
 * compare the state byte, keep flag and user bits.
 */
static bool server_make_running(struct umcg_ktask *sk)
{
	struct umcg_task *s = atomic_load_explicit(&sk->self, memory_order_acquire);
	if (!s)
		return false; /* unregistered meanwhile: nobody to wake */
	uint32_t st = umcg__load_u32(&s->state);
	for (;;) {
		uint32_t low = st & UMCG_TF_STATE_MASK;
		if (low == UMCG_TASK_RUNNING)
			return false; /* already running: no wake (T6) */
		if (low != UMCG_TASK_IDLE)
			umcg__die("server %u is in state %#x, neither IDLE nor RUNNING",
				  atomic_load_explicit(&sk->tid, memory_order_relaxed), st);
		uint32_t nst = (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_RUNNING;
		/* release: the worker's BLOCKED/IDLE store is visible to the server */
		if (__atomic_compare_exchange_n(&s->state, &st, nst, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
	}
}

static void wake_server_task(struct umcg_ktask *sk, bool current_cpu)
{
	if (server_make_running(sk))
		umcg__ttwu(sk, current_cpu);
}

struct umcg_ktask *umcg__server_make_running(uint32_t server_tid, bool die_if_unknown)
{
	struct umcg_ktask *sk = umcg__registry_lookup(server_tid);
	if (!sk) {
		if (die_if_unknown)
			umcg__die("idle server tid %u is not a registered UMCG task", server_tid);
		return NULL;
	}
	return server_make_running(sk) ? sk : NULL;
}

void umcg__wake_server(uint32_t server_tid, bool current_cpu)
{
	struct umcg_ktask *sk = umcg__registry_lookup(server_tid);
	if (!sk)
		umcg__die("server_tid %u is not a registered UMCG task", server_tid);
	wake_server_task(sk, current_cpu);
}

/* RUNNING (not LOCKED) -> BLOCKED and wake the server; 0 if not RUNNING. */
static int block_transition(struct umcg_task *t)
{
	uint32_t st = umcg__load_u32(&t->state);
	if ((st & UMCG_TF_LOCKED) || (st & UMCG_TF_STATE_MASK) != UMCG_TASK_RUNNING)
		return 0;
	uint32_t nst = (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_BLOCKED;
	if (!__atomic_compare_exchange_n(&t->state, &st, nst, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		umcg__die("worker state changed under the block point (now %#x)", st);
	uint32_t server = umcg__load_u32(&t->server_tid);
	if (server)
		umcg__wake_server(server, true);
	return 1;
}

/*
 * hook_depth counts open block/wake pairs; only the thread itself and its
 * signal handlers touch it (a handler leaves it as it found it), so the
 * atomics only keep a handler's view coherent with the code it
 * interrupted.
 */
/* k's struct if these hooks act for k (a worker, user-space backend), else NULL. */
static struct umcg_task *hooked(struct umcg_ktask *k)
{
	struct umcg_task *t = atomic_load_explicit(&k->self, memory_order_relaxed);
	/* on the kernel backend the kernel's hooks do it: backend.c */
	return t && k->worker && !umcg__on_kernel() ? t : NULL;
}

int umcg__block_point(struct umcg_ktask *k)
{
	struct umcg_task *t = hooked(k);
	if (!t)
		return 0;
	if (atomic_fetch_add(&k->hook_depth, 1) != 0)
		return 0; /* nested in a blocked section or a wake point: no-op */
	return block_transition(t);
}

int umcg__block_point_unpaired(struct umcg_ktask *k)
{
	struct umcg_task *t = hooked(k);
	if (!t)
		return 0;
	if (atomic_fetch_add(&k->hook_depth, 1) == 0 && block_transition(t))
		return 1;
	atomic_fetch_sub(&k->hook_depth, 1); /* no pair opened: no wake point follows */
	return 0;
}

/*
 * Pop one idle server from the stack at head_addr and wake it (T7/T8). The
 * pop and the server's IDLE -> RUNNING CAS run inside one read section (see
 * idle_servers.c: a late CAS must not outlive the popped server's GC); the
 * ttwu comes after the section: it touches only the (never freed) ktask,
 * so a late one is at worst spurious, and a server woken on this CPU
 * cannot preempt us inside the section and then wait for it.
 */
static bool wake_idle_server(uint64_t head_addr)
{
	/* seq_cst: the waker's half of the Dekker pair; an empty stack costs no section */
	if (!__atomic_load_n((uint64_t *)(uintptr_t)head_addr, __ATOMIC_SEQ_CST))
		return false;
	struct umcg_ktask *wake = NULL;
	uint64_t e = umcg__gp_read_lock();
	struct umcg_task *s = umcg__isl_pop_locked((uint64_t *)(uintptr_t)head_addr);
	if (s) {
		umcg__test_wake_delay();
		uint32_t tid = umcg__load_u32(&s->server_tid);
		struct umcg_ktask *sk = umcg__registry_lookup(tid);
		if (!sk || atomic_load_explicit(&sk->self, memory_order_relaxed) != s)
			umcg__die("popped idle server's server_tid %u does not name it", tid);
		if (server_make_running(sk))
			wake = sk;
	}
	/* none found: documented as not an error (docs/spec-choices.md) */
	umcg__gp_read_unlock(e);
	if (wake)
		umcg__ttwu(wake, true);
	return s != NULL;
}

/*
 * After the (seq_cst) append: find an idle server through the worker's
 * mechanisms, first one that wakes somebody wins (umcg_idle.h): the v0.3
 * stack, the v0.4 tid word, the eventfd.
 */
void umcg__wake_idle_server(struct umcg_task *t)
{
	uint64_t p = umcg__load_u64(&t->idle_servers_ptr);
	if (p && wake_idle_server(p))
		return;
	p = umcg__load_u64(&t->idle_server_tid_ptr);
	if (p && umcg__idle_tid_wake(p))
		return;
	p = umcg__load_u64(&t->idle_fd_ptr);
	if (p)
		umcg__idle_fd_signal(p);
}

int umcg__wake_point(struct umcg_ktask *k)
{
	struct umcg_task *t = hooked(k);
	if (!t)
		return 0;
	int depth = atomic_load(&k->hook_depth);
	if (depth > 1) {
		atomic_store(&k->hook_depth, depth - 1); /* end of a nested pair */
		return 0;
	}
	atomic_store(&k->hook_depth, 1); /* also for a wake point without block point */
	int parked = 0;
	for (;;) {
		uint32_t st = umcg__load_u32(&t->state);
		if ((st & UMCG_TF_LOCKED) || /* (a) */
		    ((st & UMCG_TF_STATE_MASK) == UMCG_TASK_RUNNING &&
		     umcg__load_u32(&t->server_tid) != 0)) { /* (b) */
			atomic_store(&k->hook_depth, 0);
			return parked;
		}
		/* (c) */
		uint32_t nst = (st & ~UMCG_TF_STATE_MASK) | UMCG_TASK_IDLE;
		if (!__atomic_compare_exchange_n(&t->state, &st, nst, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			umcg__die("worker state changed under the wake point (now %#x)", st);
		uint64_t head = umcg__load_u64(&t->idle_workers_ptr);
		if (!head)
			umcg__die("worker has no idle_workers_ptr");
		umcg__iwl_push((uint64_t *)(uintptr_t)head, t);
		/* seq_cst append, then seq_cst reads: see the header comment. */
		umcg__wake_idle_server(t);
		umcg__idle_loop(k, 0, false);
		parked = 1;
	}
}
