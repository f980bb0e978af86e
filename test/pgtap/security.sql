-- pgTAP: security.
--   * No function of the schema runs with elevated rights (no SECURITY
--     DEFINER), nothing but jump_hash is executable by PUBLIC, nothing of the
--     tables is granted to PUBLIC, and no trigger or rule on the tables runs
--     user code.
--   * A non-superuser role granted exactly the README's GRANT recipe can
--     heartbeat, leave, fence and read the views; it cannot write, truncate,
--     lock, alter or add triggers to the tables, cannot configure any
--     cluster, cannot call _install_check (which would reset shared memory),
--     cannot create objects in the schema, drop the extension or change the
--     functions.
--   * Objects that role creates in public (operators = (text, text) and
--     <= (bigint, bigint), functions named unnest, tables named cluster_state
--     and member_state, all of which record being called) cannot hijack the
--     background worker, not even when the database's default search_path
--     puts public before pg_catalog (ALTER DATABASE ... SET search_path; the
--     worker is restarted to pick it up): the worker pins its own search_path,
--     reshards still store the right rows, and no trap is ever called. (With
--     public first, an unqualified text = text in the worker's queries would
--     resolve to the trap.)
--
-- The role and its objects in public must be committed for the background
-- worker to see them, so they are created before BEGIN and dropped after
-- ROLLBACK. heartbeat() and leave() are not transactional: every member
-- registered here leaves before the end.
SET client_min_messages = warning;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tap_sec_app') THEN
    DROP OWNED BY tap_sec_app;
    DROP ROLE tap_sec_app;
  END IF;
END $$;
DROP TABLE IF EXISTS public.tap_sec_trap_calls;
CREATE ROLE tap_sec_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
-- The README's recipe, verbatim.
GRANT USAGE ON SCHEMA shard_coordinator TO tap_sec_app;
GRANT EXECUTE ON FUNCTION shard_coordinator.heartbeat(text, text, bigint, bigint),
                          shard_coordinator.leave(text, text, bigint),
                          shard_coordinator.channel(text, text),
                          shard_coordinator.channel(text),
                          shard_coordinator.fence(text, text, bigint),
                          shard_coordinator.fence(text, text, bigint, integer[]) TO tap_sec_app;
GRANT SELECT ON shard_coordinator.members, shard_coordinator.clusters TO tap_sec_app;
GRANT EXECUTE ON FUNCTION shard_coordinator._live_members(),
                          shard_coordinator._live_clusters(),
                          shard_coordinator._is_live() TO tap_sec_app;

