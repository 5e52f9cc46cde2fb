#!/usr/bin/env bash
# No-op build benchmark: a generated 200-module project built once, then
# timed no-op `strata build` against the equivalent Heads-style Makefile
# (define_module macro, packages/.<m>_verify, .canary/.patched/.configured/
# .build stamp files judged by mtime) on the same tarballs.
#
# Usage: bench/noop.sh [MODULES] [RUNS]     (defaults: 200 modules, 21 runs)
# Prints a table of medians and the ratio strata/make.
set -euo pipefail
N=${1:-200}
RUNS=${2:-21}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
STRATA="$here/target/release/strata"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
S="$work/strata" M="$work/make"
mkdir -p "$S/modules" "$S/mirror" "$M/modules" "$M/mirror"

deps_of() { # module i depends on i-1 and i/2 (a realistic fan-in DAG)
  local i=$1 d=()
  [ "$i" -gt 0 ] && d+=("m$((i - 1))")
  [ "$i" -gt 3 ] && d+=("m$((i / 2))")
  echo "${d[@]:-}"
}

for i in $(seq 0 $((N - 1))); do
  m="m$i"
  src="$work/src/$m-1.0"
  mkdir -p "$src"
  echo "int $m = $i;" > "$src/$m.c"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$work/src" -czf "$S/mirror/$m-1.0.tar.gz" "$m-1.0"
  cp "$S/mirror/$m-1.0.tar.gz" "$M/mirror/"
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

(cd "$S" && "$STRATA" -q build)
(cd "$M" && make -s -j2 all)

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
time_runs() { # prints the median wall time in ms of RUNS runs of "$@"
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done | median | awk '{printf "%.2f", $1 / 1000}'
}
# Sanity: both are really no-ops.
(cd "$S" && "$STRATA" --json build | grep -q '"built":0') || { echo "strata no-op rebuilt something" >&2; exit 1; }
[ "$(cd "$M" && make -s -n all | wc -l)" -eq 0 ] || { echo "make no-op is not a no-op" >&2; exit 1; }

strata_ms=$(cd "$S" && time_runs "$STRATA" -q build)
make_ms=$(cd "$M" && time_runs make -s all)
printf '\nNo-op build of %d modules, median of %d runs\n\n' "$N" "$RUNS"
printf '| tool | no-op build (ms) | checks content keys |\n|---|---:|---|\n'
printf '| strata build | %s | yes (BLAKE3 step keys, patch bytes hashed) |\n' "$strata_ms"
printf '| make (Heads-style stamps) | %s | no (mtime only) |\n' "$make_ms"
awk -v s="$strata_ms" -v m="$make_ms" 'BEGIN {printf "\nratio strata / make = %.2f (goal <= 0.50)\n", s / m}'
