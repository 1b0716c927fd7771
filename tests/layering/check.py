#!/usr/bin/env python3
"""The layering rule of docs/architecture.md, checked on the source tree.

1. A folder of src/ includes only from the folders below it (the table FLOORS): machine/
   nothing from vmm/ or cli/, block/ and hw/ nothing from vmm/, and so on.
   machine/, vmm/ and cli/ reach a CPU only through cpu/engine.h, never cpu/rv64/.
2. No circle between modules of different folders. A module is a .c file and the header of
   the same name beside it; module A depends on module B when a file of A includes B's header.

Prints one line per violation, then "layering: N passed, N failed" (one check per rule)."""

import os
import re
import sys

# What each folder may include, besides itself. Lower floors never name higher ones.
FLOORS = {
    "base": set(),
    "block": {"base"},
    "net": {"base"},
    "hw": {"base", "block", "net"},
    "cpu": {"base", "hw"},
    "machine": {"base", "block", "net", "hw", "cpu"},
    "vmm": {"base", "block", "net", "hw", "cpu", "machine"},
    "daemon": {"base", "block", "vmm"},
    "cli": {"base", "block", "net", "hw", "cpu", "machine", "vmm", "daemon"},
}

# Doors within a floor: the board reaches a CPU only through the engine seam (cpu/engine.h),
# never an engine's own headers.
PRIVATE = {
    "machine": ("cpu/rv64/",),
    "vmm": ("cpu/rv64/",),
    "cli": ("cpu/rv64/",),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(src):
    """{module name: [files]}, the module being the path without its extension."""
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if f.endswith((".c", ".h")):
                path = os.path.relpath(os.path.join(root, f), src)
                mods.setdefault(os.path.splitext(path)[0], []).append(path)
    return mods


def folder(path):
    return path.split("/")[0]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    mods = modules(src)
    edges = {m: set() for m in mods}
    floor_errors = []
    for mod, files in sorted(mods.items()):
        for f in files:
            with open(os.path.join(src, f), encoding="utf-8") as fh:
                text = fh.read()
            for inc in INCLUDE.findall(text):
                target = os.path.splitext(inc)[0]
                if target not in mods:
                    continue  # a test-only or generated header: not a module of src/
                a, b = folder(f), folder(inc)
                if a not in FLOORS:
                    floor_errors.append("%s: folder %s/ is not in the floor table" % (f, a))
                elif a != b and b not in FLOORS[a]:
                    floor_errors.append("%s includes %s: %s/ may not depend on %s/" % (f, inc, a, b))
                elif any(inc.startswith(p) for p in PRIVATE.get(a, ())):
                    floor_errors.append("%s includes %s: %s/ reaches a CPU only through "
                                        "cpu/engine.h" % (f, inc, a))
                if target != mod:
                    edges[mod].add(target)

    # Circles: Tarjan's strongly connected components; a component that spans two folders is
    # a circle between folders.
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
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
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    circle_errors = ["a circle between folders: " + " <-> ".join(c)
                     for c in comps if len({folder(m) for m in c}) > 1]

    for e in floor_errors + circle_errors:
        print("FAIL " + e)
    failed = int(bool(floor_errors)) + int(bool(circle_errors))
    print("layering: %d passed, %d failed" % (2 - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
