#!/usr/bin/env python3
"""Import circles between the files of a Rust crate (default: src/).

Every `use` path and every `crate::`/`super::` path in a file (its test module
left out) is resolved to the file that defines the item: a path through a
`mod.rs` that re-exports a child (`pub use child::Item`) counts as a use of the
child. Edges between a `mod.rs` and its own direct children are structure (a
folder's shared types and dispatch), not circles, and are not counted.
Prints every strongly connected component of two or more files with its
edges, and exits 1 when there is one.

    scripts/circles.py [src]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "src"
files = {}  # module path (tuple) -> file (relative, without .rs)
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            rel = os.path.relpath(os.path.join(d, f), root)[:-3]
            parts = rel.split("/")
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            files[tuple(parts)] = rel


def is_mod(rel):
    return rel.endswith("mod") or rel in ("lib", "main")


def read(rel):
    src = open(os.path.join(root, rel + ".rs")).read()
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", src)
    if m:
        src = src[: m.start()]
    return re.sub(r"//[^\n]*", "", src)


reexp = {}  # (module, name) -> child file
for parts, rel in files.items():
    if not is_mod(rel):
        continue
    for m in re.finditer(r"\bpub(?:\([\w:]+\))?\s+use\s+(\w+)::([^;]*);", read(rel), re.S):
        child = tuple(list(parts) + [m.group(1)])
        if child in files:
            for name in re.findall(r"\b(\w+)\b", m.group(2)):
                reexp[(parts, name)] = files[child]


def resolve(segs):
    for i in range(len(segs), -1, -1):
        k = tuple(segs[:i])
        if k in files:
            if i < len(segs) and (k, segs[i]) in reexp:
                return reexp[(k, segs[i])]
            return files[k]
    return None


def structural(a, b):
    """a mod.rs and one of its direct children (file or sub-folder)."""
    for x, y in ((a, b), (b, a)):
        if x.endswith("/mod") or x == "lib":
            d = x[:-4] if x.endswith("/mod") else ""
            y_dir = os.path.dirname(y[:-4] if y.endswith("/mod") else y)
            if y_dir == d:
                return True
    return False


def expand(prefix, body):
    body = body.strip()
    i = body.find("{")
    if i < 0:
        return [prefix + [s.strip() for s in body.split("::") if s.strip()]]
    head = [s.strip() for s in body[:i].split("::") if s.strip()]
    inner = body[i + 1 : body.rfind("}")]
    items, cur, depth = [], "", 0
    for ch in inner:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for it in items:
        it = re.sub(r"\s+as\s+\w+$", "", it.strip())
        if it:
            out += expand(prefix + head, it)
    return out


edges = {}
for parts, rel in files.items():
    src = read(rel)
    paths = []
    for m in re.finditer(r"\buse\s+(\w+\s*::[^;]*);", src, re.S):
        paths += expand([], re.sub(r"\s+", " ", m.group(1)))
    for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", src):
        paths.append([m.group(1)] + [s for s in m.group(2).split("::") if s])
    deps = set()
    for p in paths:
        if not p:
            continue
        if p[0] == "crate":
            base, p = [], p[1:]
        elif p[0] in ("super", "self"):
            base = list(parts)
            while p and p[0] in ("super", "self"):
                if p[0] == "super":
                    base = base[:-1]
                p = p[1:]
        elif is_mod(rel) and tuple(list(parts) + [p[0]]) in files:
            base = list(parts)
        else:
            continue
        target = resolve(base + p)
        if target and target != rel and not structural(rel, target):
            deps.add(target)
    edges[rel] = deps

# Tarjan's strongly connected components.
sys.setrecursionlimit(10000)
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        comps.append(comp)


for v in sorted(edges):
    if v not in index:
        visit(v)
circles = [sorted(c) for c in comps if len(c) > 1]
for c in sorted(circles):
    print("circle:", " ".join(c))
    for a in c:
        for b in sorted(edges[a] & set(c)):
            print(f"   {a} -> {b}")
print(f"{len(circles)} circles")
sys.exit(1 if circles else 0)
