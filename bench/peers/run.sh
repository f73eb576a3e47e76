#!/usr/bin/env bash
# bench/peers/run.sh - the peers benchmark (issue 8): the umcg runtime
# against plain pthreads, Go and Boost.Fiber, the same work on each, every
# system of a case in one run, RUNS interleaved runs (system order rotates
# from run to run), medians and min..max, ratios to the best and to umcg.
#
#   bench/peers/run.sh [-q] [-r RUNS] [-w 1,2,3,4] [-b build_dir] [-o out_dir] [-P]
#
#   -q  quick smoke mode: 2 runs, small sizes (about a minute)
#   -r  runs (default 5, or $RUNS)
#   -w  workloads, comma-separated (default all):
#       1 the README demo: 64 workers x 200 ops (compute 50 us, sleep 300 us,
#         pipe write+read); elapsed s, lower is better
#       2 latency under load: an interactive worker (sleep 1 ms, then 10 us
#         of compute, 1000 times) beside a CPU-bound batch worker per CPU;
#         timer expiry to done, p50 and p99 in us, lower is better
#       3 token ring, N = 2 and N = 1000: switches/s, higher is better
#       4 server, one worker per connection, minimal HTTP under
#         `wrk --latency` (after 1 s of warm-up), 100 and 1000 connections:
#         requests/s (higher is better) and p99 in ms (lower is better)
#   -b  build dir with libumcg.a and examples/fifo_demo (default build/plain;
#       run `make` first); the peers are built into <build_dir>/peers/
#   -o  keep the raw samples and summary here (default <build_dir>/peers/results)
#   -P  plot: bench/peers/plot.sh <out_dir> <out_dir>/peers.png (gnuplot)
#
# Go (golang-go) and Boost.Fiber (libboost-fiber-dev) peers are skipped, with
# a note, when their tool chain is missing. Servers of the umcg runtime are
# pinned one per CPU (its default); the peers are not pinned (their
# defaults); variants say otherwise in their name. Timer slack is 1 ns
# everywhere it can be set (docs/peers.md). Run as root for workload 4 with
# 1000 connections: 1000 detected workers lock 8 KiB of perf ring each
# (docs/detection.md, section 3), more than the default RLIMIT_MEMLOCK.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=build/plain runs=${RUNS:-5} quick=0 wl=1,2,3,4 out="" plot=0
while getopts "qr:w:b:o:Ph" o; do
	case $o in
	q) quick=1 ;;
	r) runs=$OPTARG ;;
	w) wl=$OPTARG ;;
	b) build=$OPTARG ;;
	o) out=$OPTARG ;;
	P) plot=1 ;;
	*) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
((quick)) && [ -z "${RUNS:-}" ] && [[ " $* " != *" -r "* ]] && runs=2
[ -f "$build/libumcg.a" ] && [ -x "$build/examples/fifo_demo" ] ||
	{ echo "peers: $build/libumcg.a or examples/fifo_demo missing: run make first" >&2; exit 2; }
P=$build/peers
out=${out:-$P/results}
mkdir -p "$P" "$out"
: >"$out/samples"
log=$out/log
: >"$log"

# ---- build ------------------------------------------------------------------
CF="-std=gnu11 -O2 -g -pthread -D_GNU_SOURCE -Wall -Wextra -Iinclude"
for f in demo lat ring srv; do
	cc $CF -o "$P/${f}_pthreads" "bench/peers/${f}_pthreads.c" || exit 2
done
for f in lat ring srv; do
	cc $CF -o "$P/rt_$f" "bench/peers/rt/rt_$f.c" "$build/libumcg.a" || exit 2
done
have_go=0 have_fiber=0
if command -v go >/dev/null; then
	(cd bench/peers/go && GOFLAGS= go build -o "$OLDPWD/$P/go_peers" peers.go) && have_go=1
else
	echo "peers: no go (apt-get install golang-go): Go peer skipped" >&2
