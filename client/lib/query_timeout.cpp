#include "query_timeout.hpp"

#include <algorithm>

namespace shard_coordinator::client {

using namespace std::chrono_literals;

Clock::duration query_timeout(
    std::chrono::milliseconds configured,
    std::optional<Clock::duration> heartbeat_interval) {
  if (configured > 0ms) return configured;
  return std::max<Clock::duration>(kMinDefaultQueryTimeout,
                                   heartbeat_interval.value_or(0ms));
}

}  // namespace shard_coordinator::client
