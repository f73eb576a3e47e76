#!/usr/bin/env bash
# run-bench.sh - run every benchmark binary of a build and summarise.
#
#   scripts/run-bench.sh [BUILD_DIR]        default build/plain (what `make bench` passes)
#   scripts/run-bench.sh --summarize DIR/all-results.txt [RUNS]
#                                           summary table of saved results again
#
# Environment:
#   BENCH_RUNS=N    run each latency binary N times (default 3); the summary
#                   gives, per row, the median over the runs of p50, p99 and
#                   of the ratios against the baseline measured in the same
#                   run, plus the range of p50 over the runs.
#   BENCH_ARGS=...  extra options for the latency binaries (e.g. "-n 2000
#                   -p same"); see `BUILD_DIR/bench/bench_switch -h`.
#   BENCH_ONLY=...  run only the binaries whose name contains one of these
#                   words (e.g. "switch idle"); default all.
#   BENCH_OUT=DIR   where the raw logs go (default BUILD_DIR/bench-results).
#
# Latency binaries (bench_switch, bench_block, bench_idle: their -h lists
# -m) print their own table (times in microseconds) and, with -m (always
# passed here), RESULT lines (times in ns) that the summary uses. Any other
# bench_* binary (e.g. bench_designs) has its own options and output: it
# is run once, with its defaults, and its output is shown as is.
# Exit status: 0 iff every run of every binary succeeded.
set -uo pipefail

# summarize FILE RUNS: the summary table of the RESULT lines in FILE
summarize() {
	echo "# summary: median over $2 run(s) (times in microseconds; x_ = ratio vs the"
	echo "# baseline of the same pinning measured in the same run; p50 range = min..max over runs)"
	awk '
function med(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	if (n == 0) return ""
	if (n % 2) return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(list,   n, a, i, m) { n = split(list, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function hi(list,   n, a, i, m) { n = split(list, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
/^RESULT / {
	delete f
	for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	key = f["bench"] SUBSEP f["metric"] SUBSEP f["pin"] SUBSEP f["hint"]
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	p50[key] = p50[key] " " f["p50"]; p99[key] = p99[key] " " f["p99"]
	if ("r50" in f) { r50[key] = r50[key] " " f["r50"]; r99[key] = r99[key] " " f["r99"] }
	if ("samecpu" in f) { v = f["samecpu"]; sub(/%$/, "", v); sc[key] = sc[key] " " v }
	if ("notslept" in f) ns[key] = ns[key] " " f["notslept"]
	runs[key]++
}
END {
	printf "%-7s %-11s %-5s %-4s %5s %8s %8s %7s %7s  %-15s %s\n", "bench", "metric", "pin", "hint", "runs", "p50", "p99", "x_p50", "x_p99", "p50 range", "notes (medians)"
	for (k = 1; k <= nk; k++) {
		key = order[k]; split(key, p, SUBSEP)
		xr50 = (key in r50) ? sprintf("%7.2f", med(r50[key])) : sprintf("%7s", "-")
		xr99 = (key in r99) ? sprintf("%7.2f", med(r99[key])) : sprintf("%7s", "-")
		notes = ""
		if (key in sc) notes = notes sprintf("samecpu=%.0f%% (%.0f..%.0f) ", med(sc[key]), lo(sc[key]), hi(sc[key]))
		if (key in ns) notes = notes sprintf("notslept=%s", med(ns[key]))
		rng = sprintf("%.2f..%.2f", lo(p50[key]) / 1000, hi(p50[key]) / 1000)
		printf "%-7s %-11s %-5s %-4s %5d %8.2f %8.2f %s %s  %-15s %s\n", p[1], p[2], p[3], p[4], runs[key], med(p50[key]) / 1000, med(p99[key]) / 1000, xr50, xr99, rng, notes
	}
}' "$1"
}

if [ "${1:-}" = --summarize ]; then
	# re-summarize a saved all-results.txt: --summarize FILE [RUNS]
	summarize "${2:?usage: $0 --summarize all-results.txt [runs]}" "${3:-?}"
	exit
fi

build=${1:-build/plain}
runs=${BENCH_RUNS:-3}
out=${BENCH_OUT:-$build/bench-results}
read -r -a extra <<<"${BENCH_ARGS:-}"

if [ ! -d "$build/bench" ]; then
	echo "run-bench: no $build/bench (build it first: make VARIANT=... bench-bin)" >&2
	exit 2
fi
case "$runs" in '' | *[!0-9]* | 0) echo "run-bench: BENCH_RUNS must be >= 1" >&2; exit 2 ;; esac
mkdir -p "$out" || exit 2

bins=()
for b in "$build"/bench/bench_*; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	if [ -n "${BENCH_ONLY:-}" ]; then
		keep=0
		for w in $BENCH_ONLY; do
			case "$(basename "$b")" in *"$w"*) keep=1 ;; esac
		done
		[ $keep = 1 ] || continue
	fi
	bins+=("$b")
done
if [ ${#bins[@]} -eq 0 ]; then
	echo "run-bench: no bench_* binaries in $build/bench" >&2
	exit 2
fi

# which library source was measured (the tree is not always committed)
root=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "$root" && cat $(ls src/*/*.[ch] include/*.h 2>/dev/null | sort) 2>/dev/null | sha256sum | cut -c1-12)
echo "# run-bench: $(date '+%Y-%m-%d %H:%M:%S %z'), kernel $(uname -r), $(nproc) CPUs," \
	"library source hash $tree (sha256 of src/*/*.[ch] include/*.h)," \
	"$runs run(s) per binary, args: ${BENCH_ARGS:-(defaults)}, logs in $out," \
	"load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
status=0
all="$out/all-results.txt"
: >"$all"
for b in "${bins[@]}"; do
	name=$(basename "$b")
	# the RESULT protocol of bench_common (-m), or a binary of its own kind
	if "$b" -h 2>/dev/null | grep -q -- '^  -m '; then
		n=$runs
		args=(-m "${extra[@]}")
	else
		n=1
		args=()
	fi
	for ((r = 1; r <= n; r++)); do
		log="$out/$name.$r.log"
		echo
		echo "## $name, run $r/$n"
		start=$(date +%s)
		"$b" "${args[@]}" >"$log" 2>&1
		rc=$?
		grep -v '^RESULT ' "$log"
		echo "## $name run $r: exit $rc, $(($(date +%s) - start)) s, load average after:" \
			"$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
		if [ $rc -ne 0 ]; then
			status=1
			continue
		fi
		grep '^RESULT ' "$log" | sed "s/^RESULT /RESULT run=$r /" >>"$all"
	done
done

echo
summarize "$all" "$runs" | tee "$out/summary.txt"
exit $status
