-- Joining and leaving: members joining one at a time get shards 0, 1, 2, ...
-- in join order; the heartbeat row; leave() hands shards on at once and
-- sticky (the holder of the highest shard fills the hole); leave() of
-- unknown members. The safety invariant (view and tables) and the epoch are
-- checked after every step. Cluster: reg_join.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- Members joining one at a time get shards 0, 1, 2, ... in join order, and
-- the cluster's epoch grows with each reshard. Cluster reg_join is new; a
-- reshard_interval of 0 lets each join reshard at once.
SELECT shard_coordinator.configure('reg_join', reshard_interval => '0');
SELECT test_helpers.check('reg_join');
SELECT epoch, num_shards, members FROM shard_coordinator.clusters WHERE cluster = 'reg_join';

-- First heartbeat: registered as pending, not assigned yet.
SELECT shard, num_shards, epoch, state,
       channel = shard_coordinator.channel('reg_join', 'm1') AS channel_ok,
       heartbeat_interval,
       expires_at > now() AS expires_later
  FROM shard_coordinator.heartbeat('reg_join', 'm1');
SELECT test_helpers.wait_settled('reg_join', 1);
SELECT test_helpers.check('reg_join');
-- The heartbeat row of an active member.
SELECT shard, num_shards, epoch, state,
       channel = shard_coordinator.channel('reg_join', 'm1') AS channel_ok,
       heartbeat_interval,
       expires_at BETWEEN statement_timestamp() + interval '15 s'
                      AND clock_timestamp() + interval '15 s' AS expires_ok
  FROM shard_coordinator.heartbeat('reg_join', 'm1');

SELECT shard, num_shards, epoch, state FROM shard_coordinator.heartbeat('reg_join', 'm2');
SELECT test_helpers.wait_settled('reg_join', 2);
SELECT test_helpers.check('reg_join');
SELECT shard, num_shards, epoch, state FROM shard_coordinator.heartbeat('reg_join', 'm3');
SELECT test_helpers.wait_settled('reg_join', 3);
SELECT test_helpers.check('reg_join');

-- Everybody's heartbeat row, and the views.
SELECT m, h.shard, h.num_shards, h.epoch, h.state,
       h.channel = shard_coordinator.channel('reg_join', m) AS channel_ok,
       h.heartbeat_interval, h.expires_at > now() AS expires_later
  FROM unnest(ARRAY['m1', 'm2', 'm3']) AS m,
       shard_coordinator.heartbeat('reg_join', m) AS h
 ORDER BY m;
SELECT member, shard, num_shards, epoch, state,
       expires_at - last_heartbeat = interval '15 s' AS lease_ok,
       last_heartbeat >= joined_at AS seen_after_join
  FROM shard_coordinator.members WHERE cluster = 'reg_join' ORDER BY member;
SELECT cluster, heartbeat_interval, grace_period, reshard_interval, max_shards,
       epoch, num_shards, members, active, standby, pending,
       resharded_at IS NOT NULL AS resharded
  FROM shard_coordinator.clusters WHERE cluster = 'reg_join';
-- A stored member row keeps the epoch of its own last move; the cluster row
-- says when num_shards last changed; the greater of the two is the member's
-- epoch, as in the view.
SELECT member, state, shard, epoch FROM shard_coordinator.member_state
 WHERE cluster = 'reg_join' ORDER BY member;
SELECT epoch, num_shards, num_shards_epoch, resharded_at IS NOT NULL AS resharded
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_join';
SELECT m.member, greatest(m.epoch, c.num_shards_epoch) = v.epoch AS epoch_as_in_view
  FROM shard_coordinator.member_state m
  JOIN shard_coordinator.cluster_state c USING (cluster)
  JOIN shard_coordinator.members v USING (cluster, member)
 WHERE cluster = 'reg_join' ORDER BY member;

-- A heartbeat touches shared memory only: no transaction ID, no table write.
SELECT xmin::text AS m1_xmin FROM shard_coordinator.member_state
 WHERE cluster = 'reg_join' AND member = 'm1' \gset
BEGIN;
SELECT count(*) FROM generate_series(1, 100) AS i,
       shard_coordinator.heartbeat('reg_join', 'm' || (i % 3 + 1));
SELECT txid_current_if_assigned() IS NULL AS no_xid;
COMMIT;
SELECT xmin::text = :'m1_xmin' AS row_untouched FROM shard_coordinator.member_state
 WHERE cluster = 'reg_join' AND member = 'm1';
