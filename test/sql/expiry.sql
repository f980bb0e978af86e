-- Expiry with millisecond intervals: survivors are reassigned promptly after
-- the deadline; an expired member keeps its shard ('expired') until the
-- reshard that hands it on; an expired member that heartbeats again is
-- registered anew. Clusters: reg_expiry, reg_expiry_1ms.
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

-- More helpers: is cluster c settled (n_active active, n_standby standby,
-- nobody pending, leaving or expired, num_shards = n_active)?
CREATE FUNCTION test_helpers.settled(c text, n_active int, n_standby int DEFAULT 0)
RETURNS boolean LANGUAGE sql AS $$
  SELECT count(*) FILTER (WHERE state = 'active') = n_active
     AND count(*) FILTER (WHERE state = 'standby') = n_standby
     AND count(*) = n_active + n_standby
     AND (SELECT num_shards = n_active FROM shard_coordinator.clusters WHERE cluster = c)
    FROM shard_coordinator.members WHERE cluster = c
$$;
-- Like wait_for, but heartbeats the members `alive` of cluster c before each
-- poll, so that they stay alive while others expire.
CREATE FUNCTION test_helpers.wait_alive(c text, alive text[], cond text,
                                        timeout interval DEFAULT '30 s')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  give_up timestamptz := clock_timestamp() + timeout;
  ok boolean;
BEGIN
  LOOP
    PERFORM shard_coordinator.heartbeat(c, m) FROM unnest(alive) AS m;
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
