// Assignments as the server makes them, seen through the registrar:
// stickiness, standby members over max_shards, slot sets, and the cluster
// channel.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Assignment, Revocation, ShardRegistrar } from '../../src/index.js';
import { db, record, registrar, uniqueName, waitFor } from './helpers.js';

const fast = { heartbeatInterval: 1, gracePeriod: 3, reshardInterval: 0 };

const active = (r: ShardRegistrar): Assignment | null => {
  const a = r.currentAssignment();
  return a !== null && a.state === 'active' && (a.shard !== null || (a.slots?.length ?? 0) > 0) ? a : null;
};

async function startInTurn(rs: ShardRegistrar[], count = rs.length): Promise<void> {
  for (const [i, r] of rs.entries()) {
    await r.start();
    await waitFor(`member ${i} active`, () => {
      const a = active(r);
      return a !== null && a.numShards === Math.min(i + 1, count);
    });
  }
}

test('stickiness: members keep their shard while it is in range', { timeout: 60000 }, async () => {
  const cluster = uniqueName('sticky');
  const rs = [0, 1, 2].map((i) => registrar({ cluster, member: `m${i}`, ...fast }));
  await startInTurn(rs);
  assert.deepEqual(
    rs.map((r) => r.shardInfo()),
    [
      { shard: 0, numShards: 3 },
      { shard: 1, numShards: 3 },
      { shard: 2, numShards: 3 },
    ],
  );
  const [m0, m1, m2] = rs as [ShardRegistrar, ShardRegistrar, ShardRegistrar];
  // m0 leaves: m1 keeps shard 1 (still below 2), m2 moves to the free shard 0.
  await m0.stop();
  await waitFor('two shards', () => active(m1)?.numShards === 2 && active(m2)?.numShards === 2);
  assert.deepEqual(m1.shardInfo(), { shard: 1, numShards: 2 });
  assert.deepEqual(m2.shardInfo(), { shard: 0, numShards: 2 });
  // m0 comes back: the others keep theirs, it takes 2.
  await m0.start();
  await waitFor('three shards', () => [m0, m1, m2].every((r) => active(r)?.numShards === 3));
  assert.deepEqual(m1.shardInfo(), { shard: 1, numShards: 3 });
  assert.deepEqual(m2.shardInfo(), { shard: 0, numShards: 3 });
  assert.deepEqual(m0.shardInfo(), { shard: 2, numShards: 3 });
  await Promise.all(rs.map((r) => r.stop()));
});

test('standby over max_shards, promoted when an active member goes', { timeout: 60000 }, async () => {
  const cluster = uniqueName('standby');
  await db().query('SELECT shard_coordinator.configure($1, max_shards => 2)', [cluster]);
  const rs = [0, 1, 2].map((i) => registrar({ cluster, member: `m${i}`, ...fast }));
  const [m0, m1, m2] = rs as [ShardRegistrar, ShardRegistrar, ShardRegistrar];
  await startInTurn([m0, m1]);
  const events = record(m2);
  await m2.start();
  await waitFor('m2 standby', () => m2.currentAssignment()?.state === 'standby');
  assert.throws(() => m2.shardInfo(), /no shard has been reserved/);
  assert.equal(
    events.some((e) => e.event === 'shardChanged'),
    false,
  );
  // m0 (shard 0) leaves: the standby takes shard 0.
  await m0.stop();
  await waitFor('m2 promoted', () => active(m2)?.shard === 0);
  assert.deepEqual(m2.shardInfo(), { shard: 0, numShards: 2 });
  assert.deepEqual(m1.shardInfo(), { shard: 1, numShards: 2 });
  // (pending first, unless the reshard's notice came before the first row)
  assert.deepEqual(
    events
      .filter((e) => e.event === 'assignment')
      .map((e) => (e.value as Assignment).state)
      .filter((s) => s !== 'pending'),
    ['standby', 'active'],
  );
  await Promise.all(rs.map((r) => r.stop()));
});

test('slot sets: every key has one owner; keys given up are revoked', { timeout: 60000 }, async () => {
  const cluster = uniqueName('slots');
  const keys = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
  await db().query('SELECT shard_coordinator.configure($1, slots => $2::int[], reshard_interval => $3::interval)', [
    cluster,
    keys,
    '0s',
  ]);
  const rs = [0, 1, 2].map((i) => registrar({ cluster, member: `m${i}`, heartbeatInterval: 1, gracePeriod: 3 }));
  const revocations: Revocation[] = [];
  for (const r of rs) r.on('revoked', (v) => void revocations.push(v));
  const [m0, m1, m2] = rs as [ShardRegistrar, ShardRegistrar, ShardRegistrar];
  await startInTurn([m0, m1]);
  await m2.start();
  const covered = (owners: ShardRegistrar[]) => {
    const all = owners.flatMap((r) => [...(active(r)?.slots ?? [])]);
    return all.length === keys.length && new Set(all).size === keys.length;
  };
  await waitFor('three owners of the ten keys', () => rs.every((r) => active(r)?.numShards === 3) && covered(rs));
  const sizes = rs.map((r) => active(r)?.slots?.length ?? 0).sort();
  assert.deepEqual(sizes, [3, 3, 4]);
  // The keys m2 got were given up (revoked) by m0 and m1 first.
  const given = new Set(revocations.flatMap((v) => [...(v.slots ?? [])]));
  for (const k of active(m2)?.slots ?? []) assert.ok(given.has(k), `key ${k} was revoked from its holder`);
  assert.ok(revocations.every((v) => v.msLeft > 0));
  await m2.stop();
  await waitFor('two owners of the ten keys', () => covered([m0, m1]) && active(m0)?.numShards === 2);
  await Promise.all(rs.map((r) => r.stop()));
});

test('the cluster channel: a new count reaches every member within a heartbeat interval of 60 s', { timeout: 60000 }, async () => {
  const cluster = uniqueName('channel');
  const opts = { cluster, heartbeatInterval: 60, gracePeriod: 60, reshardInterval: 0 };
  const rs = [0, 1].map((i) => registrar({ ...opts, member: `m${i}` }));
  await startInTurn(rs);
  const [m0, m1] = rs as [ShardRegistrar, ShardRegistrar];
  const before = [m0.shardInfo(), m1.shardInfo()];
  // A third member joins from SQL. No member notice goes to m0 and m1 (their
  // shards stay); the cluster notice tells them the count, and their
  // acknowledgements (sent at once) let the newcomer have its shard.
  const t0 = Date.now();
  await db().query('SELECT * FROM shard_coordinator.heartbeat($1, $2)', [cluster, 'from-sql']);
  await waitFor('the new count', () => active(m0)?.numShards === 3 && active(m1)?.numShards === 3, 20000);
  assert.ok(Date.now() - t0 < 20000);
  assert.deepEqual(
    [m0.shardInfo().shard, m1.shardInfo().shard],
    before.map((b) => b.shard),
  );
  const row = await waitFor(
    'the newcomer granted',
    async () => {
      const res = await db().query(
        'SELECT shard FROM shard_coordinator.heartbeat($1, $2) WHERE shard IS NOT NULL',
        [cluster, 'from-sql'],
      );
      return res.rows[0] as { shard: number } | undefined;
    },
    20000,
  );
  assert.equal(row.shard, 2);
  await db().query('SELECT shard_coordinator.leave($1, $2)', [cluster, 'from-sql']);
  await Promise.all(rs.map((r) => r.stop()));
});
