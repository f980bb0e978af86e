// The reported assignment under a fake monotonic clock: epochs, notifications
// and self-fencing.
#include "tracker.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

class TrackerTest : public ::testing::Test {
 protected:
  Clock::time_point now_{std::chrono::seconds(1000)};
  Tracker tracker_{[this] { return now_; }};

  static Assignment active(int shard, int num_shards, std::int64_t epoch) {
    Assignment a;
    a.state = State::Active;
    a.shard = shard;
    a.num_shards = num_shards;
    a.epoch = epoch;
    return a;
  }
  static Assignment with_state(State state, std::int64_t epoch,
                               int num_shards = 2) {
    Assignment a;
    a.state = state;
    a.num_shards = num_shards;
    a.epoch = epoch;
    return a;
  }
  static HeartbeatRow row(Assignment a,
                          std::chrono::milliseconds remaining = 500ms,
                          std::chrono::milliseconds interval = 200ms) {
    HeartbeatRow r;
    r.assignment = std::move(a);
    r.heartbeat_interval = interval;
    r.lease_remaining = remaining;
    return r;
  }
  void advance(std::chrono::milliseconds d) { now_ += d; }
};

TEST_F(TrackerTest, NothingReportedBeforeTheFirstHeartbeat) {
  EXPECT_EQ(tracker_.reported().state, State::Pending);
  EXPECT_FALSE(tracker_.on_clock().reported);
  EXPECT_FALSE(tracker_.fence_at());
  // A notification for an earlier process with the same name is not a lease.
  EXPECT_FALSE(tracker_.on_notice(active(0, 1, 3)).reported);
  EXPECT_EQ(tracker_.reported().state, State::Pending);
}

TEST_F(TrackerTest, FirstHeartbeatIsAlwaysReported) {
  EXPECT_TRUE(tracker_.on_heartbeat(row(with_state(State::Pending, 0, 0)), now_)
                  .reported);
  EXPECT_EQ(tracker_.reported().state, State::Pending);
  EXPECT_FALSE(
      tracker_.on_heartbeat(row(with_state(State::Pending, 0, 0)), now_)
          .reported);
}

TEST_F(TrackerTest, NoticeThenHeartbeatOfTheSameEpoch) {
  tracker_.on_heartbeat(row(with_state(State::Pending, 4)), now_);
  EXPECT_TRUE(tracker_.on_notice(active(1, 2, 5)).reported);
  EXPECT_EQ(tracker_.reported(), active(1, 2, 5));
  EXPECT_FALSE(tracker_.on_heartbeat(row(active(1, 2, 5)), now_).reported);
}

TEST_F(TrackerTest, OlderEpochsAreIgnored) {
  tracker_.on_heartbeat(row(active(0, 3, 7)), now_);
  // A heartbeat that read shared memory before the reshard was published.
  EXPECT_FALSE(tracker_.on_heartbeat(row(active(2, 3, 6)), now_).reported);
  EXPECT_FALSE(tracker_.on_notice(with_state(State::Standby, 6)).reported);
  EXPECT_EQ(tracker_.reported(), active(0, 3, 7));
  EXPECT_TRUE(tracker_.on_notice(active(1, 2, 8)).reported);
  EXPECT_EQ(tracker_.reported(), active(1, 2, 8));
}

TEST_F(TrackerTest, StaleRowStillRenewsTheLease) {
  tracker_.on_heartbeat(row(active(0, 3, 7)), now_);
  advance(300ms);
  tracker_.on_heartbeat(row(active(2, 3, 6)), now_);
  advance(300ms);  // 600 ms after the first heartbeat: would have fenced
  EXPECT_FALSE(tracker_.on_clock().reported);
  EXPECT_EQ(tracker_.reported(), active(0, 3, 7));
}

TEST_F(TrackerTest, SlotsAtTheSameEpochAreTakenIn) {
  tracker_.on_heartbeat(row(active(0, 2, 3)), now_);
  Assignment with_slots = active(0, 2, 3);
  with_slots.slots = std::vector<std::int32_t>{0, 2};
  EXPECT_TRUE(tracker_.on_notice(with_slots).reported);
  EXPECT_EQ(tracker_.reported().slots, with_slots.slots);
}

