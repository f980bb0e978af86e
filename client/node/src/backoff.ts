// Reconnect delays: exponential backoff with jitter. The n-th delay is drawn
// from [d/2, d] where d = initial * 2^n, capped.

export class Backoff {
  private attempts = 0;

  constructor(
    private readonly initialMs: number,
    private capMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  setCap(capMs: number): void {
    this.capMs = Math.max(capMs, this.initialMs);
  }

  reset(): void {
    this.attempts = 0;
  }

  next(): number {
    let full = this.initialMs;
    for (let i = 0; i < this.attempts && full < this.capMs; i++) full *= 2;
    full = Math.min(full, Math.max(this.capMs, this.initialMs));
    this.attempts++;
    const u = Math.min(1, Math.max(0, this.random()));
    return full / 2 + (full / 2) * u;
  }
}
