-- max_shards: members over the cap are standby, promoted oldest first;
-- clear_max_shards removes the cap; lowering the cap demotes (sticky).
-- Cluster: reg_max.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- max_shards caps num_shards: members beyond the cap are standby (shard
-- NULL) and are promoted, oldest first, when a slot frees.
SELECT shard_coordinator.configure('reg_max', reshard_interval => '0', max_shards => 2);
SELECT test_helpers.check('reg_max');
SELECT max_shards FROM shard_coordinator.clusters WHERE cluster = 'reg_max';

SELECT state FROM shard_coordinator.heartbeat('reg_max', 'm1');
SELECT test_helpers.wait_settled('reg_max', 1);
SELECT test_helpers.check('reg_max');
SELECT state FROM shard_coordinator.heartbeat('reg_max', 'm2');
SELECT test_helpers.wait_settled('reg_max', 2);
SELECT test_helpers.check('reg_max');
SELECT state FROM shard_coordinator.heartbeat('reg_max', 'm3');
SELECT test_helpers.wait_settled('reg_max', 2, 1);
SELECT test_helpers.check('reg_max');
SELECT state FROM shard_coordinator.heartbeat('reg_max', 'm4');
SELECT test_helpers.wait_settled('reg_max', 2, 2);
SELECT test_helpers.check('reg_max');

-- A standby's heartbeat row has no shard. Members whose assignment did not
-- change keep the epoch at which it was set (m1 and m2 were not touched by
-- the joins of m3 and m4).
SELECT m, h.shard, h.num_shards, h.epoch, h.state
  FROM unnest(ARRAY['m1', 'm2', 'm3', 'm4']) AS m,
       shard_coordinator.heartbeat('reg_max', m) AS h
 ORDER BY m;
SELECT member, shard, num_shards, epoch, state
  FROM shard_coordinator.members WHERE cluster = 'reg_max' ORDER BY member;
SELECT max_shards, epoch, num_shards, members, active, standby, pending
  FROM shard_coordinator.clusters WHERE cluster = 'reg_max';
SELECT member, state, shard, epoch FROM shard_coordinator.member_state
 WHERE cluster = 'reg_max' ORDER BY member;
SELECT max_shards, epoch, num_shards FROM shard_coordinator.cluster_state
 WHERE cluster = 'reg_max';

-- m1 leaves: the oldest standby, m3, takes its shard; m4 stays standby.
SELECT shard_coordinator.leave('reg_max', 'm1');
SELECT test_helpers.wait_settled('reg_max', 2, 1);
SELECT test_helpers.check('reg_max');
SELECT member, shard, num_shards, epoch, state
  FROM shard_coordinator.members WHERE cluster = 'reg_max' ORDER BY member;

-- clear_max_shards => true removes the cap: m4 becomes active.
SELECT shard_coordinator.configure('reg_max', clear_max_shards => true);
SELECT max_shards FROM shard_coordinator.clusters WHERE cluster = 'reg_max';
SELECT max_shards FROM shard_coordinator.cluster_state WHERE cluster = 'reg_max';
SELECT test_helpers.wait_settled('reg_max', 3);
SELECT test_helpers.check('reg_max');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_max' ORDER BY member;

-- Lowering the cap demotes: m3 keeps shard 0 (sticky), m2 and m4 become
-- standby.
SELECT shard_coordinator.configure('reg_max', max_shards => 1);
SELECT test_helpers.wait_settled('reg_max', 1, 2);
SELECT test_helpers.check('reg_max');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_max' ORDER BY member;
SELECT m, h.shard, h.num_shards, h.state
  FROM unnest(ARRAY['m2', 'm3', 'm4']) AS m,
       shard_coordinator.heartbeat('reg_max', m) AS h
 ORDER BY m;
SELECT member, state, shard FROM shard_coordinator.member_state
 WHERE cluster = 'reg_max' ORDER BY member;

-- Raising it promotes the oldest standby (m2) first.
SELECT shard_coordinator.configure('reg_max', max_shards => 2);
SELECT test_helpers.wait_settled('reg_max', 2, 1);
SELECT test_helpers.check('reg_max');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_max' ORDER BY member;

-- The active member of shard 0 leaves: the standby (m4) takes it.
SELECT shard_coordinator.leave('reg_max', 'm3');
SELECT test_helpers.wait_settled('reg_max', 2);
SELECT test_helpers.check('reg_max');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_max' ORDER BY member;

-- A cap above the number of members changes nothing.
SELECT shard_coordinator.configure('reg_max', max_shards => 10);
SELECT test_helpers.wait_settled('reg_max', 2);
SELECT test_helpers.check('reg_max');

SELECT shard_coordinator.leave('reg_max', 'm2'), shard_coordinator.leave('reg_max', 'm4');
SELECT test_helpers.wait_settled('reg_max', 0);
SELECT test_helpers.check('reg_max');
SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = 'reg_max';

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
