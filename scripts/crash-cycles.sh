#!/usr/bin/env bash
# Runs the crash-cycle TAP test (test/t/002_crash_cycles.pl) with more
# cycles than make test does, as a soak: immediate stops, SIGKILL of the
# postmaster and SIGKILL of a backend at random moments while members join,
# leave and expire; after each restart the invariant, the stable members'
# shards and the epochs are checked.
#
#   scripts/crash-cycles.sh [CYCLES] [SEED]
#
# CYCLES defaults to 200 (make test runs 22); SEED reproduces a run (each run
# prints its seed). The extension must be installed (make install).
set -euo pipefail
cd "$(dirname "$0")/.."
export SC_CRASH_CYCLES=${1:-200}
if [ -n "${2:-}" ]; then export SC_SEED=$2; fi
# Each cycle polls with the default timeouts; the whole run has no limit.
exec scripts/run-tap.sh t/002_crash_cycles.pl
