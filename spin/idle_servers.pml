/*
 * idle_servers.pml - the idle-servers stack of src/lists/idle_servers.c
 * (spec 7.2, 7.4): push (CAS loop), the kernel's pop by marking (bounded
 * scan, re-examining a node after a lost CAS), remove (mark own node), GC
 * (serialised, unlink marked nodes by CAS on the predecessor, restart on
 * failure) and its grace period (two-counter epoch), and the owner's reuse
 * of its node once GC returned. See docs/spin.md.
 *
 * The list alone (WAKE=0: servers push; remove; gc; poppers only pop):
 *   GRACE=1   the library as implemented: must verify clean.
 *   GRACE=0   umcg__isl_no_grace_period = 1: GC returns without waiting
 *             for pops; must show the review's reclamation race.
 *
 * With the pop's caller and the server's idle protocol (WAKE=1):
 *   WAKE=1    the popper then wakes the popped server as T7 does
 *             (hooks.c wake_idle_server, umcg_idle_servers_wake): loads
 *             s->server_tid, CASes s->state IDLE -> RUNNING; the servers
 *             run group.c wait_stack(): set_idle, push, sleep until
 *             RUNNING, settle_stack() (remove -> restore_running, or
 *             taken()), gc.
 *   TIMEOUT=1 the server's sleep may time out (server_timeout_restore).
 *   SECTION=0 the wake runs after read_unlock (hooks.c before the read
 *             sections were widened);
 *   SECTION=1 the pop and the wake run in one read section (hooks.c now).
 *   TAKEN_GP=1 taken() = wait_until_running + umcg__gp_synchronize(),
 *             called outside gc_lock (group.c now).
 *   GP_LOCK=1 every grace period is serialised by one mutex (gp_lock);
 *             GP_LOCK=0: only GC's is (it holds gc_lock), taken()'s not.
 *   The code as of this writing is SECTION=1 TAKEN_GP=1 GP_LOCK=0: it
 *   fails (two grace periods overlap); GP_LOCK=1 is the fix.
 *
 * Mutations, each expected to fail with GRACE=1 (the model can fail):
 *   NO_RECHECK=1      read_lock does not re-check the epoch.
 *   SYNC_UNLOCKED=1   GC drops gc_lock before the grace period.
 *   CHECK_A=0         drop the ghost check (a) to see what the race does
 *                     to the list itself ((b) then fails).
 *
 * Size (defaults = the configuration run by scripts/run-spin.sh):
 *   NS      servers (1..3)             CYCLES  rounds per server
 *   NP      poppers ("kernel", 0..2)   POPS    pops per popper
 *   BOUND   pop scan bound (nr_cpu_ids*2; 4 = 2 CPUs)
 *
 * Encoding: w[0] is the head, w[i] (1 <= i <= NS) is server i's
 * idle_servers_ptr word. A word holds the index of the next node (0 = end,
 * so a node "address" is its index, the head slot being 0) plus the
 * deleted bit DEL. One Promela statement is one atomic step: each load,
 * store, fetch_add and CAS of the C code is one step (a CAS is an
 * atomic { if ... fi }). Steps that only touch locals or ghosts are folded
 * into a neighbouring access; gc_lock's lock/unlock are folded into the
 * first/last access of GC (only GCs touch gc_lock, so this loses no
 * interleaving). Sequential consistency is assumed (docs/spin.md).
 */

#ifndef GRACE
#define GRACE 1
#endif
#ifndef WAKE
#define WAKE 0
#endif
#ifndef TIMEOUT
#define TIMEOUT 0
#endif
#ifndef SECTION
#define SECTION 0
#endif
#ifndef TAKEN_GP
#define TAKEN_GP 0
#endif
#ifndef GP_LOCK
#define GP_LOCK 0
#endif
#ifndef NO_RECHECK
#define NO_RECHECK 0
#endif
#ifndef SYNC_UNLOCKED
#define SYNC_UNLOCKED 0
#endif
#ifndef CHECK_A
#define CHECK_A 1
#endif
#ifndef NS
#define NS 2
#endif
#ifndef NP
#define NP 2
#endif
#ifndef CYCLES
#define CYCLES 2
#endif
#ifndef POPS
#define POPS 1
#endif
#ifndef BOUND
#define BOUND 4
#endif

