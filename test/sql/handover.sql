-- Exclusive handover (README, "Handovers"): work goes to a member only after
-- its holder released it. Revocations are published at once; a grant waits
-- until every member the work was revoked from acknowledged (heartbeat with
-- applied_epoch at or after the revocation), left, or its promise ended.
-- Also: acknowledgements that cannot count yet, barrier and immediate
-- modes, switching modes, fence() with keys, bad input.
--
-- Clusters of this file: ho_plain, ho_early, ho_lease, ho_leave, ho_slots,
-- ho_barrier, ho_immediate, ho_switch. Heartbeats are sent by hand (a member
-- that is not heartbeated acknowledges nothing); heartbeat_interval is an
-- hour where no member is to expire.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
CREATE SCHEMA test_ho;
-- Runs one statement; 'ok' or SQLSTATE: message.
CREATE FUNCTION test_ho.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- The members of cluster c as the live view shows them: granted shard (or
-- slots), target, what is withheld and what they must release.
CREATE FUNCTION test_ho.show(c text)
RETURNS TABLE (member text, state text, shard int, num_shards int, target_shard int,
               withheld boolean, releasing text)
LANGUAGE sql AS $$
  SELECT member, state, shard, num_shards, target_shard, withheld, releasing
    FROM shard_coordinator.members WHERE cluster = c ORDER BY member
$$;
-- Waits until the worker has looked at cluster c once more: a configure()
-- of another cluster returns once the worker has stored it, after any step
-- already due.
CREATE FUNCTION test_ho.worker_cycle() RETURNS void LANGUAGE sql AS $$
  SELECT shard_coordinator.configure('ho_cycle', reshard_interval => '0')
$$;
CREATE TABLE test_ho.saved (name text PRIMARY KEY, value bigint);
CREATE FUNCTION test_ho.save(n text, v bigint) RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO test_ho.saved VALUES (n, v)
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value RETURNING value
$$;
CREATE FUNCTION test_ho.get(n text) RETURNS bigint LANGUAGE sql AS $$
  SELECT value FROM test_ho.saved WHERE name = n
$$;
CREATE FUNCTION test_ho.cluster_epoch(c text) RETURNS bigint LANGUAGE sql AS $$
  SELECT epoch FROM shard_coordinator.clusters WHERE cluster = c
$$;
RESET client_min_messages;

-- 1. Plain mode, a member joins. New clusters are exclusive.
SELECT shard_coordinator.configure('ho_plain', reshard_interval => '0',
                                   heartbeat_interval => '1 hour');
SELECT handover, grant_count, handover_pending FROM shard_coordinator.clusters
 WHERE cluster = 'ho_plain';
SELECT state FROM shard_coordinator.heartbeat('ho_plain', 'a');
SELECT test_helpers.wait_settled('ho_plain', 1);
-- b joins: at the next epoch a keeps working on shard 0, now of 2 (the keys
-- of shard 1 are revoked from it, to release); b is active with its shard 1
-- withheld.
SELECT state FROM shard_coordinator.heartbeat('ho_plain', 'b');
SELECT test_helpers.wait_for($$SELECT handover_pending FROM shard_coordinator.clusters
                               WHERE cluster = 'ho_plain'$$);
SELECT * FROM test_ho.show('ho_plain');
SELECT test_ho.save('revoked', epoch) = test_ho.cluster_epoch('ho_plain') AS revoked_now,
       shard, num_shards, state, release_within IS NOT NULL AS must_release,
       release_within <= lease_remaining AS within_its_promise
  FROM shard_coordinator.heartbeat('ho_plain', 'a');
SELECT shard, num_shards, state, release_within FROM shard_coordinator.heartbeat('ho_plain', 'b');
SELECT release_epoch = test_ho.get('revoked') AS release_epoch_ok,
       release_until > now() AS release_until_later, acknowledged_epoch
  FROM shard_coordinator.members WHERE cluster = 'ho_plain' AND member = 'a';