-- ... and it is not transactional: a rolled back heartbeat still registers.
BEGIN;
SELECT state FROM shard_coordinator.heartbeat('reg_join', 'm4');
ROLLBACK;
SELECT test_helpers.wait_settled('reg_join', 4);
SELECT test_helpers.check('reg_join');
SELECT shard, num_shards, epoch, state FROM shard_coordinator.heartbeat('reg_join', 'm5');
SELECT test_helpers.wait_settled('reg_join', 5);
SELECT test_helpers.check('reg_join');
SELECT member, shard, num_shards, epoch, state
  FROM shard_coordinator.members WHERE cluster = 'reg_join' ORDER BY member;

-- Leave. With the reshard gate closed (reshard_interval of a day) a member
-- that left keeps its shard, shown as 'leaving', until the reshard that
-- hands it on; nobody else moves meanwhile.
SELECT shard_coordinator.configure('reg_join', reshard_interval => '1 day');
SELECT test_helpers.check('reg_join');
SELECT shard_coordinator.leave('reg_join', 'm2');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_join' ORDER BY member;
SELECT test_helpers.invariant('reg_join');
SELECT active, members FROM shard_coordinator.clusters WHERE cluster = 'reg_join';
-- leave() of a member that is already leaving still knows it.
SELECT shard_coordinator.leave('reg_join', 'm2');
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_join', 'm3');

-- Opening the gate hands the shard on. Sticky: m1, m3 and m4 keep their
-- shards (all < 4); m5, holder of the highest shard, fills the hole.
CREATE TABLE test_helpers.before AS
  SELECT member, shard FROM shard_coordinator.members WHERE cluster = 'reg_join';
SELECT shard_coordinator.configure('reg_join', reshard_interval => '0');
SELECT test_helpers.wait_settled('reg_join', 4);
SELECT test_helpers.check('reg_join');
SELECT member, shard, num_shards, epoch, state
  FROM shard_coordinator.members WHERE cluster = 'reg_join' ORDER BY member;
SELECT b.member, b.shard AS old_shard, m.shard AS new_shard
  FROM test_helpers.before b
  LEFT JOIN shard_coordinator.members m ON m.cluster = 'reg_join' AND m.member = b.member
 WHERE m.shard IS DISTINCT FROM b.shard ORDER BY b.member;
SELECT member, state, shard FROM shard_coordinator.member_state
 WHERE cluster = 'reg_join' ORDER BY member;

-- With the gate open, others are reassigned at once, without waiting for
-- the leaver's expiry (15 s here). m4 holds the highest shard: nobody moves.
SELECT clock_timestamp() AS t0 \gset
SELECT shard_coordinator.leave('reg_join', 'm4');
SELECT test_helpers.wait_settled('reg_join', 3);
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 s' AS before_expiry;
SELECT test_helpers.check('reg_join');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_join' ORDER BY member;

-- leave() of an unknown member, of a member already removed, of an unknown
-- cluster: false, and nothing changes.
SELECT shard_coordinator.leave('reg_join', 'nobody');
SELECT shard_coordinator.leave('reg_join', 'm4');
SELECT shard_coordinator.leave('reg_join', 'm2');
SELECT shard_coordinator.leave('reg_join_no_such_cluster', 'm1');
SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = 'reg_join_no_such_cluster';
SELECT test_helpers.check('reg_join');

-- m1 (shard 0) leaves: m3, holder of the highest shard (2), takes shard 0;
-- m5 keeps shard 1.
SELECT shard_coordinator.leave('reg_join', 'm1');
SELECT test_helpers.wait_settled('reg_join', 2);
SELECT test_helpers.check('reg_join');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_join' ORDER BY member;
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_join', 'm3');
SELECT shard, num_shards, state FROM shard_coordinator.heartbeat('reg_join', 'm5');

-- The last members leave: the cluster stays, empty, with its epoch.
SELECT shard_coordinator.leave('reg_join', 'm3'), shard_coordinator.leave('reg_join', 'm5');
SELECT test_helpers.wait_settled('reg_join', 0);
SELECT test_helpers.check('reg_join');
-- (one or two reshards, depending on timing: epoch 9 or 10)
SELECT epoch >= 9 AS epoch_grew, num_shards, members, active, standby, pending
  FROM shard_coordinator.clusters WHERE cluster = 'reg_join';
SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = 'reg_join';
SELECT epoch >= 9 AS epoch_grew, num_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_join';

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
