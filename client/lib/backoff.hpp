// Exponential backoff with jitter for reconnects and retried heartbeats.
#pragma once

#include <chrono>
#include <functional>

namespace shard_coordinator::client {

// The n-th delay (n = 0, 1, ...) is drawn uniformly from [d/2, d] where
// d = min(initial * 2^n, cap): "equal jitter". Half of each delay is fixed so
// delays still grow; the random half spreads a fleet of clients that lost the
// same server at the same moment.
class Backoff {
 public:
  using Duration = std::chrono::nanoseconds;
  // uniform01 returns numbers in [0, 1); tests pass a fixed sequence.
  Backoff(Duration initial, Duration cap, std::function<double()> uniform01);

  // The delay before the next attempt; each call counts one attempt.
  Duration next();
  // After a success: the next delay starts from `initial` again.
  void reset() { attempts_ = 0; }
  // Lowers or raises the cap (never below `initial`).
  void set_cap(Duration cap);

  int attempts() const { return attempts_; }
  Duration cap() const { return cap_; }

 private:
  Duration initial_;
  Duration cap_;
  std::function<double()> uniform01_;
  int attempts_ = 0;
};

// A uniform01 source for production use (seeded from std::random_device).
std::function<double()> random_uniform01();

}  // namespace shard_coordinator::client
