#!/usr/bin/env bash
# run-spin.sh - check the Promela models in spin/ (see docs/spin.md).
#
#   scripts/run-spin.sh            the CI set (< 3 min on 2 cores)
#   scripts/run-spin.sh --full     also the larger configurations (minutes, ~2 GB)
#   scripts/run-spin.sh --trail    also replay every counterexample (abridged)
#   scripts/run-spin.sh --keep     keep the work directory (printed at the end)
#   scripts/run-spin.sh --only RE  only the configurations whose line matches RE
#
# For each model/configuration: spin -a, cc -O2 -DSAFETY pan.c, ./pan, then
# compare with the expected outcome: "pass" (errors: 0, search complete) or
# a counterexample (errors >= 1 and the first error matches a pattern, so an
# unrelated failure does not count as the expected one). Prints one line per
# configuration and "N passed, N failed"; exit status 0 iff all were as
# expected. Everything is built in a temporary directory: no pan* files are
# left in the repository. Needs spin (apt-get install -y spin) and a C
# compiler ($CC, default gcc).
set -uo pipefail
cd "$(dirname "$0")/.."

full=0
trail=0
keep=0
only=
while [ $# -gt 0 ]; do
	case "$1" in
	--full) full=1 ;;
	--trail) trail=1 ;;
	--keep) keep=1 ;;
	--only) only="$2"; shift ;;
	*) echo "usage: $0 [--full] [--trail] [--keep] [--only REGEX]" >&2; exit 2 ;;
	esac
	shift
done

SPIN=${SPIN:-spin}
CC=${CC:-gcc}
if ! command -v "$SPIN" >/dev/null 2>&1; then
	echo "run-spin.sh: '$SPIN' not found; install it (Debian/Ubuntu: apt-get install -y spin)" >&2
	exit 1
fi
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "run-spin.sh: C compiler '$CC' not found" >&2
	exit 1
fi

# Per-run limit for one pan (seconds); the CI set needs a small fraction.
PAN_TIMEOUT=${PAN_TIMEOUT:-170}

# Error patterns (grep -E on pan's first "pan:1: ..." line).
A='assertion violated \(\(life\[node\]==ml\)'	# (a) stale node access
B='assertion violated linked\[node\]'		# (b) popped an unlinked node
LOST='invalid end state'			# ttwu: sleeper blocked forever
IDLE='assertion violated \(\(queued==0\)'	# tid word: worker queued, server asleep
LATE='assertion violated \(per\[t\]==tp\)'	# tid word: a wake lands in a later IDLE period
ONE='assertion violated one_outcome'		# worker timeout: woken and/or queued, not exactly one
DET='assertion violated \(\(state==1\)'		# detection: user code runs while BLOCKED
SRV='assertion violated \(\(stid==holder\)'		# detection: T6 wakes a server that does not hold the worker