-- The traps, created by the role in public (PostgreSQL 15 does not let
-- PUBLIC create there by default; a careless installation might). Each
-- records that it was called.
CREATE TABLE public.tap_sec_trap_calls (trap text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT ON public.tap_sec_trap_calls TO PUBLIC;
GRANT CREATE ON SCHEMA public TO tap_sec_app;
SET ROLE tap_sec_app;
-- The worker's member upsert calls unnest(text[], text[], int4[], int8[],
-- int8[], timestamptz[], bool[], int8[], text[], text[]) and its insert of
-- pending releases unnest(int8[], text[], int8[], int4[], int4[], text[]);
-- exact-type overloads would win over pg_catalog's polymorphic unnest if
-- public were on its search_path at all (even after pg_catalog). (This file
-- qualifies its own calls of unnest for that reason.)
CREATE FUNCTION public.unnest(text[], text[], integer[], bigint[], bigint[], timestamptz[],
                              boolean[], bigint[], text[], text[],
                              OUT member text, OUT state text, OUT shard integer,
                              OUT epoch bigint, OUT join_seq bigint, OUT joined_at timestamptz,
                              OUT granted boolean, OUT incarnation bigint, OUT slots text,
                              OUT target_slots text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.tap_sec_trap_calls (trap) VALUES ('unnest/10');
  member := 'evil'; state := 'active'; shard := 0; epoch := 1; join_seq := 0;
  joined_at := now(); granted := true;
  RETURN NEXT;
END $$;
CREATE FUNCTION public.unnest(bigint[], text[], bigint[], integer[], integer[], text[],
                              OUT join_seq bigint, OUT member text, OUT epoch bigint,
                              OUT shard integer, OUT num_shards integer, OUT slots text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.tap_sec_trap_calls (trap) VALUES ('unnest/6');
  RETURN;
END $$;
-- The worker deletes removed members WHERE member = ANY ($2): an operator
-- = (text, text) that is always true would delete everyone.
CREATE FUNCTION public.tap_sec_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.tap_sec_trap_calls (trap) VALUES ('=');
  RETURN true;
END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, PROCEDURE = public.tap_sec_eq);
-- The worker refuses to move a stored epoch back (WHERE c.epoch <=
-- EXCLUDED.epoch): an always-false <= would stop every reshard.
CREATE FUNCTION public.tap_sec_le(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.tap_sec_trap_calls (trap) VALUES ('<=');
  RETURN false;
END $$;
CREATE OPERATOR public.<= (LEFTARG = bigint, RIGHTARG = bigint, PROCEDURE = public.tap_sec_le);
-- Tables named like the extension's.
CREATE TABLE public.cluster_state (LIKE shard_coordinator.clusters);
CREATE TABLE public.member_state (LIKE shard_coordinator.members);
CREATE FUNCTION public.tap_sec_trap_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.tap_sec_trap_calls (trap) VALUES (TG_TABLE_NAME);
  RETURN NULL;
END $$;
CREATE TRIGGER trap BEFORE INSERT OR UPDATE OR DELETE ON public.cluster_state
  FOR EACH ROW EXECUTE FUNCTION public.tap_sec_trap_trigger();
CREATE TRIGGER trap BEFORE INSERT OR UPDATE OR DELETE ON public.member_state
  FOR EACH ROW EXECUTE FUNCTION public.tap_sec_trap_trigger();
RESET ROLE;
-- A database default search_path that puts public first, and a worker
-- restarted to connect with it.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', current_database());
END $$;
DO $$
DECLARE
  old int;
  give_up timestamptz := clock_timestamp() + interval '30 s';
BEGIN
  SELECT pid INTO old FROM pg_stat_activity WHERE backend_type = 'shard_coordinator';
  PERFORM pg_terminate_backend(old);
  LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                       WHERE backend_type = 'shard_coordinator' AND pid IS DISTINCT FROM old);
    IF clock_timestamp() > give_up THEN
      RAISE EXCEPTION 'the background worker did not come back';
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
RESET client_min_messages;

BEGIN;
SELECT plan(58);

-- Polls until the query cond returns true (false after 30 s).
CREATE FUNCTION pg_temp.wait_for(cond text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  give_up timestamptz := clock_timestamp() + interval '30 s';
  ok boolean;
BEGIN
  LOOP
    EXECUTE cond INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > give_up THEN RETURN false; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.wait_for(text) TO tap_sec_app;
-- Heartbeats the members of cluster c that are asked to release something,
-- acknowledging their epoch (they do no work): exclusive handovers then
-- complete at once. Returns true.
CREATE FUNCTION pg_temp.ack(c text) RETURNS boolean LANGUAGE sql AS $$
  SELECT count(shard_coordinator.heartbeat(cluster, member, epoch)) >= 0
    FROM shard_coordinator.members
   WHERE cluster = c AND releasing IS NOT NULL AND state IN ('active', 'standby', 'pending')
$$;
GRANT EXECUTE ON FUNCTION pg_temp.ack(text) TO tap_sec_app;

-- ---- The schema ------------------------------------------------------------
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p
   WHERE p.pronamespace = 'shard_coordinator'::regnamespace AND p.prosecdef$$,
  'no SECURITY DEFINER function in schema shard_coordinator');
SELECT set_eq($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'shard_coordinator'::regnamespace
     AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
  ARRAY['shard_coordinator.jump_hash(bigint,integer)', 'shard_coordinator.jump_hash(text,integer)'],
  'PUBLIC can execute jump_hash only');
SELECT is_empty($$
  SELECT c.relname, p.privilege FROM pg_class c,
         pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(privilege)
   WHERE c.relnamespace = 'shard_coordinator'::regnamespace AND c.relkind IN ('r', 'v')
     AND has_table_privilege('public', c.oid, p.privilege)$$,
  'PUBLIC has no privilege on the tables and views');
SELECT is_empty($$
  SELECT tgname FROM pg_trigger
   WHERE tgrelid IN ('shard_coordinator.cluster_state'::regclass,
                     'shard_coordinator.member_state'::regclass,
                     'shard_coordinator.pending_release'::regclass)
     AND NOT tgisinternal$$,
  'no user trigger on the tables');
SELECT is_empty($$
  SELECT rulename FROM pg_rules WHERE schemaname = 'shard_coordinator'$$,
  'no rules on the tables');
SELECT is_empty($$
  SELECT relname FROM pg_class
   WHERE relnamespace = 'shard_coordinator'::regnamespace AND relrowsecurity$$,
  'no row level security policies to depend on');
SELECT ok(NOT has_schema_privilege('public', 'shard_coordinator', 'CREATE'),
          'PUBLIC cannot create objects in the schema');
SELECT is((SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
            JOIN pg_database d ON d.oid = s.setdatabase
           WHERE d.datname = current_database() AND s.setrole = 0),
          'search_path=public, pg_catalog',
          'the database default search_path puts public first');
SELECT is((SELECT count(*)::int FROM pg_stat_activity
            WHERE backend_type = 'shard_coordinator'
              AND backend_start > (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())),
          1, 'the background worker was restarted after that setting');

-- ---- The role with the README grants -------------------------------------
SELECT ok(NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'tap_sec_app'),
          'tap_sec_app is an ordinary role');
