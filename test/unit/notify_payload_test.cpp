// Unit tests of the NOTIFY payload (src/notify_payload.hpp).

#include "core/notify_payload.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace sc = shard_coordinator;
using nlohmann::json;
using sc::AssignmentNotice;
using sc::kNoShard;
using sc::MemberState;

namespace {

AssignmentNotice Sample() {
  AssignmentNotice n;
  n.cluster = "orders";
  n.member = "worker-1";
  n.shard = 3;
  n.num_shards = 8;
  n.epoch = 42;
  n.state = "active";
  return n;
}

json Parse(const AssignmentNotice &n) {
  const std::string text = sc::notice_to_json(n);
  json j;
  EXPECT_NO_THROW(j = json::parse(text)) << text;
  return j;
}

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

TEST(NoticeToJson, HasExactlyTheDocumentedKeys) {
  const json j = Parse(Sample());
  ASSERT_TRUE(j.is_object());
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys, (std::set<std::string>{"cluster", "member", "shard",
                                         "num_shards", "epoch", "state"}));
  EXPECT_EQ(j.size(), 6u);
}

TEST(NoticeToJson, ValuesRoundTripWithTheirTypes) {
  const json j = Parse(Sample());
  ASSERT_TRUE(j["cluster"].is_string());
  ASSERT_TRUE(j["member"].is_string());
  ASSERT_TRUE(j["shard"].is_number_integer());
  ASSERT_TRUE(j["num_shards"].is_number_integer());
  ASSERT_TRUE(j["epoch"].is_number_integer());
  ASSERT_TRUE(j["state"].is_string());
  EXPECT_EQ(j["cluster"].get<std::string>(), "orders");
  EXPECT_EQ(j["member"].get<std::string>(), "worker-1");
  EXPECT_EQ(j["shard"].get<std::int64_t>(), 3);
  EXPECT_EQ(j["num_shards"].get<std::int64_t>(), 8);
  EXPECT_EQ(j["epoch"].get<std::int64_t>(), 42);
  EXPECT_EQ(j["state"].get<std::string>(), "active");
}

TEST(NoticeToJson, ShardZeroIsANumberNotNull) {
  AssignmentNotice n = Sample();
  n.shard = 0;
  const json j = Parse(n);
  ASSERT_TRUE(j["shard"].is_number_integer());
  EXPECT_EQ(j["shard"].get<std::int64_t>(), 0);
}

TEST(NoticeToJson, NoShardIsNull) {
  for (const char *state : {"pending", "standby", "removed"}) {
    AssignmentNotice n = Sample();
    n.shard = kNoShard;
    n.state = state;
    const json j = Parse(n);
    ASSERT_TRUE(j.contains("shard")) << state;
    EXPECT_TRUE(j["shard"].is_null()) << state;
    EXPECT_EQ(j["state"].get<std::string>(), state);
    EXPECT_EQ(j.size(), 6u);
  }
}

TEST(NoticeToJson, ExtremeNumbersRoundTripExactly) {
  AssignmentNotice n = Sample();
  n.shard = std::numeric_limits<std::int32_t>::max();
  n.num_shards = std::numeric_limits<std::int32_t>::max();
  n.epoch = std::numeric_limits<std::int64_t>::max();
  json j = Parse(n);
  EXPECT_EQ(j["shard"].get<std::int64_t>(), n.shard);
  EXPECT_EQ(j["num_shards"].get<std::int64_t>(), n.num_shards);
  EXPECT_EQ(j["epoch"].get<std::int64_t>(), n.epoch);

  // Beyond double precision: must not go through a float.
  n.epoch = (std::int64_t{1} << 53) + 1;
  j = Parse(n);
  ASSERT_TRUE(j["epoch"].is_number_integer());
  EXPECT_EQ(j["epoch"].get<std::int64_t>(), n.epoch);

  n.epoch = 0;
  n.num_shards = 0;
  j = Parse(n);
  EXPECT_EQ(j["epoch"].get<std::int64_t>(), 0);
  EXPECT_EQ(j["num_shards"].get<std::int64_t>(), 0);
}

TEST(NoticeToJson, SpecialCharactersInNamesRoundTrip) {
  const std::string names[] = {
      "he said \"hi\"",
      "back\\slash\\",
      "new\nline\r\ttab",
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
      "\xE2\x80\xA8 line separator",
      "</script><b>",
      "{\"cluster\":\"evil\"}",
      "",
      std::string("nul\0inside", 10),
      "\x01\x1f\x7f",
  };
  for (const std::string &cluster : names) {
    for (const std::string &member : names) {
      AssignmentNotice n = Sample();
      n.cluster = cluster;
      n.member = member;
      const std::string text = sc::notice_to_json(n);
      // One line: a payload is read line-oriented by some clients.
      EXPECT_EQ(text.find('\n'), std::string::npos) << text;
      json j;
      ASSERT_NO_THROW(j = json::parse(text)) << text;
      EXPECT_EQ(j["cluster"].get<std::string>(), cluster);
      EXPECT_EQ(j["member"].get<std::string>(), member);
      EXPECT_EQ(j.size(), 6u);
    }
  }
}

