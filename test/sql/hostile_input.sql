-- Hostile input: every SQL function of shard_coordinator (heartbeat, leave,
-- channel, configure with slots, fence, jump_hash) called with NULLs, empty
-- strings, over-long and multi-byte names, control characters, extreme and
-- negative intervals and extreme integers. Table-driven: each case runs in
-- its own BEGIN ... EXCEPTION block and prints its SQLSTATE (or 'ok'); no
-- case may end in XX000 (internal error) or take the backend down. Then:
-- nothing stored changed. Finally, valid but odd names (quotes, spaces, SQL
-- fragments, format directives, multi-byte names exactly at the byte limits)
-- work end to end.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
CREATE SCHEMA hostile;

-- Everything stored and live about the clusters named hostile%, except the
-- liveness timestamps that heartbeats move.
CREATE FUNCTION hostile.snapshot()
RETURNS text LANGUAGE sql AS $$
  SELECT concat_ws(E'\n',
    (SELECT string_agg(format('table %s|%s|%s|%s|%s|%s|%s|%s|%s', cluster, heartbeat_interval,
                              grace_period, reshard_interval, max_shards, epoch,
                              num_shards, resharded_at, slots), E'\n' ORDER BY cluster)
       FROM shard_coordinator.cluster_state WHERE cluster LIKE 'hostile%'),
    (SELECT string_agg(format('table %s|%s|%s|%s|%s|%s|%s|%s', cluster, member, state, shard,
                              epoch, join_seq, joined_at, slots), E'\n' ORDER BY cluster, member)
       FROM shard_coordinator.member_state WHERE cluster LIKE 'hostile%'),
    (SELECT string_agg(format('view %s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', cluster,
                              heartbeat_interval, grace_period, reshard_interval, max_shards,
                              epoch, num_shards, members, active, standby, pending,
                              resharded_at, slots), E'\n' ORDER BY cluster)
       FROM shard_coordinator.clusters WHERE cluster LIKE 'hostile%'),
    (SELECT string_agg(format('view %s|%s|%s|%s|%s|%s|%s|%s', cluster, member, shard,
                              num_shards, epoch, state, joined_at, slots), E'\n'
                       ORDER BY cluster, member)
       FROM shard_coordinator.members WHERE cluster LIKE 'hostile%'))
$$;

-- Every cluster and member name anywhere (to see that nothing appears).
CREATE FUNCTION hostile.names()
RETURNS TABLE (kind text, cluster text, member text) LANGUAGE sql AS $$
  SELECT 'cluster', cluster, NULL FROM shard_coordinator.cluster_state
  UNION SELECT 'cluster', cluster, NULL FROM shard_coordinator.clusters
  UNION SELECT 'member', cluster, member FROM shard_coordinator.member_state
  UNION SELECT 'member', cluster, member FROM shard_coordinator.members
$$;

CREATE TABLE hostile.cases (id serial PRIMARY KEY, name text NOT NULL, stmt text NOT NULL);
CREATE TABLE hostile.results (id int PRIMARY KEY, name text, code text, has_message boolean,
                              has_hint boolean);

-- Runs every case, each in its own subtransaction.
CREATE PROCEDURE hostile.run_cases() LANGUAGE plpgsql AS $$
DECLARE
  c record;
  st text; msg text; hint text;
BEGIN
  FOR c IN SELECT * FROM hostile.cases ORDER BY id LOOP
    BEGIN
      EXECUTE c.stmt;
      INSERT INTO hostile.results VALUES (c.id, c.name, 'ok', NULL, NULL);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                              hint = PG_EXCEPTION_HINT;
      INSERT INTO hostile.results
      VALUES (c.id, c.name, st, coalesce(msg, '') <> '', coalesce(hint, '') <> '');
    END;
  END LOOP;
END $$;
RESET client_min_messages;

-- The cluster the invalid calls aim at: two active members, a cap, settings.
SELECT shard_coordinator.configure('hostile', heartbeat_interval => '10 s',
         grace_period => '1 min', reshard_interval => '0', max_shards => 4);
