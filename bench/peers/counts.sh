#!/usr/bin/env bash
# bench/peers/counts.sh - where the README demo's time goes, per operation,
# in counts that do not depend on the machine's load: system calls (and
# the main kinds), context switches (and how many were preemptions: the
# task switched out while still runnable), signals, irq_work interrupts
# (the self-IPI of a perf wake-up), and CPU time (user + sys of every
# thread, spinning watchers included). RUNS (default 3) interleaved runs per
# system, medians. Needs perf with tracepoint access (root, or
# perf_event_paranoid <= -1).
#
#   bench/peers/counts.sh [build_dir]        (default build/plain)
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/plain}
runs=${RUNS:-3}
demo=$build/examples/fifo_demo
[ -x "$demo" ] || { echo "counts: $demo missing: run make first" >&2; exit 2; }
command -v perf >/dev/null || { echo "counts: perf missing" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -pthread -o "$out/demo_pthreads" bench/peers/demo_pthreads.c || exit 2
ops=$((64 * 200))

systems=(pthreads umcg-rt umcg-rt-no-interpose umcg-rt-wrappers umcg-rt-explicit)
cmd() {
	case "$1" in
	pthreads) echo "$out/demo_pthreads" ;;
	umcg-rt) echo "$demo" ;;
	umcg-rt-no-interpose) echo "env UMCG_INTERPOSE=0 $demo" ;;
	umcg-rt-wrappers) echo "$demo -W" ;;
	umcg-rt-explicit) echo "env UMCG_DETECT=0 $demo -W" ;;
	esac
}
ev=raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_ioctl
ev=$ev,syscalls:sys_enter_sched_setaffinity,syscalls:sys_enter_sched_yield
ev=$ev,sched:sched_switch,signal:signal_deliver,irq_vectors:irq_work_entry,task-clock

echo "# peers counts: $(date -u '+%F %T') UTC, $(nproc) CPUs, $runs interleaved runs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg); per operation ($ops operations)"
for ((r = 1; r <= runs; r++)); do
	for s in "${systems[@]}"; do
		# shellcheck disable=SC2046
		perf stat -x, -e "$ev" -e sched:sched_switch --filter 'prev_state == 0' \
			-o "$out/stat" -- $(cmd "$s") >"$out/stdout" 2>&1 ||
			{ echo "counts: $s failed" >&2; cat "$out/stdout" >&2; exit 1; }
		t=$(awk '/elapsed/ { print $2 }' "$out/stdout")
		# perf -x, lines: value,unit,event,...; the filtered switch event comes last
		awk -F, -v s="$s" -v t="$t" -v ops=$ops '
			$3 ~ /task-clock/ { cpu = $1 / 1e3 }
			$3 == "raw_syscalls:sys_enter" { sc = $1 }
			$3 == "syscalls:sys_enter_futex" { fx = $1 }
			$3 == "syscalls:sys_enter_ioctl" { io = $1 }
			$3 == "syscalls:sys_enter_sched_setaffinity" { sa = $1 }
			$3 == "syscalls:sys_enter_sched_yield" { y = $1 }
			$3 == "sched:sched_switch" { if (sw == "") sw = $1; else pre = $1 }
			$3 == "signal:signal_deliver" { sig = $1 }
			$3 == "irq_vectors:irq_work_entry" { iw = $1 }
			END { printf "%s %s %.3f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.1f\n", s, t,
				cpu, sc / ops, fx / ops, io / ops, sa / ops, y / ops, sw / ops,
				pre / ops, sig / ops, iw / ops, cpu * 1e6 / ops }' "$out/stat" >>"$out/rows"
	done
done
printf "%-21s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %6s %7s\n" system elapsed cpu_s \
	sysc futex ioctl setaff yield switch preemp signal irqwork cpu_us
for s in "${systems[@]}"; do
	awk -v s="$s" '$1 == s' "$out/rows" | sort -k2 -g |
		awk -v n="$runs" '{ r[NR] = $0 } END { print r[int((n + 1) / 2)] }'
done | awk '{ printf "%-21s %7.3f %7.3f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %7.1f\n",
	$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }'
echo "# per operation, the run with the median elapsed time; cpu_us: CPU time per operation"
