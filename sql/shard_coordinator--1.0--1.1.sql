-- shard_coordinator 1.0 -> 1.1: exclusive handover (grants, holds,
-- acknowledgements), the incarnation, the handover mode, and the heartbeat
-- returning its promise (lease_remaining) and what to release.
--
-- Members keep their shards and epochs: in 1.0 every active member of a
-- plain cluster holds its shard (granted), every such cluster's grants have
-- its num_shards, and the members of a slot cluster hold their keys.

\echo Use "ALTER EXTENSION shard_coordinator UPDATE TO '1.1'" to load this file. \quit

ALTER TABLE shard_coordinator.cluster_state
    ADD COLUMN pending_slots integer[],
    ADD COLUMN handover text NOT NULL DEFAULT 'exclusive'
        CHECK (handover IN ('exclusive', 'barrier', 'immediate')),
    ADD COLUMN grant_count integer NOT NULL DEFAULT 0 CHECK (grant_count >= 0),
    ADD COLUMN max_lease interval NOT NULL DEFAULT '0',
    ADD COLUMN timeline integer NOT NULL DEFAULT 1,
    ADD COLUMN synchronous boolean NOT NULL DEFAULT false,
    ADD COLUMN frozen boolean NOT NULL DEFAULT false,
    ADD COLUMN member_role text,
    ADD COLUMN admin_role text,
    ADD COLUMN fence_timeout interval NOT NULL DEFAULT '0',
    ADD COLUMN dropping boolean NOT NULL DEFAULT false,
    -- Clusters of 1.0 count as configured: never removed for being empty.
    ADD COLUMN configured boolean NOT NULL DEFAULT true;
ALTER TABLE shard_coordinator.cluster_state
    ALTER COLUMN configured SET DEFAULT false;
UPDATE shard_coordinator.cluster_state
   SET grant_count = CASE WHEN slots IS NULL THEN num_shards ELSE 0 END,
       max_lease = heartbeat_interval + grace_period;

ALTER TABLE shard_coordinator.member_state
    ADD COLUMN granted boolean NOT NULL DEFAULT true,
    ADD COLUMN target_slots integer[],
    ADD COLUMN incarnation bigint;
-- A plain grant is the shard of an active member of a plain cluster; slot
-- clusters grant keys (slots), never shards.
UPDATE shard_coordinator.member_state AS m
   SET target_slots = m.slots,
       granted = m.state = 'active' AND c.slots IS NULL
  FROM shard_coordinator.cluster_state AS c
 WHERE c.cluster = m.cluster;

CREATE TABLE shard_coordinator.pending_release (
    cluster        text    NOT NULL
                   REFERENCES shard_coordinator.cluster_state (cluster) ON DELETE CASCADE,
    join_seq       bigint  NOT NULL,
    member         text    NOT NULL,
    revoked_epoch  bigint  NOT NULL,
    shard          integer,
    num_shards     integer,
    slots          integer[],
    PRIMARY KEY (cluster, join_seq, revoked_epoch),
    CHECK ((slots IS NULL) = (num_shards IS NOT NULL))
);
COMMENT ON TABLE shard_coordinator.pending_release IS
    'Work revoked from members and not released yet; written only by the shard_coordinator background worker';
SELECT pg_catalog.pg_extension_config_dump('shard_coordinator.pending_release', '');

-- The functions and views whose signatures change are dropped and created
-- anew; what roles were granted on them carries over (see the end).
CREATE TABLE shard_coordinator._upgrade_grants (object text, kind text, grantee oid, privilege text);
INSERT INTO shard_coordinator._upgrade_grants
SELECT f.new_signature, 'function', a.grantee, a.privilege_type
  FROM (VALUES ('shard_coordinator.heartbeat(text, text)'::regprocedure,
                'shard_coordinator.heartbeat(text, text, bigint, bigint)'),
               ('shard_coordinator.leave(text, text)'::regprocedure,
                'shard_coordinator.leave(text, text, bigint)'),
               ('shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[])'::regprocedure,
                'shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[], text, text, text, interval)'),
               ('shard_coordinator._live_members()'::regprocedure,
                'shard_coordinator._live_members()'),
               ('shard_coordinator._live_clusters()'::regprocedure,
                'shard_coordinator._live_clusters()'),
               ('shard_coordinator.fence(text, text, bigint)'::regprocedure,
                'shard_coordinator.fence(text, text, bigint, integer[])'))
         AS f(old, new_signature)
  JOIN pg_catalog.pg_proc p ON p.oid = f.old
 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
 WHERE a.grantee <> p.proowner
