#!/usr/bin/env bash
# Builds the Debian packages postgresql-15-shard-coordinator and
# shard-coordinator-agent (debian/, dpkg-buildpackage -us -uc -b) from a copy
# of this tree in a temporary directory, so that the tree stays as it is,
# and puts the .deb files into OUTDIR (default: the top directory).
#
#   scripts/build-deb.sh [OUTDIR]        (make deb)
#
# The copy holds the files git knows of (tracked, and new ones not ignored)
# or, outside a git checkout, the whole tree. DEB_BUILD_OPTIONS passes on
# (e.g. nocheck: no unit tests of the agent); parallel defaults to the
# number of CPUs. The build dependencies: apt-get build-dep ./ (or make deps).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$top}" && cd "${1:-$top}" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/sc-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/shard-coordinator
mkdir "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$top" && git ls-files -z --cached --others --exclude-standard |
     tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$src"
else
  tar -C "$top" --exclude-vcs --exclude=./client/build --exclude='*.deb' \
    -cf - . | tar -xf - -C "$src"
fi

case " ${DEB_BUILD_OPTIONS:-} " in
  *" parallel="*) ;;
  *) export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)" ;;
esac
profiles=()
case " $DEB_BUILD_OPTIONS " in *" nocheck "*) profiles=(-Pnocheck) ;; esac

(cd "$src" && dpkg-buildpackage -us -uc -b "${profiles[@]}")
debs=("$work"/*.deb)
cp "${debs[@]}" "$out"/
for d in "${debs[@]}"; do echo "$out/$(basename "$d")"; done
