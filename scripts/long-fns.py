#!/usr/bin/env python3
"""Functions longer than N lines (default 150) in a Rust tree (default src/),
by brace matching after strings, chars and comments are blanked.

    scripts/long-fns.py [src] [150]
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 150
out = []
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f)
        lines = open(p).read().split('\n')
        # crude stripping
        clean = []
        in_block = False
        for ln in lines:
            ln = re.sub(r'"(?:\\.|[^"\\])*"', '""', ln)
            ln = re.sub(r"'(?:\\.|[^'\\])'", "''", ln)
            ln = re.sub(r'//.*', '', ln)
            clean.append(ln)
        for i, ln in enumerate(clean):
            m = re.search(r'\bfn\s+(\w+)', ln)
            if not m: continue
            # find opening brace
            depth = 0; started = False; j = i
            while j < len(clean):
                for ch in clean[j]:
                    if ch == '{': depth += 1; started = True
                    elif ch == '}': depth -= 1
                    elif ch == ';' and not started and depth == 0:
                        j = -1; break
                if j == -1 or (started and depth == 0): break
                j += 1
            if j == -1 or j >= len(clean): continue
            n = j - i + 1
            if n > limit: out.append((n, f'{p}:{i+1}', m.group(1)))
for n, loc, name in sorted(out, reverse=True):
    print(f'{n:5} {loc} {name}')
