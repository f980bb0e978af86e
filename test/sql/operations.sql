-- Identity and operator controls (README, "Identity", "Operations"): a
-- member name is held by the incarnation that sent it until that process
-- leaves or its promise ends; leave() from another incarnation and evict()
-- are revocations (the work is handed on when the promise ends); evict()
-- bans the incarnation; freeze() stops all movement until unfreeze().
--
-- Clusters of this file: op_id, op_expire, op_legacy, op_revoke, op_evict,
-- op_freeze, op_cycle.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
CREATE SCHEMA test_op;
-- Runs one statement; 'ok' or SQLSTATE: message (a timestamp in the message
-- shown as <time>).
CREATE FUNCTION test_op.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' ||
         regexp_replace(SQLERRM, '\d{4}-\d\d-\d\d [0-9:.]+([-+]\d\d(:\d\d)?)?', '<time>');
END $$;
-- Waits until the worker has looked at every cluster once more (a
-- configure() returns once the worker stored it, after any step due).
CREATE FUNCTION test_op.worker_cycle() RETURNS void LANGUAGE sql AS $$
  SELECT shard_coordinator.configure('op_cycle', reshard_interval => '0')
$$;
RESET client_min_messages;

-- 1. A name belongs to the incarnation that registered it.
SELECT shard_coordinator.configure('op_id', reshard_interval => '0',
                                   heartbeat_interval => '1 h');
SELECT state FROM shard_coordinator.heartbeat('op_id', 'a', NULL, 111);
SELECT test_helpers.wait_settled('op_id', 1);
SELECT shard, state FROM shard_coordinator.heartbeat('op_id', 'a', NULL, 111);
-- Another process with the same name is refused while the promise is live.
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_id', 'a', NULL, 222)$$);
-- So is a call without the incarnation, heartbeat or leave, and an
-- acknowledgement sent that way does not count.
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_id', 'a')$$);
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_id', 'a', 1)$$);
SELECT test_op.try($$SELECT shard_coordinator.leave('op_id', 'a')$$);
SELECT incarnation, state FROM shard_coordinator.members WHERE cluster = 'op_id';
-- 0 is not an incarnation.
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_id', 'a', NULL, 0)$$);
SELECT test_op.try($$SELECT shard_coordinator.leave('op_id', 'a', 0)$$);
-- Its own leave() frees the name at once: a new incarnation registers anew
-- (it inherits nothing: pending first, a new join).
SELECT shard_coordinator.leave('op_id', 'a', 111);
SELECT state FROM shard_coordinator.heartbeat('op_id', 'a', NULL, 222);
SELECT incarnation FROM shard_coordinator.members WHERE cluster = 'op_id';
SELECT test_helpers.wait_settled('op_id', 1);

-- 2. Expiry frees the name too: once the promise has ended, a new
-- incarnation waits for the removal and registers anew.
SELECT shard_coordinator.configure('op_expire', reshard_interval => '0',
                                   heartbeat_interval => '100 ms',
                                   grace_period => '100 ms');
SELECT state FROM shard_coordinator.heartbeat('op_expire', 'a', NULL, 5);
SELECT test_helpers.wait_for($$SELECT NOT EXISTS (
                                 SELECT FROM shard_coordinator.members
                                  WHERE cluster = 'op_expire' AND member = 'a'
                                    AND expires_at >= clock_timestamp())$$);
SELECT state FROM shard_coordinator.heartbeat('op_expire', 'a', NULL, 6);
SELECT incarnation FROM shard_coordinator.members WHERE cluster = 'op_expire';

-- 3. Without an incarnation, as in version 1.0: anybody's, until one is
-- sent; from then on it is needed.
SELECT state FROM shard_coordinator.heartbeat('op_legacy', 'a');
SELECT state IN ('pending', 'active') FROM shard_coordinator.heartbeat('op_legacy', 'a');
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_legacy', 'a', NULL, 7)$$);
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_legacy', 'a')$$);
SELECT shard_coordinator.leave('op_legacy', 'a', 7);

-- 4. leave() from another incarnation is a revocation: the member goes at
-- once, its work only when its promise ends (3 s here).
SELECT shard_coordinator.configure('op_revoke', reshard_interval => '0',
                                   heartbeat_interval => '2 s',
                                   grace_period => '1 s');
