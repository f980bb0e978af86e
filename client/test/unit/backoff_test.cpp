#include "backoff.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

Backoff make(double u, std::chrono::milliseconds initial = 100ms,
             std::chrono::milliseconds cap = 5s) {
  return Backoff(initial, cap, [u] { return u; });
}

TEST(Backoff, DoublesFromInitialWithoutJitterAtTop) {
  Backoff b = make(1.0);
  EXPECT_EQ(b.next(), 100ms);
  EXPECT_EQ(b.next(), 200ms);
  EXPECT_EQ(b.next(), 400ms);
  EXPECT_EQ(b.next(), 800ms);
  EXPECT_EQ(b.attempts(), 4);
}

TEST(Backoff, JitterKeepsAtLeastHalf) {
  Backoff b = make(0.0);
  EXPECT_EQ(b.next(), 50ms);
  EXPECT_EQ(b.next(), 100ms);
  EXPECT_EQ(b.next(), 200ms);
}

TEST(Backoff, JitterIsUniformBetweenHalfAndFull) {
  Backoff b = make(0.5);
  EXPECT_EQ(b.next(), 75ms);
  EXPECT_EQ(b.next(), 150ms);
}

TEST(Backoff, StopsAtCapAndNeverOverflows) {
  Backoff b = make(1.0, 100ms, 1s);
  for (int i = 0; i < 5; ++i) b.next();
  EXPECT_EQ(b.next(), 1s);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(b.next(), 1s);
}

TEST(Backoff, ResetStartsOver) {
  Backoff b = make(1.0);
  b.next();
  b.next();
  b.reset();
  EXPECT_EQ(b.attempts(), 0);
  EXPECT_EQ(b.next(), 100ms);
}

TEST(Backoff, CapFollowsHeartbeatIntervalButNotBelowInitial) {
  Backoff b = make(1.0, 100ms, 5s);
  b.set_cap(200ms);
  b.next();
  b.next();
  EXPECT_EQ(b.next(), 200ms);
  b.set_cap(10ms);
  EXPECT_EQ(b.cap(), 100ms);
  EXPECT_EQ(b.next(), 100ms);
}

TEST(Backoff, OutOfRangeRandomIsClamped) {
  Backoff b = make(7.0);
  EXPECT_EQ(b.next(), 100ms);
  Backoff c = make(-1.0);
  EXPECT_EQ(c.next(), 50ms);
}

TEST(Backoff, RealRandomStaysInBounds) {
  Backoff b(100ms, 5s, random_uniform01());
  for (int i = 0; i < 200; ++i) {
    auto full = std::min<std::chrono::nanoseconds>(
        100ms * (1LL << std::min(i, 20)), 5s);
    auto d = b.next();
    ASSERT_GE(d, full / 2) << i;
    ASSERT_LE(d, full) << i;
  }
}

}  // namespace
}  // namespace shard_coordinator::client
