// The tracker on a fake clock: epochs, cluster notices, the lease,
// revocations and their deadlines, deliveries and acknowledgements.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { workInside, type Work } from '../../src/grants.js';
import { leaseFrom, safetyMargin } from '../../src/lease.js';
import { Tracker, type HeartbeatRow } from '../../src/tracker.js';

function fakeClock(start = 1000): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

// heartbeat 1 s, lease 4 s (grace 3 s).
function row(over: Partial<HeartbeatRow>): HeartbeatRow {
  return {
    shard: null,
    numShards: 0,
    epoch: 0,
    state: 'pending',
    slots: null,
    heartbeatIntervalMs: 1000,
    leaseRemainingMs: 4000,
    releaseWithinMs: null,
    acknowledgedEpoch: null,
    ...over,
  };
}

const active = (
  shard: number,
  numShards: number,
  epoch: number,
): { shard: number; numShards: number; epoch: number; state: 'active' } => ({
  shard,
  numShards,
  epoch,
  state: 'active',
});

// Delivers whatever is pending and settles it at once (listeners that return).
function deliverAll(t: Tracker): ReturnType<Tracker['begin']>[] {
  const out = [];
  for (let a = t.pending(); a !== null; a = t.pending()) {
    const d = t.begin(a, true);
    out.push(d);
    t.settle(a.epoch);
  }
  return out;
}

describe('lease', () => {
  test('the safety margin', () => {
    assert.equal(safetyMargin(15000, 5000), 5000); // 5 s + 10 s: lost 10 s after the heartbeat
    assert.equal(safetyMargin(500, 200), 150); // capped at (remaining - interval) / 2
    assert.equal(safetyMargin(4000, 1000), 1000);
    assert.equal(safetyMargin(100000, 1000), 10000); // 10%
    assert.equal(safetyMargin(1000, 5000), 0); // grace shorter than the interval
    assert.equal(safetyMargin(0, 1000), 0);
    assert.deepEqual(leaseFrom(100, 4000, 1000), { end: 4100, fenceAt: 3100 });
  });
});

describe('grants', () => {
  const plain = (shard: number, count: number): Work => ({ kind: 'plain', shard, count });
  const slots = (...keys: number[]): Work => ({ kind: 'slots', keys });
  const none: Work = { kind: 'none' };
  test('jump hash nesting', () => {
    assert.ok(workInside(plain(0, 2), plain(0, 1))); // one shard holds every key
    assert.ok(workInside(plain(1, 3), plain(1, 2))); // keys of shard 1 only shrink as the count grows
    assert.ok(!workInside(plain(0, 1), plain(0, 2))); // growing gives keys away
    assert.ok(!workInside(plain(2, 3), plain(0, 2))); // another shard
    assert.ok(!workInside(plain(1, 2), plain(0, 2)));
    assert.ok(workInside(none, plain(0, 2)));
    assert.ok(!workInside(plain(0, 2), none));
  });
  test('slot sets', () => {
    assert.ok(workInside(slots(1, 2), slots(1, 2, 3)));
    assert.ok(!workInside(slots(1, 4), slots(1, 2, 3)));
    assert.ok(!workInside(slots(1), plain(0, 1)));
  });
});

