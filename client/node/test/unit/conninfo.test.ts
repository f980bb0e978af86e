// Connection strings: libpq's keyword and URI forms with several hosts,
// turned into one node-postgres config per server, in order.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import pg from 'pg';

import { parseConnectionString, targetsFor } from '../../src/conninfo.js';

// What node-postgres makes of a target's config (no connection is opened).
function resolved(config: pg.ClientConfig): { host: string; port: number; user: string; database: string; password: unknown } {
  const c = new pg.Client(config) as unknown as {
    host: string;
    port: number;
    user: string;
    database: string;
    password: unknown;
  };
  return { host: c.host, port: c.port, user: c.user, database: c.database, password: c.password };
}

test('keyword form: several hosts and ports, quoted values', () => {
  const p = parseConnectionString(
    "host=db1,db2 port=5432,5433 dbname=app user=worker password='it\\'s' target_session_attrs=read-write",
  );
  assert.deepEqual(p.hosts, [
    { host: 'db1', port: '5432' },
    { host: 'db2', port: '5433' },
  ]);
  assert.equal(p.dbname, 'app');
  assert.equal(p.user, 'worker');
  assert.equal(p.password, "it's");
  assert.equal(p.params['target_session_attrs'], 'read-write');
  const q = parseConnectionString("password = 'a \\' b\\\\c' host=x");
  assert.equal(q.password, "a ' b\\c");
  assert.deepEqual(q.hosts, [{ host: 'x', port: null }]);
});

test('keyword form: one port for every host; errors', () => {
  const p = parseConnectionString('host=a,b,c port=6000');
  assert.deepEqual(
    p.hosts.map((h) => h.port),
    ['6000', '6000', '6000'],
  );
  assert.throws(() => parseConnectionString('host=a,b,c port=1,2'), /could not match 2 port numbers to 3 hosts/);
  assert.throws(() => parseConnectionString('host'), /missing "="/);
  assert.throws(() => parseConnectionString("password='open"), /unterminated/);
});

test('URI form: several hosts, IPv6, user info and query parameters', () => {
  const p = parseConnectionString(
    'postgresql://us%40er:p%3Ass@db1:5432,[::1]:5433,db3/my%20app?target_session_attrs=read-write&sslmode=disable',
  );
  assert.deepEqual(p.hosts, [
    { host: 'db1', port: '5432' },
    { host: '::1', port: '5433' },
    { host: 'db3', port: null },
  ]);
  assert.equal(p.user, 'us@er');
  assert.equal(p.password, 'p:ss');
  assert.equal(p.dbname, 'my app');
  assert.equal(p.params['sslmode'], 'disable');
  const q = parseConnectionString('postgres:///app?host=/var/run/postgresql,db2&port=5432');
  assert.deepEqual(q.hosts, [
    { host: '/var/run/postgresql', port: '5432' },
    { host: 'db2', port: '5432' },
  ]);
});

test('targets: one config per host, in order, that node-postgres understands', () => {
  const targets = targetsFor(
    { connectionString: 'postgres://u:secret@db1:5432,db2:5433/app?target_session_attrs=read-write' },
    {},
  );
  assert.deepEqual(
    targets.map((t) => t.label),
    ['db1:5432', 'db2:5433'],
  );
  assert.deepEqual(resolved(targets[0]!.config), {
    host: 'db1',
    port: 5432,
    user: 'u',
    database: 'app',
    password: 'secret',
  });
  assert.deepEqual(resolved(targets[1]!.config), {
    host: 'db2',
    port: 5433,
    user: 'u',
    database: 'app',
    password: 'secret',
  });
});

test('targets: the keyword form, a Unix socket directory, the rest of the config kept', () => {
  const targets = targetsFor(
    {
      connectionString: "host=/tmp/sockets,db2 port=5544 dbname=app user=w password='p w' connect_timeout=3",
      statement_timeout: 1000,
    },
    {},
  );
  assert.equal(targets.length, 2);
  const first = resolved(targets[0]!.config);
  assert.equal(first.host, '/tmp/sockets');
  assert.equal(first.port, 5544);
  assert.equal(first.password, 'p w');
  assert.equal(first.database, 'app');
  assert.equal(resolved(targets[1]!.config).host, 'db2');
  assert.equal(targets[0]!.config.connectionTimeoutMillis, 3000);
  assert.equal(targets[0]!.config.statement_timeout, 1000);
});

test('targets: a host list in the config or in PGHOST', () => {
  const fromConfig = targetsFor({ host: 'db1,db2', port: 5432, user: 'u', database: 'd' }, {});
  assert.deepEqual(
    fromConfig.map((t) => [t.config.host, t.config.port]),
    [
      ['db1', 5432],
      ['db2', 5432],
    ],
  );
  const fromEnv = targetsFor({ user: 'u' }, { PGHOST: 'a,b', PGPORT: '1,2' });
  assert.deepEqual(
    fromEnv.map((t) => [t.config.host, t.config.port]),
    [
      ['a', 1],
      ['b', 2],
    ],
  );
});

test('targets: a single-host URI or plain config is passed through untouched', () => {
  const uri = 'postgres://u@db:5432/app?sslmode=disable';
  assert.deepEqual(targetsFor({ connectionString: uri }, {}), [{ config: { connectionString: uri }, label: 'db:5432' }]);
  const plain = { host: 'db', port: 5432, user: 'u' };
  assert.deepEqual(targetsFor(plain, {})[0]!.config, plain);
  assert.equal(targetsFor({}, {}).length, 1);
});
