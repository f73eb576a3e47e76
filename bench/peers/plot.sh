#!/usr/bin/env bash
# bench/peers/plot.sh - plot the peers benchmark's results (run.sh -o DIR):
# one panel per workload and case, a bar per system at its median with the
# min..max range as an error bar; umcg runtime bars in blue, peers in grey.
#
#   bench/peers/plot.sh <results_dir> [out.png]
#
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
set -euo pipefail
dir=${1:?usage: $0 results_dir [out.png]}
png=${2:-$dir/peers.png}
command -v gnuplot >/dev/null || { echo "plot: gnuplot not found (apt-get install -y gnuplot-nox)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# panel: workload case metric title log(0/1)
panels=(
	"1 demo time_s 1:_README_demo,_elapsed_s_(lower_is_better) 0"
	"2 interactive p50_us 2:_interactive_p50_us_(log,_lower_is_better) 1"
	"2 interactive p99_us 2:_interactive_p99_us_(log,_lower_is_better) 1"
	"3 N=2 switches_per_s 3:_token_ring_N=2,_switches/s_(log,_higher_is_better) 1"
	"3 N=1000 switches_per_s 3:_token_ring_N=1000,_switches/s_(log,_higher_is_better) 1"
	"4 100 req_per_s 4:_server,_100_connections,_requests/s_(higher_is_better) 0"
	"4 1000 req_per_s 4:_server,_1000_connections,_requests/s_(higher_is_better) 0"
	"4 100 p99_ms 4:_server,_100_connections,_p99_ms_(log,_lower_is_better) 1"
	"4 1000 p99_ms 4:_server,_1000_connections,_p99_ms_(log,_lower_is_better) 1"
)
n=0
gp=$tmp/plot.gp
for p in "${panels[@]}"; do
	read -r w c m t lg <<<"$p"
	awk -v w="$w" -v c="$c" -v m="$m" '$1 == w && $2 == c && $4 == m {
		k = $3; if (!(k in n)) o[++ns] = k; v[k, ++n[k]] = $5 }
	END { for (i = 1; i <= ns; i++) { k = o[i]; c = n[k]
		for (x = 1; x <= c; x++) s[x] = v[k, x]
		for (x = 2; x <= c; x++) for (y = x; y > 1 && s[y - 1] + 0 > s[y] + 0; y--) {
			t = s[y]; s[y] = s[y - 1]; s[y - 1] = t }
		med = (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
		print k, med, s[1], s[c], (k ~ /^umcg/) ? 1 : 0 } }' "$dir/samples" |
		sort -k2 -g >"$tmp/p$n.dat"
	[ -s "$tmp/p$n.dat" ] || continue
	{
		echo "set title '${t//_/ }' noenhanced"
		echo "set xtics rotate by -30 noenhanced font ',8'"
		((lg)) && echo "set logscale y" || echo "unset logscale y"
		echo "plot '$tmp/p$n.dat' using 0:2:3:4:(0.6):(\$5 > 0.5 ? 0x3366cc : 0x999999):xtic(1) with boxerrorbars lc rgb variable notitle"
	} >>"$gp.body"
	n=$((n + 1))
done
((n)) || { echo "plot: no samples in $dir/samples" >&2; exit 1; }
rows=$(((n + 1) / 2))
{
	echo "set terminal pngcairo size 1400,$((rows * 380)) font ',10'"
	echo "set output '$png'"
	echo "set style fill solid 0.7 border -1"
	echo "set boxwidth 0.6"
	echo "set grid ytics"
	echo "set yrange [0:*]"
	echo "set bmargin 6"
	echo "set multiplot layout $rows,2 title \"$(head -1 "$dir/header" | sed 's/^# //;s/"//g')\" noenhanced"
	sed 's/^set logscale y/set yrange [*:*]; set logscale y/; s/^unset logscale y/unset logscale y; set yrange [0:*]/' "$gp.body"
	echo "unset multiplot"
} >"$gp"
gnuplot "$gp"
echo "plot: $png"
