#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# mkpatches.sh - developer tool: regenerate kernel/patches/ from the git
# history kept in build/kernel/src (a "base" commit of the pristine files,
# then one commit per patch; amend them with git in that tree), and
# refresh the source stamp so build.sh keeps the tree (no re-extract).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KBUILD=${KBUILD:-$here/../build/kernel}
src=$KBUILD/src
base=$(git -C "$src" rev-list --max-parents=0 HEAD)
rm -f "$here"/patches/*.patch
git -C "$src" format-patch -q --no-signature -o "$here/patches" "$base"..HEAD
TARBALL=${KERNEL_TARBALL:-$(ls /usr/src/linux-source-6.1.tar.* | head -n1)}
(stat -c "%n %s %Y" "$TARBALL"; cat "$here"/patches/*.patch) | sha256sum | cut -d' ' -f1 >"$KBUILD/src.stamp"
ls "$here/patches"
