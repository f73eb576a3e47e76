#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh - build the UMCG kernel: Debian's linux-source-6.1 + our patches
# + a tinyconfig-based config fragment. Fetches nothing.
#
#   kernel/scripts/build.sh            -> $KOUT/arch/x86/boot/bzImage
#   KDEBUG=1 kernel/scripts/build.sh   -> lockdep/DEBUG_ATOMIC_SLEEP variant
#   KDEBUG=2 kernel/scripts/build.sh   -> the same + KASAN (generic, outline)
#
# Layout (all under $KBUILD, default build/kernel, which is gitignored):
#   src/            the extracted, patched source tree (shared by variants)
#   src.stamp       hash of tarball + patches the tree was made from
#   out[-debug|-kasan]/  object tree (make O=...), bzImage (KDEBUG=0, 1, 2)
#   out*/cfg.stamp  hash of the config fragments used
# A changed patch re-extracts the source; a changed fragment re-configures;
# otherwise the build is incremental.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)           # kernel/
KBUILD=${KBUILD:-$here/../build/kernel}
KDEBUG=${KDEBUG:-0}
TARBALL=${KERNEL_TARBALL:-$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1)}
JOBS=${JOBS:-2}

if [ -z "$TARBALL" ] || [ ! -f "$TARBALL" ]; then
	echo "build.sh: /usr/src/linux-source-6.1.tar.* missing: apt-get install linux-source-6.1" >&2
	exit 2
fi
mkdir -p "$KBUILD"
KBUILD=$(cd "$KBUILD" && pwd)
src=$KBUILD/src
case "$KDEBUG" in
0) out=$KBUILD/out ;;
1) out=$KBUILD/out-debug ;;
2) out=$KBUILD/out-kasan ;;
*) echo "build.sh: KDEBUG=$KDEBUG: 0, 1 (lockdep) or 2 (lockdep + KASAN)" >&2; exit 2 ;;
esac

t0=$(date +%s)
src_hash=$( (stat -c "%n %s %Y" "$TARBALL"; cat "$here"/patches/*.patch 2>/dev/null || true) | sha256sum | cut -d' ' -f1)
if [ ! -f "$KBUILD/src.stamp" ] || [ "$(cat "$KBUILD/src.stamp")" != "$src_hash" ]; then
	echo "=== extracting $TARBALL"
	rm -rf "$src" "$KBUILD/src.stamp" "$KBUILD"/out*/cfg.stamp
	mkdir -p "$src.tmp"
	tar -xf "$TARBALL" -C "$src.tmp" --strip-components=1
	for p in "$here"/patches/*.patch; do
		[ -e "$p" ] || continue
		echo "=== applying $(basename "$p")"
		patch -p1 -s -d "$src.tmp" <"$p"
	done
	mv "$src.tmp" "$src"
	echo "$src_hash" >"$KBUILD/src.stamp"
	echo "=== source ready in $(($(date +%s) - t0)) s"
fi

frags=("$here/config/umcg.config")
[ "$KDEBUG" -ge 1 ] && frags+=("$here/config/debug.config")
[ "$KDEBUG" -ge 2 ] && frags+=("$here/config/kasan.config")
cfg_hash=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
mkdir -p "$out"
if [ ! -f "$out/cfg.stamp" ] || [ "$(cat "$out/cfg.stamp")" != "$cfg_hash" ]; then
	echo "=== configuring (tinyconfig + ${frags[*]##*/})"
	make -s -C "$src" O="$out" tinyconfig >/dev/null
	KCONFIG_CONFIG="$out/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
		"$out/.config" "${frags[@]}" >/dev/null
	make -s -C "$src" O="$out" olddefconfig >/dev/null
	# every option the fragments ask for must have survived olddefconfig
	bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=n) opt=${line%%=*}
			grep -q "^$opt=" "$out/.config" && { echo "config: $opt should be off" >&2; bad=1; } ;;
		CONFIG_*=*) grep -qxF "$line" "$out/.config" ||
			{ echo "config: '$line' did not stick" >&2; bad=1; } ;;
		esac
	done < <(cat "${frags[@]}")
	[ $bad = 0 ] || exit 1
	echo "$cfg_hash" >"$out/cfg.stamp"
fi

echo "=== building (nice -n 19 make -j$JOBS) in $out"
t1=$(date +%s)
nice -n 19 make -s -C "$src" O="$out" -j"$JOBS" KCFLAGS="${KCFLAGS:--Werror}" bzImage
echo "=== bzImage: $out/arch/x86/boot/bzImage (build $(($(date +%s) - t1)) s, total $(($(date +%s) - t0)) s)"
