-- fence(cluster, member, epoch): succeeds only while the member is active,
-- its lease is valid and its assignment is still the one it received at
-- epoch (member's assignment epoch <= epoch <= cluster epoch); otherwise
-- SQLSTATE SC001 (README, "Fencing"). The ordering of fences against
-- reshards is tested in test/specs/fence_*.spec.
--
-- Clusters of this file: fence_c, fence_slots, fence_exp. Helpers live in
-- test/sql/helpers/common.psql (test_helpers) and in the schema test_fence,
-- both dropped at the end. heartbeat_interval is an hour
-- (except in fence_exp) so that no member expires while the file runs.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
CREATE SCHEMA test_fence;

-- Calls fence(c, m, e) in a subtransaction; returns 'ok' or the SQLSTATE.
CREATE FUNCTION test_fence.try_fence(c text, m text, e bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM shard_coordinator.fence(c, m, e);
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;

-- Same, with the message, detail and hint of the error.
CREATE FUNCTION test_fence.fence_error(c text, m text, e bigint,
    OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM shard_coordinator.fence(c, m, e);
  code := 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;

-- Runs one statement; reports SQLSTATE ('00000' if it succeeded), message
-- and hint.
CREATE FUNCTION test_fence.try(stmt text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  code := '00000';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          hint = PG_EXCEPTION_HINT;
END $$;

-- Epochs of this file, by name, to compare fences against.
CREATE TABLE test_fence.epochs (name text PRIMARY KEY, epoch bigint NOT NULL);
CREATE FUNCTION test_fence.remember(name text, epoch bigint) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO test_fence.epochs VALUES (name, epoch)
    ON CONFLICT (name) DO UPDATE SET epoch = EXCLUDED.epoch RETURNING epoch
$$;
CREATE FUNCTION test_fence.e(name text) RETURNS bigint LANGUAGE sql AS $$
  SELECT epoch FROM test_fence.epochs WHERE name = $1
$$;
-- Details of some fence errors, checked at the end.
CREATE TABLE test_fence.details (what text PRIMARY KEY, detail text);
CREATE FUNCTION test_fence.cluster_epoch(c text) RETURNS bigint LANGUAGE sql AS $$
  SELECT epoch FROM shard_coordinator.clusters WHERE cluster = c
$$;
RESET client_min_messages;


-- 1. Cluster fence_c, capped at two shards: a and b active, c standby.
SELECT shard_coordinator.configure('fence_c', reshard_interval => '0',
         heartbeat_interval => '1 hour', max_shards => 2);

-- a joins: pending until the reshard; its heartbeat row's epoch is then
-- the cluster's epoch.
SELECT state FROM shard_coordinator.heartbeat('fence_c', 'a');
SELECT test_helpers.wait_settled('fence_c', 1);
SELECT test_fence.remember('a1', epoch) = test_fence.cluster_epoch('fence_c') AS current,
       shard, num_shards, state
  FROM shard_coordinator.heartbeat('fence_c', 'a');

-- The pattern of the README: BEGIN; fence; work; COMMIT. The fence holds a
-- share-mode advisory lock (objsubid 21315) until the transaction ends.
BEGIN;
SELECT shard_coordinator.fence('fence_c', 'a', test_fence.e('a1'));
SELECT count(*) AS fence_locks FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 21315 AND mode = 'ShareLock' AND granted
   AND pid = pg_backend_pid();
COMMIT;
SELECT count(*) AS fence_locks_after_commit FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 21315 AND pid = pg_backend_pid();
-- Outside a transaction block it is a statement of its own; twice in one
-- transaction is fine.
SELECT test_fence.try_fence('fence_c', 'a', test_fence.e('a1'));
BEGIN;
SELECT test_fence.try_fence('fence_c', 'a', test_fence.e('a1')) AS first,
       test_fence.try_fence('fence_c', 'a', test_fence.e('a1')) AS second;
ROLLBACK;

-- b joins. An exclusive handover (the default) takes two epochs: at the
-- first, a's assignment narrows (num_shards 1 -> 2: the keys of shard 1
-- are revoked from it), so a's epoch is the new one; once a acknowledged
-- it (wait_settled does that for it), b is granted shard 1 at the next
-- epoch. A fence with a's old epoch fails.
SELECT state FROM shard_coordinator.heartbeat('fence_c', 'b');
SELECT test_helpers.wait_settled('fence_c', 2);
SELECT test_fence.remember('a2', h.epoch) > test_fence.e('a1') AS a_epoch_up,
       h.epoch < test_fence.cluster_epoch('fence_c') AS before_b_grant, h.shard, h.num_shards
  FROM shard_coordinator.heartbeat('fence_c', 'a') AS h;
SELECT test_fence.remember('b2', epoch) = test_fence.e('a2') + 1 AS granted_next_epoch,
       epoch = test_fence.cluster_epoch('fence_c') AS current
  FROM shard_coordinator.heartbeat('fence_c', 'b');
SELECT test_fence.try_fence('fence_c', 'a', test_fence.e('a2')) AS a_current,
       test_fence.try_fence('fence_c', 'b', test_fence.e('b2')) AS b_current,
       test_fence.try_fence('fence_c', 'a', test_fence.e('a1')) AS a_stale;

-- c joins and is standby (max_shards 2): the cluster's epoch goes up, but
-- a's and b's assignments do not change: their heartbeat rows keep their
-- epoch, and they can fence with the old epoch as with the new one.
SELECT state FROM shard_coordinator.heartbeat('fence_c', 'c');
SELECT test_helpers.wait_settled('fence_c', 2, 1);
SELECT test_fence.remember('c3', test_fence.cluster_epoch('fence_c')) > test_fence.e('b2')
       AS cluster_epoch_up;
SELECT member, shard, state, epoch IS NOT DISTINCT FROM test_fence.e(member || '2') AS kept_epoch,
       epoch = test_fence.e('c3') AS new_epoch
  FROM shard_coordinator.members WHERE cluster = 'fence_c' ORDER BY member;
SELECT test_fence.try_fence('fence_c', 'a', test_fence.e('a2')) AS a_at_own_epoch,
       test_fence.try_fence('fence_c', 'a', test_fence.e('c3')) AS a_at_later_epoch,
       test_fence.try_fence('fence_c', 'b', test_fence.e('c3')) AS b_at_later_epoch,
       test_fence.try_fence('fence_c', 'a', test_fence.e('a1')) AS a_before_change;

-- Failures, each SC001:
SELECT what, test_fence.try_fence('fence_c', m, e) AS result
  FROM (VALUES
          ('a: epoch before its assignment changed', 'a', test_fence.e('a1')),
          ('a: epoch 0', 'a', 0::bigint),
          ('a: negative epoch', 'a', -1),
          ('a: epoch above the cluster''s', 'a', test_fence.e('c3') + 1),
          ('a: largest epoch', 'a', 9223372036854775807),
          ('c: standby, at its own epoch', 'c', test_fence.e('c3')),
          ('unknown member', 'nobody', test_fence.e('c3'))) AS t(what, m, e)
UNION ALL
SELECT 'unknown cluster', test_fence.try_fence('fence_nosuch', 'a', test_fence.e('a2'));

-- The message names the member, cluster and epoch; the detail says why;
-- the hint says what to do.
\set VERBOSITY default
SELECT shard_coordinator.fence('fence_c', 'a', test_fence.e('a1'));
SELECT shard_coordinator.fence('fence_c', 'nobody', test_fence.e('c3'));
SELECT code, message, hint FROM test_fence.fence_error('fence_c', 'c', test_fence.e('c3'));

-- A pending member cannot fence, not even at the cluster's epoch (the
-- epoch of its heartbeat row): close the gate so that p stays pending.
SELECT shard_coordinator.configure('fence_c', reshard_interval => '1 day');
SELECT state, epoch = test_fence.cluster_epoch('fence_c') AS row_epoch_is_cluster_epoch
  FROM shard_coordinator.heartbeat('fence_c', 'p');
SELECT test_fence.try_fence('fence_c', 'p', test_fence.cluster_epoch('fence_c')) AS pending;
INSERT INTO test_fence.details
  SELECT 'pending', detail FROM test_fence.fence_error('fence_c', 'p', test_fence.cluster_epoch('fence_c'));
INSERT INTO test_fence.details
  SELECT 'standby', detail FROM test_fence.fence_error('fence_c', 'c', test_fence.e('c3'));

-- A member that called leave() cannot fence any more, even before the
-- reshard that hands its shard on; the others still can.
SELECT shard_coordinator.leave('fence_c', 'b');
SELECT member, state FROM shard_coordinator.members
 WHERE cluster = 'fence_c' ORDER BY member;
SELECT test_fence.try_fence('fence_c', 'b', test_fence.e('b2')) AS leaving,
       test_fence.try_fence('fence_c', 'a', test_fence.e('a2')) AS a_still_current;
INSERT INTO test_fence.details
  SELECT 'leaving', detail FROM test_fence.fence_error('fence_c', 'b', test_fence.e('b2'));
SELECT shard_coordinator.configure('fence_c', reshard_interval => '0');
SELECT test_helpers.wait_settled('fence_c', 2, 1);
-- b left: c is promoted to b's shard, p becomes standby; a keeps shard 0
-- of 2, so its assignment, and its epoch, did not change and it can still
-- fence with that epoch.
SELECT member, shard, state, epoch = test_fence.cluster_epoch('fence_c') AS new_epoch
  FROM shard_coordinator.members WHERE cluster = 'fence_c' ORDER BY member;
SELECT test_fence.try_fence('fence_c', 'a', test_fence.e('a2')) AS a_old,
       test_fence.try_fence('fence_c', 'a', test_fence.cluster_epoch('fence_c')) AS a_new,
       test_fence.try_fence('fence_c', 'c', test_fence.cluster_epoch('fence_c')) AS c_promoted,
       test_fence.try_fence('fence_c', 'b', test_fence.cluster_epoch('fence_c')) AS b_gone;


-- 2. NULL arguments: 22004, whatever the other arguments, with a hint.
SELECT stmt, t.code, t.message, coalesce(t.hint, '') <> '' AS has_hint
  FROM unnest(ARRAY[
         'SELECT shard_coordinator.fence(NULL, ''a'', 1)',
         'SELECT shard_coordinator.fence(''fence_c'', NULL, 1)',
         'SELECT shard_coordinator.fence(''fence_c'', ''a'', NULL)',
         'SELECT shard_coordinator.fence(NULL, NULL, NULL)']) WITH ORDINALITY AS s(stmt, o),
       test_fence.try(stmt) AS t
 ORDER BY o;


-- 3. Slot mode: a member's assignment includes its slots. A new key that
-- goes to one member changes that member's epoch only.
SELECT shard_coordinator.configure('fence_slots', reshard_interval => '0',
         heartbeat_interval => '1 hour', slots => '{10,20}');
SELECT state FROM shard_coordinator.heartbeat('fence_slots', 's1');
SELECT test_helpers.wait_settled('fence_slots', 1);
SELECT state FROM shard_coordinator.heartbeat('fence_slots', 's2');
SELECT test_helpers.wait_settled('fence_slots', 2);
SELECT test_fence.remember('slots2', test_fence.cluster_epoch('fence_slots')) IS NOT NULL AS remembered;
SELECT shard_coordinator.configure('fence_slots', slots => '{10,20,30}');
SELECT test_helpers.wait_for($$
  SELECT count(*) = 3 FROM shard_coordinator.members AS m, unnest(m.slots) AS k
   WHERE m.cluster = 'fence_slots' $$);
SELECT test_fence.cluster_epoch('fence_slots') > test_fence.e('slots2') AS cluster_epoch_up;
SELECT cardinality(slots) AS nkeys, epoch > test_fence.e('slots2') AS epoch_up,
       test_fence.try_fence('fence_slots', member, test_fence.e('slots2')) AS fence_old_epoch,
       test_fence.try_fence('fence_slots', member, test_fence.cluster_epoch('fence_slots')) AS fence_new_epoch
  FROM shard_coordinator.members WHERE cluster = 'fence_slots' ORDER BY cardinality(slots);


-- 4. A member whose lease has run out cannot fence, even before the
-- reshard that removes it. Leases of 1 s here; y is kept alive (and holds
-- a shard), so that the closed gate (1 day) keeps x 'expired'.
SELECT shard_coordinator.configure('fence_exp', reshard_interval => '0',
         heartbeat_interval => '1 s', grace_period => '0');
SELECT count(*) AS registered
  FROM unnest(ARRAY['x', 'y']) AS m, shard_coordinator.heartbeat('fence_exp', m);
SELECT test_helpers.wait_alive('fence_exp', '{x,y}', $$
  SELECT test_helpers.settled('fence_exp', 2) $$);
SELECT shard_coordinator.configure('fence_exp', reshard_interval => '1 day');
SELECT test_fence.remember('x1', epoch) IS NOT NULL AS remembered,
       test_fence.remember('exp_cluster', test_fence.cluster_epoch('fence_exp')) IS NOT NULL
         AS remembered_cluster,
       test_fence.try_fence('fence_exp', 'x', epoch) AS while_valid
  FROM shard_coordinator.heartbeat('fence_exp', 'x');
SELECT test_helpers.wait_alive('fence_exp', '{y}', $$
  SELECT state = 'expired' FROM shard_coordinator.members
   WHERE cluster = 'fence_exp' AND member = 'x' $$);
SELECT test_fence.try_fence('fence_exp', 'x', test_fence.e('x1')) AS expired,
       test_fence.cluster_epoch('fence_exp') = test_fence.e('exp_cluster') AS not_resharded_yet;
INSERT INTO test_fence.details
  SELECT 'expired', detail FROM test_fence.fence_error('fence_exp', 'x', test_fence.e('x1'));
SELECT shard_coordinator.configure('fence_exp', reshard_interval => '0');
SELECT shard_coordinator.leave('fence_exp', 'y') IS NOT NULL AS asked_to_leave;
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members
                               WHERE cluster = 'fence_exp'$$);


-- 5. The DETAIL of a failed fence says why the assignment is not current
-- (standby, pending, leaving, expired), never "shard -1".
SELECT what,
       CASE what WHEN 'leaving' THEN detail ILIKE '%leav%'
                 WHEN 'expired' THEN detail ILIKE '%expire%' OR detail ILIKE '%lease%'
                 ELSE detail ILIKE '%' || what || '%' END
         AND detail NOT LIKE '%shard -1%' AS detail_explains
  FROM test_fence.details ORDER BY what;


-- Leave nothing behind.
SELECT shard_coordinator.leave(m.cluster, m.member)
  FROM shard_coordinator.members AS m
 WHERE m.cluster IN ('fence_c', 'fence_slots') ORDER BY m.cluster, m.member;
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members
                               WHERE cluster IN ('fence_c', 'fence_slots')$$);
SELECT shard_coordinator.configure('fence_slots', slots => '{}');
-- (The background worker takes the same lock tag in ExclusiveLock mode,
-- briefly, while it reshards: only share locks are fences.)
SELECT count(*) AS fence_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 21315 AND mode = 'ShareLock';

SET client_min_messages = warning;
DROP SCHEMA test_fence CASCADE;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
