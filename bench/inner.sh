#!/usr/bin/env bash
# The measurements of bench/run.sh, run inside scripts/with-pg.sh (PG*
# variables point at a throwaway server with shard_coordinator). Writes raw
# results into OUT:
#   values.tsv    key<TAB>value, one figure or setting per line
#   tput.tsv      members clients kind round tps   (figures 1 and 2)
#   join_*.txt fail_*.txt leave.txt               (figures 3, 4, 5)
#   perf_*.txt    perf profiles of the heartbeat and SELECT 1 runs
#
#   bench/inner.sh OUT
set -euo pipefail
out=$1
lat=$out/sc_bench_latency

T=${SC_BENCH_SECONDS:-4}         # measured seconds per pgbench run (after warm-up)
ROUNDS=${SC_BENCH_ROUNDS:-3}     # alternating rounds per configuration
CLIENTS=${SC_BENCH_CLIENTS:-"16 64"}
JOIN_SAMPLES=${SC_BENCH_JOIN_SAMPLES:-150}
FAIL_SAMPLES=${SC_BENCH_FAIL_SAMPLES:-100}
BIG=${SC_BENCH_BIG:-10000}       # members of the cluster of figure 5
LEAVES=${SC_BENCH_LEAVES:-5}
LISTENERS=${SC_BENCH_LISTENERS:-100}
MASS_ROUNDS=${SC_BENCH_MASS_ROUNDS:-5}
CHURN_SECONDS=${SC_BENCH_CHURN_SECONDS:-600}
HOUR_MS=3600000

log() { echo "[bench $(date +%T)] $*" >&2; }
q() { psql -X -At -q -v ON_ERROR_STOP=1 -c "$1"; }
kv() { printf '%s\t%s\n' "$1" "$2" >>"$out/values.tsv"; }

: >"$out/values.tsv"
printf 'members\tclients\tkind\tround\ttps\ttps_whole_run\n' >"$out/tput.tsv"

kv server_version "$(q 'SHOW server_version')"
for g in fsync synchronous_commit shared_buffers max_connections \
         track_commit_timestamp checkpoint_timeout; do
  kv "setting.$g" "$(q "SHOW $g")"
done
kv pg_host "${PGHOST:-}"

# The library under test as the server mapped it: another `make install` may
# replace the file on disk during the run, and perf needs this copy (by
# build-id) to name the extension's functions.
datadir=$(q "SHOW data_directory")
pm=$(head -1 "$datadir/postmaster.pid")
range=$(awk '/shard_coordinator\.so/ {print $1; exit}' "/proc/$pm/maps")
if [ -n "$range" ] && cp "/proc/$pm/map_files/$range" "$out/shard_coordinator.so" 2>/dev/null; then
  kv library_md5 "$(md5sum <"$out/shard_coordinator.so" | cut -d' ' -f1)"
  if command -v perf >/dev/null 2>&1; then
    perf buildid-cache -a "$out/shard_coordinator.so" >/dev/null 2>&1 || true
  fi
fi
kv pgbench_seconds "$T"
kv pgbench_rounds "$ROUNDS"

# --- Setup: ten steady-state clusters that nobody leaves ---------------------

for k in 0 1 2 3 4 5 6 7 8 9; do
  q "SELECT shard_coordinator.configure('c$k', heartbeat_interval => '1 hour',
       grace_period => '1 hour', reshard_interval => '1s')" >/dev/null
done
for k in 0 1 2 3 4 5 6 7 8 9; do
  q "SELECT shard_coordinator.configure('g$k', heartbeat_interval => '1 hour',
       grace_period => '1 hour', reshard_interval => '1s', handover => 'immediate')" >/dev/null
done
# The plain-SQL coordinator a user would otherwise write.
q "CREATE TABLE bench_naive (cluster text, member text, shard int,
     num_shards int, last_seen timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (cluster, member))"

