// The registrar's protocol (lib/protocol.hpp): the statements it sends and
// what it makes of answers and notifications, with no connection.
#include "protocol.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using Row = std::vector<std::optional<std::string>>;

QueryResult rows(int columns, std::vector<Row> values) {
  QueryResult result;
  result.ok = true;
  result.columns = columns;
  result.rows = std::move(values);
  return result;
}

QueryResult failure(const std::string &sqlstate) {
  QueryResult result;
  result.sqlstate = sqlstate;
  result.message = "failed";
  return result;
}

const Protocol kProtocol("orders", "web-1", 4242);
const Channels kChannels{"sc_1", "scc_2"};

TEST(Protocol, StatementsTakeClusterAndMember) {
  QueryParams names = {"orders", "web-1"};
  Statement both = kProtocol.channels_query(false);
  EXPECT_EQ(both.kind, QueryKind::Channels);
  EXPECT_EQ(both.sql,
            "SELECT shard_coordinator.channel($1, $2), "
            "shard_coordinator.channel($1)");
  EXPECT_EQ(both.params, names);
  EXPECT_EQ(kProtocol.channels_query(true).sql,
            "SELECT shard_coordinator.channel($1, $2)");
  Statement leave = kProtocol.leave_query();
  EXPECT_EQ(leave.kind, QueryKind::Leave);
  EXPECT_EQ(leave.sql, "SELECT shard_coordinator.leave($1, $2, $3::bigint)");
  EXPECT_EQ(leave.params, (QueryParams{"orders", "web-1", "4242"}));
}

// Extension 1.1: the applied epoch (NULL before there is one) and the
// incarnation on every heartbeat; the lease from lease_remaining.
TEST(Protocol, HeartbeatSendsAppliedEpochAndIncarnation) {
  Statement first = kProtocol.heartbeat_query(std::nullopt);
  EXPECT_EQ(first.kind, QueryKind::Heartbeat);
  EXPECT_NE(first.sql.find("shard_coordinator.heartbeat($1, $2, $3::bigint, "
                           "$4::bigint)"),
            std::string::npos);
  EXPECT_NE(first.sql.find("extract(epoch FROM h.lease_remaining)"),
            std::string::npos);
  EXPECT_EQ(first.sql.find("clock_timestamp()"), std::string::npos);
  EXPECT_EQ(first.params,
            (QueryParams{"orders", "web-1", std::nullopt, "4242"}));
  EXPECT_EQ(kProtocol.heartbeat_query(17).params,
            (QueryParams{"orders", "web-1", "17", "4242"}));
}

TEST(Protocol, RandomIncarnationsArePositiveAndDiffer) {
  std::int64_t a = random_incarnation();
  std::int64_t b = random_incarnation();
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);
  EXPECT_NE(a, b);
}

TEST(Protocol, OnlyUndefinedFunctionMeansAnOlderHeartbeat) {
  EXPECT_TRUE(Protocol::lacks_heartbeat_1_1(failure("42883")));
  EXPECT_FALSE(Protocol::lacks_heartbeat_1_1(failure("55000")));
}

TEST(Protocol, ListenIsOneSimpleQuery) {
  Statement listen = Protocol::listen_query({"\"sc_1\"", "\"scc_2\""});
  EXPECT_EQ(listen.kind, QueryKind::Listen);
  EXPECT_EQ(listen.sql, "LISTEN \"sc_1\"; LISTEN \"scc_2\"; ");
  // No parameters: the simple protocol, which runs several statements.
  EXPECT_TRUE(listen.params.empty());
}

TEST(Protocol, Channels) {
  auto both = Protocol::read_channels(rows(2, {{"sc_1", "scc_2"}}), false);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->member, "sc_1");
  EXPECT_EQ(both->cluster, "scc_2");
  auto member = Protocol::read_channels(rows(1, {{"sc_1"}}), true);
  ASSERT_TRUE(member);
  EXPECT_EQ(member->member, "sc_1");
  EXPECT_EQ(member->cluster, "");
  EXPECT_FALSE(Protocol::read_channels(rows(2, {}), false));
  EXPECT_FALSE(
      Protocol::read_channels(rows(2, {{"sc_1", std::nullopt}}), false));
  EXPECT_FALSE(Protocol::read_channels(rows(1, {{"sc_1"}}), false));
}

