-- pgTAP: access per cluster (README, "Access per cluster"), as non-superusers.
--   * Two application roles, each the member role of its own cluster, and
--     both granted the README's recipe: neither can heartbeat, leave, fence
--     or administer the other's cluster, and each can work in its own.
--   * An operator role, the admin role of both clusters, granted
--     configure, evict, freeze and unfreeze: it administers them (and may
--     join them); the application roles, even with EXECUTE, cannot.
--   * shard_coordinator.create_on_heartbeat = off: a first heartbeat cannot
--     create a cluster; configure() still can.
--   * A role name that does not exist is refused (42704); '' removes a role.
-- heartbeat(), leave(), configure() are not transactional: the clusters of
-- this file stay (names tap_acc_*), their members leave before the end.
SET client_min_messages = warning;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tap_acc_a') THEN
    DROP ROLE tap_acc_a;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tap_acc_b') THEN
    DROP ROLE tap_acc_b;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tap_acc_ops') THEN
    DROP ROLE tap_acc_ops;
  END IF;
END $$;
CREATE ROLE tap_acc_a NOLOGIN;
CREATE ROLE tap_acc_b NOLOGIN;
CREATE ROLE tap_acc_ops NOLOGIN;
GRANT USAGE ON SCHEMA shard_coordinator TO tap_acc_a, tap_acc_b, tap_acc_ops;
GRANT EXECUTE ON FUNCTION shard_coordinator.heartbeat(text, text, bigint, bigint),
                          shard_coordinator.leave(text, text, bigint),
                          shard_coordinator.fence(text, text, bigint),
                          shard_coordinator.fence(text, text, bigint, integer[]),
                          shard_coordinator.configure(text, interval, interval, interval,
                                                      integer, boolean, integer[], text, text, text, interval)
  TO tap_acc_a, tap_acc_b, tap_acc_ops;
GRANT EXECUTE ON FUNCTION shard_coordinator.evict(text, text, text),
                          shard_coordinator.freeze(text),
                          shard_coordinator.unfreeze(text),
                          shard_coordinator.drop_cluster(text)
  TO tap_acc_a, tap_acc_ops;
RESET client_min_messages;

BEGIN;
SELECT plan(30);

SELECT lives_ok($$SELECT shard_coordinator.configure('tap_acc_ca', heartbeat_interval => '1 h',
                    reshard_interval => '0', member_role => 'tap_acc_a', admin_role => 'tap_acc_ops')$$,
                'a superuser gives cluster tap_acc_ca its roles');
SELECT lives_ok($$SELECT shard_coordinator.configure('tap_acc_cb', heartbeat_interval => '1 h',
                    reshard_interval => '0', member_role => 'tap_acc_b', admin_role => 'tap_acc_ops')$$,
                '... and cluster tap_acc_cb');
SELECT is((SELECT array_agg(cluster || ':' || member_role || ':' || admin_role ORDER BY cluster)
             FROM shard_coordinator.clusters WHERE cluster LIKE 'tap_acc_c_'),
          ARRAY['tap_acc_ca:tap_acc_a:tap_acc_ops', 'tap_acc_cb:tap_acc_b:tap_acc_ops'],
          'the clusters view shows the roles');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_acc_ca', member_role => 'tap_acc_nonesuch')$$,
                 '42704', NULL, 'a role that does not exist is refused');

SET ROLE tap_acc_a;
SELECT lives_ok($$SELECT shard_coordinator.heartbeat('tap_acc_ca', 'a1', NULL, 11)$$,
                'tap_acc_a joins its own cluster');
SELECT throws_ok($$SELECT shard_coordinator.heartbeat('tap_acc_cb', 'a1', NULL, 11)$$,
                 '42501', NULL, 'tap_acc_a cannot heartbeat in tap_acc_cb');
SELECT throws_ok($$SELECT shard_coordinator.leave('tap_acc_cb', 'b1', 21)$$,
                 '42501', NULL, '... nor leave a member of it');
SELECT throws_ok($$SELECT shard_coordinator.fence('tap_acc_cb', 'b1', 1)$$,
                 '42501', NULL, '... nor fence it');
SELECT throws_ok($$SELECT shard_coordinator.fence('tap_acc_cb', 'b1', 1, '{1}')$$,
                 '42501', NULL, '... nor fence keys of it');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_acc_cb', max_shards => 1)$$,
                 '42501', NULL, '... nor configure it');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_acc_ca', max_shards => 1)$$,
                 '42501', NULL, '... nor configure its own (administered by tap_acc_ops)');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_acc_ca', member_role => '')$$,
                 '42501', NULL, '... nor remove its member role');
