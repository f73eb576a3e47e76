/*
 * worker_timeout.pml - a worker's umcg_wait() deadline against a direct
 * wake-up by its server (T4: CAS IDLE -> RUNNING, then ttwu), and the
 * server that later pops the timed-out worker from the idle-workers list.
 * src/kern/wait.c (worker_timeout_claim, worker_timeout_queue), sched.c
 * (the re-check after the futex timeout), hooks.c (the old path: the wake
 * point). See docs/spin.md, section 4.
 *
 *   PROTO=0  the code before issue 6: after the re-check, the wake point
 *            queues the worker: load the state; RUNNING (with a server):
 *            return, ETIMEDOUT; else CAS it to IDLE (failure: kill), push,
 *            sleep until RUNNING, ETIMEDOUT.
 *   PROTO=1  a transient claim: CAS IDLE -> RUNNING (a waker that loses
 *            sees RUNNING), then RUNNING -> IDLE, push, sleep, ETIMEDOUT.
 *   PROTO=2  as implemented: CAS IDLE -> IDLE|TIMEDOUT; the flag stays
 *            until a server runs the worker (the popper CASes from the word
 *            it read; the worker drops a flag that survived).
 *   CLEAR_ON_POP=1  mutation of PROTO=2: the flag is cleared when the
 *            worker is taken off the list, before the popper runs it.
 *   BYTE_CAS=1      the direct waker compares only the state byte (keeps
 *            flags), against the documented exact-word CAS.
 *
 * Ghosts: queued (the worker pushed itself), woken_by (who made it RUNNING),
 * runs (successful run CASes). Properties:
 *   (runs<=1)     at most one server runs the worker for this wait;
 *   one_outcome   at the worker's return: either 0, not queued, run by the
 *                 direct waker; or ETIMEDOUT, queued, run by the popper;
 *   !(died)       no kill ("worker state changed under the wake point");
 *   no invalid end state: the worker is always run (not lost).
 */

#ifndef PROTO
#define PROTO 2
#endif
#ifndef CLEAR_ON_POP
#define CLEAR_ON_POP 0
#endif
#ifndef BYTE_CAS
#define BYTE_CAS 0
#endif

#define RUNNING 1
#define IDLE    2
#define LOWMASK 15
#define TO      16	/* UMCG_TF_TIMEDOUT */
#define LOW(s)  ((s) & LOWMASK)

#define NOBODY 0
#define SERVER 1
#define POPPER 2
#define R_OK   1
#define R_TO   2

byte state = IDLE;	/* the worker's state word: it parked (su_yield) */
bit onlist;		/* the worker's node is on the idle-workers list */
bit queued;		/* ghost: the worker pushed itself */
byte woken_by;		/* ghost */
byte runs;		/* ghost */
bit died;		/* ghost: umcg__die() */
bit one_outcome;	/* ghost: the property, evaluated at the return */

/* Sleep until RUNNING (the idle loop without deadline; ttwu: ttwu.pml). */
#define SLEEP_UNTIL_RUNNING	atomic { LOW(state) == RUNNING }

active proctype Worker()
{
	byte st, ret;
	bit won;
	if
	:: atomic { LOW(state) == RUNNING -> ret = R_OK }	/* woken before the deadline */
	:: true ->						/* the deadline passed */
		st = state;			/* sched.c: re-check after the timeout */
		if
		:: LOW(st) == RUNNING -> ret = R_OK
		:: else ->
#if PROTO == 0
			ret = R_TO;
			st = state;		/* umcg__wake_point() */
			if
			:: LOW(st) == RUNNING -> skip	/* (b): returns at once */
			:: else ->
				atomic {
					if
					:: state == st -> state = (st & ~LOWMASK) | IDLE
					:: else -> died = 1
					fi
				}
				assert(!died);
				atomic { onlist = 1; queued = 1 }	/* push */
				SLEEP_UNTIL_RUNNING
			fi
#elif PROTO == 1
			atomic {
				if
				:: LOW(state) == IDLE -> state = RUNNING; won = 1
				:: else -> won = 0
				fi
			}
			if
			:: won ->
				state = IDLE;	/* as "RUNNING without a server" (T9) */
				atomic { onlist = 1; queued = 1 }
				SLEEP_UNTIL_RUNNING;
				ret = R_TO
			:: else -> ret = R_OK
			fi
#else
			/* worker_timeout_claim(): CAS IDLE -> IDLE|TIMEDOUT */
			atomic {
				if
				:: LOW(state) == IDLE -> state = state | TO; won = 1
				:: else -> won = 0	/* RUNNING: a wake-up won */
				fi
			}
			if
			:: won ->
				atomic { onlist = 1; queued = 1 }	/* worker_timeout_queue() */
				SLEEP_UNTIL_RUNNING;
				state = state & ~TO;	/* fetch_and: a flag that survived */
				ret = R_TO
			:: else -> ret = R_OK
			fi
#endif
		fi
	fi;
	one_outcome = (ret == R_OK && !queued && woken_by == SERVER) ||
		      (ret == R_TO && queued && woken_by == POPPER);
	assert(one_outcome)
}

/* The worker's server wakes it directly, at any moment, or never. */
active proctype Server()
{
	if
	:: skip
	:: atomic {
		if
#if BYTE_CAS
		:: LOW(state) == IDLE ->
#else
		:: state == IDLE ->	/* umcg_state_cas(w, &(IDLE), RUNNING) */
#endif
			state = RUNNING; runs++; woken_by = SERVER; assert(runs <= 1)
		:: else			/* lost: not ours to run (any more) */
		fi
	   }
	fi
}

/* A server that pops the worker from the idle-workers list and runs it. */
active proctype Popper()
{
	byte st;
end:	atomic { onlist -> onlist = 0;	/* pop_all + umcg_idle_workers_next */
#if CLEAR_ON_POP
		state = state & ~TO
#else
		skip
#endif
	}
	st = state;
	atomic {
		if
		:: LOW(st) == IDLE && state == st ->	/* CAS from the word read */
			state = RUNNING; runs++; woken_by = POPPER; assert(runs <= 1)
		:: else			/* somebody else runs it: skip it */
		fi
	}
}
