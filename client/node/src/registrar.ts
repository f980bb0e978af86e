// ShardRegistrar: one member of a cluster, on one dedicated connection.
//
// The loop: connect (the first read-write server of the list), fetch the two
// channel names and LISTEN on them, apply the interval options once, then
// heartbeat at the interval the server returns, and at once after an
// acknowledgement or a notice that cannot be used. A lost connection, a
// failed or unanswered query: reconnect with backoff and jitter. Nothing
// ends the loop but stop().
//
// What the server says goes into the Tracker (tracker.ts); deliveries to the
// listeners, the clock (lease and release deadlines) and acknowledgements
// are driven from here.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';

import type pg from 'pg';
import type { ClientConfig } from 'pg';

import { Backoff } from './backoff.js';
import { leaseClock, type Clock } from './clock.js';
import { connectWritable, discard, type Connecting } from './connect.js';
import { targetsFor, type Target } from './conninfo.js';
import { emittedFrom, type CancelablePromise, type EmittedOptions } from './emitted.js';
import { Log, type Logger } from './log.js';
import {
  CHANNELS_SQL,
  CONFIGURE_SQL,
  FENCE_KEYS_SQL,
  FENCE_SQL,
  HEARTBEAT_SQL,
  LEAVE_SQL,
  MEMBER_CHANNEL_SQL,
  READ_SETTINGS_SQL,
  SQLSTATE,
  listenSql,
  readHeartbeatRow,
  readNotification,
} from './protocol.js';
import { Tracker } from './tracker.js';
import type { Assignment, Loss, ShardInfo, ShardRegistrarEvents } from './types.js';

/** Anything with node-postgres's `query(text, values)`: a pg.Client, a pg.PoolClient, a pg.Pool. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A pg.Pool, as far as the registrar uses one. */
export interface PoolLike extends Queryable {
  readonly options?: object;
  connect(): Promise<Queryable & { release(err?: Error | boolean): void }>;
}

export interface ShardRegistrarOptions {
  /** The cluster's name (1 to 63 bytes). */
  cluster: string;
  /**
   * Where the database is: a `pg.Pool` (its settings are used for the
   * registrar's own connection, and it serves `withFence()`), a `pg`
   * connection config, or a connection string (libpq keyword or URI form,
   * with several hosts if need be). Default: the `PG*` environment variables.
   */
  pool?: PoolLike | ClientConfig | string;
  /** Accepted for compatibility with the predecessor, and ignored. */
  ipc?: unknown;
  /**
   * Seconds between heartbeats. The cluster's settings on the server are the
   * truth: when this (or `gracePeriod`, `reshardInterval`) differs, the
   * registrar applies it with `shard_coordinator.configure()` if its role
   * may, and warns once otherwise.
   */
  heartbeatInterval?: number;
  /** Seconds a member may miss heartbeats beyond the interval before it is expired. */
  gracePeriod?: number;
  /** Minimum seconds between two reshards of the cluster while members work. */
  reshardInterval?: number;
  /**
   * This member's name, unique in the cluster (1 to 127 bytes). Default:
   * `<host>-<pid>-<random>`.
   */
  member?: string;
  /**
   * `auto` (default): an assignment counts as applied (and revoked work as
   * released) once every listener of its events has returned and every
   * promise they returned has settled. `manual`: only when
   * `acknowledge(epoch)` is called.
   */
  acknowledge?: 'auto' | 'manual';
  /** Where errors without an `error` listener, and warnings, go. Default: `console`. */
  logger?: Logger;
}

export interface StopOptions {
  /**
   * Leave the cluster (`shard_coordinator.leave()`), so that the member's
   * work is handed on at once. Default: true (the predecessor's default was
   * false). With false the member stays registered until it expires.
   */
  unregister?: boolean;
}

type EventName = keyof ShardRegistrarEvents;
type Listener<E extends EventName> = (...args: ShardRegistrarEvents[E]) => unknown;

