-- Capacity: a heartbeat that would register more than
-- shard_coordinator.max_members members fails with 53400 and changes
-- nothing; registration works again once members are gone.
-- Clusters: reg_full, reg_full_b.
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
-- A fingerprint of everything stored and of the live state (but not the
-- liveness timestamps, which heartbeats move).
CREATE FUNCTION test_helpers.fingerprint()
RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws(' / ',
    (SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', cluster, heartbeat_interval,
                              grace_period, reshard_interval, max_shards, epoch,
                              num_shards, resharded_at), ',' ORDER BY cluster)
       FROM shard_coordinator.cluster_state),
    (SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', cluster, member, state, shard,
                              epoch, join_seq, joined_at), ',' ORDER BY cluster, member)
       FROM shard_coordinator.member_state),
    (SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', cluster,
                              heartbeat_interval, grace_period, reshard_interval,
                              max_shards, epoch, num_shards, members, active,
                              standby, pending, resharded_at), ',' ORDER BY cluster)
       FROM shard_coordinator.clusters),
    (SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', cluster, member, shard,
                              num_shards, epoch, state, joined_at), ',' ORDER BY cluster, member)
       FROM shard_coordinator.members)))
$$;

-- Runs one statement, catches its error and reports SQLSTATE, message,
-- detail and hint, and whether the fingerprint stayed the same. (Hints are
-- checked in fixed_bugs.sql.)
CREATE FUNCTION test_helpers.try(stmt text,
    OUT code text, OUT message text, OUT detail text, OUT hint text, OUT unchanged boolean)
LANGUAGE plpgsql AS $$
DECLARE
  before text := test_helpers.fingerprint();
BEGIN
  BEGIN
    EXECUTE stmt;
    code := 'no error';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  END;
  unchanged := test_helpers.fingerprint() = before;
END $$;


-- Shared memory holds shard_coordinator.max_members members (over all
-- clusters): a heartbeat that would register one more fails with 53400
-- and a hint, and nothing else is disturbed. The gate is closed after the
-- first reshard (reshard_interval of a day) so that filling up costs one
-- reshard, not thousands.
-- (Members of other clusters, if any, count too: fill what is free.)
SELECT current_setting('shard_coordinator.max_members')::int AS max_members \gset
SELECT count(*) AS others FROM shard_coordinator.members \gset
SELECT shard_coordinator.configure('reg_full', reshard_interval => '1 day');
SELECT shard_coordinator.configure('reg_full_b');
SELECT state FROM shard_coordinator.heartbeat('reg_full', 'first');
SELECT test_helpers.wait_settled('reg_full', 1);
SELECT count(*) = :max_members - :others - 1 AS registered
  FROM generate_series(2, :max_members - :others) AS i,
       shard_coordinator.heartbeat('reg_full', 'm' || i) AS h
 WHERE h.state = 'pending';
SELECT count(*) = :max_members AS full FROM shard_coordinator.members;
SELECT members = :max_members - :others AS all_in_cluster,
       pending = :max_members - :others - 1 AS pending_ok, active
  FROM shard_coordinator.clusters WHERE cluster = 'reg_full';

-- One more member, in this cluster or another: refused. (A cluster that
-- does not exist yet: see fixed_bugs.sql.)
SELECT stmt, t.code, replace(t.message, :'max_members', 'N') AS message, t.detail,
       replace(t.hint, :'max_members', 'N') AS hint, t.unchanged
  FROM unnest(ARRAY['SELECT shard_coordinator.heartbeat(''reg_full'', ''one_too_many'')',
                    'SELECT shard_coordinator.heartbeat(''reg_full_b'', ''one_too_many'')'])
         WITH ORDINALITY AS s(stmt, o),
       test_helpers.try(stmt) AS t
 ORDER BY o;
SELECT count(*) = :max_members AS still_full FROM shard_coordinator.members;
SELECT count(*) FROM shard_coordinator.members WHERE member = 'one_too_many';

-- Known members still heartbeat; the backend and the worker go on.
SELECT state FROM shard_coordinator.heartbeat('reg_full', 'first');
SELECT count(*) FROM shard_coordinator.heartbeat('reg_full', 'm' || :max_members - :others);

-- Once members are gone, registration works again.
SELECT shard_coordinator.leave('reg_full', 'm' || :max_members - :others);
SELECT shard_coordinator.configure('reg_full', reshard_interval => '0');
SELECT test_helpers.wait_for(format(
  'SELECT count(*) = %s FROM shard_coordinator.members', :max_members - 1));
SELECT state FROM shard_coordinator.heartbeat('reg_full', 'one_more');
SELECT count(*) = :max_members AS full_again FROM shard_coordinator.members;
SELECT test_helpers.wait_settled('reg_full', :max_members - :others);
SELECT test_helpers.check('reg_full');

-- Everybody leaves.
SELECT count(*) = :max_members - :others AS all_left
  FROM shard_coordinator.members AS m, shard_coordinator.leave(m.cluster, m.member) AS l
 WHERE m.cluster = 'reg_full' AND l;
SELECT test_helpers.wait_settled('reg_full', 0);
SELECT test_helpers.check('reg_full');
SELECT count(*) = :others AS as_before FROM shard_coordinator.members;
SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = 'reg_full';

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
