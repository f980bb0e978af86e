#!/usr/bin/env python3
"""Every version number of the release agrees (run by `make lint`):

- META.json: valid for PGXN (the meta spec's required keys, semantic
  versions, a known licence), its version that of every extension it
  provides, and each provided file present;
- shard_coordinator.control: default_version is META.json's major.minor,
  with its install script, every script in the Makefile's DATA, and an
  update path from every older version to it;
- src/module.hpp: the catalog version the library expects (kCatalogVersion)
  is default_version;
- client/CMakeLists.txt: the agent's version (shard-coordinator --version);
- client/node/package.json and package-lock.json: the Node package's
  version, and its licence "PostgreSQL";
- CHANGELOG.md: the newest entry is this version;
- debian/changelog: the packages' version (its newest entry) is this
  version;
- LICENSE: the PostgreSQL Licence.

Prints each disagreement and exits 1 if there is any.
"""
import glob
import json
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTENSION = "shard_coordinator"
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?$")
# The licence names of the PGXN meta spec 1.0.0.
PGXN_LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
    "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
    "restricted", "unrestricted", "unknown"}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def read(rel):
    with open(os.path.join(TOP, rel)) as f:
        return f.read()


def check_meta():
    """META.json against the PGXN meta spec; returns its version or None."""
    try:
        meta = json.loads(read("META.json"))
    except (OSError, ValueError) as e:
        problem("META.json", f"cannot be read as JSON: {e}")
        return None
    for key in ("name", "abstract", "version", "maintainer", "license",
                "provides", "meta-spec"):
        if key not in meta:
            problem("META.json", f"lacks the required key \"{key}\"")
    if meta.get("name") != EXTENSION:
        problem("META.json", f"name is {meta.get('name')!r}, not {EXTENSION!r}")
    version = meta.get("version", "")
    if not SEMVER.match(str(version)):
        problem("META.json", f"version {version!r} is not a semantic version")
        version = None
    spec = meta.get("meta-spec", {})
    if not isinstance(spec, dict) or spec.get("version") != "1.0.0":
        problem("META.json", "meta-spec.version must be \"1.0.0\"")
    maintainer = meta.get("maintainer")
    if not maintainer or not (isinstance(maintainer, str) or (
            isinstance(maintainer, list) and
            all(isinstance(m, str) and m for m in maintainer))):
        problem("META.json", "maintainer must be a name or a list of names")
    licenses = meta.get("license")
    names = []
    if isinstance(licenses, str):
        names = [licenses]
    elif isinstance(licenses, list):
        names = licenses
    elif isinstance(licenses, dict):
        names = []  # name -> URL: any name goes
    for name in names:
        if name not in PGXN_LICENSES:
            problem("META.json", f"license {name!r} is not one of the spec's")
    provides = meta.get("provides", {})
    if not isinstance(provides, dict) or EXTENSION not in provides:
        problem("META.json", f"provides does not name {EXTENSION}")
        provides = {}
    for name, what in provides.items():
        if not isinstance(what, dict):
            problem("META.json", f"provides.{name} is not an object")
            continue
        for key in ("file", "version"):
            if key not in what:
                problem("META.json", f"provides.{name} lacks \"{key}\"")
        if what.get("version") != version:
            problem("META.json", f"provides.{name}.version is "
                    f"{what.get('version')!r}, the release is {version!r}")
        for key in ("file", "docfile"):
            if key in what and not os.path.isfile(os.path.join(TOP, what[key])):
                problem("META.json", f"provides.{name}.{key} "
                        f"{what[key]!r} does not exist")
    requires = meta.get("prereqs", {}).get("runtime", {}).get("requires", {})
    if "PostgreSQL" not in requires:
        problem("META.json", "prereqs.runtime.requires names no PostgreSQL")
    if not isinstance(meta.get("resources", {}), dict):
        problem("META.json", "resources must be an object")
    return version


