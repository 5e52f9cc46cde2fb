#!/usr/bin/env bash
# Cost of the commands' sandbox (new mount + network namespaces per command):
# clean `strata build --no-cache` of the shipped example and of a generated
# many-module project (trivial commands, so the per-command cost shows), with
# STRATA_SANDBOX=off against STRATA_SANDBOX=require. Prints medians and ratios.
#
# Usage: bench/sandbox.sh [MODULES] [RUNS]   (defaults: 200 modules, 7 runs)
#   STRATA=path/to/strata to use another binary (default: target/release,
#   else target/debug; build it first).
set -euo pipefail
N=${1:-200}
RUNS=${2:-7}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${STRATA:-}" ]; then
  STRATA="$here/target/release/strata"
  [ -x "$STRATA" ] || STRATA="$here/target/debug/strata"
fi
[ -x "$STRATA" ] || { echo "no strata binary at $STRATA: run cargo build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The example, with its packages fetched once (only the commands are timed).
mkdir -p "$work/example"
cp -r "$here/examples/firmware/." "$work/example/"
rm -rf "$work/example/build" "$work/example/install"

# N modules in a chain with fan-in (as bench/noop.sh): each runs three
# trivial commands, so a build is mostly process and namespace creation.
G="$work/many"
mkdir -p "$G/modules" "$G/mirror" "$work/src"
for i in $(seq 0 $((N - 1))); do
  m="m$i"
  mkdir -p "$work/src/$m-1.0"
  echo "int $m = $i;" > "$work/src/$m-1.0/$m.c"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$work/src" -czf "$G/mirror/$m-1.0.tar.gz" "$m-1.0"
  sum=$(sha256sum "$G/mirror/$m-1.0.tar.gz" | cut -d' ' -f1)
  deps=""
  [ "$i" -gt 0 ] && deps="\"m$((i - 1))\""
  [ "$i" -gt 3 ] && deps="$deps, \"m$((i / 2))\""
  cat > "$G/modules/$m.toml" <<TOML
name = "$m"
version = "1.0"
url = "file://mirror/$m-1.0.tar.gz"
sha256 = "$sum"
depends = [$deps]
configure = "true"
build = "true"
install = "mkdir -p \$STRATA_DESTDIR/share && cp $m.c \$STRATA_DESTDIR/share/"
TOML
done
all=$(for i in $(seq 0 $((N - 1))); do printf '"m%s", ' "$i"; done)
printf '[project]\nname = "bench"\n[target.default]\nmodules = [%s]\n' "${all%, }" > "$G/strata.toml"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

run() { # project mode → ms of a clean build
  rm -rf "$1/build" "$1/install"
  ms env XDG_CACHE_HOME="$work/cache" STRATA_SANDBOX="$2" "$STRATA" -q -C "$1" build --no-cache
}

printf '| clean build --no-cache (%s) | sandbox off, ms | sandbox on, ms | on / off |\n|---|---:|---:|---:|\n' "$(basename "$STRATA")"
for p in example many; do
  run "$work/$p" off >/dev/null # fetch once, warm the page cache
  off=() on=()
  for _ in $(seq "$RUNS"); do
    off+=("$(run "$work/$p" off)")
    on+=("$(run "$work/$p" require)")
    [ -d "$work/$p/install" ] || { echo "the sandboxed build of $p failed" >&2; exit 1; }
  done
  o=$(printf '%s\n' "${off[@]}" | median)
  s=$(printf '%s\n' "${on[@]}" | median)
  label=$p
  [ "$p" = many ] && label="$N modules, 3 trivial commands each"
  [ "$p" = example ] && label="examples/firmware (4 modules)"
  awk -v l="$label" -v o="$o" -v s="$s" 'BEGIN { printf "| %s | %s | %s | %.2f |\n", l, o, s, s / o }'
done
