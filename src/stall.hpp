// Stalls: stretches of time in which the server did not run (every process
// stopped, a frozen VM or container), so that no heartbeat could be served.
// A member whose deadline passed during a stall heartbeated as soon as it
// could; the background worker extends its own waits by the stall before it
// expires anyone (as etcd extends leases when a new leader takes over).
// Extensions only ever lengthen the server's waits: the promise a heartbeat
// row made is not changed.
//
// The stall meter is a thread of the background worker that only sleeps
// and reads CLOCK_MONOTONIC: a tick that comes much later than planned means
// the process did not run meanwhile. The worker's own delays (a lock wait, a
// long transaction) are not stalls: the meter ticks on through them.
//
// Plain C++ with no PostgreSQL headers; StallLog is a plain struct so that
// it can live in shared memory.
#pragma once

#include <atomic>
#include <cstdint>

namespace shard_coordinator {

// The stalls measured, as (end, length) in monotonic microseconds, oldest
// first. Bounded: when full, the two oldest are merged into one that ends
// with the later and lasts both (which can only lengthen extensions).
struct StallLog {
  static constexpr int kMax = 32;
  int count;
  std::int64_t end[kMax];
  std::int64_t length[kMax];

  void clear() noexcept { count = 0; }
  void add(std::int64_t stall_end, std::int64_t stall_length) noexcept;
  // How much of the logged stalls came after `stamp`: the extension of a
  // deadline that counts from `stamp`.
  std::int64_t extension_after(std::int64_t stamp) const noexcept;
  // Forgets stalls that ended before `horizon`.
  void forget_before(std::int64_t horizon) noexcept;
};

class StallMeter {
 public:
  // Ticks every tick_us; a tick later than tolerance_us counts as a stall
  // of its whole lateness.
  static constexpr std::int64_t kTickUs = 20 * 1000;
  static constexpr std::int64_t kToleranceUs = 200 * 1000;

  // Starts the thread, with every signal blocked in it (PostgreSQL's
  // handlers must run in the main thread). Returns false if it could not.
  bool start() noexcept;
  // The meter has ticked recently enough at `now` that every stall up to
  // now has been measured. When false, a stall may be under way or just
  // over: decide nothing that a stall would change.
  bool caught_up(std::int64_t now) const noexcept;
  // The stall measured since the last call (0 if none), and when it ended.
  std::int64_t take(std::int64_t *stall_end) noexcept;

  // One tick of the thread (public for tests): `planned` was its planned
  // time, `now` the time it ran.
  void tick(std::int64_t planned, std::int64_t now) noexcept;

 private:
  std::atomic<std::int64_t> last_tick_{0};
  std::atomic<std::int64_t> pending_{0};
  std::atomic<std::int64_t> pending_end_{0};
};

}  // namespace shard_coordinator