// Typed events on top of EventEmitter.
export interface ShardRegistrar {
  on<E extends EventName>(event: E, listener: Listener<E>): this;
  once<E extends EventName>(event: E, listener: Listener<E>): this;
  off<E extends EventName>(event: E, listener: Listener<E>): this;
  addListener<E extends EventName>(event: E, listener: Listener<E>): this;
  removeListener<E extends EventName>(event: E, listener: Listener<E>): this;
  prependListener<E extends EventName>(event: E, listener: Listener<E>): this;
  prependOnceListener<E extends EventName>(event: E, listener: Listener<E>): this;
  emit<E extends EventName>(event: E, ...args: ShardRegistrarEvents[E]): boolean;
  listenerCount(event: EventName): number;
}

/** A connection the loop is using. */
class Session {
  dead: Error | null = null;
  memberChannel = '';
  clusterChannel: string | null = null;
  private readonly deathListeners = new Set<(err: Error) => void>();

  constructor(
    readonly client: pg.Client,
    readonly label: string,
  ) {}

  die(err: Error): void {
    if (this.dead !== null) return;
    this.dead = err;
    const listeners = [...this.deathListeners];
    this.deathListeners.clear();
    for (const l of listeners) l(err);
  }

  onDeath(listener: (err: Error) => void): void {
    if (this.dead !== null) listener(this.dead);
    else this.deathListeners.add(listener);
  }

  offDeath(listener: (err: Error) => void): void {
    this.deathListeners.delete(listener);
  }

  kill(err: Error): void {
    this.die(err);
    void discard(this.client);
  }
}

/** Everything of one start() .. stop() span. */
class Run {
  active = true;
  unregister = true;
  session: Session | null = null;
  connecting: Connecting | null = null;
  /** Ends the loop's current wait between heartbeats. */
  wake: (() => void) | null = null;
  /** Ends the loop's current backoff sleep. */
  wakeSleep: (() => void) | null = null;
  urgent = false;
  lastSentAt = -Infinity;
  sentApplied: number | null = null;
  clockTimer: NodeJS.Timeout | null = null;
  settingsDone = false;
  done: Promise<void> = Promise.resolve();
  readonly firstRound: Promise<void>;
  private resolveFirst: () => void = () => undefined;

  constructor(readonly tracker: Tracker) {
    this.firstRound = new Promise((resolve) => {
      this.resolveFirst = resolve;
    });
  }

  firstRoundDone(): void {
    this.resolveFirst();
  }
}

const POOL_ONLY_KEYS = [
  'max',
  'min',
  'idleTimeoutMillis',
  'maxUses',
  'allowExitOnIdle',
  'maxLifetimeSeconds',
  'log',
  'Client',
  'Promise',
  'poolSize',
  'verify',
];

function isPoolLike(x: unknown): x is PoolLike {
  const p = x as { connect?: unknown; query?: unknown; options?: unknown } | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.connect === 'function' &&
    typeof p.query === 'function' &&
    typeof p.options === 'object' &&
    p.options !== null
  );
}

function connectionConfig(pool: ShardRegistrarOptions['pool']): ClientConfig {
  if (pool === undefined || pool === null) return {};
  if (typeof pool === 'string') return { connectionString: pool };
  if (isPoolLike(pool)) {
    const options = pool.options as Record<string, unknown>;
    const config: Record<string, unknown> = { ...options };
    for (const k of POOL_ONLY_KEYS) delete config[k];
    // pg.Pool keeps the password out of sight (not enumerable).
    if (options['password'] !== undefined) config['password'] = options['password'];
    return config as ClientConfig;
  }
  return { ...(pool as ClientConfig) };
}

function sqlstate(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    (typeof x === 'object' || typeof x === 'function') &&
    x !== null &&
    typeof (x as { then?: unknown }).then === 'function'
  );
}

function defaultMember(): string {
  const host = (hostname().split('.')[0] ?? '') || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

function newIncarnation(): string {
  let v = randomBytes(8).readBigInt64BE();
  if (v === 0n) v = 1n; // 0 means "none" to the server
  return v.toString();
}

function checkSeconds(name: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new TypeError(`${name} must be a number of seconds, got ${String(v)}`);
  }
  return v;
}

/**
 * One member of a cluster: heartbeats, notifications, its assignment.
 *
 * A drop-in replacement for the `ShardRegistrar` of
 * `@jcoreio/postgres-shard-coordinator`: same options, methods and
 * `shardChanged` / `error` events; see README.md for what differs.
 */
