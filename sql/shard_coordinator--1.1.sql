-- shard_coordinator 1.1: install script.
--
-- Public contract: the functions heartbeat, leave, channel, configure, fence,
-- jump_hash and the views members and clusters. The tables cluster_state,
-- member_state and pending_release are the durable truth; the background
-- worker is their only writer (see README.md, "How it works", and
-- docs/design.md).

\echo Use "CREATE EXTENSION shard_coordinator" to load this file. \quit

-- Refuses to install unless the library was preloaded and this is the
-- database named by shard_coordinator.database; also clears any shared
-- memory left by an earlier (dropped) installation.
CREATE FUNCTION shard_coordinator._install_check()
RETURNS void
AS 'MODULE_PATHNAME', 'sc_install_check'
LANGUAGE C VOLATILE;

SELECT shard_coordinator._install_check();

CREATE TABLE shard_coordinator.cluster_state (
    cluster            text        PRIMARY KEY,
    heartbeat_interval interval    NOT NULL,
    grace_period       interval    NOT NULL,
    reshard_interval   interval    NOT NULL,
    max_shards         integer     CHECK (max_shards >= 1),
    epoch              bigint      NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    -- Active members (targets).
    num_shards         integer     NOT NULL DEFAULT 0 CHECK (num_shards >= 0),
    -- The epoch at which the count members see last changed (plain mode:
    -- grant_count; slot mode: num_shards): every member's epoch is at least
    -- this (member rows are rewritten only when they themselves change).
    num_shards_epoch   bigint      NOT NULL DEFAULT 0
                       CHECK (num_shards_epoch >= 0 AND num_shards_epoch <= epoch),
    resharded_at       timestamptz,
    -- Fixed slot set (ascending keys, also keys on their way out), NULL in
    -- plain mode.
    slots              integer[],
    -- A key set configure() asked for, not applied yet ('{}': leave slot
    -- mode); NULL: none.
    pending_slots      integer[],
    -- exclusive: work goes to a member only after its holder released it;
    -- barrier: the same for key mappings other than jump hash; immediate:
    -- at once.
    handover           text        NOT NULL DEFAULT 'exclusive'
                       CHECK (handover IN ('exclusive', 'barrier', 'immediate')),
    -- Plain mode: the count of every grant (members work on the keys with
    -- jump_hash(key, grant_count) = shard).
    grant_count        integer     NOT NULL DEFAULT 0 CHECK (grant_count >= 0),
    -- The longest lease ever promised: after a restart nothing is released
    -- or expired before this long from the start.
    max_lease          interval    NOT NULL DEFAULT '0',
    -- The timeline of the server that stored this row, and whether that
    -- store was synchronously replicated (failover: see README).
    timeline           integer     NOT NULL DEFAULT 1,
    synchronous        boolean     NOT NULL DEFAULT false,
    -- freeze(): no work moves until unfreeze().
    frozen             boolean     NOT NULL DEFAULT false,
    -- The roles whose members may join (heartbeat, leave, fence) and
    -- administer (configure, evict, freeze) the cluster; NULL: whoever may
    -- execute the function (README, "Access per cluster").
    member_role        text,
    admin_role         text,
    -- A reshard held up this long by fence() transactions cancels them,
    -- twice as long terminates them; 0: never.
    fence_timeout      interval    NOT NULL DEFAULT '0',
    -- drop_cluster() was called: the row goes once nothing is held.
    dropping           boolean     NOT NULL DEFAULT false,
    -- configure() made or changed it: never removed for being empty
    -- (shard_coordinator.empty_cluster_timeout).
    configured         boolean     NOT NULL DEFAULT false
);

COMMENT ON TABLE shard_coordinator.cluster_state IS
    'Durable cluster settings and epochs; written only by the shard_coordinator background worker';

CREATE TABLE shard_coordinator.member_state (
    cluster      text        NOT NULL
                 REFERENCES shard_coordinator.cluster_state (cluster) ON DELETE CASCADE,
    member       text        NOT NULL,
    -- Its target: where the assignment algorithm places it.
    state        text        NOT NULL CHECK (state IN ('active', 'standby')),
    shard        integer     CHECK (shard >= 0),
    -- Epoch of the member's own last change (state, shard, grant, keys);
    -- its current epoch is the greater of this and
    -- cluster_state.num_shards_epoch.
    epoch        bigint      NOT NULL CHECK (epoch >= 1),
    join_seq     bigint      NOT NULL,
    joined_at    timestamptz NOT NULL,
    -- Slot mode: the keys granted to it (it may work on them now).
    slots        integer[],
    -- Plain mode: it holds its target shard's keys (at the cluster's
    -- grant_count); false while they are withheld.
    granted      boolean     NOT NULL DEFAULT true,
    -- Slot mode: its target keys.
    target_slots integer[],
    -- The incarnation of the process that holds the name (its heartbeats'
    -- last), NULL: none sent.
    incarnation  bigint,
    PRIMARY KEY (cluster, member),
    -- The safety invariant of targets, enforced by the database as well as
    -- the algorithm. Deferred because a reshard moves shards between
    -- members in one statement.
    CONSTRAINT member_state_one_member_per_shard
        UNIQUE (cluster, shard) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT member_state_shard_iff_active
        CHECK ((state = 'active') = (shard IS NOT NULL))
);

