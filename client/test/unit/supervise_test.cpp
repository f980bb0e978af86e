// run's decision about its child (agent/supervise.hpp): every branch of
// start, stop, kill, acknowledge or nothing.
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

client::Grant plain(int shard, int count, std::int64_t epoch) {
  return client::Grant{shard, count, std::nullopt, epoch};
}

client::Grant keys(std::vector<std::int32_t> slots, std::int64_t epoch,
                   int count = 2) {
  return client::Grant{0, count, std::move(slots), epoch};
}

// Revoked at `epoch`, learned with a lease fenced at `fence` and ending at
// `end`.
client::Revocation revoked(
    std::int64_t epoch, Clock::time_point fence, Clock::time_point end,
    client::RevokeReason reason = client::RevokeReason::Server) {
  client::Revocation r;
  r.epoch = epoch;
  r.reason = reason;
  r.from = plain(0, 2, 5);
  r.to = plain(0, 3, epoch);
  r.fence_at = fence;
  r.deadline = end;
  return r;
}

// A child running shard 0 of 2 at epoch 5, which is the grant.
ChildSituation running() {
  ChildSituation s;
  s.grant = plain(0, 2, 5);
  s.lease = kLease;
  s.child_running = true;
  s.child_grant = plain(0, 2, 5);
  return s;
}

TEST(KillDeadline, HalfwayFromFenceToEndOrAtOnce) {
  EXPECT_EQ(kill_deadline(kLease, kNow), kHalfway);
  EXPECT_EQ(kill_deadline(std::nullopt, kNow), kNow);
  EXPECT_EQ(kill_deadline(revoked(6, kNow + 1s, kNow + 2s)), kNow + 1500ms);
  // A removal: no lease, fence and deadline now.
  EXPECT_EQ(kill_deadline(revoked(6, kNow, kNow)), kNow);
}

// The least a revoked child gets: a revocation learned with the next
// heartbeat's row keeps this lease's deadline.
TEST(RevocationWindow, FromTheNextHeartbeatToTheKill) {
  // Interval 5 s, grace 10 s: lease 15 s, margin 5 s, fence at 10 s, kill
  // at 12.5 s; the next row comes at 5 s.
  client::LeaseTimes lease{kNow + 10s, kNow + 15s, kNow, 5s};
  EXPECT_EQ(revocation_window(lease), 7500ms);
  // Interval 200 ms, grace 300 ms: fence at 350 ms, kill at 425 ms.
  client::LeaseTimes tight{kNow + 350ms, kNow + 500ms, kNow, 200ms};
  EXPECT_EQ(revocation_window(tight), 225ms);
  // Grace shorter than the interval: nothing.
  client::LeaseTimes none{kNow + 300ms, kNow + 300ms, kNow, 300ms};
  EXPECT_EQ(revocation_window(none), 0ms);
}

TEST(DecideChild, StartsOnANonEmptyGrant) {
  ChildSituation s;
  s.grant = plain(1, 3, 7);
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Start);
  EXPECT_FALSE(d.acknowledge);
  s.grant = keys({4, 5}, 7);
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Start);
}