register() {  # first last: members worker-first .. worker-last over c0..c9
  q "SELECT count(*) FROM generate_series($1, $2) g,
       LATERAL shard_coordinator.heartbeat('c' || (g % 10), 'worker-' || g)" >/dev/null
  q "INSERT INTO bench_naive (cluster, member, shard, num_shards)
       SELECT 'c' || (g % 10), 'worker-' || g, g / 10, 0 FROM generate_series($1, $2) g" >/dev/null
  q "ANALYZE bench_naive"
}

wait_assigned() {  # cluster-pattern expected-members
  local got
  for _ in $(seq 600); do
    got=$(q "SELECT coalesce(sum(active + standby), 0) || ' ' || coalesce(sum(pending), 0)
               FROM shard_coordinator.clusters WHERE cluster LIKE '$1'")
    [ "$got" = "$2 0" ] && return 0
    sleep 0.2
  done
  echo "bench: cluster $1 never reached $2 assigned members (got $got)" >&2
  return 1
}

cat >"$out/select1.sql" <<'EOF'
SELECT 1;
EOF
cat >"$out/heartbeat.sql" <<'EOF'
\set m random(1, :members)
\set c :m % 10
SELECT * FROM shard_coordinator.heartbeat('c' || :c, 'worker-' || :m);
EOF
# One member per connection, as the agent and the client library do: the
# connection's backend finds its member without a hash lookup (its memo),
# and each call acknowledges an epoch and carries the process's incarnation
# (members agent-N of clusters g0 .. g9 of their own, registered by their
# first call during the warm-up).
cat >"$out/own.sql" <<'EOF'
\set m :client_id + 1
\set c :m % 10
SELECT * FROM shard_coordinator.heartbeat('g' || :c, 'agent-' || :m, 1, 1000 + :m);
EOF
# Diagnostic: the same call returning three of its eleven columns (the
# text output of the timestamp and intervals is part of what a full row
# costs).
cat >"$out/narrow.sql" <<'EOF'
\set m random(1, :members)
\set c :m % 10
SELECT shard, num_shards, epoch FROM shard_coordinator.heartbeat('c' || :c, 'worker-' || :m);
EOF
cat >"$out/naive.sql" <<'EOF'
\set m random(1, :members)
\set c :m % 10
UPDATE bench_naive SET last_seen = now()
 WHERE cluster = 'c' || :c AND member = 'worker-' || :m
 RETURNING shard, num_shards;
EOF

pgb() {  # kind clients members [extra pgbench args...] -> pgbench output
  local kind=$1 clients=$2 members=$3
  shift 3
  pgbench -n -M prepared -j 2 -c "$clients" -D members="$members" \
    -f "$out/$kind.sql" "$@" 2>&1
}

run_tput() {  # kind clients members round
  # Steady state: new backends first fault in the pages of shared memory
  # they touch and fill their caches, and pgbench's -T clock runs while it
  # connects. So each run lasts WARM + T seconds and the throughput is the
  # mean of pgbench's per-second progress reports after WARM seconds.
  local warm=$((3 + $2 / 32)) res tps all
  res=$(pgb "$1" "$2" "$3" -T $((warm + T)) -P 1)
  tps=$(awk -v w="$warm" '/^progress: / {t = $2 + 0; if (t > w + 0.5) {s += $4; n++}}
                         END {if (n) printf "%.1f", s / n}' <<<"$res")
  all=$(awk '/^tps = / {print $3; exit}' <<<"$res")
  if [ -z "$tps" ] || [ -z "$all" ]; then
    echo "bench: pgbench $1 -c $2 failed:" >&2
    tail -5 <<<"$res" >&2
    return 1
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$3" "$2" "$1" "$4" "$tps" "$all" >>"$out/tput.tsv"
  log "members=$3 clients=$2 $1 round $4: $tps tps steady ($all over the whole run)"
}

throughput_phase() {  # members
  local r c kinds
  for r in $(seq "$ROUNDS"); do
    for c in $CLIENTS; do
      # Rotate the order so that no kind always runs first or last.
      case $(( (r + c) % 4 )) in
        0) kinds="select1 heartbeat naive own narrow" ;;
        1) kinds="heartbeat naive own narrow select1" ;;
        2) kinds="naive own narrow select1 heartbeat" ;;
        3) kinds="own narrow select1 heartbeat naive" ;;
      esac
      for k in $kinds; do run_tput "$k" "$c" "$1" "$r"; done
    done
  done
}

