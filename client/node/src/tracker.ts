// What the registrar knows and what it has told the application: pure,
// synchronous, on an injected clock (unit-tested without a server).
//
// Three assignments are kept apart:
// - `known`: the newest the server has said (heartbeat rows and notices,
//   ordered by epoch);
// - `told`: the newest handed to the listeners (or `lost`);
// - `settled`: the newest whose listeners have returned and whose promises
//   have settled, or that the application acknowledged; its epoch is sent as
//   `applied_epoch` on every heartbeat.
//
// Rules (docs/design.md, "The protocol"):
// - Anything older than the newest epoch seen is ignored (rows and notices
//   can cross: a heartbeat may read the server's memory just before a reshard
//   is published). Equal epochs are accepted: the same assignment, possibly
//   in fuller form.
// - After a reconnect, a row older than the settled epoch is not believed
//   (the work must never go back to it; only a failover that lost reshards
//   does that): it renews no lease, so the member goes `lost` and, once
//   lost, takes what the server says.
// - A successful heartbeat renews the lease: end = clock read just before
//   sending + the row's lease_remaining.
// - Revocation: when a newer assignment no longer holds work that the
//   application may be doing (that of `told`, and of `settled` while a
//   delivery is under way), that work must stop by the lease end held at that
//   moment. A row that shows the revocation renews the lease after the
//   deadline was taken, so it does not extend it. The release is done when
//   an epoch at least as new as the revoking one is settled. A row with
//   `release_within` set and no release known (a key mapping other than jump
//   hash, where the client cannot see it) starts one too.
// - `lost`: at the lease's fence point without a successful heartbeat, or at
//   a release's fence point without its acknowledgement. Only a successful
//   heartbeat (for a lease) or a settled delivery (for a release) ends it.
// - A cluster notice (count and epoch) amends `known` unless the epoch is
//   not newer, the member is removed, nothing was heard on this connection
//   yet, or its shard is not below the new count: then it asks for a
//   heartbeat instead.
// - `removed`: the server dropped the member; nothing is held any more, the
//   registrar heartbeats at once (which registers it anew).

import { keysGivenUp, workInside, workOf } from './grants.js';
import type { Clock } from './clock.js';
import { leaseFrom, type Lease } from './lease.js';
import type { Assignment, Loss, MemberState, Revocation, ShardInfo } from './types.js';

/** A heartbeat row, as read from the server (protocol.ts). */
export interface HeartbeatRow {
  readonly shard: number | null;
  readonly numShards: number;
  readonly epoch: number;
  readonly state: 'pending' | 'active' | 'standby';
  readonly slots: readonly number[] | null;
  readonly heartbeatIntervalMs: number;
  readonly leaseRemainingMs: number;
  readonly releaseWithinMs: number | null;
  readonly acknowledgedEpoch: number | null;
}

/** A notice on the member's channel. */
export interface MemberNotice {
  readonly shard: number | null;
  readonly numShards: number;
  readonly epoch: number;
  readonly state: 'pending' | 'active' | 'standby' | 'removed';
  readonly slots: readonly number[] | null;
  readonly slotsOmitted: boolean;
}

/** What to hand the listeners next. */
export interface Delivery {
  readonly assignment: Assignment;
  readonly revoked: Revocation | null;
  readonly shardChanged: ShardInfo | null;
}

interface Release {
  readonly toEpoch: number;
  readonly deadline: number;
  readonly fenceAt: number;
}

export function sameAssignment(a: Assignment | null, b: Assignment | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.shard !== b.shard || a.numShards !== b.numShards || a.epoch !== b.epoch || a.state !== b.state) {
    return false;
  }
  if (a.slots === null || b.slots === null) return a.slots === b.slots;
  return a.slots.length === b.slots.length && a.slots.every((k, i) => k === b.slots?.[i]);
}

function freeze(a: {
  shard: number | null;
  numShards: number;
  epoch: number;
  state: MemberState;
  slots: readonly number[] | null;
}): Assignment {
  return Object.freeze({
    shard: a.shard,
    numShards: a.numShards,
    epoch: a.epoch,
    state: a.state,
    slots: a.slots === null ? null : Object.freeze([...a.slots]),
  });
}

export class Tracker {
  private heartbeatSeen = false;
  private heardOnConnection = false;
  private newest: number | null = null;
  private floor: number | null = null;
  private known: Assignment | null = null;
  private lease: Lease | null = null;
  private releases: Release[] = [];
  private toldA: Assignment | null = null;
  private settledA: Assignment | null = null;
  private inFlightA: Assignment | null = null;
  private appliedEpoch: number | null = null;
  private lastShard: ShardInfo | null = null;
  private intervalMs: number | null = null;

