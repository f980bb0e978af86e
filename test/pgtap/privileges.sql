-- pgTAP: privileges. Nothing of shard_coordinator's coordination API is
-- granted to PUBLIC; a role without grants can neither coordinate nor touch
-- the tables; with the documented grants a worker role can heartbeat, leave,
-- compute channels and read the views, but still cannot configure clusters
-- nor write the tables (only the background worker writes them).
--
-- heartbeat() and leave() are not transactional: the member registered here
-- (cluster tap_priv) stays after the ROLLBACK, so it leaves at the end.
BEGIN;
SELECT plan(75);

-- Not granted to PUBLIC.
SELECT ok(NOT has_function_privilege('public', f::regprocedure, 'EXECUTE'),
          'PUBLIC cannot execute ' || f)
  FROM unnest(ARRAY[
    'shard_coordinator.heartbeat(text, text, bigint, bigint)',
    'shard_coordinator.leave(text, text, bigint)',
    'shard_coordinator.channel(text, text)',
    'shard_coordinator.channel(text)',
    'shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[], text, text, text, interval)',
    'shard_coordinator.fence(text, text, bigint)',
    'shard_coordinator.fence(text, text, bigint, integer[])',
    'shard_coordinator.evict(text, text, text)',
    'shard_coordinator.freeze(text)',
    'shard_coordinator.unfreeze(text)',
    'shard_coordinator.drop_cluster(text)',
    'shard_coordinator._install_check()',
    'shard_coordinator._live_members()',
    'shard_coordinator._live_clusters()',
    'shard_coordinator._live_stats()',
    'shard_coordinator._live_history()',
    'shard_coordinator._is_live()']) AS f;
-- jump_hash is a pure function, granted to PUBLIC on purpose (README).
SELECT ok(has_function_privilege('public', f::regprocedure, 'EXECUTE'),
          'PUBLIC can execute ' || f)
  FROM unnest(ARRAY['shard_coordinator.jump_hash(bigint, integer)',
                    'shard_coordinator.jump_hash(text, integer)']) AS f;
SELECT ok(NOT has_table_privilege('public', t::regclass, p),
          format('PUBLIC has no %s on %s', p, t))
  FROM unnest(ARRAY['shard_coordinator.cluster_state', 'shard_coordinator.member_state',
                    'shard_coordinator.pending_release']) AS t,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p;
SELECT ok(NOT has_table_privilege('public', v::regclass, 'SELECT'),
          'PUBLIC cannot read ' || v)
  FROM unnest(ARRAY['shard_coordinator.members', 'shard_coordinator.clusters',
                    'shard_coordinator.stats', 'shard_coordinator.history']) AS v;

-- A role without grants.
CREATE ROLE tap_sc_nobody NOLOGIN;
SET ROLE tap_sc_nobody;
SELECT throws_ok($$SELECT shard_coordinator.heartbeat('tap_priv', 'nobody')$$, '42501',
                 NULL, 'a role without grants cannot heartbeat');
SELECT throws_ok($$SELECT shard_coordinator.leave('tap_priv', 'nobody')$$, '42501',
                 NULL, 'a role without grants cannot leave');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_priv', max_shards => 1)$$, '42501',
                 NULL, 'a role without grants cannot configure');
SELECT throws_ok($$SELECT shard_coordinator.fence('tap_priv', 'nobody', 1)$$, '42501',
                 NULL, 'a role without grants cannot fence');
SELECT throws_ok($$SELECT shard_coordinator.evict('tap_priv', 'nobody')$$, '42501',
                 NULL, 'a role without grants cannot evict');
SELECT throws_ok($$SELECT shard_coordinator.freeze('tap_priv')$$, '42501',
                 NULL, 'a role without grants cannot freeze');
SELECT throws_ok($$SELECT shard_coordinator.unfreeze('tap_priv')$$, '42501',
                 NULL, 'a role without grants cannot unfreeze');
SELECT throws_ok($$SELECT shard_coordinator.drop_cluster('tap_priv')$$, '42501',
                 NULL, 'a role without grants cannot drop a cluster');
SELECT throws_ok($$SELECT * FROM shard_coordinator.members$$, '42501',
                 NULL, 'a role without grants cannot read members');
SELECT throws_ok($$INSERT INTO shard_coordinator.cluster_state (cluster, heartbeat_interval,
                     grace_period, reshard_interval) VALUES ('tap_priv_x', '1 s', '1 s', '1 s')$$,
                 '42501', NULL, 'a role without grants cannot insert into cluster_state');
SELECT throws_ok($$DELETE FROM shard_coordinator.member_state$$, '42501',
                 NULL, 'a role without grants cannot delete from member_state');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM shard_coordinator.members WHERE cluster = 'tap_priv'), 0,
          'nothing was registered');

