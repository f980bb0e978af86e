// shard-coordinator: the Node.js client of the shard_coordinator PostgreSQL
// extension.

export { ShardRegistrar } from './registrar.js';
export type { PoolLike, Queryable, ShardRegistrarOptions, StopOptions } from './registrar.js';
export type {
  Assignment,
  Loss,
  MemberState,
  Revocation,
  ShardInfo,
  ShardRegistrarEvents,
} from './types.js';
export type { CancelablePromise, EmittedOptions } from './emitted.js';
export type { Logger } from './log.js';
export { jumpHash } from './jump-hash.js';
export { parseConnectionString } from './conninfo.js';
export type { ParsedConnectionString } from './conninfo.js';
export { NoServerError } from './connect.js';

/** The SQLSTATE of a failed `shard_coordinator.fence()`: the assignment changed; roll back and stop. */
export const FENCE_FAILED = 'SC001';

/** True for the error of a fence that failed because the assignment changed. */
export function isFenceError(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === FENCE_FAILED;
}
