-- Fixed slot sets: configure(cluster, slots => int[]) divides a set of keys
-- (microshard numbers, island numbers) among the active members of a
-- cluster (README, "Fixed slot sets"). Checked after every step: cover,
-- disjointness, balance, ascending lists, agreement of the views, the
-- heartbeat rows and the tables; and across steps: minimal moves.
--
-- Clusters of this file: slots_micro, slots_isl. Helpers live in
-- test/sql/helpers/common.psql (test_helpers) and in the schema test_slots,
-- both dropped at the end. heartbeat_interval is an hour so that no
-- member expires while the file runs.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
CREATE SCHEMA test_slots;

-- Waits until the live view shows cluster c settled on the key set keys:
-- n_active active and n_standby standby members, nobody pending, leaving
-- or expired, num_shards = n_active, and the active members' slots cover
-- keys (so that the reshard for the newest key set has been published).
CREATE FUNCTION test_slots.wait_settled(c text, keys int[], n_active int, n_standby int DEFAULT 0)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  sorted int[] := (SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM unnest(keys) AS k);
  deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
  LOOP
    IF n_active + n_standby > 0 THEN
      PERFORM test_helpers.ack_releases(c);
    END IF;
    IF test_helpers.settled(c, n_active, n_standby)
       AND coalesce((SELECT array_agg(k ORDER BY k)
                       FROM shard_coordinator.members AS m, unnest(m.slots) AS k
                      WHERE m.cluster = c), '{}') = sorted THEN
      RETURN true;
    END IF;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'timed out after 30 s waiting for cluster % to settle with % active and % standby members over its key set',
        c, n_active, n_standby;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;

-- The slot invariants of cluster c with key set keys. Returns 'ok' or the
-- list of what is wrong.
CREATE FUNCTION test_slots.check(c text, keys int[])
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  sorted int[] := (SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM unnest(keys) AS k);
  problems text[] := '{}';
  n_active int;
  n_members int;
  n_shards int;
  owned int[];
  r record;
