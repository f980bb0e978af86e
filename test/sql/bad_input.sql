-- Bad input for every argument of heartbeat, leave, channel and configure:
-- SQLSTATE (never XX000), message, detail, and nothing stored changed;
-- names at the byte limits work. Clusters: reg_bad, reg_bad_new (never
-- created), reg_bad_odd, 'c' x 63, é x 31 || 'c'.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- Bad input: every invalid argument is an ERROR with a proper SQLSTATE
-- (never XX000), a message naming the argument; nothing stored changes and
-- the backend goes on.

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
