// Helpers of the integration tests: a throwaway server from
// scripts/with-pg.sh (PG* variables), waiting by polling, event recorders,
// and a TCP proxy that can cut a connection or drop notifications.

import { after } from 'node:test';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { ShardRegistrar, type ShardRegistrarOptions } from '../../src/index.js';
import type { Logger } from '../../src/log.js';

// The test runner turns an uncaught exception into a cancelled test with
// little to go on: say what it was.
process.on('uncaughtException', (err) => console.error('uncaught exception:', err));

/** Polls `check` until it returns a value that is not false/null/undefined; fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  timeoutMs = 30000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== false && v !== null && v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** A pool on the test server for checks in SQL; ended after the file's tests. */
let sharedPool: pg.Pool | null = null;
export function db(): pg.Pool {
  if (sharedPool === null) {
    sharedPool = new pg.Pool({ max: 4 });
    sharedPool.on('error', () => undefined);
  }
  return sharedPool;
}

const registrars: ShardRegistrar[] = [];
// Registered when this module loads, so that they run after the whole file.
after(async () => {
  await Promise.all(registrars.map((r) => r.stop()));
  if (sharedPool !== null) await sharedPool.end();
});

export async function members(cluster: string): Promise<Record<string, unknown>[]> {
  const res = await db().query(
    'SELECT member, shard, num_shards, epoch::int AS epoch, state, slots, withheld, releasing, ' +
      'acknowledged_epoch::int AS acknowledged_epoch FROM shard_coordinator.members WHERE cluster = $1 ORDER BY member',
    [cluster],
  );
  return res.rows as Record<string, unknown>[];
}

/** A logger that keeps what it is given (and prints errors when TEST_VERBOSE is set). */
export class TestLogger implements Logger {
  readonly lines: { level: string; text: string }[] = [];
  /** When each heartbeat was answered (from the registrar's debug lines). */
  readonly heartbeatTimes: number[] = [];
  get heartbeats(): number {
    return this.heartbeatTimes.length;
  }
  debug(message: string): void {
    if (message.includes('heartbeat:')) this.heartbeatTimes.push(Date.now());
  }
  error(message: string, ...rest: unknown[]): void {
    this.add('error', message, rest);
  }
  warn(message: string, ...rest: unknown[]): void {
    this.add('warn', message, rest);
  }
  info(message: string, ...rest: unknown[]): void {
    this.add('info', message, rest);
  }
  private add(level: string, message: string, rest: unknown[]): void {
    const text = [message, ...rest.map((r) => (r instanceof Error ? r.message : String(r)))].join(' ');
    this.lines.push({ level, text });
    if (process.env['TEST_VERBOSE']) console.error(`[${level}] ${text}`);
  }
}

export interface Recorded {
  readonly at: number; // Date.now()
  readonly event: string;
  readonly value: unknown;
}

/** Records every event of a registrar, with the time. */
export function record(r: ShardRegistrar): Recorded[] {
  const out: Recorded[] = [];
  for (const event of ['assignment', 'shardChanged', 'revoked', 'lost', 'error'] as const) {
    r.on(event, (value: unknown) => {
      out.push({ at: Date.now(), event, value });
    });
  }
  return out;
}

/** A registrar stopped after the file's tests (if the test did not). */
export function registrar(options: ShardRegistrarOptions): ShardRegistrar {
  const r = new ShardRegistrar({ logger: new TestLogger(), ...options });
  registrars.push(r);
  return r;
}

/** The server's address from the PG* variables. */
export function serverAddress(): { host: string; port: number } {
  const host = process.env['PGHOST'] ?? 'localhost';
  if (host.startsWith('/')) throw new Error('the tests need PGHOST to be a TCP host');
  return { host, port: Number(process.env['PGPORT'] ?? 5432) };
}

/** A TCP port on which nothing listens (for "the first host is down"). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP proxy to the test server. `cut()` stops forwarding in both
 * directions without closing anything (a frozen network: the client sees no
 * error, only silence) and holds new connections the same way; `restore()`
 * closes what it held and forwards again. With `dropNotifications`, the
 * server's NotificationResponse messages ('A') are dropped on the way (a
 * client that misses every NOTIFY, as behind a transaction-mode pooler).
 */
export class TcpProxy {
  private server: net.Server | null = null;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private frozen = false;
  dropNotifications = false;
  /** Notifications dropped so far. */
  dropped = 0;
  port = 0;

  async start(): Promise<this> {
    const target = serverAddress();
    this.server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      const pair = { client, upstream };
      this.pairs.add(pair);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
      client.on('data', (chunk: Buffer) => {
        if (!this.frozen) upstream.write(chunk);
      });
      let pending = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        if (this.frozen) return;
        if (!this.dropNotifications) {
          client.write(chunk);
          return;
        }
        // Backend messages: type byte, then a 4-byte length that counts itself.
        pending = Buffer.concat([pending, chunk]);
        const keep: Buffer[] = [];
        while (pending.length >= 5) {
          const type = String.fromCharCode(pending[0] ?? 0);
          const len = pending.readUInt32BE(1);
          if (pending.length < 1 + len) break;
          if (type !== 'A') keep.push(pending.subarray(0, 1 + len));
          else this.dropped++;
          pending = pending.subarray(1 + len);
        }
        if (keep.length > 0) client.write(Buffer.concat(keep));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** Connections through the proxy now. */
  get connections(): number {
    return this.pairs.size;
  }

  cut(): void {
    this.frozen = true;
  }

  restore(): void {
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    this.frozen = false;
  }

  async close(): Promise<void> {
    this.restore();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** A pg config that goes through the proxy. */
  config(): pg.ClientConfig {
    return { host: '127.0.0.1', port: this.port };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