export class ShardRegistrar extends EventEmitter {
  readonly cluster: string;
  readonly member: string;
  /** The random 64-bit id sent with every heartbeat, as a decimal string. */
  readonly incarnation: string;

  private readonly targets: readonly Target[];
  private readonly pool: PoolLike | null;
  private readonly manual: boolean;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly wanted: {
    heartbeatInterval: number | undefined;
    gracePeriod: number | undefined;
    reshardInterval: number | undefined;
  };
  private readonly warned = new Set<string>();
  private run: Run | null = null;

  constructor(options: ShardRegistrarOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('options are required');
    if (typeof options.cluster !== 'string' || options.cluster === '') {
      throw new TypeError('options.cluster must be a non-empty string');
    }
    if (options.member !== undefined && (typeof options.member !== 'string' || options.member === '')) {
      throw new TypeError('options.member must be a non-empty string');
    }
    if (options.acknowledge !== undefined && options.acknowledge !== 'auto' && options.acknowledge !== 'manual') {
      throw new TypeError("options.acknowledge must be 'auto' or 'manual'");
    }
    this.cluster = options.cluster;
    this.member = options.member ?? defaultMember();
    this.incarnation = newIncarnation();
    this.wanted = {
      heartbeatInterval: checkSeconds('heartbeatInterval', options.heartbeatInterval),
      gracePeriod: checkSeconds('gracePeriod', options.gracePeriod),
      reshardInterval: checkSeconds('reshardInterval', options.reshardInterval),
    };
    this.pool = isPoolLike(options.pool) ? options.pool : null;
    this.targets = targetsFor(connectionConfig(options.pool));
    this.manual = options.acknowledge === 'manual';
    this.clock = leaseClock();
    this.log = new Log(options.logger ?? console, `shard-coordinator ${this.cluster}/${this.member}: `);
  }

  // ---- the predecessor's API ----

  /**
   * Joins the cluster and keeps heartbeating until stop(). Resolves once the
   * first heartbeat was answered, or the first attempt failed (it is retried
   * in the background; failures are `error` events). Does nothing while
   * running.
   */
  async start(): Promise<void> {
    if (this.run !== null && this.run.active) return;
    if (this.run !== null) await this.run.done; // a stop() under way
    if (this.run !== null && this.run.active) return;
    const run = new Run(new Tracker(this.clock));
    this.run = run;
    run.done = this.loop(run).catch((err: unknown) => this.log.error('the heartbeat loop failed', err));
    await run.firstRound;
  }

  /**
   * Stops heartbeating and closes the connection; with `unregister` (the
   * default) leaves the cluster first. No event is emitted afterwards.
   */
  async stop(options?: StopOptions): Promise<void> {
    const run = this.run;
    if (run === null) return;
    if (run.active) {
      run.active = false;
      run.unregister = options?.unregister ?? true;
      if (run.clockTimer !== null) clearTimeout(run.clockTimer);
      run.clockTimer = null;
      run.wake?.();
      run.wakeSleep?.();
      run.connecting?.cancel();
      run.firstRoundDone();
    }
    await run.done;
    if (this.run === run) this.run = null;
  }

  /** The shard and count last reported by `shardChanged`; throws while the member holds no shard. */
  shardInfo(): ShardInfo {
    const info = this.run?.tracker.shardInfo ?? null;
    if (info === null) throw new Error('no shard has been reserved');
    return { shard: info.shard, numShards: info.numShards };
  }

  /**
   * A promise for the next emission of `event` (the first argument), that
   * passes `filter` if given; rejected by an `error` event. As the
   * predecessor's `emitted()`.
   */
  emitted<E extends EventName>(
    event: E,
    options?: ((arg: ShardRegistrarEvents[E][0]) => boolean) | EmittedOptions<ShardRegistrarEvents[E]>,
  ): CancelablePromise<ShardRegistrarEvents[E][0]> {
    const opts: EmittedOptions<unknown[]> =
      typeof options === 'function'
        ? { filter: options as (...args: unknown[]) => boolean }
        : ((options ?? {}) as EmittedOptions<unknown[]>);
    return emittedFrom(this, event, opts);
  }