worker_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The server-side cost of one call, without network or pgbench: 100,000
# calls in one statement of one new backend. Prints per-call microseconds:
# floor (the loop and the argument expressions), channel() (a C function
# returning the same channel text through the same function-scan path),
# heartbeat pass 1 (first touch of every member by this backend), then the
# median of passes 2-4 (warm).
percall() {  # label members
  local n=100000 m=$2 args
  args="'c' || (((g % $m) + 1) % 10), 'worker-' || ((g % $m) + 1)"
  psql -X -At -q <<SQL | awk '/^Time: / {print $2}' >"$out/percall_$1.raw"
SELECT count(*) FROM generate_series(0, 2) g, LATERAL shard_coordinator.channel($args) x;
SELECT count(*) FROM generate_series(0, 2) g, LATERAL (SELECT $args OFFSET 0) x;
SELECT 1 FROM shard_coordinator.heartbeat('c1', 'worker-1');
\\timing on
SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL (SELECT $args OFFSET 0) x;
SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.channel($args) x;
SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.heartbeat($args) x;
SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.heartbeat($args) x;
SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.heartbeat($args) x;
SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.heartbeat($args) x;
SQL
  read -r -d '' floor chan hb1 hb2 hb3 hb4 <"$out/percall_$1.raw" || true
  kv "percall.$1.floor_us" "$(awk -v t="$floor" -v n=$n 'BEGIN {printf "%.2f", t * 1000 / n}')"
  kv "percall.$1.channel_us" "$(awk -v t="$chan" -v n=$n 'BEGIN {printf "%.2f", t * 1000 / n}')"
  kv "percall.$1.heartbeat_first_us" "$(awk -v t="$hb1" -v n=$n 'BEGIN {printf "%.2f", t * 1000 / n}')"
  kv "percall.$1.heartbeat_warm_us" "$(printf '%s\n' "$hb2" "$hb3" "$hb4" | sort -g | sed -n 2p |
      awk -v n=$n '{printf "%.2f", $1 * 1000 / n}')"
}

# The cost of per-cluster access (README, "Access per cluster") on the
# heartbeat path: the same 1,000 members heartbeat in clusters with a
# member_role (the backend checks role membership once per cluster, then
# compares a memo) and in the clusters without one; alternating passes of
# 100,000 calls in one backend, medians of four each.
percall_access() {
  local n=100000 args_a k
  q "CREATE ROLE bench_members NOLOGIN" >/dev/null
  q "GRANT bench_members TO CURRENT_USER" >/dev/null
  for k in 0 1 2 3 4 5 6 7 8 9; do
    q "SELECT shard_coordinator.configure('a$k', heartbeat_interval => '1 hour',
         grace_period => '1 hour', reshard_interval => '1s', member_role => 'bench_members')" >/dev/null
  done
  q "SELECT count(*) FROM generate_series(1, 1000) g,
       LATERAL shard_coordinator.heartbeat('a' || (g % 10), 'worker-' || g)" >/dev/null
  wait_assigned 'a_' 1000
  args_a="'a' || (((g % 1000) + 1) % 10), 'worker-' || ((g % 1000) + 1)"
  # The same clusters and members, with the role and without it: only the
  # check differs (configure() between passes; each backend checks a
  # cluster once after a change of its roles).
  local with_role without
  with_role="SELECT count(*) FROM generate_series(0, 9) k, LATERAL shard_coordinator.configure('a' || k, member_role => 'bench_members') x;"
  without="SELECT count(*) FROM generate_series(0, 9) k, LATERAL shard_coordinator.configure('a' || k, member_role => '') x;"
  {
    echo "SELECT count(*) FROM generate_series(0, 999) g, LATERAL shard_coordinator.heartbeat($args_a) x;"
    for _ in 1 2 3 4 5 6; do
      echo "$with_role"
      echo '\timing on'
      echo "SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.heartbeat($args_a) x;"
      echo '\timing off'
      echo "$without"
      echo '\timing on'
      echo "SELECT count(*) FROM generate_series(0, $n - 1) g, LATERAL shard_coordinator.heartbeat($args_a) x;"
      echo '\timing off'
    done
  } | psql -X -At -q | awk '/^Time: / {print $2}' >"$out/percall_access.raw"
  kv percall.access.with_role_us "$(awk 'NR % 2 == 1' "$out/percall_access.raw" | sort -g |
      sed -n 2,5p | awk -v n=$n '{s += $1} END {printf "%.3f", s / 4 * 1000 / n}')"
  kv percall.access.without_us "$(awk 'NR % 2 == 0' "$out/percall_access.raw" | sort -g |
      sed -n 2,5p | awk -v n=$n '{s += $1} END {printf "%.3f", s / 4 * 1000 / n}')"
}

