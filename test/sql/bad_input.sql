-- Bad input for every argument of heartbeat, leave, channel and configure:
-- SQLSTATE (never XX000), message, detail, and nothing stored changed;
-- names at the byte limits work. Clusters: reg_bad, reg_bad_new (never
-- created), reg_bad_odd, 'c' x 63, é x 31 || 'c'.
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

-- Bad input: every invalid argument is an ERROR with a proper SQLSTATE
-- (never XX000), a message naming the argument; nothing stored changes and
-- the backend goes on.

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

CREATE TABLE test_helpers.calls (id serial, stmt text NOT NULL);

-- A cluster with two members and settings, that nothing below may change.
SELECT shard_coordinator.configure('reg_bad', reshard_interval => '0', max_shards => 5);
SELECT state FROM shard_coordinator.heartbeat('reg_bad', 'm1');
SELECT test_helpers.wait_settled('reg_bad', 1);
SELECT state FROM shard_coordinator.heartbeat('reg_bad', 'm2');
SELECT test_helpers.wait_settled('reg_bad', 2);
SELECT test_helpers.check('reg_bad');
SELECT test_helpers.fingerprint() AS fingerprint_before \gset

-- NULL, empty, over-long names and control characters, for each name
-- argument of each function. Limits: cluster 63 bytes, member 127 bytes;
-- multi-byte characters count in bytes (é is 2 bytes in UTF-8).
SELECT octet_length(repeat('é', 32)) AS cluster_bytes, octet_length(repeat('é', 64)) AS member_bytes;
INSERT INTO test_helpers.calls (stmt)
SELECT format('SELECT shard_coordinator.%s(%s, %s)', f, c, m)
  FROM unnest(ARRAY['heartbeat', 'leave', 'channel']) WITH ORDINALITY AS fs(f, fo),
       LATERAL (VALUES
         (1, 'NULL', '''m1'''),
         (2, '''reg_bad''', 'NULL'),
         (3, 'NULL', 'NULL'),
         (4, '''''', '''m1'''),
         (5, '''reg_bad''', ''''''),
         (6, 'repeat(''c'', 64)', '''m1'''),
         (7, 'repeat(''é'', 32)', '''m1'''),
         (8, '''reg_bad''', 'repeat(''m'', 128)'),
         (9, '''reg_bad''', 'repeat(''é'', 64)'),
         (10, 'repeat(''c'', 100000)', 'repeat(''m'', 100000)'),
         (11, 'E''reg\tbad''', '''m1'''),
         (12, 'E''reg_bad\n''', '''m1'''),
         (13, '''reg_bad''', 'E''m\x01'''),
         (14, '''reg_bad''', 'E''\x1b[31mm1'''),
         (15, '''reg_bad''', '''m'' || chr(127)'),
         (16, 'chr(31) || ''reg_bad''', '''m1''')) AS v(o, c, m)
 ORDER BY fo, o;