#define DEL   4		/* UMCG_IDLE_NODE_DELETED */
#define NEXT  3		/* v & ~DEL for v < 8 */
#define STALE 255	/* ghost "life" of a reference taken during a reuse */
#define RUNNING 1
#define IDLE    2

byte w[NS + 1];		/* w[0] = head; w[i] = node of server i */
byte epoch;		/* gp_epoch */
byte readers[2];	/* gp_readers */
byte gclock;		/* gc_lock: 0 = free, else the owner's id */
byte gplock;		/* gp_lock (GP_LOCK=1) */
byte state[NS + 1];	/* servers' ABI state words (WAKE=1) */

/* ---- ghost state (never read by the modelled code) ---------------------- */
bool linked[NS + 1];	/* reachable from the head: push CAS .. GC unlink */
bool reusing[NS + 1];	/* owner reusing it: GC returned .. push linked it */
byte life[NS + 1];	/* bumped each time the owner starts reusing it */
byte marks[NS + 1];	/* marking CASes (pop or remove) since it was linked */

/* The ghost life of the node a link just read points to. */
#define LIFE(n) (reusing[n] -> STALE : life[n])
/*
 * (a): the reference to node n was taken in n's current life and n's owner
 * is not reusing it, so the pop may read or CAS n's word (or its task).
 */
#if CHECK_A
#define SAFE(n, l) assert(life[n] == (l) && !reusing[n])
#else
#define SAFE(n, l) skip
#endif

/* ---- pop: umcg__isl_pop_locked() in its read section, then T7's wake -- */
inline read_lock()
{
	do
	:: e = epoch;				/* seq_cst load */
	   readers[e % 2]++;			/* seq_cst fetch_add */
#if NO_RECHECK
	   break
#else
	   if
	   :: epoch == e -> break		/* seq_cst re-load */
	   :: else -> readers[e % 2]--		/* epoch moved: retry */
	   fi
#endif
	od
}

/* hooks.c wake_idle_server() after the pop: s->server_tid, then
 * wake_server_task(): CAS s->state IDLE -> RUNNING (ttwu is on the
 * type-stable ktask: not a user-memory access). */
inline wake_popped()
{
	atomic { SAFE(node, ml) }		/* load s->server_tid */
	atomic {
		SAFE(node, ml);
		if
		:: state[node] == IDLE -> state[node] = RUNNING
		:: else				/* already RUNNING: no wake */
		fi
	}
}

inline pop()
{
	read_lock();
	atomic { node = w[0]; ml = LIFE(node); seen = 0 }	/* head */
	do
	:: atomic {
		node != 0 && seen < BOUND && !(node & DEL) ->
		SAFE(node, ml);				/* (a) */
		v = w[node];
		nl = LIFE(v & NEXT)
	   }
	   do
	   :: atomic {
		!(v & DEL) ->
		SAFE(node, ml);				/* (a) */
		if
		:: w[node] == v ->		/* CAS v -> v | DEL succeeded */
			w[node] = v | DEL;
			assert(linked[node]);		/* (b) */
			assert(marks[node] == 0);	/* (c) */
			marks[node]++;
			found = 1;
			goto pop_out			/* (c): one mark per pop */
		:: else ->		/* lost: re-examine with the value seen */
			v = w[node];
			nl = LIFE(v & NEXT);
			seen++;
			if
			:: seen >= BOUND -> goto pop_out
			:: else
			fi
		fi
	      }
	   :: else -> break			/* marked: follow it */
	   od;
	   atomic { node = v & NEXT; ml = nl; seen++ }
	:: else -> break		/* end, bound reached, or a marked link */
	od;
pop_out:
#if WAKE && SECTION
	if
	:: found -> wake_popped()
	:: else
	fi;
#endif
	readers[e % 2]--;			/* read_unlock: release fetch_sub */
#if WAKE && !SECTION
	if
	:: found -> wake_popped()
	:: else
	fi;
#endif
	atomic { node = 0; v = 0; seen = 0; ml = 0; nl = 0; e = 0; found = 0 }
}

proctype Popper()
{
	byte k, node, v, seen, e, ml, nl;
	bool found;
	do
	:: k < POPS -> pop(); k++
	:: else -> break
	od
}

/* ---- the server side ----------------------------------------------------- */

/* umcg_idle_servers_push(): store the old head in our node, CAS the head.
 * The (re)use of the node starts here, right after gc() returned. */
