// The query timeout: what Options::query_timeout = 0 means.
#include "query_timeout.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

// In milliseconds, so that a failure prints a number.
long long Ms(std::optional<std::chrono::milliseconds> configured,
             std::optional<Clock::duration> interval) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             query_timeout(configured.value_or(0ms), interval))
      .count();
}

TEST(QueryTimeout, AConfiguredTimeoutIsUsedAsIs) {
  EXPECT_EQ(Ms(500ms, std::nullopt), 500);
  EXPECT_EQ(Ms(500ms, 60s), 500);
  EXPECT_EQ(Ms(30s, 1s), 30000);
}

// The server's heartbeat() and leave() may wait up to 10 s for its
// background worker: the default must outlast that.
TEST(QueryTimeout, TheDefaultOutlastsTheServersOwnWaits) {
  EXPECT_EQ(kMinDefaultQueryTimeout, 15s);
  EXPECT_EQ(Ms(std::nullopt, std::nullopt), 15000);
  EXPECT_EQ(Ms(std::nullopt, 200ms), 15000);
  EXPECT_EQ(Ms(std::nullopt, 5s), 15000);
  EXPECT_EQ(Ms(std::nullopt, 15s), 15000);
}

TEST(QueryTimeout, TheDefaultIsAtLeastTheHeartbeatInterval) {
  EXPECT_EQ(Ms(std::nullopt, 20s), 20000);
  EXPECT_EQ(Ms(std::nullopt, 60s), 60000);
  EXPECT_EQ(Ms(std::nullopt, 16500ms), 16500);
}

}  // namespace
}  // namespace shard_coordinator::client