SELECT set_eq($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'shard_coordinator'::regnamespace
     AND has_function_privilege('tap_sec_app', p.oid, 'EXECUTE')$$,
  ARRAY['shard_coordinator.heartbeat(text,text,bigint,bigint)',
        'shard_coordinator.leave(text,text,bigint)',
        'shard_coordinator.channel(text,text)', 'shard_coordinator.channel(text)',
        'shard_coordinator.fence(text,text,bigint)',
        'shard_coordinator.fence(text,text,bigint,integer[])',
        'shard_coordinator._live_members()', 'shard_coordinator._live_clusters()',
        'shard_coordinator._is_live()',
        'shard_coordinator.jump_hash(bigint,integer)', 'shard_coordinator.jump_hash(text,integer)'],
  'the recipe grants exactly these functions');

SELECT lives_ok($$SELECT shard_coordinator.configure('tap_sec', heartbeat_interval => '10 s',
                    grace_period => '1 min', reshard_interval => '0')$$,
                'the administrator configures cluster tap_sec');
SELECT lives_ok($$SELECT shard_coordinator.configure('tap_sec_fence', heartbeat_interval => '10 s',
                    grace_period => '1 min', reshard_interval => '0')$$,
                'and cluster tap_sec_fence');

SET ROLE tap_sec_app;
SELECT is((SELECT state FROM shard_coordinator.heartbeat('tap_sec', 'm1')), 'pending',
          'the role can heartbeat (m1 registers)');
SELECT ok(pg_temp.wait_for($$SELECT state = 'active' FROM shard_coordinator.heartbeat('tap_sec', 'm1')$$),
          'm1 becomes active');
SELECT lives_ok($$SELECT shard_coordinator.heartbeat('tap_sec', m) FROM pg_catalog.unnest(ARRAY['m2', 'm3']) m$$,
                'm2 and m3 join');
SELECT ok(pg_temp.wait_for($$
  SELECT pg_temp.ack('tap_sec')
     AND string_agg(member || '=' || shard, ',' ORDER BY member) = 'm1=0,m2=1,m3=2'
     AND NOT (SELECT handover_pending FROM shard_coordinator.clusters WHERE cluster = 'tap_sec')
    FROM shard_coordinator.members WHERE cluster = 'tap_sec'$$),
  'the role reads the members view: m1=0, m2=1, m3=2');
SELECT is((SELECT num_shards FROM shard_coordinator.clusters WHERE cluster = 'tap_sec'), 3,
          'the role reads the clusters view');
SELECT is(shard_coordinator.channel('tap_sec', 'm1'),
          (SELECT channel FROM shard_coordinator.heartbeat('tap_sec', 'm1')),
          'the role can compute channels');
SELECT is(shard_coordinator.jump_hash(42::bigint, 3), shard_coordinator.jump_hash(42::bigint, 3),
          'the role can call jump_hash');

