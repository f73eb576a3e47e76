#!/usr/bin/env bash
# demo-vs-pthreads.sh - the README demo's workload, fifo_demo (libumcg) against
# 64 plain pthreads, interleaved runs in one go; medians, min..max, ratio.
#
#   scripts/demo-vs-pthreads.sh [BUILD_DIR] [RUNS]     (default build/plain, 5)
#
# Variants: fifo_demo defaults (plain libc calls, transparent detection,
# servers pinned one per CPU), fifo_demo -W (the wrappers, lazy with
# detection), fifo_demo -W with UMCG_DETECT=0 (the explicit points of before),
# demo_pthreads.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/plain}
runs=${2:-5}
make -s VARIANT="$(basename "$dir")" examples bench-bin >/dev/null
declare -A cmd=(
	[pthreads]="$dir/bench/demo_pthreads"
	[umcg]="$dir/examples/fifo_demo"
	[umcg-W]="$dir/examples/fifo_demo -W"
	[umcg-W-nodetect]="env UMCG_DETECT=0 $dir/examples/fifo_demo -W"
)
order=(pthreads umcg umcg-W umcg-W-nodetect)
declare -A times
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $runs interleaved runs"
for r in $(seq 1 "$runs"); do
	for k in "${order[@]}"; do
		t=$(${cmd[$k]} 2>/dev/null | sed -n 's/^  elapsed *\([0-9.]*\) s.*/\1/p')
		[ -n "$t" ] || { echo "$k: run $r failed" >&2; exit 1; }
		times[$k]+="$t "
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minmax() { tr ' ' '\n' | grep . | sort -g | awk 'NR==1{mi=$1} {ma=$1} END {print mi ".." ma}'; }
base=$(echo "${times[pthreads]}" | median)
printf '%-18s %10s %16s %10s\n' variant median_s min..max_s vs_pthreads
for k in "${order[@]}"; do
	m=$(echo "${times[$k]}" | median)
	printf '%-18s %10s %16s %9.2fx\n' "$k" "$m" "$(echo "${times[$k]}" | minmax)" "$(echo "$m / $base" | bc -l)"
done
