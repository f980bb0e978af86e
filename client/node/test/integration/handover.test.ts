// Exclusive handover through the registrar: revoked work is acknowledged
// only once the listeners are done with it, the new owner gets it only
// after that, and a listener that never finishes is reported lost by the
// release deadline.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Assignment, Loss, Revocation, ShardInfo } from '../../src/index.js';
import { TcpProxy, TestLogger, members, record, registrar, uniqueName, waitFor } from './helpers.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test('a revoked registrar acknowledges after its listener settled; the new owner is told after that', { timeout: 60000 }, async () => {
  const cluster = uniqueName('handover');
  const opts = { cluster, heartbeatInterval: 1, gracePeriod: 10, reshardInterval: 0 };
  const aLog = new TestLogger();
  const a = registrar({ ...opts, member: 'a', logger: aLog });
  const b = registrar({ ...opts, member: 'b' });
  await a.start();
  await waitFor('a on shard 0 of 1', () => a.currentAssignment()?.shard === 0);

  const released = deferred();
  let revocation: Revocation | null = null;
  let releasedAt = 0;
  a.on('revoked', (v) => {
    revocation = v;
    // The application stops its work on the keys it gives up, then settles.
    return released.promise.then(() => {
      releasedAt = Date.now();
    });
  });
  const bEvents = record(b);
  await b.start();
  const rev = await waitFor('the revocation', () => revocation);
  assert.deepEqual({ shard: rev.shard, numShards: rev.numShards }, { shard: 0, numShards: 1 });
  assert.ok(rev.msLeft > 5000, `msLeft ${rev.msLeft}`);
  // a keeps working on what it still holds.
  assert.deepEqual(a.shardInfo(), { shard: 0, numShards: 2 });

  // While the listener's promise is pending, the server holds b's work back
  // (sampled until three more of a's heartbeats were answered).
  const h0 = aLog.heartbeats;
  while (aLog.heartbeats < h0 + 3) {
    const rows = await members(cluster);
    const ra = rows.find((r) => r['member'] === 'a');
    const rb = rows.find((r) => r['member'] === 'b');
    assert.ok(ra?.['releasing'] !== null, 'a still releasing');
    assert.ok((ra?.['acknowledged_epoch'] as number | null ?? 0) < rev.newEpoch, 'a has not acknowledged');
    assert.equal(rb?.['shard'], null, 'b has no shard yet');
    assert.equal(b.currentAssignment()?.shard ?? null, null);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(bEvents.some((e) => e.event === 'shardChanged'), false);

  released.resolve();
  await waitFor('b on shard 1 of 2', () => b.currentAssignment()?.shard === 1, 10000);
  const told = bEvents.find((e) => e.event === 'shardChanged');
  assert.deepEqual(told?.value as ShardInfo, { shard: 1, numShards: 2 });
  assert.ok(releasedAt > 0 && (told?.at ?? 0) >= releasedAt, 'b was told after a released');
  const ra = (await members(cluster)).find((r) => r['member'] === 'a');
  assert.ok((ra?.['acknowledged_epoch'] as number) >= rev.newEpoch);
  await Promise.all([a.stop(), b.stop()]);
});

test('with acknowledge: manual, the acknowledgement is acknowledge(epoch)', { timeout: 60000 }, async () => {
  const cluster = uniqueName('manual');
  const opts = { cluster, heartbeatInterval: 1, gracePeriod: 10, reshardInterval: 0 };
  const aLog = new TestLogger();
  const a = registrar({ ...opts, member: 'a', acknowledge: 'manual', logger: aLog });
  const b = registrar({ ...opts, member: 'b' });
  const revocations: Revocation[] = [];
  a.on('revoked', (v) => void revocations.push(v));
  await a.start();
  await waitFor('a active', () => a.currentAssignment()?.shard === 0);
  a.acknowledge(a.currentAssignment()?.epoch ?? 0);
  await b.start();
  const rev = await waitFor('the revocation', () => revocations[0]);
  // Three heartbeats of a later, nothing is acknowledged and b still waits.
  const h0 = aLog.heartbeats;
  await waitFor('three more heartbeats of a', () => aLog.heartbeats >= h0 + 3);
  const ra = (await members(cluster)).find((r) => r['member'] === 'a');
  assert.ok(((ra?.['acknowledged_epoch'] as number | null) ?? 0) < rev.newEpoch);
  assert.equal(b.currentAssignment()?.shard ?? null, null);
  assert.equal(a.acknowledge(rev.newEpoch + 100), false); // not given: ignored
  assert.equal(a.acknowledge(rev.newEpoch), true);
  await waitFor('b on shard 1', () => b.currentAssignment()?.shard === 1, 10000);
  await Promise.all([a.stop(), b.stop()]);
});

test('notices lost, a listener that never settles: lost by the release deadline', { timeout: 60000 }, async () => {
  const proxy = await new TcpProxy().start();
  proxy.dropNotifications = true;
  const cluster = uniqueName('deadline');
  const opts = { cluster, heartbeatInterval: 1, gracePeriod: 3, reshardInterval: 0 };
  const a = registrar({ ...opts, member: 'a', pool: proxy.config() });
  const b = registrar({ ...opts, member: 'b' });
  await a.start();
  await waitFor('a on shard 0 of 1', () => a.currentAssignment()?.shard === 0);
  const aEvents = record(a);
  a.on('revoked', () => new Promise<void>(() => undefined)); // never settles
  const bEvents = record(b);
  await b.start();

  const lost = await waitFor('a lost', () => aEvents.find((e) => e.event === 'lost'), 20000);
  const revoked = aEvents.find((e) => e.event === 'revoked');
  assert.ok(revoked !== undefined, 'a was told of the revocation (from a heartbeat row)');
  const rev = revoked.value as Revocation;
  assert.equal((lost.value as Loss).reason, 'release');
  assert.ok(lost.at <= revoked.at + rev.msLeft, `lost ${lost.at - revoked.at} ms after the revocation, deadline ${rev.msLeft} ms`);
  assert.ok(proxy.dropped > 0, 'notifications were dropped');
  const lostAssignment = aEvents.filter((e) => e.event === 'assignment').at(-1)?.value as Assignment;
  assert.equal(lostAssignment.state, 'lost');
  assert.throws(() => a.shardInfo(), /no shard has been reserved/);

  // The server hands a's keys on only after its own deadline.
  await waitFor('b on shard 1', () => b.currentAssignment()?.shard === 1, 20000);
  const bTold = bEvents.find((e) => e.event === 'shardChanged');
  assert.ok((bTold?.at ?? 0) >= lost.at, 'b was told after a stopped');
  await Promise.all([a.stop(), b.stop()]);
  await proxy.close();
});
