/*
 * detect.pml - transparent block detection (src/detect/, docs/detection.md):
 * the detection word `det` between a worker and its server's watcher.
 *
 * The worker makes CALLS calls; each is, nondeterministically, a lazy
 * wrapped call (det USER -> SYSCALL, call, CAS SYSCALL -> USER, park if
 * taken) or a raw call (det untouched; parked by the switch-in alarm's
 * signal), and either sleeps or not. A sleep writes a "slept" record; the
 * wake-up writes a "switched in" record and, if the alarm is armed, makes
 * the detection signal pending, delivered before the worker runs user code
 * again (the kernel's promise; late delivery is outside the model). A park
 * (T7) sleeps inside libumcg (det LIB) and is run again by the server.
 *
 * The watcher (takeover.c: umcg__det_check) loads det, then the newest
 * record, and takes a USER/SYSCALL worker whose newest record says "slept":
 * CAS det -> TAKING; for a raw call arm the alarm and look again (switched
 * in meanwhile: disarm, give up); make the worker BLOCKED; det TAKEN_*.
 *
 * Checked: whenever the worker runs its own code it is RUNNING, and its det
 * is USER or TAKING (a watcher deciding about a sleep that just ended, which
 * it then gives up): it never runs user code BLOCKED or taken; every
 * take-over is followed by exactly one park; only a call that really
 * slept is reported; no deadlock.
 *
 *   ORDER_RING_FIRST=1  the watcher reads the record before det
 *   NO_RECHECK=1        no second look at the ring after the CAS (after
 *                       arming the alarm, for a raw sleep): the det word
 *                       alone has ABA (SYSCALL, returned, SYSCALL again)
 *   BLOCK_BEFORE_ARM=1  make the worker BLOCKED before arming
 *   READ_SERVER_LATE=1  the watcher reads server_tid after publishing
 *                       TAKEN_* (the bug found at the session-2 merge: the
 *                       worker may have parked and been run by the other
 *                       server by then, which is then woken instead)
 *
 * Server identity: two servers. `srv` is the worker's server_tid; a server
 * that runs the worker waits (`waiting`) until the watcher wakes it after a
 * take-over (T6 wakes the worker's own server). A parked worker is run by
 * any server that is not waiting. Checked: the server woken is the one
 * that held the worker when it was made BLOCKED, and at the end only the
 * worker's current server is still holding it (no server waits for ever).
 *   HANDLER=0           no signal handler (another signal's) that makes a
 *                       call of its own after the worker's call woke
 *   LEAVE_USER_LOOPS=1  umcg__det_sys_leave() as it was: it did not accept
 *                       USER (a handler parked us during our call) and
 *                       spun forever
 *   WATCHERS=2          two threads run the check at once: the server's
 *                       watcher and the server itself before it sleeps
 *                       (sched.c umcg__idle_loop_watch), or a stale watcher
 *                       of a server that ran the worker before
 *
 * The handler: a signal (not the detection signal) that wakes the worker
 * from its call, or arrives after it, runs a handler that makes a lazy call
 * itself (a wrapper, or a libc call libumcg interposes). Its
 * umcg__det_sys_enter parks a pending take-over first; if that take-over
 * was of the interrupted call (TAKEN_SYS), the outer call's
 * umcg__det_sys_leave later finds det USER and must just return.
 */

#ifndef CALLS
#define CALLS 3
#endif
#ifndef ORDER_RING_FIRST
#define ORDER_RING_FIRST 0
#endif
#ifndef NO_RECHECK
#define NO_RECHECK 0
#endif
#ifndef BLOCK_BEFORE_ARM
#define BLOCK_BEFORE_ARM 0
#endif
#ifndef READ_SERVER_LATE
#define READ_SERVER_LATE 0
#endif
#ifndef HANDLER
#define HANDLER 1
#endif
#ifndef LEAVE_USER_LOOPS
#define LEAVE_USER_LOOPS 0
#endif
#ifndef WATCHERS
#define WATCHERS 1
#endif

mtype = { USER, SYSCALL, LIB, TAKING, TAKEN_SYS, TAKEN_RAW };
mtype = { IN, SLEPT };
#define RUNNING 1
#define BLOCKED 3
#define IDLE    2

mtype det = USER;
mtype last = IN;	/* newest switch record in the worker's ring */
byte state = RUNNING;	/* the worker's ABI state */
bit armed;		/* switch-in alarm enabled */
bit sig;		/* detection signal pending */
byte takes, parks;
bit done;
byte wdone;		/* watchers that have finished */
bit slept;		/* ghost: the current call has slept */
byte srv = 1;		/* the worker's server_tid (servers 1 and 2) */
bit waiting[3];		/* server s runs the worker, waits for its block */


/* a server that is not waiting pops the parked worker and runs it */
inline run_by_a_server()
{
	atomic {
		if
		:: !waiting[1] -> srv = 1; waiting[1] = 1
		:: !waiting[2] -> srv = 2; waiting[2] = 1
		fi
	}
}

/* the watcher wakes server s (T6: the worker's own server, held: srv when made BLOCKED) */
inline wake_server(s, held)
{
	atomic {
		assert(s == held && waiting[s]);
		waiting[s] = 0
	}
}

/* make the worker BLOCKED, publish TAKEN_x, wake its server */
inline take(x)
{
	atomic { state = BLOCKED; holder = srv }	/* holder: the watcher's ghost */
#if READ_SERVER_LATE
	det = x;
	stid = srv;
#else
	stid = srv;
	det = x;
#endif
	wake_server(stid, holder)
}

