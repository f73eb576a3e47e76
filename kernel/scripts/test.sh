#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh - build the kernel (build.sh), the static test binaries and an
# initramfs, boot it under QEMU (TCG, 2 vCPUs) and turn the guest's verdict
# (isa-debug-exit) into this script's exit code: 0 = all tests passed.
#
#   KDEBUG=1      use the debug kernel (lockdep, DEBUG_ATOMIC_SLEEP)
#   KDEBUG=2      the same + KASAN (generic, outline)
#   KTEST=a,b     run only /tests/a and /tests/b in the guest (lib_test_x: the library's test_x)
#   KLIB=0        leave the library's tests (lib_test_*) out
#   KSCALE=n      UMCG_TEST_SCALE for the library's tests (default 50: TCG is slow)
#   KBACKEND=b    UMCG_BACKEND for them (default kernel; user to compare)
#   KBENCH=1      run kernel/scripts/bench.cmds in the guest instead of the tests
#   KBENCH_CMDS=f that command file instead (e.g. kernel/scripts/demo.cmds)
#   KTRANS=n      state transitions for test_stress's counted case (default 10^6)
#   KTIMEOUT=s    wall-clock limit for the guest (default 900; 1800 under KDEBUG=2,
#                 whose whole suite took 600-700 s of guest at host load 8-18)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KBUILD=${KBUILD:-$here/../build/kernel}
KDEBUG=${KDEBUG:-0}
export KBUILD KDEBUG
"$here/scripts/build.sh"
KBUILD=$(cd "$KBUILD" && pwd)
case "$KDEBUG" in 1) out=$KBUILD/out-debug ;; 2) out=$KBUILD/out-kasan ;; *) out=$KBUILD/out ;; esac

t0=$(date +%s)
root=$KBUILD/initramfs
rm -rf "$root"
mkdir -p "$root"/{tests,proc,sys,dev,tmp}
CFLAGS="-static -O2 -g -Wall -Wextra -Werror -std=gnu11 -pthread"
gcc $CFLAGS "$here/tests/init.c" -o "$root/init"
for t in "$here"/tests/test_*.c; do
	n=$(basename "$t" .c)
	gcc $CFLAGS -I"$here/tests" "$t" -o "$root/tests/$n"
done
# The library's own test suite, linked statically (make VARIANT=static), as
# /tests/lib_test_*: init runs it with UMCG_BACKEND=kernel and
# UMCG_TEST_SCALE=$KSCALE. KLIB=0 leaves it out.
if [ "${KLIB:-1}" = 1 ]; then
	nice -n 10 make -s -C "$here/.." -j"${JOBS:-2}" VARIANT=static tests
	for t in "$here"/../build/static/tests/test_*; do
		cp "$t" "$root/tests/lib_$(basename "$t")"
	done
fi
# KBENCH=1: the benchmarks of kernel/scripts/bench.cmds instead of the tests
if [ "${KBENCH:-0}" = 1 ]; then
	nice -n 10 make -s -C "$here/.." -j"${JOBS:-2}" VARIANT=static bench-bin examples
	mkdir -p "$root/bench"
	cp "$here"/../build/static/bench/bench_* "$here"/../build/static/bench/demo_pthreads \
		"$here"/../build/static/examples/fifo_demo "$root/bench/"
	gcc $CFLAGS -I"$here/tests" "$here/tests/kbench.c" -o "$root/bench/kbench"
	cp "${KBENCH_CMDS:-$here/scripts/bench.cmds}" "$root/bench/cmds"
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$KBUILD/initramfs.cpio.gz"
echo "=== initramfs: $(ls "$root/tests" | wc -w) test binaries ($(($(date +%s) - t0)) s)"

append="console=ttyS0 panic=-1 oops=panic loglevel=4 rdinit=/init"
[ -n "${KTEST:-}" ] && append="$append umcg.only=$KTEST"
append="$append umcg.scale=${KSCALE:-50}"
[ -n "${KTRANS:-}" ] && append="$append umcg.transitions=$KTRANS"
[ -n "${KBACKEND:-}" ] && append="$append umcg.backend=$KBACKEND"
[ "${KBENCH:-0}" = 1 ] && append="$append umcg.bench=1"
t1=$(date +%s.%N)
set +e
[ "$KDEBUG" = 2 ] && : "${KTIMEOUT:=1800}"
timeout "${KTIMEOUT:-900}" qemu-system-x86_64 -machine q35 -smp 2 -m 512M -nographic \
	-no-reboot -accel tcg -kernel "$out/arch/x86/boot/bzImage" \
	-initrd "$KBUILD/initramfs.cpio.gz" -append "$append" \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null | tee "$KBUILD/guest.log"
rc=${PIPESTATUS[0]}
set -e
echo "=== guest ran $(echo "$(date +%s.%N) - $t1" | bc) s, qemu exit code $rc"
# Any report on the console fails the run, whatever the tests said (all
# variants): BUG: (KASAN's "BUG: KASAN: ...", sleeping in atomic context,
# ...), SLUB's "BUG <cache> (Not tainted): ...", WARNING: (WARN_ON, lockdep's
# "WARNING: possible circular locking dependency", ...), lockdep's INFO:
# reports, UBSAN, oops and panics.
report='Kernel panic|BUG:|BUG [^ ]+ \((Not t|T)ainted\)|KASAN|UBSAN|WARNING:|lockdep|Oops|general protection fault'
report="$report|INFO: (possible|trying to register|lockdep is turned off|task .* blocked)"
if grep -aE "$report" "$KBUILD/guest.log" | grep -v 'KernelAddressSanitizer initialized' >"$KBUILD/guest.reports"; then
	echo "=== kernel log shows a BUG/KASAN/WARNING/lockdep report: FAIL"
	head -n 20 "$KBUILD/guest.reports"
	exit 1
fi
case $rc in
1) echo "=== kernel-test PASSED"; exit 0 ;;
3) echo "=== kernel-test FAILED (tests failed in the guest)"; exit 1 ;;
124) echo "=== kernel-test FAILED (timeout)"; exit 1 ;;
*) echo "=== kernel-test FAILED (qemu exit $rc: the guest did not report)"; exit 1 ;;
esac