-- Refused: the tables, configure, the admin function, DDL.
SELECT throws_ok($$SELECT * FROM shard_coordinator.member_state$$, '42501', NULL,
                 'the role cannot read member_state directly');
SELECT throws_ok($$INSERT INTO shard_coordinator.cluster_state (cluster, heartbeat_interval,
                     grace_period, reshard_interval) VALUES ('tap_sec_x', '1 s', '1 s', '1 s')$$,
                 '42501', NULL, 'the role cannot insert into cluster_state');
SELECT throws_ok($$INSERT INTO shard_coordinator.member_state (cluster, member, state, shard,
                     epoch, join_seq, joined_at) VALUES ('tap_sec', 'evil', 'active', 9, 1, 1, now())$$,
                 '42501', NULL, 'the role cannot insert into member_state');
SELECT throws_ok($$UPDATE shard_coordinator.cluster_state SET max_shards = 1$$, '42501', NULL,
                 'the role cannot update cluster_state');
SELECT throws_ok($$UPDATE shard_coordinator.member_state SET shard = 0$$, '42501', NULL,
                 'the role cannot update member_state');
SELECT throws_ok($$DELETE FROM shard_coordinator.cluster_state$$, '42501', NULL,
                 'the role cannot delete from cluster_state');
SELECT throws_ok($$DELETE FROM shard_coordinator.member_state$$, '42501', NULL,
                 'the role cannot delete from member_state');
SELECT throws_ok($$TRUNCATE shard_coordinator.cluster_state CASCADE$$, '42501', NULL,
                 'the role cannot truncate cluster_state');
SELECT throws_ok($$TRUNCATE shard_coordinator.member_state$$, '42501', NULL,
                 'the role cannot truncate member_state');
SELECT throws_ok($$LOCK TABLE shard_coordinator.member_state IN ACCESS EXCLUSIVE MODE$$, '42501', NULL,
                 'the role cannot lock member_state');
SELECT throws_ok($$LOCK TABLE shard_coordinator.members IN ACCESS EXCLUSIVE MODE$$, '42501', NULL,
                 'the role cannot lock the tables through the members view');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_sec', max_shards => 1)$$, '42501', NULL,
                 'the role cannot configure its cluster');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_sec_fence', heartbeat_interval => '1 ms')$$,
                 '42501', NULL, 'the role cannot configure another cluster');
SELECT throws_ok($$SELECT shard_coordinator.configure('tap_sec_new')$$, '42501', NULL,
                 'the role cannot create a cluster with configure');
SELECT throws_ok($$SELECT shard_coordinator._install_check()$$, '42501', NULL,
                 'the role cannot call _install_check');
SELECT throws_ok($$CREATE TRIGGER t BEFORE INSERT ON shard_coordinator.member_state
                   FOR EACH ROW EXECUTE FUNCTION public.tap_sec_trap_trigger()$$, '42501', NULL,
                 'the role cannot add a trigger to member_state');
SELECT throws_ok($$ALTER TABLE shard_coordinator.member_state DROP CONSTRAINT member_state_one_member_per_shard$$,
                 '42501', NULL, 'the role cannot alter member_state');
SELECT throws_ok($$CREATE FUNCTION shard_coordinator.x() RETURNS int LANGUAGE sql AS 'SELECT 1'$$,
                 '42501', NULL, 'the role cannot create objects in the schema');
SELECT throws_ok($$ALTER FUNCTION shard_coordinator.heartbeat(text, text, bigint, bigint) SECURITY DEFINER$$,
                 '42501', NULL, 'the role cannot alter the functions');
SELECT throws_ok($$DROP EXTENSION shard_coordinator$$, '42501', NULL,
                 'the role cannot drop the extension');
SELECT throws_ok($$GRANT EXECUTE ON FUNCTION shard_coordinator.configure(text, interval, interval,
                     interval, integer, boolean, integer[], text, text, text, interval) TO tap_sec_app$$, '42501', NULL,
                 'the role cannot grant itself configure');

-- ---- The traps do not catch the worker -----------------------------------
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname = 'unnest'
            AND pronamespace = 'public'::regnamespace), 2,
          'the role has created two functions named unnest in public');