SELECT throws_ok($$SELECT shard_coordinator.freeze('tap_acc_ca')$$,
                 '42501', NULL, '... nor freeze it, with EXECUTE on freeze');
SELECT throws_ok($$SELECT shard_coordinator.evict('tap_acc_cb', 'b1')$$,
                 '42501', NULL, '... nor evict a member of the other cluster');
SELECT throws_ok($$SELECT shard_coordinator.drop_cluster('tap_acc_cb')$$,
                 '42501', NULL, '... nor drop the other cluster');
SELECT throws_ok($$SELECT shard_coordinator.drop_cluster('tap_acc_ca')$$,
                 '42501', NULL, '... nor drop its own (administered by tap_acc_ops)');
RESET ROLE;

SET ROLE tap_acc_b;
SELECT lives_ok($$SELECT shard_coordinator.heartbeat('tap_acc_cb', 'b1', NULL, 21)$$,
                'tap_acc_b joins its own cluster');
SELECT throws_ok($$SELECT shard_coordinator.heartbeat('tap_acc_ca', 'a1', NULL, 11)$$,
                 '42501', NULL, 'tap_acc_b cannot impersonate a1 in tap_acc_ca');
SELECT throws_ok($$SELECT shard_coordinator.leave('tap_acc_ca', 'a1', 11)$$,
                 '42501', NULL, '... nor leave it');
SELECT throws_ok($$SELECT shard_coordinator.freeze('tap_acc_ca')$$,
                 '42501', NULL, '... nor freeze it (no EXECUTE)');
RESET ROLE;

SET ROLE tap_acc_ops;
SELECT lives_ok($$SELECT shard_coordinator.configure('tap_acc_cb', max_shards => 4)$$,
                'the admin role configures tap_acc_cb');
SELECT lives_ok($$SELECT shard_coordinator.freeze('tap_acc_ca')$$, '... freezes tap_acc_ca');
SELECT lives_ok($$SELECT shard_coordinator.unfreeze('tap_acc_ca')$$, '... and unfreezes it');
SELECT lives_ok($$SELECT shard_coordinator.heartbeat('tap_acc_ca', 'ops1', NULL, 31)$$,
                '... and may join it');
SELECT lives_ok($$SELECT shard_coordinator.leave('tap_acc_ca', 'ops1', 31)$$, '... and leave');
RESET ROLE;
SELECT lives_ok($$SELECT shard_coordinator.configure('tap_acc_cd', admin_role => 'tap_acc_ops')$$,
                'a superuser makes tap_acc_cd for tap_acc_ops');
SET ROLE tap_acc_ops;
SELECT lives_ok($$SELECT shard_coordinator.drop_cluster('tap_acc_cd')$$,
                'the admin role drops it');
RESET ROLE;

-- create_on_heartbeat = off: only configure() creates clusters.
SET shard_coordinator.create_on_heartbeat = off;
SET ROLE tap_acc_a;
SELECT throws_ok($$SELECT shard_coordinator.heartbeat('tap_acc_new', 'a1', NULL, 11)$$,
                 '42704', NULL, 'a first heartbeat cannot create a cluster');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM shard_coordinator.clusters WHERE cluster = 'tap_acc_new'),
          0, '... and none was created');
SET ROLE tap_acc_a;
SELECT throws_ok($$SET shard_coordinator.create_on_heartbeat = on$$,
                 '42501', NULL, 'an application role cannot turn it back on');
RESET ROLE;
RESET shard_coordinator.create_on_heartbeat;

SELECT * FROM finish();
ROLLBACK;

-- Tidy up: the members leave, the roles are removed from the clusters.
SET client_min_messages = warning;
SELECT shard_coordinator.leave('tap_acc_ca', 'a1', 11);
SELECT shard_coordinator.leave('tap_acc_cb', 'b1', 21);
SELECT shard_coordinator.configure(c, member_role => '', admin_role => '')
  FROM unnest(ARRAY['tap_acc_ca', 'tap_acc_cb']) AS c;
DROP OWNED BY tap_acc_a, tap_acc_b, tap_acc_ops;
DROP ROLE tap_acc_a, tap_acc_b, tap_acc_ops;
RESET client_min_messages;
