// The agent's metrics (agent/metrics.hpp): what a snapshot renders to in the
// Prometheus text format, --metrics-addr's checks, and listening.
#include "metrics.hpp"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

namespace shard_coordinator::agent {
namespace {

using namespace std::chrono_literals;

std::string text(const AgentSnapshot &snapshot, client::Clock::time_point now) {
  return prometheus::TextSerializer().Serialize(agent_metrics(snapshot, now));
}

bool has_line(const std::string &text, const std::string &line) {
  return text.find("\n" + line + "\n") != std::string::npos ||
         text.rfind(line + "\n", 0) == 0;
}

AgentSnapshot active_snapshot(client::Clock::time_point now) {
  AgentSnapshot s;
  s.cluster = "orders";
  s.member = "web-1";
  s.assignment.state = client::State::Active;
  s.assignment.shard = 1;
  s.assignment.num_shards = 3;
  s.assignment.epoch = 42;
  s.grant = client::Grant{1, 3, std::nullopt, 41};
  s.lease_end = now + 1500ms;
  s.acknowledged_epoch = 40;
  s.releases_pending = 1;
  s.child_running = true;
  s.registrar.connected = true;
  s.registrar.connections = 2;
  s.registrar.connection_failures = 1;
  s.registrar.heartbeats = 17;
  s.registrar.heartbeat_failures = 3;
  s.registrar.notifications = 5;
  s.counts.revocations[static_cast<size_t>(client::RevokeReason::Server)] = 4;
  s.counts.revocations[static_cast<size_t>(client::RevokeReason::Lost)] = 1;
  s.counts.lease_losses = 1;
  s.counts.child_starts = 6;
  s.counts.acknowledgements = 5;
  return s;
}

TEST(AgentMetrics, AnActiveMember) {
  const client::Clock::time_point now{1000s};
  const std::string out = text(active_snapshot(now), now);
  const std::string labels = R"({cluster="orders",member="web-1")";
  for (const std::string &line : std::vector<std::string>{
           "shard_coordinator_agent_connected" + labels + "} 1",
           "shard_coordinator_agent_state" + labels + R"(,state="active"} 1)",
           "shard_coordinator_agent_state" + labels + R"(,state="lost"} 0)",
           "shard_coordinator_agent_epoch" + labels + "} 42",
           "shard_coordinator_agent_lease_remaining_seconds" + labels + "} 1.5",
           "shard_coordinator_agent_granted" + labels + "} 1",
           "shard_coordinator_agent_grant_shard" + labels + "} 1",
           "shard_coordinator_agent_grant_num_shards" + labels + "} 3",
           "shard_coordinator_agent_grant_epoch" + labels + "} 41",
           "shard_coordinator_agent_acknowledged_epoch" + labels + "} 40",
           "shard_coordinator_agent_releases_pending" + labels + "} 1",
           "shard_coordinator_agent_child_running" + labels + "} 1",
           "shard_coordinator_agent_revocations_total" + labels +
               R"(,reason="server"} 4)",
           "shard_coordinator_agent_revocations_total" + labels +
               R"(,reason="lost"} 1)",
           "shard_coordinator_agent_revocations_total" + labels +
               R"(,reason="stop"} 0)",
           "shard_coordinator_agent_lease_losses_total" + labels + "} 1",
           "shard_coordinator_agent_child_starts_total" + labels + "} 6",
           "shard_coordinator_agent_acknowledgements_total" + labels + "} 5",
           "shard_coordinator_agent_connections_total" + labels + "} 2",
           "shard_coordinator_agent_connection_failures_total" + labels + "} 1",
           "shard_coordinator_agent_heartbeats_total" + labels + "} 17",
           "shard_coordinator_agent_heartbeat_failures_total" + labels + "} 3",
           "shard_coordinator_agent_notifications_total" + labels + "} 5",
           "# TYPE shard_coordinator_agent_heartbeats_total counter",
           "# TYPE shard_coordinator_agent_lease_remaining_seconds gauge",
       })
    EXPECT_TRUE(has_line(out, line)) << line << "\nin:\n" << out;
  // Plain mode: no slot count.
  EXPECT_EQ(out.find("grant_slots"), std::string::npos) << out;
}

TEST(AgentMetrics, LeaseRemainingIsReadAtTheScrapeAndNeverNegative) {
  const client::Clock::time_point now{1000s};
  AgentSnapshot s = active_snapshot(now);
  const std::string labels = R"({cluster="orders",member="web-1"})";
  EXPECT_TRUE(has_line(
      text(s, now + 1s),
      "shard_coordinator_agent_lease_remaining_seconds" + labels + " 0.5"));
  EXPECT_TRUE(has_line(
      text(s, now + 2s),
      "shard_coordinator_agent_lease_remaining_seconds" + labels + " 0"));
  s.lease_end.reset();
  EXPECT_TRUE(has_line(
      text(s, now),
      "shard_coordinator_agent_lease_remaining_seconds" + labels + " 0"));
}

TEST(AgentMetrics, NothingGrantedHasNoShardAndSlotModeCountsKeys) {
  const client::Clock::time_point now{1000s};
  AgentSnapshot s = active_snapshot(now);
  s.assignment.state = client::State::Standby;
  s.grant = client::Grant{};
  s.acknowledged_epoch.reset();
  std::string out = text(s, now);
  const std::string labels = R"({cluster="orders",member="web-1")";
  EXPECT_TRUE(
      has_line(out, "shard_coordinator_agent_granted" + labels + "} 0"));
  EXPECT_TRUE(has_line(out, "shard_coordinator_agent_state" + labels +
                                R"(,state="standby"} 1)"));
  EXPECT_EQ(out.find("grant_shard"), std::string::npos) << out;
  EXPECT_EQ(out.find("acknowledged_epoch"), std::string::npos) << out;

  s.grant = client::Grant{0, 2, std::vector<std::int32_t>{1, 5, 9}, 7};
  out = text(s, now);
  EXPECT_TRUE(
      has_line(out, "shard_coordinator_agent_grant_slots" + labels + "} 3"));
}

TEST(AgentMetrics, LabelValuesAreEscaped) {
  const client::Clock::time_point now{1000s};
  AgentSnapshot s = active_snapshot(now);
  s.member = "we\"b\\1";
  EXPECT_TRUE(has_line(text(s, now),
                       R"(shard_coordinator_agent_connected{cluster="orders",)"
                       R"(member="we\"b\\1"} 1)"));
}

TEST(MetricsAddress, Accepted) {
  std::string error;
  auto a = parse_metrics_address("127.0.0.1:9187", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "9187");
  a = parse_metrics_address("localhost:0", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  a = parse_metrics_address(":9187", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "");
  a = parse_metrics_address("0.0.0.0:65535", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
}

TEST(MetricsAddress, Refused) {
  for (const char *bad :
       {"9187", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:9187s",
        "127.0.0.1:-1", "db.example:9187", "::1:9187", "[::1]:9187",
        "127.0.0.1:1,2:3", "[nonsense]:1"}) {
    std::string error;
    EXPECT_FALSE(parse_metrics_address(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
    EXPECT_FALSE(MetricsEndpoint::listen(bad, &error)) << bad;
    EXPECT_EQ(error.rfind(std::string("--metrics-addr ") + bad + ": ", 0), 0u)
        << error;
  }
}

TEST(MetricsEndpoint, ListensOnAFreePortAndRefusesATakenOne) {
  std::string error;
  auto first = MetricsEndpoint::listen("127.0.0.1:0", &error);
  ASSERT_TRUE(first) << error;
  const std::string where = first->where();
  ASSERT_EQ(where.rfind("127.0.0.1:", 0), 0u) << where;
  EXPECT_NE(where, "127.0.0.1:0");
  auto second = MetricsEndpoint::listen(where, &error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find("cannot listen there"), std::string::npos) << error;
  first->update(active_snapshot(client::Clock::now()));
}

}  // namespace
}  // namespace shard_coordinator::agent
