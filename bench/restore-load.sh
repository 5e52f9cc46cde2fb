#!/usr/bin/env bash
# A fresh checkout's warm restore of a "mini-Heads" (bench/mini-heads: three
# real Heads modules, libgpg-error -> libgcrypt and libassuan, autotools
# configure + make with the host's cc), as a fraction of its clean build, also
# beside another process writing a gigabyte (issue 20: every CI job restores
# from a store it just downloaded, so each restore is a first restore, and a
# parallel job's compiler or download is writing at the same time).
#
#   bench/restore-load.sh [RUNS] [WRITER_MB]      (defaults: 3, 1024)
#
# Each run: a clean build (empty cache; sources from a file:// mirror of the
# real upstream tarballs, --offline); a fresh checkout built against the now
# warm cache with its trees and restore notes removed (what `ci prune-store`
# leaves a CI job: archives only, so each restore is a first restore); and the
# same again while `dd` writes WRITER_MB MB to a file on the same filesystem
# (its pages dirty while the restore runs; 0 skips this row). Prints medians
# and ratios. XDG_CACHE_HOME is a temp dir; nothing outside it is written but
# target/heads-tarballs (the tarballs, fetched once).
#   STRATA=path: another binary (default: cargo build --release).
#   TARBALLS=dir: where the tarballs are (default target/heads-tarballs,
#   filled by scripts/heads-debian-tarballs.sh when a file is missing).
#   STRACE=1: also strace one first restore beside the writer (fsync,
#   fdatasync, syncfs, sync and renames, -f -T) and print each call's count
#   and the seconds spent in it, summed over threads.
# Needs: make, a C compiler, bzip2, readelf (and strace for STRACE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
writer_mb=${2:-1024}
if [ -z "${STRATA:-}" ]; then
  cargo build --release -q
  STRATA=$PWD/target/release/strata
fi
tarballs=${TARBALLS:-$PWD/target/heads-tarballs}
for f in libgpg-error-1.46.tar.bz2 libgcrypt-1.10.1.tar.bz2 libassuan-2.5.5.tar.bz2; do
  [ -f "$tarballs/$f" ] || { scripts/heads-debian-tarballs.sh "$tarballs"; break; }
done
tarballs=$(cd "$tarballs" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-restore-load.XXXXXX")
trap 'kill "${wpid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
export XDG_CACHE_HOME=$work/cache

checkout() { # a fresh checkout: the manifests and a file:// mirror; no build state
  rm -rf "$1" && mkdir -p "$1"
  cp -r bench/mini-heads/. "$1"/
  printf '[mirrors]\nbefore = ["file://%s/"]\n' "$tarballs" >"$1/strata.local.toml"
}
build() { "$STRATA" -q build --offline -C "$1" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }; }
ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }
check() { # the restored libraries are there and whole
  for l in libgpg-error.so.0 libgcrypt.so.20 libassuan.so.0; do
    readelf -d "$1/install/lib/$l" >/dev/null
  done
}
first_restore() { rm -rf "$XDG_CACHE_HOME/strata/v1/trees"; checkout "$work/q"; }
writer() { # dirty pages of another process while the restore runs
  sync
  dd if=/dev/zero of="$work/load" bs=1M count="$writer_mb" status=none &
  wpid=$!
  sleep 0.3
}
unwrite() { wait "$wpid"; wpid=; rm -f "$work/load"; sync; }

clean=() warm=() loaded=()
for i in $(seq "$runs"); do
  checkout "$work/p"
  rm -rf "$XDG_CACHE_HOME"
  clean+=("$(ms build "$work/p")")
  first_restore
  warm+=("$(ms build "$work/q")")
  check "$work/q"
  if [ "$writer_mb" -gt 0 ]; then
    first_restore
    writer
    loaded+=("$(ms build "$work/q")")
    unwrite
    check "$work/q"
  fi
  echo "run $i: clean ${clean[-1]} us, warm ${warm[-1]} us${loaded:+, beside the writer ${loaded[-1]} us}" >&2
done
if [ "${STRACE:-}" = 1 ]; then
  first_restore
  writer
  strace -f -T -e trace=fsync,fdatasync,syncfs,sync,rename,renameat,renameat2 -o "$work/strace" \
    "$STRATA" -q build --offline -C "$work/q" >/dev/null
  unwrite
  python3 - "$work/strace" <<'PY'
import re, sys
calls = {}
for line in open(sys.argv[1]):
    # A call another thread interrupted ends on a "<... NAME resumed>" line.
    m = re.match(r"\d+ +(?:<\.\.\. (\w+) resumed>|(\w+)\().*<([0-9.]+)>$", line)
    if m:
        name = m.group(1) or m.group(2)
        n, t = calls.get(name, (0, 0.0))
        calls[name] = (n + 1, t + float(m.group(3)))
print("\nstrace of one first restore beside the writer (calls, seconds in them, summed over threads):")
for k, (n, t) in sorted(calls.items()):
    print(f"  {k}: {n} calls, {t:.3f} s")
PY
fi
c=$(printf '%s\n' "${clean[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
printf '\n| build of bench/mini-heads | ms (median of %d) | of clean |\n|---|---:|---:|\n' "$runs"
printf '| clean (empty cache, --offline) | %s | 100 %% |\n' "$c"
awk -v c="$c" -v w="$w" 'BEGIN { printf "| fresh checkout, warm cache (first restore) | %s | %.2f %% |\n", w, 100 * w / c }'
if [ "$writer_mb" -gt 0 ]; then
  l=$(printf '%s\n' "${loaded[@]}" | median)
  awk -v c="$c" -v l="$l" -v mb="$writer_mb" 'BEGIN { printf "| the same, beside a writer of %d MB | %s | %.2f %% |\n", mb, l, 100 * l / c }'
fi
printf '\n%s cores, %s, load %s; goal: warm <= 1 %% of clean, also beside a writer\n' \
  "$(nproc)" "$(df --output=fstype "$work" | tail -1)" "$(cut -d' ' -f1-3 /proc/loadavg)"