latency_phase() {  # label [perf]
  local wpid c0 t0 perfpid=""
  wpid=$(worker_pid)
  c0=$(cpu_ticks "$wpid")
  t0=$(date +%s.%N)
  log "figure 3 ($1): $JOIN_SAMPLES joins"
  "$lat" join lat-join "$JOIN_SAMPLES" "$HOUR_MS" "$out/join_$1.txt"
  log "figure 4 ($1): $FAIL_SAMPLES expiries"
  if [ "${2:-}" = perf ] && command -v perf >/dev/null 2>&1; then
    perf record -q -F 1999 -g -p "$wpid" -o "$out/perf_worker_fail.data" >/dev/null 2>&1 &
    perfpid=$!
  fi
  "$lat" fail lat-fail "$FAIL_SAMPLES" 5 "$out/fail_$1.txt"
  if [ -n "$perfpid" ]; then
    kill -INT "$perfpid" 2>/dev/null || true
    wait "$perfpid" 2>/dev/null || true
    perf_children "$out/perf_worker_fail.data" "$out/perf_worker_fail.txt"
  fi
  kv "worker_cpu.$1" "$(awk -v c="$(( $(cpu_ticks "$wpid") - c0 ))" -v hz="$(getconf CLK_TCK)" \
      -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", 100 * c / hz / (b - a)}')"
}

# Inclusive profile (children) of the functions that matter, worker side.
perf_children() {  # data out
  perf report -q -i "$1" --stdio --no-children --sort sym,srcline -g none --percent-limit 3 2>/dev/null |
    sed 's/[[:space:]][[:space:]]*/ /g; s/ $//' | grep -v '^$' >"$2.self" || true
  perf report -q -i "$1" --stdio --children --sort sym -g none 2>/dev/null |
    grep -E 'sc_worker_main|find_due_clusters|reshard|snapshot_cluster|publish_reshard|store_reshard|compute_plan|plan_reshard|SPI_execute|ExecInsertIndexTuples|ExecCheckIndexConstraints|heap_update|Async_Notify|notice_to_json|channel_name|CommitTransactionCommand|PreCommit_Notify|XLogFlush|WaitLatch|hash_search' |
    sed 's/[[:space:]]*$//' >"$2" || true
}

worker_memory() {  # label
  local pid
  pid=$(worker_pid)
  kv "worker_pid" "$pid"
  for f in VmRSS RssAnon RssFile RssShmem; do
    kv "worker.$1.$f" "$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$pid/status")"
  done
}

# Latency clusters: joins with the reshard gate always open, and a cluster
# with short intervals for expiries.
q "SELECT shard_coordinator.configure('lat-join', heartbeat_interval => '1 hour',
     grace_period => '1 hour', reshard_interval => '0')" >/dev/null
q "SELECT count(*) FROM generate_series(1, 10) g,
     LATERAL shard_coordinator.heartbeat('lat-join', 'base-' || g)" >/dev/null
q "SELECT shard_coordinator.configure('lat-fail', heartbeat_interval => '100ms',
     grace_period => '100ms', reshard_interval => '0')" >/dev/null

# --- Phase 1: 1,000 members ---------------------------------------------------