fi
if command -v g++ >/dev/null && [ -f /usr/include/boost/fiber/all.hpp ]; then
	g++ -std=c++14 -O2 -pthread -o "$P/fiber_peers" bench/peers/fiber/fiber_peers.cpp \
		-lboost_fiber -lboost_context && have_fiber=1
else
	echo "peers: no Boost.Fiber (apt-get install libboost-fiber-dev): skipped" >&2
fi
demo=$build/examples/fifo_demo

# ---- sizes ------------------------------------------------------------------
if ((quick)); then
	w1_ops=50 w2_n=200 w3_passes=20000 w4_secs=2
else
	w1_ops=200 w2_n=1000 w3_passes=100000 w4_secs=5
fi
ncpu=$(nproc)

# ---- systems per case: "name<TAB>command" ------------------------------------
# Workload 1
w1_systems() {
	printf 'umcg-rt\t%s -n %d\n' "$demo" "$w1_ops"
	printf 'umcg-rt-no-interpose\tenv UMCG_INTERPOSE=0 %s -n %d\n' "$demo" "$w1_ops"
	printf 'umcg-rt-unpinned\t%s -U -n %d\n' "$demo" "$w1_ops"
	printf 'pthreads\t%s -n %d\n' "$P/demo_pthreads" "$w1_ops"
	((have_go)) && printf 'go\t%s demo -n %d\n' "$P/go_peers" "$w1_ops"
	((have_fiber)) && printf 'boost-fiber\t%s demo -n %d\n' "$P/fiber_peers" "$w1_ops"
	true
}
# Workload 2
w2_systems() {
	printf 'umcg-rt-prio\t%s -n %d -S 200\n' "$P/rt_lat" "$w2_n"
	printf 'umcg-rt-prio-batch-nice19\t%s -n %d -S 200 -N 19\n' "$P/rt_lat" "$w2_n"
	printf 'pthreads-nice19\t%s -n %d -N 19\n' "$P/lat_pthreads" "$w2_n"
	printf 'pthreads-sched-idle\t%s -n %d -I\n' "$P/lat_pthreads" "$w2_n"
	((have_go)) && printf 'go\t%s lat -n %d\n' "$P/go_peers" "$w2_n"
	true
}
# Workload 3 (case: ring size). Passes per system: about a second or more of
# hand-offs each (kernel-thread hand-offs are ~50x slower than user-space ones).
w3_systems() {
	local n=$1 slow=$w3_passes fast=$((w3_passes * 20)) ws=$((w3_passes / 5))
	printf 'umcg-rt\t%s -r %d -n %d\n' "$P/rt_ring" "$n" "$slow"
	printf 'umcg-rt-1cpu\t%s -s 1 -p -r %d -n %d\n' "$P/rt_ring" "$n" "$slow"
	printf 'pthreads-futex\t%s -r %d -n %d\n' "$P/ring_pthreads" "$n" "$slow"
	printf 'pthreads-futex-1cpu\t%s -p -r %d -n %d\n' "$P/ring_pthreads" "$n" "$slow"
	((have_go)) && printf 'go\t%s ring -r %d -n %d\n' "$P/go_peers" "$n" "$fast"
	((have_go)) && printf 'go-1proc\t%s ring -p 1 -r %d -n %d\n' "$P/go_peers" "$n" "$fast"
	# work stealing across threads: a pass wakes the other thread
	((have_fiber)) && printf 'boost-fiber\t%s ring -r %d -n %d\n' "$P/fiber_peers" "$n" "$ws"
	((have_fiber)) && printf 'boost-fiber-1thread\t%s ring -R -r %d -n %d\n' \
		"$P/fiber_peers" "$n" "$fast"
	true
}
# Workload 4 (case: connections); the command is the server
w4_systems() {
	printf 'umcg-rt\t%s -Y\n' "$P/rt_srv"
	printf 'umcg-rt-noyield\t%s\n' "$P/rt_srv"
	printf 'pthreads\t%s\n' "$P/srv_pthreads"
	((have_go)) && printf 'go-net/http\t%s http -a 127.0.0.1:PORT\n' "$P/go_peers"
	true
}

