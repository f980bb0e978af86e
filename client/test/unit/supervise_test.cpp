// run's decision about its child (agent/supervise.hpp): every branch of
// start, stop, kill or nothing.
#include "supervise.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::agent {
namespace {

using namespace std::chrono_literals;
using client::Clock;

const Clock::time_point kNow{std::chrono::seconds(1000)};
// Fenced 100 ms ago; the server may expire the member 300 ms from now.
const client::LeaseTimes kLease{kNow - 100ms, kNow + 300ms, kNow - 1s, 200ms};
const Clock::time_point kHalfway = kNow + 100ms;

client::Assignment active(int shard, int count, std::int64_t epoch) {
  client::Assignment a;
  a.state = client::State::Active;
  a.shard = shard;
  a.num_shards = count;
  a.epoch = epoch;
  return a;
}

client::Assignment without_shard(client::State state, std::int64_t epoch) {
  client::Assignment a;
  a.state = state;
  a.num_shards = 2;
  a.epoch = epoch;
  return a;
}

// A child running shard 0 of 2 at epoch 5, which is what is reported.
ChildSituation running() {
  ChildSituation s;
  s.assignment = active(0, 2, 5);
  s.lease = kLease;
  s.child_running = true;
  s.child_assignment = active(0, 2, 5);
  return s;
}

TEST(KillDeadline, HalfwayFromFenceToEndOrAtOnce) {
  EXPECT_EQ(kill_deadline(kLease, kNow), kHalfway);
  EXPECT_EQ(kill_deadline(std::nullopt, kNow), kNow);
}

TEST(DecideChild, StartsForAnActiveAssignment) {
  ChildSituation s;
  s.assignment = active(1, 3, 7);
  s.lease_lapsed = true;  // from before: this child starts with a lease
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Start);
  EXPECT_FALSE(d.lease_lapsed);
}

TEST(DecideChild, NothingToStartWithoutAShard) {
  for (auto state : {client::State::Pending, client::State::Standby,
                     client::State::Removed, client::State::Lost}) {
    ChildSituation s;
    s.assignment = without_shard(state, 7);
    EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing)
        << client::state_name(state);
  }
}

TEST(DecideChild, NothingToStartOnceTheRegistrarFinished) {
  ChildSituation s;
  s.assignment = active(1, 3, 7);
  s.registrar_finished = true;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

TEST(DecideChild, NothingToStartWhileShuttingDown) {
  ChildSituation s;
  s.assignment = active(1, 3, 7);
  s.shutting_down = true;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

TEST(DecideChild, SameWorkGoesOn) {
  ChildDecision d = decide_child(running(), kNow);
  EXPECT_EQ(d.action, ChildAction::Nothing);
  EXPECT_FALSE(d.deadline);
}

TEST(DecideChild, DifferentWorkStopsWithTheKillTimeout) {
  ChildSituation shard = running();
  shard.assignment = active(1, 2, 6);
  ChildSituation count = running();
  count.assignment = active(0, 3, 6);
  ChildSituation epoch = running();
  epoch.assignment = active(0, 2, 6);
  ChildSituation slots = running();
  slots.assignment.slots = std::vector<std::int32_t>{1, 2};
  for (const ChildSituation &s : {shard, count, epoch, slots}) {
    ChildDecision d = decide_child(s, kNow);
    EXPECT_EQ(d.action, ChildAction::Stop);
    EXPECT_FALSE(d.deadline);  // --kill-timeout: the lease is held
  }
}

TEST(DecideChild, NoLongerActiveStopsWithTheKillTimeout) {
  ChildSituation s = running();
  s.assignment = without_shard(client::State::Standby, 6);
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_FALSE(d.deadline);
}

TEST(DecideChild, LeaseLostStopsByTheKillDeadline) {
  ChildSituation s = running();
  s.assignment = without_shard(client::State::Lost, 5);
  s.lease_lapsed = true;  // the callback saw Lost; so does the loop
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kHalfway);
  EXPECT_FALSE(d.lease_lapsed);  // seen as such
}

TEST(DecideChild, LeaseLostWhileStoppingBringsTheKillForward) {
  ChildSituation s = running();
  s.assignment = without_shard(client::State::Lost, 5);
  s.child_stopping = true;
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kHalfway);
}

TEST(DecideChild, RemovedKillsAtOnce) {
  // The server dropped the member: the registrar holds no lease any more.
  ChildSituation s = running();
  s.assignment = without_shard(client::State::Removed, 6);
  s.lease.reset();
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kNow);
  s.child_stopping = true;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kNow);
}

TEST(DecideChild, FinishedRegistrarStopsByTheKillDeadline) {
  ChildSituation s = running();
  s.registrar_finished = true;
  s.shutting_down = true;  // run shuts down when the registrar finished
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kHalfway);
  s.child_stopping = true;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kHalfway);
}

TEST(DecideChild, LapseUnseenKillsAtOnceEvenForTheSameWork) {
  // Lost and back to the same work within one step: the child worked
  // without a lease meanwhile.
  ChildSituation s = running();
  s.lease_lapsed = true;
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kNow);
  EXPECT_TRUE(d.lease_lapsed);  // until a child starts again
  s.child_stopping = true;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kNow);
  // Gone: the flag stays until the next child starts.
  s.child_running = false;
  s.child_stopping = false;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Start);
  EXPECT_FALSE(d.lease_lapsed);
}

TEST(DecideChild, ShuttingDownStopsWithTheKillTimeout) {
  ChildSituation s = running();
  s.shutting_down = true;
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_FALSE(d.deadline);
  // Stopping already: nothing more until the kill timeout.
  s.child_stopping = true;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
  // Once gone, nothing starts.
  s.child_running = false;
  s.child_stopping = false;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

TEST(DecideChild, SecondSignalKillsAtOnce) {
  ChildSituation s = running();
  s.shutting_down = true;
  s.kill_now = true;
  s.child_stopping = true;
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kNow);
  // Both signals at once: the stop is a SIGKILL and nothing else.
  s.child_stopping = false;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kNow);
}

}  // namespace
}  // namespace shard_coordinator::agent