  // ---- beyond the predecessor ----

  /** The assignment last handed to the listeners (null before the first, and after stop()). */
  currentAssignment(): Assignment | null {
    return this.run?.tracker.told ?? null;
  }

  /**
   * Marks the assignment of `epoch` as applied (revoked work released): the
   * next heartbeat, sent at once, tells the server. Needed with
   * `acknowledge: 'manual'`; with `auto` it cuts short the wait for the
   * listeners. Returns false if `epoch` was not given yet or is already
   * applied.
   */
  acknowledge(epoch: number): boolean {
    const run = this.run;
    if (run === null || !run.active) return false;
    const moved = run.tracker.settle(epoch);
    if (moved) this.afterChange(run);
    return moved;
  }

  /**
   * Inside the caller's transaction on `client`: fails (SQLSTATE SC001)
   * unless this member's assignment is still that of `epoch` (default: the
   * current one), and then holds the cluster's reshards until the
   * transaction ends. `keys` limits the check to those keys.
   */
  async fence(client: Queryable, epoch?: number, keys?: readonly number[]): Promise<void> {
    let e = epoch;
    if (e === undefined) {
      const a = this.currentAssignment();
      if (a === null || a.state !== 'active') throw new Error('no shard has been reserved');
      e = a.epoch;
    }
    if (keys !== undefined) await client.query(FENCE_KEYS_SQL, [this.cluster, this.member, String(e), [...keys]]);
    else await client.query(FENCE_SQL, [this.cluster, this.member, String(e)]);
  }

  /**
   * Runs `fn` in a transaction fenced with the current assignment: BEGIN,
   * fence(), fn, COMMIT (ROLLBACK if anything throws). The connection comes
   * from the `pool` option when it is a pg.Pool, else a connection is opened
   * for the call.
   */
  async withFence<T>(fn: (client: Queryable, assignment: Assignment) => Promise<T> | T): Promise<T> {
    const a = this.currentAssignment();
    if (a === null || a.state !== 'active' || (a.shard === null && (a.slots === null || a.slots.length === 0))) {
      throw new Error('no shard has been reserved');
    }
    let client: Queryable;
    let release: (broken: boolean) => Promise<void>;
    if (this.pool !== null) {
      const c = await this.pool.connect();
      client = c;
      release = async (broken) => c.release(broken);
    } else {
      const { client: c } = await connectWritable(this.targets, () => undefined).done;
      client = c as unknown as Queryable;
      release = () => discard(c, 1000);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      await this.fence(client, a.epoch);
      const result = await fn(client, a);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      await release(broken);
    }
  }

  // ---- the loop ----

  private async loop(run: Run): Promise<void> {
    const backoff = new Backoff(100, 5000);
    while (run.active) {
      let session: Session | null = null;
      try {
        session = await this.openSession(run);
        run.session = session;
        if (run.active) await this.serve(run, session, backoff);
      } catch (err) {
        if (run.active) this.reportError(run, err);
      }
      run.firstRoundDone();
      if (!run.active) break;
      if (session !== null) {
        run.session = null;
        void discard(session.client);
      }
      const intervalMs = run.tracker.heartbeatIntervalMs ?? (this.wanted.heartbeatInterval ?? 5) * 1000;
      backoff.setCap(Math.min(5000, intervalMs));
      await this.sleep(run, backoff.next());
    }
    await this.finish(run);
  }

  private async openSession(run: Run): Promise<Session> {
    let session: Session | null = null;
    const connecting = connectWritable(this.targets, (err) => session?.die(err));
    run.connecting = connecting;
    try {
      const { client, target } = await connecting.done;
      session = new Session(client, target.label);
      const s = session;
      client.on('end', () => s.die(new Error('the connection was closed')));
      client.on('notification', (msg) => this.guard(run, () => this.onNotification(run, s, msg)));
      this.log.debug(`connected to ${target.label}`);
      return session;
    } finally {
      run.connecting = null;
    }
  }

