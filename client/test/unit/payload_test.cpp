#include "payload.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

std::optional<Notice> notice(const std::string &payload,
                             std::string *why = nullptr) {
  std::string ignored;
  return parse_notice(payload, why ? why : &ignored);
}

TEST(ParseNotice, Active) {
  auto n =
      notice(R"({"cluster":"orders","member":"web-1","shard":2,"num_shards":3,)"
             R"("epoch":17,"state":"active"})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->cluster, "orders");
  EXPECT_EQ(n->member, "web-1");
  EXPECT_EQ(n->assignment.state, State::Active);
  EXPECT_EQ(n->assignment.shard, 2);
  EXPECT_EQ(n->assignment.num_shards, 3);
  EXPECT_EQ(n->assignment.epoch, 17);
  EXPECT_FALSE(n->assignment.slots);
}

TEST(ParseNotice, SlotKeysAreAnyInt32AndMayBeOmitted) {
  auto n = notice(
      R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":3,)"
      R"("state":"active","slots":[-2147483648,-5,0,2147483647]})");
  ASSERT_TRUE(n);
  ASSERT_TRUE(n->assignment.slots);
  EXPECT_EQ(*n->assignment.slots,
            (std::vector<std::int32_t>{-2147483647 - 1, -5, 0, 2147483647}));
  EXPECT_FALSE(n->slots_omitted);
  auto too_big = notice(
      R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":3,)"
      R"("state":"active","slots":[2147483648]})");
  EXPECT_FALSE(too_big);
  auto omitted = notice(
      R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":4,)"
      R"("state":"active","slots_omitted":true})");
  ASSERT_TRUE(omitted);
  EXPECT_TRUE(omitted->slots_omitted);
  EXPECT_FALSE(omitted->assignment.slots);
}

TEST(ParseNotice, StandbyAndRemovedHaveNullShard) {
  auto s = notice(R"({"cluster":"c","member":"m","shard":null,"num_shards":2,)"
                  R"("epoch":5,"state":"standby"})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->assignment.state, State::Standby);
  EXPECT_FALSE(s->assignment.shard);
  auto r = notice(R"({"cluster":"c","member":"m","shard":null,"num_shards":2,)"
                  R"("epoch":6,"state":"removed"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->assignment.state, State::Removed);
}

// Extension 1.1: placed, but its grant is still held by its previous
// holder.
TEST(ParseNotice, ActiveWaitingForItsGrantHasNullShard) {
  auto n = notice(R"({"cluster":"c","member":"m","shard":null,"num_shards":2,)"
                  R"("epoch":5,"state":"active"})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->assignment.state, State::Active);
  EXPECT_FALSE(n->assignment.shard);
  EXPECT_FALSE(n->assignment.active());
}

TEST(ParseNotice, SlotsArePassedThrough) {
  auto n = notice(R"({"cluster":"c","member":"m","shard":1,"num_shards":2,)"
                  R"("epoch":9,"state":"active","slots":[1,3,5]})");
  ASSERT_TRUE(n);
  ASSERT_TRUE(n->assignment.slots);
  EXPECT_EQ(*n->assignment.slots, (std::vector<std::int32_t>{1, 3, 5}));
  auto empty = notice(R"({"cluster":"c","member":"m","shard":1,"num_shards":2,)"
                      R"("epoch":9,"state":"active","slots":[]})");
  ASSERT_TRUE(empty);
  ASSERT_TRUE(empty->assignment.slots);
  EXPECT_TRUE(empty->assignment.slots->empty());
}

TEST(ParseNotice, UnknownKeysAndOrderDoNotMatter) {
  auto n = notice(R"({"state":"active","future":{"x":[1]},"epoch":1,)"
                  R"("num_shards":1,"shard":0,"member":"m","cluster":"c"})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->assignment.shard, 0);
}

TEST(ParseNotice, UnicodeNames) {
  auto n = notice(R"({"cluster":"zürich","member":"\u00e9t\u00e9-1","shard":0,)"
                  R"("num_shards":1,"epoch":1,"state":"active"})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->cluster, "zürich");
  EXPECT_EQ(n->member, "été-1");
}

TEST(ParseNotice, LargeEpoch) {
  auto n = notice(R"({"cluster":"c","member":"m","shard":0,"num_shards":1,)"
                  R"("epoch":9223372036854775807,"state":"active"})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->assignment.epoch, INT64_MAX);
}

struct BadPayload {
  const char *payload;
  const char *reason;
};

class ParseNoticeRejects : public ::testing::TestWithParam<BadPayload> {};

TEST_P(ParseNoticeRejects, WithAReason) {
  std::string why;
  EXPECT_FALSE(notice(GetParam().payload, &why));
  EXPECT_NE(why.find(GetParam().reason), std::string::npos) << why;
}

INSTANTIATE_TEST_SUITE_P(
    Payloads, ParseNoticeRejects,
    ::testing::Values(
        BadPayload{"", "not valid JSON"}, BadPayload{"{", "not valid JSON"},
        BadPayload{"[1]", "not a JSON object"},
        BadPayload{
            R"({"member":"m","shard":0,"num_shards":1,"epoch":1,"state":"active"})",
            "missing \"cluster\""},
        BadPayload{
            R"({"cluster":1,"member":"m","shard":0,"num_shards":1,"epoch":1,"state":"active"})",
            "\"cluster\" is not a string"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":1,"state":"sleeping"})",
            "unknown state"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":1,"state":"standby"})",
            "is not null"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":1,"num_shards":1,"epoch":1,"state":"active"})",
            "not below"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":-1,"num_shards":1,"epoch":1,"state":"active"})",
            "out of range"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":"0","num_shards":1,"epoch":1,"state":"active"})",
            "not an integer"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0.5,"num_shards":1,"epoch":1,"state":"active"})",
            "not an integer"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":4294967296,"epoch":1,"state":"active"})",
            "out of range"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":18446744073709551615,"state":"active"})",
            "out of range"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"state":"active"})",
            "missing \"epoch\""},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":1,"state":"active","slots":"0"})",
            "not an array"},
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":1,"state":"active","slots":[1,"x"]})",
            "slots"}));

std::optional<ClusterNotice> cluster_notice(const std::string &payload,
                                            std::string *why = nullptr) {
  std::string ignored;
  return parse_cluster_notice(payload, why ? why : &ignored);
}

TEST(ParseClusterNotice, AsTheServerSendsIt) {
  auto n = cluster_notice(R"({"cluster":"jobs","num_shards":4,"epoch":12})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->cluster, "jobs");
  EXPECT_EQ(n->num_shards, 4);
  EXPECT_EQ(n->epoch, 12);
}

TEST(ParseClusterNotice, ZeroLargeEpochUnknownKeysAndOrder) {
  // The last member gone: zero shards.
  auto zero = cluster_notice(R"({"epoch":0,"num_shards":0,"cluster":"c"})");
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->num_shards, 0);
  EXPECT_EQ(zero->epoch, 0);
  auto big = cluster_notice(R"({"cluster":"zürich","num_shards":2147483647,)"
                            R"("epoch":9223372036854775807,"future":[1]})");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->cluster, "zürich");
  EXPECT_EQ(big->num_shards, INT32_MAX);
  EXPECT_EQ(big->epoch, INT64_MAX);
}

