#!/usr/bin/env python3
"""The C++/PostgreSQL boundary rules, checked (run by `make lint`):

1. src/core/ is pure C++: its files include only standard or third-party
   headers and other core/ headers, never a PostgreSQL header.
2. The functions of src/core/ that Postgres-facing code (src/shmem,
   src/worker, src/sql, src/module.cpp) calls are declared noexcept: a core
   function that may throw is reached only through a noexcept bridge.

Prints each violation as file:line: message and exits 1 if there is any.
"""
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(TOP, "src")


def pg_include_names():
    """Top-level names in PostgreSQL's server include directory."""
    try:
        out = subprocess.run(["pg_config", "--includedir-server"],
                             capture_output=True, text=True, check=True)
        return set(os.listdir(out.stdout.strip()))
    except (OSError, subprocess.CalledProcessError):
        # Without pg_config: the names every PostgreSQL header lives under.
        return {"postgres.h", "fmgr.h", "funcapi.h", "miscadmin.h", "pgstat.h",
                "access", "catalog", "commands", "executor", "lib", "nodes",
                "port", "postmaster", "storage", "tcop", "utils", "datatype"}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"),
                  text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def files(folder, exts):
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            if name.endswith(exts):
                yield os.path.join(root, name)


def main():
    problems = []
    core = os.path.join(SRC, "core")
    pg_names = pg_include_names()
    include = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
    for path in files(core, (".cpp", ".hpp")):
        rel = os.path.relpath(path, TOP)
        for number, line in enumerate(open(path), 1):
            m = include.match(line)
            if not m:
                continue
            kind, name = m.groups()
            first = name.split("/")[0]
            if kind == '"' and not name.startswith("core/"):
                problems.append(f"{rel}:{number}: core/ includes \"{name}\" "
                                "(only core/ headers may be included with quotes)")
            elif name == "pg_prelude.hpp" or first in pg_names:
                problems.append(f"{rel}:{number}: core/ includes the "
                                f"PostgreSQL header {name}")

    # Functions declared in core headers, and whether they are noexcept.
    declared = {}
    decl = re.compile(
        r"(?:^|[;{}])\s*(?:static\s+|inline\s+|constexpr\s+)*"
        r"[A-Za-z_][\w:<>,\s\*&]*?[\s\*&]([a-z_][a-z0-9_]*)\s*\(([^;{}]*?)\)\s*"
        r"(const\s*)?(noexcept)?\s*(?:override\s*)?(;|\{)", re.M)
    for path in files(core, (".hpp",)):
        text = strip_comments(open(path).read())
        for m in decl.finditer(text):
            name, noexcept = m.group(1), m.group(4) is not None
            if name in ("if", "for", "while", "switch", "return", "sizeof"):
                continue
            declared[name] = declared.get(name, True) and noexcept
    throwing = {n for n, ok in declared.items() if not ok}

    facing = [p for d in ("shmem", "worker", "sql")
              for p in files(os.path.join(SRC, d), (".cpp", ".hpp"))]
    facing.append(os.path.join(SRC, "module.cpp"))
    for path in facing:
        rel = os.path.relpath(path, TOP)
        text = strip_comments(open(path).read())
        for number, line in enumerate(text.split("\n"), 1):
            for name in throwing:
                if re.search(r"(?<![\w.>])" + name + r"\s*\(", line):
                    problems.append(
                        f"{rel}:{number}: Postgres-facing code calls {name}(), "
                        "which is not noexcept: call it through a noexcept "
                        "bridge in core/")
    for p in problems:
        print(p)
    if not problems:
        print(f"boundary: core/ is free of PostgreSQL headers; "
              f"{len(declared) - len(throwing)} noexcept core functions, "
              f"{len(throwing)} others, none called from Postgres-facing code")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