-- However long we wait, b gets nothing before a acknowledges (its promise
-- is an hour).
SELECT test_ho.worker_cycle();
SELECT shard, state FROM shard_coordinator.heartbeat('ho_plain', 'b');
-- An acknowledgement of an epoch before the revocation releases nothing.
SELECT acknowledged_epoch = test_ho.get('revoked') - 1 AS stale_ack_counted_as_given,
       release_within IS NOT NULL AS still_must_release
  FROM shard_coordinator.heartbeat('ho_plain', 'a', test_ho.get('revoked') - 1);
SELECT test_ho.worker_cycle();
SELECT shard, state FROM shard_coordinator.heartbeat('ho_plain', 'b');
-- a acknowledges the revocation: b is granted at the next epoch.
SELECT acknowledged_epoch = test_ho.get('revoked') AS acknowledged
  FROM shard_coordinator.heartbeat('ho_plain', 'a', test_ho.get('revoked'));
SELECT test_helpers.wait_for($$SELECT shard IS NOT NULL
                                 FROM shard_coordinator.heartbeat('ho_plain', 'b')$$);
SELECT shard, num_shards, state, epoch = test_ho.get('revoked') + 1 AS granted_next_epoch
  FROM shard_coordinator.heartbeat('ho_plain', 'b');
SELECT * FROM test_ho.show('ho_plain');
SELECT handover_pending, grant_count, num_shards FROM shard_coordinator.clusters
 WHERE cluster = 'ho_plain';