class ParseClusterNoticeRejects : public ::testing::TestWithParam<BadPayload> {
};

TEST_P(ParseClusterNoticeRejects, WithAReason) {
  std::string why;
  EXPECT_FALSE(cluster_notice(GetParam().payload, &why));
  EXPECT_NE(why.find(GetParam().reason), std::string::npos) << why;
}

INSTANTIATE_TEST_SUITE_P(
    Payloads, ParseClusterNoticeRejects,
    ::testing::Values(
        BadPayload{"", "not valid JSON"},
        BadPayload{R"({"cluster":"c","num_shards":1)", "not valid JSON"},
        BadPayload{R"(["c",1,2])", "not a JSON object"},
        BadPayload{"null", "not a JSON object"},
        BadPayload{R"({"num_shards":1,"epoch":1})", "missing \"cluster\""},
        BadPayload{R"({"cluster":null,"num_shards":1,"epoch":1})",
                   "\"cluster\" is not a string"},
        BadPayload{R"({"cluster":7,"num_shards":1,"epoch":1})",
                   "\"cluster\" is not a string"},
        BadPayload{R"({"cluster":"c","epoch":1})", "missing \"num_shards\""},
        BadPayload{R"({"cluster":"c","num_shards":"1","epoch":1})",
                   "\"num_shards\" is not an integer"},
        BadPayload{R"({"cluster":"c","num_shards":1.5,"epoch":1})",
                   "\"num_shards\" is not an integer"},
        BadPayload{R"({"cluster":"c","num_shards":null,"epoch":1})",
                   "\"num_shards\" is not an integer"},
        BadPayload{R"({"cluster":"c","num_shards":-1,"epoch":1})",
                   "\"num_shards\" is out of range"},
        BadPayload{R"({"cluster":"c","num_shards":2147483648,"epoch":1})",
                   "\"num_shards\" is out of range"},
        BadPayload{R"({"cluster":"c","num_shards":1})", "missing \"epoch\""},
        BadPayload{R"({"cluster":"c","num_shards":1,"epoch":"1"})",
                   "\"epoch\" is not an integer"},
        BadPayload{R"({"cluster":"c","num_shards":1,"epoch":true})",
                   "\"epoch\" is not an integer"},
        BadPayload{R"({"cluster":"c","num_shards":1,"epoch":-1})",
                   "\"epoch\" is out of range"},
        BadPayload{
            R"({"cluster":"c","num_shards":1,"epoch":18446744073709551615})",
            "\"epoch\" is out of range"},
        // A member notice is not a count-only change.
        BadPayload{
            R"({"cluster":"c","member":"m","shard":0,"num_shards":1,"epoch":1,"state":"active"})",
            "\"member\""}));