# model | spin -D flags | expected ("pass" or "cex:PATTERN") | what it shows
CONFIGS=(
# the idle-servers stack alone
"idle_servers|-DGRACE=1|pass|as implemented: 2 servers x 2 rounds, 2 pops"
"idle_servers|-DGRACE=1 -DNS=3 -DNP=1 -DCYCLES=1|pass|as implemented: 3 servers"
"idle_servers|-DGRACE=0|cex:$A|no grace period: the review's race"
"idle_servers|-DGRACE=0 -DCHECK_A=0|cex:$B|no grace period: a pop marks an unlinked node"
"idle_servers|-DGRACE=1 -DNO_RECHECK=1|cex:$A|mutation: reader skips the epoch re-check"
"idle_servers|-DGRACE=1 -DSYNC_UNLOCKED=1|cex:$A|mutation: grace period outside gc_lock"
# + T7's wake of the popped server and the servers' wait_stack()
"idle_servers|-DWAKE=1 -DNP=1 -DPOPS=2|pass|wake after the pop, servers without timeouts"
"idle_servers|-DWAKE=1 -DTIMEOUT=1|cex:$A|wake after read_unlock + timeouts (the old hooks.c)"
"idle_servers|-DWAKE=1 -DTIMEOUT=1 -DSECTION=1 -DNP=1 -DPOPS=2|pass|pop+wake in one read section, no taken() grace period"
"idle_servers|-DWAKE=1 -DTIMEOUT=1 -DSECTION=1 -DTAKEN_GP=1|cex:$A|taken()'s grace period not serialised (the bug fixed by gp_lock)"
"idle_servers|-DWAKE=1 -DTIMEOUT=1 -DSECTION=1 -DTAKEN_GP=1 -DGP_LOCK=1 -DNP=1 -DPOPS=2|pass|fix: serialised grace periods, 1 popper"
"idle_servers|-DWAKE=1 -DTIMEOUT=1 -DSECTION=1 -DTAKEN_GP=1 -DGP_LOCK=1 -DCYCLES=1|pass|fix: serialised grace periods, 2 poppers"
# the sleep/wake protocol
"ttwu|-DORDER=0 -DWEAK=0|pass|as implemented, SC"
"ttwu|-DORDER=0 -DWEAK=1|pass|as implemented, delayed state store"
"ttwu|-DORDER=1 -DWEAK=0|pass|check sleeping before wake_seq++, SC: still correct"
"ttwu|-DORDER=1 -DWEAK=1|cex:$LOST|check sleeping before wake_seq++, delayed state store"
"ttwu|-DORDER=2 -DWEAK=0|cex:$LOST|check sleeping before the state store, SC"
# a worker's deadline against a direct wake-up (issue 6)
"worker_timeout|-DPROTO=2|pass|as implemented: claim IDLE -> IDLE|TIMEDOUT, kept until run"
"worker_timeout|-DPROTO=0|cex:$ONE|the old code: ETIMEDOUT after a direct wake, or woken and queued"
"worker_timeout|-DPROTO=1|cex:$ONE|a transient claim (RUNNING, then IDLE on the list): a later waker wins"
"worker_timeout|-DPROTO=2 -DCLEAR_ON_POP=1|cex:$ONE|mutation: flag cleared at the pop, before the run"
"worker_timeout|-DPROTO=2 -DBYTE_CAS=1|cex:$ONE|a waker that compares only the state byte (documented: don't)"
# transparent block detection: the det word, worker vs watcher (issue 7)
"detect|-DCALLS=3|pass|as implemented: 3 calls, wrapped or raw, sleeping or not"
"detect|-DCALLS=4|pass|as implemented: 4 calls"
"detect|-DORDER_RING_FIRST=1|pass|ring read before det: the look after the CAS still decides"
"detect|-DNO_RECHECK=1|cex:$DET|no look at the ring after the CAS / after arming"
"detect|-DBLOCK_BEFORE_ARM=1|cex:$DET|worker made BLOCKED before its alarm is armed"
"detect|-DREAD_SERVER_LATE=1|cex:$SRV|server_tid read after TAKEN is published (wrong server woken)"
"detect|-DHANDLER=0|pass|without another signal's handler making calls of its own"
"detect|-DLEAVE_USER_LOOPS=1|cex:$LOST|sys_leave not accepting USER after a handler parked us (the old wrap path)"
"detect|-DWATCHERS=2 -DCALLS=2 -DROUNDS=4|pass|two checkers at once (watcher + the server before it sleeps)"
"detect|-DWATCHERS=2 -DNO_RECHECK=1|cex:$DET|two checkers, no look at the ring after the CAS"
# the v0.4 tid word
"tid_word|-DCHAIN=0|cex:$IDLE|one tid word, no chaining: PeterZ's lost second server"
"tid_word|-DCHAIN=1|cex:$IDLE|chain only if more work remains"
"tid_word|-DCHAIN=2|pass|chaining rule, 2 servers, 2 wake-ups"
"tid_word|-DCHAIN=2 -DNS=3 -DNW=2|pass|chaining rule, 3 servers, 2 wake-ups"
"tid_word|-DCHAIN=2 -DNS=3 -DNW=3|pass|chaining rule, 3 servers, 3 wake-ups"
"tid_word|-DCHAIN=2 -DRECHECK=0|cex:$IDLE|rule without the waiter's re-check of the word"
"tid_word|-DCHAIN=2 -DWITHDRAW_PROMOTES=0|cex:$IDLE|rule without the chain on withdraw"
"tid_word|-DCHAIN=2 -DBEHIND_TAKES=1 -DNS=3 -DNW=3|cex:$IDLE|rule, but a chained server takes work without re-publishing"
"tid_word|-DCHAIN=2 -DWITHDRAW_PROMOTES=0 -DBEHIND_TAKES=1 -DNS=3 -DNW=3|cex:$IDLE|group.c wait_tid before the chaining fix"
"tid_word|-DGP=1 -DNSYNC=0|pass|late wake-ups: sections + taken() grace period, serialised"
"tid_word|-DGP=1 -DNSYNC=0 -DTAKEN_GP=0|cex:$LATE|late wake-ups: no grace period in taken()"
"tid_word|-DGP=1 -DNSYNC=0 -DGP_LOCK=0|cex:$LATE|late wake-ups: grace periods not serialised (fixed by gp_lock)"
)
FULL_CONFIGS=(
"detect|-DWATCHERS=2 -DCALLS=3|pass|two checkers, 3 calls (80M states, ~5 min)"
"idle_servers|-DGRACE=1 -DPOPS=2|pass|as implemented: 2 servers x 2 rounds, 2x2 pops (24M states)"
"idle_servers|-DGRACE=1 -DNS=3 -DNP=1 -DPOPS=2 -DCYCLES=1|pass|as implemented: 3 servers, 2 pops"
"idle_servers|-DWAKE=1|pass|wake after the pop, no timeouts, 2 poppers"
"idle_servers|-DWAKE=1 -DTIMEOUT=1 -DSECTION=1|pass|pop+wake in one read section, 2 poppers x 2 rounds"
"idle_servers|-DWAKE=1 -DTIMEOUT=1 -DSECTION=1 -DTAKEN_GP=1 -DGP_LOCK=1|pass|fix: serialised grace periods, 2 poppers x 2 rounds"
"ttwu|-DORDER=0 -DWEAK=1 -DROUNDS=3 -DSPURIOUS=2|pass|as implemented, 3 rounds, 2 spurious wake-ups"
"tid_word|-DGP=1|pass|late wake-ups, plus a concurrent grace period elsewhere"
"tid_word|-DGP=1 -DGP_LOCK=0|cex:$LATE|late wake-ups, grace periods not serialised, + one elsewhere"
)
[ "$full" = 1 ] && CONFIGS+=("${FULL_CONFIGS[@]}")

