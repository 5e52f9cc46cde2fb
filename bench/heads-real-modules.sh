#!/usr/bin/env bash
# Builds real Heads modules from their real sources, offline, in the sandbox:
# libgpg-error, libgcrypt, libassuan and libaio, with Heads's own configure and
# build commands, from the upstream tarballs Debian's archive carries byte for
# byte (checked against the Heads tree's pins), with Debian's musl-tools
# standing in for musl-cross-make.
#
#   1. copies HEADS_DIR (default /tmp/heads; never written to) to a temp dir;
#   2. puts the four tarballs into the copy's packages/x86/, Heads's own layout
#      (scripts/heads-debian-tarballs.sh; TARBALLS=DIR takes them from DIR),
#      and checks each sha256 against the pin in the tree's modules/<name>;
#   3. `strata import heads` the copy;
#   4. makes the musl-cross-make stand-in (scripts/musl-standin.sh) and writes
#      strata.local.toml: `[override.musl-cross-make] prebuilt` and
#      `[mirrors]` with file:// of the copy's packages/x86/;
#   5. `strata build --offline` of the four modules, STRATA_SANDBOX=require,
#      with a fresh artifact cache; then prints what was built and installed
#      and checks that every initrd library Heads names is a musl shared object.
#
# Usage: bench/heads-real-modules.sh [HEADS_DIR]
# Environment: STRATA (the binary; default target/release/strata, else
# target/debug/strata), TARBALLS (a dir holding the tarballs), KEEP=1 (keep
# the temp dir), JOBS (strata -j; default: the number of CPUs).
# Needs: musl-tools, linux-libc-dev, binutils, make, bzip2 (Debian packages).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
heads=$(cd "${1:-/tmp/heads}" && pwd)
modules=(libgpg-error libgcrypt libassuan libaio)
if [ -z "${STRATA:-}" ]; then
  STRATA=$here/target/release/strata
  [ -x "$STRATA" ] || STRATA=$here/target/debug/strata
  [ -x "$STRATA" ] || cargo build --quiet --manifest-path "$here/Cargo.toml"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/heads-real.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
  echo "work dir: $work (kept)"
else
  trap 'rm -rf "$work"' EXIT
fi

echo "== copy of $heads"
mkdir -p "$work/heads"
(cd "$heads" && tar --exclude=./.git --exclude=./build --exclude=./install \
  --exclude=./packages --exclude=./crossgcc --exclude=./strata -cf - .) | tar -C "$work/heads" -xf -
mirror=$work/heads/packages/x86
mkdir -p "$mirror"

echo "== tarballs"
if [ -n "${TARBALLS:-}" ]; then
  cp -- "$TARBALLS"/* "$mirror/"
else
  "$here/scripts/heads-debian-tarballs.sh" "$mirror"
fi
for m in "${modules[@]}"; do
  # The tree's own pin and file name (a `name := value` line of modules/<m>).
  pin=$(sed -n "s/^${m}_hash *:= *\([0-9a-f]\{64\}\).*/\1/p" "$work/heads/modules/$m")
  tar=$(sed -n "s/^${m}_tar *:= *//p" "$work/heads/modules/$m" | sed "s/\$(${m}_version)/$(sed -n "s/^${m}_version *:= *//p" "$work/heads/modules/$m")/")
  got=$(sha256sum -- "$mirror/$tar" | cut -d' ' -f1)
  if [ "$got" != "$pin" ]; then
    echo "error: $tar: sha256 $got, but modules/$m pins $pin" >&2
    exit 1
  fi
  echo "$tar: sha256 $got = modules/$m's pin"
done

echo "== import"
/usr/bin/time -f "import: %e s wall" "$STRATA" -q import heads "$work/heads" -o "$work/proj"

echo "== toolchain stand-in"
"$here/scripts/musl-standin.sh" "$work/musl-standin"
cat >"$work/proj/strata.local.toml" <<EOF
[override.musl-cross-make]
prebuilt = "$work/musl-standin"

[mirrors]
before = ["file://$mirror/"]
EOF

echo "== strata build --offline ${modules[*]} (sandbox required)"
export XDG_CACHE_HOME=$work/xdg-cache STRATA_SANDBOX=require
jobs=()
[ -n "${JOBS:-}" ] && jobs=(-j "$JOBS")
start=$(date +%s.%N)
if ! "$STRATA" -C "$work/proj" --color never "${jobs[@]}" --json build --offline "${modules[@]}" \
  >"$work/events.jsonl" 2>"$work/build.err"; then
  cat "$work/build.err" >&2
  echo "error: the build failed; logs under $work/proj/build/.strata/modules/*/logs/ (KEEP=1 keeps them)" >&2
  exit 1
fi
end=$(date +%s.%N)

python3 - "$work" "$start" "$end" "${modules[@]}" <<'PY'
import json, os, subprocess, sys
work, start, end, wanted = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
built, secs = [], {}
for line in open(os.path.join(work, "events.jsonl")):
    e = json.loads(line)
    if e.get("type") == "module-built":
        d = e["data"]
        built.append(d["module"])
        secs[d["module"]] = d.get("seconds") or d.get("elapsed")
inst = os.path.join(work, "proj", "install")
files = sorted(os.path.relpath(os.path.join(r, f), inst)
               for r, ds, fs in os.walk(inst) for f in fs + [d for d in ds if os.path.islink(os.path.join(r, d))])
print(f"modules built: {len(built)} ({', '.join(sorted(built))})")
for m in sorted(secs):
    if secs[m] is not None:
        print(f"  {m}: {secs[m]:.1f} s")
print(f"files installed: {len(files)} in install/")
print(f"wall time: {end - start:.1f} s (strata build --offline, sandbox required)")
missing = [m for m in wanted if m not in built]
if missing:
    sys.exit(f"error: not built: {missing}")
libs = sorted(f for f in files if f.startswith("initrd/lib/"))
print("initrd libraries (Heads's <module>_libraries):")
bad = 0
for f in libs:
    dyn = subprocess.run(["readelf", "-d", os.path.join(inst, f)], capture_output=True, text=True).stdout
    needed = [l.split("[")[1].rstrip("]") for l in dyn.splitlines() if "(NEEDED)" in l]
    musl = "libc.so" in needed
    bad += not musl
    print(f"  {f}: needs {', '.join(needed)}{'' if musl else '  <- not linked against musl'}")
want = {"initrd/lib/libgpg-error.so.0", "initrd/lib/libgcrypt.so.20",
        "initrd/lib/libassuan.so.0", "initrd/lib/libaio.so.1"}
if want - set(libs) or bad:
    sys.exit(f"error: missing {sorted(want - set(libs))} or {bad} not linked against musl")
PY