TEST(ParseHeartbeatRow, AsTheServerSendsIt) {
  // What to_jsonb(h) || jsonb_build_object(...) gives for an active member
  // (extension 1.1).
  std::string why;
  auto row = parse_heartbeat_row(
      R"({"epoch": 12, "shard": 1, "slots": null, "state": "active", )"
      R"("channel": "sc_c_m_0123456789abcdef", )"
      R"("expires_at": "2025-01-01T00:00:00.5+00:00", "num_shards": 3, )"
      R"("sc_lease_s": 0.487123, "sc_release_s": null, )"
      R"("sc_interval_s": 0.200000, "release_within": null, )"
      R"("lease_remaining": "00:00:00.487123", "acknowledged_epoch": 11, )"
      R"("heartbeat_interval": "00:00:00.2"})",
      &why);
  ASSERT_TRUE(row) << why;
  EXPECT_EQ(row->assignment.state, State::Active);
  EXPECT_EQ(row->assignment.shard, 1);
  EXPECT_EQ(row->assignment.num_shards, 3);
  EXPECT_EQ(row->assignment.epoch, 12);
  EXPECT_EQ(row->heartbeat_interval, 200ms);
  EXPECT_EQ(row->lease_remaining, 487123us);
  EXPECT_FALSE(row->release_within);
  EXPECT_EQ(row->acknowledged_epoch, 11);
}

TEST(ParseHeartbeatRow, ReleaseWithinAndNoAcknowledgement) {
  std::string why;
  auto row = parse_heartbeat_row(
      R"({"epoch": 7, "shard": null, "state": "active", "num_shards": 2, )"
      R"("sc_lease_s": 1.5, "sc_release_s": 0.25, "sc_interval_s": 0.5, )"
      R"("acknowledged_epoch": null})",
      &why);
  ASSERT_TRUE(row) << why;
  EXPECT_EQ(row->assignment.state, State::Active);
  EXPECT_FALSE(row->assignment.shard);
  EXPECT_EQ(row->release_within, 250ms);
  EXPECT_FALSE(row->acknowledged_epoch);
  EXPECT_FALSE(parse_heartbeat_row(
      R"({"epoch":7,"shard":null,"state":"active","num_shards":2,)"
      R"("sc_lease_s":1.5,"sc_release_s":"soon","sc_interval_s":0.5})",
      &why));
  EXPECT_NE(why.find("sc_release_s"), std::string::npos);
  EXPECT_FALSE(parse_heartbeat_row(
      R"({"epoch":7,"shard":null,"state":"active","num_shards":2,)"
      R"("sc_lease_s":1.5,"sc_interval_s":0.5,"acknowledged_epoch":-1})",
      &why));
  EXPECT_NE(why.find("acknowledged_epoch"), std::string::npos);
}

TEST(ParseHeartbeatRow, PendingWithWholeSeconds) {
  std::string why;
  auto row = parse_heartbeat_row(
      R"({"epoch":0,"shard":null,"state":"pending","num_shards":0,"sc_lease_s":15,"sc_interval_s":5})",
      &why);
  ASSERT_TRUE(row) << why;
  EXPECT_EQ(row->assignment.state, State::Pending);
  EXPECT_EQ(row->heartbeat_interval, 5s);
  EXPECT_EQ(row->lease_remaining, 15s);
}

TEST(ParseHeartbeatRow, Rejects) {
  std::string why;
  EXPECT_FALSE(parse_heartbeat_row(
      R"({"epoch":0,"shard":null,"state":"pending","num_shards":0,"sc_interval_s":5})",
      &why));
  EXPECT_NE(why.find("sc_lease_s"), std::string::npos);
  EXPECT_FALSE(parse_heartbeat_row(
      R"({"epoch":0,"shard":null,"state":"pending","num_shards":0,"sc_lease_s":1,"sc_interval_s":0})",
      &why));
  EXPECT_NE(why.find("not positive"), std::string::npos);
  // Rows never say "removed": a heartbeat registers the member again.
  EXPECT_FALSE(parse_heartbeat_row(
      R"({"epoch":0,"shard":null,"state":"removed","num_shards":0,"sc_lease_s":1,"sc_interval_s":1})",
      &why));
  EXPECT_FALSE(parse_heartbeat_row(
      R"({"epoch":0,"shard":null,"state":"pending","num_shards":0,"sc_lease_s":1e300,"sc_interval_s":1})",
      &why));
}

}  // namespace
}  // namespace shard_coordinator::client