BEGIN
  -- The cluster's key set, in the view and in the table, ascending.
  IF (SELECT slots FROM shard_coordinator.clusters WHERE cluster = c) IS DISTINCT FROM sorted THEN
    problems := problems || 'clusters view: wrong key set'::text;
  END IF;
  IF (SELECT slots FROM shard_coordinator.cluster_state WHERE cluster = c) IS DISTINCT FROM sorted THEN
    problems := problems || 'cluster_state: wrong key set'::text;
  END IF;
  SELECT count(*) FILTER (WHERE state = 'active'), count(*) INTO n_active, n_members
    FROM shard_coordinator.members WHERE cluster = c;
  SELECT num_shards INTO n_shards FROM shard_coordinator.clusters WHERE cluster = c;
  IF n_shards <> n_active THEN
    problems := problems || 'num_shards is not the number of active members'::text;
  END IF;
  -- At most as many active members as keys (the rest are standby).
  IF n_active > cardinality(sorted) THEN
    problems := problems || 'more active members than keys'::text;
  END IF;
  IF n_members > 0 AND n_active = 0 THEN
    problems := problems || 'members but nobody active'::text;
  END IF;
  -- Cover and disjointness: the active members' keys, together, are the
  -- key set, each key once.
  SELECT coalesce(array_agg(k ORDER BY k), '{}') INTO owned
    FROM shard_coordinator.members AS m, unnest(m.slots) AS k
   WHERE m.cluster = c AND m.state = 'active';
  IF (SELECT count(DISTINCT k) FROM unnest(owned) AS k) <> cardinality(owned) THEN
    problems := problems || 'a key has two owners'::text;
  END IF;
  IF ARRAY(SELECT DISTINCT k FROM unnest(owned) AS k ORDER BY k) <> sorted THEN
    problems := problems || 'the members'' keys are not the key set'::text;
  END IF;
  -- Balance: counts differ by at most one; nobody active goes empty.
  IF (SELECT max(coalesce(cardinality(slots), 0)) - min(coalesce(cardinality(slots), 0))
        FROM shard_coordinator.members WHERE cluster = c AND state = 'active') > 1 THEN
    problems := problems || 'unbalanced'::text;
  END IF;
  IF EXISTS (SELECT 1 FROM shard_coordinator.members
              WHERE cluster = c AND state = 'active' AND coalesce(cardinality(slots), 0) = 0) THEN
    problems := problems || 'an active member has no keys'::text;
  END IF;
  -- Each list strictly ascending; no keys unless active.
  FOR r IN SELECT * FROM shard_coordinator.members WHERE cluster = c LOOP
    IF r.slots IS DISTINCT FROM
       (SELECT array_agg(DISTINCT k ORDER BY k) FROM unnest(r.slots) AS k) THEN
      problems := problems || format('%s: slots not strictly ascending', r.member);
    END IF;
    IF r.state <> 'active' AND r.slots IS NOT NULL THEN
      problems := problems || format('%s: %s but has slots', r.member, r.state);
    END IF;
    -- The member's heartbeat row says the same as the view.
    IF (SELECT row(h.shard, h.num_shards, h.epoch, h.state, h.slots)
          FROM shard_coordinator.heartbeat(c, r.member) AS h)
       IS DISTINCT FROM row(r.shard, r.num_shards, r.epoch, r.state, r.slots) THEN
      problems := problems || format('%s: heartbeat row and view disagree', r.member);
    END IF;
    -- The table says the same as the view (a member's row is written when
    -- its own assignment changes; a change of num_shards alone moves its
    -- epoch through the cluster's num_shards_epoch).
    IF r.state IN ('active', 'standby') AND
       (SELECT row(t.shard, greatest(t.epoch, s.num_shards_epoch), t.state, t.slots)
          FROM shard_coordinator.member_state AS t
          JOIN shard_coordinator.cluster_state AS s USING (cluster)
         WHERE t.cluster = c AND t.member = r.member)
       IS DISTINCT FROM row(r.shard, r.epoch, r.state, r.slots) THEN
      problems := problems || format('%s: member_state and view disagree', r.member);
    END IF;
  END LOOP;
  RETURN CASE WHEN problems = '{}' THEN 'ok' ELSE array_to_string(problems, '; ') END;
END $$;

-- The assignment of the members at the previous call of moves(), to
-- compare with.
CREATE TABLE test_slots.snap (
  cluster text, member text, state text, shard int, num_shards int, epoch bigint, slots int[],
  PRIMARY KEY (cluster, member));

-- Compares cluster c with the snapshot, then takes a new one:
--  moved:   keys kept in the key set whose owner changed although that
--           owner is still active (departed owners' and new keys not counted);
--  minimal: moved is the least possible with balanced counts (the members
--           keeping the most keys get the larger quota);
--  sticky:  every member active before and after either kept all its
--           remaining keys (and maybe got more) or only gave some away;
--  epochs:  members whose assignment (state, shard, num_shards, slots)
--           changed carry a newer epoch (that of the change: with
--           exclusive handovers a member that gave keys away changed one
--           epoch before those keys were granted), at most the cluster's;
--           the others kept theirs.
CREATE FUNCTION test_slots.moves(c text,
    OUT moved int, OUT minimal boolean, OUT sticky boolean, OUT epochs boolean)
LANGUAGE plpgsql AS $$
DECLARE
  keys int[] := (SELECT slots FROM shard_coordinator.clusters WHERE cluster = c);
  cluster_epoch bigint := (SELECT epoch FROM shard_coordinator.clusters WHERE cluster = c);
  n_active int;
  least_moves int;
BEGIN
  CREATE TEMP TABLE cur ON COMMIT DROP AS
    SELECT member, state, shard, num_shards, epoch, slots
      FROM shard_coordinator.members WHERE cluster = c;
  SELECT count(*) INTO n_active FROM cur WHERE state = 'active';
  -- Keys that stayed in the key set and changed from one active owner to
  -- another.
  SELECT count(*) INTO moved
    FROM test_slots.snap AS o, unnest(o.slots) AS k, cur AS n
   WHERE o.cluster = c AND n.state = 'active' AND k = ANY (n.slots) AND n.member <> o.member
     AND EXISTS (SELECT 1 FROM cur AS s WHERE s.member = o.member AND s.state = 'active');
  -- The least possible: members (all now active) ranked by how many of
  -- their keys remain; the first (keys mod n_active) get ceil(keys/n), the
  -- others floor; each gives away what it holds beyond its quota.
  SELECT coalesce(sum(greatest(0, kept - quota)), 0) INTO least_moves
    FROM (SELECT kept,
                 cardinality(keys) / n_active
                   + CASE WHEN row_number() OVER (ORDER BY kept DESC) <= cardinality(keys) % n_active
                          THEN 1 ELSE 0 END AS quota
            FROM (SELECT n.member,
                         (SELECT count(*) FROM test_slots.snap AS o, unnest(o.slots) AS k
                           WHERE o.cluster = c AND o.member = n.member AND k = ANY (keys)) AS kept
                    FROM cur AS n WHERE n.state = 'active') AS a) AS q
   WHERE n_active > 0;
  minimal := moved = least_moves;
  SELECT coalesce(bool_and(kept <@ n.slots OR n.slots <@ kept), true) INTO sticky
    FROM (SELECT o.member, ARRAY(SELECT k FROM unnest(o.slots) AS k WHERE k = ANY (keys)) AS kept
            FROM test_slots.snap AS o
           WHERE o.cluster = c AND o.state = 'active') AS o
    JOIN cur AS n USING (member)
   WHERE n.state = 'active';
  SELECT coalesce(bool_and(CASE WHEN row(o.state, o.shard, o.num_shards, o.slots)
                                     IS NOT DISTINCT FROM row(n.state, n.shard, n.num_shards, n.slots)
                                THEN n.epoch = o.epoch
                                ELSE n.epoch > o.epoch AND n.epoch <= cluster_epoch
                           END), true) INTO epochs
    FROM test_slots.snap AS o JOIN cur AS n USING (member)
   WHERE o.cluster = c AND n.state IN ('active', 'standby');
  DELETE FROM test_slots.snap WHERE cluster = c;
  INSERT INTO test_slots.snap SELECT c, * FROM cur;
  DROP TABLE cur;
END $$;

-- Runs one statement; reports SQLSTATE ('00000' if it succeeded), message
-- and hint.
CREATE FUNCTION test_slots.try(stmt text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  code := '00000';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          hint = PG_EXCEPTION_HINT;
END $$;

-- Everything observable about cluster c, to show that a failed call
-- changed nothing.
CREATE FUNCTION test_slots.fingerprint(c text) RETURNS text LANGUAGE sql AS $$
  SELECT concat_ws(' / ',
    (SELECT format('%s|%s|%s|%s', epoch, num_shards, max_shards, slots)
       FROM shard_coordinator.clusters WHERE cluster = c),
    (SELECT format('%s|%s|%s|%s', epoch, num_shards, max_shards, slots)
       FROM shard_coordinator.cluster_state WHERE cluster = c),
    (SELECT string_agg(format('%s|%s|%s|%s|%s|%s', member, shard, num_shards, epoch, state, slots),
                       ',' ORDER BY member)
       FROM shard_coordinator.members WHERE cluster = c),
    (SELECT string_agg(format('%s|%s|%s|%s|%s', member, shard, epoch, state, slots),
                       ',' ORDER BY member)
       FROM shard_coordinator.member_state WHERE cluster = c))
$$;

-- One line per member: its assignment, with the number of its keys.
CREATE FUNCTION test_slots.show(c text)
RETURNS TABLE (member text, shard int, num_shards int, state text, nkeys int)
LANGUAGE sql AS $$
  SELECT member, shard, num_shards, state, cardinality(slots)
    FROM shard_coordinator.members WHERE cluster = c ORDER BY member
$$;
RESET client_min_messages;


-- 1. Microshards: 300 keys over 1, 2, 3 members joining one at a time.
SELECT shard_coordinator.configure('slots_micro', reshard_interval => '0',
         heartbeat_interval => '1 hour',
         slots => ARRAY(SELECT generate_series(1, 300)));
-- The key set is stored at once, in the view and the table; no member yet.
SELECT slots = ARRAY(SELECT generate_series(1, 300)) AS view_slots, num_shards, members
  FROM shard_coordinator.clusters WHERE cluster = 'slots_micro';
SELECT slots = ARRAY(SELECT generate_series(1, 300)) AS table_slots, num_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'slots_micro';

-- A first heartbeat registers m1 as pending, without slots.
SELECT shard, num_shards, state, slots FROM shard_coordinator.heartbeat('slots_micro', 'm1');
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, 300)), 1);
-- m1 alone has all 300 keys, ascending.
SELECT shard, num_shards, state, slots = ARRAY(SELECT generate_series(1, 300)) AS all_keys
  FROM shard_coordinator.heartbeat('slots_micro', 'm1');
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 300)));
SELECT * FROM test_slots.show('slots_micro');
SELECT moved FROM test_slots.moves('slots_micro');