  // Channels, LISTEN, settings, then heartbeats until the run ends or the
  // connection fails (throws).
  private async serve(run: Run, session: Session, backoff: Backoff): Promise<void> {
    run.tracker.newConnection();
    await this.listen(run, session);
    await this.applySettings(run, session);
    while (run.active) {
      await this.heartbeat(run, session);
      backoff.reset();
      const intervalMs = run.tracker.heartbeatIntervalMs ?? 5000;
      while (run.active && !run.urgent) {
        const left = run.lastSentAt + intervalMs - this.clock();
        if (left <= 0) break;
        await this.wait(run, session, left);
      }
    }
  }

  private async listen(run: Run, session: Session): Promise<void> {
    try {
      const res = await this.query(run, session, CHANNELS_SQL, [this.cluster, this.member]);
      const row = res.rows[0] as { member_channel?: string; cluster_channel?: string } | undefined;
      session.memberChannel = row?.member_channel ?? '';
      session.clusterChannel = row?.cluster_channel ?? null;
    } catch (err) {
      if (sqlstate(err) !== SQLSTATE.undefinedFunction || session.dead !== null) throw err;
      // An extension without channel(cluster): its reshards notify every
      // member on its own channel.
      this.warnOnce(
        'no-cluster-channel',
        'the server has no shard_coordinator.channel(cluster): listening on the member channel only',
      );
      const res = await this.query(run, session, MEMBER_CHANNEL_SQL, [this.cluster, this.member]);
      const row = res.rows[0] as { member_channel?: string } | undefined;
      session.memberChannel = row?.member_channel ?? '';
      session.clusterChannel = null;
    }
    if (session.memberChannel === '') throw new Error('the server returned no channel name');
    const channels = [session.memberChannel];
    if (session.clusterChannel !== null) channels.push(session.clusterChannel);
    await this.query(run, session, listenSql(channels));
  }

  // The interval options against the cluster's settings on the server: the
  // server's are the truth; differing options are applied with configure()
  // when the role may, else a warning (once).
  private async applySettings(run: Run, session: Session): Promise<void> {
    if (run.settingsDone) return;
    const w = this.wanted;
    if (w.heartbeatInterval === undefined && w.gracePeriod === undefined && w.reshardInterval === undefined) {
      run.settingsDone = true;
      return;
    }
    let current: Record<string, number> | null | 'unreadable' = null;
    try {
      const res = await this.query(run, session, READ_SETTINGS_SQL, [this.cluster]);
      current = (res.rows[0] as Record<string, number> | undefined) ?? null;
    } catch (err) {
      if (sqlstate(err) === undefined) throw err;
      current = 'unreadable';
    }
    const differs = (key: keyof typeof w): boolean => {
      const v = w[key];
      if (v === undefined) return false;
      if (current === null || current === 'unreadable') return true;
      const col = key === 'heartbeatInterval' ? 'heartbeat_interval' : key === 'gracePeriod' ? 'grace_period' : 'reshard_interval';
      return Math.abs((current[col] ?? NaN) - v) > 1e-6 || Number.isNaN(current[col] ?? NaN);
    };
    const keys = (['heartbeatInterval', 'gracePeriod', 'reshardInterval'] as const).filter(differs);
    if (keys.length > 0) {
      try {
        await this.query(run, session, CONFIGURE_SQL, [
          this.cluster,
          w.heartbeatInterval ?? null,
          w.gracePeriod ?? null,
          w.reshardInterval ?? null,
        ]);
        if (current !== 'unreadable') {
          this.log.info(`applied ${keys.join(', ')} to cluster ${this.cluster} with shard_coordinator.configure()`);
        }
      } catch (err) {
        const code = sqlstate(err);
        if (code === undefined) throw err;
        const what = keys.map((k) => `${k} ${String(w[k])} s`).join(', ');
        if (code === SQLSTATE.insufficientPrivilege) {
          this.warnOnce(
            'settings',
            current === 'unreadable'
              ? `could not compare the options (${what}) with cluster ${this.cluster}'s settings, and this role may not apply them with shard_coordinator.configure(): the server's settings apply`
              : `the options (${what}) differ from cluster ${this.cluster}'s settings, and this role may not apply them with shard_coordinator.configure(): the server's settings apply`,
          );
        } else {
          this.reportError(run, new Error(`could not apply the options (${what}) with shard_coordinator.configure(): ${asError(err).message}`));
        }
      }
    }
    run.settingsDone = true;
  }