SELECT state FROM shard_coordinator.heartbeat('op_revoke', 'a', NULL, 1);
SELECT test_helpers.wait_settled('op_revoke', 1);
SELECT state FROM shard_coordinator.heartbeat('op_revoke', 'b', NULL, 2);
SELECT test_helpers.wait_alive('op_revoke', '{a,b}',
         $$SELECT test_helpers.settled('op_revoke', 2)$$);
SELECT shard FROM shard_coordinator.heartbeat('op_revoke', 'a', NULL, 1);
CREATE TABLE test_op.promise AS
  SELECT expires_at FROM shard_coordinator.members
   WHERE cluster = 'op_revoke' AND member = 'a';
SELECT shard_coordinator.leave('op_revoke', 'a', 99);
SELECT test_helpers.wait_alive('op_revoke', '{b}',
         $$SELECT NOT EXISTS (SELECT FROM shard_coordinator.members
                               WHERE cluster = 'op_revoke' AND member = 'a')$$);
-- b is placed on the whole count but a's part is withheld from it ...
SELECT shard, target_shard, num_shards, withheld
  FROM shard_coordinator.members WHERE cluster = 'op_revoke';
-- ... until a's promise has ended.
SELECT test_helpers.wait_alive('op_revoke', '{b}',
         $$SELECT test_helpers.settled('op_revoke', 1)$$);
SELECT clock_timestamp() >= expires_at AS after_the_promise FROM test_op.promise;
-- a's own process comes back: a new member, not the old one.
SELECT state FROM shard_coordinator.heartbeat('op_revoke', 'a', NULL, 1);

-- 5. evict(): removed, its work handed on when its promise ends, and its
-- incarnation banned; the name is free for another process.
SELECT shard_coordinator.configure('op_evict', reshard_interval => '0',
                                   heartbeat_interval => '200 ms',
                                   grace_period => '200 ms');
SELECT state FROM shard_coordinator.heartbeat('op_evict', 'a', NULL, 31);
SELECT test_helpers.wait_alive('op_evict', '{a}',
         $$SELECT test_helpers.settled('op_evict', 1)$$);
SELECT shard_coordinator.evict('op_evict', 'a', 'stuck in a loop');
SELECT shard_coordinator.evict('op_evict', 'nobody');
SELECT test_helpers.wait_for($$SELECT NOT EXISTS (SELECT FROM shard_coordinator.members
                                                   WHERE cluster = 'op_evict')$$);
SELECT test_op.try($$SELECT shard_coordinator.heartbeat('op_evict', 'a', NULL, 31)$$);
SELECT state FROM shard_coordinator.heartbeat('op_evict', 'a', NULL, 32);
SELECT test_op.try($$SELECT shard_coordinator.evict('op_evict', 'a', repeat('x', 201))$$);
SELECT test_op.try($$SELECT shard_coordinator.evict(NULL, 'a')$$);

-- 6. freeze(): no work moves; joins wait as pending; unfreeze() lets them
-- in. Settings are still stored while frozen.
SELECT shard_coordinator.configure('op_freeze', reshard_interval => '0',
                                   heartbeat_interval => '1 h');
SELECT state FROM shard_coordinator.heartbeat('op_freeze', 'a');
SELECT test_helpers.wait_settled('op_freeze', 1);
SELECT shard_coordinator.freeze('op_freeze');
SELECT frozen FROM shard_coordinator.clusters WHERE cluster = 'op_freeze';
SELECT frozen FROM shard_coordinator.cluster_state WHERE cluster = 'op_freeze';
SELECT state FROM shard_coordinator.heartbeat('op_freeze', 'b');
SELECT test_op.worker_cycle();
SELECT test_op.worker_cycle();
SELECT member, state, shard FROM shard_coordinator.members
 WHERE cluster = 'op_freeze' ORDER BY member;
SELECT shard_coordinator.configure('op_freeze', max_shards => 5);
SELECT max_shards FROM shard_coordinator.cluster_state WHERE cluster = 'op_freeze';
SELECT shard_coordinator.unfreeze('op_freeze');
SELECT test_helpers.wait_settled('op_freeze', 2);
SELECT frozen FROM shard_coordinator.clusters WHERE cluster = 'op_freeze';
SELECT test_op.try($$SELECT shard_coordinator.freeze('op_nonesuch')$$);
SELECT test_op.try($$SELECT shard_coordinator.unfreeze('')$$);

SET client_min_messages = warning;
DROP SCHEMA test_op CASCADE;
DROP SCHEMA test_helpers CASCADE;
