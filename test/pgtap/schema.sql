-- pgTAP: the schema objects of shard_coordinator, their exact signatures,
-- return types and columns, and the constraints that back the safety
-- invariant.
BEGIN;
SELECT plan(153);

SELECT has_extension('shard_coordinator');
SELECT has_schema('shard_coordinator');

-- Tables and views.
SELECT has_table('shard_coordinator', 'cluster_state', 'table cluster_state exists');
SELECT has_table('shard_coordinator', 'member_state', 'table member_state exists');
SELECT has_view('shard_coordinator', 'members', 'view members exists');
SELECT has_view('shard_coordinator', 'clusters', 'view clusters exists');
SELECT has_table('shard_coordinator', 'pending_release', 'table pending_release exists');
SELECT tables_are('shard_coordinator', ARRAY['cluster_state', 'member_state', 'pending_release']);
SELECT has_type('shard_coordinator', 'assignment', 'type assignment exists');
SELECT views_are('shard_coordinator', ARRAY['members', 'clusters', 'stats', 'history']);

-- The public functions, with their exact argument lists and results.
SELECT has_function('shard_coordinator', 'heartbeat', ARRAY['text', 'text', 'bigint', 'bigint']);
SELECT has_function('shard_coordinator', 'leave', ARRAY['text', 'text', 'bigint']);
SELECT has_function('shard_coordinator', 'channel', ARRAY['text', 'text']);
SELECT has_function('shard_coordinator', 'channel', ARRAY['text']);
SELECT has_function('shard_coordinator', 'configure',
                    ARRAY['text', 'interval', 'interval', 'interval', 'integer', 'boolean', 'integer[]', 'text', 'text', 'text', 'interval']);
SELECT has_function('shard_coordinator', 'fence', ARRAY['text', 'text', 'bigint']);
SELECT has_function('shard_coordinator', 'fence', ARRAY['text', 'text', 'bigint', 'integer[]']);
SELECT has_function('shard_coordinator', 'evict', ARRAY['text', 'text', 'text']);
SELECT has_function('shard_coordinator', 'freeze', ARRAY['text']);
SELECT has_function('shard_coordinator', 'unfreeze', ARRAY['text']);
SELECT has_function('shard_coordinator', 'drop_cluster', ARRAY['text']);
SELECT function_returns('shard_coordinator', 'drop_cluster', ARRAY['text'], 'void');
SELECT function_returns('shard_coordinator', 'evict', ARRAY['text', 'text', 'text'], 'boolean');
SELECT is(pg_get_function_arguments('shard_coordinator.evict(text, text, text)'::regprocedure),
          'cluster text, member text, reason text DEFAULT NULL::text', 'evict() arguments');
SELECT has_function('shard_coordinator', 'jump_hash', ARRAY['bigint', 'integer']);
SELECT has_function('shard_coordinator', 'jump_hash', ARRAY['text', 'integer']);
SELECT is(
  (SELECT count(*)::int FROM pg_proc
    WHERE pronamespace = 'shard_coordinator'::regnamespace
      AND proname IN ('heartbeat', 'leave', 'channel', 'configure')),
  5, 'no overloads of heartbeat, leave, configure; channel has two (member, cluster)');

SELECT function_returns('shard_coordinator', 'heartbeat', ARRAY['text', 'text', 'bigint', 'bigint'], 'shard_coordinator.assignment');
SELECT function_returns('shard_coordinator', 'leave', ARRAY['text', 'text', 'bigint'], 'boolean');
SELECT function_returns('shard_coordinator', 'channel', ARRAY['text', 'text'], 'text');
SELECT function_returns('shard_coordinator', 'channel', ARRAY['text'], 'text');
SELECT function_returns('shard_coordinator', 'configure',
                        ARRAY['text', 'interval', 'interval', 'interval', 'integer', 'boolean', 'integer[]', 'text', 'text', 'text', 'interval'], 'void');
SELECT function_returns('shard_coordinator', 'fence', ARRAY['text', 'text', 'bigint'], 'void');
SELECT function_returns('shard_coordinator', 'fence', ARRAY['text', 'text', 'bigint', 'integer[]'], 'void');
SELECT function_returns('shard_coordinator', 'jump_hash', ARRAY['bigint', 'integer'], 'integer');
SELECT function_returns('shard_coordinator', 'jump_hash', ARRAY['text', 'integer'], 'integer');
SELECT is(pg_get_function_arguments('shard_coordinator.heartbeat(text, text, bigint, bigint)'::regprocedure),
          'cluster text, member text, applied_epoch bigint DEFAULT NULL::bigint, '
          'incarnation bigint DEFAULT NULL::bigint',
          'heartbeat() arguments and defaults');