log "registering 1,000 members over 10 clusters"
register 1 1000
wait_assigned 'c_' 1000
wait_assigned 'lat-join' 10
throughput_phase 1000
percall 1k 1000
log "access check: heartbeats in clusters with and without a member_role"
percall_access
latency_phase 1k

# --- Mass events (issue 16, 3) ---------------------------------------------------

log "mass event: 1,000 clusters of 10 members each lose one member at once (${MASS_ROUNDS} rounds)"
"$lat" mass 1000 10 "$MASS_ROUNDS" "$out/mass.txt"
log "mass join: 10,000 members over 100 clusters within one second"
"$lat" joins 100 100 1000 "$out/joins.txt"

# --- Phase 2: 100,000 members ---------------------------------------------------

log "registering 99,000 more members (100,000 over 10 clusters)"
t0=$(date +%s.%N)
register 1001 100000
wait_assigned 'c_' 100000
kv register_100k_seconds "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
worker_memory 100k
throughput_phase 100000
percall 100k 100000

# --- Figure 7: WAL, xids and dead tuples of steady-state heartbeats -----------

snapshot() {  # table-pattern -> "lsn wal_bytes next_xid writes dead"
  psql -X -At -q -F ' ' -c "SELECT pg_current_wal_insert_lsn() - '0/0',
      (SELECT wal_bytes FROM pg_stat_wal),
      pg_snapshot_xmax(pg_current_snapshot()),
      (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables WHERE $1),
      (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE $1)"
}
wal_window() {  # label kind transactions-per-client table-pattern
  local a b
  q "CHECKPOINT"
  sleep 1
  a=$(snapshot "$4")
  pgb "$2" 16 100000 -t "$3" >/dev/null
  sleep 1.5  # backends flush their statistics on exit
  b=$(snapshot "$4")
  local n=$((16 * $3))
  read -r l0 w0 x0 t0 d0 <<<"$a"
  read -r l1 w1 x1 t1 d1 <<<"$b"
  kv "wal.$1.calls" "$n"
  kv "wal.$1.lsn_bytes" "$((l1 - l0))"
  kv "wal.$1.wal_bytes" "$((w1 - w0))"
  kv "wal.$1.xids" "$((x1 - x0))"
  kv "wal.$1.tuple_writes" "$((t1 - t0))"
  kv "wal.$1.dead_tuples" "$((d1 - d0))"
  # Which records: the bgwriter logs a running-transactions record every
  # 15 s after any WAL activity, whoever caused it.
  if [ "$l1" -gt "$l0" ]; then
    pg_waldump -p "$datadir/pg_wal" -s "$(lsn "$l0")" -e "$(lsn "$l1")" --stats=record \
      >"$out/wal_$1_records.txt" 2>&1 || true
  else
    : >"$out/wal_$1_records.txt"
  fi
  log "WAL window $1: $n calls, $((w1 - w0)) WAL bytes, $((x1 - x0)) xids, $((d1 - d0)) dead tuples"
}
log "figure 7: WAL and dead tuples"
lsn() { printf '%X/%X' $(($1 >> 32)) $(($1 & 0xFFFFFFFF)); }
q "ALTER TABLE bench_naive SET (autovacuum_enabled = off)"
q "VACUUM bench_naive"
wal_window select1 select1 6250 "schemaname = 'shard_coordinator'"
wal_window heartbeat heartbeat 6250 "schemaname = 'shard_coordinator'"
wal_window naive naive 625 "relname = 'bench_naive'"
q "ALTER TABLE bench_naive RESET (autovacuum_enabled)"

# --- Profiles of the heartbeat path --------------------------------------------

