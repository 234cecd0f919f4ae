#!/usr/bin/env bash
# What test/drivers needs to check the sample drivers in lab/drivers:
#   - linux-headers-amd64: Debian's current kernel headers, to build the Linux guest module
#     with Kbuild (the running kernel on CI machines is not Debian's, so we never use
#     /lib/modules/$(uname -r));
#   - clang: to type-check the Windows drivers against our stand-in WDK header with a
#     Windows target (there is no WDK on Linux);
#   - make and gcc: Kbuild and the host-side protocol agreement program;
#   - checkpatch.pl: Debian ships no checkpatch package. The script is inside the kernel
#     source tarball of linux-source-6.1, so we install that package and extract the three
#     files checkpatch needs into /var/cache/vmbus-bench/checkpatch. The tests skip the
#     style check visibly when that did not work.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "30-drivers: not root or no apt-get; driver build checks will be skipped" >&2
  exit 0
fi

need=()
dpkg -s linux-headers-amd64 >/dev/null 2>&1 || need+=(linux-headers-amd64)
command -v clang >/dev/null || need+=(clang)
# wasm-ld (lld): links the C drivers to WebAssembly for the emulator (src/devices/wasm/build.ts).
command -v wasm-ld >/dev/null || need+=(lld)
# patch: the tests' unfixed-driver fixtures are diffs of the fixed sources (build.ts).
command -v patch >/dev/null || need+=(patch)
command -v make >/dev/null || need+=(make)
command -v gcc >/dev/null || need+=(gcc)
# checkpatch.pl needs more of Perl than perl-base (Term::ANSIColor, Encode).
perl -MTerm::ANSIColor -MEncode -e1 >/dev/null 2>&1 || need+=(perl)
command -v xz >/dev/null || need+=(xz-utils)

ckdir=/var/cache/vmbus-bench/checkpatch
if [ ! -x "$ckdir/scripts/checkpatch.pl" ]; then
  ls /usr/src/linux-source-6.1.tar.xz >/dev/null 2>&1 || need+=(linux-source-6.1)
fi

if [ "${#need[@]}" -gt 0 ]; then
  echo "30-drivers: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -x "$ckdir/scripts/checkpatch.pl" ]; then
  tarball="$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1 || true)"
  if [ -n "$tarball" ]; then
    tmp="$(mktemp -d)"
    # checkpatch reads its spelling list and the const-struct list from scripts/ beside it.
    # (The archive's top folder is linux-source-6.1; wildcards avoid depending on it.)
    tar -xf "$tarball" -C "$tmp" --wildcards \
      '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
    mkdir -p "$ckdir"
    rm -rf "$ckdir/scripts"
    mv "$tmp"/*/scripts "$ckdir/scripts"
    rm -rf "$tmp"
    chmod +x "$ckdir/scripts/checkpatch.pl"
    echo "30-drivers: checkpatch.pl extracted from $tarball"
  else
    echo "30-drivers: linux-source-6.1 not available; checkpatch check will be skipped" >&2
  fi
fi

ls -d /usr/src/linux-headers-*-amd64 2>/dev/null || echo "30-drivers: no amd64 headers dir found" >&2
