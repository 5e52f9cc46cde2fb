#!/usr/bin/env bash
# Jobserver benchmark: a generated project of MODULES modules × FILES small C
# files (a dependency chain m1 → m2 → m3 and a fan-out m4..m8 on m1), built
# clean with `strata build -jN --no-cache` against `make -jN` of the
# equivalent recursive Makefile over the same, already extracted sources.
# Every compile goes through a wrapper that counts the compilers running at
# once (under flock) and records the peak.
#
# Usage: bench/jobserver.sh [N] [FILES]   (defaults: nproc, 200)
#   STRATA=path/to/strata to use another binary (default: target/release,
#   else target/debug; build it first).
# Prints a table of peak concurrent compiles and wall time, and the ratio.
set -euo pipefail
N=${1:-$(nproc)}
FILES=${2:-200}
MODULES=8
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${STRATA:-}" ]; then
  STRATA="$here/target/release/strata"
  [ -x "$STRATA" ] || STRATA="$here/target/debug/strata"
fi
[ -x "$STRATA" ] || { echo "no strata binary at $STRATA: run cargo build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
S="$work/strata" M="$work/make" C="$work/count"
mkdir -p "$S/modules" "$S/mirror" "$M/src" "$C"

cat > "$work/cc-count" <<'SH'
#!/bin/sh
d="$COUNT_DIR"
flock "$d/lock" sh -c 'n=$(( $(cat "$1/cur") + 1 )); echo $n > "$1/cur"; [ $n -gt $(cat "$1/peak") ] && echo $n > "$1/peak"; true' _ "$d"
cc "$@"; rc=$?
flock "$d/lock" sh -c 'echo $(( $(cat "$1/cur") - 1 )) > "$1/cur"' _ "$d"
exit $rc
SH
chmod +x "$work/cc-count"
reset_count() { echo 0 > "$C/cur"; echo 0 > "$C/peak"; }

deps_of() { # chain m1 → m2 → m3, fan-out m4..m8 on m1
  case $1 in
    1) echo "" ;;
    2) echo "m1" ;;
    3) echo "m2" ;;
    *) echo "m1" ;;
  esac
}

for i in $(seq 1 $MODULES); do
  m="m$i"
  src="$work/gen/$m-1.0"
  mkdir -p "$src"
  for f in $(seq 1 "$FILES"); do
    printf 'int %s_f%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n' \
      "$m" "$f" "$f" > "$src/f$f.c"
  done
  cat > "$src/Makefile" <<'MK'
OBJS := $(patsubst %.c,%.o,$(sort $(wildcard *.c)))
lib$(NAME).a: $(OBJS)
	ar rcs $@ $^
%.o: %.c
	$(CC) -O2 -c $< -o $@
MK
  tar --sort=name --mtime=@1600000000 --owner=0 --group=0 -C "$work/gen" -czf "$S/mirror/$m-1.0.tar.gz" "$m-1.0"
  cp -r "$src" "$M/src/$m"
  sum=$(sha256sum "$S/mirror/$m-1.0.tar.gz" | cut -d' ' -f1)
  toml_deps=$(for d in $(deps_of "$i"); do printf '"%s", ' "$d"; done)
  cat > "$S/modules/$m.toml" <<TOML
name = "$m"
version = "1.0"
url = "file://mirror/$m-1.0.tar.gz"
sha256 = "$sum"
depends = [${toml_deps%, }]
env = { CC = "$work/cc-count", COUNT_DIR = "$C" }
build = "make NAME=$m"
install = "mkdir -p \$STRATA_DESTDIR/lib && cp lib$m.a \$STRATA_DESTDIR/lib/"
TOML
done
all=$(for i in $(seq 1 $MODULES); do printf '"m%d", ' "$i"; done)
cat > "$S/strata.toml" <<TOML
[project]
name = "bench"
[target.default]
modules = [${all%, }]
TOML

{
  printf 'all:'
  for i in $(seq 1 $MODULES); do printf ' m%d' "$i"; done
  printf '\n'
  for i in $(seq 1 $MODULES); do
    printf 'm%d: %s\n' "$i" "$(deps_of "$i")"
    printf '\t+$(MAKE) -C src/m%d NAME=m%d\n' "$i" "$i"
    printf '\tmkdir -p install/lib && cp src/m%d/libm%d.a install/lib/\n' "$i" "$i"
  done
  printf '.PHONY: all'
  for i in $(seq 1 $MODULES); do printf ' m%d' "$i"; done
  printf '\n'
} > "$M/Makefile"

now() { date +%s.%N; }

reset_count
t0=$(now)
( cd "$M" && env -u MAKEFLAGS -u MFLAGS CC="$work/cc-count" COUNT_DIR="$C" make -s -j"$N" >/dev/null )
t1=$(now)
make_wall=$(echo "$t1 - $t0" | bc)
make_peak=$(cat "$C/peak")

reset_count
t0=$(now)
# Sandbox off: the compile counter writes to $C, outside every build dir.
env -u MAKEFLAGS -u MFLAGS -u CARGO_MAKEFLAGS XDG_CACHE_HOME="$work/xdg" STRATA_SANDBOX=off \
  "$STRATA" -C "$S" --quiet build --no-cache -j"$N" >/dev/null
t1=$(now)
strata_wall=$(echo "$t1 - $t0" | bc)
strata_peak=$(cat "$C/peak")

echo "N=$N, $MODULES modules × $FILES C files, clean build"
printf '%-28s %10s %10s\n' "" "peak jobs" "wall (s)"
printf '%-28s %10s %10.2f\n' "make -j$N (recursive)" "$make_peak" "$make_wall"
printf '%-28s %10s %10.2f\n' "strata build -j$N --no-cache" "$strata_peak" "$strata_wall"
printf 'wall ratio strata/make: %.3f (goal <= 1.05); peak goal <= %d\n' \
  "$(echo "$strata_wall / $make_wall" | bc -l)" "$N"
