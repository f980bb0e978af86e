// Which work an assignment holds, and when one holds everything another did.
//
// Plain mode: the work of (shard s, count n) is the keys x with
// jumpHash(x, n) = s. Jump hash nests: as the count grows a key either stays
// in its shard or moves to a new, higher one. Hence (a, n) holds every key of
// (b, m) exactly when m >= n, a == b and a < n, or n == 1 (every key): a
// member keeps all its work when the count shrinks and it keeps its shard,
// and gives some up whenever the count grows or its shard changes.
//
// Slot mode: the work is the set of slot keys.

import type { Assignment } from './types.js';

/** The work an assignment holds. */
export type Work =
  | { readonly kind: 'none' }
  | { readonly kind: 'plain'; readonly shard: number; readonly count: number }
  | { readonly kind: 'slots'; readonly keys: readonly number[] };

const NONE: Work = { kind: 'none' };

export function workOf(a: Assignment | null): Work {
  if (a === null || a.state !== 'active') return NONE;
  if (a.slots !== null) return a.slots.length > 0 ? { kind: 'slots', keys: a.slots } : NONE;
  if (a.shard !== null && a.numShards > 0) return { kind: 'plain', shard: a.shard, count: a.numShards };
  return NONE;
}

/** Every piece of `inner` is in `outer`. */
export function workInside(inner: Work, outer: Work): boolean {
  if (inner.kind === 'none') return true;
  if (outer.kind === 'none') return false;
  if (inner.kind === 'slots') {
    if (outer.kind !== 'slots') return false;
    const have = new Set(outer.keys);
    return inner.keys.every((k) => have.has(k));
  }
  if (outer.kind !== 'plain') return false;
  if (outer.count === 1) return true;
  if (inner.count < outer.count) return false;
  return inner.shard === outer.shard && inner.shard < outer.count;
}

/** The slot keys of `from` that `to` does not hold (slot mode), ascending. */
export function keysGivenUp(from: Work, to: Work): number[] | null {
  if (from.kind !== 'slots') return null;
  const kept = to.kind === 'slots' ? new Set(to.keys) : new Set<number>();
  return from.keys.filter((k) => !kept.has(k));
}
