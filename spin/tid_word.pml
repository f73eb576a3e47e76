/*
 * tid_word.pml - the v0.4 idle-server design (spec 7.4, 11): one
 * tid-sized word next to the idle-workers head instead of the
 * idle-servers stack. An idle server CASes its tid into the word (only if
 * it is 0); the kernel, after queueing a worker, XCHGs the word with 0 and
 * wakes the server it got. Extra idle servers must coordinate in user
 * space ("wait behind" the published one); docs/spin.md states the
 * chaining rule that CHAIN=2 verifies.
 *
 *   CHAIN=0  no coordination: a server whose CAS fails just sleeps.
 *            Expected counterexample: it stays asleep with a worker queued.
 *   CHAIN=1  the rule as first phrased: a server woken through the word
 *            takes a worker, then "if more work remains and another server
 *            is idle, it wakes it". Expected counterexample (the second
 *            wake-up arrives after that check, and the word is empty).
 *   CHAIN=2  hand the word on: every server that leaves the word (a waker
 *            took it, or it withdrew itself) first wakes one server waiting
 *            behind, which re-runs the idle protocol (publishes itself or
 *            waits behind again). A server that waits behind re-checks the
 *            word after announcing itself. Verifies.
 *
 * Mutations of CHAIN=2, each expected to fail:
 *   RECHECK=0            waiting servers do not re-check the word
 *   WITHDRAW_PROMOTES=0  a server that withdraws itself does not chain
 *                        (only one taken by a waker does)
 *   BEHIND_TAKES=1       a server woken from behind takes work at once
 *                        instead of re-running the idle protocol
 *
 * NS servers, NW worker wake-ups (defaults 2 and 2). A server that takes a
 * worker runs it for the rest of the run (busy), so the property is "no
 * lost parallelism": when nothing can move any more, either no worker is
 * queued or every server is busy. Sleeping is abstracted as "block until
 * my state is RUNNING" (ttwu.pml shows that wake-ups are not lost).
 * Sequential consistency: the seq_cst accesses of the real protocol.
 *
 * GP=1 adds what makes a late wake-up harmless (src/idle/tid_word.c,
 * group.c taken()): the waker's exchange and its IDLE -> RUNNING CAS run in
 * one read section (two-counter epoch, as idle_servers.pml); a published
 * server's wait may time out (it makes itself RUNNING); a server that finds
 * itself taken waits until RUNNING and then for a grace period; a busy
 * server is IDLE once more while its worker runs (the server protocol);
 * NSYNC other threads wait for a grace period at any time (e.g. GC of
 * another group). Property (ghost): a waker's CAS lands in the IDLE period
 * during which it took the server from the word, never in a later one.
 *   TAKEN_GP=0  no grace period in taken(): expected counterexample
 *   GP_LOCK=0   grace periods not serialised (umcg__gp_synchronize()
 *               called concurrently): expected counterexample
 */

#ifndef CHAIN
#define CHAIN 2
#endif
#ifndef NS
#define NS 2
#endif
#ifndef NW
#define NW 2
#endif
#ifndef RECHECK
#define RECHECK 1
#endif
#ifndef WITHDRAW_PROMOTES
#define WITHDRAW_PROMOTES 1
#endif
#ifndef BEHIND_TAKES
#define BEHIND_TAKES 0
#endif
#ifndef GP
#define GP 0
#endif
#ifndef TAKEN_GP
#define TAKEN_GP 1
#endif
#ifndef GP_LOCK
#define GP_LOCK 1
#endif
#ifndef NSYNC
#define NSYNC 1
#endif
#ifndef TIMEOUTS
#define TIMEOUTS 1	/* timeouts per server (GP=1) */
#endif

#define RUNNING 1
#define IDLE    2

byte word;		/* the idle-server tid word: 0 or a server id */
byte queued;		/* workers on the idle-workers list */
byte state[NS + 1];	/* servers' state words (index 1..NS) */
bool parked[NS + 1];	/* servers waiting behind the published one */
byte busy;		/* ghost: servers running a worker */

#if GP
byte epoch;		/* gp_epoch */
byte readers[2];	/* gp_readers */
byte gplock;		/* gp_lock (GP_LOCK=1) */
byte per[NS + 1];	/* ghost: IDLE periods of each server */
#define SET_IDLE(s)	atomic { state[s] = IDLE; per[s]++ }
#else
#define SET_IDLE(s)	state[s] = IDLE
#endif

/* T6/T7's server wake: CAS IDLE -> RUNNING, then ttwu (abstracted). */
inline wake(t)
{
	atomic {
		if
		:: state[t] == IDLE -> state[t] = RUNNING
		:: else
		fi
	}
}

#if GP
inline read_lock()
{
	do
	:: e = epoch;
	   readers[e % 2]++;
	   if
	   :: epoch == e -> break
	   :: else -> readers[e % 2]--
	   fi
	od
}

