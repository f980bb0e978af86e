#include "lease.hpp"

#include <algorithm>

namespace shard_coordinator::client {

Lease::Duration Lease::safety_margin(Duration remaining, Duration interval) {
  if (remaining <= Duration::zero()) return Duration::zero();
  Duration margin = std::max(remaining / 10, interval);
  Duration upper = (remaining - interval) / 2;
  return std::max(Duration::zero(), std::min(margin, upper));
}

void Lease::renew(TimePoint sent_at, Duration remaining, Duration interval) {
  if (remaining < Duration::zero()) remaining = Duration::zero();
  granted_ = true;
  renewed_at_ = sent_at;
  interval_ = interval;
  end_ = sent_at + remaining;
  fence_at_ = end_ - safety_margin(remaining, interval);
}

}  // namespace shard_coordinator::client