-- m2 joins: 150 keys each; m1 gives away exactly its excess (150 keys)
-- and keeps the rest.
SELECT shard, state, slots FROM shard_coordinator.heartbeat('slots_micro', 'm2');
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, 300)), 2);
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 300)));
SELECT * FROM test_slots.show('slots_micro');
SELECT * FROM test_slots.moves('slots_micro');

-- m3 joins: 100 keys each; m1 and m2 give 50 each and keep the rest.
SELECT shard, state, slots FROM shard_coordinator.heartbeat('slots_micro', 'm3');
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, 300)), 3);
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 300)));
SELECT * FROM test_slots.show('slots_micro');
SELECT * FROM test_slots.moves('slots_micro');

-- The tables hold the same: each member's keys in member_state.slots.
SELECT member, state, shard, cardinality(slots) AS nkeys
  FROM shard_coordinator.member_state WHERE cluster = 'slots_micro' ORDER BY member;
SELECT count(DISTINCT k) = 300 AND count(*) = 300 AS table_cover
  FROM shard_coordinator.member_state AS m, unnest(m.slots) AS k
 WHERE m.cluster = 'slots_micro';

-- m2 leaves: its 100 keys go to m1 and m3 (50 each), who keep all theirs.
SELECT shard_coordinator.leave('slots_micro', 'm2');
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, 300)), 2);
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 300)));
SELECT * FROM test_slots.show('slots_micro');
SELECT * FROM test_slots.moves('slots_micro');


