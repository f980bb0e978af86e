-- shard_coordinator 1.0: install script.
--
-- Public contract: the functions heartbeat, leave, channel, configure and the
-- views members and clusters. The tables cluster_state and member_state are
-- the durable truth; the background worker is their only writer (see
-- README.md, "How it works").

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
    num_shards         integer     NOT NULL DEFAULT 0 CHECK (num_shards >= 0),
    -- The epoch at which num_shards last changed: every member's epoch is at
    -- least this (member rows are rewritten only when they themselves move).
    num_shards_epoch   bigint      NOT NULL DEFAULT 0
                       CHECK (num_shards_epoch >= 0 AND num_shards_epoch <= epoch),
    resharded_at       timestamptz,
    -- Fixed slot set (ascending keys), NULL in plain index-and-count mode.
    slots              integer[]
);

COMMENT ON TABLE shard_coordinator.cluster_state IS
    'Durable cluster settings and epochs; written only by the shard_coordinator background worker';

CREATE TABLE shard_coordinator.member_state (
    cluster   text        NOT NULL
              REFERENCES shard_coordinator.cluster_state (cluster) ON DELETE CASCADE,
    member    text        NOT NULL,
    state     text        NOT NULL CHECK (state IN ('active', 'standby')),
    shard     integer     CHECK (shard >= 0),
    -- Epoch of the member's own last change (state, shard, slots); its
    -- current epoch is the greater of this and cluster_state.num_shards_epoch.
    epoch     bigint      NOT NULL CHECK (epoch >= 1),
    join_seq  bigint      NOT NULL,
    joined_at timestamptz NOT NULL,
    slots     integer[],  -- this member's keys in slot mode
    PRIMARY KEY (cluster, member),
    -- The safety invariant, enforced by the database as well as the algorithm.
    -- Deferred because a reshard moves shards between members in one statement.
    CONSTRAINT member_state_one_member_per_shard
        UNIQUE (cluster, shard) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT member_state_shard_iff_active
        CHECK ((state = 'active') = (shard IS NOT NULL))
);

COMMENT ON TABLE shard_coordinator.member_state IS
    'Durable assignments of active and standby members; written only by the shard_coordinator background worker';

-- pg_dump keeps the contents of both tables.
SELECT pg_catalog.pg_extension_config_dump('shard_coordinator.cluster_state', '');
SELECT pg_catalog.pg_extension_config_dump('shard_coordinator.member_state', '');

CREATE FUNCTION shard_coordinator.heartbeat(
    cluster text,
    member text,
    OUT shard integer,
    OUT num_shards integer,
    OUT epoch bigint,
    OUT state text,
    OUT channel text,
    OUT heartbeat_interval interval,
    OUT expires_at timestamptz,
    OUT slots integer[])
RETURNS record
AS 'MODULE_PATHNAME', 'sc_heartbeat'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.heartbeat(text, text) IS
    'Registers or refreshes a member and returns its current assignment';

CREATE FUNCTION shard_coordinator.leave(cluster text, member text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sc_leave'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.leave(text, text) IS
    'Graceful departure: the member''s shard is handed on at the next reshard';

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
    'The LISTEN channel on which every member of a cluster is told of a new num_shards';

CREATE FUNCTION shard_coordinator.configure(
    cluster text,
    heartbeat_interval interval DEFAULT NULL,
    grace_period interval DEFAULT NULL,
    reshard_interval interval DEFAULT NULL,
    max_shards integer DEFAULT NULL,
    clear_max_shards boolean DEFAULT false,
    slots integer[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sc_configure'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION shard_coordinator.configure(text, interval, interval, interval, integer, boolean, integer[]) IS
    'Creates a cluster or changes its settings; NULL keeps a setting, clear_max_shards removes the cap, slots => ''{}'' leaves slot mode';

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
    OUT slots integer[])
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
    OUT fenced boolean)
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
       l.last_heartbeat, l.expires_at, l.joined_at, l.slots
  FROM shard_coordinator._live_members() AS l
UNION ALL
SELECT m.cluster, m.member, m.shard,
       c.num_shards,
       GREATEST(m.epoch, c.num_shards_epoch), m.state,
       NULL::timestamptz, NULL::timestamptz, m.joined_at, m.slots
  FROM shard_coordinator.member_state AS m
  JOIN shard_coordinator.cluster_state AS c USING (cluster)
 WHERE NOT shard_coordinator._is_live();

COMMENT ON VIEW shard_coordinator.members IS
    'Every member of every cluster with its assignment and liveness';

CREATE VIEW shard_coordinator.clusters AS
SELECT l.cluster, l.heartbeat_interval, l.grace_period, l.reshard_interval,
       l.max_shards, l.epoch, l.num_shards, l.members, l.active, l.standby,
       l.pending, l.resharded_at, l.slots, l.fenced
  FROM shard_coordinator._live_clusters() AS l
UNION ALL
SELECT c.cluster, c.heartbeat_interval, c.grace_period, c.reshard_interval,
       c.max_shards, c.epoch, c.num_shards,
       (SELECT count(*) FROM shard_coordinator.member_state m WHERE m.cluster = c.cluster)::integer,
       (SELECT count(*) FROM shard_coordinator.member_state m WHERE m.cluster = c.cluster AND m.state = 'active')::integer,
       (SELECT count(*) FROM shard_coordinator.member_state m WHERE m.cluster = c.cluster AND m.state = 'standby')::integer,
       0,
       c.resharded_at, c.slots, false
  FROM shard_coordinator.cluster_state AS c
 WHERE NOT shard_coordinator._is_live();

COMMENT ON VIEW shard_coordinator.clusters IS
    'Every cluster with its settings, epoch and member counts';

-- Nothing is granted to PUBLIC: see README.md, "Privileges", for the GRANT
-- recipe that gives an application role what a worker needs.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA shard_coordinator FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA shard_coordinator FROM PUBLIC;

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

REVOKE ALL ON FUNCTION shard_coordinator.fence(text, text, bigint) FROM PUBLIC;
-- Pure functions of their arguments: anyone with USAGE on the schema.
GRANT EXECUTE ON FUNCTION shard_coordinator.jump_hash(bigint, integer),
                          shard_coordinator.jump_hash(text, integer) TO PUBLIC;