  private async heartbeat(run: Run, session: Session): Promise<void> {
    run.urgent = false;
    const applied = run.tracker.applied;
    const sentAt = this.clock();
    run.lastSentAt = sentAt;
    const res = await this.query(run, session, HEARTBEAT_SQL, [
      this.cluster,
      this.member,
      applied === null ? null : String(applied),
      this.incarnation,
    ]).catch((err: unknown) => {
      if (sqlstate(err) !== SQLSTATE.undefinedFunction) throw err;
      throw new Error(
        `${asError(err).message}: this client needs the shard_coordinator extension at version 1.1 or later ` +
          '(ALTER EXTENSION shard_coordinator UPDATE), and EXECUTE on heartbeat(text, text, bigint, bigint)',
      );
    });
    const row = readHeartbeatRow(res.rows[0] as Record<string, unknown> | undefined);
    run.sentApplied = applied;
    if (!run.active) return;
    this.log.debug(
      `heartbeat: ${row.state} shard ${String(row.shard)} of ${row.numShards}, epoch ${row.epoch}, applied ${String(applied)}`,
    );
    run.tracker.heartbeat(row, sentAt);
    this.afterChange(run);
    run.firstRoundDone();
  }

  private onNotification(run: Run, session: Session, msg: pg.Notification): void {
    if (!run.active || run.session !== session) return;
    const n = readNotification(msg.channel, msg.payload, {
      cluster: this.cluster,
      member: this.member,
      memberChannel: session.memberChannel,
      clusterChannel: session.clusterChannel,
    });
    this.log.debug(`notification on ${msg.channel}: ${String(msg.payload)}`);
    let now = false;
    if (n.kind === 'ignored') {
      if (n.why !== null) this.log.warn(n.why);
      return;
    } else if (n.kind === 'member') {
      now = run.tracker.notice(n.notice);
    } else {
      now = run.tracker.clusterNotice(n.epoch, n.numShards);
    }
    if (now) this.heartbeatNow(run);
    this.afterChange(run);
  }

  private heartbeatNow(run: Run): void {
    run.urgent = true;
    run.wake?.();
  }

  // After anything changed: losses, deliveries, the clock, acknowledgements.
  private afterChange(run: Run): void {
    if (!run.active) return;
    const loss = run.tracker.tick();
    if (loss !== null) this.reportLoss(run, loss);
    this.pump(run);
    this.armClock(run);
    const applied = run.tracker.applied;
    if (applied !== null && applied !== run.sentApplied) this.heartbeatNow(run);
  }

  // Hands the listeners every assignment they have not been told, one at a
  // time: the next waits until the listeners of the previous one returned
  // and their promises settled (auto mode).
  private pump(run: Run): void {
    for (;;) {
      if (!run.active) return;
      const next = run.tracker.pending();
      if (next === null) return;
      const d = run.tracker.begin(next, !this.manual);
      const results: unknown[] = [];
      if (d.revoked !== null) results.push(...this.callListeners(run, 'revoked', d.revoked));
      results.push(...this.callListeners(run, 'assignment', d.assignment));
      if (d.shardChanged !== null) results.push(...this.callListeners(run, 'shardChanged', d.shardChanged));
      if (!run.active) return;
      if (this.manual) continue;
      const promises = results.filter(isThenable);
      if (promises.length === 0) {
        run.tracker.settle(d.assignment.epoch);
        continue;
      }
      const epoch = d.assignment.epoch;
      void Promise.allSettled(promises).then((outcomes) => {
        for (const o of outcomes) if (o.status === 'rejected') this.reportError(run, o.reason);
        if (!run.active) return;
        this.guard(run, () => {
          run.tracker.settle(epoch);
          this.afterChange(run);
        });
      });
      return;
    }
  }

