#include "deadline.hpp"

#include <algorithm>
#include <climits>

namespace shard_coordinator::client {

std::optional<Clock::time_point> earliest(std::optional<Clock::time_point> a,
                                          std::optional<Clock::time_point> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

int poll_timeout_ms(std::optional<Clock::time_point> deadline,
                    Clock::time_point now) {
  if (!deadline) return -1;
  auto left = *deadline - now;
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

}  // namespace shard_coordinator::client