/* umcg__gp_synchronize() */
inline synchronize()
{
#if GP_LOCK
	atomic { gplock == 0 -> gplock = _pid + 1; e = epoch; epoch++ }
#else
	atomic { e = epoch; epoch++ }
#endif
	(readers[e % 2] == 0);
#if GP_LOCK
	gplock = 0;
#endif
	e = 0
}

/* Some other thread of the process waits for a grace period. */
proctype OtherSync()
{
	byte e;
	synchronize()
}
#endif

/* The kernel's side of a worker wake-up (T7, v0.4; tid_word.c). */
proctype Wakeup()
{
	byte t, e, tp;
	queued++;				/* append to the idle-workers list */
#if GP
	read_lock();
	atomic { t = word; word = 0; tp = per[t] }	/* xchg(word, 0) */
	if
	:: t ->
		atomic {
			assert(per[t] == tp);	/* lands in the period it took */
			if
			:: state[t] == IDLE -> state[t] = RUNNING
			:: else
			fi
		}
	:: else
	fi;
	readers[e % 2]--			/* read_unlock */
#else
	atomic { t = word; word = 0 }		/* xchg(word, 0), after a full fence */
	if
	:: t ->
		assert(state[t] == IDLE);	/* the word only names idle servers */
		wake(t)
	:: else				/* no idle server in the word */
	fi
#endif
}

/* Wake one server waiting behind (if any): CAS its flag 1 -> 0, then wake. */
inline promote()
{
	p = 1;
	do
	:: p <= NS ->
		atomic {
			if
			:: parked[p] -> parked[p] = 0; ok = 1
			:: else -> ok = 0
			fi
		}
		if
		:: ok -> wake(p); break
		:: else -> p++
		fi
	:: else -> break
	od;
	p = 0; ok = 0
}

proctype Server(byte me)
{
	byte p, e, tmo;
	bool armed, ok;
top:
	SET_IDLE(me);
	atomic {				/* publish: CAS(word, 0, me) */
		if
		:: word == 0 -> word = me; armed = 1
		:: else -> armed = 0
		fi
	}
	if
	:: armed ->
		/* seq_cst; Dekker with the wake-up's append-then-xchg */
		if
		:: queued == 0 ->		/* no work: sleep */
end_armed:		if
			:: state[me] == RUNNING		/* taken and woken */
#if GP
			:: atomic {			/* timeout: back to RUNNING */
				tmo < TIMEOUTS && state[me] == IDLE ->
				state[me] = RUNNING; tmo++ }
#endif
			fi
		:: else
		fi;
		atomic {			/* withdraw: CAS(word, me, 0) */
			if
			:: word == me -> word = 0; ok = 1
			:: else -> ok = 0
			fi
		}
		if
		:: ok ->			/* nobody took us */
			state[me] = RUNNING;	/* restore_running */
			ok = 0;
#if !WITHDRAW_PROMOTES
			goto nopromote;
#endif
			goto left
		:: else ->			/* taken(): a waker took the word */
			(state[me] == RUNNING);
#if GP && TAKEN_GP
			synchronize();
#endif
			goto left
		fi
	:: else ->
#if CHAIN == 0
end_unarmed:
		(state[me] == RUNNING)		/* nobody will ever wake us */
#else
		parked[me] = 1;			/* wait behind */
		/* seq_cst; Dekker with the leaver's scan of parked[] */
		if
		:: RECHECK && word == 0 ->	/* nobody published: try ourselves */
			atomic {
				if
				:: parked[me] -> parked[me] = 0; ok = 1
				:: else -> ok = 0
				fi
			}
			if
			:: ok -> ok = 0; goto top
			:: else			/* chained meanwhile: a wake is coming */
			fi
		:: else
		fi;
end_parked:
		(state[me] == RUNNING);		/* chained */
#if BEHIND_TAKES
		goto nopromote;
#endif
		goto top			/* re-run the idle protocol */
#endif
	fi;
left:	/* we left the word (or, CHAIN=0, never had it) */
#if CHAIN == 2
	promote();				/* hand the word on */
#endif
nopromote:
	atomic {
		if
		:: queued > 0 -> queued--; busy++; ok = 1	/* take one worker */
		:: else -> ok = 0
		fi
	}
	if
	:: ok ->
#if CHAIN == 1
		if
		:: queued > 0 -> promote()	/* more work remains */
		:: else
		fi;
#endif
#if GP
		SET_IDLE(me);			/* run the worker: IDLE meanwhile */
		state[me] = RUNNING;		/* (the worker blocked: T6) */
#endif
		skip				/* busy from now on */
	:: else -> goto top			/* nothing to do: idle again */
	fi
}

/* When nothing can move any more: no worker queued, or every server busy. */
active proctype Monitor()
{
	timeout -> assert(queued == 0 || busy == NS)
}

init
{
	byte i = 1;
	atomic {
		do
		:: i <= NS -> state[i] = RUNNING; run Server(i); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < NW -> run Wakeup(); i++
		:: else -> break
		od;
#if GP
		i = 0;
		do
		:: i < NSYNC -> run OtherSync(); i++
		:: else -> break
		od
#endif
	}
}
