#!/usr/bin/env bash
# plot-trace.sh - render a runtime trace (umcg_rt_trace_export(3), e.g.
# `fifo_demo -x trace.json`) as a timeline PNG: one lane per server, one
# box per run coloured by how it ended (block, yield, park, exit, preempt,
# switch), idle waits in grey, wake-ups (and steals, switches) marked on
# top; runs shorter than 1/300 of the window are widened to stay visible.
#
#   scripts/plot-trace.sh trace.json [out.png] [from_ms] [to_ms]
#
# from_ms/to_ms pick a window (default: the first 20 ms, which keeps the
# boxes visible; "all" for the whole trace). Needs python3 and gnuplot
# (Debian: apt-get install gnuplot-nox).
set -euo pipefail

in=${1:?usage: $0 trace.json [out.png] [from_ms] [to_ms]}
out=${2:-trace.png}
from=${3:-0}
to=${4:-20}
command -v gnuplot >/dev/null || {
	echo "plot-trace: gnuplot not found (apt-get install -y gnuplot-nox)" >&2
	exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one row per slice: lane start_ms end_ms colour-index
# and one per instant (wake, steal, switch) in marks.dat: lane ms
python3 - "$in" "$from" "$to" >"$tmp/boxes.dat" 3>"$tmp/meta" 4>"$tmp/marks.dat" <<'PY'
import json, os, sys
path, lo, hi = sys.argv[1], sys.argv[2], sys.argv[3]
ev = json.load(open(path))["traceEvents"]
ends = {"block": 1, "yield": 2, "park": 3, "exit": 4, "preempt": 5, "switch": 6}
lanes = set()
end_ms = 0.0
rows = []
marks = []
for e in ev:
    if e.get("ph") == "i":
        marks.append((e["tid"], e["ts"] / 1e3))
    if e.get("ph") != "X":
        continue
    s, d = e["ts"] / 1e3, e["dur"] / 1e3
    end_ms = max(end_ms, s + d)
    c = 0 if e.get("cat") == "idle" else ends.get(e.get("args", {}).get("end"), 7)
    rows.append((e["tid"], s, s + d, c))
    lanes.add(e["tid"])
lo = 0.0 if lo == "all" else float(lo)
hi = end_ms if hi == "all" else float(hi)
# a run shorter than 1/300 of the window is drawn that wide (and on top)
minw = (hi - lo) / 300
shown = [(l, max(s, lo), min(t, hi), c) for l, s, t, c in rows if t >= lo and s <= hi]
shown.sort(key=lambda r: r[2] - r[1] < minw)
for lane, s, t, c in shown:
    print(lane, s, max(t, s + minw), c)
with os.fdopen(4, "w") as m:
    m.write("".join("%d %f\n" % (l, t) for l, t in marks if lo <= t <= hi) or "-1 -1\n")
with os.fdopen(3, "w") as m:
    m.write("%d %f %f\n" % (max(lanes) + 1 if lanes else 1, lo, hi))
PY
read -r nlanes lo hi <"$tmp/meta"
gnuplot <<GP
set terminal pngcairo size 1400,$((140 + 70 * nlanes)) font "sans,10"
set output "$out"
set title "umcg runtime trace: $(basename "$in") (one lane per server)"
set xlabel "time (ms)"
set xrange [$lo:$hi]
set yrange [-0.6:$nlanes - 0.4]
set ytics 1
set ylabel "server"
set key outside right
set style fill solid 0.9 border rgb "white"
set palette defined (0 "#c8c8c8", 1 "#d62728", 2 "#2ca02c", 3 "#1f77b4", 4 "#9467bd", 5 "#ff7f0e", 6 "#17becf", 7 "#000000")
set cbrange [0:7]
unset colorbox
plot "$tmp/boxes.dat" using (\$2+\$3)/2:1:(\$2):(\$3):(\$1-0.35):(\$1+0.35):4 with boxxyerror lc palette notitle, \
     NaN with boxes lc rgb "#c8c8c8" title "idle", \
     NaN with boxes lc rgb "#d62728" title "run, ended: block", \
     NaN with boxes lc rgb "#2ca02c" title "yield", \
     NaN with boxes lc rgb "#1f77b4" title "park", \
     NaN with boxes lc rgb "#9467bd" title "exit", \
     NaN with boxes lc rgb "#ff7f0e" title "preempt", \
     NaN with boxes lc rgb "#17becf" title "switch", \
     "$tmp/marks.dat" using 2:(\$1+0.45) with points pt 11 ps 0.8 lc rgb "black" title "wake, steal"
GP
echo "plot-trace: wrote $out"
