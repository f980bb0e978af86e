// Reconnecting: after a server restart, and across a host list (a host
// that is down, a standby) as libpq's multi-host connection strings give it.

import assert from 'node:assert/strict';
import { execFileSync, execSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import pg from 'pg';

import type { ShardInfo } from '../../src/index.js';
import { TestLogger, closedPort, record, registrar, serverAddress, uniqueName, waitFor } from './helpers.js';

test('a server restart: the registrars reconnect and keep their shards', { timeout: 90000 }, async (t) => {
  const restart = process.env['SC_PG_RESTART'];
  if (restart === undefined) {
    t.skip('SC_PG_RESTART is not set (run under scripts/with-pg.sh)');
    return;
  }
  const cluster = uniqueName('restart');
  const opts = { cluster, heartbeatInterval: 1, gracePeriod: 10, reshardInterval: 0 };
  const logs = [new TestLogger(), new TestLogger()];
  const rs = logs.map((logger, i) => registrar({ ...opts, member: `m${i}`, logger }));
  for (const r of rs) await r.start();
  await waitFor('two shards', () => rs.every((r) => r.currentAssignment()?.numShards === 2 && r.currentAssignment()?.shard !== null));
  const before = rs.map((r) => r.currentAssignment());
  const events = rs.map((r) => record(r));

  const tr = Date.now();
  const v = (m: string) => process.env['TEST_VERBOSE'] && console.error(m, Date.now() - tr);
  execSync(restart, { stdio: 'ignore' });
  v('restarted');
  const h = logs.map((l) => l.heartbeats);
  // Both notice the loss (an error event) and heartbeat again.
  await waitFor('the lost connections reported', () => events.every((ev) => ev.some((e) => e.event === 'error')), 30000);
  v('errors');
  await waitFor('heartbeats again', () => logs.every((l, i) => l.heartbeats >= (h[i] ?? 0) + 2), 30000);
  v('heartbeats');
  assert.deepEqual(
    rs.map((r) => r.currentAssignment()),
    before,
    'same shards and epochs after the restart',
  );
  assert.equal(events.flat().filter((e) => e.event === 'lost' || e.event === 'shardChanged').length, 0);
  await Promise.all(rs.map((r) => r.stop()));
  v('stopped');
});

test('a host list whose first host is down', { timeout: 60000 }, async () => {
  const { host, port } = serverAddress();
  const down = await closedPort();
  const user = process.env['PGUSER'] ?? 'postgres';
  const password = process.env['PGPASSWORD'] ?? '';
  const database = process.env['PGDATABASE'] ?? 'postgres';
  const forms = [
    `host=127.0.0.1,${host} port=${down},${port} dbname=${database} user=${user} password='${password}' target_session_attrs=read-write`,
    `postgresql://${user}:${encodeURIComponent(password)}@127.0.0.1:${down},${host}:${port}/${database}?target_session_attrs=read-write`,
  ];
  for (const [i, pool] of forms.entries()) {
    const cluster = uniqueName(`hosts${i}`);
    const r = registrar({ cluster, pool, heartbeatInterval: 1, gracePeriod: 3, reshardInterval: 0 });
    const [info] = await Promise.all([r.emitted('shardChanged', { timeout: 30000 }), r.start()]);
    assert.deepEqual(info as ShardInfo, { shard: 0, numShards: 1 });
    await r.stop();
  }
});

test('every host down: start() resolves, errors name each host, the loop keeps trying', { timeout: 60000 }, async () => {
  const [p1, p2] = [await closedPort(), await closedPort()];
  const logger = new TestLogger();
  const r = registrar({ cluster: uniqueName('down'), pool: `host=127.0.0.1,127.0.0.1 port=${p1},${p2} connect_timeout=1`, logger });
  await r.start();
  const err = await waitFor('an error', () => logger.lines.find((l) => l.level === 'error'));
  assert.match(err.text, new RegExp(`127\\.0\\.0\\.1:${p1}.*127\\.0\\.0\\.1:${p2}`));
  assert.throws(() => r.shardInfo(), /no shard has been reserved/);
  await r.stop();
});

// A standby of the test server, made with pg_basebackup, on a port of its own.
function startStandby(): { port: number; stop: () => void; promote: () => void } | string {
  const bindir = process.env['PG_CONFIG'] ? execFileSync(process.env['PG_CONFIG'], ['--bindir']).toString().trim() : '';
  if (bindir === '') return 'PG_CONFIG is not set (run under scripts/with-pg.sh)';
  const { host, port } = serverAddress();
  const dir = mkdtempSync(join(tmpdir(), 'sc-standby-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const env = { ...process.env };
    if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { env, stdio: 'pipe' });
    else execFileSync(cmd, args, { env, stdio: 'pipe' });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const standbyPort = 20000 + Math.floor(Math.random() * 20000);
  run(join(bindir, 'pg_basebackup'), ['-h', host, '-p', String(port), '-D', data, '-R', '-X', 'stream', '-c', 'fast']);
  const conf = [
    `port = ${standbyPort}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    "shared_preload_libraries = 'shard_coordinator'",
    `shard_coordinator.database = '${process.env['PGDATABASE'] ?? 'postgres'}'`,
    'hot_standby = on',
    '',
  ].join('\n');
  const hba = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n');
  const write = (name: string, text: string) => {
    const file = join(data, name);
    writeFileSync(file, text);
    if (asRoot) {
      execFileSync('chown', ['postgres:postgres', file]);
    }
  };
  write('postgresql.conf', conf);
  write('pg_hba.conf', hba);
  run(join(bindir, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', 'start']);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run(join(bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // Also if the test is cut short: no server is left behind.
  process.once('exit', stop);
  return {
    port: standbyPort,
    promote: () => run(join(bindir, 'pg_ctl'), ['-D', data, '-w', 'promote']),
    stop,
  };
}

test('a host list whose first host is a standby', { timeout: 90000 }, async (t) => {
  let standby: ReturnType<typeof startStandby>;
  try {
    standby = startStandby();
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    t.skip(`could not make a standby: ${e.stderr?.toString().trim() || e.message}`);
    return;
  }
  if (typeof standby === 'string') {
    t.skip(standby);
    return;
  }
  try {
    // It is a standby indeed.
    const check = new pg.Client({ host: '127.0.0.1', port: standby.port });
    await check.connect();
    const { rows } = await check.query('SELECT pg_is_in_recovery() AS r');
    await check.end();
    assert.equal((rows[0] as { r: boolean }).r, true);

    const { host, port } = serverAddress();
    const cluster = uniqueName('standby-first');
    const r = registrar({
      cluster,
      pool: { connectionString: `host=127.0.0.1,${host} port=${standby.port},${port} target_session_attrs=read-write` },
      heartbeatInterval: 1,
      gracePeriod: 3,
      reshardInterval: 0,
    });
    const [info] = await Promise.all([r.emitted('shardChanged', { timeout: 30000 }), r.start()]);
    assert.deepEqual(info as ShardInfo, { shard: 0, numShards: 1 });
    await r.stop();
  } finally {
    standby.stop();
  }
});

test('failover: the primary stops, the standby is promoted, the registrar follows and keeps its shard', { timeout: 120000 }, async (t) => {
  const stopPrimary = process.env['SC_PG_STOP'];
  const startPrimary = process.env['SC_PG_START'];
  if (stopPrimary === undefined || startPrimary === undefined) {
    t.skip('SC_PG_STOP / SC_PG_START are not set (run under scripts/with-pg.sh)');
    return;
  }
  let standby: ReturnType<typeof startStandby>;
  try {
    standby = startStandby();
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    t.skip(`could not make a standby: ${e.stderr?.toString().trim() || e.message}`);
    return;
  }
  if (typeof standby === 'string') {
    t.skip(standby);
    return;
  }
  const { host, port } = serverAddress();
  let primaryStopped = false;
  const v = (m: string) => process.env['TEST_VERBOSE'] && console.error(new Date().toISOString(), m);
  try {
    const cluster = uniqueName('failover');
    const r = registrar({
      cluster,
      pool: `host=${host},127.0.0.1 port=${port},${standby.port} target_session_attrs=read-write`,
      heartbeatInterval: 1,
      gracePeriod: 10,
      reshardInterval: 0,
    });
    const events = record(r);
    await r.start();
    await waitFor('r active', () => r.currentAssignment()?.shard === 0);
    const before = r.currentAssignment();
    // The standby has replayed the reshard that placed r.
    const primary = new pg.Client();
    await primary.connect();
    const { rows } = await primary.query('SELECT pg_current_wal_lsn()::text AS lsn');
    await primary.end();
    const lsn = (rows[0] as { lsn: string }).lsn;
    const onStandby = async (sql: string, params: unknown[]): Promise<Record<string, unknown> | undefined> => {
      const c = new pg.Client({ host: '127.0.0.1', port: standby.port, connectionTimeoutMillis: 2000 });
      c.on('error', () => undefined);
      // (Not inside the try: end() after a failed connect() never resolves.)
      await c.connect();
      try {
        return (await c.query(sql, params)).rows[0] as Record<string, unknown> | undefined;
      } finally {
        await c.end();
      }
    };
    await waitFor(
      'the standby caught up',
      async () => (await onStandby('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]))?.['ok'] === true,
    );

    v('stopping the primary');
    execSync(stopPrimary, { stdio: 'ignore' });
    primaryStopped = true;
    v('promoting');
    standby.promote();
    v('promoted');
    // r reconnects to the promoted server, whose worker loads the stored
    // assignment and gives every member a full lease: same shard, same epoch.
    await waitFor('an error for the lost primary', () => events.some((e) => e.event === 'error'), 30000);
    v('error seen');
    await waitFor(
      'r heartbeating on the promoted server',
      async () =>
        (
          await onStandby(
            "SELECT count(*)::int AS n FROM shard_coordinator.members WHERE cluster = $1 AND last_heartbeat > now() - interval '2 s'",
            [cluster],
          )
        )?.['n'] === 1,
      40000,
      200,
    );
    const told = JSON.stringify(events.map((e) => [e.event, e.value instanceof Error ? e.value.message : e.value]));
    assert.deepEqual(r.currentAssignment(), before, told);
    assert.equal(events.filter((e) => e.event === 'lost').length, 0, told);
    await r.stop();
  } finally {
    standby.stop();
    if (primaryStopped) execSync(startPrimary, { stdio: 'ignore' });
  }
});