SELECT state FROM shard_coordinator.heartbeat('hostile', 'h1');
SELECT test_helpers.wait_for($$SELECT state = 'active' FROM shard_coordinator.heartbeat('hostile', 'h1')$$);
SELECT state FROM shard_coordinator.heartbeat('hostile', 'h2');
SELECT test_helpers.wait_for($$SELECT state = 'active' FROM shard_coordinator.heartbeat('hostile', 'h2')$$);
SELECT epoch AS h1_epoch FROM shard_coordinator.heartbeat('hostile', 'h1') \gset
SELECT member, shard, state FROM shard_coordinator.member_state WHERE cluster = 'hostile' ORDER BY member;

CREATE TEMP TABLE snapshot_before AS SELECT hostile.snapshot() AS s;
CREATE TEMP TABLE names_before AS SELECT * FROM hostile.names();

-- Byte lengths of the multi-byte names used below (UTF-8: é 2 bytes, 日 3,
-- 😀 4). Limits: cluster 63 bytes, member 127 bytes.
SELECT octet_length(repeat('é', 32)) AS e32, octet_length(repeat('😀', 16)) AS smiley16,
       octet_length(repeat('日', 43)) AS ri43, octet_length(repeat('😀', 32)) AS smiley32;

-- Bad names, for each name argument of heartbeat, leave, channel and fence.
INSERT INTO hostile.cases (name, stmt)
SELECT format('%s: %s', f, v.label),
       CASE f WHEN 'fence' THEN format('SELECT shard_coordinator.fence(%s, %s, 1)', v.c, v.m)
              ELSE format('SELECT shard_coordinator.%s(%s, %s)', f, v.c, v.m) END
  FROM unnest(ARRAY['heartbeat', 'leave', 'channel', 'fence']) WITH ORDINALITY AS fs(f, fo),
       LATERAL (VALUES
         (1, 'NULL cluster', 'NULL', '''h1'''),
         (2, 'NULL member', '''hostile''', 'NULL'),
         (3, 'both NULL', 'NULL', 'NULL'),
         (4, 'empty cluster', '''''', '''h1'''),
         (5, 'empty member', '''hostile''', ''''''),
         (6, 'cluster 64 bytes', 'repeat(''c'', 64)', '''h1'''),
         (7, 'cluster 64 bytes of e-acute', 'repeat(''é'', 32)', '''h1'''),
         (8, 'cluster 64 bytes of 4-byte chars', 'repeat(''😀'', 16)', '''h1'''),
         (9, 'member 128 bytes', '''hostile''', 'repeat(''m'', 128)'),
         (10, 'member 129 bytes of a CJK char', '''hostile''', 'repeat(''日'', 43)'),
         (11, 'member 128 bytes of 4-byte chars', '''hostile''', 'repeat(''😀'', 32)'),
         (12, 'names of 1 MB', 'repeat(''c'', 1048576)', 'repeat(''m'', 1048576)'),
         (13, 'tab in cluster', 'E''host\tile''', '''h1'''),
         (14, 'newline at end of cluster', 'E''hostile\n''', '''h1'''),
         (15, 'CR in member', '''hostile''', 'E''h1\r'''),
         (16, 'chr(1) in member', '''hostile''', 'E''h\x011'''),
         (17, 'ESC sequence in member', '''hostile''', 'E''\x1b[31mh1'''),
         (18, 'DEL in member', '''hostile''', '''h1'' || chr(127)'),
         (19, 'chr(31) in cluster', 'chr(31) || ''hostile''', '''h1'''),
         (20, 'SQL fragment with newline', '''hostile''', 'E''h1''''; DROP TABLE x; --\n''')
       ) AS v(o, label, c, m)
 ORDER BY fo, v.o;

