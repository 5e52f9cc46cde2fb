#!/usr/bin/env bash
# End-to-end: clean build of the example project vs a fresh checkout of it
# built against a warm artifact cache. Prints medians and the ratio.
#   bench/e2e.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-11}
cargo build --release -q
bin=$PWD/target/release/strata
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

checkout() { # a fresh checkout: manifests, patches, mirror; no build state
  rm -rf "$1" && mkdir -p "$1"
  cp -r examples/firmware/. "$1"/
  rm -rf "$1"/build "$1"/install "$1"/packages
}

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

clean=()
warm=()
for i in $(seq "$runs"); do
  checkout "$work/p"
  # Clean: empty cache, everything fetched (file:// mirror), built, packed, saved.
  rm -rf "$work/cache"
  clean+=("$(ms env XDG_CACHE_HOME="$work/cache" "$bin" -q build -C "$work/p")")
  # Warm: a fresh checkout of the same project, sharing the now-warm cache.
  checkout "$work/q"
  warm+=("$(ms env XDG_CACHE_HOME="$work/cache" "$bin" -q build -C "$work/q")")
  "$work/q/install/bin/hello" >/dev/null
done
c=$(printf '%s\n' "${clean[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
printf '| build of examples/firmware | ms (median of %d) |\n|---|---:|\n' "$runs"
printf '| clean (empty cache) | %s |\n' "$c"
printf '| fresh checkout, warm cache | %s |\n' "$w"
awk -v c="$c" -v w="$w" 'BEGIN { printf "\nwarm / clean = %.1f %%\n", 100 * w / c }'
