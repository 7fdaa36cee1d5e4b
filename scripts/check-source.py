#!/usr/bin/env python3
"""scripts/check-source.py — checks over mrgate's C sources that `make test` runs (tests/CMakeLists.txt).

    check-source.py format     every C file is formatted as .clang-format says (clang-format --dry-run --Werror)
    check-source.py includes   the include graph of core/ and server/ has no cycle: a module (x.c with x.h) that
                               includes another's header may not be included back, directly or through others
    check-source.py sql        no SQL statement text under server/ (the domain and its SQL live in core/)

Each prints what it found and exits 1 when the check fails.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C_DIRS = ("core", "server", "tests", "bench")


def c_files(dirs):
    out = []
    for d in dirs:
        for base, _, names in os.walk(os.path.join(ROOT, d)):
            if "node_modules" in base or "/corpus" in base:
                continue
            out += [os.path.join(base, n) for n in names if n.endswith((".c", ".h"))]
    return sorted(out)


def check_format():
    files = c_files(C_DIRS)
    r = subprocess.run(["clang-format", "--dry-run", "--Werror", *files], cwd=ROOT, capture_output=True, text=True)
    bad = sorted({line.split(":")[0] for line in r.stderr.splitlines() if ": error:" in line})
    if r.returncode != 0:
        for f in bad:
            print(f"not formatted: {os.path.relpath(f, ROOT)}")
        print(f"{len(bad)} of {len(files)} C files differ from .clang-format; run: "
              "clang-format -i $(git ls-files '*.c' '*.h')")
        return 1
    print(f"{len(files)} C files match .clang-format")
    return 0


INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def check_includes():
    files = c_files(("core", "server"))
    module_of = {}  # header basename -> module "dir/stem"
    for f in files:
        if f.endswith(".h"):
            module_of[os.path.basename(f)] = os.path.relpath(f, ROOT)[:-2]
    graph = {}
    for f in files:
        mod = os.path.relpath(f, ROOT)[:-2]
        with open(f, encoding="utf-8") as fh:
            for inc in INCLUDE.findall(fh.read()):
                dep = module_of.get(os.path.basename(inc))
                if dep and dep != mod:
                    graph.setdefault(mod, set()).add(dep)
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    for c in cycles:
        print("include cycle: " + " -> ".join(c))
    edges = sum(len(v) for v in graph.values())
    print(f"{len(graph)} modules, {edges} include edges, {len(cycles)} cycles")
    return 1 if cycles else 0


STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|WHERE|JOIN|RETURNING|CREATE\s+TABLE|"
                 r"ALTER\s+TABLE|ON\s+CONFLICT|BEGIN|COMMIT|ROLLBACK|LISTEN|NOTIFY)\b")


def check_sql():
    found = 0
    for f in c_files(("server",)):
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                for s in STRING.findall(line):
                    if SQL.search(s):
                        print(f"{os.path.relpath(f, ROOT)}:{n}: SQL under server/: {s[:100]}")
                        found += 1
    print(f"{found} SQL strings under server/")
    return 1 if found else 0


def main():
    checks = {"format": check_format, "includes": check_includes, "sql": check_sql}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        print(__doc__)
        return 2
    return checks[sys.argv[1]]()


if __name__ == "__main__":
    sys.exit(main())