-- A worker role with the grants of the README (functions) and of the views.
CREATE ROLE tap_sc_app NOLOGIN;
GRANT USAGE ON SCHEMA shard_coordinator TO tap_sc_app;
GRANT EXECUTE ON FUNCTION shard_coordinator.heartbeat(text, text, bigint, bigint),
                          shard_coordinator.leave(text, text, bigint),
                          shard_coordinator.channel(text, text),
                          shard_coordinator.channel(text) TO tap_sc_app;
GRANT SELECT ON shard_coordinator.members, shard_coordinator.clusters TO tap_sc_app;
SET ROLE tap_sc_app;
SELECT is((SELECT state FROM shard_coordinator.heartbeat('tap_priv', 'w1')), 'pending',
          'the worker role can heartbeat (registers as pending)');
SELECT ok((SELECT state IN ('pending', 'active') FROM shard_coordinator.heartbeat('tap_priv', 'w1')),
          'and heartbeat again');
SELECT is(shard_coordinator.channel('tap_priv', 'w1'),
          (SELECT channel FROM shard_coordinator.heartbeat('tap_priv', 'w1')),
          'the worker role can compute its channel');
SELECT is(shard_coordinator.channel('tap_priv'), shard_coordinator.channel('tap_priv'),
          'and its cluster''s channel');
-- SELECT on the views alone is not enough: the functions behind them need
-- EXECUTE too (README, "Privileges": nothing is granted to PUBLIC).
SELECT throws_ok($$SELECT * FROM shard_coordinator.members$$, '42501', NULL,
                 'reading members also needs EXECUTE on the functions behind it');
SELECT throws_ok($$SELECT * FROM shard_coordinator.clusters$$, '42501', NULL,
                 'reading clusters also needs EXECUTE on the functions behind it');
-- Still refused: configure, the tables.
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_priv', max_shards => 1)$$, '42501',
                 NULL, 'the worker role cannot configure');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_priv_new')$$, '42501',
                 NULL, 'the worker role cannot create a cluster with configure');
SELECT throws_ok($$SELECT * FROM shard_coordinator.member_state$$, '42501',
                 NULL, 'the worker role cannot read member_state directly');
SELECT throws_ok($$INSERT INTO shard_coordinator.cluster_state (cluster, heartbeat_interval,
                     grace_period, reshard_interval) VALUES ('tap_priv_x', '1 s', '1 s', '1 s')$$,
                 '42501', NULL, 'the worker role cannot insert into cluster_state');
SELECT throws_ok($$UPDATE shard_coordinator.cluster_state SET epoch = 0$$, '42501',
                 NULL, 'the worker role cannot update cluster_state');
SELECT throws_ok($$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard,
                     epoch, join_seq, joined_at) VALUES ('tap_priv', 'evil', 'active', 0, 1, 1, now())$$,
                 '42501', NULL, 'the worker role cannot insert into member_state');
SELECT throws_ok($$UPDATE shard_coordinator.member_state SET shard = 0$$, '42501',
                 NULL, 'the worker role cannot update member_state');
SELECT throws_ok($$DELETE FROM shard_coordinator.member_state$$, '42501',
                 NULL, 'the worker role cannot delete from member_state');
SELECT throws_ok($$TRUNCATE shard_coordinator.cluster_state CASCADE$$, '42501',
                 NULL, 'the worker role cannot truncate cluster_state');
SELECT throws_ok($$SELECT * FROM shard_coordinator._live_members()$$, '42501',
                 NULL, 'the worker role cannot call the internal functions');
SELECT throws_ok($$SELECT shard_coordinator._install_check()$$, '42501',
                 NULL, 'the worker role cannot call _install_check');
SELECT throws_ok($$SELECT shard_coordinator.fence('tap_priv', 'w1', 1)$$, '42501',
                 NULL, 'the worker role cannot fence without a grant on fence');
RESET ROLE;

-- With the README's extra grants on the functions behind the views, the
-- views are readable.
GRANT EXECUTE ON FUNCTION shard_coordinator._live_members(),
                          shard_coordinator._live_clusters(),
                          shard_coordinator._is_live() TO tap_sc_app;
SET ROLE tap_sc_app;
SELECT lives_ok($$SELECT * FROM shard_coordinator.members$$,
                'with the README grants the worker role can read members');
SELECT is((SELECT count(*)::int FROM shard_coordinator.members
            WHERE cluster = 'tap_priv' AND member = 'w1'), 1, 'and sees itself');
SELECT lives_ok($$SELECT * FROM shard_coordinator.clusters$$,
                'with the README grants the worker role can read clusters');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_priv', max_shards => 1)$$, '42501',
                 NULL, 'but still cannot configure');
SELECT throws_ok($$DELETE FROM shard_coordinator.cluster_state$$, '42501',
                 NULL, 'nor write the tables');
SELECT is(shard_coordinator.leave('tap_priv', 'w1'), true, 'the worker role can leave');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM shard_coordinator.member_state WHERE member = 'evil'), 0,
          'no member was smuggled into the table');

SELECT * FROM finish();
ROLLBACK;
