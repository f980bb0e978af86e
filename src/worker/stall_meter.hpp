// The stall meter: a thread of the background worker that only sleeps and
// reads CLOCK_MONOTONIC. A tick that comes much later than planned means the
// process did not run meanwhile: every process of the server was stopped, or
// the VM or container was frozen, so no heartbeat could be served. The
// worker's own delays (a lock wait, a long transaction) are not stalls: the
// meter ticks on through them. What it measures goes into the StallLog in
// shared memory (core/stall_log.hpp), by which the worker extends its waits.
//
// Plain C++ with no PostgreSQL headers; the thread calls nothing of
// PostgreSQL.
#pragma once

#include <atomic>
#include <cstdint>

namespace shard_coordinator {

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
