// Promises kept across configure(): a heartbeat stamped at t promises the
// member its assignment until t + the lease in force at t (heartbeat_interval
// + grace_period). A shorter lease applies only to heartbeats stamped after
// the change; a longer one applies to everybody at once (the server then
// only waits longer). LeaseHistory remembers the recent shortenings, so that
// lease_at() gives each stamp the lease it was promised. Plain C++ with no
// PostgreSQL headers; a plain struct so that it can live in shared memory.
#pragma once

#include <cstdint>

namespace shard_coordinator {

struct LeaseHistory {
  static constexpr int kMax = 4;
  int count;
  // Shortenings, oldest first: at changed_at[i] the lease went down from
  // before[i]. When full, the two oldest are merged into one that can only
  // lengthen what lease_at() gives.
  std::int64_t changed_at[kMax];
  std::int64_t before[kMax];

  void clear() noexcept { count = 0; }
  // The lease changes from old_lease to new_lease at `now`.
  void change(std::int64_t old_lease, std::int64_t new_lease,
              std::int64_t now) noexcept;
  // The lease of a heartbeat stamped at `stamp`, the current lease being
  // `current`.
  std::int64_t lease_at(std::int64_t stamp,
                        std::int64_t current) const noexcept;
};

}  // namespace shard_coordinator