TEST_F(TrackerTest, FencesAtTheMarginBeforeTheLeaseEnds) {
  // Heartbeat sent at t0 - 20 ms (the round trip), 500 ms left at the server.
  auto sent = now_ - 20ms;
  tracker_.on_heartbeat(row(active(1, 3, 2)), sent);
  ASSERT_TRUE(tracker_.fence_at());
  EXPECT_EQ(*tracker_.fence_at(), sent + 350ms);  // margin 150 ms
  advance(329ms);                                 // sent + 349 ms
  EXPECT_FALSE(tracker_.on_clock().reported);
  EXPECT_TRUE(tracker_.reported().active());
  advance(1ms);  // sent + 350 ms
  EXPECT_TRUE(tracker_.on_clock().reported);
  const Assignment &lost = tracker_.reported();
  EXPECT_EQ(lost.state, State::Lost);
  EXPECT_FALSE(lost.shard);
  EXPECT_EQ(lost.epoch, 2);
  EXPECT_EQ(lost.num_shards, 3);
  EXPECT_FALSE(tracker_.fence_at());
  EXPECT_FALSE(tracker_.on_clock().reported);
}

TEST_F(TrackerTest, HeartbeatsOnTimeNeverFence) {
  for (int i = 0; i < 100; ++i) {
    tracker_.on_heartbeat(row(active(0, 1, 1)), now_);
    advance(200ms);
    ASSERT_FALSE(tracker_.on_clock().reported) << i;
    // A slow heartbeat: 120 ms round trip.
    advance(120ms);
    ASSERT_FALSE(tracker_.on_clock().reported) << i;
    now_ -= 120ms;
  }
  EXPECT_TRUE(tracker_.reported().active());
}

TEST_F(TrackerTest, NoticeCannotEndLostButAHeartbeatCan) {
  tracker_.on_heartbeat(row(active(1, 3, 2)), now_);
  advance(1s);
  EXPECT_TRUE(tracker_.on_clock().reported);
  EXPECT_EQ(tracker_.reported().state, State::Lost);
  // A notice (newer epoch) is remembered but does not prove membership: the
  // report stays Lost (with the newer epoch and count).
  tracker_.on_notice(active(0, 2, 3));
  EXPECT_EQ(tracker_.reported().state, State::Lost);
  EXPECT_EQ(tracker_.reported().epoch, 3);
  // After a server restart the heartbeat gives the same assignment back.
  EXPECT_TRUE(tracker_.on_heartbeat(row(active(0, 2, 3)), now_).reported);
  EXPECT_EQ(tracker_.reported(), active(0, 2, 3));
}

TEST_F(TrackerTest, RemovedThenRegisteredAgain) {
  tracker_.on_heartbeat(row(active(1, 3, 2)), now_);
  EXPECT_TRUE(tracker_.on_notice(with_state(State::Removed, 5)).reported);
  EXPECT_EQ(tracker_.reported().state, State::Removed);
  // No lease to fence while removed.
  EXPECT_FALSE(tracker_.fence_at());
  advance(10s);
  EXPECT_FALSE(tracker_.on_clock().reported);
  // The next heartbeat registers anew: pending at the cluster's epoch.
  EXPECT_TRUE(
      tracker_.on_heartbeat(row(with_state(State::Pending, 5)), now_).reported);
  EXPECT_EQ(tracker_.reported().state, State::Pending);
  EXPECT_TRUE(tracker_.on_notice(active(0, 3, 6)).reported);
  EXPECT_EQ(tracker_.reported(), active(0, 3, 6));
}

TEST_F(TrackerTest, StandbyAndPendingAlsoFence) {
  tracker_.on_heartbeat(row(with_state(State::Standby, 4)), now_);
  advance(400ms);
  EXPECT_TRUE(tracker_.on_clock().reported);
  EXPECT_EQ(tracker_.reported().state, State::Lost);
}

// Within one connection an older epoch is ignored; on a new connection the
// server's heartbeat row is believed even if its epoch is older (failover),
// as long as it only takes work away.
TEST_F(TrackerTest, NewConnectionAcceptsAnOlderEpochThatTakesWorkAway) {
  tracker_.on_heartbeat(row(active(1, 3, 9)), now_);
  EXPECT_FALSE(
      tracker_.on_heartbeat(row(with_state(State::Standby, 8)), now_).reported);
  EXPECT_EQ(tracker_.reported().epoch, 9);
  tracker_.on_new_connection();
  TrackerEvents events =
      tracker_.on_heartbeat(row(with_state(State::Standby, 8)), now_);
  EXPECT_TRUE(events.reported);
  EXPECT_EQ(tracker_.reported().epoch, 8);
  EXPECT_EQ(tracker_.reported().state, State::Standby);
  ASSERT_EQ(events.revoked.size(), 1u);
  EXPECT_TRUE(tracker_.grant().empty());
  // The applied epoch never goes back.
  EXPECT_EQ(tracker_.applied_epoch(), 9);
}

