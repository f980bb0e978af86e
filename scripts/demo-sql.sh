#!/usr/bin/env bash
# The SQL-only demo: a throwaway PostgreSQL with shard_coordinator preloaded;
# four members heartbeat from psql loops; one dies, one leaves, one joins, and
# the assignment is shown after each step. Finishes by itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" != "--inside" ]; then
  exec "$here/with-pg.sh" "$here/demo-sql.sh" --inside
fi

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
show() {
  q -c "SELECT member, state, shard, num_shards, epoch FROM shard_coordinator.members WHERE cluster = 'demo' ORDER BY shard NULLS LAST, member"
}
wait_for() {  # SQL condition, polled by one session for up to 30 s
  q -At -c "DO \$\$ BEGIN
      FOR i IN 1..3000 LOOP
        IF ($1) THEN RETURN; END IF;
        PERFORM pg_sleep(0.01);
      END LOOP;
      RAISE EXCEPTION 'demo: timed out waiting for: %', \$q\$$1\$q\$;
    END \$\$"
}
settled() {  # no handover pending, every active member granted
  wait_for "(SELECT NOT handover_pending FROM shard_coordinator.clusters WHERE cluster = 'demo')
            AND NOT EXISTS (SELECT 1 FROM shard_coordinator.members
                             WHERE cluster = 'demo' AND state = 'active' AND shard IS NULL)"
}
stops=$(mktemp -d)
# One member: one session heartbeating every 0.25 s until told to stop. It
# does no work, so it may acknowledge whatever epoch it was given at once
# (applied_epoch): work revoked from it is handed on without waiting.
beat() {
  while [ ! -e "$stops/$1" ]; do
    echo "SELECT 1 FROM shard_coordinator.heartbeat('demo', '$1',
            (SELECT epoch FROM shard_coordinator.members WHERE cluster = 'demo' AND member = '$1'));"
    sleep 0.25
  done | q -At >/dev/null
}
stop_all() {
  touch "$stops"/worker-a "$stops"/worker-b "$stops"/worker-c "$stops"/worker-d "$stops"/worker-e
  wait
  rm -rf "$stops"
}
trap stop_all EXIT

echo "== A cluster with a 1 s heartbeat interval and a 1 s grace period"
q -c "SELECT shard_coordinator.configure('demo', heartbeat_interval => '1s', grace_period => '1s', reshard_interval => '0')"

echo "== Four workers start heartbeating, one after another"
for m in worker-a worker-b worker-c worker-d; do
  beat "$m" &
  wait_for "EXISTS (SELECT 1 FROM shard_coordinator.members WHERE cluster = 'demo' AND member = '$m' AND state = 'active')"
done
show

echo "== worker-b dies (its heartbeats stop); after 2 s without one it expires"
touch "$stops/worker-b"
start=$(date +%s%N)
wait_for "NOT EXISTS (SELECT 1 FROM shard_coordinator.members WHERE cluster = 'demo' AND member = 'worker-b')"
settled
echo "   reassigned $(( ($(date +%s%N) - start) / 1000000 )) ms after its last heartbeat was stopped"
show

echo "== worker-a leaves gracefully: the others are reassigned at once"
touch "$stops/worker-a"
start=$(date +%s%N)
q -At -c "SELECT shard_coordinator.leave('demo', 'worker-a')" >/dev/null
wait_for "NOT EXISTS (SELECT 1 FROM shard_coordinator.members WHERE cluster = 'demo' AND member = 'worker-a')"
settled
echo "   reassigned $(( ($(date +%s%N) - start) / 1000000 )) ms after leave()"
show

echo "== worker-e joins"
beat worker-e &
wait_for "EXISTS (SELECT 1 FROM shard_coordinator.members WHERE cluster = 'demo' AND member = 'worker-e' AND state = 'active')"
settled
show

echo "== The cluster"
q -c "SELECT cluster, epoch, num_shards, members, active, resharded_at FROM shard_coordinator.clusters"