inline push()
{
	atomic { life[me]++; reusing[me] = 1; old = w[0] }
	do
	:: w[me] = old;		/* relaxed store: overwrites the word */
	   atomic {
		if
		:: w[0] == old ->		/* CAS head old -> me */
			w[0] = me;
			linked[me] = 1; reusing[me] = 0; marks[me] = 0;
			old = 0;
			break
		:: else -> old = w[0]
		fi
	   }
	od
}

/* umcg_idle_servers_remove(): mark our own node unless already marked.
 * rm = 1: we marked it; rm = 0: it was popped (the popper wakes us). */
inline remove()
{
	v = w[me];
	do
	:: atomic {
		!(v & DEL) ->
		if
		:: w[me] == v ->
			w[me] = v | DEL;
			assert(marks[me] == 0);		/* (c) */
			marks[me]++;
			rm = 1; v = 0;
			break
		:: else -> v = w[me]
		fi
	   }
	:: else -> rm = 0; v = 0; break
	od
}

/* umcg__gp_synchronize(): advance the epoch, wait for the old epoch's
 * readers. GP_LOCK=1: under a mutex of its own (gp_lock). */
inline synchronize()
{
#if GP_LOCK
	atomic { gplock == 0 -> gplock = me; e = epoch; epoch++ }
#else
	atomic { e = epoch; epoch++ }		/* seq_cst fetch_add */
#endif
	(readers[e % 2] == 0);			/* seq_cst load (+ sched_yield) */
#if GP_LOCK
	gplock = 0;
#endif
	e = 0
}

/* umcg_idle_servers_gc(head, NULL, NULL) */
inline gc()
{
	atomic { gclock == 0 -> gclock = me; n = 0; prev = 0; node = w[0] }
	do
	:: node == 0 -> break
	:: node != 0 ->
		if
		:: (node & DEL) ->		/* restart (unreachable: see docs) */
			prev = 0; node = w[0]
		:: else ->
			v = w[node];
			if
			:: !(v & DEL) -> prev = node; node = v
			:: else ->
				atomic {
					if
					:: w[prev] == node ->	/* unlink */
						w[prev] = v & NEXT;
						linked[node] = 0;
						n = 1;
						node = v & NEXT
					:: else ->		/* restart */
						prev = 0; node = w[0]
					fi
				}
			fi
		fi
	od;
#if SYNC_UNLOCKED
	gclock = 0;
#endif
#if GRACE
	if
	:: n -> synchronize()
	:: else
	fi;
#endif
	atomic { gclock = 0; n = 0; prev = 0; node = 0; v = 0 }
}

/* server_timeout_restore() / the idle protocol's own restore */
inline restore()
{
	atomic {
		if
		:: state[me] == IDLE -> state[me] = RUNNING
		:: else				/* a wake beat us */
		fi
	}
}

/*
 * A server: CYCLES rounds, then it frees its node (unregister + free: the
 * last "reuse"). A round, WAKE=0: push; remove (or find itself popped);
 * gc. WAKE=1: src/idle/group.c wait_stack(): set_idle; push; if no idle
 * worker is queued, umcg_wait(0, timeout); then settle_stack(): remove ->
 * restore_running, or (popped) taken(); gc.
 */
proctype Server(byte me)
{
	byte c, old, v, prev, node, e;
	bool n, rm;
	do
	:: c < CYCLES ->
#if WAKE
		state[me] = IDLE;			/* set_idle() */
#endif
		push();
#if WAKE
		if
		:: skip				/* idle workers queued: no sleep */
		:: skip;			/* none: umcg_wait(0, abs_timeout) */
end_wait:	   if
		   :: state[me] == RUNNING		/* a popper woke us */
#if TIMEOUT
		   :: restore()				/* ETIMEDOUT: back to RUNNING */
#endif
		   fi
		fi;
		remove();				/* settle_stack() */
		if
		:: rm -> restore()			/* restore_running() */
		:: else -> (state[me] == RUNNING);	/* taken(): wait_until_running() */
#if TAKEN_GP
			synchronize()			/* taken(): umcg__gp_synchronize() */
#else
			skip
#endif
		fi;
#else
		remove();
#endif
		rm = 0;
		gc();
		assert(!linked[me]);	/* gc() unlinked our marked node */
		c++
	:: else -> break
	od;
	atomic { life[me]++; reusing[me] = 1 }	/* freed */
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
		:: i < NP -> run Popper(); i++
		:: else -> break
		od
	}
}