SELECT is((SELECT string_agg(oprname, ' ' ORDER BY oprname) FROM pg_operator
            WHERE oprnamespace = 'public'::regnamespace), '<= =',
          'and operators = (text, text) and <= (bigint, bigint)');
-- m2 leaves: the worker deletes it and moves m3 from shard 2 to shard 1.
SELECT is(shard_coordinator.leave('tap_sec', 'm2'), true, 'the role can leave (m2)');
SELECT ok(pg_temp.wait_for($$
  SELECT pg_temp.ack('tap_sec')
     AND string_agg(member || '=' || shard, ',' ORDER BY member) = 'm1=0,m3=1'
     AND NOT (SELECT handover_pending FROM shard_coordinator.clusters WHERE cluster = 'tap_sec')
    FROM shard_coordinator.members WHERE cluster = 'tap_sec'$$),
  'after the leave, the members view shows m1=0, m3=1');
-- m4 joins: the worker inserts it.
SELECT lives_ok($$SELECT shard_coordinator.heartbeat('tap_sec', 'm4')$$, 'm4 joins');
SELECT ok(pg_temp.wait_for($$
  SELECT pg_temp.ack('tap_sec')
     AND string_agg(member || '=' || shard, ',' ORDER BY member) = 'm1=0,m3=1,m4=2'
     AND NOT (SELECT handover_pending FROM shard_coordinator.clusters WHERE cluster = 'tap_sec')
    FROM shard_coordinator.members WHERE cluster = 'tap_sec'$$),
  'after the join, the members view shows m1=0, m3=1, m4=2');
RESET ROLE;
SELECT is((SELECT string_agg(member || '=' || shard || ':' || state, ',' ORDER BY member)
             FROM shard_coordinator.member_state WHERE cluster = 'tap_sec'),
          'm1=0:active,m3=1:active,m4=2:active',
          'member_state holds exactly the right rows');
SELECT is((SELECT num_shards FROM shard_coordinator.cluster_state WHERE cluster = 'tap_sec'), 3,
          'cluster_state holds the right num_shards');
SELECT is((SELECT count(*)::int FROM shard_coordinator.member_state WHERE member = 'evil'), 0,
          'no member "evil" was smuggled in');
SELECT is((SELECT count(*)::int FROM public.cluster_state) + (SELECT count(*)::int FROM public.member_state),
          0, 'the look-alike tables in public were not written');
SELECT is((SELECT coalesce(string_agg(DISTINCT trap, ','), 'none') FROM public.tap_sec_trap_calls),
          'none', 'no trap was called');

-- ---- fence (last: it holds reshards of its cluster until ROLLBACK) -------
SET ROLE tap_sec_app;
SELECT lives_ok($$SELECT shard_coordinator.heartbeat('tap_sec_fence', 'f1')$$, 'f1 joins tap_sec_fence');
SELECT ok(pg_temp.wait_for($$
  SELECT state = 'active' FROM shard_coordinator.heartbeat('tap_sec_fence', 'f1')$$),
  'f1 becomes active');
SELECT throws_ok(format('SELECT shard_coordinator.fence(%L, %L, %s)', 'tap_sec_fence', 'f1',
                        (SELECT epoch FROM shard_coordinator.heartbeat('tap_sec_fence', 'f1')) - 1),
                 'SC001', NULL, 'the role gets SC001 for a stale epoch');
SELECT lives_ok(format('SELECT shard_coordinator.fence(%L, %L, %s)', 'tap_sec_fence', 'f1',
                       (SELECT epoch FROM shard_coordinator.heartbeat('tap_sec_fence', 'f1'))),
                'the role can fence with its current epoch');
-- Everyone leaves (not transactional; f1's removal waits for the ROLLBACK).
SELECT is((SELECT count(*)::int FROM pg_catalog.unnest(ARRAY['m1', 'm3', 'm4']) m
            WHERE shard_coordinator.leave('tap_sec', m)), 3, 'the members of tap_sec leave');
SELECT is(shard_coordinator.leave('tap_sec_fence', 'f1'), true, 'f1 leaves');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

-- Clean up the role, its objects and the database setting.
SET client_min_messages = warning;
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END $$;
DROP OWNED BY tap_sec_app;
DROP ROLE tap_sec_app;
DROP TABLE public.tap_sec_trap_calls;
RESET client_min_messages;
