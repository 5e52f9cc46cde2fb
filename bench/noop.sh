#!/usr/bin/env bash
# No-op build benchmark: a generated project of N modules built once, then
# timed no-op `strata build` against the equivalent Heads-style Makefile
# (define_module macro, packages/.<m>_verify, .canary/.patched/.configured/
# .build stamp files judged by mtime) on the same tarballs. strata answers a
# no-op from build/.strata/noop-state: the stat signature (dev, inode, size,
# mtime, ctime) of every file the content keys were computed from, every
# module file and every install stamp included, with the full key
# computation when any differs; make compares mtimes only. The first no-op
# after the build records the state; the timed runs are answered from it.
#
# Usage: bench/noop.sh [SIZES] [RUNS]   (defaults: "200 1000", 21 runs)
#   SIZES is a list of module counts, e.g. "1000" or "200 1000".
#   STRATA=path: another binary (default: cargo build --release, then target/release/strata).
#   KEEP=dir: generate the projects under dir and leave them there (profiling).
# Runs of strata and make alternate (one strata run, one make run, ...), so a
# burst of load on a shared machine hits both alike. Prints one table of
# medians with the ratio strata/make per size.
set -euo pipefail
SIZES=${1:-200 1000}
RUNS=${2:-21}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${STRATA:-}" ]; then
  cargo build --release --quiet --manifest-path "$here/Cargo.toml"
  STRATA="$here/target/release/strata"
fi
if [ -n "${KEEP:-}" ]; then
  work=$KEEP
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
# Never the user's cache: the first build saves every module to this one.
export XDG_CACHE_HOME="$work/cache"

deps_of() { # module i depends on i-1 and i/2 (a realistic fan-in DAG)
  local i=$1 d=()
  [ "$i" -gt 0 ] && d+=("m$((i - 1))")
  [ "$i" -gt 3 ] && d+=("m$((i / 2))")
  echo "${d[@]:-}"
}

generate() { # generate N DIR: DIR/strata and DIR/make, built once
  local N=$1 dir=$2
  local S="$dir/strata" M="$dir/make"
  mkdir -p "$S/modules" "$S/mirror" "$M/modules" "$M/mirror" "$dir/src"
  for i in $(seq 0 $((N - 1))); do
    local m="m$i"
    local src="$dir/src/$m-1.0"
    mkdir -p "$src"
    echo "int $m = $i;" > "$src/$m.c"
    tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$dir/src" -czf "$S/mirror/$m-1.0.tar.gz" "$m-1.0"
    cp "$S/mirror/$m-1.0.tar.gz" "$M/mirror/"
    local sum deps toml_deps
    sum=$(sha256sum "$S/mirror/$m-1.0.tar.gz" | cut -d' ' -f1)
    deps=$(deps_of "$i")
    toml_deps=$(for d in $deps; do printf '"%s", ' "$d"; done)
    cat > "$S/modules/$m.toml" <<TOML
name = "$m"
version = "1.0"
url = "https://upstream.invalid/$m-1.0.tar.gz"
sha256 = "$sum"
depends = [${toml_deps%, }]
configure = "true"
build = "true"
install = "mkdir -p \$STRATA_DESTDIR/share && cp $m.c \$STRATA_DESTDIR/share/"
TOML
    cat > "$M/modules/$m" <<MK
modules += $m
${m}_version := 1.0
${m}_hash := $sum
${m}_depends := $deps
MK
  done
  local all
  all=$(for i in $(seq 0 $((N - 1))); do printf '"m%s", ' "$i"; done)
  cat > "$S/strata.toml" <<TOML
[project]
name = "bench"
[mirrors]
before = ["file://mirror/"]
[target.default]
modules = [${all%, }]
TOML

  cat > "$M/Makefile" <<'MK'
# Heads-style: one macro expands each module's download/extract/patch/
# configure/build/install rules; stamps are empty files judged by mtime.
modules :=
include $(sort $(wildcard modules/*))
all:

define define_module =
$(1)_dir := build/$(1)-$$($(1)_version)
$(1)_tar := $(1)-$$($(1)_version).tar.gz

packages/.$(1)-$$($(1)_version)_verify:
	@mkdir -p packages
	@cp mirror/$$($(1)_tar) packages/$$($(1)_tar)
	@echo "$$($(1)_hash)  packages/$$($(1)_tar)" | sha256sum --quiet -c
	@touch $$@

$$($(1)_dir)/.canary: packages/.$(1)-$$($(1)_version)_verify
	@rm -rf $$($(1)_dir) && mkdir -p build
	@tar -xzf packages/$$($(1)_tar) -C build
	@touch $$@

$$($(1)_dir)/.patched: $$($(1)_dir)/.canary
	@touch $$@

$$($(1)_dir)/.configured: $$($(1)_dir)/.patched modules/$(1) $$(foreach d,$$($(1)_depends),build/$$(d)-$$($$(d)_version)/.build)
	@cd $$($(1)_dir) && true
	@touch $$@

$$($(1)_dir)/.build: $$($(1)_dir)/.configured
	@cd $$($(1)_dir) && true
	@mkdir -p install/share && cp $$($(1)_dir)/$(1).c install/share/
	@touch $$@

all: $$($(1)_dir)/.build
endef

$(foreach m,$(modules),$(eval $(call define_module,$(m))))
.PHONY: all
MK

  (cd "$S" && "$STRATA" -q build -j2)
  (cd "$M" && make -s -j2 all)
  # Sanity: both are really no-ops now.
  (cd "$S" && "$STRATA" --json build | grep -q '"built":0') || { echo "strata no-op rebuilt something" >&2; exit 1; }
  [ "$(cd "$M" && make -s -n all | wc -l)" -eq 0 ] || { echo "make no-op is not a no-op" >&2; exit 1; }
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
us() { # wall time of "$@" in microseconds
  local t0 t1
  t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}

rows=()
for N in $SIZES; do
  dir="$work/n$N"
  [ -d "$dir/strata/build" ] || generate "$N" "$dir"
  : > "$dir/strata.us"; : > "$dir/make.us"
  for _ in $(seq "$RUNS"); do
    (cd "$dir/strata" && us "$STRATA" -q build) >> "$dir/strata.us"
    (cd "$dir/make" && us make -s all) >> "$dir/make.us"
  done
  s=$(median < "$dir/strata.us"); m=$(median < "$dir/make.us")
  rows+=("$(awk -v n="$N" -v s="$s" -v m="$m" 'BEGIN {printf "| %d | %.1f | %.1f | %.3f |", n, s / 1000, m / 1000, s / m}')")
done

printf '\nNo-op build, median of %d alternating runs each; %s cores, load %s\n\n' \
  "$RUNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| modules | strata build (ms) | make, Heads-style stamps (ms) | strata / make |\n|---:|---:|---:|---:|\n'
printf '%s\n' "${rows[@]}"
printf '\nstrata compares the signatures of every key input in build/.strata/noop-state (keys recomputed on any change); make checks mtimes only. Goal at 1000 modules: <= 0.10\n'
