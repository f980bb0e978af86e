-- The stats and history views (README, "Operations"): cumulative counters
-- per cluster, and each cluster's last 16 published steps with why they
-- ran. Clusters of this file: st_a, st_exp, st_many.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
CREATE SCHEMA test_st;
CREATE FUNCTION test_st.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
RESET client_min_messages;

-- 1. Joins, a handover, a leave, an eviction and a refused heartbeat.
SELECT shard_coordinator.configure('st_a', reshard_interval => '0',
                                   heartbeat_interval => '1 h');
SELECT joins, leaves, steps FROM shard_coordinator.stats WHERE cluster = 'st_a';
SELECT state FROM shard_coordinator.heartbeat('st_a', 'a', NULL, 1);
SELECT test_helpers.wait_settled('st_a', 1);
SELECT state FROM shard_coordinator.heartbeat('st_a', 'b', NULL, 2);
SELECT test_helpers.wait_settled('st_a', 2);
SELECT shard_coordinator.leave('st_a', 'b', 2);
SELECT test_helpers.wait_settled('st_a', 1);
SELECT test_st.try($$SELECT shard_coordinator.heartbeat('st_a', 'a', NULL, 99)$$);
SELECT state FROM shard_coordinator.heartbeat('st_a', 'c', NULL, 3);
SELECT test_helpers.wait_settled('st_a', 2);
SELECT shard_coordinator.evict('st_a', 'c', 'a test');
SELECT test_helpers.wait_for($$SELECT NOT EXISTS (SELECT FROM shard_coordinator.members
                                                   WHERE cluster = 'st_a' AND member = 'c')$$);
SELECT joins, leaves, evictions, expiries, refused_heartbeats,
       steps >= 4 AS steps, reshards >= 4 AS reshards, revocations >= 1 AS revocations,
       notices >= steps AS notices, handovers >= 1 AS handovers,
       handover_max >= handover_avg AS handover_times,
       longest_step >= last_step AS step_times, since <= now() AS since
  FROM shard_coordinator.stats WHERE cluster = 'st_a';
-- Every step in the history told somebody; epochs go up; the reasons
-- include the joins, the acknowledgement that let b in (release), the
-- leave and the eviction.
SELECT bool_and(members_told > 0 OR members_removed > 0) AS told,
       bool_and(duration >= '0') AS durations,
       array_agg(epoch ORDER BY at, epoch) = array_agg(epoch ORDER BY epoch) AS in_order
  FROM shard_coordinator.history WHERE cluster = 'st_a';
SELECT r AS reason, EXISTS (SELECT FROM shard_coordinator.history
                             WHERE cluster = 'st_a' AND r = ANY (reasons)) AS seen
  FROM unnest(ARRAY['join', 'release', 'leave', 'admin']) AS r;

-- 2. An expiry.
SELECT shard_coordinator.configure('st_exp', reshard_interval => '0',
                                   heartbeat_interval => '100 ms',
                                   grace_period => '100 ms');
SELECT state FROM shard_coordinator.heartbeat('st_exp', 'a');
SELECT test_helpers.wait_for($$SELECT NOT EXISTS (SELECT FROM shard_coordinator.members
                                                   WHERE cluster = 'st_exp')$$);
SELECT joins, expiries, leaves FROM shard_coordinator.stats WHERE cluster = 'st_exp';
SELECT EXISTS (SELECT FROM shard_coordinator.history
                WHERE cluster = 'st_exp' AND 'expiry' = ANY (reasons)) AS expiry_seen;

-- 3. The history is bounded: 20 members joining one at a time make more
-- than 16 steps; the view keeps the last 16.
SELECT shard_coordinator.configure('st_many', reshard_interval => '0',
                                   heartbeat_interval => '1 h');
DO $$
BEGIN
  FOR i IN 1..20 LOOP
    PERFORM shard_coordinator.heartbeat('st_many', 'm' || i);
    PERFORM test_helpers.wait_settled('st_many', i);
  END LOOP;
END $$;
SELECT steps > 16 AS more_steps FROM shard_coordinator.stats WHERE cluster = 'st_many';
SELECT count(*) AS kept, max(epoch) = (SELECT epoch FROM shard_coordinator.clusters
                                        WHERE cluster = 'st_many') AS newest_kept
  FROM shard_coordinator.history WHERE cluster = 'st_many';

SET client_min_messages = warning;
DROP SCHEMA test_st CASCADE;
DROP SCHEMA test_helpers CASCADE;