  private reportLoss(run: Run, loss: Loss): void {
    const lostAssignment = run.tracker.told;
    const heard = this.listenerCount('lost') + this.listenerCount('assignment') > 0;
    if (!heard) {
      this.log.warn(
        loss.reason === 'lease'
          ? 'the lease ran out without a successful heartbeat: stop all work (listen for "lost")'
          : 'revoked work was not acknowledged before its deadline: stop all work (listen for "lost")',
      );
    }
    this.catchRejections(run, this.callListeners(run, 'lost', loss));
    if (lostAssignment !== null) this.catchRejections(run, this.callListeners(run, 'assignment', lostAssignment));
  }

  private catchRejections(run: Run, results: unknown[]): void {
    for (const r of results) {
      if (isThenable(r)) {
        Promise.resolve(r).catch((err: unknown) => this.reportError(run, err));
      }
    }
  }

  // Calls each listener as emit() would, and returns what they returned. A
  // listener that throws is reported as an error and counts as returned.
  private callListeners<E extends 'shardChanged' | 'assignment' | 'revoked' | 'lost'>(
    run: Run,
    event: E,
    arg: ShardRegistrarEvents[E][0],
  ): unknown[] {
    const out: unknown[] = [];
    for (const listener of this.rawListeners(event)) {
      try {
        out.push((listener as (a: unknown) => unknown).call(this, arg));
      } catch (err) {
        this.reportError(run, err);
      }
    }
    return out;
  }

  private armClock(run: Run): void {
    if (run.clockTimer !== null) clearTimeout(run.clockTimer);
    run.clockTimer = null;
    if (!run.active) return;
    const at = run.tracker.nextDeadline();
    if (at === null) return;
    // At least every second: a suspended machine shows on the lease clock
    // only when someone looks.
    const delay = Math.min(Math.max(0, at - this.clock()), 1000);
    run.clockTimer = setTimeout(() => {
      run.clockTimer = null;
      this.guard(run, () => this.afterChange(run));
    }, Math.ceil(delay) + 1);
  }

  private wait(run: Run, session: Session, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const onDeath = (err: Error) => {
        clearTimeout(timer);
        run.wake = null;
        reject(err);
      };
      const done = () => {
        clearTimeout(timer);
        run.wake = null;
        session.offDeath(onDeath);
        resolve();
      };
      timer = setTimeout(done, Math.max(0, Math.ceil(ms)));
      run.wake = done;
      session.onDeath(onDeath);
    });
  }

  private sleep(run: Run, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const done = () => {
        clearTimeout(timer);
        run.wakeSleep = null;
        resolve();
      };
      timer = setTimeout(done, Math.max(0, Math.ceil(ms)));
      run.wakeSleep = done;
    });
  }

  // A query with a deadline: with no answer in time the connection is
  // dropped (a frozen server or network), and the loop reconnects. heartbeat()
  // and leave() may wait up to 10 s on the server for its background worker.
  private query(run: Run, session: Session, sql: string, params?: unknown[]): Promise<pg.QueryResult> {
    const timeoutMs = Math.max(15000, run.tracker.heartbeatIntervalMs ?? 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new Error(`no answer from the server (${session.label}) within ${timeoutMs / 1000} s`);
        session.kill(err);
        reject(err);
      }, timeoutMs);
      session.client.query(sql, params).then(
        (res) => {
          clearTimeout(timer);
          resolve(res);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(asError(err));
        },
      );
    });
  }

  private async finish(run: Run): Promise<void> {
    if (run.clockTimer !== null) clearTimeout(run.clockTimer);
    run.clockTimer = null;
    const session = run.session;
    run.session = null;
    if (session === null) return;
    if (session.dead === null && run.unregister) {
      try {
        await this.query(run, session, LEAVE_SQL, [this.cluster, this.member, this.incarnation]);
      } catch (err) {
        this.log.warn(`could not leave the cluster (the member will expire): ${asError(err).message}`);
      }
    }
    await discard(session.client, 2000);
  }

  private guard(run: Run, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.reportError(run, err);
    }
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message);
  }

  // An `error` event if anyone listens, else the log: never an exception.
  private reportError(run: Run, err: unknown): void {
    const error = asError(err);
    if (this.run !== run && !run.active) return;
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error);
      } catch (thrown) {
        this.log.error('an error listener threw', thrown);
      }
      return;
    }
    this.log.error(error.message);
  }
}