INSERT INTO test_helpers.calls (stmt) VALUES
  ('SELECT shard_coordinator.configure(NULL)'),
  ('SELECT shard_coordinator.configure('''')'),
  ('SELECT shard_coordinator.configure(repeat(''c'', 64))'),
  ('SELECT shard_coordinator.configure(repeat(''é'', 32))'),
  ('SELECT shard_coordinator.configure(E''reg\rbad'')'),
  -- intervals: heartbeat_interval > 0, the others >= 0, all at most 1 day
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''0'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''-1 ms'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''1 day 00:00:00.000001'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''25 hours'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''1 mon'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''178000000 years'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', grace_period => ''-1 us'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', grace_period => ''-1 day'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', grace_period => ''2 days'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', reshard_interval => ''-1 s'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', reshard_interval => ''1 year'')'),
  -- a bad setting for a cluster that does not exist does not create it
  ('SELECT shard_coordinator.configure(''reg_bad_new'', heartbeat_interval => ''0'')'),
  ('SELECT shard_coordinator.configure(''reg_bad_new'', max_shards => 0)'),
  -- max_shards >= 1, and not together with clear_max_shards
  ('SELECT shard_coordinator.configure(''reg_bad'', max_shards => 0)'),
  ('SELECT shard_coordinator.configure(''reg_bad'', max_shards => -1)'),
  ('SELECT shard_coordinator.configure(''reg_bad'', max_shards => -2147483648)'),
  ('SELECT shard_coordinator.configure(''reg_bad'', max_shards => 3, clear_max_shards => true)'),
  -- one bad argument among good ones changes nothing
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''1 s'', grace_period => ''-1 s'')'),
  ('SELECT shard_coordinator.configure(''reg_bad'', heartbeat_interval => ''1 s'', max_shards => 0)'),
  ('SELECT shard_coordinator.configure(''reg_bad'', ''1 s'', ''1 s'', ''-1 s'', 2)');

\pset format unaligned
\pset fieldsep ' | '
SELECT c.id, c.stmt, t.code, t.message, t.detail, t.unchanged
  FROM test_helpers.calls c, LATERAL test_helpers.try(c.stmt) t
 ORDER BY c.id;
\pset format aligned

-- Every call failed with a specific SQLSTATE, and nothing changed.
SELECT count(*) AS calls,
       count(*) FILTER (WHERE t.code IN ('no error', 'XX000')) AS bad_codes,
       count(*) FILTER (WHERE NOT t.unchanged) AS changed
  FROM test_helpers.calls c, LATERAL test_helpers.try(c.stmt) t;
SELECT test_helpers.fingerprint() = :'fingerprint_before' AS nothing_changed;
SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = 'reg_bad_new';
SELECT count(*) FROM shard_coordinator.cluster_state WHERE cluster = 'reg_bad_new';
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, epoch, num_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_bad';

-- How psql shows one of them.
SELECT shard_coordinator.heartbeat('reg_bad', repeat('m', 128));
SELECT shard_coordinator.configure('reg_bad', max_shards => 0);

-- The backend still works, and so does the background worker.
SELECT 1 AS still_alive;
SELECT m, h.shard, h.num_shards, h.state
  FROM unnest(ARRAY['m1', 'm2']) AS m, shard_coordinator.heartbeat('reg_bad', m) AS h
 ORDER BY m;
SELECT count(*) AS workers FROM pg_stat_activity WHERE backend_type = 'shard_coordinator';
SELECT state FROM shard_coordinator.heartbeat('reg_bad', 'm3');
SELECT test_helpers.wait_settled('reg_bad', 3);
SELECT test_helpers.check('reg_bad');

-- Names exactly at the limits work (63 bytes of cluster, 127 of member,
-- counted in bytes), and any character but a control character is allowed.
SELECT octet_length(repeat('c', 63)), octet_length(repeat('é', 31) || 'c'),
       octet_length(repeat('m', 127)), octet_length(repeat('é', 63) || 'm');
SELECT shard_coordinator.configure(repeat('é', 31) || 'c', reshard_interval => '0');
SELECT m, h.state
  FROM unnest(ARRAY[repeat('m', 127), repeat('é', 63) || 'm', 'm1']) WITH ORDINALITY AS x(m, o),
       shard_coordinator.heartbeat(repeat('é', 31) || 'c', m) AS h
 ORDER BY o;
SELECT test_helpers.wait_settled(repeat('é', 31) || 'c', 3);
SELECT test_helpers.check(repeat('é', 31) || 'c');
SELECT octet_length(member), shard FROM shard_coordinator.members
 WHERE cluster = repeat('é', 31) || 'c' ORDER BY shard;
SELECT octet_length(member), shard FROM shard_coordinator.member_state
 WHERE cluster = repeat('é', 31) || 'c' ORDER BY shard;
SELECT shard_coordinator.leave(repeat('é', 31) || 'c', m)
  FROM unnest(ARRAY[repeat('m', 127), repeat('é', 63) || 'm', 'm1']) AS m;
SELECT test_helpers.wait_settled(repeat('é', 31) || 'c', 0);
SELECT test_helpers.check(repeat('é', 31) || 'c');

SELECT state FROM shard_coordinator.heartbeat(repeat('c', 63), 'x');
SELECT state FROM shard_coordinator.heartbeat('reg_bad_odd', ' ');
SELECT state FROM shard_coordinator.heartbeat('reg_bad_odd', 'a b ''"; DROP TABLE x; --');
SELECT state FROM shard_coordinator.heartbeat('reg_bad_odd', '日本語');
SELECT test_helpers.wait_settled(repeat('c', 63), 1);
SELECT test_helpers.wait_settled('reg_bad_odd', 3);
SELECT test_helpers.check(repeat('c', 63)), test_helpers.check('reg_bad_odd');
SELECT member, shard FROM shard_coordinator.members WHERE cluster = 'reg_bad_odd' ORDER BY shard;
SELECT shard_coordinator.leave(repeat('c', 63), 'x');
SELECT shard_coordinator.leave('reg_bad_odd', m)
  FROM unnest(ARRAY[' ', 'a b ''"; DROP TABLE x; --', '日本語']) AS m;
SELECT test_helpers.wait_settled(repeat('c', 63), 0), test_helpers.wait_settled('reg_bad_odd', 0);

SELECT shard_coordinator.leave('reg_bad', m) FROM unnest(ARRAY['m1', 'm2', 'm3']) AS m;
SELECT test_helpers.wait_settled('reg_bad', 0);
SELECT test_helpers.check('reg_bad');

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