SELECT is(
  (SELECT array_agg(attname::text || ' ' || format_type(atttypid, atttypmod) ORDER BY attnum)
     FROM pg_attribute
    WHERE attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'shard_coordinator.assignment'::regtype)
      AND attnum > 0 AND NOT attisdropped),
  ARRAY['shard integer', 'num_shards integer', 'epoch bigint', 'state text', 'channel text',
        'heartbeat_interval interval', 'expires_at timestamp with time zone', 'slots integer[]',
        'lease_remaining interval', 'release_within interval', 'acknowledged_epoch bigint'],
  'assignment: the columns of a heartbeat''s answer (1.0''s eight first, in their order)');
SELECT is(pg_get_function_arguments('shard_coordinator.leave(text, text, bigint)'::regprocedure),
          'cluster text, member text, incarnation bigint DEFAULT NULL::bigint', 'leave() arguments');
SELECT is(pg_get_function_arguments('shard_coordinator.channel(text, text)'::regprocedure),
          'cluster text, member text', 'channel() arguments');
SELECT is(pg_get_function_arguments('shard_coordinator.channel(text)'::regprocedure),
          'cluster text', 'channel(cluster) arguments');
SELECT is(pg_get_function_arguments(
            'shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[], text, text, text, interval)'::regprocedure),
          'cluster text, heartbeat_interval interval DEFAULT NULL::interval, '
          'grace_period interval DEFAULT NULL::interval, '
          'reshard_interval interval DEFAULT NULL::interval, '
          'max_shards integer DEFAULT NULL::integer, clear_max_shards boolean DEFAULT false, '
          'slots integer[] DEFAULT NULL::integer[], handover text DEFAULT NULL::text, '
          'member_role text DEFAULT NULL::text, admin_role text DEFAULT NULL::text, '
          'fence_timeout interval DEFAULT NULL::interval',
          'configure() arguments and defaults');
SELECT is(pg_get_function_result('shard_coordinator.heartbeat(text, text, bigint, bigint)'::regprocedure),
          'shard_coordinator.assignment', 'heartbeat() returns one assignment');
SELECT isnt((SELECT proretset FROM pg_proc
              WHERE oid = 'shard_coordinator.heartbeat(text, text, bigint, bigint)'::regprocedure), true,
            'heartbeat() returns a single row, not a set');

SELECT volatility_is('shard_coordinator', 'heartbeat', ARRAY['text', 'text', 'bigint', 'bigint'], 'volatile');
SELECT volatility_is('shard_coordinator', 'leave', ARRAY['text', 'text', 'bigint'], 'volatile');
SELECT volatility_is('shard_coordinator', 'configure',
                     ARRAY['text', 'interval', 'interval', 'interval', 'integer', 'boolean', 'integer[]', 'text', 'text', 'text', 'interval'], 'volatile');
SELECT volatility_is('shard_coordinator', 'fence', ARRAY['text', 'text', 'bigint'], 'volatile');
SELECT volatility_is('shard_coordinator', 'fence', ARRAY['text', 'text', 'bigint', 'integer[]'], 'volatile');
SELECT volatility_is('shard_coordinator', 'jump_hash', ARRAY['bigint', 'integer'], 'immutable');
SELECT volatility_is('shard_coordinator', 'jump_hash', ARRAY['text', 'integer'], 'immutable');
SELECT volatility_is('shard_coordinator', 'channel', ARRAY['text', 'text'], 'immutable');
SELECT volatility_is('shard_coordinator', 'channel', ARRAY['text'], 'immutable');
SELECT is(
  (SELECT count(*)::int FROM pg_proc
    WHERE pronamespace = 'shard_coordinator'::regnamespace AND prosecdef),
  0, 'no SECURITY DEFINER functions');
SELECT is(
  (SELECT count(*)::int FROM pg_proc p JOIN pg_depend d
          ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    WHERE p.pronamespace = 'shard_coordinator'::regnamespace
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'shard_coordinator')),
  (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'shard_coordinator'::regnamespace),
  'every function of the schema belongs to the extension');

