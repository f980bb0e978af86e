// Where the registrar writes what nobody listens for.

/** The subset of `console` the registrar uses. */
export interface Logger {
  error(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
  info?(message: string, ...rest: unknown[]): void;
  debug?(message: string, ...rest: unknown[]): void;
}

/**
 * Writes through `logger` with a prefix; a message that repeats (a server
 * that stays down) is written at most once per `quietMs`.
 */
export class Log {
  private readonly lastSeen = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly prefix: string,
    private readonly quietMs = 30000,
  ) {}

  error(message: string, err?: unknown): void {
    if (this.quiet(message)) return;
    if (err !== undefined) this.logger.error(`${this.prefix}${message}`, err);
    else this.logger.error(`${this.prefix}${message}`);
  }

  warn(message: string): void {
    if (this.quiet(message)) return;
    this.logger.warn(`${this.prefix}${message}`);
  }

  info(message: string): void {
    this.logger.info?.(`${this.prefix}${message}`);
  }

  debug(message: string): void {
    this.logger.debug?.(`${this.prefix}${message}`);
  }

  private quiet(message: string): boolean {
    const now = Date.now();
    const last = this.lastSeen.get(message);
    if (last !== undefined && now - last < this.quietMs) return true;
    this.lastSeen.set(message, now);
    if (this.lastSeen.size > 100) {
      for (const [k, t] of this.lastSeen) if (now - t >= this.quietMs) this.lastSeen.delete(k);
    }
    return false;
  }
}
