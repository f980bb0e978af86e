#!/usr/bin/env bash
# Runs every test suite of shard_coordinator and ends with one line
# "N passed, N failed" (tests, summed over the suites).
#
#   scripts/run-tests.sh            all suites
#   SC_SUITES="unit regress" scripts/run-tests.sh   only these
#
# Suites: lint (clang-format, clang-tidy), unit (pure C++, GoogleTest), regress (pg_regress), isolation
# (isolation specs), pgtap (pg_prove), tap (PostgreSQL::Test::Cluster: restarts,
# crashes, standby, promotion, PgBouncer, failover, Patroni), chaos (56 agents in 4
# clusters under random faults; no key worked on by two children at once in
# exclusive clusters), client (the C++ client's own tests), prometheus
# (contrib/prometheus's queries file with Debian's prometheus-postgres-exporter),
# node (the Node.js package: its unit tests and integration tests), package
# (the Debian packages: built, installed, a smoke test, purged; what was
# installed at their paths is put back). The server suites run on throwaway PostgreSQL
# servers (scripts/with-pg.sh); the extension is installed first (not for
# lint and package alone, which need no installed extension).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

# chaos runs for SC_CHAOS_DURATION seconds (default 90); scripts/soak.sh runs
# it for longer.
suites=${SC_SUITES:-"lint unit regress isolation pgtap tap client prometheus node chaos package"}
logs=$(mktemp -d)
total_passed=0
total_failed=0
failed_suites=()

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi

count() {  # suite log -> "passed failed"
  local suite=$1 log=$2 p=0 f=0
  case $suite in
    unit|client-unit)
      p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
      f=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
      ;;
    regress|isolation)
      p=$(grep -Ec '^(ok [0-9]+|test |     |ok)?.*\.\.\. ok' "$log")
      f=$(grep -Ec '\.\.\. FAILED' "$log")
      ;;
    pgtap)
      p=$(grep -Ec '^ok [0-9]+' "$log")
      f=$(grep -Ec '^not ok [0-9]+' "$log")
      ;;
    node)
      read -r p f < <(sed -n 's/^node: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -1)
      p=${p:-0}
      f=${f:-0}
      ;;
    *)
      p=$(grep -Ec '^ok [0-9]+' "$log")
      f=$(grep -Ec '^not ok [0-9]+' "$log")
      ;;
  esac
  echo "$p $f"
}

run_suite() {  # name command...
  local name=$1
  shift
  echo "=== suite: $name"
  local log="$logs/$name.log"
  rm -f regression.diffs output_iso/regression.diffs
  "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  read -r p f < <(count "$name" "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1  # the suite itself failed (build, server start, ...)
  fi
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  if [ "$rc" -ne 0 ]; then
    failed_suites+=("$name")
    [ -f regression.diffs ] && cat regression.diffs
    [ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs
  fi
  echo "=== suite $name: $p passed, $f failed (exit $rc)"
}

needs_install=""
for suite in $suites; do
  case $suite in lint|package) ;; *) needs_install=1 ;; esac
done
if [ -n "$needs_install" ]; then
  $sudo make -s install install-client >/dev/null || { echo "make install install-client failed"; echo "0 passed, 1 failed"; exit 1; }
fi

for suite in $suites; do
  case $suite in
    lint)
      run_suite lint make -s lint ;;
    unit)
      run_suite unit make -s unit-test ;;
    regress)
      if ls test/sql/*.sql >/dev/null 2>&1; then
        run_suite regress scripts/with-pg.sh make -s installcheck ISOLATION= \
          PG_CONFIG=pg_config
      fi ;;
    isolation)
      if ls test/specs/*.spec >/dev/null 2>&1; then
        run_suite isolation scripts/with-pg.sh make -s installcheck REGRESS= \
          PG_CONFIG=pg_config
      fi ;;
    pgtap)
      if ls test/pgtap/*.sql >/dev/null 2>&1; then
        run_suite pgtap scripts/with-pg.sh bash -c \
          'psql -X -q -c "CREATE EXTENSION IF NOT EXISTS pgtap" && pg_prove --verbose test/pgtap/*.sql'
      fi ;;
    tap)
      if ls test/t/*.pl >/dev/null 2>&1; then
        run_suite tap scripts/run-tap.sh
      fi ;;
    chaos)
      run_suite chaos scripts/with-pg.sh python3 test/chaos/chaos.py \
        --duration "${SC_CHAOS_DURATION:-90}" ;;
    client)
      if [ -f client/Makefile ]; then
        run_suite client-unit make -s -C client unit-test
        run_suite client scripts/with-pg.sh make -s -C client integration-test
      fi ;;
    prometheus)
      run_suite prometheus scripts/with-pg.sh python3 test/prometheus/exporter_test.py ;;
    node)
      if [ -f client/node/package.json ]; then
        run_suite node client/node/scripts/test.sh
      fi ;;
    package)
      run_suite package test/package/run.sh ;;
    *)
      echo "unknown suite $suite" >&2
      total_failed=$((total_failed + 1)) ;;
  esac
done

rm -rf "$logs"
if [ ${#failed_suites[@]} -gt 0 ]; then
  echo "failed suites: ${failed_suites[*]}"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
