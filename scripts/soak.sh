#!/usr/bin/env bash
# Soak test: the randomized property tests with random seeds, then the chaos
# test of test/chaos/chaos.py, for as long as you like, on a throwaway
# server.
#
#   scripts/soak.sh DURATION [chaos.py options...]
#   scripts/soak.sh 30m
#   scripts/soak.sh 2h --agents-per-cluster 25 --seed 42
#
# DURATION is seconds or a number with s, m (min) or h. Installs the
# extension and the agent first (make install install-client, as run-tests.sh does; set
# SC_SOAK_NO_INSTALL=1 to use what is installed). Ends
# with the chaos test's summary and its "N passed, N failed" line; exits
# non-zero on any violation. The logs of a failed run are kept (the path is
# printed). On long runs the children log every 100 ms instead of 50 ms
# (override with --tick) to keep the logs small: about 40 KB/s.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+(\.[0-9]+)?(s|m|min|h)?$ ]]; then
  echo "usage: $0 DURATION [chaos.py options...]   (DURATION: 600, 90s, 30m, 2h)" >&2
  exit 2
fi
duration=$1
shift

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
if [ -z "${SC_SOAK_NO_INSTALL:-}" ]; then
  $sudo make -s install install-client >/dev/null
fi

# The randomized property tests with new random seeds (make test runs them
# with fixed seeds).
make -s test/unit/unit_tests
for _ in 1 2 3 4 5; do
  SLOTS_SEED=random test/unit/unit_tests --gtest_brief=1 \
    --gtest_filter='Slots.Random*'
done

# Room for the agents, their replacements and the checker.
exec scripts/with-pg.sh -o max_connections=200 \
  python3 test/chaos/chaos.py --duration "$duration" --tick 0.1 "$@"
