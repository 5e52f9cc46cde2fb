#!/usr/bin/env bash
# Fetches the upstream tarballs of four Heads modules from Debian's archive,
# where they are the `.orig` tarballs of Debian's source packages, checks each
# against Heads's sha256 pin, and leaves them in DIR under Heads's file names
# (so DIR serves as a file:// mirror, or as Heads's packages/<arch>/):
#
#   libgpg-error-1.46.tar.bz2     source package libgpg-error
#   libgcrypt-1.10.1.tar.bz2      source package libgcrypt20
#   libassuan-2.5.5.tar.bz2       source package libassuan
#   libaio_0.3.113.orig.tar.gz    source package libaio
#
# Uses `apt-get source --download-only` with the machine's own Debian
# archive (its deb sources turned into deb-src) and a private apt state in a
# temp dir: the system's apt configuration is not changed. apt checks the
# archive's signatures and the .dsc's checksums; this script then checks
# Heads's pins. A file already in DIR with the right sum is kept (no network).
#
# Usage: scripts/heads-debian-tarballs.sh DIR
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
mkdir -p "$dir"

# Heads file name, Debian source package, Debian orig file name, Heads's pin
# (modules/<name> at Heads aedae4ff).
tarballs=(
  "libgpg-error-1.46.tar.bz2 libgpg-error libgpg-error_1.46.orig.tar.bz2 b7e11a64246bbe5ef37748de43b245abd72cfcd53c9ae5e7fc5ca59f1c81268d"
  "libgcrypt-1.10.1.tar.bz2 libgcrypt20 libgcrypt20_1.10.1.orig.tar.bz2 ef14ae546b0084cd84259f61a55e07a38c3b53afc0f546bffcef2f01baffe9de"
  "libassuan-2.5.5.tar.bz2 libassuan libassuan_2.5.5.orig.tar.bz2 8e8c2fcc982f9ca67dcbb1d95e2dc746b1739a4668bc20b3a3c5be632edb34e4"
  "libaio_0.3.113.orig.tar.gz libaio libaio_0.3.113.orig.tar.gz 2c44d1c5fd0d43752287c9ae1eb9c023f04ef848ea8d4aafa46e9aedb678200b"
)

sum_of() { sha256sum -- "$1" | cut -d' ' -f1; }

missing=()
for t in "${tarballs[@]}"; do
  read -r file pkg orig pin <<<"$t"
  if [ -f "$dir/$file" ] && [ "$(sum_of "$dir/$file")" = "$pin" ]; then
    echo "$file: present, sha256 matches Heads's pin"
  else
    missing+=("$t")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/dl"
# The machine's Debian sources, as deb-src: deb822 stanzas and one-line entries.
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  sed -e 's/^Types:.*/Types: deb-src/' "$f" >"$tmp/parts/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  sed -n -e 's/^deb \(.*\)$/deb-src \1/p' "$f" >"$tmp/parts/$(basename "$f" .list)-src.list"
done
shopt -u nullglob
apt=(apt-get -q -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$tmp/parts"
  -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
  -o Debug::NoLocking=true -o APT::Sandbox::User=root)
if ! "${apt[@]}" update >"$tmp/update.log" 2>&1; then
  cat "$tmp/update.log" >&2
  echo "error: apt-get update of the deb-src indexes failed (see above)" >&2
  exit 1
fi

status=0
for t in "${missing[@]}"; do
  read -r file pkg orig pin <<<"$t"
  if ! (cd "$tmp/dl" && "${apt[@]}" source --download-only -- "$pkg") >"$tmp/$pkg.log" 2>&1; then
    cat "$tmp/$pkg.log" >&2
    echo "error: $file: source package $pkg is not in the reachable Debian archive" >&2
    status=1
    continue
  fi
  if [ ! -f "$tmp/dl/$orig" ]; then
    have=$(cd "$tmp/dl" && ls -- "${pkg}"_*.orig.tar.* 2>/dev/null | grep -v '\.asc$' | paste -sd' ')
    echo "error: $file: the archive's $pkg has ${have:-no orig tarball}, not $orig (the version Heads pins is not there)" >&2
    status=1
    continue
  fi
  got=$(sum_of "$tmp/dl/$orig")
  if [ "$got" != "$pin" ]; then
    echo "error: $file: Debian's $orig has sha256 $got, Heads pins $pin: not the upstream tarball" >&2
    status=1
    continue
  fi
  cp -- "$tmp/dl/$orig" "$dir/.$file.tmp"
  sync -- "$dir/.$file.tmp"
  mv -- "$dir/.$file.tmp" "$dir/$file"
  echo "$file: from Debian's $orig, sha256 matches Heads's pin"
done
exit $status
