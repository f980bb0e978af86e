#include "core/stall_log.hpp"

#include <algorithm>

namespace shard_coordinator {

void StallLog::add(std::int64_t stall_end, std::int64_t stall_length) noexcept {
  if (stall_length <= 0) return;
  if (count == kMax) {
    end[1] = std::max(end[0], end[1]);
    length[1] += length[0];
    for (int i = 1; i < count; ++i) {
      end[i - 1] = end[i];
      length[i - 1] = length[i];
    }
    --count;
  }
  end[count] = stall_end;
  length[count] = stall_length;
  ++count;
}

std::int64_t StallLog::extension_after(std::int64_t stamp) const noexcept {
  std::int64_t total = 0;
  for (int i = 0; i < count; ++i) {
    if (end[i] > stamp) total += std::min(length[i], end[i] - stamp);
  }
  return total;
}

void StallLog::forget_before(std::int64_t horizon) noexcept {
  int kept = 0;
  for (int i = 0; i < count; ++i) {
    if (end[i] < horizon) continue;
    end[kept] = end[i];
    length[kept] = length[i];
    ++kept;
  }
  count = kept;
}

}  // namespace shard_coordinator