inline sleep_and_wake()
{
	atomic { last = SLEPT; slept = 1 }
	atomic { last = IN; if :: armed -> sig = 1 :: else -> skip fi }
}

/* T7 after a take-over: LIB, disarm, queue IDLE, sleep until run, USER */
inline park()
{
	assert(state == BLOCKED);
	det = LIB;
	armed = 0;
	sig = 0;
	parks++;
	state = IDLE;
	sleep_and_wake();	/* the library's own sleep: never taken */
	run_by_a_server();
	state = RUNNING;	/* a server ran us */
	det = USER
}

/* the signal handler: settle TAKING, park if TAKEN_RAW */
inline deliver()
{
	if
	:: sig ->
		sig = 0;
		(det != TAKING);
		if
		:: det == TAKEN_RAW -> park()
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/*
 * Another signal's handler making a lazy call: umcg__det_sys_enter (park a
 * pending take-over first; nested in our own lazy call: a plain call), the
 * call (not sleeping, to keep the model small), umcg__det_sys_leave.
 */
inline handler_call()
{
	hl = 0;
	do
	:: (det == TAKEN_SYS || det == TAKEN_RAW) -> park()
	:: atomic { det == USER -> det = SYSCALL; hl = 1; break }
	:: atomic { det == SYSCALL -> break }	/* nested: plain call */
	od;
	assert(state == RUNNING);	/* the handler's own code */
	if
	:: hl ->
		do
		:: atomic { det == SYSCALL -> det = USER; break }
		:: atomic { det == TAKEN_SYS || det == TAKEN_RAW } -> park(); break
		od
	:: else -> skip
	fi
}

inline maybe_handler()
{
#if HANDLER
	if
	:: handler_call()
	:: skip
	fi
#else
	skip
#endif
}

inline user_code()
{
	deliver();
	/* a watcher may be deciding (TAKING) about a sleep that just ended */
	assert(state == RUNNING && (det == USER || det == TAKING))
}

active proctype worker()
{
	byte n;
	bit hl;
	waiting[1] = 1;	/* server 1 runs the worker at first */
	for (n : 1 .. CALLS) {
		if
		:: /* lazy wrapped call */
			do	/* umcg__det_sys_enter: a pending take-over parks first */
			:: atomic { det == USER -> det = SYSCALL; slept = 0; break }
			:: (det == TAKEN_SYS || det == TAKEN_RAW) -> park()
			od;
			if
			:: sleep_and_wake()
			:: skip	/* returned without sleeping */
			fi;
			maybe_handler();	/* a signal during or after the call */
			do	/* umcg__det_sys_leave */
			:: atomic { det == SYSCALL -> det = USER; break }
			:: atomic { det == TAKEN_SYS || det == TAKEN_RAW } -> park(); break
#if !LEAVE_USER_LOOPS
			:: atomic { det == USER -> break }	/* a handler parked us */
#endif
			od
		:: /* raw call */
			slept = 0;
			if
			:: sleep_and_wake()
			:: skip
			fi;
			deliver();	/* the detection signal comes first (switch-in) */
			maybe_handler()
		fi;
		user_code()
	}
	done = 1
}

/*
 * The watcher looks at most ROUNDS times (each look at any moment the
 * scheduler picks): so that it cannot loop for ever while the worker is
 * stuck, which would hide the worker's stuck state (a livelock, not an
 * invalid end state). The worker never needs the watcher to progress,
 * except to end a TAKING, which one look does.
 */
#ifndef ROUNDS
#define ROUNDS (2 * CALLS + 2)
#endif

active [WATCHERS] proctype watcher()
{
	mtype d, l;
	byte stid;
	byte holder;	/* ghost: srv when this watcher made the worker BLOCKED */
	byte r;
	do
	:: done || r >= ROUNDS -> break
	:: else ->
		r++;
#if ORDER_RING_FIRST
		l = last;
		d = det;
#else
		d = det;
		l = last;
#endif
		if
		:: (d == USER || d == SYSCALL) && l == SLEPT ->
			if
			:: atomic { det == d -> det = TAKING };
				if
				:: d == USER ->
#if BLOCK_BEFORE_ARM
					state = BLOCKED;
#endif
					armed = 1;
#if !NO_RECHECK
					if
					:: last != SLEPT ->	/* switched in meanwhile: over */
						armed = 0;
#if BLOCK_BEFORE_ARM
						state = RUNNING;
#endif
						det = d;
						goto next
					:: else -> skip
					fi;
#endif
					assert(slept);
					takes++;
					take(TAKEN_RAW)
				:: else ->
#if !NO_RECHECK
					if
					:: last != SLEPT ->	/* ABA: a later call, not asleep */
						det = d;
						goto next
					:: else -> skip
					fi;
#endif
					assert(slept);	/* only a call that really slept is reported */
					takes++;
					take(TAKEN_SYS)
				fi
			:: atomic { det != d -> skip }	/* the worker moved first */
			fi
		:: else -> skip
		fi;
next:		skip
	od;
	wdone++
}

/* at the end every take-over found its park, and nothing is left taken */
active proctype check()
{
	(done && wdone == WATCHERS);
	assert(det == USER && takes == parks);
	assert(waiting[srv] && !waiting[3 - srv])
}
