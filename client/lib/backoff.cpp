#include "backoff.hpp"

#include <algorithm>
#include <memory>
#include <random>

namespace shard_coordinator::client {

Backoff::Backoff(Duration initial, Duration cap,
                 std::function<double()> uniform01)
    : initial_(std::max(initial, Duration(1))),
      cap_(std::max(cap, initial_)),
      uniform01_(std::move(uniform01)) {}

void Backoff::set_cap(Duration cap) { cap_ = std::max(cap, initial_); }

Backoff::Duration Backoff::next() {
  // Doubling stops once the cap is reached, so no overflow however many
  // attempts fail.
  Duration full = initial_;
  for (int i = 0; i < attempts_ && full < cap_; ++i) full *= 2;
  full = std::min(full, cap_);
  ++attempts_;
  double u = std::clamp(uniform01_(), 0.0, 1.0);
  auto half = full / 2;
  auto jitter = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, Duration::period>(
          static_cast<double>((full - half).count()) * u));
  return half + jitter;
}

std::function<double()> random_uniform01() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine]() {
    return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
  };
}

}  // namespace shard_coordinator::client