INSERT INTO hostile.cases (name, stmt) VALUES
  -- configure: names
  ('configure: NULL cluster', $$SELECT shard_coordinator.configure(NULL)$$),
  ('configure: empty cluster', $$SELECT shard_coordinator.configure('')$$),
  ('configure: cluster 64 bytes of e-acute', $$SELECT shard_coordinator.configure(repeat('é', 32))$$),
  ('configure: cluster of 1 MB', $$SELECT shard_coordinator.configure(repeat('c', 1048576))$$),
  ('configure: control character', $$SELECT shard_coordinator.configure(E'hostile\x07')$$),
  -- configure: heartbeat_interval must be > 0 and at most 1 day
  ('heartbeat_interval 0', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '0')$$),
  ('heartbeat_interval -1 ms', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '-1 ms')$$),
  ('heartbeat_interval -1 us', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '-1 us')$$),
  ('heartbeat_interval 1 day 1 ms', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '1 day 1 ms')$$),
  ('heartbeat_interval 1 day 1 us', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '1 day 00:00:00.000001')$$),
  ('heartbeat_interval 24:00:00.001', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '24:00:00.001')$$),
  ('heartbeat_interval 1 mon', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '1 mon')$$),
  ('heartbeat_interval 100 years', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '100 years')$$),
  ('heartbeat_interval -100 years', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '-100 years')$$),
  ('heartbeat_interval 178000000 years', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '178000000 years')$$),
  ('heartbeat_interval -178000000 years', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '-178000000 years')$$),
  ('heartbeat_interval 2147483647 days', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '2147483647 days')$$),
  ('heartbeat_interval -2147483648 days', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '-2147483648 days')$$),
  ('heartbeat_interval 2147483647 hours', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '2147483647 hours')$$),
  ('heartbeat_interval 1 day -1 mon (negative)', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '1 day -1 mon')$$),
  ('heartbeat_interval infinity (not an interval in 15)', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => 'infinity')$$),
  ('heartbeat_interval not an interval', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '5 parsecs')$$),
  -- grace_period and reshard_interval: 0 .. 1 day
  ('grace_period -1 us', $$SELECT shard_coordinator.configure('hostile', grace_period => '-1 us')$$),
  ('grace_period -1 day', $$SELECT shard_coordinator.configure('hostile', grace_period => '-1 day')$$),
  ('grace_period 1 day 1 ms', $$SELECT shard_coordinator.configure('hostile', grace_period => '1 day 1 ms')$$),
  ('grace_period 100 years', $$SELECT shard_coordinator.configure('hostile', grace_period => '100 years')$$),
  ('grace_period -178000000 years', $$SELECT shard_coordinator.configure('hostile', grace_period => '-178000000 years')$$),
  ('reshard_interval -1 ms', $$SELECT shard_coordinator.configure('hostile', reshard_interval => '-1 ms')$$),
  ('reshard_interval 1 day 1 ms', $$SELECT shard_coordinator.configure('hostile', reshard_interval => '1 day 1 ms')$$),
  ('reshard_interval 100 years', $$SELECT shard_coordinator.configure('hostile', reshard_interval => '100 years')$$),
  -- max_shards >= 1, not together with clear_max_shards
  ('max_shards 0', $$SELECT shard_coordinator.configure('hostile', max_shards => 0)$$),
  ('max_shards -1', $$SELECT shard_coordinator.configure('hostile', max_shards => -1)$$),
  ('max_shards -2147483648', $$SELECT shard_coordinator.configure('hostile', max_shards => -2147483648)$$),
  ('max_shards 2147483648 (not an integer)', $$SELECT shard_coordinator.configure('hostile', max_shards => '2147483648'::int)$$),
  ('max_shards with clear_max_shards', $$SELECT shard_coordinator.configure('hostile', max_shards => 3, clear_max_shards => true)$$),
  -- slots
  ('slots with NULL', $$SELECT shard_coordinator.configure('hostile', slots => ARRAY[1, NULL])$$),
  ('slots only NULL', $$SELECT shard_coordinator.configure('hostile', slots => ARRAY[NULL]::int[])$$),
  ('slots duplicate', $$SELECT shard_coordinator.configure('hostile', slots => ARRAY[7, 1, 7])$$),
  ('slots duplicate extremes', $$SELECT shard_coordinator.configure('hostile', slots => ARRAY[-2147483648, 2147483647, -2147483648])$$),
  ('slots 2-D', $$SELECT shard_coordinator.configure('hostile', slots => '{{1,2},{3,4}}')$$),
  ('slots 1025 keys (max_slots 1024)', $$SELECT shard_coordinator.configure('hostile', slots => ARRAY(SELECT generate_series(1, 1025)))$$),
  ('slots 1000000 keys', $$SELECT shard_coordinator.configure('hostile', slots => ARRAY(SELECT generate_series(1, 1000000)))$$),
  -- one bad argument among good ones changes nothing
  ('good heartbeat_interval, bad grace_period', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '1 s', grace_period => '-1 s')$$),
  ('good intervals, bad max_shards', $$SELECT shard_coordinator.configure('hostile', '1 s', '1 s', '1 s', 0)$$),
  ('good settings, bad slots', $$SELECT shard_coordinator.configure('hostile', heartbeat_interval => '1 s', max_shards => 2, slots => ARRAY[1, 1])$$),
  -- bad settings for a cluster that does not exist do not create it
  ('new cluster, bad heartbeat_interval', $$SELECT shard_coordinator.configure('hostile_new', heartbeat_interval => '-1 s')$$),
  ('new cluster, bad max_shards', $$SELECT shard_coordinator.configure('hostile_new', max_shards => 0)$$),
  ('new cluster, bad slots', $$SELECT shard_coordinator.configure('hostile_new', slots => ARRAY[NULL]::int[])$$),
  -- fence: epochs
  ('fence: NULL epoch', $$SELECT shard_coordinator.fence('hostile', 'h1', NULL)$$),
  ('fence: epoch -1', $$SELECT shard_coordinator.fence('hostile', 'h1', -1)$$),
  ('fence: epoch 0', $$SELECT shard_coordinator.fence('hostile', 'h1', 0)$$),
  ('fence: epoch min bigint', $$SELECT shard_coordinator.fence('hostile', 'h1', -9223372036854775808)$$),
  ('fence: epoch max bigint', $$SELECT shard_coordinator.fence('hostile', 'h1', 9223372036854775807)$$),
  ('fence: unknown member', $$SELECT shard_coordinator.fence('hostile', 'nobody', 1)$$),
  ('fence: unknown cluster', $$SELECT shard_coordinator.fence('hostile_none', 'h1', 1)$$),
  -- jump_hash: buckets >= 1
  ('jump_hash bigint: buckets 0', $$SELECT shard_coordinator.jump_hash(1::bigint, 0)$$),
  ('jump_hash bigint: buckets -1', $$SELECT shard_coordinator.jump_hash(1::bigint, -1)$$),
  ('jump_hash bigint: buckets min int', $$SELECT shard_coordinator.jump_hash(-9223372036854775808, -2147483648)$$),
  ('jump_hash text: buckets 0', $$SELECT shard_coordinator.jump_hash('k'::text, 0)$$),
  ('jump_hash text: buckets min int', $$SELECT shard_coordinator.jump_hash(repeat('k', 1048576), -2147483648)$$),
  -- valid calls that change nothing stored
  ('leave: unknown member', $$SELECT shard_coordinator.leave('hostile', 'nobody')$$),
  ('leave: unknown cluster', $$SELECT shard_coordinator.leave('hostile_none', 'h1')$$),
  ('heartbeat: an existing member', $$SELECT shard_coordinator.heartbeat('hostile', 'h1')$$),
  ('configure: everything NULL', $$SELECT shard_coordinator.configure('hostile', NULL, NULL, NULL, NULL, NULL, NULL)$$),
  ('configure: the same settings again', $$SELECT shard_coordinator.configure('hostile', '10 s', '1 min', '0', 4)$$),
  ('configure: slots {} outside slot mode', $$SELECT shard_coordinator.configure('hostile', slots => '{}')$$),
  ('fence: current epoch', format('SELECT shard_coordinator.fence(%L, %L, %s)', 'hostile', 'h1', :h1_epoch)),
  ('channel: odd names', $$SELECT shard_coordinator.channel(E'\u202Ehostile ''"; --', repeat('日', 42) || 'm')$$),
  ('jump_hash bigint: NULL key (strict)', $$SELECT shard_coordinator.jump_hash(NULL::bigint, 3)$$),
  ('jump_hash bigint: NULL buckets (strict)', $$SELECT shard_coordinator.jump_hash(1::bigint, NULL)$$),
  ('jump_hash bigint: extremes', $$SELECT shard_coordinator.jump_hash(-9223372036854775808, 2147483647)$$),
  ('jump_hash bigint: max key, 1 bucket', $$SELECT shard_coordinator.jump_hash(9223372036854775807, 1)$$),
  ('jump_hash text: empty key', $$SELECT shard_coordinator.jump_hash(''::text, 1)$$),
  ('jump_hash text: 1 MB key, max buckets', $$SELECT shard_coordinator.jump_hash(repeat('k', 1048576), 2147483647)$$);