-- Columns of the views (the public contract) and of the tables.
SELECT columns_are('shard_coordinator', 'members', ARRAY[
  'cluster', 'member', 'shard', 'num_shards', 'epoch', 'state',
  'last_heartbeat', 'expires_at', 'joined_at', 'slots',
  'target_shard', 'target_slots', 'withheld', 'releasing', 'release_epoch',
  'release_until', 'acknowledged_epoch', 'incarnation']);
SELECT col_type_is('shard_coordinator', 'members', 'target_shard', 'integer', 'members.target_shard is integer');
SELECT col_type_is('shard_coordinator', 'members', 'target_slots', 'integer[]', 'members.target_slots is integer[]');
SELECT col_type_is('shard_coordinator', 'members', 'withheld', 'boolean', 'members.withheld is boolean');
SELECT col_type_is('shard_coordinator', 'members', 'releasing', 'text', 'members.releasing is text');
SELECT col_type_is('shard_coordinator', 'members', 'release_epoch', 'bigint', 'members.release_epoch is bigint');
SELECT col_type_is('shard_coordinator', 'members', 'release_until', 'timestamp with time zone', 'members.release_until is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'members', 'acknowledged_epoch', 'bigint', 'members.acknowledged_epoch is bigint');
SELECT col_type_is('shard_coordinator', 'members', 'incarnation', 'bigint', 'members.incarnation is bigint');
SELECT col_type_is('shard_coordinator', 'members', 'cluster', 'text', 'members.cluster is text');
SELECT col_type_is('shard_coordinator', 'members', 'member', 'text', 'members.member is text');
SELECT col_type_is('shard_coordinator', 'members', 'shard', 'integer', 'members.shard is integer');
SELECT col_type_is('shard_coordinator', 'members', 'num_shards', 'integer', 'members.num_shards is integer');
SELECT col_type_is('shard_coordinator', 'members', 'epoch', 'bigint', 'members.epoch is bigint');
SELECT col_type_is('shard_coordinator', 'members', 'state', 'text', 'members.state is text');
SELECT col_type_is('shard_coordinator', 'members', 'last_heartbeat', 'timestamp with time zone', 'members.last_heartbeat is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'members', 'expires_at', 'timestamp with time zone', 'members.expires_at is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'members', 'joined_at', 'timestamp with time zone', 'members.joined_at is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'members', 'slots', 'integer[]', 'members.slots is integer[]');

SELECT columns_are('shard_coordinator', 'clusters', ARRAY[
  'cluster', 'heartbeat_interval', 'grace_period', 'reshard_interval', 'max_shards',
  'epoch', 'num_shards', 'members', 'active', 'standby', 'pending', 'resharded_at', 'slots', 'fenced',
  'handover', 'grant_count', 'handover_pending', 'exclusive_since', 'grants_held_until',
  'failover_safe', 'frozen', 'member_role', 'admin_role', 'fence_timeout', 'dropping']);
SELECT col_type_is('shard_coordinator', 'clusters', 'frozen', 'boolean', 'clusters.frozen is boolean');
SELECT col_type_is('shard_coordinator', 'clusters', 'handover', 'text', 'clusters.handover is text');
SELECT col_type_is('shard_coordinator', 'clusters', 'grant_count', 'integer', 'clusters.grant_count is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'handover_pending', 'boolean', 'clusters.handover_pending is boolean');
SELECT col_type_is('shard_coordinator', 'clusters', 'exclusive_since', 'timestamp with time zone', 'clusters.exclusive_since is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'clusters', 'grants_held_until', 'timestamp with time zone', 'clusters.grants_held_until is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'clusters', 'failover_safe', 'boolean', 'clusters.failover_safe is boolean');
SELECT col_type_is('shard_coordinator', 'clusters', 'cluster', 'text', 'clusters.cluster is text');
SELECT col_type_is('shard_coordinator', 'clusters', 'heartbeat_interval', 'interval', 'clusters.heartbeat_interval is interval');
SELECT col_type_is('shard_coordinator', 'clusters', 'grace_period', 'interval', 'clusters.grace_period is interval');
SELECT col_type_is('shard_coordinator', 'clusters', 'reshard_interval', 'interval', 'clusters.reshard_interval is interval');
SELECT col_type_is('shard_coordinator', 'clusters', 'max_shards', 'integer', 'clusters.max_shards is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'epoch', 'bigint', 'clusters.epoch is bigint');
SELECT col_type_is('shard_coordinator', 'clusters', 'num_shards', 'integer', 'clusters.num_shards is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'members', 'integer', 'clusters.members is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'active', 'integer', 'clusters.active is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'standby', 'integer', 'clusters.standby is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'pending', 'integer', 'clusters.pending is integer');
SELECT col_type_is('shard_coordinator', 'clusters', 'resharded_at', 'timestamp with time zone', 'clusters.resharded_at is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'clusters', 'slots', 'integer[]', 'clusters.slots is integer[]');

SELECT columns_are('shard_coordinator', 'cluster_state', ARRAY[
  'cluster', 'heartbeat_interval', 'grace_period', 'reshard_interval', 'max_shards',
  'epoch', 'num_shards', 'num_shards_epoch', 'resharded_at', 'slots',
  'pending_slots', 'handover', 'grant_count', 'max_lease', 'timeline', 'synchronous',
  'frozen', 'member_role', 'admin_role', 'fence_timeout', 'dropping', 'configured']);
SELECT col_default_is('shard_coordinator', 'cluster_state', 'frozen', 'false', 'clusters are not frozen by default');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'pending_slots', 'integer[]', 'cluster_state.pending_slots is integer[]');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'handover', 'text', 'cluster_state.handover is text');
SELECT col_default_is('shard_coordinator', 'cluster_state', 'handover', 'exclusive', 'handovers are exclusive by default');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'grant_count', 'integer', 'cluster_state.grant_count is integer');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'max_lease', 'interval', 'cluster_state.max_lease is interval');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'timeline', 'integer', 'cluster_state.timeline is integer');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'synchronous', 'boolean', 'cluster_state.synchronous is boolean');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'cluster', 'text', 'cluster_state.cluster is text');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'num_shards_epoch', 'bigint', 'cluster_state.num_shards_epoch is bigint');
SELECT col_not_null('shard_coordinator', 'cluster_state', 'num_shards_epoch', 'cluster_state.num_shards_epoch is NOT NULL');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'heartbeat_interval', 'interval', 'cluster_state.heartbeat_interval is interval');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'grace_period', 'interval', 'cluster_state.grace_period is interval');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'reshard_interval', 'interval', 'cluster_state.reshard_interval is interval');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'max_shards', 'integer', 'cluster_state.max_shards is integer');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'epoch', 'bigint', 'cluster_state.epoch is bigint');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'num_shards', 'integer', 'cluster_state.num_shards is integer');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'resharded_at', 'timestamp with time zone', 'cluster_state.resharded_at is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'cluster_state', 'slots', 'integer[]', 'cluster_state.slots is integer[]');
SELECT col_not_null('shard_coordinator', 'cluster_state', 'heartbeat_interval', 'cluster_state.heartbeat_interval is NOT NULL');
SELECT col_not_null('shard_coordinator', 'cluster_state', 'epoch', 'cluster_state.epoch is NOT NULL');
SELECT col_is_null('shard_coordinator', 'cluster_state', 'max_shards', 'cluster_state.max_shards may be NULL');
SELECT col_is_pk('shard_coordinator', 'cluster_state', 'cluster', 'cluster_state primary key is (cluster)');

