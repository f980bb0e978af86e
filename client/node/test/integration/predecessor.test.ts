// The three scenarios of @jcoreio/postgres-shard-coordinator's own test
// suite, through the drop-in constructor (pool, ipc, the three intervals in
// seconds) with heartbeat 1 s, grace 3 s, reshard 5 s. The predecessor
// emptied its tables between tests; here each test has clusters of its own.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import pg from 'pg';

import { ShardRegistrar, type ShardRegistrarOptions } from '../../src/index.js';
import { TestLogger, uniqueName, waitFor } from './helpers.js';

const pool = new pg.Pool({ max: 4 });
pool.on('error', () => undefined);
// The predecessor needed an ipc instance for LISTEN; this one is ignored.
const ipc = { listen: async () => undefined, unlisten: async () => undefined, notify: async () => undefined };

const started: ShardRegistrar[] = [];
after(async () => {
  await Promise.all(started.map((r) => r.stop()));
  await pool.end();
});

function create(cluster: string): { registrar: ShardRegistrar; logger: TestLogger } {
  const logger = new TestLogger();
  const options: ShardRegistrarOptions = {
    pool,
    ipc,
    cluster,
    heartbeatInterval: 1,
    gracePeriod: 3,
    reshardInterval: 5,
    logger,
  };
  const registrar = new ShardRegistrar(options);
  started.push(registrar);
  return { registrar, logger };
}

const TIMEOUT = { timeout: 30000 };

describe('ShardRegistrar (the predecessor scenarios)', { timeout: 120000 }, () => {
  test('sequential three node test', async () => {
    const cluster = uniqueName('a');
    const { registrar: registrar1, logger: logger1 } = create(cluster);
    const { registrar: registrar2, logger: logger2 } = create(cluster);
    const { registrar: registrar3 } = create(cluster);

    const [first] = await Promise.all([registrar1.emitted('shardChanged', TIMEOUT), registrar1.start()]);
    assert.deepEqual(first, { shard: 0, numShards: 1 });

    const [a1, a2] = await Promise.all([
      registrar1.emitted('shardChanged', TIMEOUT),
      registrar2.emitted('shardChanged', TIMEOUT),
      registrar2.start(),
    ]);
    assert.deepEqual(a1, { shard: 0, numShards: 2 });
    assert.deepEqual(a2, { shard: 1, numShards: 2 });

    // The predecessor slept three heartbeat intervals here; this waits for
    // three more heartbeats of each, then checks nothing moved.
    const h1 = logger1.heartbeats;
    const h2 = logger2.heartbeats;
    await waitFor('three more heartbeats of each', () => logger1.heartbeats >= h1 + 3 && logger2.heartbeats >= h2 + 3);
    assert.deepEqual(registrar1.shardInfo(), { shard: 0, numShards: 2 });
    assert.deepEqual(registrar2.shardInfo(), { shard: 1, numShards: 2 });

    const [b2] = await Promise.all([registrar2.emitted('shardChanged', TIMEOUT), registrar1.stop()]);
    assert.deepEqual(b2, { shard: 0, numShards: 1 });
    assert.throws(() => registrar1.shardInfo(), /no shard has been reserved/);

    const [c1, c2] = await Promise.all([
      registrar1.emitted('shardChanged', TIMEOUT),
      registrar2.emitted('shardChanged', TIMEOUT),
      registrar1.start(),
    ]);
    assert.deepEqual(c1, { shard: 1, numShards: 2 });
    assert.deepEqual(c2, { shard: 0, numShards: 2 });

    const [d1, d2, d3] = await Promise.all([
      registrar1.emitted('shardChanged', TIMEOUT),
      registrar2.emitted('shardChanged', TIMEOUT),
      registrar3.emitted('shardChanged', TIMEOUT),
      registrar3.start(),
    ]);
    assert.deepEqual(d1, { shard: 1, numShards: 3 });
    assert.deepEqual(d2, { shard: 0, numShards: 3 });
    assert.deepEqual(d3, { shard: 2, numShards: 3 });

    await Promise.all([registrar1.stop(), registrar2.stop(), registrar3.stop()]);
  });

  test('single node unregister test', async () => {
    const cluster = uniqueName('a');
    const { registrar: registrar1 } = create(cluster);
    const [first] = await Promise.all([registrar1.emitted('shardChanged', TIMEOUT), registrar1.start()]);
    assert.deepEqual(first, { shard: 0, numShards: 1 });
    await registrar1.stop({ unregister: true });

    // The cluster has nobody working: the next member is assigned at once,
    // not after the reshard interval (5 s).
    const { registrar: registrar2 } = create(cluster);
    const t0 = Date.now();
    const [second] = await Promise.all([registrar2.emitted('shardChanged', TIMEOUT), registrar2.start()]);
    assert.deepEqual(second, { shard: 0, numShards: 1 });
    assert.ok(Date.now() - t0 < 2500, `assigned after ${Date.now() - t0} ms`);
    await registrar2.stop();
  });

  test('two clusters of registrars operating simultaneously', async () => {
    const numShards = 10;
    const a = uniqueName('a');
    const b = uniqueName('b');
    const inA = Array.from({ length: numShards }, () => create(a).registrar);
    const inB = Array.from({ length: numShards }, () => create(b).registrar);
    const events = (rs: ShardRegistrar[]) =>
      Promise.all(
        rs.map((r) =>
          r.emitted('shardChanged', { filter: (e) => e.numShards === numShards, timeout: 60000 }),
        ),
      );
    const aEvents = events(inA);
    const bEvents = events(inB);
    await Promise.all([aEvents, bEvents, ...inA.map((r) => r.start()), ...inB.map((r) => r.start())]);
    const range = Array.from({ length: numShards }, (_, i) => i);
    assert.deepEqual(
      (await aEvents).map((e) => e.shard).sort((x, y) => x - y),
      range,
    );
    assert.deepEqual(
      (await bEvents).map((e) => e.shard).sort((x, y) => x - y),
      range,
    );
    await Promise.all([...inA, ...inB].map((r) => r.stop()));
  });
});