TEST(DecideChild, NothingToStartOnAnEmptyGrant) {
  // Pending, standby, waiting for its grant, Lost, Removed, stopping: the
  // registrar's grant is empty; so are slot mode's no keys.
  ChildSituation s;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
  s.grant = keys({}, 7);
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

TEST(DecideChild, NothingToStartOnceTheRegistrarFinished) {
  ChildSituation s;
  s.grant = plain(1, 3, 7);
  s.registrar_finished = true;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

TEST(DecideChild, NothingToStartWhileShuttingDown) {
  ChildSituation s;
  s.grant = plain(1, 3, 7);
  s.shutting_down = true;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

TEST(DecideChild, TheSameGrantGoesOn) {
  ChildDecision d = decide_child(running(), kNow);
  EXPECT_EQ(d.action, ChildAction::Nothing);
  EXPECT_FALSE(d.deadline);
  EXPECT_FALSE(d.acknowledge);
}

// Only its own grant restarts a child: not a new epoch of the cluster, nor
// slot mode's count or index.
TEST(DecideChild, ANewEpochOrCountAloneRestartsNothing) {
  ChildSituation s = running();
  s.child_grant = keys({1, 2}, 5, 2);
  s.grant = keys({1, 2}, 5, 3);
  s.grant.shard = 2;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
}

// More work and nothing revoked (a smaller count in plain mode, keys added
// in slot mode): a restart with --kill-timeout only.
TEST(DecideChild, AGrantOnlyChangeRestartsWithTheKillTimeout) {
  ChildSituation smaller = running();
  smaller.child_grant = plain(0, 3, 5);
  smaller.grant = plain(0, 2, 6);
  ChildSituation added = running();
  added.child_grant = keys({1}, 5);
  added.grant = keys({1, 2}, 6);
  for (const ChildSituation &s : {smaller, added}) {
    ChildDecision d = decide_child(s, kNow);
    EXPECT_EQ(d.action, ChildAction::Stop);
    EXPECT_FALSE(d.deadline);
    EXPECT_FALSE(d.acknowledge);
  }
}

// A revocation: SIGKILL no later than halfway between its fence point and
// its deadline, whatever --kill-timeout says; not acknowledged while the
// child runs.
TEST(DecideChild, ARevocationStopsByItsKillDeadline) {
  ChildSituation s = running();
  s.grant = plain(0, 3, 6);
  s.releases = {revoked(6, kNow + 1s, kNow + 2s)};
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kNow + 1500ms);
  EXPECT_FALSE(d.acknowledge);
  // Later heartbeats renewed the registrar's lease; the deadline stays.
  s.lease = client::LeaseTimes{kNow + 5s, kNow + 6s, kNow, 200ms};
  EXPECT_EQ(decide_child(s, kNow).deadline, kNow + 1500ms);
}

TEST(DecideChild, ARevocationWhileStoppingBringsTheKillForward) {
  ChildSituation s = running();
  s.grant = plain(0, 2, 6);  // more keys: stopping with the kill timeout
  s.child_grant = plain(0, 3, 5);
  s.child_stopping = true;
  EXPECT_EQ(decide_child(s, kNow).action, ChildAction::Nothing);
  s.grant = client::Grant{};
  s.releases = {revoked(7, kNow + 1s, kNow + 2s)};
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kNow + 1500ms);
}

TEST(DecideChild, TheEarliestRevocationDecides) {
  ChildSituation s = running();
  s.grant = client::Grant{};
  s.releases = {revoked(6, kNow + 3s, kNow + 4s),
                revoked(7, kNow + 1s, kNow + 2s, client::RevokeReason::Lost)};
  EXPECT_EQ(decide_child(s, kNow).deadline, kNow + 1500ms);
}

TEST(DecideChild, ARemovalKillsAtOnce) {
  ChildSituation s = running();
  s.grant = client::Grant{};
  s.lease.reset();
  s.releases = {revoked(6, kNow, kNow, client::RevokeReason::Removed)};
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kNow);
  s.child_stopping = true;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kNow);
}

// Lost and back to the same grant within one step (the whole agent was
// paused): the Lost revocation is still pending, so the child that worked
// without a lease goes, by that lease's kill deadline (past: at once).
TEST(DecideChild, ALapseBackToTheSameGrantStillStops) {
  ChildSituation s = running();
  s.releases = {revoked(5, kNow - 2s, kNow - 1s, client::RevokeReason::Lost)};
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_EQ(d.deadline, kNow - 1500ms);
}

// Acknowledged only once nothing of the child's tree is left (a setsid
// grandchild counts): then every pending release, and the next child
// starts.
TEST(DecideChild, AcknowledgesOnlyWhenTheWholeTreeIsGone) {
  ChildSituation s = running();
  s.grant = plain(0, 3, 7);
  s.releases = {revoked(6, kNow + 1s, kNow + 2s),
                revoked(7, kNow + 1s, kNow + 2s)};
  s.child_stopping = true;  // the child exited; a grandchild is left
  ChildDecision d = decide_child(s, kNow);
  EXPECT_FALSE(d.acknowledge);
  EXPECT_EQ(d.action, ChildAction::Kill);
  s.child_running = false;
  s.child_stopping = false;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.acknowledge, 7);
  EXPECT_EQ(d.action, ChildAction::Start);
}

TEST(DecideChild, AcknowledgesWithNothingToStart) {
  ChildSituation s;
  s.releases = {revoked(6, kNow + 1s, kNow + 2s)};
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.acknowledge, 6);
  EXPECT_EQ(d.action, ChildAction::Nothing);
}

TEST(DecideChild, FinishedRegistrarStopsByTheLeasesKillDeadline) {
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

// Shutting down: the registrar's stop() revokes everything at its next step;
// until then the kill timeout, then the revocation's deadline.
TEST(DecideChild, ShuttingDownStopsTheChild) {
  ChildSituation s = running();
  s.shutting_down = true;
  ChildDecision d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Stop);
  EXPECT_FALSE(d.deadline);
  s.child_stopping = true;
  s.grant = client::Grant{};
  s.releases = {revoked(5, kNow + 1s, kNow + 2s, client::RevokeReason::Stop)};
  d = decide_child(s, kNow);
  EXPECT_EQ(d.action, ChildAction::Kill);
  EXPECT_EQ(d.deadline, kNow + 1500ms);
  // Gone: acknowledged (the registrar then leaves), nothing starts.
  s.child_running = false;
  s.child_stopping = false;
  d = decide_child(s, kNow);
  EXPECT_EQ(d.acknowledge, 5);
  EXPECT_EQ(d.action, ChildAction::Nothing);
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
