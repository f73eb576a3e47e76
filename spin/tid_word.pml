/*
 * tid_word.pml - the v0.4 idle-server design (spec 7.4, 11): one
 * tid-sized word next to the idle-workers head instead of the
 * idle-servers stack. An idle server CASes its tid into the word (only if
 * it is 0); the kernel, after queueing a worker, XCHGs the word with 0 and
 * wakes the server it got. Extra idle servers must coordinate in user
 * space; docs/spin.md states the chaining rule that CHAIN=2 verifies.
 *
 *   CHAIN=0  no coordination: a server whose CAS fails just sleeps.
 *            Expected counterexample: it stays asleep with a worker queued.
 *   CHAIN=1  the rule as first phrased: a server woken through the word
 *            takes a worker, then "if more work remains and another server
 *            is idle, it wakes it". Expected counterexample (the second
 *            wake-up arrives after that check, and the word is empty).
 *   CHAIN=2  hand the word on: every server that leaves the word (the
 *            kernel took it, or it withdrew itself) first wakes one parked
 *            server, which re-runs the idle protocol (re-arms the word).
 *            Parked servers re-check the word after parking. Verifies.
 *
 * NS servers, NW worker wake-ups (defaults 2 and 2). A server that takes a
 * worker runs it for the rest of the run (busy), so the property is
 * "no lost parallelism": when nothing can move any more, either no worker
 * is queued or every server is busy. Sleeping is abstracted as "block
 * until my state is RUNNING" (ttwu.pml shows that wake-ups are not lost).
 * Sequential consistency: the fences of the real protocol are assumed.
 */

#ifndef CHAIN
#define CHAIN 2
#endif
#ifndef NS
#define NS 2
#endif
/* Mutations of CHAIN=2, each expected to fail (they show why each part of
 * the rule is needed): RECHECK=0 parked servers do not re-check the word
 * after parking; WITHDRAW_PROMOTES=0 a server that withdraws itself from
 * the word does not hand it on (only one woken by the kernel does). */
#ifndef RECHECK
#define RECHECK 1
#endif
#ifndef WITHDRAW_PROMOTES
#define WITHDRAW_PROMOTES 1
#endif
/* BEHIND_TAKES=1: a server woken from behind goes for work at once (takes
 * a worker if one is queued) instead of re-running the idle protocol. */
#ifndef BEHIND_TAKES
#define BEHIND_TAKES 0
#endif
#ifndef NW
#define NW 2
#endif

#define RUNNING 1
#define IDLE    2

byte word;		/* the idle-server tid word: 0 or a server id */
byte queued;		/* workers on the idle-workers list */
byte state[NS + 1];	/* servers' state words (index 1..NS) */
bool parked[NS + 1];	/* user-space set of idle servers not in the word */
byte busy;		/* ghost: servers running a worker */

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

/* The kernel's side of a worker wake-up (T7, v0.4). */
proctype Wakeup()
{
	byte t;
	queued++;				/* push on the idle-workers list */
	atomic { t = word; word = 0 }		/* xchg(word, 0), after a full fence */
	if
	:: t ->
		assert(state[t] == IDLE);	/* the word only names idle servers */
		wake(t)
	:: else				/* no idle server in the word */
	fi
}

/* Wake one parked server (if any): CAS its parked flag 1 -> 0, then wake. */
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
	byte p;
	bool armed, ok;
top:
	state[me] = IDLE;
	atomic {				/* CAS(word, 0, me) */
		if
		:: word == 0 -> word = me; armed = 1
		:: else -> armed = 0
		fi
	}
	if
	:: armed ->
		/* full fence; Dekker with the wake-up's push-then-xchg */
		if
		:: queued > 0 ->		/* work: try to withdraw from the word */
			atomic {
				if
				:: word == me -> word = 0; ok = 1
				:: else -> ok = 0
				fi
			}
			if
			:: ok -> state[me] = RUNNING; ok = 0;
#if !WITHDRAW_PROMOTES
				goto nopromote;
#endif
				goto left
			:: else			/* the kernel took the word: it wakes us */
			fi
		:: else
		fi;
end_armed:
		(state[me] == RUNNING);		/* woken through the word */
		goto left
	:: else ->
#if CHAIN == 0
end_unarmed:
		(state[me] == RUNNING)		/* nobody will ever wake us */
#else
		parked[me] = 1;
		/* full fence; Dekker with the leaver's scan of parked[] */
		if
		:: RECHECK && word == 0 ->			/* nobody armed: try to arm ourselves */
			atomic {
				if
				:: parked[me] -> parked[me] = 0; ok = 1
				:: else -> ok = 0
				fi
			}
			if
			:: ok -> ok = 0; goto top
			:: else			/* promoted meanwhile: a wake is coming */
			fi
		:: else
		fi;
end_parked:
		(state[me] == RUNNING);		/* promoted */
#if BEHIND_TAKES
		goto nopromote;
#endif
		goto top			/* re-run the idle protocol: re-arm */
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
		skip				/* run the worker: busy from now on */
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
		od
	}
}
