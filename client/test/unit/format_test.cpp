#include "format.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace shard_coordinator::agent {
namespace {

client::Assignment active(int shard, int count, std::int64_t epoch) {
  client::Assignment a;
  a.state = client::State::Active;
  a.shard = shard;
  a.num_shards = count;
  a.epoch = epoch;
  return a;
}

client::Grant grant(int shard, int count, std::int64_t epoch) {
  return client::Grant{shard, count, std::nullopt, epoch};
}

TEST(ChildEnvironment, AddsOursAndDropsInheritedOnes) {
  const char *base[] = {"PATH=/bin", "SHARD_INDEX=9", "SHARD_SLOTS=1,2",
                        "SHARD_INDEXER=keep", nullptr};
  auto env = child_environment(base, grant(2, 3, 11), "orders", "web-1");
  std::vector<std::string> expected = {
      "PATH=/bin",         "SHARD_INDEXER=keep", "SHARD_INDEX=2",
      "SHARD_COUNT=3",     "SHARD_EPOCH=11",     "SHARD_CLUSTER=orders",
      "SHARD_MEMBER=web-1"};
  EXPECT_EQ(env, expected);
}

TEST(ChildEnvironment, SlotsCommaSeparated) {
  auto g = grant(0, 2, 1);
  g.slots = std::vector<std::int32_t>{0, 2, 4};
  auto env = child_environment(nullptr, g, "c", "m");
  EXPECT_EQ(env.back(), "SHARD_SLOTS=0,2,4");
}

TEST(AssignmentJson, OneParsableLine) {
  auto line = assignment_json("orders", "web \"1\"", active(2, 3, 11));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["event"], "assignment");
  EXPECT_EQ(j["cluster"], "orders");
  EXPECT_EQ(j["member"], "web \"1\"");
  EXPECT_EQ(j["shard"], 2);
  EXPECT_EQ(j["num_shards"], 3);
  EXPECT_EQ(j["epoch"], 11);
  EXPECT_EQ(j["state"], "active");
  EXPECT_FALSE(j.contains("slots"));
}

TEST(AssignmentJson, NullShardAndSlots) {
  client::Assignment a;
  a.state = client::State::Lost;
  a.num_shards = 2;
  a.epoch = 3;
  auto j = nlohmann::json::parse(assignment_json("c", "m", a));
  EXPECT_TRUE(j["shard"].is_null());
  EXPECT_EQ(j["state"], "lost");
  a.state = client::State::Active;
  a.shard = 0;
  a.slots = std::vector<std::int32_t>{0, 5};
  j = nlohmann::json::parse(assignment_json("c", "m", a));
  EXPECT_EQ(j["slots"], nlohmann::json::array({0, 5}));
}

TEST(GrantJson, TheWholeGrant) {
  auto j = nlohmann::json::parse(grant_json("c", "m", grant(1, 3, 8)));
  EXPECT_EQ(j["event"], "granted");
  EXPECT_EQ(j["cluster"], "c");
  EXPECT_EQ(j["member"], "m");
  EXPECT_EQ(j["epoch"], 8);
  EXPECT_EQ(j["shard"], 1);
  EXPECT_EQ(j["num_shards"], 3);
  EXPECT_FALSE(j.contains("slots"));
}

TEST(RevocationJson, PlainModeWithItsDeadline) {
  using namespace std::chrono_literals;
  client::Revocation r;
  r.epoch = 9;
  r.from = grant(1, 3, 8);
  r.to = grant(1, 4, 9);
  client::Clock::time_point now{std::chrono::seconds(500)};
  r.deadline = now + 1500ms;
  r.fence_at = now + 1s;
  // 2026-12-06T20:00:00Z.
  std::chrono::system_clock::time_point wall{std::chrono::seconds(1796587200)};
  auto j = nlohmann::json::parse(revocation_json("c", "m", r, now, wall));
  EXPECT_EQ(j["event"], "revoked");
  EXPECT_EQ(j["epoch"], 9);
  EXPECT_EQ(j["reason"], "server");
  EXPECT_EQ(j["revoked"],
            nlohmann::json::parse(R"({"shard":1,"num_shards":3})"));
  EXPECT_EQ(j["grant"],
            nlohmann::json::parse(R"({"shard":1,"num_shards":4,"epoch":9})"));
  EXPECT_EQ(j["deadline_ms"], 1500);
  EXPECT_EQ(j["deadline"], "2026-12-06T20:00:01.500Z");
  // Past: 0, never negative.
  j = nlohmann::json::parse(revocation_json("c", "m", r, now + 2s, wall));
  EXPECT_EQ(j["deadline_ms"], 0);
}

TEST(RevocationJson, SlotModeListsTheKeys) {
  client::Revocation r;
  r.reason = client::RevokeReason::Stop;
  r.from = grant(0, 2, 4);
  r.from.slots = std::vector<std::int32_t>{1, 2};
  r.keys = {1, 2};
  r.to.slots = std::vector<std::int32_t>{};
  auto j = nlohmann::json::parse(
      revocation_json("c", "m", r, client::Clock::time_point{},
                      std::chrono::system_clock::time_point{}));
  EXPECT_EQ(j["reason"], "stop");
  EXPECT_EQ(j["revoked"], nlohmann::json::parse(R"({"slots":[1,2]})"));
  EXPECT_EQ(j["grant"]["slots"], nlohmann::json::array());
}

TEST(AcknowledgedJson, Epoch) {
  EXPECT_EQ(
      acknowledged_json("c", "m", 12),
      R"({"event":"acknowledged","cluster":"c","member":"m","epoch":12})");
}

TEST(RenderTable, AlignsColumns) {
  EXPECT_EQ(render_table({"A", "BB"}, {{"xxx", "1"}, {"y", ""}}),
            "A    BB\n"
            "xxx  1\n"
            "y\n");
}

}  // namespace
}  // namespace shard_coordinator::agent
