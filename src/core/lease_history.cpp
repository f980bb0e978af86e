#include "core/lease_history.hpp"

#include <algorithm>

namespace shard_coordinator {

void LeaseHistory::change(std::int64_t old_lease, std::int64_t new_lease,
                          std::int64_t now) noexcept {
  if (new_lease >= old_lease) return;
  // A shortening that every promise made before it has outlived matters no
  // more: whoever was stamped before it has expired by now.
  int kept = 0;
  for (int i = 0; i < count; ++i) {
    if (changed_at[i] + before[i] <= now) continue;
    changed_at[kept] = changed_at[i];
    before[kept] = before[i];
    ++kept;
  }
  count = kept;
  if (count == kMax) {
    changed_at[1] = std::max(changed_at[0], changed_at[1]);
    before[1] = std::max(before[0], before[1]);
    for (int i = 1; i < count; ++i) {
      changed_at[i - 1] = changed_at[i];
      before[i - 1] = before[i];
    }
    --count;
  }
  changed_at[count] = now;
  before[count] = old_lease;
  ++count;
}

std::int64_t LeaseHistory::lease_at(std::int64_t stamp,
                                    std::int64_t current) const noexcept {
  std::int64_t lease = current;
  for (int i = 0; i < count; ++i) {
    if (changed_at[i] > stamp) lease = std::max(lease, before[i]);
  }
  return lease;
}

}  // namespace shard_coordinator