TEST(Protocol, OnlyUndefinedFunctionMeansNoClusterChannel) {
  EXPECT_TRUE(Protocol::lacks_cluster_channel(failure("42883")));
  EXPECT_FALSE(Protocol::lacks_cluster_channel(failure("42501")));
  EXPECT_FALSE(Protocol::lacks_cluster_channel(failure("")));
}

TEST(Protocol, HeartbeatRow) {
  auto reply = Protocol::read_heartbeat(
      rows(1, {{R"({"shard":1,"num_shards":3,"epoch":7,"state":"active",)"
                R"("sc_interval_s":0.5,"sc_lease_s":1.25})"}}));
  const auto *row = std::get_if<HeartbeatRow>(&reply);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->assignment.shard, 1);
  EXPECT_EQ(row->heartbeat_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(row->lease_remaining, std::chrono::milliseconds(1250));
}

TEST(Protocol, HeartbeatNotUnderstood) {
  auto none = Protocol::read_heartbeat(rows(1, {}));
  const auto *bad = std::get_if<NotUnderstood>(&none);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->message,
            "the server's heartbeat answer is not understood (not one row); "
            "make the client and the extension the same version");
  auto null = Protocol::read_heartbeat(rows(1, {{std::nullopt}}));
  EXPECT_TRUE(std::holds_alternative<NotUnderstood>(null));
  auto garbled = Protocol::read_heartbeat(rows(1, {{"{"}}));
  EXPECT_TRUE(std::holds_alternative<NotUnderstood>(garbled));
}

TEST(Protocol, Leave) {
  EXPECT_TRUE(Protocol::read_leave(rows(1, {{"t"}})));
  EXPECT_FALSE(Protocol::read_leave(rows(1, {{"f"}})));
  EXPECT_FALSE(Protocol::read_leave(rows(1, {{std::nullopt}})));
  EXPECT_FALSE(Protocol::read_leave(rows(1, {})));
}

TEST(Protocol, MemberNotice) {
  auto event = kProtocol.read_notification(
      {"sc_1",
       R"({"cluster":"orders","member":"web-1","shard":0,"num_shards":2,)"
       R"("epoch":9,"state":"active"})"},
      kChannels);
  const auto *notice = std::get_if<Notice>(&event);
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->assignment.epoch, 9);
  auto other = kProtocol.read_notification(
      {"sc_1",
       R"({"cluster":"orders","member":"web-2","shard":0,"num_shards":2,)"
       R"("epoch":9,"state":"active"})"},
      kChannels);
  EXPECT_TRUE(std::holds_alternative<Ignored>(other));
  auto garbled = kProtocol.read_notification({"sc_1", "{\n"}, kChannels);
  const auto *bad = std::get_if<NotUnderstood>(&garbled);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->message,
            "ignored a notification that is not understood (not valid "
            "JSON): {");
}

TEST(Protocol, ClusterNotice) {
  auto event = kProtocol.read_notification(
      {"scc_2", R"({"cluster":"orders","num_shards":4,"epoch":12})"},
      kChannels);
  const auto *notice = std::get_if<ClusterNotice>(&event);
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->num_shards, 4);
  EXPECT_EQ(notice->epoch, 12);
  // Channel names are hashed: another cluster's may be the same.
  auto other = kProtocol.read_notification(
      {"scc_2", R"({"cluster":"billing","num_shards":4,"epoch":12})"},
      kChannels);
  EXPECT_TRUE(std::holds_alternative<Ignored>(other));
  auto member = kProtocol.read_notification(
      {"scc_2",
       R"({"cluster":"orders","member":"web-1","shard":0,"num_shards":2,)"
       R"("epoch":9,"state":"active"})"},
      kChannels);
  EXPECT_TRUE(std::holds_alternative<NotUnderstood>(member));
}

TEST(Protocol, OtherChannelsAreNothing) {
  auto event = kProtocol.read_notification(
      {"elsewhere", R"({"cluster":"orders","num_shards":4,"epoch":12})"},
      kChannels);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(event));
  // Before the server named the cluster's channel, nothing comes from it.
  auto early = kProtocol.read_notification(
      {"scc_2", R"({"cluster":"orders","num_shards":4,"epoch":12})"},
      Channels{"sc_1", ""});
  EXPECT_TRUE(std::holds_alternative<std::monostate>(early));
}

}  // namespace
}  // namespace shard_coordinator::client
