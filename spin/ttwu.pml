/*
 * ttwu.pml - the sleep/wake protocol of src/kern/kern.h and sched.c:
 * umcg__idle_loop() (the sleeper) against umcg__ttwu() preceded by the
 * caller's state write (the wakers). See docs/spin.md.
 *
 *   ORDER=0  as implemented: state = RUNNING; wake_seq++; if (sleeping) wake
 *   ORDER=1  the check moved up: state = RUNNING; s = sleeping; wake_seq++;
 *            if (s) wake
 *   ORDER=2  the check before the state write: s = sleeping;
 *            state = RUNNING; wake_seq++; if (s) wake
 *   WEAK=0   sequential consistency (spin's own semantics)
 *   WEAK=1   the waker's state store is not seq_cst: it may stay in a
 *            store buffer, invisible to the sleeper, until the waker's next
 *            release RMW (the fetch_add on wake_seq) publishes it; its
 *            later seq_cst load of `sleeping` may execute before that.
 *
 * Expected: ORDER=0 verifies with WEAK=0 and WEAK=1; ORDER=1 verifies under
 * SC but loses a wake-up with WEAK=1; ORDER=2 loses one even under SC.
 *
 * The sleeper runs ROUNDS rounds of { state = IDLE; idle loop }; waker r
 * acts once the sleeper has set IDLE in round r (as a worker that popped
 * the server from the idle-servers stack does), and may still be running
 * its ttwu when the sleeper is in round r+1 (a stale wake). A lost wake-up
 * is a state where the sleeper is blocked in FUTEX_WAIT forever: spin
 * reports it as an invalid end state.
 */

#ifndef ORDER
#define ORDER 0
#endif
#ifndef WEAK
#define WEAK 0
#endif
#ifndef ROUNDS
#define ROUNDS 2
#endif
#ifndef SPURIOUS
#define SPURIOUS 1	/* spurious FUTEX_WAIT returns allowed in a run */
#endif

#define RUNNING 1
#define IDLE    2

byte state = RUNNING;	/* the sleeper's ABI state word (low byte) */
byte wake_seq;		/* ktask->wake_seq: the futex word */
bit sleeping;		/* ktask->sleeping */
byte round;		/* ghost: the sleeper's current round */
byte spurious;		/* spurious wake-ups used so far */

/* ---- the futex: a queue of waiters on wake_seq ---------------------------- */
chan fq = [2] of { byte };	/* waiter pids, FIFO */
bool inq[8];		/* inq[pid]: pid is queued (blocked) */

/* FUTEX_WAIT(&wake_seq, val): atomically compare and enqueue, then block
 * until a FUTEX_WAKE dequeues us (or a bounded spurious return). */
inline futex_wait(val)
{
	atomic {
		if
		:: wake_seq == val -> inq[_pid] = 1; fq ! _pid
		:: else		/* EAGAIN */
		fi
	}
	if
	:: inq[_pid] == 0	/* woken (or never queued) */
	:: atomic { inq[_pid] && spurious < SPURIOUS ->	/* spurious return */
		spurious++; fq ?? eval(_pid); inq[_pid] = 0 }
	fi
}

/* FUTEX_WAKE(&wake_seq, 1): dequeue one waiter, if any. */
inline futex_wake()
{
	atomic {
		if
		:: nempty(fq) -> fq ? w; inq[w] = 0; w = 0
		:: empty(fq)
		fi
	}
}

/* ---- the waker's store of the state word --------------------------------- */
#if WEAK
bit pend;	/* the waker's store of RUNNING sits in its store buffer */
#define STORE_RUNNING	pend = 1
#define PUBLISH		(pend == 0)	/* a release RMW waits for earlier stores */

active proctype StoreBuffer()
{
end:	do
	:: atomic { pend -> state = RUNNING; pend = 0 }
	od
}
#else
#define STORE_RUNNING	state = RUNNING
#define PUBLISH		true
#endif

/* ---- umcg__idle_loop(k, 0, false) ----------------------------------------- */
active proctype Sleeper()
{
	byte seq;
	do
	:: round < ROUNDS ->
		atomic { state = IDLE; round++ }	/* server: own state = IDLE */
		do
		:: sleeping = 1;			/* seq_cst store */
		   seq = wake_seq;			/* seq_cst load */
		   if
		   :: state == RUNNING -> break	/* acquire load */
		   :: else
		   fi;
		   futex_wait(seq)			/* 0 / EAGAIN / spurious: re-check */
		od;
		sleeping = 0;
		seq = 0
	:: else -> break
	od
}

/* ---- a waker: the caller's state write, then umcg__ttwu() ----------------- */
proctype Waker(byte r)
{
	bit s;
	byte w;
	/* acts on round r: the state it changes is the sleeper's IDLE of round r */
	atomic { round == r && state == IDLE -> skip }
#if ORDER == 2
	s = sleeping;
#endif
	STORE_RUNNING;
#if ORDER == 1
	s = sleeping;
#endif
	atomic { PUBLISH -> wake_seq++ }	/* seq_cst fetch_add */
#if ORDER == 0
	s = sleeping;				/* seq_cst load */
#endif
	if
	:: s -> futex_wake()
	:: else
	fi
}

init
{
	byte r = 1;
	atomic {
		do
		:: r <= ROUNDS -> run Waker(r); r++
		:: else -> break
		od
	}
}