// Never back to work from a row older than the applied epoch, not even on a
// new connection: the application may have released that work.
TEST_F(TrackerTest, AnOlderRowNeverGivesBackWork) {
  tracker_.on_heartbeat(row(active(1, 3, 8)), now_);
  TrackerEvents revoked = tracker_.on_notice(active(1, 4, 9));
  ASSERT_EQ(revoked.revoked.size(), 1u);
  EXPECT_TRUE(tracker_.acknowledge(9));
  EXPECT_EQ(tracker_.applied_epoch(), 9);
  tracker_.on_new_connection();
  // A server that is behind: shard 1 of 3 again, at epoch 8.
  TrackerEvents events = tracker_.on_heartbeat(row(active(1, 3, 8)), now_);
  EXPECT_FALSE(events.reported);
  EXPECT_FALSE(events.granted);
  EXPECT_EQ(tracker_.reported(), active(1, 4, 9));
  EXPECT_EQ(tracker_.grant(), (Grant{1, 4, std::nullopt, 9}));
}

// ----- cluster notices: a change of num_shards only -----

TEST_F(TrackerTest, ClusterNoticeSetsCountAndEpochAndKeepsTheRest) {
  Assignment before = active(1, 3, 7);
  before.slots = std::vector<std::int32_t>{4, 5};
  tracker_.on_heartbeat(row(before), now_);
  bool heartbeat_now = true;
  EXPECT_TRUE(tracker_.on_cluster_notice(8, 4, &heartbeat_now).reported);
  EXPECT_FALSE(heartbeat_now);
  Assignment after = before;
  after.num_shards = 4;
  after.epoch = 8;
  EXPECT_EQ(tracker_.reported(), after);
  // The epoch counts as seen: older rows and notices are ignored after it.
  EXPECT_FALSE(tracker_.on_heartbeat(row(active(0, 3, 7)), now_).reported);
  EXPECT_EQ(tracker_.reported(), after);
  // A row of that epoch agrees.
  EXPECT_FALSE(tracker_.on_heartbeat(row(after), now_).reported);
}

TEST_F(TrackerTest, ClusterNoticeForStandbyAndPending) {
  tracker_.on_heartbeat(row(with_state(State::Standby, 4, 2)), now_);
  EXPECT_TRUE(tracker_.on_cluster_notice(5, 3).reported);
  EXPECT_EQ(tracker_.reported(), with_state(State::Standby, 5, 3));
  tracker_.on_new_connection();
  tracker_.on_heartbeat(row(with_state(State::Pending, 5, 3)), now_);
  EXPECT_TRUE(tracker_.on_cluster_notice(6, 1).reported);
  EXPECT_EQ(tracker_.reported(), with_state(State::Pending, 6, 1));
}

TEST_F(TrackerTest, ClusterNoticeOfAnOlderOrEqualEpochIsIgnored) {
  tracker_.on_heartbeat(row(active(1, 3, 7)), now_);
  bool heartbeat_now = true;
  EXPECT_FALSE(tracker_.on_cluster_notice(7, 5, &heartbeat_now).reported);
  EXPECT_FALSE(heartbeat_now);
  EXPECT_FALSE(tracker_.on_cluster_notice(6, 5, &heartbeat_now).reported);
  EXPECT_FALSE(heartbeat_now);
  EXPECT_EQ(tracker_.reported(), active(1, 3, 7));
}

TEST_F(TrackerTest, MemberNoticeThenClusterNoticeOfTheSameEpoch) {
  // One reshard: this member moved (its own notice comes first) and the count
  // changed (the cluster notice follows). The member notice says everything.
  tracker_.on_heartbeat(row(active(2, 3, 7)), now_);
  EXPECT_TRUE(tracker_.on_notice(active(0, 2, 8)).reported);
  EXPECT_FALSE(tracker_.on_cluster_notice(8, 2).reported);
  EXPECT_EQ(tracker_.reported(), active(0, 2, 8));
  // Also when the notice made it standby.
  EXPECT_TRUE(tracker_.on_notice(with_state(State::Standby, 9, 1)).reported);
  EXPECT_FALSE(tracker_.on_cluster_notice(9, 1).reported);
  EXPECT_EQ(tracker_.reported(), with_state(State::Standby, 9, 1));
}