# ---- running ------------------------------------------------------------------
# sample <workload> <case> <system> <metric> <value> <run>
sample() { echo "$*" >>"$out/samples"; }

# run_one <workload> <case> <system> <command> <run>
run_one() {
	local w=$1 c=$2 s=$3 cmd=$4 r=$5 o
	echo "== w$w $c $s run $r: $cmd" >>"$log"
	o=$(timeout 300 $cmd 2>>"$log")
	echo "$o" >>"$log"
	case $w in
	1) v=$(awk '/elapsed/ { print $2 }' <<<"$o")
	   [ -n "$v" ] && sample "$w" "$c" "$s" time_s "$v" "$r" ;;
	2) v=$(grep -o 'lat_p50_us [0-9.]*' <<<"$o" | cut -d' ' -f2)
	   [ -n "$v" ] && sample "$w" "$c" "$s" p50_us "$v" "$r"
	   v=$(grep -o 'lat_p99_us [0-9.]*' <<<"$o" | cut -d' ' -f2)
	   [ -n "$v" ] && sample "$w" "$c" "$s" p99_us "$v" "$r" ;;
	3) v=$(grep -o 'switches_per_s [0-9.]*' <<<"$o" | cut -d' ' -f2)
	   [ -n "$v" ] && sample "$w" "$c" "$s" switches_per_s "$v" "$r" ;;
	esac
	[ -n "${v:-}" ] || echo "peers: w$w $c $s run $r failed (see $log)" >&2
}

# wrk's latency in ms: "99%  1.23ms" / "456.00us" / "1.20s"
wrk_ms() { awk -v p="$1" '$1 == p { v = $2; m = 1
	if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /s$/) m = 1000
	sub(/[a-z]+$/, "", v); print v * m }'; }

port=18000
run_server() {
	local c=$1 s=$2 cmd=$3 r=$4 pid o v
	port=$((port + 1))
	cmd=${cmd//PORT/$port}
	[[ $cmd == *rt_srv* || $cmd == *srv_pthreads* ]] && cmd="$cmd -P $port"
	echo "== w4 $c $s run $r: $cmd" >>"$log"
	$cmd >"$out/srv.out" 2>>"$log" &
	pid=$!
	for _ in $(seq 100); do grep -q listening "$out/srv.out" 2>/dev/null && break; sleep 0.05; done
	# warm-up: the connections' threads/workers/goroutines exist before we measure
	# (a umcg worker's first start also registers it and opens its perf event)
	wrk -t2 -c"$c" -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1
	o=$(wrk -t2 -c"$c" -d"${w4_secs}s" --timeout 5s --latency "http://127.0.0.1:$port/" 2>&1)
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	echo "$o" >>"$log"
	v=$(awk '/^Requests\/sec/ { print $2 }' <<<"$o")
	[ -n "$v" ] && sample 4 "$c" "$s" req_per_s "$v" "$r"
	v=$(wrk_ms 99% <<<"$o")
	[ -n "$v" ] && sample 4 "$c" "$s" p99_ms "$v" "$r"
	v=$(awk '/Socket errors/ { n = 0; for (i = 3; i <= NF; i += 2) n += $(i + 1); print n }' <<<"$o")
	sample 4 "$c" "$s" sock_errors "${v:-0}" "$r"
}

# rotate <run> <lines>: the systems in a different order on each run
rotate() { local r=$1; awk -v r="$r" '{ l[NR] = $0 } END {
	for (i = 0; i < NR; i++) print l[(i + r - 1) % NR + 1] }'; }

ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null
ulimit -l unlimited 2>/dev/null || true

{
	echo "# peers: $(date -u '+%F %T') UTC, $(uname -r), $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
	echo "# runs $runs$( ((quick)) && echo ' (quick smoke mode: small sizes)'), workloads $wl; uid $(id -u); ulimit -n $(ulimit -n), -l $(ulimit -l)"
	echo "# load before: $(uptime | sed 's/.*load/load/')"
} | tee "$out/header"

for ((r = 1; r <= runs; r++)); do
	for w in ${wl//,/ }; do
		case $w in
		1) while IFS=$'\t' read -r s cmd; do run_one 1 demo "$s" "$cmd" "$r"
		   done < <(w1_systems | rotate "$r") ;;
		2) while IFS=$'\t' read -r s cmd; do run_one 2 interactive "$s" "$cmd" "$r"
		   done < <(w2_systems | rotate "$r") ;;
		3) for n in 2 1000; do
			while IFS=$'\t' read -r s cmd; do run_one 3 "N=$n" "$s" "$cmd" "$r"
			done < <(w3_systems "$n" | rotate "$r")
		   done ;;
		4) for c in 100 1000; do
			while IFS=$'\t' read -r s cmd; do run_server "$c" "$s" "$cmd" "$r"
			done < <(w4_systems | rotate "$r")
		   done ;;
		*) echo "peers: no workload $w" >&2; exit 2 ;;
		esac
	done
	echo "# run $r/$runs done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
