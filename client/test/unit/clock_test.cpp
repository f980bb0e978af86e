// The client's clock (client.hpp): CLOCK_BOOTTIME, which counts suspend.
#include <gtest/gtest.h>
#include <time.h>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

Clock::time_point boottime() {
  timespec ts{};
  EXPECT_EQ(clock_gettime(CLOCK_BOOTTIME, &ts), 0);
  return Clock::time_point(std::chrono::seconds(ts.tv_sec) +
                           std::chrono::nanoseconds(ts.tv_nsec));
}

TEST(BootClock, ReadsClockBoottime) {
  Clock::time_point before = boottime();
  Clock::time_point now = Clock::now();
  Clock::time_point after = boottime();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

TEST(BootClock, NeverGoesBack) {
  Clock::time_point last = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    Clock::time_point now = Clock::now();
    ASSERT_LE(last, now);
    last = now;
  }
  static_assert(Clock::is_steady);
}

}  // namespace
}  // namespace shard_coordinator::client