describe('tracker', () => {
  test('nothing is delivered before the first heartbeat; then the row', () => {
    const c = fakeClock();
    const t = new Tracker(c.now);
    t.newConnection();
    assert.equal(t.notice({ ...active(0, 1, 3), slots: null, slotsOmitted: false, state: 'active' }), false);
    assert.equal(t.pending(), null);
    t.heartbeat(row({ epoch: 2 }), c.now());
    // The notice of epoch 3 is newer than the row of epoch 2: it stays.
    const [d] = deliverAll(t);
    assert.equal(d?.assignment.epoch, 3);
    assert.deepEqual(d?.shardChanged, { shard: 0, numShards: 1 });
    assert.equal(t.applied, 3);
  });

  test('older epochs are ignored, equal ones accepted; shardChanged only on a change', () => {
    const c = fakeClock();
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 2, 5)), c.now());
    assert.equal(deliverAll(t).length, 1);
    t.heartbeat(row(active(1, 2, 4)), c.now());
    assert.equal(t.pending(), null);
    t.heartbeat(row(active(0, 2, 5)), c.now());
    assert.equal(t.pending(), null);
    // A pending member's epoch moves with the cluster: delivered, no shardChanged.
    t.heartbeat(row(active(0, 3, 6)), c.now());
    const [d] = deliverAll(t);
    assert.deepEqual(d?.shardChanged, { shard: 0, numShards: 3 });
    t.heartbeat(row({ ...active(0, 3, 7), state: 'standby', shard: null }), c.now());
    const [s] = deliverAll(t);
    assert.equal(s?.shardChanged, null);
    assert.equal(t.shardInfo, null);
  });

  test('cluster notices', () => {
    const c = fakeClock();
    const t = new Tracker(c.now);
    t.newConnection();
    assert.equal(t.clusterNotice(1, 1), false); // nothing known: ignored
    t.heartbeat(row(active(1, 2, 5)), c.now());
    deliverAll(t);
    assert.equal(t.clusterNotice(5, 3), false); // not newer
    assert.equal(t.pending(), null);
    assert.equal(t.clusterNotice(6, 1), true); // shard 1 not below 1: a notice was missed
    assert.equal(t.pending(), null);
    assert.equal(t.clusterNotice(7, 3), false);
    const [d] = deliverAll(t);
    assert.deepEqual(d?.assignment, { shard: 1, numShards: 3, epoch: 7, state: 'active', slots: null });
    t.newConnection();
    assert.equal(t.clusterNotice(8, 4), true); // nothing heard on this connection yet
  });

  test('a revocation from a notice: its deadline is the lease end when learned, not extended by later rows', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 1, 1)), 0); // lease end 4000, fence at 3000
    deliverAll(t);
    c.set(500);
    t.clusterNotice(2, 2); // (0 of 1) -> (0 of 2): keys of shard 1 given up
    const a = t.pending();
    assert.ok(a !== null);
    const d = t.begin(a, true); // listeners running, not settled
    assert.deepEqual(
      { shard: d.revoked?.shard, numShards: d.revoked?.numShards, epoch: d.revoked?.epoch, newEpoch: d.revoked?.newEpoch },
      { shard: 0, numShards: 1, epoch: 1, newEpoch: 2 },
    );
    assert.equal(d.revoked?.msLeft, 3500);
    // Heartbeats that succeed later renew the lease, not the release.
    c.set(1000);
    t.heartbeat(row({ ...active(0, 2, 2), releaseWithinMs: 3000 }), 1000);
    assert.equal(t.nextDeadline(), 3000);
    c.set(2900);
    assert.equal(t.tick(), null);
    c.set(3000);
    const loss = t.tick();
    assert.equal(loss?.reason, 'release');
    assert.equal(t.told?.state, 'lost');
    assert.equal(t.shardInfo, null);
    // Once the listeners settle, the assignment is delivered again.
    assert.equal(t.pending(), null);
    assert.equal(t.settle(2), true);
    const [again] = deliverAll(t);
    assert.equal(again?.assignment.state, 'active');
    assert.deepEqual(again?.shardChanged, { shard: 0, numShards: 2 });
    assert.equal(again?.revoked, null);
  });

  test('a revocation acknowledged in time is no loss', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 1, 1)), 0);
    deliverAll(t);
    t.clusterNotice(2, 2);
    const a = t.pending();
    assert.ok(a !== null);
    t.begin(a, true);
    c.set(2000);
    assert.equal(t.settle(2), true);
    assert.equal(t.applied, 2);
    c.set(3500);
    t.heartbeat(row(active(0, 2, 2)), 3500);
    c.set(5000);
    assert.equal(t.tick(), null);
  });

  test('a revocation learned from a row takes the lease from before that row', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(2, 3, 4)), 0); // lease end 4000
    deliverAll(t);
    c.set(900);
    // The notice was lost; this row moves the member to another shard.
    t.heartbeat(row(active(0, 2, 5)), 900);
    const a = t.pending();
    assert.ok(a !== null);
    const d = t.begin(a, true);
    assert.equal(d.revoked?.shard, 2);
    assert.equal(d.revoked?.msLeft, 3100); // 4000 - 900, not 4900 - 900
  });

  test('release_within on a row starts a release the client could not see', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 2, 4)), 0);
    deliverAll(t);
    c.set(500);
    // (0 of 2) -> (0 of 1) holds every key under jump hash, but the cluster's
    // key mapping is another one: the server says what to release.
    t.heartbeat(row({ ...active(0, 1, 5), releaseWithinMs: 3000 }), 500);
    const a = t.pending();
    assert.ok(a !== null);
    const d = t.begin(a, true);
    assert.equal(d.revoked, null);
    assert.equal(t.nextDeadline(), 3000);
    t.settle(5);
    assert.equal(t.nextDeadline(), 3500); // the lease's fence point only
  });

  test('the lease: lost at the fence point; only a heartbeat ends it', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 1, 1)), 0);
    deliverAll(t);
    c.set(2999);
    assert.equal(t.tick(), null);
    c.set(3000);
    const loss = t.tick();
    assert.equal(loss?.reason, 'lease');
    assert.equal(loss?.assignment.shard, 0);
    assert.equal(t.told?.state, 'lost');
    assert.equal(t.tick(), null); // once
    // A notice does not end it.
    t.newConnection();
    t.notice({ ...active(0, 1, 1), state: 'active', slots: null, slotsOmitted: false });
    assert.equal(t.pending(), null);
    t.heartbeat(row(active(0, 1, 1)), 3500);
    const [d] = deliverAll(t);
    assert.equal(d?.assignment.state, 'active');
    assert.deepEqual(d?.shardChanged, { shard: 0, numShards: 1 });
  });

  test('removed: nothing held, no lease, heartbeat at once', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 1, 1)), 0);
    deliverAll(t);
    assert.equal(t.notice({ shard: null, numShards: 0, epoch: 3, state: 'removed', slots: null, slotsOmitted: false }), true);
    const [d] = deliverAll(t);
    assert.equal(d?.assignment.state, 'removed');
    assert.equal(t.nextDeadline(), null);
    c.set(10000);
    assert.equal(t.tick(), null);
    t.heartbeat(row({ epoch: 3 }), 10000);
    assert.equal(deliverAll(t)[0]?.assignment.state, 'pending');
  });

  test('slot mode: the keys given up', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row({ ...active(0, 1, 1), slots: [1, 2, 3, 4] }), 0);
    deliverAll(t);
    t.notice({ ...active(0, 2, 2), state: 'active', slots: [1, 2], slotsOmitted: false });
    const a = t.pending();
    assert.ok(a !== null);
    const d = t.begin(a, true);
    assert.deepEqual(d.revoked?.slots, [3, 4]);
    assert.equal(d.revoked?.shard, null);
    // A notice too long for its keys: heartbeat instead.
    assert.equal(t.notice({ ...active(0, 2, 3), state: 'active', slots: null, slotsOmitted: true }), true);
  });

  test('after a reconnect, a row older than the applied epoch is not believed until the work was dropped', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 2, 7)), 0);
    deliverAll(t);
    t.newConnection();
    t.heartbeat(row(active(1, 2, 5)), 1000); // a server behind what was applied
    assert.equal(t.pending(), null);
    assert.equal(t.currentLease?.end, 4000); // not renewed
    c.set(3000);
    assert.equal(t.tick()?.reason, 'lease');
    t.heartbeat(row(active(1, 2, 5)), 3100);
    const [d] = deliverAll(t);
    assert.deepEqual(d?.shardChanged, { shard: 1, numShards: 2 });
  });

  test('manual acknowledgement: deliveries do not wait; the applied epoch is what was acknowledged', () => {
    const c = fakeClock(0);
    const t = new Tracker(c.now);
    t.newConnection();
    t.heartbeat(row(active(0, 1, 1)), 0);
    const a1 = t.pending();
    assert.ok(a1 !== null);
    t.begin(a1, false);
    assert.equal(t.applied, null);
    t.clusterNotice(2, 2);
    const a2 = t.pending();
    assert.ok(a2 !== null);
    const d = t.begin(a2, false);
    assert.equal(d.revoked?.epoch, 1);
    assert.equal(t.settle(3), false); // not given
    assert.equal(t.settle(2), true);
    assert.equal(t.applied, 2);
    assert.equal(t.settle(1), false);
  });
});