-- 2. Changing the key set moves as few keys as possible.
-- Fewer keys (1 .. 240): quotas of 120; whoever kept more than 120 gives
-- the excess to the other, nobody else moves.
SELECT shard_coordinator.configure('slots_micro', slots => ARRAY(SELECT generate_series(1, 240)));
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, 240)), 2);
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 240)));
SELECT * FROM test_slots.show('slots_micro');
SELECT * FROM test_slots.moves('slots_micro');

-- More keys (1 .. 240 and 1001 .. 1030, given in descending order): the new
-- keys are shared out, no old key moves.
SELECT shard_coordinator.configure('slots_micro',
         slots => ARRAY(SELECT k FROM (SELECT generate_series(1, 240) UNION ALL
                                       SELECT generate_series(1001, 1030)) AS t(k)
                         ORDER BY k DESC));
SELECT test_slots.wait_settled('slots_micro',
         ARRAY(SELECT generate_series(1, 240)) || ARRAY(SELECT generate_series(1001, 1030)), 2);
SELECT test_slots.check('slots_micro',
         ARRAY(SELECT generate_series(1, 240)) || ARRAY(SELECT generate_series(1001, 1030)));
SELECT * FROM test_slots.show('slots_micro');
SELECT * FROM test_slots.moves('slots_micro');

-- Negative and extreme keys are keys like any other.
SELECT shard_coordinator.configure('slots_micro',
         slots => '{2147483647, -2147483648, 0, -1, 7}');
SELECT test_slots.wait_settled('slots_micro', '{-2147483648, -1, 0, 7, 2147483647}', 2);
SELECT test_slots.check('slots_micro', '{-2147483648, -1, 0, 7, 2147483647}');
SELECT * FROM test_slots.show('slots_micro');
SELECT slots FROM shard_coordinator.cluster_state WHERE cluster = 'slots_micro';
SELECT * FROM test_slots.moves('slots_micro');