TEST_F(TrackerTest, ClusterNoticeIsIgnoredWhileRemoved) {
  tracker_.on_heartbeat(row(active(1, 3, 2)), now_);
  EXPECT_TRUE(tracker_.on_notice(with_state(State::Removed, 5, 3)).reported);
  bool heartbeat_now = true;
  EXPECT_FALSE(tracker_.on_cluster_notice(6, 2, &heartbeat_now).reported);
  // The registrar heartbeats at once after a removal anyway.
  EXPECT_FALSE(heartbeat_now);
  EXPECT_EQ(tracker_.reported(), with_state(State::Removed, 5, 3));
  // The heartbeat that registers the member anew is believed.
  EXPECT_TRUE(tracker_.on_heartbeat(row(with_state(State::Pending, 6, 2)), now_)
                  .reported);
  EXPECT_EQ(tracker_.reported(), with_state(State::Pending, 6, 2));
}

TEST_F(TrackerTest, ClusterNoticeCannotEndLost) {
  tracker_.on_heartbeat(row(active(1, 3, 2)), now_);
  advance(1s);
  EXPECT_TRUE(tracker_.on_clock().reported);
  EXPECT_EQ(tracker_.reported().state, State::Lost);
  // Remembered (count and epoch), but still Lost, with no shard.
  EXPECT_TRUE(tracker_.on_cluster_notice(3, 4).reported);
  EXPECT_EQ(tracker_.reported().state, State::Lost);
  EXPECT_FALSE(tracker_.reported().shard);
  EXPECT_EQ(tracker_.reported().num_shards, 4);
  EXPECT_EQ(tracker_.reported().epoch, 3);
  EXPECT_FALSE(tracker_.fence_at());
  // A heartbeat of that epoch ends Lost with the amended assignment.
  EXPECT_TRUE(tracker_.on_heartbeat(row(active(1, 4, 3)), now_).reported);
  EXPECT_EQ(tracker_.reported(), active(1, 4, 3));
}

TEST_F(TrackerTest, ClusterNoticeBeforeTheFirstHeartbeatIsNotReported) {
  bool heartbeat_now = false;
  EXPECT_FALSE(tracker_.on_cluster_notice(3, 2, &heartbeat_now).reported);
  // Nothing to amend yet: the heartbeat in flight (or next) tells all.
  EXPECT_TRUE(heartbeat_now);
  EXPECT_EQ(tracker_.reported().state, State::Pending);
  EXPECT_TRUE(tracker_.on_heartbeat(row(active(0, 1, 2)), now_).reported);
  EXPECT_EQ(tracker_.reported(), active(0, 1, 2));
}

// After a reconnection the assignment known from the old connection may be
// stale (reshards happened meanwhile, their notices were not heard), so a
// cluster notice cannot amend it; only a heartbeat row of this connection
// (or a member notice) gives a base.
TEST_F(TrackerTest, ClusterNoticeNeedsABaseOnThisConnection) {
  tracker_.on_heartbeat(row(active(2, 3, 7)), now_);
  tracker_.on_new_connection();
  bool heartbeat_now = false;
  EXPECT_FALSE(tracker_.on_cluster_notice(10, 4, &heartbeat_now).reported);
  EXPECT_TRUE(heartbeat_now);
  EXPECT_EQ(tracker_.reported(), active(2, 3, 7));
  // The row read before that reshard was published: the count comes later.
  EXPECT_TRUE(tracker_.on_heartbeat(row(active(0, 3, 9)), now_).reported);
  EXPECT_EQ(tracker_.reported(), active(0, 3, 9));
  EXPECT_TRUE(tracker_.on_cluster_notice(11, 2, &heartbeat_now).reported);
  EXPECT_FALSE(heartbeat_now);
  EXPECT_EQ(tracker_.reported(), active(0, 2, 11));
}

