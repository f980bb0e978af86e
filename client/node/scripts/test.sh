#!/usr/bin/env bash
# Builds the Node client and runs its tests with Node's own runner: the unit
# tests (no server), then each integration test file on a throwaway
# PostgreSQL of its own (scripts/with-pg.sh: the extension must be
# installed, pg_virtualenv available). TAP on stdout, then one line
# "N passed, N failed"; exits non-zero if anything failed or did not run.
#
#   client/node/scripts/test.sh                 # everything
#   client/node/scripts/test.sh unit            # the unit tests only
#   client/node/scripts/test.sh handover pack   # integration files by name
#
# Installs the npm dependencies (npm ci) when node_modules is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$here"

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund || exit 1
fi
node scripts/build.mjs --tests || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run_tap() {
  # TAP to stdout and to the log (for the totals); the runner's status kept.
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || status=1
}

want_unit=1
files=()
if [ $# -gt 0 ]; then
  want_unit=0
  for name in "$@"; do
    if [ "$name" = unit ]; then
      want_unit=1
    elif [ -f "build/test/integration/$name.test.js" ]; then
      files+=("build/test/integration/$name.test.js")
    else
      echo "no such test file: test/integration/$name.test.ts" >&2
      exit 2
    fi
  done
else
  files=(build/test/integration/*.test.js)
fi

if [ "$want_unit" = 1 ]; then
  echo "# unit tests"
  run_tap node --test --test-reporter=tap build/test/unit/*.test.js
fi
for f in "${files[@]}"; do
  echo "# $f (a throwaway server)"
  # A file that hangs is ended (then counted as failed), and the server
  # is still dropped.
  run_tap "$repo/scripts/with-pg.sh" timeout -k 10 "${SC_NODE_FILE_TIMEOUT:-600}" \
    node --test --test-reporter=tap "$f"
done

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
skipped=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a runner that died
if [ "$passed" -eq 0 ]; then status=1; fi
echo "node: $passed passed, $failed failed, $skipped skipped"
exit "$status"
