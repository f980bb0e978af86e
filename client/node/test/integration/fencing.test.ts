// Self-fencing when the connection goes silent, and fenced transactions.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import pg from 'pg';

import { isFenceError, type Assignment, type Loss, type ShardInfo } from '../../src/index.js';
import { TcpProxy, TestLogger, db, record, registrar, uniqueName, waitFor } from './helpers.js';

test('self-fencing: a registrar cut off reports lost before the server hands its shard on', { timeout: 90000 }, async () => {
  const proxy = await new TcpProxy().start();
  const cluster = uniqueName('fence');
  // Lease 3 s from each heartbeat; lost 1 s before its end.
  const opts = { cluster, heartbeatInterval: 1, gracePeriod: 2, reshardInterval: 0 };
  const aLog = new TestLogger();
  const a = registrar({ ...opts, member: 'a', pool: proxy.config(), logger: aLog });
  const b = registrar({ ...opts, member: 'b' });
  await a.start();
  await waitFor('a active', () => a.currentAssignment()?.shard === 0);
  await b.start();
  await waitFor('two shards', () => a.currentAssignment()?.numShards === 2 && b.currentAssignment()?.shard === 1);
  const aEvents = record(a);
  const bEvents = record(b);

  // The network goes silent: no error, no answer.
  const h0 = aLog.heartbeats;
  await waitFor('a heartbeat just answered', () => aLog.heartbeats > h0);
  const cutAt = Date.now();
  proxy.cut();
  const lost = await waitFor('a lost', () => aEvents.find((e) => e.event === 'lost'), 20000);
  assert.equal((lost.value as Loss).reason, 'lease');
  assert.deepEqual((lost.value as Loss).assignment.shard, 0);
  assert.ok(lost.at - cutAt <= 3000, `lost ${lost.at - cutAt} ms after the cut (lease 3 s)`);
  assert.equal((aEvents.find((e) => e.event === 'assignment')?.value as Assignment).state, 'lost');
  assert.throws(() => a.shardInfo(), /no shard has been reserved/);

  // The server expires a and gives b everything, after a stopped.
  await waitFor('b alone', () => b.currentAssignment()?.numShards === 1, 20000);
  const bTold = bEvents.find((e) => e.event === 'shardChanged' && (e.value as ShardInfo).numShards === 1);
  assert.ok(bTold !== undefined && bTold.at >= lost.at, 'b got the shard after a was lost');

  // The network comes back: a registers again and works again.
  proxy.restore();
  await waitFor('a back', () => a.currentAssignment()?.state === 'active' && a.currentAssignment()?.shard !== null, 30000);
  assert.ok(aEvents.some((e) => e.event === 'shardChanged' && e.at > lost.at));
  await Promise.all([a.stop(), b.stop()]);
  await proxy.close();
});

test('fence() and withFence(): work commits only under the current assignment', { timeout: 60000 }, async () => {
  const cluster = uniqueName('tx');
  await db().query('CREATE TABLE IF NOT EXISTS fenced_work (cluster text, member text, epoch int, item int)');
  const pool = new pg.Pool({ max: 2 });
  const opts = { cluster, heartbeatInterval: 1, gracePeriod: 3, reshardInterval: 0 };
  const a = registrar({ ...opts, member: 'a', pool });
  const c = registrar({ ...opts, member: 'c', pool: `host=${process.env['PGHOST'] ?? 'localhost'} port=${process.env['PGPORT'] ?? 5432}` });
  await a.start();
  await waitFor('a active', () => a.currentAssignment()?.shard === 0);
  const first = a.currentAssignment() as Assignment;

  const n = await a.withFence(async (client, assignment) => {
    await client.query('INSERT INTO fenced_work VALUES ($1, $2, $3, 1)', [cluster, 'a', assignment.epoch]);
    return assignment.epoch;
  });
  assert.equal(n, first.epoch);

  // fn throws: rolled back.
  await assert.rejects(
    a.withFence(async (client) => {
      await client.query('INSERT INTO fenced_work VALUES ($1, $2, 0, 2)', [cluster, 'a']);
      throw new Error('the work failed');
    }),
    /the work failed/,
  );

  // c joins: a's assignment changes; a fence with the old epoch fails with SC001.
  await c.start();
  await waitFor('a at two shards', () => a.currentAssignment()?.numShards === 2 && c.currentAssignment()?.shard === 1);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const err = await a.fence(client, first.epoch).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isFenceError(err), `SC001 expected, got ${String(err)}`);
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
  // c has no pg.Pool: withFence opens a connection of its own.
  await c.withFence(async (cl, assignment) => {
    await cl.query('INSERT INTO fenced_work VALUES ($1, $2, $3, 3)', [cluster, 'c', assignment.epoch]);
  });
  const rows = await db().query('SELECT member, item FROM fenced_work WHERE cluster = $1 ORDER BY item', [cluster]);
  assert.deepEqual(rows.rows, [
    { member: 'a', item: 1 },
    { member: 'c', item: 3 },
  ]);
  await Promise.all([a.stop(), c.stop()]);
  await pool.end();
});
