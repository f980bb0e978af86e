-- channel(): deterministic, at most 63 bytes for the longest valid names, a
-- valid unquoted identifier usable in LISTEN, distinct for distinct names,
-- equal to the channel column of heartbeat(). Cluster: é x 31 || 'd'.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
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

-- channel(cluster): the cluster's channel, with the same properties; never
-- one of the members' channels.
SELECT shard_coordinator.channel('jobs') ~ '^scc_jobs_[0-9a-f]{16}$' AS readable,
       shard_coordinator.channel('jobs') = shard_coordinator.channel('jobs') AS deterministic;
CREATE TABLE test_helpers.cluster_channels AS
  SELECT DISTINCT cluster, shard_coordinator.channel(cluster) AS ch FROM test_helpers.names;
SELECT count(*) AS clusters, count(DISTINCT ch) AS distinct_channels,
       max(octet_length(ch)) AS max_bytes,
       bool_and(ch ~ '^scc_[a-z0-9_]*_[0-9a-f]{16}$' AND quote_ident(ch) = ch) AS shape_ok,
       count(*) FILTER (WHERE ch IN (SELECT ch FROM test_helpers.channels)) AS member_channels
  FROM test_helpers.cluster_channels;
SELECT cluster, ch FROM test_helpers.cluster_channels
 WHERE cluster IN ('a', 'ab', 'A', 'jobs', '-') ORDER BY cluster COLLATE "C";
SELECT shard_coordinator.channel(NULL::text);
SELECT shard_coordinator.channel('');
SELECT shard_coordinator.channel(repeat('c', 64));

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