SELECT columns_are('shard_coordinator', 'member_state', ARRAY[
  'cluster', 'member', 'state', 'shard', 'epoch', 'join_seq', 'joined_at', 'slots',
  'granted', 'target_slots', 'incarnation']);
SELECT col_type_is('shard_coordinator', 'member_state', 'granted', 'boolean', 'member_state.granted is boolean');
SELECT col_type_is('shard_coordinator', 'member_state', 'target_slots', 'integer[]', 'member_state.target_slots is integer[]');
SELECT col_type_is('shard_coordinator', 'member_state', 'incarnation', 'bigint', 'member_state.incarnation is bigint');

SELECT columns_are('shard_coordinator', 'pending_release', ARRAY[
  'cluster', 'join_seq', 'member', 'revoked_epoch', 'shard', 'num_shards', 'slots']);
SELECT col_is_pk('shard_coordinator', 'pending_release', ARRAY['cluster', 'join_seq', 'revoked_epoch'],
                 'pending_release primary key is (cluster, join_seq, revoked_epoch)');
SELECT fk_ok('shard_coordinator', 'pending_release', 'cluster',
             'shard_coordinator', 'cluster_state', 'cluster');
SELECT col_type_is('shard_coordinator', 'member_state', 'cluster', 'text', 'member_state.cluster is text');
SELECT col_type_is('shard_coordinator', 'member_state', 'member', 'text', 'member_state.member is text');
SELECT col_type_is('shard_coordinator', 'member_state', 'state', 'text', 'member_state.state is text');
SELECT col_type_is('shard_coordinator', 'member_state', 'shard', 'integer', 'member_state.shard is integer');
SELECT col_type_is('shard_coordinator', 'member_state', 'epoch', 'bigint', 'member_state.epoch is bigint');
SELECT col_type_is('shard_coordinator', 'member_state', 'join_seq', 'bigint', 'member_state.join_seq is bigint');
SELECT col_type_is('shard_coordinator', 'member_state', 'joined_at', 'timestamp with time zone', 'member_state.joined_at is timestamp with time zone');
SELECT col_type_is('shard_coordinator', 'member_state', 'slots', 'integer[]', 'member_state.slots is integer[]');
SELECT col_is_pk('shard_coordinator', 'member_state', ARRAY['cluster', 'member'], 'member_state primary key is (cluster, member)');
SELECT col_is_fk('shard_coordinator', 'member_state', 'cluster', 'member_state.cluster is a foreign key');
SELECT fk_ok('shard_coordinator', 'member_state', 'cluster',
             'shard_coordinator', 'cluster_state', 'cluster');