CALL hostile.run_cases();

-- Every case: its SQLSTATE, or ok.
SELECT id, name, code FROM hostile.results ORDER BY id;

-- No internal errors, no error without a message.
SELECT count(*) AS cases,
       count(*) FILTER (WHERE code = 'ok') AS ok,
       count(*) FILTER (WHERE code LIKE 'XX%') AS internal_errors,
       count(*) FILTER (WHERE code <> 'ok' AND NOT has_message) AS without_message
  FROM hostile.results;
-- Errors raised by shard_coordinator itself without a hint (DESIGN.md
-- promises "a clear ERROR with a SQLSTATE and a hint"): grouped by SQLSTATE.
-- The 22007/22P02/22003 ones are PostgreSQL's own input errors.
SELECT code, count(*) AS without_hint
  FROM hostile.results WHERE code <> 'ok' AND NOT has_hint
 GROUP BY code ORDER BY code;

-- Nothing stored or live changed, and no cluster or member appeared.
SELECT hostile.snapshot() = s AS nothing_changed FROM snapshot_before;
SELECT * FROM hostile.names() EXCEPT SELECT * FROM names_before;

-- jump_hash answers within range, also at the extremes.
SELECT shard_coordinator.jump_hash(-9223372036854775808, 2147483647) BETWEEN 0 AND 2147483646 AS in_range,
       shard_coordinator.jump_hash(9223372036854775807, 1) AS one_bucket,
       shard_coordinator.jump_hash(''::text, 7) BETWEEN 0 AND 6 AS empty_text_in_range;

