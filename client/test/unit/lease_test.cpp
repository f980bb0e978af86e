#include "lease.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;
using TimePoint = Lease::TimePoint;

TimePoint at(std::chrono::milliseconds ms) { return TimePoint(ms); }

TEST(LeaseMargin, AtLeastOneHeartbeatInterval) {
  // Defaults of the server: interval 5 s, grace 10 s.
  EXPECT_EQ(Lease::safety_margin(15s, 5s), 5s);
}

TEST(LeaseMargin, TenPercentWhenGraceIsLong) {
  EXPECT_EQ(Lease::safety_margin(100s, 1s), 10s);
}

TEST(LeaseMargin, LeavesHalfTheGraceForTheNextHeartbeat) {
  // interval 200 ms, grace 300 ms: the margin may not eat more than half of
  // what is left after the next heartbeat is due.
  EXPECT_EQ(Lease::safety_margin(500ms, 200ms), 150ms);
}

TEST(LeaseMargin, NoGraceNoMargin) {
  EXPECT_EQ(Lease::safety_margin(1s, 1s), 0ms);
  EXPECT_EQ(Lease::safety_margin(800ms, 1s), 0ms);
  EXPECT_EQ(Lease::safety_margin(0ms, 1s), 0ms);
  EXPECT_EQ(Lease::safety_margin(-5ms, 1s), 0ms);
}

TEST(Lease, NotGrantedHasRunOut) {
  Lease lease;
  EXPECT_FALSE(lease.granted());
  EXPECT_TRUE(lease.ran_out(at(0ms)));
}

TEST(Lease, MeasuredFromTheMomentBeforeSending) {
  Lease lease;
  // Sent at t=1000; the server said 500 ms were left after its stamp.
  lease.renew(at(1000ms), 500ms, 200ms);
  EXPECT_EQ(lease.end(), at(1500ms));
  EXPECT_EQ(lease.fence_at(), at(1350ms));
  EXPECT_EQ(lease.margin(), 150ms);
  EXPECT_FALSE(lease.ran_out(at(1349ms)));
  EXPECT_TRUE(lease.ran_out(at(1350ms)));
}

TEST(Lease, RenewalReplacesTheLease) {
  Lease lease;
  lease.renew(at(0ms), 15s, 5s);
  lease.renew(at(5000ms), 15s, 5s);
  EXPECT_EQ(lease.fence_at(), at(15000ms));
  EXPECT_FALSE(lease.ran_out(at(14999ms)));
}

TEST(Lease, NegativeRemainingFencesAtOnce) {
  Lease lease;
  lease.renew(at(100ms), -1s, 200ms);
  EXPECT_TRUE(lease.ran_out(at(100ms)));
}

TEST(Lease, ClearForgets) {
  Lease lease;
  lease.renew(at(0ms), 15s, 5s);
  lease.clear();
  EXPECT_FALSE(lease.granted());
}

}  // namespace
}  // namespace shard_coordinator::client
