#include "deadline.hpp"

#include <gtest/gtest.h>

#include <climits>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kNow{std::chrono::seconds(1000)};

TEST(Earliest, EitherOrTheEarlier) {
  EXPECT_FALSE(earliest(std::nullopt, std::nullopt));
  EXPECT_EQ(earliest(kNow, std::nullopt), kNow);
  EXPECT_EQ(earliest(std::nullopt, kNow), kNow);
  EXPECT_EQ(earliest(kNow + 1s, kNow + 2s), kNow + 1s);
  EXPECT_EQ(earliest(kNow + 2s, kNow + 1s), kNow + 1s);
}

TEST(PollTimeout, NoneZeroOrRoundedUp) {
  EXPECT_EQ(poll_timeout_ms(std::nullopt, kNow), -1);
  EXPECT_EQ(poll_timeout_ms(kNow, kNow), 0);
  EXPECT_EQ(poll_timeout_ms(kNow - 1s, kNow), 0);
  EXPECT_EQ(poll_timeout_ms(kNow + 250ms, kNow), 250);
  // Rounded up: waking a fraction of a millisecond early would only spin.
  EXPECT_EQ(poll_timeout_ms(kNow + 1us, kNow), 1);
  EXPECT_EQ(poll_timeout_ms(kNow + 1001us, kNow), 2);
  EXPECT_EQ(poll_timeout_ms(kNow + std::chrono::hours(24 * 365), kNow),
            INT_MAX);
}

}  // namespace
}  // namespace shard_coordinator::client