-- The backend and the background worker are still alive.
SELECT 1 AS still_alive;
SELECT count(*) AS workers FROM pg_stat_activity WHERE backend_type = 'shard_coordinator';

-- Valid extremes of the settings are accepted (on a cluster without
-- members): 1 us and 1 day, 0 where allowed, '-1 mon 31 days' (= 1 day, a
-- month counting 30 days), the largest max_shards, the extreme slot keys.
SELECT shard_coordinator.configure('hostile_cfg', heartbeat_interval => '1 us',
         grace_period => '0', reshard_interval => '0', max_shards => 2147483647,
         slots => ARRAY[2147483647, -2147483648, 0]);
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, slots
  FROM shard_coordinator.cluster_state WHERE cluster = 'hostile_cfg';
SELECT shard_coordinator.configure('hostile_cfg', heartbeat_interval => '-1 mon 31 days',
         grace_period => '1 day', reshard_interval => '24:00:00', clear_max_shards => true,
         slots => '{}');
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, slots
  FROM shard_coordinator.cluster_state WHERE cluster = 'hostile_cfg';
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, slots
  FROM shard_coordinator.clusters WHERE cluster = 'hostile_cfg';

-- Valid but odd names work end to end: registration, assignment, the stored
-- rows (byte for byte), channels (valid identifiers, LISTEN works), fence,
-- leave. Names exactly at the limits: 63 bytes of cluster, 127 of member.
CREATE TABLE hostile.odd (id int PRIMARY KEY, label text, cluster text, member text);
INSERT INTO hostile.odd VALUES
  (1, 'SQL fragment', 'hostile_odd', '''; DROP TABLE x; --'),
  (2, 'Bobby Tables', 'hostile_odd', 'Robert''); DROP TABLE students;--'),
  (3, 'dollar quotes', 'hostile_odd', '$$; SELECT 1; $$'),
  (4, 'format directives', 'hostile_odd', '%s%s%s%n%x %1$s'),
  (5, 'quotes and backslashes', 'hostile_odd', E'"\\''\\"'),
  (6, 'JSON-looking', 'hostile_odd', '{"state":"active","shard":0}'),
  (7, 'one space', 'hostile_odd', ' '),
  (8, 'spaces around', 'hostile_odd', '  h  1  '),
  (9, 'member 127 bytes', 'hostile_odd', repeat('m', 127)),
  (10, 'member 127 bytes of a CJK char + m', 'hostile_odd', repeat('日', 42) || 'm'),
  (11, 'member 127 bytes: 31 4-byte chars + abc', 'hostile_odd', repeat('😀', 31) || 'abc'),
  (12, 'the word NULL', 'hostile_odd', 'NULL'),
  (13, 'right-to-left override', 'hostile_odd', E'\u202Eevil'),
  (14, 'C1 control (U+0085, not ASCII)', 'hostile_odd', E'h\u0085'),
  (15, 'HTML', 'hostile_odd', '</script><script>alert(1)</script>'),
  (16, 'cluster with space and quote', 'hostile odd ''"', 'm1'),
  (17, 'cluster SQL fragment', 'hostile''; DROP TABLE x; --', 'm1'),
  (18, 'cluster 63 bytes', 'hostile' || repeat('c', 56), 'm1'),
  (19, 'cluster 63 bytes of e-acute + c', 'hostile' || repeat('é', 28), 'm1'),
  (20, 'cluster 63 bytes of 4-byte chars', 'hostile' || repeat('😀', 14), 'm1');
SELECT id, label, octet_length(cluster) AS cluster_bytes, octet_length(member) AS member_bytes
  FROM hostile.odd ORDER BY id;
SELECT shard_coordinator.configure(cluster, reshard_interval => '0', heartbeat_interval => '10 s',
                                   grace_period => '1 min')
  FROM (SELECT DISTINCT cluster FROM hostile.odd) c;
SELECT o.id, h.state
  FROM hostile.odd o, LATERAL shard_coordinator.heartbeat(o.cluster, o.member) h ORDER BY o.id;
-- All active and granted (acknowledging the releases asked for meanwhile).
SELECT test_helpers.wait_for($$
  SELECT (SELECT sum(test_helpers.ack_releases(c.cluster))
            FROM (SELECT DISTINCT cluster FROM hostile.odd) AS c) >= 0
     AND bool_and(h.state = 'active' AND h.shard IS NOT NULL)
    FROM hostile.odd o, LATERAL shard_coordinator.heartbeat(o.cluster, o.member) h$$);
-- Stored and shown exactly as given; shards 0 .. n-1 per cluster.
SELECT o.id, s.shard, s.state, v.shard = s.shard AS view_agrees
  FROM hostile.odd o
  LEFT JOIN shard_coordinator.member_state s ON s.cluster = o.cluster AND s.member = o.member
  LEFT JOIN shard_coordinator.members v ON v.cluster = o.cluster AND v.member = o.member
 ORDER BY o.id;
SELECT min(o.id) AS first_id, count(*) AS members,
       count(DISTINCT shard) = count(*) AND min(shard) = 0 AND max(shard) = count(*) - 1 AS shards_ok
  FROM shard_coordinator.member_state s JOIN hostile.odd o USING (cluster, member)
 GROUP BY cluster ORDER BY 1;
-- Channels: distinct, at most 63 bytes, valid unquoted identifiers; LISTEN works.
SELECT count(DISTINCT shard_coordinator.channel(cluster, member)) AS channels,
       max(octet_length(shard_coordinator.channel(cluster, member))) <= 63 AS short,
       bool_and(shard_coordinator.channel(cluster, member) ~ '^[a-z_][a-z0-9_]*$') AS identifiers
  FROM hostile.odd;
DO $$
DECLARE o record;
BEGIN
  FOR o IN SELECT * FROM hostile.odd LOOP
    EXECUTE 'LISTEN ' || shard_coordinator.channel(o.cluster, o.member);
  END LOOP;
END $$;
UNLISTEN *;
-- fence with the epoch each member was given.
DO $$
DECLARE o record;
BEGIN
  FOR o IN SELECT * FROM hostile.odd LOOP
    PERFORM shard_coordinator.fence(o.cluster, o.member,
                                    (SELECT epoch FROM shard_coordinator.heartbeat(o.cluster, o.member)));
  END LOOP;
END $$;
-- Everyone leaves; nothing of them stays.
SELECT count(*) FILTER (WHERE shard_coordinator.leave(cluster, member)) AS left_
  FROM hostile.odd;
SELECT test_helpers.wait_for($$
  SELECT count(*) = 0 FROM shard_coordinator.members
   WHERE cluster IN (SELECT cluster FROM hostile.odd)$$);
SELECT count(*) AS stored_members FROM shard_coordinator.member_state
 WHERE cluster IN (SELECT cluster FROM hostile.odd);

-- The cluster hostile is still as it was; then its members leave too.
SELECT member, shard, state FROM shard_coordinator.member_state WHERE cluster = 'hostile' ORDER BY member;
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, num_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'hostile';
SELECT shard_coordinator.leave('hostile', m) FROM unnest(ARRAY['h1', 'h2']) m;
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members WHERE cluster = 'hostile'$$);

SET client_min_messages = warning;
DROP SCHEMA hostile CASCADE;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
