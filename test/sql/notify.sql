-- Notifications, received by a second connection (dblink): exactly one per
-- member and reshard that changed its state or (granted) shard, plus one on the
-- cluster channel per reshard that changed num_shards, with the documented
-- JSON payloads; none for unchanged members nor from heartbeats. Cluster:
-- reg_notify.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- Notifications: on each reshard, every member whose state or shard changed
-- gets exactly one NOTIFY on its channel, at commit, with a JSON payload;
-- if num_shards changed, one NOTIFY on the cluster channel follows them and
-- stands for everybody else; heartbeats send none.
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
SELECT test_helpers.dblink_exec('listener', 'LISTEN ' || shard_coordinator.channel('reg_notify'));

-- m1 joins: one notification for m1, and num_shards 0 -> 1 on the cluster
-- channel. (Handovers are exclusive, the default: wait_settled acknowledges
-- what the members are asked to release, as a member would.)
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm1');
SELECT test_helpers.wait_settled('reg_notify', 1);
SELECT test_helpers.wait_notes(2);
-- m2 joins: m2 is told it is active with its shard withheld; m1 did not
-- move and learns num_shards 2 (keys to release) from the cluster channel.
-- Once m1 acknowledged, m2 is told its shard at the next epoch.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm2');
SELECT test_helpers.wait_settled('reg_notify', 2);
SELECT test_helpers.wait_notes(5);
-- Heartbeats notify nobody (see the full list at the end).
SELECT count(*) FROM generate_series(1, 50) AS i,
       shard_coordinator.heartbeat('reg_notify', 'm' || (i % 2 + 1));
-- A cap of 1: m2 becomes standby and is told; once it acknowledged,
-- num_shards 1 for everybody at the next epoch.
SELECT shard_coordinator.configure('reg_notify', max_shards => 1);
SELECT test_helpers.wait_settled('reg_notify', 1, 1);
SELECT test_helpers.wait_notes(7);
-- m3 joins as a standby: only m3 is told; m1 and m2 did not change, nor did
-- num_shards.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm3');
SELECT test_helpers.wait_settled('reg_notify', 1, 2);
SELECT test_helpers.wait_notes(8);
-- No cap: m2 and m3 become active, shards withheld; num_shards 3; their
-- shards follow at the next epoch.
SELECT shard_coordinator.configure('reg_notify', clear_max_shards => true);
SELECT test_helpers.wait_settled('reg_notify', 3);
SELECT test_helpers.wait_notes(13);
-- What the heartbeats say equals what a listener makes of the notifications:
-- the member's last own notice, with num_shards and epoch from the last
-- cluster notice when that is newer.
SELECT h.shard, h.num_shards, h.epoch, h.state,
       jsonb_build_object('cluster', 'reg_notify', 'member', m, 'shard', h.shard,
                          'num_shards', h.num_shards, 'epoch', h.epoch, 'state', h.state)
         = CASE WHEN (c.payload::jsonb->>'epoch')::int > (o.payload::jsonb->>'epoch')::int
                THEN o.payload::jsonb || (c.payload::jsonb - 'cluster')
                ELSE o.payload::jsonb END AS same_as_notifications
  FROM unnest(ARRAY['m1', 'm2', 'm3']) AS m
  CROSS JOIN LATERAL shard_coordinator.heartbeat('reg_notify', m) AS h
  CROSS JOIN LATERAL (SELECT payload FROM test_helpers.notes n
                       WHERE n.channel = shard_coordinator.channel('reg_notify', m)
                       ORDER BY id DESC LIMIT 1) AS o
  CROSS JOIN LATERAL (SELECT payload FROM test_helpers.notes n
                       WHERE n.channel = shard_coordinator.channel('reg_notify')
                       ORDER BY id DESC LIMIT 1) AS c
 ORDER BY m;
-- m2 leaves: it is told 'removed', m3 to release its shard 2 (shard null,
-- active); once m3 acknowledged, m3 its new shard 1 and num_shards 2.
SELECT shard_coordinator.leave('reg_notify', 'm2');
SELECT test_helpers.wait_settled('reg_notify', 2);
SELECT test_helpers.wait_notes(17);
-- m3 expires (m1 goes on heartbeating): once the lease m3 was promised
-- (15 s, from before the configure) has run out, so that m1 may take over
-- m3's keys, m3 is told 'removed' and everybody num_shards 1.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm1'),
       shard_coordinator.configure('reg_notify', heartbeat_interval => '300ms', grace_period => '300ms');
