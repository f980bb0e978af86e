// Opening the registrar's own connection: try each server in order, keep the
// first that is not a standby (heartbeats, leave and configure fail on a
// standby with 25006), as libpq does with target_session_attrs=read-write.

import pg from 'pg';
import type { ClientConfig } from 'pg';

import { IS_STANDBY_SQL } from './protocol.js';
import type { Target } from './conninfo.js';

/** Defaults for the registrar's connections; the application's settings win. */
export function withDefaults(config: ClientConfig): ClientConfig {
  const c: ClientConfig = { ...config };
  // An unreachable host must not hold up the rest of a host list.
  if (c.connectionTimeoutMillis === undefined && process.env['PGCONNECT_TIMEOUT'] === undefined) {
    c.connectionTimeoutMillis = 5000;
  }
  // Between heartbeats the connection only listens: keepalives notice a
  // server that vanished without closing it (10 s of silence, then probes).
  if (c.keepAlive === undefined) c.keepAlive = true;
  if (c.keepAliveInitialDelayMillis === undefined) c.keepAliveInitialDelayMillis = 10000;
  if (c.application_name === undefined && c.fallback_application_name === undefined) {
    c.fallback_application_name = 'shard-coordinator';
  }
  return c;
}

/** A pg.Client whose idle errors are caught (an 'error' event without a listener would crash the process). */
export function newClient(config: ClientConfig, onError: (err: Error) => void): pg.Client {
  const client = new pg.Client(withDefaults(config));
  client.on('error', onError);
  return client;
}

/**
 * Ends a client without throwing: a goodbye to the server, and the socket
 * destroyed once that is done or after `graceMs` (a frozen or vanished
 * server never answers the goodbye). Resolves when the socket is closed.
 */
export function discard(client: pg.Client, graceMs = 0): Promise<void> {
  const stream = (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      stream?.destroy?.();
      resolve();
    };
    timer = setTimeout(finish, graceMs);
    client.end().then(finish, finish);
  });
}

export class NoServerError extends Error {
  constructor(readonly failures: readonly { label: string; error: Error }[]) {
    super(
      failures.length === 0
        ? 'no server to connect to'
        : 'could not connect to a read-write server: ' +
            failures.map((f) => `${f.label}: ${f.error.message}`).join('; '),
    );
    this.name = 'NoServerError';
  }
}

export interface Connecting {
  /** Abandons the attempt: the client being connected is ended. */
  cancel(): void;
  readonly done: Promise<{ client: pg.Client; target: Target }>;
}

/**
 * Connects to the first target that accepts and is not in recovery. The
 * returned client has `onError` attached for its whole life.
 */
export function connectWritable(targets: readonly Target[], onError: (err: Error) => void): Connecting {
  let cancelled = false;
  let current: pg.Client | null = null;
  // Ending a client while it connects can leave its connect() unsettled
  // (node-postgres then reports nothing), so a cancel ends the wait itself.
  let abort: (err: Error) => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    abort = reject;
  });
  aborted.catch(() => undefined);
  const done = (async () => {
    const failures: { label: string; error: Error }[] = [];
    for (const target of targets) {
      if (cancelled) break;
      const client = newClient(target.config, onError);
      current = client;
      try {
        await Promise.race([client.connect(), aborted]);
        const res = await Promise.race([client.query(IS_STANDBY_SQL), aborted]);
        const row = res.rows[0] as { standby?: boolean } | undefined;
        if (row?.standby !== false) throw new Error('the server is a standby (in recovery)');
        current = null;
        return { client, target };
      } catch (err) {
        void discard(client);
        current = null;
        failures.push({ label: target.label, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
    if (cancelled) throw new Error('connecting was cancelled');
    if (failures.length === 1 && targets.length === 1) throw failures[0]?.error ?? new NoServerError(failures);
    throw new NoServerError(failures);
  })();
  return {
    cancel() {
      cancelled = true;
      abort(new Error('connecting was cancelled'));
      if (current !== null) void discard(current);
    },
    done,
  };
}