  constructor(private readonly now: Clock) {}

  // ---- what the registrar reads ----

  /** The epoch to send as `applied_epoch` (null before anything settled). */
  get applied(): number | null {
    return this.appliedEpoch;
  }

  /** The newest assignment handed to the listeners (or `lost`), if any. */
  get told(): Assignment | null {
    return this.toldA;
  }

  /** The newest assignment the server said. */
  get newestKnown(): Assignment | null {
    return this.known;
  }

  /** The delivery under way (listeners not settled yet), if any. */
  get inFlight(): Assignment | null {
    return this.inFlightA;
  }

  /** The shard and count last reported through `shardChanged`, while they hold. */
  get shardInfo(): ShardInfo | null {
    return this.lastShard;
  }

  get currentLease(): Lease | null {
    return this.lease;
  }

  /** The heartbeat interval the server asks for (null before the first row). */
  get heartbeatIntervalMs(): number | null {
    return this.intervalMs;
  }

  /** When tick() must run next (lease or release fence point), or null. */
  nextDeadline(): number | null {
    let at: number | null = null;
    if (this.lease !== null && this.toldA?.state !== 'lost' && this.known?.state !== 'removed') {
      at = this.lease.fenceAt;
    }
    for (const r of this.releases) if (at === null || r.fenceAt < at) at = r.fenceAt;
    return at;
  }

  // ---- what the server said ----

  /** A new connection: notices are heard from scratch; the server's word is the truth again. */
  newConnection(): void {
    this.heardOnConnection = false;
    this.newest = null;
    this.floor = this.toldA !== null && this.toldA.state !== 'lost' ? this.appliedEpoch : null;
  }

  /** A heartbeat sent at `sentAt` (clock read just before sending) returned `row`. */
  heartbeat(row: HeartbeatRow, sentAt: number): void {
    this.heartbeatSeen = true;
    this.heardOnConnection = true;
    this.intervalMs = row.heartbeatIntervalMs;
    if (this.floor !== null && row.epoch < this.floor) return; // not believed: no renewal either
    this.floor = null;
    if (this.newest === null || row.epoch >= this.newest) {
      this.take(
        freeze({ shard: row.shard, numShards: row.numShards, epoch: row.epoch, state: row.state, slots: row.slots }),
      );
    }
    if (
      row.releaseWithinMs !== null &&
      this.releases.length === 0 &&
      (this.appliedEpoch === null || row.epoch > this.appliedEpoch) &&
      this.holdsWork()
    ) {
      this.addRelease(row.epoch);
    }
    // Renewed after the deadlines above were taken from the old lease.
    this.lease = leaseFrom(sentAt, row.leaseRemainingMs, row.heartbeatIntervalMs);
  }

  /** A notice on the member's channel. Returns true when a heartbeat should be sent at once. */
  notice(n: MemberNotice): boolean {
    if (n.slotsOmitted) return true; // the row has the keys
    if (this.newest !== null && n.epoch < this.newest) return false;
    this.heardOnConnection = true;
    this.take(freeze({ shard: n.shard, numShards: n.numShards, epoch: n.epoch, state: n.state, slots: n.slots }));
    if (n.state === 'removed') {
      this.lease = null;
      this.releases = [];
      return true;
    }
    return false;
  }

  /** A notice on the cluster's channel. Returns true when a heartbeat should be sent at once. */
  clusterNotice(epoch: number, numShards: number): boolean {
    if (this.newest !== null && epoch <= this.newest) return false;
    const k = this.known;
    if (k === null || k.state === 'removed') return false;
    if (!this.heardOnConnection || (k.shard !== null && k.shard >= numShards)) return true;
    this.take(freeze({ ...k, numShards, epoch }));
    return false;
  }

  // ---- the clock ----

  /** Reports the loss of all work if a fence point has passed. */
  tick(): Loss | null {
    const now = this.now();
    let reason: Loss['reason'] | null = null;
    if (
      this.lease !== null &&
      now >= this.lease.fenceAt &&
      this.toldA?.state !== 'lost' &&
      this.known?.state !== 'removed'
    ) {
      reason = 'lease';
    } else if (this.releases.some((r) => now >= r.fenceAt)) {
      this.releases = this.releases.filter((r) => now < r.fenceAt);
      if (this.toldA?.state !== 'lost' && this.holdsWork()) reason = 'release';
    }
    if (reason === null) return null;
    const held = this.toldA ?? this.known;
    const base = this.known ?? held;
    const lost = freeze({
      shard: null,
      numShards: base?.numShards ?? 0,
      epoch: base?.epoch ?? 0,
      state: 'lost',
      slots: null,
    });
    this.toldA = lost;
    this.settledA = null;
    this.releases = [];
    this.floor = null; // the work was dropped: the server's word goes again
    this.lastShard = null;
    return { reason, assignment: held ?? lost };
  }