UNION ALL
SELECT v.name, 'view', a.grantee, a.privilege_type
  FROM (VALUES ('shard_coordinator.members'), ('shard_coordinator.clusters')) AS v(name)
  JOIN pg_catalog.pg_class c ON c.oid = v.name::regclass
 CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
 WHERE a.grantee <> c.relowner;

DROP VIEW shard_coordinator.members;
DROP VIEW shard_coordinator.clusters;
DROP FUNCTION shard_coordinator._live_members();
DROP FUNCTION shard_coordinator._live_clusters();
DROP FUNCTION shard_coordinator.heartbeat(text, text);
DROP FUNCTION shard_coordinator.leave(text, text);
DROP FUNCTION shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[]);

-- What a heartbeat returns: the member's assignment and its promise.
CREATE TYPE shard_coordinator.assignment AS (
    -- The shard it may work on (plain mode: its keys are those with
    -- jump_hash(key, num_shards) = shard); NULL unless active and granted.
    shard              integer,
    -- Plain mode: the count of its grant; slot mode: active members.
    num_shards         integer,
    -- The epoch of its assignment: changes only when its own does.
    epoch              bigint,
    state              text,      -- pending, active, standby
    channel            text,      -- its LISTEN channel
    heartbeat_interval interval,  -- heartbeat this often
    -- The row's promise: its assignment is its own until then at least.
    expires_at         timestamptz,
    slots              integer[], -- slot mode: the keys it may work on now
    lease_remaining    interval,  -- the promise left (server-measured)
    -- Work revoked from it that it must stop within this (then
    -- acknowledge with applied_epoch); NULL: nothing to release.
    release_within     interval,
    -- The epoch the server counts as acknowledged (NULL: none).
    acknowledged_epoch bigint);

COMMENT ON TYPE shard_coordinator.assignment IS
    'A heartbeat''s answer: the member''s grant, its epoch, its promise and what it must release';

CREATE FUNCTION shard_coordinator.heartbeat(
    cluster text,
    member text,
    applied_epoch bigint DEFAULT NULL,
    incarnation bigint DEFAULT NULL)
RETURNS shard_coordinator.assignment
AS 'MODULE_PATHNAME', 'sc_heartbeat'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.heartbeat(text, text, bigint, bigint) IS
    'Registers or refreshes a member, acknowledges applied_epoch, and returns its current assignment';