profile() {  # kind
  local pids
  pgb "$1" 16 100000 -T 8 >/dev/null &
  local bg=$!
  sleep 2
  pids=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
  # perf's exit status is not reliable here (it reports the end of the
  # workload it follows); judge by the data file.
  if [ -n "$pids" ]; then
    perf record -q -F 1999 -g -p "$pids" -o "$out/perf_$1.data" -- sleep 4 >/dev/null 2>&1 || true
  fi
  if [ -s "$out/perf_$1.data" ]; then
    perf report -q -i "$out/perf_$1.data" --stdio --no-children --sort dso,sym \
      --percent-limit 0.8 -g none 2>/dev/null | sed 's/[[:space:]]*$//' | grep -v '^$' >"$out/perf_$1.txt" || true
    perf report -q -i "$out/perf_$1.data" --stdio --no-children --sort dso \
      --percent-limit 0.3 -g none 2>/dev/null | sed 's/[[:space:]]*$//' | grep -v '^$' >"$out/perf_$1_dso.txt" || true
    perf report -q -i "$out/perf_$1.data" --stdio --children --sort sym -g none 2>/dev/null |
      grep -E '\] (PostgresMain|pq_getbyte|secure_read|secure_write|PortalStart|PortalRun|ExecInitFunctionScan|ExecMakeTableFunctionResult|ExecResult|sc_heartbeat|shard_coordinator::find_member|shard_coordinator::find_cluster|hash_search_with_hash_value|heap_form_tuple|shard_coordinator::channel_name|LWLockAcquire|CommitTransactionCommand)$' |
      sed 's/[[:space:]]*$//' >"$out/perf_$1_children.txt" || true
  else
    echo "bench: perf record failed; no profile of $1" >&2
  fi
  wait "$bg" || true
}
if command -v perf >/dev/null 2>&1; then
  log "profiling 16 clients, 100,000 members (perf)"
  profile heartbeat
  profile select1
fi

latency_phase 100k perf

# --- Figure 5: one member leaves a cluster of 10,000 ----------------------------

log "figure 5: registering $BIG members in one cluster"
# Handover immediate: its members never heartbeat again, so in exclusive
# mode a registration that came in two steps would leave grants withheld
# for an hour, and a leave then may change nobody's grant (no notice).
q "SELECT shard_coordinator.configure('big', heartbeat_interval => '1 hour',
     grace_period => '1 hour', reshard_interval => '0', handover => 'immediate')" >/dev/null
q "SELECT count(*) FROM generate_series(1, $BIG) g,
     LATERAL shard_coordinator.heartbeat('big', 'worker-' || g)" >/dev/null
wait_assigned 'big' "$BIG"
sleep 1
log "figure 5: $LEAVES leaves, $LISTENERS listening members"
perfpid=""
if command -v perf >/dev/null 2>&1; then
  perf record -q -F 1999 -g -p "$(worker_pid)" -o "$out/perf_worker_leave.data" >/dev/null 2>&1 &
  perfpid=$!
fi
"$lat" leave big "$BIG" "$LISTENERS" "$LEAVES" "$out/leave.txt"
if [ -n "$perfpid" ]; then
  kill -INT "$perfpid" 2>/dev/null || true
  wait "$perfpid" 2>/dev/null || true
  perf_children "$out/perf_worker_leave.data" "$out/perf_worker_leave.txt"
fi
kv leave_listeners "$LISTENERS"
kv big_members "$BIG"

# --- Figure 6: shared memory and the worker's memory ------------------------------

kv shmem_total "$(q 'SELECT sum(allocated_size) FROM pg_shmem_allocations')"
kv shmem_named_members "$(q "SELECT allocated_size FROM pg_shmem_allocations WHERE name = 'shard_coordinator members'")"
kv shmem_named_clusters "$(q "SELECT allocated_size FROM pg_shmem_allocations WHERE name = 'shard_coordinator clusters'")"
kv members_total "$(q 'SELECT sum(members) FROM shard_coordinator.clusters')"
worker_memory end
kv shmem_holds "$(q "SELECT allocated_size FROM pg_shmem_allocations WHERE name = 'shard_coordinator holds'")"

# --- Memory over time (issue 16, 4): continuous churn -----------------------------

log "memory over time: ${CHURN_SECONDS} s of churn in 5 clusters of 20 members"
"$lat" churn 5 20 "$CHURN_SECONDS" "$(worker_pid)" "$out/churn.txt"
kv churn_seconds "$CHURN_SECONDS"
log "done"