-- The largest key set allowed: shard_coordinator.max_slots keys.
SELECT current_setting('shard_coordinator.max_slots')::int AS max_slots \gset
SELECT :max_slots AS max_slots;
SELECT shard_coordinator.configure('slots_micro',
         slots => ARRAY(SELECT generate_series(1, :max_slots)));
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, :max_slots)), 2);
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, :max_slots)));
SELECT * FROM test_slots.show('slots_micro');
SELECT shard_coordinator.configure('slots_micro', slots => ARRAY(SELECT generate_series(1, 300)));
SELECT test_slots.wait_settled('slots_micro', ARRAY(SELECT generate_series(1, 300)), 2);
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 300)));
SELECT test_slots.moves('slots_micro') IS NOT NULL AS snapshot_taken;


-- 3. Bad slot sets are errors with a SQLSTATE and a hint, and change
-- nothing.
SELECT test_slots.fingerprint('slots_micro') AS fingerprint_before \gset
SELECT stmt, t.code, t.message, coalesce(t.hint, '') <> '' AS has_hint,
       test_slots.fingerprint('slots_micro') = :'fingerprint_before' AS unchanged
  FROM unnest(ARRAY[
         'SELECT shard_coordinator.configure(''slots_micro'', slots => ''{1,NULL,3}'')',
         'SELECT shard_coordinator.configure(''slots_micro'', slots => ARRAY[NULL]::int[])',
         'SELECT shard_coordinator.configure(''slots_micro'', slots => ''{1,2,3,2}'')',
         'SELECT shard_coordinator.configure(''slots_micro'', slots => ''{{1,2},{3,4}}'')',
         'SELECT shard_coordinator.configure(''slots_micro'', slots => ARRAY(SELECT generate_series(1, '
           || (:max_slots + 1) || ')))',
         -- A bad slot set fails the whole call: the valid max_shards is not applied either.
         'SELECT shard_coordinator.configure(''slots_micro'', max_shards => 1, slots => ''{5,5}'')'])
         WITH ORDINALITY AS s(stmt, o),
       test_slots.try(stmt) AS t
 ORDER BY o;
-- Still unchanged a moment later (no reshard was queued): wait for one
-- worker cycle by configuring another cluster, which returns once the worker
-- has stored it.
SELECT shard_coordinator.configure('slots_isl', reshard_interval => '0', heartbeat_interval => '1 hour');
SELECT test_slots.fingerprint('slots_micro') = :'fingerprint_before' AS unchanged;
SELECT test_slots.check('slots_micro', ARRAY(SELECT generate_series(1, 300)));


-- 4. Clearing the slot set ('{}') returns to plain index-and-count mode:
-- no slots anywhere, the members stay active with shard and num_shards.
-- (The members release all their keys first; the wait acknowledges that
-- for them.)
SELECT shard_coordinator.configure('slots_micro', slots => '{}');
SELECT test_helpers.wait_for($$
  SELECT test_helpers.ack_releases('slots_micro') >= 0
     AND (SELECT slots IS NULL FROM shard_coordinator.clusters WHERE cluster = 'slots_micro')
     AND bool_and(slots IS NULL)
    FROM shard_coordinator.members WHERE cluster = 'slots_micro' $$);
SELECT member, shard, num_shards, state, slots
  FROM shard_coordinator.members WHERE cluster = 'slots_micro' ORDER BY member;
SELECT h.shard, h.num_shards, h.state, h.slots
  FROM unnest(ARRAY['m1', 'm3']) AS m, shard_coordinator.heartbeat('slots_micro', m) AS h
 ORDER BY m;
SELECT num_shards, slots FROM shard_coordinator.clusters WHERE cluster = 'slots_micro';
SELECT num_shards, slots FROM shard_coordinator.cluster_state WHERE cluster = 'slots_micro';
SELECT member, shard, state, slots
  FROM shard_coordinator.member_state WHERE cluster = 'slots_micro' ORDER BY member;
-- Clearing again is harmless.
SELECT shard_coordinator.configure('slots_micro', slots => '{}');
SELECT slots FROM shard_coordinator.clusters WHERE cluster = 'slots_micro';