  // ---- deliveries ----

  /** The assignment to hand the listeners next, or null (nothing new, or a delivery is under way). */
  pending(): Assignment | null {
    if (!this.heartbeatSeen || this.known === null || this.inFlightA !== null) return null;
    if (this.toldA?.state === 'lost') {
      // Only a heartbeat that renewed the lease ends `lost`.
      if (this.lease === null || this.now() >= this.lease.fenceAt) return null;
    }
    if (sameAssignment(this.toldA, this.known)) return null;
    return this.known;
  }

  /** The listeners are being given `a` (from pending()). */
  begin(a: Assignment, waitForSettle: boolean): Delivery {
    const from = this.toldA !== null && this.toldA.state !== 'lost' ? this.toldA : null;
    const fromWork = workOf(from);
    const toWork = workOf(a);
    let revoked: Revocation | null = null;
    if (from !== null && !workInside(fromWork, toWork)) {
      const now = this.now();
      const relevant = this.releases.filter((r) => r.toEpoch <= a.epoch);
      const deadline =
        relevant.length > 0 ? Math.min(...relevant.map((r) => r.deadline)) : (this.lease?.end ?? now);
      const msLeft = Math.max(0, deadline - now);
      revoked = Object.freeze({
        shard: fromWork.kind === 'plain' ? fromWork.shard : null,
        numShards: fromWork.kind === 'plain' ? fromWork.count : from.numShards,
        slots: fromWork.kind === 'slots' ? Object.freeze(keysGivenUp(fromWork, toWork) ?? []) : null,
        epoch: from.epoch,
        newEpoch: a.epoch,
        msLeft,
        deadline: new Date(Date.now() + msLeft),
      });
    }
    let shardChanged: ShardInfo | null = null;
    if (a.state === 'active' && a.shard !== null) {
      const info = Object.freeze({ shard: a.shard, numShards: a.numShards });
      if (this.lastShard === null || this.lastShard.shard !== info.shard || this.lastShard.numShards !== info.numShards) {
        shardChanged = info;
      }
      this.lastShard = info;
    } else {
      this.lastShard = null;
    }
    this.toldA = a;
    if (waitForSettle) this.inFlightA = a;
    return { assignment: a, revoked, shardChanged };
  }

  /**
   * The listeners of the delivery of `epoch` have settled, or the
   * application acknowledged `epoch`. Returns true when the applied epoch
   * moved (the registrar then heartbeats at once: the acknowledgement).
   */
  settle(epoch: number): boolean {
    if (this.inFlightA !== null && this.inFlightA.epoch <= epoch) this.inFlightA = null;
    const told = this.toldA;
    if (told === null || epoch > told.epoch) return false; // not given (yet): ignored
    if (this.appliedEpoch !== null && epoch <= this.appliedEpoch) return false;
    this.appliedEpoch = epoch;
    if (told.state !== 'lost' && told.epoch === epoch) this.settledA = told;
    this.releases = this.releases.filter((r) => r.toEpoch > epoch);
    return true;
  }

  // ---- inside ----

  // The work the application may be doing: that of the last assignment told
  // and, while its delivery is under way, of the one settled before.
  private heldWork(): Assignment[] {
    if (this.toldA === null || this.toldA.state === 'lost') return [];
    const held = [this.toldA];
    if (this.inFlightA !== null && this.settledA !== null && this.settledA !== this.toldA) held.push(this.settledA);
    return held;
  }

  private holdsWork(): boolean {
    return this.heldWork().some((a) => workOf(a).kind !== 'none');
  }

  private take(a: Assignment): void {
    if (sameAssignment(a, this.known)) {
      this.newest = a.epoch;
      return;
    }
    const toWork = workOf(a);
    if (this.heldWork().some((h) => !workInside(workOf(h), toWork))) this.addRelease(a.epoch);
    this.known = a;
    this.newest = a.epoch;
  }

  private addRelease(toEpoch: number): void {
    const now = this.now();
    const end = this.lease?.end ?? now;
    const fenceAt = Math.min(this.lease?.fenceAt ?? now, end);
    this.releases.push({ toEpoch, deadline: end, fenceAt });
  }
}
