#!/usr/bin/env bash
# Artifact pack/restore benchmark: builds a tree of mixed files (text that
# compresses, random bytes that do not, many small and some large), then
# prints one table: strata pack vs `tar | zstd -T0 -3`, strata restore vs
# `zstd -dc | tar -x`, and gzip (CircleCI's format), medians of RUNS runs.
#
# Usage: bench/pack.sh [SIZE_MB] [FILES] [RUNS]   (defaults: 1024 MB, 50000 files, 3 runs)
set -euo pipefail
SIZE_MB=${1:-1024}
FILES=${2:-50000}
RUNS=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bench pack
bin=$(ls -t "$here"/target/release/deps/pack-* | grep -v '\.d$' | head -1)
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/src" tree="$work/src/.strata/destdir"
mkdir -p "$tree"

python3 - "$tree" "$SIZE_MB" "$FILES" <<'PY'
import os, random, sys
root, size_mb, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(1)
budget = size_mb * 1024 * 1024
big = max(1, files // 500)            # a few large files carry most bytes
small_total = budget // 4
words = [b"static", b"int", b"return", b"struct", b"void", b"#include", b"0x1f", b"{", b"}", b"\n"]
for i in range(files):
    d = os.path.join(root, f"d{i % 200}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    if i < big:
        n = (budget - small_total) // big
    else:
        n = max(64, int(random.expovariate(1.0) * small_total / (files - big)))
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        if i % 3 == 0:                 # incompressible
            f.write(os.urandom(n))
        else:                          # source-like text
            chunk = b" ".join(random.choice(words) for _ in range(4096))
            while n > 0:
                f.write(chunk[:n]); n -= len(chunk)
PY
actual=$(du -sm "$tree" | cut -f1)
nfiles=$(find "$tree" -type f | wc -l)

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
t() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo "scale=3; ($t1 - $t0) / 1000000000" | bc; }
run() { for _ in $(seq "$RUNS"); do sync; "$@"; done | median; }

strata_pack() { rm -f "$work/strata.tar.zst"; "$bin" pack "$src" "$work" | awk '{printf "%.3f\n", $1}'; }
strata_restore() { rm -rf "$work/out"; "$bin" restore "$work/strata.tar.zst" "$work/out" | awk '{printf "%.3f\n", $1}'; }
zstd_pack() { rm -f "$work/gnu.tar.zst"; t bash -c "tar -C '$src' -cf - .strata | zstd -T0 -3 -q -o '$work/gnu.tar.zst'"; }
zstd_restore() { rm -rf "$work/out" && mkdir "$work/out"; t bash -c "zstd -dc '$work/gnu.tar.zst' | tar -xf - -C '$work/out'"; }
gzip_pack() { rm -f "$work/gnu.tar.gz"; t tar -C "$src" -czf "$work/gnu.tar.gz" .strata; }
gzip_restore() { rm -rf "$work/out" && mkdir "$work/out"; t tar -xzf "$work/gnu.tar.gz" -C "$work/out"; }

sp=$(run strata_pack); zp=$(run zstd_pack); gp=$(run gzip_pack)
sr=$(run strata_restore); zr=$(run zstd_restore); gr=$(run gzip_restore)
size() { stat -c %s "$1" | awk '{printf "%.1f", $1 / 1048576}'; }

printf '\nTree: %s MB in %s files; %s cores; median of %s runs\n\n' "$actual" "$nfiles" "$(nproc)" "$RUNS"
printf '| format | pack (s) | restore (s) | archive (MB) |\n|---|---:|---:|---:|\n'
printf '| strata (tar+zstd -3, MT, deterministic, BLAKE3) | %s | %s | %s |\n' "$sp" "$sr" "$(size "$work/strata.tar.zst")"
printf '| tar \\| zstd -T0 -3 | %s | %s | %s |\n' "$zp" "$zr" "$(size "$work/gnu.tar.zst")"
printf '| tar -z (gzip, CircleCI) | %s | %s | %s |\n' "$gp" "$gr" "$(size "$work/gnu.tar.gz")"
awk -v sp="$sp" -v zp="$zp" -v sr="$sr" -v zr="$zr" 'BEGIN {
  printf "\npack speed vs tar+zstd: %.2fx (goal >= 1.0)\nrestore speed vs tar+zstd: %.2fx (goal >= 1.2)\n", zp / sp, zr / sr }'
