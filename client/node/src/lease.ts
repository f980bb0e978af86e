// The self-fencing lease: how long a member may go on using its assignment
// after a successful heartbeat, on the local clock only.
//
// The server may expire the member `lease_remaining` after its heartbeat
// was stamped, as the heartbeat row says. The client reads its clock just
// before it sends the heartbeat, so `sentAt + lease_remaining` is never later
// than the moment the server can expire it: the lease end. The registrar
// reports `lost` a safety margin earlier, so that the application has time to
// stop:
//
//   margin = max(10% of remaining, heartbeat interval),
//            at most (remaining - heartbeat interval) / 2, at least 0.
//
// With a heartbeat every 5 s and a grace period of 10 s (remaining 15 s) that
// is 5 s: lost 10 s after the last successful heartbeat was sent. The upper
// bound keeps one slow heartbeat from fencing a healthy member.

export interface Lease {
  /** When the server may expire the member (registrar clock, ms). */
  readonly end: number;
  /** When the registrar reports `lost` if no heartbeat succeeded meanwhile. */
  readonly fenceAt: number;
}

export function safetyMargin(remainingMs: number, intervalMs: number): number {
  if (!(remainingMs > 0)) return 0;
  const margin = Math.max(remainingMs / 10, intervalMs);
  const upper = (remainingMs - intervalMs) / 2;
  return Math.max(0, Math.min(margin, upper));
}

export function leaseFrom(sentAt: number, remainingMs: number, intervalMs: number): Lease {
  const remaining = Math.max(0, remainingMs);
  const end = sentAt + remaining;
  return { end, fenceAt: end - safetyMargin(remaining, intervalMs) };
}
