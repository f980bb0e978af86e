#include "query_timeout.hpp"

#include <algorithm>

namespace shard_coordinator::client {

namespace {
using namespace std::chrono_literals;

constexpr std::chrono::steady_clock::duration kMinQueryTimeout = 2s;
}  // namespace

std::chrono::steady_clock::duration query_timeout(
    std::chrono::milliseconds configured,
    std::optional<std::chrono::steady_clock::duration> heartbeat_interval) {
  if (configured > 0ms) return configured;
  return std::max<std::chrono::steady_clock::duration>(
      kMinQueryTimeout, heartbeat_interval.value_or(0ms));
}

}  // namespace shard_coordinator::client
