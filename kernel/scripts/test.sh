#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh - build the kernel (build.sh), the static test binaries and an
# initramfs, boot it under QEMU (TCG, 2 vCPUs) and turn the guest's verdict
# (isa-debug-exit) into this script's exit code: 0 = all tests passed.
#
#   KDEBUG=1      use the debug kernel (lockdep, DEBUG_ATOMIC_SLEEP)
#   KTEST=name    run only /tests/name in the guest
#   KTIMEOUT=s    wall-clock limit for the guest (default 900)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KBUILD=${KBUILD:-$here/../build/kernel}
KDEBUG=${KDEBUG:-0}
export KBUILD KDEBUG
"$here/scripts/build.sh"
KBUILD=$(cd "$KBUILD" && pwd)
if [ "$KDEBUG" = 1 ]; then out=$KBUILD/out-debug; else out=$KBUILD/out; fi

t0=$(date +%s)
root=$KBUILD/initramfs
rm -rf "$root"
mkdir -p "$root"/{tests,proc,sys,dev}
CFLAGS="-static -O2 -g -Wall -Wextra -Werror -std=gnu11 -pthread"
gcc $CFLAGS "$here/tests/init.c" -o "$root/init"
for t in "$here"/tests/test_*.c; do
	n=$(basename "$t" .c)
	gcc $CFLAGS -I"$here/tests" "$t" -o "$root/tests/$n"
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$KBUILD/initramfs.cpio.gz"
echo "=== initramfs: $(ls "$root/tests" | wc -w) test binaries ($(($(date +%s) - t0)) s)"

append="console=ttyS0 panic=-1 oops=panic loglevel=4 rdinit=/init"
[ -n "${KTEST:-}" ] && append="$append umcg.only=$KTEST"
t1=$(date +%s.%N)
set +e
timeout "${KTIMEOUT:-900}" qemu-system-x86_64 -machine q35 -smp 2 -m 512M -nographic \
	-no-reboot -accel tcg -kernel "$out/arch/x86/boot/bzImage" \
	-initrd "$KBUILD/initramfs.cpio.gz" -append "$append" \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null | tee "$KBUILD/guest.log"
rc=${PIPESTATUS[0]}
set -e
echo "=== guest ran $(echo "$(date +%s.%N) - $t1" | bc) s, qemu exit code $rc"
grep -qE 'Kernel panic|BUG:|WARNING:|INFO: possible|lockdep|Oops' "$KBUILD/guest.log" &&
	{ echo "=== kernel log shows a BUG/WARNING/lockdep report: FAIL"; exit 1; }
case $rc in
1) echo "=== kernel-test PASSED"; exit 0 ;;
3) echo "=== kernel-test FAILED (tests failed in the guest)"; exit 1 ;;
124) echo "=== kernel-test FAILED (timeout)"; exit 1 ;;
*) echo "=== kernel-test FAILED (qemu exit $rc: the guest did not report)"; exit 1 ;;
esac
