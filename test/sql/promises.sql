-- A heartbeat row promises the member its assignment until the row's stamp
-- plus the lease in force at that stamp: configure() does not shorten it.
-- A member b stops heartbeating; then the grace period is lowered from 4 s
-- to 0. b keeps its shard until its promise (last heartbeat + 1 s + 4 s)
-- has ended; only heartbeats stamped after the change get the shorter lease.
-- Cluster: reg_promise.
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- Heartbeats the members `alive` of cluster c until cond is true; returns
-- the time it became true.
CREATE FUNCTION test_helpers.alive_until(c text, alive text[], cond text,
                                         timeout interval DEFAULT '30 s')
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
  give_up timestamptz := clock_timestamp() + timeout;
  ok boolean;
BEGIN
  LOOP
    PERFORM shard_coordinator.heartbeat(c, m) FROM unnest(alive) AS m;
    EXECUTE cond INTO ok;
    IF ok THEN
      RETURN clock_timestamp();
    END IF;
    IF clock_timestamp() > give_up THEN
      RAISE EXCEPTION 'timed out after % waiting for: %', timeout, cond;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
CREATE TABLE test_helpers.b_promise (expires_at timestamptz, changed_at timestamptz);

SELECT shard_coordinator.configure('reg_promise', heartbeat_interval => '1s',
                                   grace_period => '4s', reshard_interval => '0');
SELECT state FROM shard_coordinator.heartbeat('reg_promise', 'a');
SELECT state FROM shard_coordinator.heartbeat('reg_promise', 'b');
SELECT test_helpers.wait_settled('reg_promise', 2);
-- b's last heartbeat: its row promises the shard for 5 s.
INSERT INTO test_helpers.b_promise (expires_at)
  SELECT expires_at FROM shard_coordinator.heartbeat('reg_promise', 'b');
SELECT expires_at - clock_timestamp() BETWEEN interval '4.5 s' AND interval '5 s' AS promised_5s
  FROM test_helpers.b_promise;

SELECT shard_coordinator.configure('reg_promise', grace_period => '0');
UPDATE test_helpers.b_promise SET changed_at = clock_timestamp();
-- The members view still shows b's promise.
SELECT abs(extract(epoch FROM m.expires_at - p.expires_at)) < 0.01 AS view_shows_the_promise
  FROM shard_coordinator.members m, test_helpers.b_promise p
 WHERE m.cluster = 'reg_promise' AND m.member = 'b';

-- b is removed, but not before its promise has ended (a heartbeats all the
-- time; its own lease is 1 s now).
SELECT test_helpers.alive_until('reg_promise', '{a}',
         $$SELECT NOT EXISTS (SELECT FROM shard_coordinator.members
                               WHERE cluster = 'reg_promise' AND member = 'b')$$)
       >= p.expires_at AS b_kept_its_promise
  FROM test_helpers.b_promise p;
SELECT member, shard, num_shards, state, expires_at - last_heartbeat AS lease
  FROM shard_coordinator.members WHERE cluster = 'reg_promise';

SELECT shard_coordinator.leave('reg_promise', 'a');
SELECT test_helpers.wait_for($$SELECT count(*) = 0 FROM shard_coordinator.members WHERE cluster = 'reg_promise'$$);
DROP SCHEMA test_helpers CASCADE;
