#!/usr/bin/env bash
# End-to-end: clean build of the example project vs a fresh checkout of it
# built against a warm artifact cache (every CI job's case: the store holds
# archives only, so each restore is a first restore). Prints medians and the
# ratio.
#   bench/e2e.sh [RUNS] [WRITER_MB]
# WRITER_MB > 0: each warm build also runs beside another process writing
# WRITER_MB MB to a file on the same filesystem (dirtying the page cache, as
# a parallel job's compiler or download would): a restore that flushes the
# whole filesystem (syncfs) waits for those bytes, one that syncs only what
# it wrote does not. Runs alternate (clean, warm, warm beside the writer).
#   STRATA=path: another binary (default: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-11}
writer_mb=${2:-0}
if [ -z "${STRATA:-}" ]; then
  cargo build --release -q
  STRATA=$PWD/target/release/strata
fi
bin=$STRATA
work=$(mktemp -d)
trap 'kill "${wpid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

checkout() { # a fresh checkout: manifests, patches, mirror; no build state
  rm -rf "$1" && mkdir -p "$1"
  cp -r examples/firmware/. "$1"/
  rm -rf "$1"/build "$1"/install "$1"/packages
}

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

clean=()
warm=()
loaded=()
for i in $(seq "$runs"); do
  checkout "$work/p"
  # Clean: empty cache, everything fetched (file:// mirror), built, packed, saved.
  rm -rf "$work/cache"
  clean+=("$(ms env XDG_CACHE_HOME="$work/cache" "$bin" -q build -C "$work/p")")
  # Warm: a fresh checkout of the same project, sharing the now-warm cache
  # (archives only, as a CI job gets it from `ci prune-store`).
  rm -rf "$work/cache/strata/v1/trees"
  checkout "$work/q"
  warm+=("$(ms env XDG_CACHE_HOME="$work/cache" "$bin" -q build -C "$work/q")")
  "$work/q/install/bin/hello" >/dev/null
  if [ "$writer_mb" -gt 0 ]; then
    rm -rf "$work/cache/strata/v1/trees"
    checkout "$work/q"
    sync
    dd if=/dev/zero of="$work/load" bs=1M count="$writer_mb" status=none &
    wpid=$!
    sleep 0.3 # the writer is under way, its pages dirty
    loaded+=("$(ms env XDG_CACHE_HOME="$work/cache" "$bin" -q build -C "$work/q")")
    wait "$wpid"; wpid=
    "$work/q/install/bin/hello" >/dev/null
    rm -f "$work/load"; sync
  fi
done
c=$(printf '%s\n' "${clean[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
printf '| build of examples/firmware | ms (median of %d) | of clean |\n|---|---:|---:|\n' "$runs"
printf '| clean (empty cache) | %s | 100 %% |\n' "$c"
awk -v c="$c" -v w="$w" 'BEGIN { printf "| fresh checkout, warm cache (first restore) | %s | %.2f %% |\n", w, 100 * w / c }'
if [ "$writer_mb" -gt 0 ]; then
  l=$(printf '%s\n' "${loaded[@]}" | median)
  awk -v c="$c" -v l="$l" -v mb="$writer_mb" 'BEGIN { printf "| the same, beside a writer of %d MB | %s | %.2f %% |\n", mb, l, 100 * l / c }'
fi
printf '\n%s cores, load %s; goal: warm <= 1 %% of clean, also beside a writer\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