work=$(mktemp -d "${TMPDIR:-/tmp}/umcg-spin.XXXXXX")
if [ "$keep" = 0 ]; then
	trap 'rm -rf "$work"' EXIT
fi

# Abridged replay of a trail: one line per step of the modelled code, no
# bookkeeping (locals reset, loop control, ghost updates).
replay() { # dir model flags
	(cd "$1" && "$SPIN" $3 -t -p -g "$2.pml" 2>&1) |
		grep -E '^ *[0-9]+:[[:space:]]+proc' | grep -v ':init:' |
		grep -vE '\[(\(1\)|break|goto|c = |k = |ml = |nl = |seen = |n = |prev = |v = 0|rm = |old = 0|e = 0|found = 0|node = 0|p = 0|ok = 0|seq = 0|w = 0)' |
		sed -E "s/$2\.pml:[0-9]+ //; s/\(state [0-9]+\)//; s/^ +//" | head -80 | sed 's/^/        /'
}

# One configuration: writes $d/status ("ok" or "FAIL") and $d/line.
run_one() { # dir model flags expect what
	local d=$1 model=$2 flags=$3 expect=$4 what=$5
	local cfg status= detail= first= t0 t1 secs rc errors states pat opt=-O0
	cfg=$(sed -E 's/-D//g' <<<"$flags")
	# large state spaces: optimise pan (costs ~2 s of compile time)
	case "$expect" in pass) opt=-O2 ;; esac
	cp "spin/$model.pml" "$d/"
	t0=$(date +%s.%N)
	if ! (cd "$d" && "$SPIN" $flags -a "$model.pml") >"$d/spin.log" 2>&1; then
		status=FAIL
		detail="spin -a failed: $(tail -1 "$d/spin.log")"
	elif ! (cd "$d" && "$CC" $opt -w -DSAFETY -o pan pan.c) >"$d/cc.log" 2>&1; then
		status=FAIL
		detail="cc failed: $(head -1 "$d/cc.log")"
	else
		(cd "$d" && timeout "$PAN_TIMEOUT" ./pan -m100000) >"$d/pan.out" 2>&1
		rc=$?
		errors=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' "$d/pan.out" | head -1)
		states=$(sed -nE 's/^ *([0-9]+) states, stored.*/\1/p' "$d/pan.out" | head -1)
		first=$(grep -m1 -E '^pan:1: ' "$d/pan.out" | sed 's/^pan:1: //')
		if [ "$rc" = 124 ]; then
			status=FAIL
			detail="pan timed out after ${PAN_TIMEOUT}s"
		elif [ -z "$errors" ]; then
			status=FAIL
			detail="pan did not finish: $(grep -m1 -E 'pan:|error' "$d/pan.out")"
		elif [ "$expect" = pass ]; then
			if [ "$errors" != 0 ]; then
				status=FAIL
				detail="expected pass, got: $first"
			elif grep -qE 'max search depth too small|out of memory|search not completed' "$d/pan.out"; then
				status=FAIL
				detail="search incomplete: $(grep -m1 -E 'max search depth|out of memory|not completed' "$d/pan.out")"
			else
				status=ok
				detail="expected pass: $states states"
			fi
		else
			pat=${expect#cex:}
			if [ "$errors" = 0 ]; then
				status=FAIL
				detail="expected a counterexample, none found ($states states)"
			elif ! grep -qE -- "$pat" <<<"$first"; then
				status=FAIL
				detail="expected a counterexample matching /$pat/, got: $first"
			else
				status=ok
				detail="expected counterexample: $first"
			fi
		fi
	fi
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	{
		printf '%-4s %-12s %-58s (%s; %ss)\n' "$status" "$model" "$cfg" "$detail" "$secs"
		printf '     %s\n' "$what"
		if [ "$trail" = 1 ] && [ -n "$first" ] && [ -f "$d/$model.pml.trail" ]; then
			replay "$d" "$model" "$flags"
		fi
	} >"$d/line"
	echo "$status" >"$d/status"
	rm -f "$d/pan" "$d/pan.c" "$d/pan.b" "$d/pan.h" "$d/pan.m" "$d/pan.p" "$d/pan.t"
}

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -gt 2 ] 2>/dev/null && JOBS=2	# the big models need memory, not cores
start=$(date +%s.%N)
n=0
for c in "${CONFIGS[@]}"; do
	case "$c" in \#*) continue ;; esac
	[ -n "$only" ] && ! grep -qE -- "$only" <<<"$c" && continue
	IFS='|' read -r model flags expect what <<<"$c"
	n=$((n + 1))
	mkdir -p "$work/$n"
	run_one "$work/$n" "$model" "$flags" "$expect" "$what" &
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
done
wait
pass=0
fail=0
for i in $(seq 1 "$n"); do
	if [ -f "$work/$i/line" ]; then
		cat "$work/$i/line"
	else
		echo "FAIL configuration $i: no result"
	fi
	if [ "$(cat "$work/$i/status" 2>/dev/null)" = ok ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
	fi
done
end=$(date +%s.%N)
total=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
[ "$keep" = 1 ] && echo "work directory: $work"
echo "$pass passed, $fail failed (${total}s)"
[ "$fail" = 0 ]
