-- Capacity: a heartbeat that would register more than
-- shard_coordinator.max_members members fails with 53400 and changes
-- nothing; registration works again once members are gone.
-- Clusters: reg_full, reg_full_b.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;


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
