-- Expiry with millisecond intervals: survivors are reassigned promptly after
-- the deadline; an expired member keeps its shard ('expired') until the
-- reshard that hands it on; an expired member that heartbeats again is
-- registered anew. Clusters: reg_expiry, reg_expiry_1ms.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- Millisecond intervals: a member expires after heartbeat_interval +
-- grace_period (250 ms + 250 ms here) without a heartbeat.
SELECT shard_coordinator.configure('reg_expiry', heartbeat_interval => '250ms',
                                   grace_period => '250ms', reshard_interval => '0');
SELECT test_helpers.check('reg_expiry');
SELECT heartbeat_interval, grace_period, reshard_interval
  FROM shard_coordinator.clusters WHERE cluster = 'reg_expiry';

SELECT state FROM shard_coordinator.heartbeat('reg_expiry', 'a');
SELECT test_helpers.wait_alive('reg_expiry', '{a}', $$SELECT test_helpers.settled('reg_expiry', 1)$$);
SELECT state FROM shard_coordinator.heartbeat('reg_expiry', 'b');
SELECT test_helpers.wait_alive('reg_expiry', '{a,b}', $$SELECT test_helpers.settled('reg_expiry', 2)$$);
SELECT state FROM shard_coordinator.heartbeat('reg_expiry', 'c');
SELECT test_helpers.wait_alive('reg_expiry', '{a,b,c}', $$SELECT test_helpers.settled('reg_expiry', 3)$$);
SELECT test_helpers.check('reg_expiry');
SELECT member, shard, num_shards, state, expires_at - last_heartbeat AS lease
  FROM shard_coordinator.members WHERE cluster = 'reg_expiry' ORDER BY member;

-- b stops heartbeating; a and c go on. b is removed and c, holder of the
-- highest shard, takes b's shard. The survivors are reassigned within
-- milliseconds of b's deadline (well under a second), not at some later poll.
SELECT joined_at AS b_joined FROM shard_coordinator.members
 WHERE cluster = 'reg_expiry' AND member = 'b' \gset
SELECT expires_at AS b_expires FROM shard_coordinator.heartbeat('reg_expiry', 'b') \gset
SELECT test_helpers.wait_alive('reg_expiry', '{a,c}', $$SELECT test_helpers.settled('reg_expiry', 2)$$);
SELECT test_helpers.check('reg_expiry');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_expiry' ORDER BY member;
SELECT member, state, shard FROM shard_coordinator.member_state
 WHERE cluster = 'reg_expiry' ORDER BY member;
SELECT resharded_at >= :'b_expires'::timestamptz AS not_before_deadline,
       resharded_at < :'b_expires'::timestamptz + interval '1 s' AS promptly
  FROM shard_coordinator.clusters WHERE cluster = 'reg_expiry';
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_expiry', 'a');
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_expiry', 'c');

-- The expired member heartbeats again: it is registered anew (pending, a
-- new join, so it comes after a and c) and then gets the free shard.
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_expiry', 'b');
SELECT test_helpers.wait_alive('reg_expiry', '{a,b,c}', $$SELECT test_helpers.settled('reg_expiry', 3)$$);
SELECT test_helpers.check('reg_expiry');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_expiry' ORDER BY member;
SELECT joined_at > :'b_joined'::timestamptz AS joined_anew
  FROM shard_coordinator.members WHERE cluster = 'reg_expiry' AND member = 'b';

-- With the reshard gate closed, an expired member keeps its shard, shown as
-- 'expired', until the reshard that hands it on: the assigned shards stay
-- exactly 0 .. num_shards-1 meanwhile.
SELECT shard_coordinator.configure('reg_expiry', reshard_interval => '1 day');
SELECT test_helpers.wait_alive('reg_expiry', '{b,c}',
  $$SELECT state = 'expired' FROM shard_coordinator.members
     WHERE cluster = 'reg_expiry' AND member = 'a'$$);
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_expiry' ORDER BY member;
SELECT test_helpers.invariant('reg_expiry');
SELECT members, active, num_shards FROM shard_coordinator.clusters WHERE cluster = 'reg_expiry';
-- Opening the gate removes it; c (highest shard) takes shard 0.
SELECT shard_coordinator.configure('reg_expiry', reshard_interval => '0');
SELECT test_helpers.wait_alive('reg_expiry', '{b,c}', $$SELECT test_helpers.settled('reg_expiry', 2)$$);
SELECT test_helpers.check('reg_expiry');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_expiry' ORDER BY member;

-- Everybody stops: all expire, the cluster ends empty.
SELECT test_helpers.wait_settled('reg_expiry', 0);
SELECT test_helpers.check('reg_expiry');
SELECT num_shards, members FROM shard_coordinator.clusters WHERE cluster = 'reg_expiry';
SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = 'reg_expiry';

-- Intervals of a millisecond work: a member of such a cluster is gone
-- almost at once.
SELECT shard_coordinator.configure('reg_expiry_1ms', heartbeat_interval => '1ms',
                                   grace_period => '0', reshard_interval => '0');
SELECT heartbeat_interval, grace_period, reshard_interval
  FROM shard_coordinator.clusters WHERE cluster = 'reg_expiry_1ms';
SELECT heartbeat_interval FROM shard_coordinator.heartbeat('reg_expiry_1ms', 'x');
SELECT test_helpers.wait_settled('reg_expiry_1ms', 0);
SELECT test_helpers.check('reg_expiry_1ms');
SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = 'reg_expiry_1ms';

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
