#!/usr/bin/env bash
# run-tests.sh - build and run the umcg test suite.
#
#   scripts/run-tests.sh                 plain -O2, ThreadSanitizer, ASan+UBSan, then
#                                        (when run as root) plain again as uid 65534
#   scripts/run-tests.sh --variant tsan  one variant
#   scripts/run-tests.sh --no-build      use what is built
#
# Every test binary prints "N passed, N failed"; this script adds them up
# and ends with "total: N passed, N failed". Exit status: 0 iff all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

variants=(plain tsan asan)
build=1
unpriv=1
while [ $# -gt 0 ]; do
	case "$1" in
	--variant) variants=("$2"); shift ;;
	--no-build) build=0 ;;
	--no-unpriv) unpriv=0 ;;
	*) echo "usage: $0 [--variant plain|tsan|asan] [--no-build] [--no-unpriv]" >&2; exit 2 ;;
	esac
	shift
done

jobs=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0
failed_bins=()

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1 ${UBSAN_OPTIONS:-}"

# run_bin LABEL CMD... : run one test binary, add up its closing line
run_bin() {
	local label=$1; shift
	local out
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	rm -f "$out"
	if [ -n "$line" ]; then
		local p f
		p=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
		total_pass=$((total_pass + p))
		total_fail=$((total_fail + f))
	fi
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		[ -z "$line" ] && total_fail=$((total_fail + 1))
		failed_bins+=("$label")
	fi
}

# run_demo LABEL CMD... : the demo is a test too (exit 0 iff every worker finished)
run_demo() {
	local label=$1; shift
	local out
	out=$(mktemp)
	if "$@" >"$out" 2>&1; then
		total_pass=$((total_pass + 1)); echo "ok   demo $label"
	else
		total_fail=$((total_fail + 1)); failed_bins+=("demo $label"); echo "FAIL demo $label (exit $?):"
		grep -vE '^  (server|worker) ' "$out" | tail -n 25 | sed 's/^/    /'
	fi
	rm -f "$out"
}

# run_variant VARIANT DIR [PREFIX...]: DIR holds tests/ and examples/
run_variant() {
	local v=$1 dir=$2 prefix=("${@:3}")
	local scale=1
	case "$v" in tsan) scale=10 ;; asan) scale=4 ;; esac
	echo "=== variant $v (UMCG_TEST_SCALE=$scale) ${prefix[*]:+as ${prefix[*]}}"
	for t in "$dir"/tests/test_*; do
		[ -x "$t" ] || continue
		run_bin "$v:$(basename "$t")${prefix[*]:+ (unpriv)}" \
			"${prefix[@]}" env UMCG_TEST_SCALE=$scale "$t"
	done
	# issue 7's full-size stress: 4 servers x 1000 workers x 1000 mixed raw and
	# wrapped blocking operations (operations divided by the scale under the
	# sanitizers); unprivileged with 400 workers: the locked-memory limit allows
	# ~500 workers blocked raw at once (docs/detection.md, section 3)
	local full=1
	[ ${#prefix[@]} -gt 0 ] && full=400
	if [ -x "$dir"/tests/test_detect ]; then
		run_bin "$v:stress-full${prefix[*]:+ (unpriv)}" "${prefix[@]}" \
			env UMCG_TEST_SCALE=$scale UMCG_TEST_STRESS_FULL=$full "$dir"/tests/test_detect -t stress_mixed
	fi
	# the switch-in alarm's relay thread (src/detect/relay.c), which kernels
	# before 6.9 need (they do not signal the alarm): forced here, where the
	# kernel would signal; the plain build only
	if [ "$v" = plain ]; then
		for t in test_detect test_detect_edge test_interpose; do
			[ -x "$dir/tests/$t" ] || continue
			run_bin "$v:$t relay${prefix[*]:+ (unpriv)}" "${prefix[@]}" \
				env UMCG_TEST_SCALE=$scale UMCG_DETECT_ALARM=relay "$dir/tests/$t"
		done
	fi
	if [ -x "$dir"/examples/fifo_demo ]; then
		run_demo "$v default${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/fifo_demo
		run_demo "$v -s 1${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/fifo_demo -s 1 -n 50
		run_demo "$v -i eventfd${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/fifo_demo -i eventfd -n 100
		run_demo "$v -i tid${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/fifo_demo -i tid -n 100
		run_demo "$v -W${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/fifo_demo -W -n 100
		run_demo "$v -U${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/fifo_demo -U -n 100
		run_demo "$v -W explicit${prefix[*]:+ (unpriv)}" "${prefix[@]}" env UMCG_DETECT=0 "$dir"/examples/fifo_demo -W -n 100
	fi
	if [ -x "$dir"/examples/epoll_server ]; then
		run_demo "$v epoll_server${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/epoll_server -n 100
	fi
	# the other two policies' demos (examples/steal_demo.c, examples/prio_demo.c)
	if [ -x "$dir"/examples/steal_demo ]; then
		run_demo "$v steal_demo${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/steal_demo -w 100
		run_demo "$v steal_demo -s 1${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/steal_demo -s 1 -w 50
	fi
	if [ -x "$dir"/examples/prio_demo ]; then
		run_demo "$v prio_demo${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/prio_demo -n 100
		run_demo "$v prio_demo -s 1${prefix[*]:+ (unpriv)}" "${prefix[@]}" "$dir"/examples/prio_demo -s 1 -n 50
	fi
}

for v in "${variants[@]}"; do
	if [ $build -eq 1 ]; then
		make -s -j"$jobs" VARIANT="$v" lib tests examples || { echo "build of $v failed"; exit 1; }
	fi
	run_variant "$v" build/"$v"
done

# Unprivileged: the library must work for a normal user (no CAP_*, paranoid perf).
if [ $unpriv -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 &&
	[ -d build/plain/tests ]; then
	# copy the (statically linked) binaries where uid 65534 can reach them
	udir=$(mktemp -d /tmp/umcg-unpriv.XXXXXX)
	mkdir -p "$udir"/tests "$udir"/examples
	cp build/plain/tests/test_* "$udir"/tests/
	cp build/plain/examples/* "$udir"/examples/ 2>/dev/null || true
	chmod -R a+rX "$udir"
	run_variant plain "$udir" setpriv --reuid=65534 --regid=65534 --clear-groups
	rm -rf "$udir"
fi

echo
if [ ${#failed_bins[@]} -gt 0 ]; then
	echo "failed: ${failed_bins[*]}"
fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
