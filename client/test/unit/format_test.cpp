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

TEST(RenderTable, AlignsColumns) {
  EXPECT_EQ(render_table({"A", "BB"}, {{"xxx", "1"}, {"y", ""}}),
            "A    BB\n"
            "xxx  1\n"
            "y\n");
}

}  // namespace
}  // namespace shard_coordinator::agent