-- A plain cluster with members can be given a slot set.
SELECT shard_coordinator.configure('slots_micro', slots => '{5,6,7}');
SELECT test_slots.wait_settled('slots_micro', '{5,6,7}', 2);
SELECT test_slots.check('slots_micro', '{5,6,7}');
SELECT * FROM test_slots.show('slots_micro');

SELECT shard_coordinator.leave('slots_micro', m) FROM unnest(ARRAY['m1', 'm3']) AS m;
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members
                               WHERE cluster = 'slots_micro'$$);


-- 5. Islands: sparse keys, at most one worker per island. Given unsorted,
-- stored ascending.
SELECT shard_coordinator.configure('slots_isl', slots => '{1000, 42, 17, 3}');
SELECT slots FROM shard_coordinator.clusters WHERE cluster = 'slots_isl';
SELECT slots FROM shard_coordinator.cluster_state WHERE cluster = 'slots_isl';

-- i1 .. i4 join one at a time: each step balanced and sticky; then one
-- island each.
SELECT state FROM shard_coordinator.heartbeat('slots_isl', 'i1');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 1);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT moved FROM test_slots.moves('slots_isl');
SELECT state FROM shard_coordinator.heartbeat('slots_isl', 'i2');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 2);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');
SELECT state FROM shard_coordinator.heartbeat('slots_isl', 'i3');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 3);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');
SELECT state FROM shard_coordinator.heartbeat('slots_isl', 'i4');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 4);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');
SELECT * FROM test_slots.show('slots_isl');

-- A fifth worker is standby: no shard, no island.
SELECT state FROM shard_coordinator.heartbeat('slots_isl', 'i5');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 4, 1);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');
SELECT shard, num_shards, state, slots FROM shard_coordinator.heartbeat('slots_isl', 'i5');
SELECT member, state, shard, slots
  FROM shard_coordinator.member_state WHERE cluster = 'slots_isl' AND member = 'i5';

-- i2 leaves: the standby takes over exactly i2's island (and shard); the
-- others keep theirs.
SELECT shard AS i2_shard, slots AS i2_slots
  FROM shard_coordinator.members WHERE cluster = 'slots_isl' AND member = 'i2' \gset
SELECT shard_coordinator.leave('slots_isl', 'i2');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 4);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');
SELECT state, shard = :i2_shard AS took_shard, slots = :'i2_slots' AS took_island
  FROM shard_coordinator.members WHERE cluster = 'slots_isl' AND member = 'i5';

-- max_shards caps the active members too: 2 active with two islands each,
-- 2 standby; removing the cap brings them back, moving as few islands as
-- possible.
SELECT shard_coordinator.configure('slots_isl', max_shards => 2);
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 2, 2);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');
SELECT * FROM test_slots.show('slots_isl');
SELECT shard_coordinator.configure('slots_isl', clear_max_shards => true);
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000}', 4);
SELECT test_slots.check('slots_isl', '{3,17,42,1000}');
SELECT * FROM test_slots.moves('slots_isl');

-- A new island: five keys over four members; nobody loses an island.
SELECT shard_coordinator.configure('slots_isl', slots => '{3,17,42,1000,5000}');
SELECT test_slots.wait_settled('slots_isl', '{3,17,42,1000,5000}', 4);
SELECT test_slots.check('slots_isl', '{3,17,42,1000,5000}');
SELECT * FROM test_slots.moves('slots_isl');

SELECT shard_coordinator.leave('slots_isl', m) FROM unnest(ARRAY['i1', 'i3', 'i4', 'i5']) AS m;
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members
                               WHERE cluster = 'slots_isl'$$);

-- Leave no slot sets behind for other files.
SELECT shard_coordinator.configure(c, slots => '{}')
  FROM unnest(ARRAY['slots_micro', 'slots_isl']) AS c;
SELECT cluster, slots FROM shard_coordinator.clusters
 WHERE cluster IN ('slots_micro', 'slots_isl') ORDER BY cluster;

SET client_min_messages = warning;
DROP SCHEMA test_slots CASCADE;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
