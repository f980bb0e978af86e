-- Notifications, received by a second connection (dblink): exactly one per
-- member and reshard that changed it, with the documented JSON payload;
-- none for unchanged members nor from heartbeats. Cluster: reg_notify.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\i test/sql/helpers/common.psql
RESET client_min_messages;

-- Notifications: on each reshard, every member whose assignment changed gets
-- exactly one NOTIFY on its channel, at commit, with a JSON payload; members
-- whose assignment did not change get none, and heartbeats send none.
--
-- psql prints received notifications with the sender's PID, which varies, so
-- a second connection (dblink) LISTENs and the test reads what it received
-- with dblink_get_notify().
CREATE EXTENSION dblink SCHEMA test_helpers;
SELECT test_helpers.dblink_connect('listener',
         format('host=%s port=%s dbname=%s user=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database(), current_user));
CREATE TABLE test_helpers.notes (id serial, channel text, pid int, payload text);
-- Stores what the listener received so far; returns the count.
CREATE FUNCTION test_helpers.collect() RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO test_helpers.notes (channel, pid, payload)
    SELECT notify_name, be_pid, extra FROM test_helpers.dblink_get_notify('listener');
  SELECT count(*) FROM test_helpers.notes;
$$;
CREATE FUNCTION test_helpers.wait_notes(n int) RETURNS boolean LANGUAGE sql AS $$
  SELECT test_helpers.wait_for(format('SELECT test_helpers.collect() >= %s', n))
$$;

-- The listener LISTENs before the members' first heartbeat.
SELECT shard_coordinator.configure('reg_notify', reshard_interval => '0');
SELECT test_helpers.dblink_exec('listener', 'LISTEN ' || shard_coordinator.channel('reg_notify', m))
  FROM unnest(ARRAY['m1', 'm2', 'm3', 'm4']) AS m;

-- m1 joins: one notification for m1.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm1');
SELECT test_helpers.wait_settled('reg_notify', 1);
SELECT test_helpers.wait_notes(1);
-- m2 joins: both are told (num_shards changed for m1).
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm2');
SELECT test_helpers.wait_settled('reg_notify', 2);
SELECT test_helpers.wait_notes(3);
-- Heartbeats notify nobody (see the full list at the end).
SELECT count(*) FROM generate_series(1, 50) AS i,
       shard_coordinator.heartbeat('reg_notify', 'm' || (i % 2 + 1));
-- A cap of 1: m2 becomes standby; both are told.
SELECT shard_coordinator.configure('reg_notify', max_shards => 1);
SELECT test_helpers.wait_settled('reg_notify', 1, 1);
SELECT test_helpers.wait_notes(5);
-- m3 joins as a standby: only m3 is told; m1 and m2 did not change.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm3');
SELECT test_helpers.wait_settled('reg_notify', 1, 2);
SELECT test_helpers.wait_notes(6);
-- No cap: everybody changes.
SELECT shard_coordinator.configure('reg_notify', clear_max_shards => true);
SELECT test_helpers.wait_settled('reg_notify', 3);
SELECT test_helpers.wait_notes(9);
-- What the heartbeats say equals the last notification of each member.
SELECT h.shard, h.num_shards, h.epoch, h.state,
       jsonb_build_object('cluster', 'reg_notify', 'member', m, 'shard', h.shard,
                          'num_shards', h.num_shards, 'epoch', h.epoch, 'state', h.state)
         = (SELECT payload::jsonb FROM test_helpers.notes n
             WHERE n.channel = shard_coordinator.channel('reg_notify', m)
             ORDER BY id DESC LIMIT 1) AS same_as_last_notification
  FROM unnest(ARRAY['m1', 'm2', 'm3']) AS m, shard_coordinator.heartbeat('reg_notify', m) AS h
 ORDER BY m;
-- m2 leaves: it is told 'removed'; m1 and m3 are told their new assignment.
SELECT shard_coordinator.leave('reg_notify', 'm2');
SELECT test_helpers.wait_settled('reg_notify', 2);
SELECT test_helpers.wait_notes(12);
-- m3 expires (m1 goes on heartbeating): m3 is told 'removed', m1 its new
-- assignment.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm1'),
       shard_coordinator.configure('reg_notify', heartbeat_interval => '300ms', grace_period => '300ms');
SELECT test_helpers.wait_for($$
  SELECT h.num_shards = 1 AND h.epoch = 7
    FROM shard_coordinator.heartbeat('reg_notify', 'm1') AS h$$);
SELECT test_helpers.wait_notes(14);
-- m1 leaves.
SELECT shard_coordinator.leave('reg_notify', 'm1');
SELECT test_helpers.wait_settled('reg_notify', 0);
SELECT test_helpers.wait_notes(15);

-- Everything received: one notification per member and reshard that
-- changed it, on that member's channel, from the background worker.
SELECT (payload::json)->>'epoch' AS epoch, (payload::json)->>'member' AS member,
       channel = shard_coordinator.channel('reg_notify', (payload::json)->>'member') AS channel_ok,
       payload
  FROM test_helpers.notes
 ORDER BY ((payload::json)->>'epoch')::int, (payload::json)->>'member';
SELECT count(*) AS notes, count(DISTINCT (channel, (payload::json)->>'epoch')) AS distinct_notes
  FROM test_helpers.notes;
SELECT count(DISTINCT pid) AS senders,
       bool_and(pid = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'))
         AS from_worker
  FROM test_helpers.notes;
-- Delivered in epoch order.
SELECT bool_and(e >= coalesce(prev, 0)) AS in_order
  FROM (SELECT ((payload::json)->>'epoch')::int AS e,
               lag(((payload::json)->>'epoch')::int) OVER (ORDER BY id) AS prev
          FROM test_helpers.notes) AS x;
-- The payload has exactly the documented keys, in this order.
SELECT DISTINCT (SELECT array_agg(k) FROM json_object_keys(payload::json) AS k) AS payload_keys
  FROM test_helpers.notes;
-- Nothing more arrives for m1, m2 or m3 later: m4 joins and leaves, and
-- once m4's two notifications are in (delivery follows commit order), there
-- is nothing else.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm4');
SELECT test_helpers.wait_settled('reg_notify', 1);
SELECT shard_coordinator.leave('reg_notify', 'm4');
SELECT test_helpers.wait_settled('reg_notify', 0);
SELECT test_helpers.wait_notes(17);
SELECT payload FROM test_helpers.notes WHERE id > 15 ORDER BY id;
SELECT test_helpers.collect() AS notes;

SELECT test_helpers.dblink_disconnect('listener');
SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
