// The registrar in a process of its own: nothing left running after stop(),
// no crash on errors nobody listens for; and the interval options against
// the cluster's settings.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { TcpProxy, TestLogger, closedPort, db, registrar, uniqueName, waitFor } from './helpers.js';

interface Child {
  out: string;
  err: string;
  exited: Promise<{ code: number | null; at: number }>;
  write(s: string): void;
}

function run(script: string, args: string[]): Child {
  const child = spawn(process.execPath, ['--unhandled-rejections=strict', join(__dirname, 'fixtures', script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const c: Child = {
    out: '',
    err: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() }))),
    write: (s) => child.stdin.write(s),
  };
  child.stdout.on('data', (d: Buffer) => (c.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (c.err += d.toString()));
  return c;
}

test('after stop() the process ends by itself; failing listeners are logged, not fatal', { timeout: 60000 }, async () => {
  const child = run('exit-by-itself.js', [uniqueName('exit')]);
  const { code, at } = await child.exited;
  assert.equal(code, 0, child.err);
  assert.match(child.out, /shard \{"shard":0,"numShards":1\}/);
  const stopped = /stopped (.*)/.exec(child.out);
  assert.ok(stopped, child.out);
  assert.deepEqual(JSON.parse(stopped[1] ?? 'null'), [], 'no timer, socket or handle left after stop()');
  assert.match(child.err, /a listener that throws/);
  assert.match(child.err, /a listener whose promise rejects/);
  assert.ok(at > 0);
});

test('every server down, no error listener: errors are logged and retried; stop() ends it', { timeout: 60000 }, async () => {
  const port = await closedPort();
  const child = run('server-down.js', [`host=127.0.0.1 port=${port} connect_timeout=1`]);
  await waitFor('started', () => child.out.includes('started'));
  // Retried: the message repeats in the log at most every 30 s, so look for
  // the first one and at least one more attempt (it connects again and again).
  await waitFor('an error logged', () => child.err.includes(`ECONNREFUSED`), 20000);
  child.write('stop\n');
  const { code } = await child.exited;
  assert.equal(code, 0, child.err);
  assert.match(child.out, /stopped/);
  assert.doesNotMatch(child.err, /Unhandled|unhandled/);
});

test('interval options: applied with configure() when the role may; else a warning, once', { timeout: 60000 }, async () => {
  const cluster = uniqueName('settings');
  const r = registrar({ cluster, heartbeatInterval: 2, gracePeriod: 4, reshardInterval: 1.5 });
  await r.start();
  const { rows } = await db().query(
    'SELECT extract(epoch FROM heartbeat_interval)::float8 AS h, extract(epoch FROM grace_period)::float8 AS g, ' +
      'extract(epoch FROM reshard_interval)::float8 AS s FROM shard_coordinator.clusters WHERE cluster = $1',
    [cluster],
  );
  assert.deepEqual(rows[0], { h: 2, g: 4, s: 1.5 });
  await r.stop();

  // A role with what a worker needs, but not configure().
  const role = uniqueName('worker').replace(/-/g, '_');
  await db().query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await db().query(`GRANT USAGE ON SCHEMA shard_coordinator TO ${role}`);
  await db().query(
    `GRANT EXECUTE ON FUNCTION shard_coordinator.heartbeat(text, text, bigint, bigint),
       shard_coordinator.leave(text, text, bigint), shard_coordinator.channel(text, text),
       shard_coordinator.channel(text), shard_coordinator.fence(text, text, bigint) TO ${role}`,
  );
  const logger = new TestLogger();
  const w = registrar({
    cluster,
    pool: { user: role, password: 'pw' },
    heartbeatInterval: 1,
    gracePeriod: 4,
    logger,
  });
  const [info] = await Promise.all([w.emitted('shardChanged', { timeout: 30000 }), w.start()]);
  assert.deepEqual(info, { shard: 0, numShards: 1 });
  const warnings = logger.lines.filter((l) => l.level === 'warn');
  assert.equal(warnings.length, 1, JSON.stringify(logger.lines));
  assert.match(warnings[0]?.text ?? '', /heartbeatInterval 1 s.*may not apply them.*server's settings apply/);
  // The server's interval (2 s) is the one followed, once the
  // acknowledgements (sent at once) are done.
  const h0 = logger.heartbeats;
  await waitFor('three more heartbeats', () => logger.heartbeats >= h0 + 3, 20000);
  const [t1, t2] = logger.heartbeatTimes.slice(-2) as [number, number];
  assert.ok(t2 - t1 >= 1900, `heartbeats ${t2 - t1} ms apart, the server's interval is 2 s`);
  await w.stop();
  await db().query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
});

test('stop() while connecting to a silent server returns at once', { timeout: 30000 }, async () => {
  const proxy = await new TcpProxy().start();
  proxy.cut();
  const r = registrar({ cluster: uniqueName('silent'), pool: proxy.config() });
  const started = r.start();
  await waitFor('a connection attempt', () => proxy.connections > 0);
  const t0 = Date.now();
  await r.stop();
  await started;
  assert.ok(Date.now() - t0 < 2000, `stop() took ${Date.now() - t0} ms`);
  await proxy.close();
});