echo "# load after: $(uptime | sed 's/.*load/load/')" | tee -a "$out/header"

# ---- summary: a markdown table per workload, case and metric -------------------
summary() {
	awk '
	function f(x) { return x >= 1000 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
	function better(m) { return (m == "switches_per_s" || m == "req_per_s") ? 1 : -1 }
	{ k = $1 SUBSEP $2 SUBSEP $4; if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
	  ks = k SUBSEP $3; if (!(ks in n)) { sys[k] = sys[k] " " $3 }
	  v[ks, ++n[ks]] = $5 }
	END {
		title[1] = "README demo (elapsed s)"; title[2] = "latency under load (us)"
		title[3] = "token ring (switches/s)"; title[4] = "server under wrk"
		for (i = 1; i <= nk; i++) {
			split(keys[i], a, SUBSEP); k = keys[i]
			if (a[3] == "sock_errors") continue
			printf "\n### workload %s: %s, %s, %s\n\n", a[1], title[a[1]], a[2], a[3]
			printf "| system | median | min..max | vs best | vs umcg-rt |\n|---|---|---|---|---|\n"
			ns = split(substr(sys[k], 2), S, " "); best = ""; um = ""
			for (j = 1; j <= ns; j++) {
				ks = k SUBSEP S[j]; m = n[ks]
				for (x = 1; x <= m; x++) s[x] = v[ks, x]
				for (x = 2; x <= m; x++) for (y = x; y > 1 && s[y - 1] + 0 > s[y] + 0; y--) {
					t = s[y]; s[y] = s[y - 1]; s[y - 1] = t }
				med[j] = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
				lo[j] = s[1]; hi[j] = s[m]
				if (best == "" || (better(a[3]) > 0 ? med[j] > best : med[j] < best)) best = med[j]
				if (S[j] ~ /^umcg-rt/ && um == "") um = med[j]
			}
			# order: best first
			for (x = 1; x <= ns; x++) ord[x] = x
			for (x = 2; x <= ns; x++) for (y = x; y > 1; y--) {
				p = ord[y - 1]; q = ord[y]
				if (better(a[3]) > 0 ? med[q] > med[p] : med[q] < med[p]) { ord[y - 1] = q; ord[y] = p }
				else break }
			for (x = 1; x <= ns; x++) { j = ord[x]
				printf "| %s | %s | %s..%s | %.2fx | %s |\n", S[j], f(med[j]), f(lo[j]), f(hi[j]),
					best ? med[j] / best : 0, um ? sprintf("%.2fx", med[j] / um) : "-" }
		}
	}' "$out/samples"
}
summary | tee "$out/summary.md"
errs=$(awk '$4 == "sock_errors" && $5 > 0 { print $3 " " $2 " conns run " $6 ": " $5 }' "$out/samples")
[ -n "$errs" ] && { echo; echo "wrk socket errors (connect/read/write/timeout):"; echo "$errs"; } | tee -a "$out/summary.md"
echo "# raw samples: $out/samples, outputs: $out/log"
((plot)) && bench/peers/plot.sh "$out" "$out/peers.png"
exit 0
