#!/usr/bin/env bash
# shard_coordinator benchmarks (issues 5 and 13): every figure, on throwaway
# PostgreSQL 15 servers, then bench/RESULTS.md and bench/results.png.
#
#   bench/run.sh            (or: make bench)
#
# Needs root or sudo for the Debian packages it installs when missing
# (scripts/install-deps.sh, which brings pgbench with postgresql-15, plus
# gnuplot-nox and linux-perf) and for `make install`. Takes about 12 minutes on 2 cores.
#
# Knobs (environment): SC_BENCH_SECONDS (4, seconds per pgbench run),
# SC_BENCH_ROUNDS (3, alternating rounds), SC_BENCH_CLIENTS ("16 64"),
# SC_BENCH_JOIN_SAMPLES (150), SC_BENCH_FAIL_SAMPLES (100), SC_BENCH_BIG
# (10000), SC_BENCH_LEAVES (5), SC_BENCH_LISTENERS (100), SC_BENCH_OUT (raw
# results; default bench/out, which is not kept in git).
# Handovers (bench/handover.py): SC_BENCH_HANDOVER_RUNS (30 measured events
# per scenario), SC_BENCH_HANDOVER_SCENARIOS ("slots-join slots-leave
# slots-kill plain-join plain-leave").
# SC_BENCH_MASS_ROUNDS (5, rounds of the mass event), SC_BENCH_CHURN_SECONDS
# (600, the memory-over-time run).
# SC_BENCH_ONLY ("main handover"): the parts to run, "main" being figures
# 1-7. With only some of them, RESULTS.md and results.png are written to the
# output directory and bench/ is left alone: a partial run never replaces
# the committed results.
# SC_BENCH_INSTALL (1): 0 skips `make install` and measures the extension
# already installed (RESULTS.md says whether it is this tree's build).
#
# What each figure measures and how: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bench=$top/bench
out=${SC_BENCH_OUT:-$bench/out}
only=${SC_BENCH_ONLY:-main handover}
for part in $only; do
  case $part in
    main | handover) ;;
    *) echo "SC_BENCH_ONLY: unknown part '$part' (known: main handover)" >&2; exit 2 ;;
  esac
done
want() { [[ " $only " == *" $1 "* ]]; }
# Where RESULTS.md and results.png go: bench/ only from a complete run.
report_dir=$bench
if ! { want main && want handover; }; then report_dir=$out; fi

log() { echo "[bench $(date +%T)] $*" >&2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# --- Packages -------------------------------------------------------------------
bash scripts/install-deps.sh
missing=()
for p in gnuplot-nox linux-perf; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # linux-perf may not match the running kernel: the bench runs without a
  # profile then.
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi
export PATH=/usr/lib/postgresql/15/bin:$PATH

# --- Build ----------------------------------------------------------------------
log "building and installing the extension"
make -s all client >/dev/null
if [ "${SC_BENCH_INSTALL:-1}" != 0 ]; then
  $sudo make -s install >/dev/null
fi
rm -rf "$out"
mkdir -p "$out"
md5sum <shard_coordinator.so | cut -d' ' -f1 >"$out/tree_library_md5.txt"
g++ -std=c++17 -O2 -Wall -Wextra -I"$(pg_config --includedir)" \
  -o "$out/sc_bench_latency" "$bench/latency.cpp" -lpq -pthread
# Static: no dynamic loading of libstdc++ before main() (about 3 ms a start
# on this kind of machine), so the child starts as soon as it is exec'd.
g++ -std=c++17 -O2 -Wall -Wextra -static -o "$out/sc_bench_handover_child" "$bench/handover_child.cpp" ||
  g++ -std=c++17 -O2 -Wall -Wextra -o "$out/sc_bench_handover_child" "$bench/handover_child.cpp"

# --- The machine -----------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src sql 2>/dev/null || echo ' (src/ or sql/ modified)')"
  echo "kernel: $(uname -sr)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|CPU max MHz|L2 cache|L3 cache|Hypervisor vendor):' | sed 's/  */ /g'
  free -m | awk '/^Mem:/ {printf "memory: %d MiB total, %d MiB available\n", $2, $7}'
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

common=(-o fsync=on -o max_connections=300 -o track_commit_timestamp=on
        -o checkpoint_timeout=1h -o max_wal_size=8GB
        -o shard_coordinator.max_clusters=1200)

if want main; then
  # --- Figure 6: shared memory per member slot, by difference of two servers ------
  log "shared memory with max_members=1000"
  scripts/with-pg.sh "${common[@]}" -o shard_coordinator.max_members=1000 \
    psql -X -At -c "SELECT sum(allocated_size) FROM pg_shmem_allocations" \
    >"$out/shmem_small.txt" 2>"$out/server_small.log"

  # --- Everything else on one server -----------------------------------------------
  log "main run (max_members=200000)"
  start=$(date +%s)
  scripts/with-pg.sh "${common[@]}" -o shard_coordinator.max_members=200000 \
    bash "$bench/inner.sh" "$out"
  echo "main run: $(( $(date +%s) - start )) s" >>"$out/machine.txt"
fi

# --- Handovers (issue 13): real agents on a server of their own ---------------------
if want handover; then
  log "handover run (agents: client/build/shard-coordinator)"
  start=$(date +%s)
  scripts/with-pg.sh "${common[@]}" -o shard_coordinator.max_members=1000 \
    python3 "$bench/handover.py" --out "$out" \
      --agent "$top/client/build/shard-coordinator" \
      --child "$out/sc_bench_handover_child" \
      --runs "${SC_BENCH_HANDOVER_RUNS:-30}" \
      --scenarios "${SC_BENCH_HANDOVER_SCENARIOS:-slots-join slots-leave slots-kill plain-join plain-leave}" ||
    log "the handover run failed (logs: $out/handover/); the report shows what was measured"
  echo "handover run: $(( $(date +%s) - start )) s" >>"$out/machine.txt"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

# --- Report -----------------------------------------------------------------------
python3 "$bench/report.py" "$out" "$bench" "$report_dir"
log "wrote $report_dir/RESULTS.md and $report_dir/results.png"