CREATE FUNCTION shard_coordinator.leave(cluster text, member text,
                                        incarnation bigint DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sc_leave'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.leave(text, text, bigint) IS
    'Graceful departure: the member''s work is released and handed on at the next reshard';

CREATE FUNCTION shard_coordinator.configure(
    cluster text,
    heartbeat_interval interval DEFAULT NULL,
    grace_period interval DEFAULT NULL,
    reshard_interval interval DEFAULT NULL,
    max_shards integer DEFAULT NULL,
    clear_max_shards boolean DEFAULT false,
    slots integer[] DEFAULT NULL,
    handover text DEFAULT NULL,
    member_role text DEFAULT NULL,
    admin_role text DEFAULT NULL,
    fence_timeout interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sc_configure'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[], text, text, text, interval) IS
    'Creates a cluster or changes its settings; NULL keeps a setting, clear_max_shards removes the cap, slots => ''{}'' leaves slot mode, handover => exclusive | barrier | immediate, member_role and admin_role name the roles that may join and administer it ('''' removes one), fence_timeout ends fence() transactions that hold up a reshard that long';

-- Live state from shared memory (empty on a standby server, or before the
-- background worker has loaded the tables).
CREATE FUNCTION shard_coordinator._live_members(
    OUT cluster text,
    OUT member text,
    OUT shard integer,
    OUT num_shards integer,
    OUT epoch bigint,
    OUT state text,
    OUT last_heartbeat timestamptz,
    OUT expires_at timestamptz,
    OUT joined_at timestamptz,
    OUT slots integer[],
    OUT target_shard integer,
    OUT target_slots integer[],
    OUT withheld boolean,
    OUT releasing text,
    OUT release_epoch bigint,
    OUT release_until timestamptz,
    OUT acknowledged_epoch bigint,
    OUT incarnation bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sc_live_members'
LANGUAGE C VOLATILE;

CREATE FUNCTION shard_coordinator._live_clusters(
    OUT cluster text,
    OUT heartbeat_interval interval,
    OUT grace_period interval,
    OUT reshard_interval interval,
    OUT max_shards integer,
    OUT epoch bigint,
    OUT num_shards integer,
    OUT members integer,
    OUT active integer,
    OUT standby integer,
    OUT pending integer,
    OUT resharded_at timestamptz,
    OUT slots integer[],
    OUT fenced boolean,
    OUT handover text,
    OUT grant_count integer,
    OUT handover_pending boolean,
    OUT exclusive_since timestamptz,
    OUT grants_held_until timestamptz,
    OUT failover_safe boolean,
    OUT frozen boolean,
    OUT member_role text,
    OUT admin_role text,
    OUT fence_timeout interval,
    OUT dropping boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sc_live_clusters'
LANGUAGE C VOLATILE;

-- The views show shared memory where the background worker runs, and the
-- replicated tables elsewhere (on a standby server).
CREATE VIEW shard_coordinator.members AS
SELECT l.cluster, l.member, l.shard, l.num_shards, l.epoch, l.state,
       l.last_heartbeat, l.expires_at, l.joined_at, l.slots,
       l.target_shard, l.target_slots, l.withheld, l.releasing,
       l.release_epoch, l.release_until, l.acknowledged_epoch, l.incarnation
  FROM shard_coordinator._live_members() AS l
UNION ALL
SELECT m.cluster, m.member,
       CASE WHEN c.slots IS NOT NULL OR m.granted THEN m.shard END,
       CASE WHEN c.slots IS NULL THEN c.grant_count ELSE c.num_shards END,
       GREATEST(m.epoch, c.num_shards_epoch), m.state,
       NULL::timestamptz, NULL::timestamptz, m.joined_at, m.slots,
       m.shard, m.target_slots,
       m.state = 'active' AND (CASE WHEN c.slots IS NULL THEN NOT m.granted
                                    ELSE m.slots IS DISTINCT FROM m.target_slots END),
       (SELECT string_agg(CASE WHEN r.slots IS NULL
                               THEN format('shard %s of %s', r.shard, r.num_shards)
                               ELSE format('slots %s', r.slots) END, '; '
                          ORDER BY r.revoked_epoch)
          FROM shard_coordinator.pending_release r
         WHERE r.cluster = m.cluster AND r.join_seq = m.join_seq),
       (SELECT min(r.revoked_epoch) FROM shard_coordinator.pending_release r
         WHERE r.cluster = m.cluster AND r.join_seq = m.join_seq),
       NULL::timestamptz, NULL::bigint, m.incarnation
  FROM shard_coordinator.member_state AS m
  JOIN shard_coordinator.cluster_state AS c USING (cluster)
 WHERE NOT shard_coordinator._is_live();

COMMENT ON VIEW shard_coordinator.members IS
    'Every member of every cluster: its grant (shard, num_shards, slots), target, what it must release and its liveness';

CREATE VIEW shard_coordinator.clusters AS
SELECT l.cluster, l.heartbeat_interval, l.grace_period, l.reshard_interval,
       l.max_shards, l.epoch, l.num_shards, l.members, l.active, l.standby,
       l.pending, l.resharded_at, l.slots, l.fenced, l.handover,
       l.grant_count, l.handover_pending, l.exclusive_since,
       l.grants_held_until, l.failover_safe, l.frozen, l.member_role,
       l.admin_role, l.fence_timeout, l.dropping
  FROM shard_coordinator._live_clusters() AS l
UNION ALL
SELECT c.cluster, c.heartbeat_interval, c.grace_period, c.reshard_interval,
       c.max_shards, c.epoch, c.num_shards,
       (SELECT count(*) FROM shard_coordinator.member_state m WHERE m.cluster = c.cluster)::integer,
       (SELECT count(*) FROM shard_coordinator.member_state m WHERE m.cluster = c.cluster AND m.state = 'active')::integer,
       (SELECT count(*) FROM shard_coordinator.member_state m WHERE m.cluster = c.cluster AND m.state = 'standby')::integer,
       0,
       c.resharded_at, c.slots, false, c.handover, c.grant_count,
       EXISTS (SELECT FROM shard_coordinator.pending_release r WHERE r.cluster = c.cluster),
       NULL::timestamptz, NULL::timestamptz, c.synchronous, c.frozen,
       c.member_role, c.admin_role, c.fence_timeout, c.dropping
  FROM shard_coordinator.cluster_state AS c
 WHERE NOT shard_coordinator._is_live();

COMMENT ON VIEW shard_coordinator.clusters IS
    'Every cluster with its settings, epoch, member counts and handover state';

CREATE FUNCTION shard_coordinator.fence(cluster text, member text, epoch bigint,
                                        keys integer[])
RETURNS void
AS 'MODULE_PATHNAME', 'sc_fence'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.fence(text, text, bigint, integer[]) IS
    'Like fence(cluster, member, epoch), but checks only these keys (slot keys, or in plain mode keys of jump_hash): a handover of other keys does not fail it';

REVOKE ALL ON FUNCTION
    shard_coordinator.heartbeat(text, text, bigint, bigint),
    shard_coordinator.leave(text, text, bigint),
    shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[], text, text, text, interval),
    shard_coordinator._live_members(),
    shard_coordinator._live_clusters(),
    shard_coordinator.fence(text, text, bigint, integer[]) FROM PUBLIC;
REVOKE ALL ON shard_coordinator.members, shard_coordinator.clusters,
    shard_coordinator.pending_release FROM PUBLIC;

-- What happened (README, "Operations"): cumulative counters per cluster
-- since it was created or the server started, and each cluster's last 16
-- published steps. Shared memory only: empty on a standby server.
CREATE FUNCTION shard_coordinator._live_stats(
    OUT cluster text,
    OUT since timestamptz,
    OUT steps bigint,
    OUT reshards bigint,
    OUT joins bigint,
    OUT leaves bigint,
    OUT expiries bigint,
    OUT evictions bigint,
    OUT revocations bigint,
    OUT handovers bigint,
    OUT handover_avg interval,
    OUT handover_max interval,
    OUT handover_running interval,
    OUT notices bigint,
    OUT fence_waits bigint,
    OUT refused_heartbeats bigint,
    OUT last_step interval,
    OUT longest_step interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sc_live_stats'
LANGUAGE C VOLATILE;

CREATE FUNCTION shard_coordinator._live_history(
    OUT cluster text,
    OUT epoch bigint,
    OUT at timestamptz,
    OUT reasons text[],
    OUT members_told integer,
    OUT members_removed integer,
    OUT duration interval)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sc_live_history'
LANGUAGE C VOLATILE;

CREATE VIEW shard_coordinator.stats AS
SELECT * FROM shard_coordinator._live_stats();

COMMENT ON VIEW shard_coordinator.stats IS
    'Cumulative counters per cluster since it was created or the server started (shared memory; empty on a standby)';

CREATE VIEW shard_coordinator.history AS
SELECT * FROM shard_coordinator._live_history();

COMMENT ON VIEW shard_coordinator.history IS
    'The last 16 published steps of each cluster: epoch, time, why (join, leave, expiry, configure, admin, release, restart), members told and removed, store time';

REVOKE ALL ON FUNCTION shard_coordinator._live_stats(),
    shard_coordinator._live_history() FROM PUBLIC;
REVOKE ALL ON shard_coordinator.stats, shard_coordinator.history FROM PUBLIC;

-- Operator controls (README, "Operations"): granted to nobody; an
-- administrator grants them to the roles that run the fleet.
CREATE FUNCTION shard_coordinator.evict(cluster text, member text,
                                        reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sc_evict'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.evict(text, text, text) IS
    'Removes a member and bans its incarnation; its work is handed on once its promise ends';

CREATE FUNCTION shard_coordinator.freeze(cluster text)
RETURNS void
AS 'MODULE_PATHNAME', 'sc_freeze'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.freeze(text) IS
    'No work moves in the cluster until unfreeze(): joins wait as pending, departures wait';

CREATE FUNCTION shard_coordinator.unfreeze(cluster text)
RETURNS void
AS 'MODULE_PATHNAME', 'sc_unfreeze'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.unfreeze(text) IS
    'Ends freeze(): what waited is done now';

CREATE FUNCTION shard_coordinator.drop_cluster(cluster text)
RETURNS void
AS 'MODULE_PATHNAME', 'sc_drop_cluster'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.drop_cluster(text) IS
    'Removes every member (revoked) and then the cluster: its name, shared memory and rows are freed once nothing is held';

REVOKE ALL ON FUNCTION shard_coordinator.evict(text, text, text),
    shard_coordinator.freeze(text), shard_coordinator.unfreeze(text),
    shard_coordinator.drop_cluster(text) FROM PUBLIC;

-- The grants of the dropped objects, on the new ones (the four-argument
-- fence gets what the three-argument one had).
DO $$
DECLARE
  g record;
BEGIN
  FOR g IN SELECT * FROM shard_coordinator._upgrade_grants WHERE grantee <> 0 LOOP
    IF g.kind = 'function' THEN
      EXECUTE format('GRANT %s ON FUNCTION %s TO %I', g.privilege, g.object,
                     pg_catalog.pg_get_userbyid(g.grantee));
    ELSE
      EXECUTE format('GRANT %s ON %s TO %I', g.privilege, g.object,
                     pg_catalog.pg_get_userbyid(g.grantee));
    END IF;
  END LOOP;
  FOR g IN SELECT * FROM shard_coordinator._upgrade_grants WHERE grantee = 0 LOOP
    IF g.kind = 'function' THEN
      EXECUTE format('GRANT %s ON FUNCTION %s TO PUBLIC', g.privilege, g.object);
    ELSE
      EXECUTE format('GRANT %s ON %s TO PUBLIC', g.privilege, g.object);
    END IF;
  END LOOP;
END $$;
DROP TABLE shard_coordinator._upgrade_grants;
