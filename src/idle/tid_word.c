/* SPDX-License-Identifier: MIT */
/*
 * tid_word.c - the v0.4 idle-server design: one word holds the tid of one
 * idle server (struct umcg_task::idle_server_tid_ptr).
 *
 * Protocol:
 *   server  state = IDLE; CAS word 0 -> own tid (seq_cst; if it fails
 *           another server is published: wait behind it, see below);
 *           re-check the idle-workers list; if work: withdraw (CAS own tid
 *           -> 0; if that fails a waker took us and will make us RUNNING);
 *           else umcg_wait().
 *   waker   (libumcg at a wake point) append (seq_cst); exchange the
 *           word with 0 (v0.5+ used xchg; v0.4 a CAS of the same effect);
 *           a non-zero tid is woken like a popped stack server (IDLE ->
 *           RUNNING, ttwu).
 *   Store-load on both sides as for the other designs (umcg_idle.h).
 *
 * The word holds one server, so a second idle server cannot be reached by
 * the waker (the race PeterZ pointed out). User space must chain: servers
 * that find the word taken wait behind it (the example scheduler keeps them
 * on an idle-servers stack that only user space pops), and a server woken
 * through the word wakes the next waiting server before it runs anything,
 * so that one can publish itself (or find work). docs/spin.md has the
 * model that shows the lost second wake-up without chaining, and that the
 * rule closes it.
 */
#include "idle/idle.h"
#include "kern/kern.h"
#include "lists/lists.h"
#include "umcg_idle.h"

UMCG_EXPORT bool umcg_idle_tid_publish(uint32_t *word, uint32_t tid)
{
	uint32_t expected = 0;
	return __atomic_compare_exchange_n(word, &expected, tid, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
}

UMCG_EXPORT bool umcg_idle_tid_withdraw(uint32_t *word, uint32_t tid)
{
	uint32_t expected = tid;
	if (__atomic_compare_exchange_n(word, &expected, 0, false, __ATOMIC_ACQ_REL,
					__ATOMIC_RELAXED))
		return true;
	/*
	 * A waker took the word: its IDLE -> RUNNING CAS and ttwu run inside a
	 * read section. Wait for it to end, so that a caller that is already
	 * RUNNING (it timed out) cannot be woken late, in its next context
	 * switch (the late-popper race, see idle_servers.c).
	 */
	umcg__gp_synchronize();
	return false;
}

bool umcg__idle_tid_take(uint32_t *word, bool at_wake_point)
{
	/* cheap check first: no RMW (no cache-line steal) when nobody is published */
	if (!__atomic_load_n(word, __ATOMIC_SEQ_CST))
		return false;
	/* exchange and state change in one read section, as for the stack */
	uint64_t e = umcg__gp_read_lock();
	uint32_t tid = __atomic_exchange_n(word, 0, __ATOMIC_SEQ_CST);
	struct umcg_ktask *wake = NULL;
	if (tid) {
		umcg__test_wake_delay();
		/* at a wake point a bad tid breaks the contract (kill), as in v0.4 */
		wake = umcg__server_make_running(tid, at_wake_point);
	}
	umcg__gp_read_unlock(e);
	if (wake)
		umcg__ttwu(wake, at_wake_point); /* after the section: see hooks.c */
	return tid != 0;
}

bool umcg__idle_tid_wake(uint64_t ptr)
{
	return umcg__idle_tid_take((uint32_t *)(uintptr_t)ptr, true);
}
