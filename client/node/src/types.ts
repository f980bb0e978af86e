// The values the registrar reports, and the events it emits.

/**
 * Where a member stands:
 * - `pending`: registered, not placed yet (the next reshard places it);
 * - `active`: placed; `shard` (and in slot mode `slots`) is the work it may
 *   do now, or null while that work is still being released by its previous
 *   holder;
 * - `standby`: over the cluster's `max_shards` (or slot count): no work, it
 *   takes over when an active member goes;
 * - `removed`: the server dropped the member (it expired or left); the
 *   registrar registers it again at once;
 * - `lost`: the lease ran out without a successful heartbeat, or work that
 *   was revoked was not released in time: stop all work now.
 */
export type MemberState = 'pending' | 'active' | 'standby' | 'removed' | 'lost';

/** A member's assignment, from its heartbeat rows and notifications. */
export interface Assignment {
  /** The shard it may work on now (`0 .. numShards-1`); null unless active with its work granted. */
  readonly shard: number | null;
  /**
   * Plain mode: the number of shards (its keys are those with
   * `jumpHash(key, numShards) === shard`). Slot mode: the active members.
   */
  readonly numShards: number;
  /** The epoch of this assignment: pass it to `fence()`. */
  readonly epoch: number;
  readonly state: MemberState;
  /** Slot mode: the slot keys it may work on now (ascending); null otherwise. */
  readonly slots: readonly number[] | null;
}

/** What the predecessor's `shardChanged` event and `shardInfo()` give. */
export interface ShardInfo {
  readonly shard: number;
  readonly numShards: number;
}

/** Work the member must stop (the `revoked` event). */
export interface Revocation {
  /** The shard of the work given up (plain mode), or null. */
  readonly shard: number | null;
  /** The shard count of the work given up (plain mode). */
  readonly numShards: number;
  /** Slot mode: the keys given up; null in plain mode. */
  readonly slots: readonly number[] | null;
  /** The epoch of the assignment the work was done under. */
  readonly epoch: number;
  /** The epoch of the new assignment, which no longer holds that work. */
  readonly newEpoch: number;
  /**
   * Milliseconds left, when the event was emitted, to stop the work: the
   * member's lease end when it learned of the revocation (heartbeats that
   * succeed later do not move it). Past that the server may hand the work on.
   */
  readonly msLeft: number;
  /** The same deadline on the wall clock, for logs. */
  readonly deadline: Date;
}

/** Why all work must stop (the `lost` event). */
export interface Loss {
  /**
   * `lease`: no heartbeat succeeded in time, the server may expire the
   * member; `release`: revoked work was not acknowledged before its
   * deadline (a listener had not returned, or its promise had not settled).
   */
  readonly reason: 'lease' | 'release';
  /** The assignment that held the work. */
  readonly assignment: Assignment;
}

export interface ShardRegistrarEvents {
  /** The predecessor's event: the shard or the count changed (never emitted for "no shard"). */
  shardChanged: [ShardInfo];
  /** Every change of the member's assignment, including its state. */
  assignment: [Assignment];
  /** Work held until now is no longer the member's: stop it (before `msLeft` runs out). */
  revoked: [Revocation];
  /** Stop all work now (see `Loss`). */
  lost: [Loss];
  error: [Error];
}
