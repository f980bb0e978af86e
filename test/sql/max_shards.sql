-- max_shards: members over the cap are standby, promoted oldest first;
-- clear_max_shards removes the cap; lowering the cap demotes (sticky).
-- Cluster: reg_max.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
CREATE SCHEMA test_helpers;

-- Polls until the query cond returns true; raises after timeout.
CREATE FUNCTION test_helpers.wait_for(cond text, timeout interval DEFAULT '30 s')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  give_up timestamptz := clock_timestamp() + timeout;
  ok boolean;
BEGIN
  LOOP
    EXECUTE cond INTO ok;
    IF ok THEN
      RETURN true;
    END IF;
    IF clock_timestamp() > give_up THEN
      RAISE EXCEPTION 'timed out after % waiting for: %', timeout, cond;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;

-- Waits until the live view shows cluster c settled: exactly n_active active
-- and n_standby standby members, nobody pending, leaving or expired, and
-- num_shards = n_active.
CREATE FUNCTION test_helpers.wait_settled(c text, n_active int, n_standby int DEFAULT 0)
RETURNS boolean LANGUAGE sql AS $$
  SELECT test_helpers.wait_for(format($q$
    SELECT count(*) FILTER (WHERE state = 'active') = %2$s
       AND count(*) FILTER (WHERE state = 'standby') = %3$s
       AND count(*) = %2$s + %3$s
       AND (SELECT num_shards = %2$s FROM shard_coordinator.clusters WHERE cluster = %1$L)
      FROM shard_coordinator.members WHERE cluster = %1$L $q$, c, n_active, n_standby))
$$;

-- The safety invariant of cluster c, on the live views and on the tables:
-- the assigned shards are exactly 0 .. num_shards-1, one member each.
-- Returns 'ok' or what is wrong.
CREATE FUNCTION test_helpers.invariant(c text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_n int; v_epoch bigint; v_shards int[]; v_disagree bigint; v_bad_state bigint;
  t_n int; t_epoch bigint; t_shards int[]; t_bad bigint;
BEGIN
  SELECT num_shards, epoch INTO v_n, v_epoch
    FROM shard_coordinator.clusters WHERE cluster = c;
  IF NOT FOUND THEN
    RETURN 'cluster missing from the clusters view';
  END IF;
  SELECT coalesce(array_agg(shard ORDER BY shard) FILTER (WHERE shard IS NOT NULL), '{}'),
         count(*) FILTER (WHERE num_shards IS DISTINCT FROM v_n),
         count(*) FILTER (WHERE (shard IS NULL AND state = 'active')
                             OR (shard IS NOT NULL AND state NOT IN ('active', 'leaving', 'expired'))
                             OR state NOT IN ('pending', 'active', 'standby', 'leaving', 'expired'))
    INTO v_shards, v_disagree, v_bad_state
    FROM shard_coordinator.members WHERE cluster = c;
  IF v_shards <> ARRAY(SELECT generate_series(0, v_n - 1)) THEN
    RETURN format('view: shards %s, num_shards %s', v_shards, v_n);
  END IF;
  IF v_disagree > 0 THEN
    RETURN 'view: members and cluster disagree on num_shards';
  END IF;
  IF v_bad_state > 0 THEN
    RETURN 'view: state and shard disagree';
  END IF;
  SELECT s.num_shards, s.epoch,
         (SELECT coalesce(array_agg(m.shard ORDER BY m.shard), '{}')
            FROM shard_coordinator.member_state m
           WHERE m.cluster = c AND m.state = 'active'),
         (SELECT count(*) FROM shard_coordinator.member_state m
           WHERE m.cluster = c AND (m.epoch > s.epoch OR (m.state = 'active') <> (m.shard IS NOT NULL)))
    INTO t_n, t_epoch, t_shards, t_bad
    FROM shard_coordinator.cluster_state s WHERE s.cluster = c;
  IF NOT FOUND THEN
    RETURN 'cluster missing from cluster_state';
  END IF;
  IF t_shards <> ARRAY(SELECT generate_series(0, t_n - 1)) THEN
    RETURN format('table: shards %s, num_shards %s', t_shards, t_n);
  END IF;
  IF t_bad > 0 THEN
    RETURN 'table: member epoch ahead of the cluster, or state and shard disagree';
  END IF;
  IF t_n <> v_n OR t_epoch <> v_epoch THEN
    RETURN format('view (num_shards %s, epoch %s) and table (num_shards %s, epoch %s) disagree',
                  v_n, v_epoch, t_n, t_epoch);
  END IF;
  RETURN 'ok';
END $$;

-- The invariant plus how the cluster's epoch moved since the last check:
-- 'first', 'up', 'same' or 'DOWN' (which would be a bug).
CREATE TABLE test_helpers.last_epoch (cluster text PRIMARY KEY, epoch bigint NOT NULL);
CREATE FUNCTION test_helpers.check(c text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  inv text := test_helpers.invariant(c);
  e bigint;
  prev bigint;
BEGIN
  SELECT epoch INTO e FROM shard_coordinator.cluster_state WHERE cluster = c;
  SELECT epoch INTO prev FROM test_helpers.last_epoch WHERE cluster = c;
  INSERT INTO test_helpers.last_epoch VALUES (c, e)
    ON CONFLICT (cluster) DO UPDATE SET epoch = EXCLUDED.epoch;
  RETURN inv || ', epoch ' || CASE WHEN prev IS NULL THEN 'first'
                                   WHEN e > prev THEN 'up'
                                   WHEN e = prev THEN 'same'
                                   ELSE 'DOWN' END;
END $$;
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
