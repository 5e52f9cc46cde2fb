#!/usr/bin/env bash
# `strata import heads` on a real Heads tree: the import time, then, for every
# board, the modules (closure of the target), versions, sha256 or git rev and
# depends of the generated project compared with what GNU make evaluates on
# its own (a separate, minimal printer Makefile, not strata's driver).
#
# Usage: bench/heads-import.sh HEADS_DIR [OUT]    (default OUT: a temp dir)
# Needs python3 >= 3.11 (tomllib). The Heads tree is never written to.
set -euo pipefail
heads=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
STRATA=${STRATA:-$here/target/debug/strata}
[ -x "$STRATA" ] || cargo build --quiet --manifest-path "$here/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${2:-$work/out}

echo "== import"
/usr/bin/time -f "%e s wall, %U s user, %S s sys" "$STRATA" -q import heads "$heads" -o "$out"
"$STRATA" --json import heads "$heads" -o "$out" > "$work/report.json"

echo "== GNU make, board by board"
mkdir -p "$work/farm" "$work/tmp"
for f in $(ls -A "$heads"); do
  case $f in build|packages|install|crossgcc|.config|.git|strata) ;; *) ln -s "$heads/$f" "$work/farm/$f" ;; esac
done
cat > "$work/print.mk" <<'MK'
cmp_mods := $(sort $(modules-y) $(foreach m,$(modules-y),$($(m)_depends)))
$(info CMP modules-y $(modules-y))
$(foreach m,$(cmp_mods),$(info CMP mod $(m) | $(strip $($(m)_version)) | $(strip $($(m)_hash)) | $(strip $($(m)_repo)) | $(strip $($(m)_commit_hash)) | $(strip $($(m)_depends))))
cmp-print:
	@:
MK
for b in $(ls "$heads/boards"); do
  (cd "$work/farm" && env -i PATH="$PATH" HOME="$work" TMPDIR="$work/tmp" \
    make -r -f Makefile -f "$work/print.mk" BOARD="$b" cmp-print 2>/dev/null </dev/null || true) \
    | grep '^CMP' | sed "s/^/$b /"
done > "$work/make.txt"

python3 - "$out" "$work/make.txt" "$work/report.json" <<'PY'
import collections, glob, json, sys, tomllib
out, make_txt, report = sys.argv[1:]
make, modsy = collections.defaultdict(dict), {}
for line in open(make_txt):
    b, _, kind, rest = line.rstrip('\n').split(' ', 3)
    if kind == 'modules-y':
        modsy[b] = rest.split()
    else:
        f = [x.strip() for x in rest.split('|')]
        make[b][f[0]] = (f[1], f[2], f[3], f[4], f[5].split())
proj = tomllib.load(open(f'{out}/strata.toml', 'rb'))
mods = {}
for p in glob.glob(f'{out}/modules/*.toml'):
    m = tomllib.load(open(p, 'rb'))
    mods[m['name']] = m
def heads_name(n, m, ev):
    base = n.split('+')[0]            # board-specific variant: <name>+<board>
    v = m['version']
    if base.endswith('-' + v) and base[:-len(v) - 1] in ev and base not in ev:
        return base[:-len(v) - 1]      # one module per version: <name>-<version>
    return base
rep = json.load(open(report))
rep = rep.get('data', rep)   # the --json event envelope
# strata's translation of Heads's toolchain rules: a coreboot-crossgcc-* host
# module (not a Heads module) replaces a provider listed only as the
# toolchain's tree (reported as skipped); both are left out of the comparison.
hooks = {b: {x.split('`')[1] for x in rb.get('skipped', []) if 'only to build the coreboot toolchain' in x}
         for b, rb in rep['boards'].items()}
tc = lambda n: n.startswith('coreboot-crossgcc-')
# strata's translations of Heads's rules outside define_module are no Heads
# modules either: the image steps (`initrd`, `rom`, cbmem: the top-level
# Makefile's), linux's headers install and bundled image (`<linux>-headers`,
# `<linux>-bundled`); they and the dependencies on them are left out too.
import re
def own(n):
    m = rep['modules'].get(n, {})
    return tc(n) or m.get('module_file', '').startswith('../') or \
        (m.get('module_file') == 'linux' and re.search(r'-(headers|bundled)(\+|$)', n) is not None)
# The toolchain dependency the import adds where a recipe calls $(CROSS)
# without $(musl_dep) (a Heads bug it reports) is not make's either.
added = {n for n, m in rep['modules'].items() if any('strata adds it' in x for x in m['not_translated'])}
exact, bad = 0, []
for b in sorted(modsy):
    ev = make[b]
    want, todo = {}, [m for m in modsy[b] if m != 'initrd' and m not in hooks.get(b, set())]
    while todo:
        n = todo.pop()
        if n in want or n not in ev:
            continue
        v, h, r, c, d = ev[n]
        want[n] = (v or c, ('git', r, c) if r else ('sha256', h), tuple(sorted(d)))
        todo += d
    t = proj.get('target', {}).get(b)
    if t is None:
        bad.append((b, 'no target'))
        continue
    got, todo = {}, list(t['modules'])
    while todo:
        n = todo.pop()
        if n not in got:
            got[n] = mods[n]
            todo += mods[n].get('depends', [])
    got = {n: m for n, m in got.items() if not own(n)}
    h = {n: heads_name(n, m, ev) for n, m in got.items()}
    have = {}
    for n, m in got.items():
        src = ('git', m['git'], m['rev']) if 'git' in m else ('sha256', m['sha256'])
        deps = [d for d in m.get('depends', []) if not own(d)
                and not (n in added and h.get(d, d) == 'musl-cross-make')]
        have[h[n]] = (m['version'], src, tuple(sorted(h.get(d, d) for d in deps)))
    if have == want:
        exact += 1
    else:
        bad.append((b, [(k, want.get(k), have.get(k)) for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)][:3]))
ms = rep['modules']
print(f"boards: {len(modsy)} evaluated by make, {sum(1 for x in rep['boards'].values() if x['status'] == 'imported')} imported, "
      f"{exact} identical to make (modules, versions, sha256/git rev, depends)")
print(f"modules: {len(ms)} strata modules for {len({(m['heads_name'], n.split('+')[0]) for n, m in ms.items()})} Heads name+version, "
      f"{sum(1 for m in ms.values() if not m['not_translated'])} fully translated")
print("not fully translated:", ' '.join(sorted({n.split('+')[0] for n, m in ms.items() if m['not_translated']})))
for b, d in bad:
    print('DIFF', b, d)
sys.exit(1 if bad else 0)
PY
