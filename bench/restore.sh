#!/usr/bin/env bash
# Local restore benchmark: builds a module's artifact tree of mixed files
# (text that compresses, random bytes that do not, many small and some large;
# KEEP_PCT percent of the files in a keep path, the rest in its destdir),
# saves it in a local store, then prints one table, medians of RUNS runs:
# strata restoring from the store's tree (reflink, else copy: a restore never
# hardlinks, so a build cannot write into the store), strata restoring from the
# archive (what every restore did before trees), `zstd -dc | tar -x` and
# `cp -a` of the same tree.
#
# Usage: bench/restore.sh [SIZE_MB] [FILES] [RUNS] [KEEP_PCT]
#        (defaults: 560 MB, 20000 files, 3 runs, 10% of files in the keep path)
set -euo pipefail
SIZE_MB=${1:-560}
FILES=${2:-20000}
RUNS=${3:-3}
KEEP_PCT=${4:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bench restore
bin=$(ls -t "$here"/target/release/deps/restore-* | grep -v '\.d$' | head -1)
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/src"
mkdir -p "$src/.strata/destdir" "$src/out"

python3 - "$src" "$SIZE_MB" "$FILES" "$KEEP_PCT" <<'PY'
import os, random, sys
root, size_mb, files, keep_pct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
random.seed(1)
budget = size_mb * 1024 * 1024
nbig = max(1, files // 500)           # a few large files carry most bytes
step = max(1, files // nbig)
small_total = budget // 4
words = [b"static", b"int", b"return", b"struct", b"void", b"#include", b"0x1f", b"{", b"}", b"\n"]
for i in range(files):
    top = "out" if (i * 100) // files < keep_pct else ".strata/destdir"
    d = os.path.join(root, top, f"d{i % 200}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    if i % step == step // 2 and i // step < nbig:
        n = (budget - small_total) // nbig
    else:
        n = max(64, int(random.expovariate(1.0) * small_total / (files - nbig)))
    p = os.path.join(d, f"f{i}")
    with open(p, "wb") as f:
        if i % 3 == 0:                 # incompressible
            f.write(os.urandom(n))
        else:                          # source-like text
            chunk = b" ".join(random.choice(words) for _ in range(4096))
            while n > 0:
                f.write(chunk[:n]); n -= len(chunk)
    os.chmod(p, 0o755 if i % 10 == 0 else 0o644)
PY
actual=$(du -sm "$src" | cut -f1)
nfiles=$(find "$src" -type f | wc -l)
nkeep=$(find "$src/out" -type f | wc -l)
keep_mb=$(du -sm "$src/out" | cut -f1)
store="$work/store"
sync
read -r archive first < <("$bin" prepare "$src" "$store")
fs=$(stat -f -c %T "$work")

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
t() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo "scale=3; ($t1 - $t0) / 1000000000" | bc; }
# Each run restores into a new directory, as into a fresh checkout: with
# nothing of a previous run deleted just before (on ext4 with online discard,
# blocks freed a moment ago make the next allocations several times slower,
# which would measure the deletion, not the restore). Outputs are removed
# between rows, then the filesystem is left to settle.
n=0
run() {
  for _ in $(seq "$RUNS"); do "$@"; done | median
  rm -rf "$work"/out.*; sync; sleep 10
}
fresh() { n=$((n + 1)); out="$work/out.$n"; sync; }

strata() { fresh; "$bin" run "$store" "$out" "$1" > "$work/last"; awk '{printf "%.3f\n", $1}' "$work/last"; }
counts() { fresh; "$bin" run "$store" "$out" "$1" | awk '{printf "%s reflinked, %s copied", $2, $3}'; rm -rf "$out"; }
zstd_tar() { fresh; mkdir "$out"; t bash -c "zstd -dc '$archive' | tar -xf - -C '$out'"; }
cp_a() { fresh; t cp -a "$src" "$out"; }

auto=$(run strata auto); arch=$(run strata archive)
zt=$(run zstd_tar); cpa=$(run cp_a)
auto_how=$(counts auto)

printf '\nTree: %s MB in %s files (%s files, %s MB in the keep path); archive %s MB; %s on %s; %s cores; load %s; median of %s runs (page cache warm)\n\n' \
  "$actual" "$nfiles" "$nkeep" "$keep_mb" "$(stat -c %s "$archive" | awk '{printf "%.1f", $1 / 1048576}')" \
  "$(basename "$work")" "$fs" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$RUNS"
printf '| restore | seconds | vs zstd -dc \\| tar -x |\n|---|---:|---:|\n'
row() { awk -v n="$1" -v s="$2" -v z="$zt" 'BEGIN { printf "| %s | %.3f | %.1fx |\n", n, s, z / s }'; }
row "strata, from the tree ($auto_how)" "$auto"
row "strata, from the archive (BLAKE3 + extract, as before)" "$arch"
row "strata, first restore: archive to a new tree, then auto (1 run)" "$first"
row "zstd -dc \\| tar -x" "$zt"
row "cp -a of the tree" "$cpa"
awk -v a="$auto" -v z="$zt" 'BEGIN { printf "\nlocal restore (auto) vs tar+zstd: %.1fx (goal >= 10)\n", z / a }'
