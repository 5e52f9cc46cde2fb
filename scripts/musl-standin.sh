#!/usr/bin/env bash
# Makes DIR a stand-in for Heads's musl-cross-make toolchain out of Debian's
# musl-tools, for `[override.musl-cross-make] prebuilt = "DIR"` in
# strata.local.toml:
#
#   DIR/bin/x86_64-linux-musl-gcc        Debian's musl-gcc (wrapper script)
#   DIR/bin/x86_64-linux-musl-{ar,ld,…}  the host binutils (symlinks)
#   DIR/x86_64-linux-musl/include/       the kernel headers (copied), as
#                                        musl-cross-make installs them
#   DIR/x86_64-linux-musl/lib/libc.so    musl's libc.so (copied)
#   DIR/strata-standin.txt               the Debian packages' versions
#
# The override's content is part of every key it reaches; the symlinked
# programs are not copied, so their packages' versions are recorded in
# strata-standin.txt: an upgraded compiler changes the directory's content and
# rebuilds what it compiled.
#
# Needs the packages musl-tools, musl-dev, linux-libc-dev and binutils.
# Usage: scripts/musl-standin.sh DIR   (DIR is created or refreshed)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
arch=x86_64
triple=$arch-linux-musl
for f in /usr/bin/musl-gcc /usr/lib/$triple/libc.so /usr/include/linux/errno.h /usr/bin/ar; do
  if [ ! -e "$f" ]; then
    echo "error: $f is missing: install the Debian packages musl-tools linux-libc-dev binutils" >&2
    exit 1
  fi
done
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "${dir%/}.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/$triple/include" "$tmp/$triple/lib"

# The compiler: musl-gcc, plus the kernel headers beside it (after musl's own
# headers, as a musl-cross-make sysroot has them).
cat >"$tmp/bin/$triple-gcc" <<'EOF'
#!/bin/sh
# Stand-in for musl-cross-make's x86_64-linux-musl-gcc (scripts/musl-standin.sh).
here=$(dirname "$0")
exec /usr/bin/musl-gcc -idirafter "$here/../x86_64-linux-musl/include" "$@"
EOF
chmod 755 "$tmp/bin/$triple-gcc"
ln -s "$triple-gcc" "$tmp/bin/$triple-cc"
for t in ar as ld ld.bfd nm objcopy objdump ranlib readelf size strings strip; do
  ln -s "/usr/bin/$t" "$tmp/bin/$triple-$t"
done

# Kernel headers: what linux-libc-dev installs, asm from its multiarch dir.
for d in linux asm-generic misc mtd rdma scsi sound video xen drm; do
  if [ -d "/usr/include/$d" ]; then
    cp -R --no-preserve=ownership "/usr/include/$d" "$tmp/$triple/include/"
  fi
done
cp -R --no-preserve=ownership /usr/include/x86_64-linux-gnu/asm "$tmp/$triple/include/asm"
cp --no-preserve=ownership "/usr/lib/$triple/libc.so" "$tmp/$triple/lib/libc.so"

{
  echo "Stand-in for musl-cross-make made by scripts/musl-standin.sh from:"
  dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' \
    musl musl-dev musl-tools binutils gcc linux-libc-dev 2>/dev/null || true
  /usr/bin/musl-gcc --version | head -n1
} >"$tmp/strata-standin.txt"

rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir: $triple-gcc (musl-gcc), binutils, kernel headers"
