#!/usr/bin/env bash
# plot-designs.sh - turn bench_designs' TSV into one PNG (issue 3).
#
#   scripts/plot-designs.sh designs.tsv [out.png]     (default docs/idle-designs.png)
#
# The TSV comes from `build/plain/bench/bench_designs -o designs.tsv`: one
# row per result, the section name in column 1 (lat, sys_busy, sys_one,
# sys_two, cpu, tput, meta), a "#section ..." header line per section.
# Panels (those whose section is missing are left out):
#   1, 2  idle-server wake-up latency p50 / p99 per design and pinning
#         (stk-nogp: the stack without its grace-period waits, a diagnostic)
#   3, 4  throughput (ops/s, median with min..max bars) vs servers for the
#         first two workloads, per design, plain threads as a dashed line
#   5     threads woken per round with two idle servers (1 or 2 appends)
#   6     system calls per operation (workers + servers), last workload
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
set -euo pipefail

in=${1:?usage: $0 designs.tsv [out.png]}
out=${2:-docs/idle-designs.png}
command -v gnuplot >/dev/null || {
	echo "plot-designs: gnuplot not found (apt-get install -y gnuplot-nox)" >&2
	exit 2
}
[ -r "$in" ] || {
	echo "plot-designs: cannot read $in" >&2
	exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- reshape the sections into small gnuplot tables --------------------------
awk -F'\t' -v dir="$tmp" '
function put(file, line) { print line > (dir "/" file) }
$1 == "meta" { meta[$2] = $3 }
$1 == "lat" {
	# design pin n min p50 mean p99 ...
	p50[$3, $2] = $6; p99[$3, $2] = $8; lat_seen[$3] = 1; lat_d[$2] = 1
}
$1 == "tput" {
	# workload design servers runs median min max ... worker_sc server_sc
	wl = $2
	if (!(wl in wl_idx)) { wl_idx[wl] = ++nwl; wl_name[nwl] = wl }
	f = "tput" wl_idx[wl] "_" $3 ".dat"
	if ($3 == "threads") { thr[wl] = $6 } else {
		put(f, $4 "\t" $6 "\t" $7 "\t" $8)
		sc[wl_idx[wl], $3, $4] = $16 + $17
		if ($4 > maxs) maxs = $4
		if (mins == "" || $4 < mins) mins = $4
		tput_d[$3] = 1
	}
}
$1 == "sys_two" {
	# design appends rounds waker_min waker_mean waker_max woken_min woken_mean woken_max srv_sc nvcsw
	two[$2, $3] = $12; two_d[$2] = 1; no++
}
END {
	ord[1] = "futex"; ord[2] = "stack"; ord[3] = "eventfd"; ord[4] = "tid"; ord[5] = "stk-nogp"
	if (length(lat_seen)) {
		h = "#pin"
		for (i = 1; i <= 5; i++) if (ord[i] in lat_d) h = h "\t" ord[i]
		put("lat50.dat", h); put("lat99.dat", h)
		split("same diff none", pins, " ")
		for (k = 1; k <= 3; k++) {
			if (!(pins[k] in lat_seen)) continue
			l50 = pins[k]; l99 = pins[k]
			for (i = 1; i <= 5; i++) if (ord[i] in lat_d) {
				l50 = l50 "\t" ((pins[k], ord[i]) in p50 ? p50[pins[k], ord[i]] : "-")
				l99 = l99 "\t" ((pins[k], ord[i]) in p99 ? p99[pins[k], ord[i]] : "-")
			}
			put("lat50.dat", l50); put("lat99.dat", l99)
		}
	}
	for (w = 1; w <= nwl; w++) {
		if (wl_name[w] in thr)
			put("thr" w ".dat", mins "\t" thr[wl_name[w]] "\n" maxs "\t" thr[wl_name[w]])
		put("wl" w ".name", wl_name[w])
		h = "#servers"
		for (i = 2; i <= 4; i++) if (ord[i] in tput_d) h = h "\t" ord[i]
		put("sc" w ".dat", h)
		for (s = mins; s <= maxs; s++) {
			l = s; any = 0
			for (i = 2; i <= 4; i++) if (ord[i] in tput_d) {
				if ((w, ord[i], s) in sc) { l = l "\t" sc[w, ord[i], s]; any = 1 }
				else l = l "\t-"
			}
			if (any) put("sc" w ".dat", l)
		}
	}
	if (no) {
		split("stack eventfd efd+epx tid", v, " ")
		h = "#appends"
		for (i = 1; i <= 4; i++) if (v[i] in two_d) h = h "\t" v[i]
		put("two.dat", h)
		for (a = 1; a <= 2; a++) {
			l = a " append" (a > 1 ? "s" : ""); any = 0
			for (i = 1; i <= 4; i++) if (v[i] in two_d) {
				if ((v[i], a) in two) { l = l "\t" two[v[i], a]; any = 1 } else l = l "\t-"
			}
			if (any) put("two.dat", l)
		}
	}
	put("title.txt", "idle-server designs (issue 3): " meta["date"] ", kernel " meta["kernel"] \
	    ", " meta["cpus"] " CPUs, load " meta["load_start"] " -> " meta["load_end"])
	put("nwl.txt", nwl + 0)
}' "$in"

nwl=$(cat "$tmp/nwl.txt")
title=$(cat "$tmp/title.txt")
wl1=$(cat "$tmp/wl1.name" 2>/dev/null || echo "")
wl2=$(cat "$tmp/wl2.name" 2>/dev/null || echo "")
last=$nwl

# "plot" clauses for a clustered histogram of FILE: one bar set per column,
# coloured by the column's name (gnuplot cannot compute a colour from columnhead)
# xrange of a clustered histogram of FILE: one cluster per data row
hrange() {
	echo "set xrange [-0.6:$(($(grep -vc '^#' "$1") - 1)).6]"
}
bars() {
	local f=$1 i=2 out="" name
	for name in $(head -1 "$f" | cut -f2-); do
		out="$out \"$f\" using $i:xtic(1) lc rgb c_$(echo "$name" | tr -c 'a-z\n' '_') title \"$name\","
		i=$((i + 1))
	done
	echo "${out%,}"
}

# ---- the plot ---------------------------------------------------------------------
{
	cat <<EOF
set terminal pngcairo size 1600,1500 font "DejaVu Sans,11" noenhanced
set output "$out"
set datafile separator "\t"
set datafile missing "-"
set grid ytics
set style fill solid 0.85 border -1
set style histogram clustered gap 1
set multiplot layout 3,2 title "$title" font ",13"
c_futex = "#7f7f7f"; c_stack = "#1f77b4"; c_eventfd = "#ff7f0e"; c_efd_epx = "#bcbd22"; c_tid = "#2ca02c"; c_stk_nogp = "#aec7e8"
EOF
	if [ -s "$tmp/lat50.dat" ]; then
		for q in 50 99; do
			cat <<EOF
set title "$([ $q = 50 ] && echo 1 || echo 2). idle-server wake-up latency, p$q (us): append+wake -> return from umcg_idle_group_wait"
set style data histograms
$(hrange "$tmp/lat$q.dat")
$([ $q = 99 ] && echo 'set logscale y; set yrange [1:*]; set ylabel "microseconds (log scale)"' || echo 'unset logscale y; set yrange [0:*]; set ylabel "microseconds"')
set xlabel "pinning: same = server+waker one CPU, diff = two CPUs, none = unpinned"
set key top left
plot $(bars "$tmp/lat$q.dat")
EOF
		done
	fi
	for w in 1 2; do
		[ "$w" -le "$nwl" ] || continue
		name=$(cat "$tmp/wl$w.name")
		plots=""
		for d in stack eventfd tid; do
			f="$tmp/tput${w}_$d.dat"
			[ -s "$f" ] || continue
			plots="$plots \"$f\" using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb c_$d title \"$d\","
		done
		[ -s "$tmp/thr$w.dat" ] && plots="$plots \"$tmp/thr$w.dat\" using 1:2 with lines dt 2 lw 2 lc rgb c_futex title \"plain threads\","
		cat <<EOF
set title "$((w + 2)). throughput, workload $name (workers, compute us, sleep us): median, min..max"
set style data linespoints
unset logscale y
set ylabel "operations / s"
set xlabel "servers"
set xtics 1
set autoscale x
set offsets 0.2, 0.2, 0, 0
set yrange [0:*]
set key bottom right
plot ${plots%,}
set offsets 0, 0, 0, 0
EOF
	done
	if [ -s "$tmp/two.dat" ]; then
		cat <<EOF
set title "5. two idle servers, 1 or 2 appends: server threads woken per round (voluntary switches)"
set style data histograms
$(hrange "$tmp/two.dat")
set ylabel "threads woken (nvcsw) per round"
set xlabel "herd: poll on one eventfd wakes both; EPOLLEXCLUSIVE one; tid word chains the second"
set yrange [0:*]
set key top left
plot $(bars "$tmp/two.dat")
EOF
	fi
	if [ "$last" -ge 1 ] && [ -s "$tmp/sc$last.dat" ]; then
		name=$(cat "$tmp/wl$last.name")
		cat <<EOF
set title "6. counted system calls per operation (workers + servers), workload $name"
set style data histograms
$(hrange "$tmp/sc$last.dat")
set ylabel "system calls / operation"
set xlabel "servers"
set yrange [0:*]
set key top left
plot $(bars "$tmp/sc$last.dat")
EOF
	fi
	echo "unset multiplot"
} >"$tmp/plot.gp"

gnuplot "$tmp/plot.gp"
echo "plot-designs: wrote $out"