def check_control(release):
    """The control file and the SQL scripts; returns default_version."""
    text = read(f"{EXTENSION}.control")
    m = re.search(r"^\s*default_version\s*=\s*'([^']+)'", text, re.M)
    if not m:
        problem(f"{EXTENSION}.control", "has no default_version")
        return None
    default = m.group(1)
    if release and default != ".".join(release.split(".")[:2]):
        problem(f"{EXTENSION}.control", f"default_version '{default}' is not "
                f"the major.minor of the release {release}")
    scripts = sorted(os.path.basename(p) for p in
                     glob.glob(os.path.join(TOP, "sql", f"{EXTENSION}--*.sql")))
    if f"{EXTENSION}--{default}.sql" not in scripts:
        problem("sql/", f"no install script {EXTENSION}--{default}.sql")
    makefile = read("Makefile")
    for script in scripts:
        if f"sql/{script}" not in makefile:
            problem("Makefile", f"DATA does not install sql/{script}")
    # Every version with an install script reaches the default by updates.
    edges = {}
    versions = set()
    for script in scripts:
        parts = script[len(EXTENSION) + 2:-len(".sql")].split("--")
        if len(parts) == 1:
            versions.add(parts[0])
        elif len(parts) == 2:
            edges.setdefault(parts[0], set()).add(parts[1])
    for start in sorted(versions - {default}):
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if default not in seen:
            problem("sql/", f"no update path from {start} to {default}")
    return default


def check_library(default):
    text = read("src/module.hpp")
    m = re.search(r'kCatalogVersion\[\]\s*=\s*"([^"]+)"', text)
    if not m:
        problem("src/module.hpp", "has no kCatalogVersion")
    elif default and m.group(1) != default:
        problem("src/module.hpp", f"kCatalogVersion is \"{m.group(1)}\", "
                f"default_version is '{default}'")


def check_clients(release):
    m = re.search(r"^project\([^)]*\bVERSION\s+([0-9][^\s)]*)",
                  read("client/CMakeLists.txt"), re.M)
    agent = m.group(1) if m else None
    if agent != release:
        problem("client/CMakeLists.txt", f"the agent's version is {agent!r}, "
                f"the release is {release!r}")
    package = json.loads(read("client/node/package.json"))
    if package.get("version") != release:
        problem("client/node/package.json", f"version is "
                f"{package.get('version')!r}, the release is {release!r}")
    if package.get("license") != "PostgreSQL":
        problem("client/node/package.json", "license is not \"PostgreSQL\"")
    lock = json.loads(read("client/node/package-lock.json"))
    for where, version in (("version", lock.get("version")),
                           ('packages[""].version',
                            lock.get("packages", {}).get("", {}).get("version"))):
        if version != release:
            problem("client/node/package-lock.json", f"{where} is {version!r}, "
                    f"the release is {release!r} (npm install updates it)")


def check_docs(release):
    m = re.search(r"^## (\S+)", read("CHANGELOG.md"), re.M)
    newest = m.group(1) if m else None
    if newest != release:
        problem("CHANGELOG.md", f"the newest entry is {newest!r}, "
                f"the release is {release!r}")
    if "PostgreSQL License" not in read("LICENSE"):
        problem("LICENSE", "is not the PostgreSQL Licence")


def check_debian(release):
    first = read("debian/changelog").split("\n", 1)[0]
    m = re.match(r"^(\S+) \(([^()\s]+)\)", first)
    if not m:
        problem("debian/changelog", f"cannot read its first line: {first!r}")
        return
    version = m.group(2)
    # Epoch and Debian revision aside (a native package has neither).
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
    if upstream != release:
        problem("debian/changelog", f"the packages' version is {version!r}, "
                f"the release is {release!r}")


def main():
    release = check_meta()
    default = check_control(release)
    check_library(default)
    if release:
        check_clients(release)
        check_docs(release)
        check_debian(release)
    for p in problems:
        print(p)
    if not problems:
        print(f"versions: {release} everywhere (catalog {default}); "
              "META.json is valid")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
