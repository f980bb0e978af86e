-- The reshard gate (reshard_interval) batches changes among members that
-- work; it never delays a cluster with nobody working. The npm
-- predecessor's "single node unregister test", with a long gate: u1 becomes
-- shard 0 of 1, calls leave(), and u2 heartbeats at once: u2 is assigned at
-- once, not one reshard_interval later. Cluster: reg_gate.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

SELECT shard_coordinator.configure('reg_gate', heartbeat_interval => '1s',
                                   grace_period => '3s', reshard_interval => '1 min');
SELECT state FROM shard_coordinator.heartbeat('reg_gate', 'u1');
SELECT test_helpers.wait_for($$SELECT state = 'active' FROM shard_coordinator.heartbeat('reg_gate', 'u1')$$);
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_gate', 'u1');

-- The last member leaves and another comes at once: well within the gate
-- of one minute, u2 is active (the timeout is 20 s).
SELECT shard_coordinator.leave('reg_gate', 'u1');
SELECT state FROM shard_coordinator.heartbeat('reg_gate', 'u2');
SELECT test_helpers.wait_for($$SELECT state = 'active' FROM shard_coordinator.heartbeat('reg_gate', 'u2')$$,
                             '20 s') AS u2_assigned_at_once;
SELECT member, shard, num_shards, state FROM shard_coordinator.members
 WHERE cluster = 'reg_gate' ORDER BY member;

-- With a member working, the gate batches: u3's join waits (it is pending
-- for at least a second, the first reshard since u2's having just closed
-- the gate).
SELECT state FROM shard_coordinator.heartbeat('reg_gate', 'u3');
SELECT pg_sleep(1);
SELECT member, state FROM shard_coordinator.members WHERE cluster = 'reg_gate' ORDER BY member;

SELECT shard_coordinator.leave('reg_gate', m) FROM unnest(ARRAY['u2', 'u3']) m;
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members WHERE cluster = 'reg_gate'$$);
DROP SCHEMA test_helpers CASCADE;
