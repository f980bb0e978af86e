// The SQL the registrar sends, and what the answers and notification
// payloads mean (sql/shard_coordinator--1.1.sql; README, "Notifications").
// No I/O here.

import type { HeartbeatRow, MemberNotice } from './tracker.js';

export const CHANNELS_SQL =
  'SELECT shard_coordinator.channel($1, $2) AS member_channel, shard_coordinator.channel($1) AS cluster_channel';
export const MEMBER_CHANNEL_SQL = 'SELECT shard_coordinator.channel($1, $2) AS member_channel';

// Intervals as seconds (float8): lease_remaining is the promise left,
// measured by the server after the heartbeat was stamped.
export const HEARTBEAT_SQL =
  'SELECT h.shard, h.num_shards, h.epoch::text AS epoch, h.state, h.slots, ' +
  'extract(epoch FROM h.heartbeat_interval)::float8 AS heartbeat_interval_s, ' +
  'extract(epoch FROM h.lease_remaining)::float8 AS lease_remaining_s, ' +
  'extract(epoch FROM h.release_within)::float8 AS release_within_s, ' +
  'h.acknowledged_epoch::text AS acknowledged_epoch ' +
  'FROM shard_coordinator.heartbeat($1, $2, $3::bigint, $4::bigint) AS h';

export const LEAVE_SQL = 'SELECT shard_coordinator.leave($1, $2, $3::bigint) AS known';

export const READ_SETTINGS_SQL =
  'SELECT extract(epoch FROM heartbeat_interval)::float8 AS heartbeat_interval, ' +
  'extract(epoch FROM grace_period)::float8 AS grace_period, ' +
  'extract(epoch FROM reshard_interval)::float8 AS reshard_interval ' +
  'FROM shard_coordinator.clusters WHERE cluster = $1';

export const CONFIGURE_SQL =
  'SELECT shard_coordinator.configure($1, ' +
  'heartbeat_interval => make_interval(secs => $2::float8), ' +
  'grace_period => make_interval(secs => $3::float8), ' +
  'reshard_interval => make_interval(secs => $4::float8))';

export const FENCE_SQL = 'SELECT shard_coordinator.fence($1, $2, $3::bigint)';
export const FENCE_KEYS_SQL = 'SELECT shard_coordinator.fence($1, $2, $3::bigint, $4::integer[])';

export const IS_STANDBY_SQL = 'SELECT pg_is_in_recovery() AS standby';

/** SQLSTATEs the registrar acts on. */
export const SQLSTATE = {
  undefinedFunction: '42883',
  insufficientPrivilege: '42501',
  undefinedTable: '42P01',
  readOnlyTransaction: '25006',
  fenceFailed: 'SC001',
} as const;

/** `LISTEN` for each channel (quoted), in one simple query. */
export function listenSql(channels: readonly string[]): string {
  return channels.map((c) => `LISTEN "${c.replace(/"/g, '""')}"`).join('; ');
}

function epochOf(value: unknown, what: string): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`the server's ${what} is not understood: ${String(value)}`);
  }
  return n;
}

function intOrNull(value: unknown, what: string): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new Error(`the server's ${what} is not understood: ${String(value)}`);
  }
  return value;
}

function slotsOf(value: unknown): number[] | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value) || !value.every((k) => Number.isInteger(k))) {
    throw new Error(`the server's slots are not understood: ${JSON.stringify(value)}`);
  }
  return [...(value as number[])].sort((a, b) => a - b);
}

const ROW_STATES = new Set(['pending', 'active', 'standby']);
const NOTICE_STATES = new Set(['pending', 'active', 'standby', 'removed']);

/** The heartbeat row (HEARTBEAT_SQL) as a typed value; throws if it is not understood. */
export function readHeartbeatRow(row: Record<string, unknown> | undefined): HeartbeatRow {
  if (row === undefined) throw new Error('the heartbeat returned no row');
  const state = row['state'];
  if (typeof state !== 'string' || !ROW_STATES.has(state)) {
    throw new Error(`the server's member state is not understood: ${String(state)}`);
  }
  const seconds = (key: string): number | null => {
    const v = row[key];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`the server's ${key} is not understood`);
    return v;
  };
  const interval = seconds('heartbeat_interval_s');
  const lease = seconds('lease_remaining_s');
  if (interval === null || lease === null) {
    throw new Error('the heartbeat row has no interval or lease: is the extension at version 1.1?');
  }
  const release = seconds('release_within_s');
  const acked = row['acknowledged_epoch'];
  return {
    shard: intOrNull(row['shard'], 'shard'),
    numShards: intOrNull(row['num_shards'], 'num_shards') ?? 0,
    epoch: epochOf(row['epoch'], 'epoch'),
    state: state as HeartbeatRow['state'],
    slots: slotsOf(row['slots']),
    heartbeatIntervalMs: interval * 1000,
    leaseRemainingMs: lease * 1000,
    releaseWithinMs: release === null ? null : release * 1000,
    acknowledgedEpoch: acked === null || acked === undefined ? null : epochOf(acked, 'acknowledged epoch'),
  };
}

export type Notification =
  | { readonly kind: 'member'; readonly notice: MemberNotice }
  | { readonly kind: 'cluster'; readonly epoch: number; readonly numShards: number }
  | { readonly kind: 'ignored'; readonly why: string | null };

function parseJsonObject(payload: string | undefined): Record<string, unknown> | null {
  if (payload === undefined) return null;
  try {
    const v: unknown = JSON.parse(payload);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * What a notification on one of the member's two channels says. Channel
 * names are hashed, so the payload's names are checked too.
 */
export function readNotification(
  channel: string,
  payload: string | undefined,
  names: { cluster: string; member: string; memberChannel: string; clusterChannel: string | null },
): Notification {
  const isMember = channel === names.memberChannel;
  const isCluster = names.clusterChannel !== null && channel === names.clusterChannel;
  if (!isMember && !isCluster) return { kind: 'ignored', why: null };
  const p = parseJsonObject(payload);
  const bad = (why: string): Notification => ({
    kind: 'ignored',
    why: `ignored a notification that is not understood (${why}): ${String(payload).slice(0, 200)}`,
  });
  if (p === null) return bad('not a JSON object');
  if (p['cluster'] !== names.cluster) return { kind: 'ignored', why: null };
  try {
    if (isMember) {
      if (p['member'] !== names.member) return { kind: 'ignored', why: null };
      const state = p['state'];
      if (typeof state !== 'string' || !NOTICE_STATES.has(state)) return bad('state');
      return {
        kind: 'member',
        notice: {
          shard: intOrNull(p['shard'], 'shard'),
          numShards: intOrNull(p['num_shards'], 'num_shards') ?? 0,
          epoch: epochOf(p['epoch'], 'epoch'),
          state: state as MemberNotice['state'],
          slots: slotsOf(p['slots']),
          slotsOmitted: p['slots_omitted'] === true,
        },
      };
    }
    const numShards = intOrNull(p['num_shards'], 'num_shards');
    if (numShards === null) return bad('num_shards');
    return { kind: 'cluster', epoch: epochOf(p['epoch'], 'epoch'), numShards };
  } catch (err) {
    return bad(err instanceof Error ? err.message : String(err));
  }
}
