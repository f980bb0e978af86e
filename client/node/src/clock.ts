// The clock that leases are measured on.
//
// The protocol wants a monotonic clock that also counts time the machine
// spent suspended. Node's monotonic clock (performance.now()) stops during a
// suspend on Linux, so this clock is performance.now() moved forward by any
// time the wall clock has gained on it since the clock was made: a suspend
// shows there. A step of the wall clock forward moves it forward too (a
// lease then ends early, which is safe); a step back is ignored. It never
// goes back and never runs slower than the monotonic clock.

import { performance } from 'node:perf_hooks';

/** Milliseconds on a clock that only goes forward; compare only with itself. */
export type Clock = () => number;

export function leaseClock(): Clock {
  const offset = Date.now() - performance.now();
  let gained = 0;
  return () => {
    const mono = performance.now();
    const ahead = Date.now() - mono - offset;
    // Millisecond jitter of Date.now() is not a suspend.
    if (ahead > gained + 2) gained = ahead;
    return mono + gained;
  };
}
