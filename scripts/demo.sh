#!/usr/bin/env bash
# The demo (`make demo`): a throwaway PostgreSQL with shard_coordinator
# preloaded, and four `shard-coordinator run` agents whose children print the
# shard they were given. One agent is killed with SIGKILL (its child dies with
# it; the survivors are reassigned once it expires), a new one starts, one
# stops gracefully (the others are reassigned at once). Measured delays are
# printed. Finishes by itself in well under a minute and cleans up.
#
# Needs the extension installed (make install) and the agent built
# (make -C client all; or SC_AGENT=/path/to/shard-coordinator).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

if [ "${1:-}" != "--inside" ]; then
  agent=${SC_AGENT:-$top/client/build/shard-coordinator}
  if [ ! -x "$agent" ]; then
    echo "== Building the agent (make -C client all)"
    make -s -C "$top/client" all >/dev/null
  fi
  export SC_AGENT=$agent
  exec "$here/with-pg.sh" "$here/demo.sh" --inside
fi

cluster=demo
interval=500ms
grace=1s
work=$(mktemp -d)
declare -A agents  # member -> agent pid

now_ms() { date +%s%3N; }
# A process is alive until it exits: a zombie (exited, not yet reaped by
# whoever inherited it) counts as gone.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
status() { "$SC_AGENT" status --cluster "$cluster" | sed 's/^/   /'; }

# Polls a SQL condition from one session, every 10 ms, for up to 30 s.
wait_for() {
  q -c "DO \$\$ BEGIN
      FOR i IN 1..3000 LOOP
        IF ($1) THEN RETURN; END IF;
        PERFORM pg_sleep(0.01);
      END LOOP;
      RAISE EXCEPTION 'demo: timed out waiting for: %', \$q\$$1\$q\$;
    END \$\$" >/dev/null
}
# True once `n` members are active and granted, all with num_shards = n, and
# no handover is pending (every revoked piece of work has been released).
settled() {
  echo "(SELECT count(*) FROM shard_coordinator.members
          WHERE cluster = '$cluster' AND state = 'active' AND shard IS NOT NULL
            AND num_shards = $1) = $1
        AND (SELECT num_shards = $1 AND NOT handover_pending
               FROM shard_coordinator.clusters WHERE cluster = '$cluster')"
}

# Waits until every active member's newest child has said it started with
# the member's current grant (so their lines come before the next table).
children_started() {
  local n=$1 deadline=$(( $(now_ms) + 30000 )) grants
  grants=$(q -F ' ' -c "SELECT member, shard, num_shards FROM shard_coordinator.members
                          WHERE cluster = '$cluster' AND state = 'active' ORDER BY member")
  until [ "$(awk -v grants="$grants" '
      BEGIN { n = split(grants, g, "\n"); for (i = 1; i <= n; i++) { split(g[i], f, " "); want[f[1]] = f[2] " " f[3] } }
      / child [0-9]+ starts: / { m = $1; gsub(/[][]/, "", m); last[m] = $6 " " $8 }
      END { ok = 0; for (m in want) if (last[m] == want[m]) ok++; print ok }' \
      "$work/children" 2>/dev/null)" -ge "$n" ]; do
    if [ "$(now_ms)" -gt "$deadline" ]; then
      echo "demo: timed out waiting for $n children with their current grants" >&2
      exit 1
    fi
    sleep 0.01
  done
}

start_agent() {  # member
  local member=$1
  # The worker: says which shard it got, then works (sleeps) until stopped.
  SC_DEMO_DIR=$work "$SC_AGENT" run --cluster "$cluster" --member "$member" --kill-timeout 2s -- \
    sh -c 'line="   [$SHARD_MEMBER] child $$ starts: shard $SHARD_INDEX of $SHARD_COUNT (epoch $SHARD_EPOCH)"
           echo "$line"; echo "$line" >>"$SC_DEMO_DIR/children"; exec sleep 3600' \
    2>>"$work/$member.log" &
  agents[$member]=$!
}

cleanup() {
  for member in "${!agents[@]}"; do
    kill -TERM "${agents[$member]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== Cluster '$cluster': heartbeat every $interval, expiry after $interval + $grace grace"
q -c "SELECT shard_coordinator.configure('$cluster', heartbeat_interval => '$interval',
        grace_period => '$grace', reshard_interval => '0')" >/dev/null

echo "== Four agents start: shard-coordinator run --cluster $cluster --member worker-X -- sh -c '...'"
for member in worker-a worker-b worker-c worker-d; do
  start_agent "$member"
done
wait_for "$(settled 4)"
children_started 4
status

victim=worker-b
child=$(pgrep -P "${agents[$victim]}" || true)
echo "== kill -KILL $victim's agent (pid ${agents[$victim]}; its child is pid ${child:-?})"
start=$(now_ms)
kill -KILL "${agents[$victim]}"
wait "${agents[$victim]}" 2>/dev/null || true
unset "agents[$victim]"
if [ -n "$child" ]; then
  while alive "$child"; do sleep 0.01; done
  echo "   its child died with it after $(( $(now_ms) - start )) ms (PR_SET_PDEATHSIG)"
fi
wait_for "$(settled 3)"
echo "   the server expired $victim and the survivors were reassigned $(( $(now_ms) - start )) ms after the kill"
children_started 3
status

echo "== A new agent, worker-e, starts"
start=$(now_ms)
start_agent worker-e
wait_for "$(settled 4)"
echo "   worker-e joined and everyone was reassigned in $(( $(now_ms) - start )) ms"
children_started 4
status

leaver=worker-a
echo "== kill -TERM $leaver's agent: it stops its child, leaves the cluster, exits"
start=$(now_ms)
kill -TERM "${agents[$leaver]}"
rc=0
wait "${agents[$leaver]}" || rc=$?
unset "agents[$leaver]"
echo "   $leaver's agent exited with status $rc after $(( $(now_ms) - start )) ms"
wait_for "$(settled 3)"
echo "   the survivors were reassigned $(( $(now_ms) - start )) ms after SIGTERM (no waiting for expiry)"
children_started 3
status

echo "== Done: stopping the remaining agents"