SELECT has_check('shard_coordinator', 'member_state', 'member_state has check constraints');
SELECT has_check('shard_coordinator', 'cluster_state', 'cluster_state has check constraints');

-- The safety invariant in the table: one member per (cluster, shard).
SELECT col_is_unique('shard_coordinator', 'member_state', ARRAY['cluster', 'shard'],
                     'member_state has a unique constraint on (cluster, shard)');
SELECT is(
  (SELECT array_agg(a.attname::text ORDER BY k.ord)
     FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord), pg_attribute a
    WHERE c.conrelid = 'shard_coordinator.member_state'::regclass AND c.contype = 'u'
      AND a.attrelid = c.conrelid AND a.attnum = k.attnum),
  ARRAY['cluster', 'shard'], 'the unique constraint is exactly (cluster, shard)');

-- Superuser writes that break the rules are refused by the constraints
-- (inside this transaction, rolled back at the end; the worker never sees
-- them).
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO shard_coordinator.cluster_state (cluster, heartbeat_interval, grace_period, reshard_interval)
VALUES ('tap_schema_c', '5 s', '10 s', '1 s');
SELECT lives_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'a', 'active', 0, 1, 1, now())$$,
  'a member with shard 0');
SELECT throws_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'b', 'active', 0, 1, 2, now())$$,
  '23505', NULL, 'a second member with the same shard violates the unique constraint');
SELECT lives_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'c', 'standby', NULL, 1, 3, now()),
           ('tap_schema_c', 'd', 'standby', NULL, 1, 4, now())$$,
  'any number of standby members without a shard');
SELECT throws_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'e', 'active', NULL, 1, 5, now())$$,
  '23514', NULL, 'an active member must have a shard');
SELECT throws_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'f', 'standby', 1, 1, 6, now())$$,
  '23514', NULL, 'a standby member has no shard');
SELECT throws_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'g', 'pending', NULL, 1, 7, now())$$,
  '23514', NULL, 'pending members are not stored');
SELECT throws_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_c', 'h', 'active', -1, 1, 8, now())$$,
  '23514', NULL, 'shards are not negative');
SELECT throws_ok(
  $$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard, epoch, join_seq, joined_at)
    VALUES ('tap_schema_no_such_cluster', 'a', 'active', 0, 1, 9, now())$$,
  '23503', NULL, 'a member belongs to a stored cluster');
SELECT throws_ok(
  $$UPDATE shard_coordinator.cluster_state SET max_shards = 0 WHERE cluster = 'tap_schema_c'$$,
  '23514', NULL, 'max_shards is at least 1 in the table too');
SELECT ok(
  (SELECT condeferrable AND condeferred FROM pg_constraint
    WHERE conrelid = 'shard_coordinator.member_state'::regclass AND contype = 'u'),
  'the unique constraint is deferrable, initially deferred (a reshard moves shards in one statement)');
SELECT lives_ok(
  $$DELETE FROM shard_coordinator.cluster_state WHERE cluster = 'tap_schema_c'$$,
  'deleting a cluster row');
SELECT is(
  (SELECT count(*)::int FROM shard_coordinator.member_state WHERE cluster = 'tap_schema_c'),
  0, 'deletes its members (ON DELETE CASCADE)');

SELECT * FROM finish();
ROLLBACK;
