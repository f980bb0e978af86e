// StallLog and StallMeter: stalls of the server extend the worker's waits.
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>

#include "core/stall_log.hpp"
#include "worker/stall_meter.hpp"

namespace shard_coordinator {
namespace {

constexpr std::int64_t kMs = 1000;

StallLog empty_log() {
  StallLog log{};
  log.clear();
  return log;
}

TEST(StallLog, ExtensionCountsOnlyWhatCameAfterTheStamp) {
  StallLog log = empty_log();
  log.add(10000 * kMs, 5000 * kMs);  // the server did not run 5..10 s
  EXPECT_EQ(log.extension_after(1000 * kMs), 5000 * kMs);
  EXPECT_EQ(log.extension_after(7000 * kMs), 3000 * kMs);
  EXPECT_EQ(log.extension_after(10000 * kMs), 0);
  EXPECT_EQ(log.extension_after(20000 * kMs), 0);
}

TEST(StallLog, SeveralStallsAddUp) {
  StallLog log = empty_log();
  log.add(10000 * kMs, 1000 * kMs);
  log.add(20000 * kMs, 2000 * kMs);
  EXPECT_EQ(log.extension_after(0), 3000 * kMs);
  EXPECT_EQ(log.extension_after(15000 * kMs), 2000 * kMs);
}

TEST(StallLog, MergingWhenFullOnlyLengthens) {
  StallLog full = empty_log();
  for (int i = 0; i < StallLog::kMax + 5; ++i) {
    full.add((i + 1) * 1000 * kMs, 100 * kMs);
  }
  EXPECT_EQ(full.count, StallLog::kMax);
  for (std::int64_t stamp = 0; stamp < 40000 * kMs; stamp += 250 * kMs) {
    std::int64_t truth = 0;
    for (int i = 0; i < StallLog::kMax + 5; ++i) {
      std::int64_t end = (i + 1) * 1000 * kMs;
      if (end > stamp) truth += std::min<std::int64_t>(100 * kMs, end - stamp);
    }
    EXPECT_GE(full.extension_after(stamp), truth) << stamp;
  }
}

TEST(StallLog, ForgetsOldStalls) {
  StallLog log = empty_log();
  log.add(1000 * kMs, 100 * kMs);
  log.add(5000 * kMs, 100 * kMs);
  log.forget_before(2000 * kMs);
  EXPECT_EQ(log.count, 1);
  EXPECT_EQ(log.extension_after(0), 100 * kMs);
}

TEST(StallMeter, ALateTickIsAStall) {
  StallMeter meter;
  std::int64_t end = 0;
  meter.tick(1000 * kMs, 1000 * kMs + 5 * kMs);  // 5 ms late: scheduling
  EXPECT_EQ(meter.take(&end), 0);
  meter.tick(2000 * kMs, 7000 * kMs);  // 5 s late: the process did not run
  EXPECT_EQ(meter.take(&end), 5000 * kMs + StallMeter::kTickUs);
  EXPECT_EQ(end, 7000 * kMs);
  EXPECT_EQ(meter.take(&end), 0);  // taken once
}

TEST(StallMeter, CaughtUpOnlyWhenTheThreadTickedRecently) {
  StallMeter meter;
  meter.tick(1000 * kMs, 1000 * kMs);
  EXPECT_TRUE(meter.caught_up(1000 * kMs + StallMeter::kTickUs));
  EXPECT_FALSE(meter.caught_up(1000 * kMs + 5000 * kMs));
}

TEST(StallMeter, TheThreadTicks) {
  StallMeter meter;
  ASSERT_TRUE(meter.start());
  // Within a few ticks it is caught up with the real clock.
  bool caught_up = false;
  for (int i = 0; i < 500 && !caught_up; ++i) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    std::int64_t now = 0;
    struct timespec mono {};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    now = mono.tv_sec * 1000000 + mono.tv_nsec / 1000;
    caught_up = meter.caught_up(now);
  }
  EXPECT_TRUE(caught_up);
}

}  // namespace
}  // namespace shard_coordinator