TEST_F(TrackerTest, ClusterNoticeThatCannotHoldTheShardAsksForAHeartbeat) {
  // The member missed its own notice: a shard beyond the new count.
  tracker_.on_heartbeat(row(active(2, 3, 7)), now_);
  bool heartbeat_now = false;
  EXPECT_FALSE(tracker_.on_cluster_notice(8, 2, &heartbeat_now).reported);
  EXPECT_TRUE(heartbeat_now);
  EXPECT_EQ(tracker_.reported(), active(2, 3, 7));
  EXPECT_TRUE(tracker_.on_heartbeat(row(active(1, 2, 8)), now_).reported);
  EXPECT_EQ(tracker_.reported(), active(1, 2, 8));
}

// ----- grants, revocations, the applied epoch -----

// The row that shows a revocation promises only the new grant: the revoked
// work keeps the lease from before it.
TEST_F(TrackerTest, ARowsRevocationHasTheLeaseFromBeforeTheRow) {
  auto first = now_;
  tracker_.on_heartbeat(row(active(1, 2, 5), 500ms, 200ms), first);
  advance(200ms);
  TrackerEvents events =
      tracker_.on_heartbeat(row(active(1, 3, 6), 500ms, 200ms), now_);
  ASSERT_EQ(events.revoked.size(), 1u);
  EXPECT_EQ(events.revoked[0].deadline, first + 500ms);
  EXPECT_EQ(events.revoked[0].fence_at, first + 350ms);
  EXPECT_EQ(tracker_.lease().end(), now_ + 500ms);
}

// The notice of epoch 6 (the revocation) was lost; a row of epoch 7 shows
// it. Until it is acknowledged the heartbeats apply epoch 5, not 7: 7 would
// release the server's hold of epoch 6.
TEST_F(TrackerTest, TheAppliedEpochWaitsForTheOldestRelease) {
  tracker_.on_heartbeat(row(active(1, 2, 5)), now_);
  EXPECT_EQ(tracker_.applied_epoch(), 5);
  tracker_.on_heartbeat(row(active(1, 3, 7)), now_);
  EXPECT_EQ(tracker_.applied_epoch(), 5);
  // A later count change (slot mode would leave keys alone; plain mode
  // revokes again): a second release, the applied epoch stays.
  tracker_.on_cluster_notice(8, 4);
  ASSERT_EQ(tracker_.releases().size(), 2u);
  EXPECT_EQ(tracker_.applied_epoch(), 5);
  // Acknowledging the first: up to the news of the second.
  EXPECT_TRUE(tracker_.acknowledge(7));
  EXPECT_EQ(tracker_.applied_epoch(), 7);
  EXPECT_TRUE(tracker_.acknowledge(8));
  EXPECT_EQ(tracker_.applied_epoch(), 8);
  EXPECT_FALSE(tracker_.acknowledge(8));
}

TEST_F(TrackerTest, NothingIsGrantedBeforeTheFirstHeartbeat) {
  TrackerEvents events = tracker_.on_notice(active(0, 1, 3));
  EXPECT_FALSE(events.granted);
  EXPECT_TRUE(tracker_.grant().empty());
  EXPECT_FALSE(tracker_.applied_epoch());
  events = tracker_.on_heartbeat(row(active(0, 1, 3)), now_);
  EXPECT_TRUE(events.granted);
  EXPECT_EQ(tracker_.grant(), (Grant{0, 1, std::nullopt, 3}));
}

// begin_stop(): everything is revoked with the current lease's end, and
// nothing is granted any more.
TEST_F(TrackerTest, StopRevokesEverythingAndGrantsNothing) {
  tracker_.on_heartbeat(row(active(0, 2, 5), 500ms), now_);
  TrackerEvents events = tracker_.begin_stop();
  ASSERT_EQ(events.revoked.size(), 1u);
  EXPECT_EQ(events.revoked[0].reason, RevokeReason::Stop);
  EXPECT_EQ(events.revoked[0].deadline, now_ + 500ms);
  EXPECT_TRUE(tracker_.grant().empty());
  events = tracker_.on_heartbeat(row(active(0, 2, 5), 500ms), now_);
  EXPECT_FALSE(events.granted);
  EXPECT_TRUE(tracker_.grant().empty());
  EXPECT_TRUE(tracker_.holds_work());
  tracker_.acknowledge(5);
  EXPECT_FALSE(tracker_.holds_work());
}

}  // namespace
}  // namespace shard_coordinator::client