TEST(NoticeToJson, InvalidUtf8DoesNotThrowAndIsReplaced) {
  const std::string bad[] = {
      "ab\xff"
      "cd",      // never valid
      "ab\xC3",  // truncated sequence at the end
      "ab\xC0\xAF"
      "cd",  // overlong '/'
      "ab\xED\xA0\x80"
      "cd",                  // UTF-16 surrogate
      "\x80\x80\x80",        // lone continuation bytes
      "ab\xF4\x90\x80\x80",  // beyond U+10FFFF
  };
  for (const std::string &name : bad) {
    AssignmentNotice n = Sample();
    n.cluster = name;
    n.member = name;
    std::string text;
    ASSERT_NO_THROW(text = sc::notice_to_json(n));
    json j;
    ASSERT_NO_THROW(j = json::parse(text)) << "output is not valid JSON";
    for (const char *key : {"cluster", "member"}) {
      const std::string got = j[key].get<std::string>();
      EXPECT_NE(got.find(kReplacement), std::string::npos) << got;
      if (name.rfind("ab", 0) == 0) {
        EXPECT_EQ(got.rfind("ab", 0), 0u) << got;
      }
      if (name.size() >= 2 && name.compare(name.size() - 2, 2, "cd") == 0) {
        EXPECT_EQ(got.compare(got.size() - 2, 2, "cd"), 0) << got;
      }
    }
    // The rest of the payload is intact.
    EXPECT_EQ(j["shard"].get<std::int64_t>(), 3);
    EXPECT_EQ(j["state"].get<std::string>(), "active");
  }
}

TEST(NoticeToJson, WorstCaseNamesFitInANotifyPayload) {
  // Names at their byte limits, made of the bytes that expand the most.
  for (const char byte : {'"', '\\', '\x01', '\xff'}) {
    AssignmentNotice n = Sample();
    n.cluster = std::string(63, byte);
    n.member = std::string(127, byte);
    n.shard = std::numeric_limits<std::int32_t>::min();
    n.num_shards = std::numeric_limits<std::int32_t>::min();
    n.epoch = std::numeric_limits<std::int64_t>::min();
    n.state = "standby";
    const std::string text = sc::notice_to_json(n);
    EXPECT_LE(text.size(), sc::kNotifyPayloadMax) << text;
    json parsed;
    EXPECT_NO_THROW(parsed = json::parse(text));
  }
  EXPECT_LT(sc::kNotifyPayloadMax, 8000u);
}

TEST(StateName, NamesEveryState) {
  EXPECT_STREQ(sc::state_name(MemberState::Pending), "pending");
  EXPECT_STREQ(sc::state_name(MemberState::Active), "active");
  EXPECT_STREQ(sc::state_name(MemberState::Standby), "standby");
}

TEST(StateName, UsableAsNoticeState) {
  for (MemberState s :
       {MemberState::Pending, MemberState::Active, MemberState::Standby}) {
    AssignmentNotice n = Sample();
    n.state = sc::state_name(s);
    const json j = Parse(n);
    EXPECT_EQ(j["state"].get<std::string>(), sc::state_name(s));
  }
}

}  // namespace

namespace {

// A slot list too long for a NOTIFY payload is left out, and the payload
// says so; a short one is kept.
TEST(NoticePayload, OmitsSlotsThatDoNotFit) {
  shard_coordinator::AssignmentNotice notice;
  notice.cluster = "c";
  notice.member = "m";
  notice.shard = 0;
  notice.num_shards = 1;
  notice.epoch = 7;
  notice.state = "active";
  notice.has_slots = true;
  for (int k = 0; k < 1024; ++k) notice.slots.push_back(-2000000000 + k);
  ASSERT_GT(shard_coordinator::notice_to_json(notice).size(),
            shard_coordinator::kNotifyPayloadMax);
  const std::string payload = shard_coordinator::notice_payload(notice);
  EXPECT_LE(payload.size(), shard_coordinator::kNotifyPayloadMax);
  const auto j = nlohmann::json::parse(payload);
  EXPECT_FALSE(j.contains("slots"));
  EXPECT_EQ(j.at("slots_omitted"), true);
  EXPECT_EQ(j.at("epoch"), 7);

  notice.slots = {1, 2, 3};
  const auto short_payload =
      nlohmann::json::parse(shard_coordinator::notice_payload(notice));
  EXPECT_EQ(short_payload.at("slots"), nlohmann::json::array({1, 2, 3}));
  EXPECT_FALSE(short_payload.contains("slots_omitted"));
}

TEST(ClusterNoticeToJson, HasExactlyClusterNumShardsEpoch) {
  const std::string text = sc::cluster_notice_to_json("orders", 7, 42);
  EXPECT_EQ(text, R"({"cluster":"orders","num_shards":7,"epoch":42})");
  const json j = json::parse(text);
  EXPECT_EQ(j.size(), 3u);
  EXPECT_FALSE(j.contains("member"));
}

TEST(ClusterNoticeToJson, WorstCaseFitsAndBadUtf8IsReplaced) {
  const std::string text = sc::cluster_notice_to_json(
      std::string(63, '"'), std::numeric_limits<std::int32_t>::max(),
      std::numeric_limits<std::int64_t>::max());
  EXPECT_LE(text.size(), sc::kNotifyPayloadMax);
  const json j = json::parse(text);
  EXPECT_EQ(j["cluster"].get<std::string>(), std::string(63, '"'));
  EXPECT_EQ(j["epoch"].get<std::int64_t>(),
            std::numeric_limits<std::int64_t>::max());
  const json bad = json::parse(sc::cluster_notice_to_json("a\xFF", 1, 1));
  EXPECT_EQ(bad["cluster"].get<std::string>(), "a" + kReplacement);
}

}  // namespace