-- a's row no longer asks for a release; its epoch is still that of its own
-- change (the grant to b did not change a's grant).
SELECT shard, num_shards, release_within, epoch = test_ho.get('revoked') AS own_epoch
  FROM shard_coordinator.heartbeat('ho_plain', 'a');
-- The stored state agrees: nothing pending, b granted.
SELECT member, shard, granted FROM shard_coordinator.member_state
 WHERE cluster = 'ho_plain' ORDER BY member;
SELECT count(*) AS pending_releases FROM shard_coordinator.pending_release
 WHERE cluster = 'ho_plain';


-- 2. Acknowledgements that cannot count yet: an epoch the member has not
-- been given is not an error, and counts only as far as what it has been
-- given (an early value must not release a later revocation).
SELECT shard_coordinator.configure('ho_early', reshard_interval => '0',
                                   heartbeat_interval => '1 hour');
SELECT state FROM shard_coordinator.heartbeat('ho_early', 'a');
SELECT test_helpers.wait_settled('ho_early', 1);
SELECT acknowledged_epoch = epoch AS counted_up_to_its_epoch
  FROM shard_coordinator.heartbeat('ho_early', 'a', 1000000);
SELECT acknowledged_epoch FROM shard_coordinator.members
 WHERE cluster = 'ho_early' AND member = 'a';
-- A negative, zero or huge epoch: no error either.
SELECT count(*) AS rows FROM unnest(ARRAY[-1, 0, 9223372036854775807]::bigint[]) AS e,
       shard_coordinator.heartbeat('ho_early', 'a', e);
-- b joins; a is revoked at a later epoch than anything it acknowledged:
-- b stays withheld.
SELECT state FROM shard_coordinator.heartbeat('ho_early', 'b');
SELECT test_helpers.wait_for($$SELECT handover_pending FROM shard_coordinator.clusters
                               WHERE cluster = 'ho_early'$$);
SELECT test_ho.worker_cycle();
SELECT member, shard, withheld, releasing IS NOT NULL AS releasing
  FROM shard_coordinator.members WHERE cluster = 'ho_early' ORDER BY member;
-- Another step of the cluster (c joins) does not count it either: b and c
-- wait for a.
SELECT state FROM shard_coordinator.heartbeat('ho_early', 'c');
SELECT test_helpers.wait_for($$SELECT count(*) = 3 FROM shard_coordinator.members
                               WHERE cluster = 'ho_early' AND state = 'active'$$);
SELECT test_ho.worker_cycle();
SELECT member, shard, withheld, releasing IS NOT NULL AS releasing
  FROM shard_coordinator.members WHERE cluster = 'ho_early' ORDER BY member;


-- 3. A member that never acknowledges (a two-argument client): what was
-- revoked from it is granted when the promise of its last heartbeat before
-- the revocation ends, not before. Leases of 1 s (500 ms + 500 ms).
SELECT shard_coordinator.configure('ho_lease', reshard_interval => '0',
         heartbeat_interval => '500ms', grace_period => '500ms');
SELECT state FROM shard_coordinator.heartbeat('ho_lease', 'a');
SELECT test_helpers.wait_alive('ho_lease', '{a}',
  $$SELECT count(*) = 1 FROM shard_coordinator.members
     WHERE cluster = 'ho_lease' AND shard IS NOT NULL$$);
-- a's last heartbeat before b joins: its promise.
SELECT expires_at AS a_promise FROM shard_coordinator.heartbeat('ho_lease', 'a') \gset
SELECT state FROM shard_coordinator.heartbeat('ho_lease', 'b');
-- Both go on heartbeating with two arguments until b is granted.
DO $$
DECLARE
  give_up timestamptz := clock_timestamp() + interval '30 s';
BEGIN
  LOOP
    PERFORM shard_coordinator.heartbeat('ho_lease', m) FROM unnest(ARRAY['a', 'b']) AS m;
    EXIT WHEN (SELECT shard IS NOT NULL FROM shard_coordinator.members
                WHERE cluster = 'ho_lease' AND member = 'b');
    IF clock_timestamp() > give_up THEN
      RAISE EXCEPTION 'b was never granted';
    END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
  PERFORM test_ho.save('granted_after_ms',
                       (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
END $$;
SELECT test_ho.get('granted_after_ms') >= (extract(epoch FROM :'a_promise'::timestamptz) * 1000)::bigint
       AS not_before_the_promise;
SELECT * FROM test_ho.show('ho_lease');


-- 4. leave() and expiry. a, b, c hold shards 0, 1, 2 of 3.
SELECT shard_coordinator.configure('ho_leave', reshard_interval => '0',
         heartbeat_interval => '500ms', grace_period => '500ms');
SELECT state FROM shard_coordinator.heartbeat('ho_leave', 'a');
SELECT test_helpers.wait_alive('ho_leave', '{a}', $$SELECT test_helpers.settled('ho_leave', 1)$$);
SELECT state FROM shard_coordinator.heartbeat('ho_leave', 'b');
SELECT test_helpers.wait_alive('ho_leave', '{a,b}', $$SELECT test_helpers.settled('ho_leave', 2)$$);
SELECT state FROM shard_coordinator.heartbeat('ho_leave', 'c');
SELECT test_helpers.wait_alive('ho_leave', '{a,b,c}', $$SELECT test_helpers.settled('ho_leave', 3)$$);
SELECT * FROM test_ho.show('ho_leave');
-- c leaves: its work goes with it. a and b grow to the count 2 in the same
-- step: one epoch, nothing to wait for.
SELECT test_ho.save('before_leave', test_ho.cluster_epoch('ho_leave')) > 0 AS saved;
SELECT shard_coordinator.leave('ho_leave', 'c');
SELECT test_helpers.wait_alive('ho_leave', '{a,b}', $$SELECT test_helpers.settled('ho_leave', 2)$$);
SELECT test_ho.cluster_epoch('ho_leave') - test_ho.get('before_leave') AS epochs;
SELECT * FROM test_ho.show('ho_leave');
-- a leaves: b moves from shard 1 to shard 0 and must release shard 1 of 2
-- first (its own revocation; wait_alive acknowledges for it).
SELECT shard_coordinator.leave('ho_leave', 'a');
SELECT test_helpers.wait_alive('ho_leave', '{b}', $$SELECT test_helpers.settled('ho_leave', 1)$$);
SELECT * FROM test_ho.show('ho_leave');
-- d joins and stops heartbeating once it is granted; b goes on. d expires;
-- b takes over d's keys only once d's promise has ended: the expiry is at
-- that moment here (the lease did not change), so b grows at once.
SELECT state FROM shard_coordinator.heartbeat('ho_leave', 'd');
SELECT test_helpers.wait_alive('ho_leave', '{b,d}', $$SELECT test_helpers.settled('ho_leave', 2)$$);
SELECT test_helpers.wait_alive('ho_leave', '{b}', $$SELECT test_helpers.settled('ho_leave', 1)$$);
SELECT * FROM test_ho.show('ho_leave');


-- 5. Slot mode: keys {1, 2, 3, 4}; a holds all, b joins and gets {3, 4}
-- once a released them.
SELECT shard_coordinator.configure('ho_slots', reshard_interval => '0',
         heartbeat_interval => '1 hour', slots => '{1,2,3,4}');
SELECT state FROM shard_coordinator.heartbeat('ho_slots', 'a');
SELECT test_helpers.wait_settled('ho_slots', 1);
SELECT test_ho.save('a_all', epoch) > 0 AS saved, slots FROM shard_coordinator.heartbeat('ho_slots', 'a');
SELECT state FROM shard_coordinator.heartbeat('ho_slots', 'b');
SELECT test_helpers.wait_for($$SELECT handover_pending FROM shard_coordinator.clusters
                               WHERE cluster = 'ho_slots'$$);
SELECT member, slots, target_slots, releasing FROM shard_coordinator.members
 WHERE cluster = 'ho_slots' ORDER BY member;
SELECT test_ho.save('a_revoked', epoch) > test_ho.get('a_all') AS epoch_up, slots,
       release_within IS NOT NULL AS must_release
  FROM shard_coordinator.heartbeat('ho_slots', 'a');
-- fence() with keys: a's work on keys 1 and 2 is still current at its old
-- epoch; on key 3 (revoked) it is not, nor is the whole grant.
SELECT test_ho.try(format('SELECT shard_coordinator.fence(%L, %L, %s, %L)',
                          'ho_slots', 'a', test_ho.get('a_all'), '{1,2}')) AS keys_1_2,
       test_ho.try(format('SELECT shard_coordinator.fence(%L, %L, %s, %L)',
                          'ho_slots', 'a', test_ho.get('a_all'), '{2,3}')) AS keys_2_3,
       test_ho.try(format('SELECT shard_coordinator.fence(%L, %L, %s)',
                          'ho_slots', 'a', test_ho.get('a_all'))) AS whole_grant;
-- b cannot fence its withheld keys.
SELECT test_ho.try(format('SELECT shard_coordinator.fence(%L, %L, %s, %L)',
                          'ho_slots', 'b', test_ho.cluster_epoch('ho_slots'), '{3}')) AS b_key_3;
-- a acknowledges: b is granted {3, 4}.
SELECT slots FROM shard_coordinator.heartbeat('ho_slots', 'a', test_ho.get('a_revoked'));
SELECT test_helpers.wait_for($$SELECT slots = '{3,4}'
                                 FROM shard_coordinator.heartbeat('ho_slots', 'b')$$);
SELECT member, slots, target_slots, releasing FROM shard_coordinator.members
 WHERE cluster = 'ho_slots' ORDER BY member;
SELECT test_ho.try(format('SELECT shard_coordinator.fence(%L, %L, %s, %L)',
                          'ho_slots', 'b', epoch, '{3,4}')) AS b_keys_3_4
  FROM shard_coordinator.heartbeat('ho_slots', 'b');


-- 6. Barrier mode (key mappings other than jump hash): a count change
-- revokes every grant (under a mapping that does not nest, a grant at the
-- new count may share keys with any grant at the old one); a member is
-- granted again once every other member that held some of its keys at the
-- old count released them. a and b hold shards 0 and 1 of 2; c joins:
-- nobody works.
SELECT shard_coordinator.configure('ho_barrier', reshard_interval => '0',
         heartbeat_interval => '1 hour', handover => 'barrier');
SELECT state FROM shard_coordinator.heartbeat('ho_barrier', 'a');
SELECT test_helpers.wait_settled('ho_barrier', 1);
SELECT state FROM shard_coordinator.heartbeat('ho_barrier', 'b');
SELECT test_helpers.wait_settled('ho_barrier', 2);
SELECT state FROM shard_coordinator.heartbeat('ho_barrier', 'c');
SELECT test_helpers.wait_for($$SELECT handover_pending FROM shard_coordinator.clusters
                               WHERE cluster = 'ho_barrier'$$);
SELECT * FROM test_ho.show('ho_barrier');
-- a acknowledges: b is granted (only its own old grant is still held,
-- which does not count against it); a and c wait for b.
SELECT shard FROM shard_coordinator.heartbeat('ho_barrier', 'a',
  (SELECT epoch FROM shard_coordinator.members WHERE cluster = 'ho_barrier' AND member = 'a'));
SELECT test_ho.worker_cycle();
SELECT * FROM test_ho.show('ho_barrier');
SELECT test_helpers.wait_settled('ho_barrier', 3);
SELECT * FROM test_ho.show('ho_barrier');


-- 7. Immediate mode: the one-step reshard of version 1.0.
SELECT shard_coordinator.configure('ho_immediate', reshard_interval => '0',
         heartbeat_interval => '1 hour', handover => 'immediate');
SELECT state FROM shard_coordinator.heartbeat('ho_immediate', 'a');
SELECT test_helpers.wait_for($$SELECT test_helpers.settled('ho_immediate', 1)$$);
SELECT state FROM shard_coordinator.heartbeat('ho_immediate', 'b');
SELECT test_helpers.wait_for($$SELECT test_helpers.settled('ho_immediate', 2)$$);
SELECT * FROM test_ho.show('ho_immediate');
SELECT handover, handover_pending FROM shard_coordinator.clusters WHERE cluster = 'ho_immediate';


-- 8. Switching modes: to immediate, withheld work is granted at once; back
-- to exclusive, the guarantee starts one lease later (exclusive_since).
SELECT shard_coordinator.configure('ho_switch', reshard_interval => '0',
                                   heartbeat_interval => '1 hour');
SELECT state FROM shard_coordinator.heartbeat('ho_switch', 'a');
SELECT test_helpers.wait_settled('ho_switch', 1);
SELECT state FROM shard_coordinator.heartbeat('ho_switch', 'b');
SELECT test_helpers.wait_for($$SELECT handover_pending FROM shard_coordinator.clusters
                               WHERE cluster = 'ho_switch'$$);
SELECT shard_coordinator.configure('ho_switch', handover => 'immediate');
SELECT test_helpers.wait_for($$SELECT NOT handover_pending FROM shard_coordinator.clusters
                               WHERE cluster = 'ho_switch'$$);
SELECT * FROM test_ho.show('ho_switch');
SELECT handover, exclusive_since IS NULL AS not_exclusive
  FROM shard_coordinator.clusters WHERE cluster = 'ho_switch';
SELECT shard_coordinator.configure('ho_switch', handover => 'exclusive');
SELECT handover, exclusive_since > now() - interval '1 minute' AS exclusive_since_now
  FROM shard_coordinator.clusters WHERE cluster = 'ho_switch';
SELECT handover FROM shard_coordinator.cluster_state WHERE cluster = 'ho_switch';
-- NULL keeps the mode; the mode's name is checked.
SELECT shard_coordinator.configure('ho_switch', handover => NULL);
SELECT handover FROM shard_coordinator.clusters WHERE cluster = 'ho_switch';
SELECT test_ho.try($$SELECT shard_coordinator.configure('ho_switch', handover => 'exclusiv')$$)
       AS misspelt,
       test_ho.try($$SELECT shard_coordinator.configure('ho_switch', handover => '')$$) AS empty,
       test_ho.try($$SELECT shard_coordinator.configure('ho_switch', handover => 'EXCLUSIVE')$$)
       AS upper_case;
SELECT handover FROM shard_coordinator.clusters WHERE cluster = 'ho_switch';
-- The default for clusters made by a first heartbeat.
SHOW shard_coordinator.handover;


-- Everyone leaves; the clusters end empty.
SELECT count(*) FILTER (WHERE shard_coordinator.leave(cluster, member)) > 0 AS left_
  FROM shard_coordinator.members WHERE cluster LIKE 'ho\_%';
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members
                               WHERE cluster LIKE 'ho\_%'$$);
SELECT count(*) AS pending_releases FROM shard_coordinator.pending_release
 WHERE cluster LIKE 'ho\_%';

SET client_min_messages = warning;
DROP SCHEMA test_ho CASCADE;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
