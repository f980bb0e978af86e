// Stalls: stretches of time in which the server did not run (every process
// stopped, a frozen VM or container), so that no heartbeat could be served.
// A member whose deadline passed during a stall heartbeated as soon as it
// could; the background worker extends its own waits by the stall before it
// expires anyone (as etcd extends leases when a new leader takes over).
// Extensions only ever lengthen the server's waits: the promise a heartbeat
// row made is not changed.
//
// The stalls are measured by the worker's stall meter
// (worker/stall_meter.hpp) and logged here. Plain C++ with no PostgreSQL
// headers; a plain struct so that it can live in shared memory.
#pragma once

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

}  // namespace shard_coordinator
