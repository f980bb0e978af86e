-- channel(): deterministic, at most 63 bytes for the longest valid names, a
-- valid unquoted identifier usable in LISTEN, distinct for distinct names,
-- equal to the channel column of heartbeat(). Cluster: é x 31 || 'd'.
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

-- channel(cluster, member): the LISTEN channel of a member. Deterministic,
-- at most 63 bytes whatever the names, a valid unquoted identifier, and the
-- same as the channel column of the heartbeat row. It needs no registration.
SELECT shard_coordinator.channel('jobs', 'worker-7') = shard_coordinator.channel('jobs', 'worker-7') AS deterministic;
SELECT shard_coordinator.channel('jobs', 'worker-7') ~ '^sc_jobs_worker7_[0-9a-f]{16}$' AS readable;
SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = 'jobs';

-- Names of every kind and length up to the limits (63 bytes of cluster, 127
-- bytes of member).
CREATE TABLE test_helpers.names (id serial, cluster text, member text);
INSERT INTO test_helpers.names (cluster, member) VALUES
  ('a', 'b'),
  ('ab', 'c'),
  ('a', 'bc'),
  ('A', 'B'),
  ('jobs', 'worker 7'),
  ('jobs', 'worker-7'),
  ('jobs', 'Worker7'),
  ('-', '-'),
  (' ', ' '),
  ('"', ''''),
  ('x;DROP TABLE y', '$$'),
  ('日本', '語'),
  ('😀', '😀'),
  (repeat('c', 63), repeat('m', 127)),
  (repeat('C', 63), repeat('M', 127)),
  (repeat('c', 62) || 'd', repeat('m', 127)),
  (repeat('c', 63), repeat('m', 126) || 'n'),
  (repeat('é', 31) || 'c', repeat('é', 63) || 'm'),
  (repeat('😀', 15) || 'abc', repeat('😀', 31) || 'abc'),
  (repeat('_', 63), repeat('_', 127)),
  (repeat('9', 63), repeat('9', 127));
SELECT max(octet_length(cluster)) AS max_cluster_bytes, max(octet_length(member)) AS max_member_bytes
  FROM test_helpers.names;
CREATE TABLE test_helpers.channels AS
  SELECT id, cluster, member, shard_coordinator.channel(cluster, member) AS ch
    FROM test_helpers.names;
-- At most 63 bytes, lower-case ASCII letters, digits and underscores, not
-- starting with a digit: no quoting needed.
SELECT id, octet_length(ch) AS bytes, ch ~ '^sc_[a-z0-9_]*_[0-9a-f]{16}$' AS shape_ok,
       quote_ident(ch) = ch AS needs_no_quotes
  FROM test_helpers.channels ORDER BY id;
-- All different, and the same on every call.
SELECT count(*) AS names, count(DISTINCT ch) AS distinct_channels FROM test_helpers.channels;
SELECT bool_and(shard_coordinator.channel(cluster, member) = ch) AS stable
  FROM test_helpers.channels;
-- Exactly what shard_coordinator.channel() returns for a few names (the
-- format is documented: readable prefixes and a hash; a client may compute
-- it, so it must not change between versions).
SELECT cluster, member, ch FROM test_helpers.channels WHERE id <= 8 ORDER BY id;

-- Usable in LISTEN as is, and the channel column of heartbeat() matches.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT ch FROM test_helpers.channels LOOP
    EXECUTE 'LISTEN ' || r.ch;
  END LOOP;
END $$;
SELECT count(*) AS listening FROM pg_listening_channels() AS l
 WHERE l IN (SELECT ch FROM test_helpers.channels);
UNLISTEN *;
SELECT channel = shard_coordinator.channel(repeat('é', 31) || 'd', repeat('é', 63) || 'm') AS same
  FROM shard_coordinator.heartbeat(repeat('é', 31) || 'd', repeat('é', 63) || 'm');
SELECT shard_coordinator.leave(repeat('é', 31) || 'd', repeat('é', 63) || 'm');
SELECT test_helpers.wait_settled(repeat('é', 31) || 'd', 0);

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
