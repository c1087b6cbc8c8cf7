#!/usr/bin/env python3
"""Checks that the modules of the C core depend on each other without a cycle.

A module is a .c file and its .h, named by its path (csrc/core/tensor/tensor.c + tensor.h =
"tensor/tensor"; a header alone is a module too). Module A depends on module B when a file of A includes
B's header, or when A's object file uses a function or variable that B's object file defines (which
catches a function declared in one header and defined in another module's .c, as lt_contiguous once
was: declared in tensor.h, defined in tensor_math.c). The symbols come from `nm` on the objects of a
CMake build (default build.luarocks).

Prints every cycle (each strongly connected component of more than one module) with one dependency
path around it and the reason for each step, and exits 1 if there is any.
Usage: tools/check_c_cycles.py [build_dir] [source_root]     (from the repository root)
"""
import os
import re
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build.luarocks"
root = sys.argv[2] if len(sys.argv) > 2 else "csrc/core"

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    return os.path.splitext(os.path.relpath(path, root))[0]


sources = []
for folder, _, files in os.walk(root):
    sources += [os.path.join(folder, f) for f in files if f.endswith((".c", ".h"))]
modules = {module_of(p) for p in sources}

edges = {}  # (a, b) -> reason


def add(a, b, why):
    if a != b and b in modules:
        edges.setdefault((a, b), why)


for path in sources:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for inc in INCLUDE.findall(text):
        target = os.path.normpath(os.path.join(os.path.dirname(path), inc))
        if os.path.exists(target):
            add(module_of(path), module_of(target), "includes " + inc)

# Symbols: which module's object defines each, which modules' objects use it.
objects = {}
obj_root = os.path.join(build, "CMakeFiles", "lightning_ccore.dir", root)
for folder, _, files in os.walk(obj_root):
    for f in files:
        if f.endswith(".c.o"):
            src = os.path.join(root, os.path.relpath(os.path.join(folder, f[:-2]), obj_root))
            objects[module_of(src)] = os.path.join(folder, f)
if not objects:
    sys.exit(f"check_c_cycles: no objects under {obj_root}; build first (see README)")

defined, used = {}, {m: set() for m in objects}
module_of_object = {obj: mod for mod, obj in objects.items()}
out = subprocess.run(["nm", "-A"] + sorted(objects.values()), capture_output=True, text=True, check=True).stdout
for line in out.splitlines():  # "file.o:address type name" or "file.o:         U name"
    obj, _, rest = line.partition(":")
    parts = rest.split()
    if obj not in module_of_object or len(parts) < 2:
        continue
    kind, name = parts[-2], parts[-1]
    if kind == "U":
        used[module_of_object[obj]].add(name)
    elif kind.isupper():  # a global definition (T text, D data, B bss, R read-only, ...)
        defined[name] = module_of_object[obj]
for mod, symbols in used.items():
    for sym in sorted(symbols):
        if sym in defined:
            add(mod, defined[sym], "uses " + sym)

# Strongly connected components (Tarjan), then one cycle through each.
graph = {m: sorted(b for (a, b) in edges if a == m) for m in modules}
index, low, stack, on_stack, components = {}, {}, [], set(), []


def strongconnect(v, counter=[0]):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
        if w not in index:
            strongconnect(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            components.append(sorted(comp))


sys.setrecursionlimit(10000)
for m in sorted(modules):
    if m not in index:
        strongconnect(m)


def cycle_in(comp):
    """A path from comp[0] back to itself inside the component (breadth first: a short one)."""
    members, start = set(comp), comp[0]
    previous, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    path = [v]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
                if w in members and w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


for comp in components:
    path = cycle_in(comp)
    print("cycle: " + " -> ".join(path))
    for a, b in zip(path, path[1:]):
        print(f"  {a} -> {b}: {edges[(a, b)]}")
if components:
    sys.exit(1)
print(f"check_c_cycles: {len(modules)} modules of {root}, {len(edges)} dependencies, no cycle")