SELECT test_helpers.wait_for($$
  SELECT h.num_shards = 1 AND h.shard = 0
    FROM shard_coordinator.heartbeat('reg_notify', 'm1') AS h$$);
SELECT test_helpers.wait_notes(19);
-- m1 leaves: it is told 'removed'; num_shards 0.
SELECT shard_coordinator.leave('reg_notify', 'm1');
SELECT test_helpers.wait_settled('reg_notify', 0);
SELECT test_helpers.wait_notes(21);

-- Everything received: one notification per member and reshard that
-- changed its state or shard, on that member's channel, and one per change
-- of num_shards on the cluster channel (member NULL), after the members'
-- ones; all from the background worker.
SELECT (payload::json)->>'epoch' AS epoch, (payload::json)->>'member' AS member,
       channel = CASE WHEN (payload::json)->>'member' IS NULL
                      THEN shard_coordinator.channel('reg_notify')
                      ELSE shard_coordinator.channel('reg_notify', (payload::json)->>'member')
                 END AS channel_ok,
       payload
  FROM test_helpers.notes
 ORDER BY id;
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
-- The payloads have exactly the documented keys, in this order.
SELECT DISTINCT (SELECT array_agg(k) FROM json_object_keys(payload::json) AS k) AS payload_keys
  FROM test_helpers.notes ORDER BY 1;
-- Nothing more arrives for m1, m2 or m3 later: m4 joins and leaves, and
-- once m4's two notifications and the two cluster ones are in (delivery
-- follows commit order), there is nothing else.
SELECT state FROM shard_coordinator.heartbeat('reg_notify', 'm4');
SELECT test_helpers.wait_settled('reg_notify', 1);
SELECT shard_coordinator.leave('reg_notify', 'm4');
SELECT test_helpers.wait_settled('reg_notify', 0);
SELECT test_helpers.wait_notes(25);
SELECT payload FROM test_helpers.notes WHERE id > 21 ORDER BY id;
SELECT test_helpers.collect() AS notes;

-- Slot mode: the same rule. Keys {1,2,3,4}: a holds {1,2} and b {3,4};
-- when c joins (num_shards 2 -> 3), b gives up 4 to c. b and c get notices
-- of their own (c: active with no keys yet); a, whose state, shard and keys
-- did not change, gets none: the cluster notice of that epoch covers it.
-- Once b acknowledged, c is told its key at the next epoch.
SELECT shard_coordinator.configure('reg_notify_slots', reshard_interval => '0',
                                   slots => '{1,2,3,4}');
SELECT test_helpers.dblink_exec('listener', 'LISTEN ' || shard_coordinator.channel('reg_notify_slots', m))
  FROM unnest(ARRAY['a', 'b', 'c']) AS m;
SELECT test_helpers.dblink_exec('listener', 'LISTEN ' || shard_coordinator.channel('reg_notify_slots'));
SELECT state FROM shard_coordinator.heartbeat('reg_notify_slots', 'a');
SELECT test_helpers.wait_settled('reg_notify_slots', 1);
SELECT state FROM shard_coordinator.heartbeat('reg_notify_slots', 'b');
SELECT test_helpers.wait_settled('reg_notify_slots', 2);
SELECT test_helpers.wait_notes(31);
SELECT max(id) AS before_c FROM test_helpers.notes \gset
SELECT state FROM shard_coordinator.heartbeat('reg_notify_slots', 'c');
SELECT test_helpers.wait_settled('reg_notify_slots', 3);
SELECT test_helpers.wait_notes(35);
SELECT coalesce((payload::json)->>'member', '(cluster)') AS told, payload
  FROM test_helpers.notes WHERE id > :before_c ORDER BY id;
SELECT member, shard, num_shards, slots,
       epoch - (SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'reg_notify_slots')
         AS epochs_behind
  FROM shard_coordinator.members WHERE cluster = 'reg_notify_slots' ORDER BY member;
SELECT shard_coordinator.leave('reg_notify_slots', m) FROM unnest(ARRAY['a', 'b', 'c']) AS m;
SELECT test_helpers.wait_settled('reg_notify_slots', 0);

SELECT test_helpers.dblink_disconnect('listener');
SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
