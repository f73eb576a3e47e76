#!/usr/bin/env bash
# bench/peers/run.sh - the peers benchmark (issue 8), workload 1: the README
# demo's workload (64 workers x 200 ops: compute 50 us, sleep 300 us, pipe
# write+read) on each system, RUNS (default 5) interleaved runs, medians and
# min..max of the elapsed time, and each system's ratio to the fastest.
#
#   bench/peers/run.sh [build_dir]        (default build/plain; run `make` first)
#   RUNS=9 bench/peers/run.sh
#
# Systems today: pthreads (demo_pthreads.c, built here), the umcg runtime
# (examples/fifo_demo: fifo policy) with its defaults (servers pinned one
# per CPU, plain libc calls, transparent block detection, libc's blocking
# calls interposed by libumcg), the same without interposition
# (UMCG_INTERPOSE=0: raw sleeps parked by the detection signal), unpinned
# (-U), with the lazy wrappers (-W), and with the explicit block points of
# before (-W, UMCG_DETECT=0). Go and Boost.Fiber peers, and workloads 2-4, are not
# written yet: see README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/plain}
runs=${RUNS:-5}
demo=$build/examples/fifo_demo
[ -x "$demo" ] || { echo "peers: $demo missing: run make first" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -pthread -o "$out/demo_pthreads" bench/peers/demo_pthreads.c || exit 2

systems=(pthreads umcg-rt umcg-rt-no-interpose umcg-rt-unpinned umcg-rt-wrappers umcg-rt-explicit)
cmd() {
	case "$1" in
	pthreads) echo "$out/demo_pthreads" ;;
	umcg-rt) echo "$demo" ;;
	umcg-rt-no-interpose) echo "env UMCG_INTERPOSE=0 $demo" ;;
	umcg-rt-unpinned) echo "$demo -U" ;;
	umcg-rt-wrappers) echo "$demo -W" ;;
	umcg-rt-explicit) echo "env UMCG_DETECT=0 $demo -W" ;;
	esac
}

echo "# peers workload 1: $(date -u '+%F %T') UTC, $(nproc) CPUs, kernel $(uname -r)," \
	"$runs interleaved runs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= runs; r++)); do
	for s in "${systems[@]}"; do
		t=$($(cmd "$s") | awk '/elapsed/ { print $2 }')
		[ -n "$t" ] || { echo "peers: $s failed" >&2; exit 1; }
		echo "$s $t" >>"$out/times"
	done
done
printf "%-21s %8s %8s %8s %8s\n" system median min max ratio
awk '{ v[$1] = v[$1] " " $2 } END { for (s in v) print s v[s] }' "$out/times" |
	while read -r s rest; do
		echo "$s $(tr ' ' '\n' <<<"$rest" | sort -g | awk '{ a[NR] = $1 } END {
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			print m, a[1], a[NR] }')"
	done | sort -k2 -g | awk 'NR == 1 { best = $2 } {
		printf "%-21s %8.3f %8.3f %8.3f %7.2fx\n", $1, $2, $3, $4, $2 / best }'