COMMENT ON TABLE shard_coordinator.member_state IS
    'Durable targets and grants of active and standby members; written only by the shard_coordinator background worker';

-- Work revoked from a member and not released yet (exclusive handover):
-- stored in the transaction that revoked it, deleted once released. After
-- a restart each is released by the member's acknowledgement or one full
-- lease (cluster_state.max_lease) after the start.
CREATE TABLE shard_coordinator.pending_release (
    cluster        text    NOT NULL
                   REFERENCES shard_coordinator.cluster_state (cluster) ON DELETE CASCADE,
    join_seq       bigint  NOT NULL,  -- the member's registration number
    member         text    NOT NULL,
    revoked_epoch  bigint  NOT NULL,
    -- Plain mode: the keys with jump_hash(key, num_shards) = shard.
    shard          integer,
    num_shards     integer,
    -- Slot mode: these keys.
    slots          integer[],
    PRIMARY KEY (cluster, join_seq, revoked_epoch),
    CHECK ((slots IS NULL) = (num_shards IS NOT NULL))
);

COMMENT ON TABLE shard_coordinator.pending_release IS
    'Work revoked from members and not released yet; written only by the shard_coordinator background worker';

-- pg_dump keeps the contents of the tables.
SELECT pg_catalog.pg_extension_config_dump('shard_coordinator.cluster_state', '');
SELECT pg_catalog.pg_extension_config_dump('shard_coordinator.member_state', '');
SELECT pg_catalog.pg_extension_config_dump('shard_coordinator.pending_release', '');

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

CREATE FUNCTION shard_coordinator.channel(cluster text, member text)
RETURNS text
AS 'MODULE_PATHNAME', 'sc_channel'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION shard_coordinator.channel(text, text) IS
    'The LISTEN channel on which a member is told of its assignment changes';

CREATE FUNCTION shard_coordinator.channel(cluster text)
RETURNS text
AS 'MODULE_PATHNAME', 'sc_cluster_channel'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION shard_coordinator.channel(text) IS
    'The LISTEN channel on which every member of a cluster is told of a new count';

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

CREATE FUNCTION shard_coordinator._is_live()
RETURNS boolean
AS 'MODULE_PATHNAME', 'sc_is_live'
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

-- Nothing is granted to PUBLIC: see README.md, "Privileges", for the GRANT
-- recipe that gives an application role what a worker needs.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA shard_coordinator FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA shard_coordinator FROM PUBLIC;

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

-- Key -> shard helpers (Lamping and Veach's jump consistent hash).
CREATE FUNCTION shard_coordinator.jump_hash(key bigint, buckets integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'sc_jump_hash_bigint'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION shard_coordinator.jump_hash(bigint, integer) IS
    'Jump consistent hash of a key into 0 .. buckets-1';

CREATE FUNCTION shard_coordinator.jump_hash(key text, buckets integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'sc_jump_hash_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION shard_coordinator.jump_hash(text, integer) IS
    'Jump consistent hash of the 64-bit FNV-1a hash of the text''s bytes';

-- Fencing: inside the worker's own transaction, before it commits work done
-- under the assignment it received at `epoch`.
CREATE FUNCTION shard_coordinator.fence(cluster text, member text, epoch bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'sc_fence'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.fence(text, text, bigint) IS
    'Fails (SQLSTATE SC001) unless the member''s assignment is still the one of epoch; then holds reshards of the cluster until the transaction ends';

CREATE FUNCTION shard_coordinator.fence(cluster text, member text, epoch bigint,
                                        keys integer[])
RETURNS void
AS 'MODULE_PATHNAME', 'sc_fence'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.fence(text, text, bigint, integer[]) IS
    'Like fence(cluster, member, epoch), but checks only these keys (slot keys, or in plain mode keys of jump_hash): a handover of other keys does not fail it';

REVOKE ALL ON FUNCTION shard_coordinator.fence(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION shard_coordinator.fence(text, text, bigint, integer[]) FROM PUBLIC;
-- Pure functions of their arguments: anyone with USAGE on the schema.
GRANT EXECUTE ON FUNCTION shard_coordinator.jump_hash(bigint, integer),
                          shard_coordinator.jump_hash(text, integer) TO PUBLIC;
