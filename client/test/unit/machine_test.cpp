// The registrar's phase machine (lib/machine.hpp) with a fake session and a
// fake clock: what it sends when, how it recovers, how it stops, and what it
// reports.
#include "machine.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <memory>

#include "fake_session.hpp"

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;
using Phase = Machine::Phase;
using testing::FakeSession;

Assignment active(int shard, int num_shards, std::int64_t epoch) {
  Assignment a;
  a.state = State::Active;
  a.shard = shard;
  a.num_shards = num_shards;
  a.epoch = epoch;
  return a;
}

std::string state_json(const Assignment &a) {
  std::string json =
      "\"shard\":" + (a.shard ? std::to_string(*a.shard) : std::string("null"));
  json += ",\"num_shards\":" + std::to_string(a.num_shards);
  json += ",\"epoch\":" + std::to_string(a.epoch);
  json += ",\"state\":\"" + std::string(state_name(a.state)) + "\"";
  if (a.slots) {
    json += ",\"slots\":[";
    for (size_t i = 0; i < a.slots->size(); ++i)
      json += (i ? "," : "") + std::to_string((*a.slots)[i]);
    json += "]";
  }
  return json;
}

QueryResult ok_rows(int columns, std::vector<std::optional<std::string>> row) {
  QueryResult result;
  result.ok = true;
  result.columns = columns;
  result.rows.push_back(std::move(row));
  return result;
}

QueryResult command_ok() {
  QueryResult result;
  result.ok = true;
  return result;
}

QueryResult failure(const std::string &sqlstate, const std::string &message) {
  QueryResult result;
  result.sqlstate = sqlstate;
  result.message = message;
  return result;
}

double last_jitter() { return 1.0; }  // each backoff delay is its full d

class MachineTest : public ::testing::Test {
 protected:
  MachineTest() {
    options_.cluster = "orders";
    options_.member = "web-1";
    options_.clock = [this] { return now_; };
    options_.on_assignment = [this](const Assignment &a) {
      reported_.push_back(a);
    };
    options_.on_error = [this](const Error &e) { errors_.push_back(e); };
    options_.on_log = [this](LogLevel, const std::string &m) {
      logs_.push_back(m);
    };
    options_.on_revoked = [this](const Revocation &r) {
      revocations_.push_back(r);
      events_.push_back("revoked " + std::to_string(r.epoch));
    };
    options_.on_granted = [this](const Grant &g) {
      grants_.push_back(g);
      events_.push_back("granted " + std::to_string(g.epoch));
    };
    options_.on_acknowledged = [this](std::int64_t epoch) {
      server_acks_.push_back(epoch);
    };
  }

  // Built on first use, so that a test can change options_ before.
  Machine &machine() {
    if (!machine_)
      machine_ = std::make_unique<Machine>(options_, session_, last_jitter,
                                           kIncarnation);
    return *machine_;
  }
  void step(short revents = POLLIN) { machine().step(revents); }
  void advance(Clock::duration d) { now_ += d; }
  void answer(QueryResult result) {
    session_.answer(std::move(result));
    step();
  }
  void notify(const std::string &channel, const std::string &payload) {
    session_.notify(channel, payload);
    step();
  }

  // Statements as the protocol writes them.
  std::string heartbeat_sql() const {
    return protocol_.heartbeat_query(std::nullopt).sql;
  }
  std::string leave_sql() const { return protocol_.leave_query().sql; }
  std::string channels_sql(bool member_only = false) const {
    return protocol_.channels_query(member_only).sql;
  }

  QueryResult row(const Assignment &a,
                  std::chrono::milliseconds interval = 500ms,
                  std::chrono::milliseconds lease = 1500ms) {
    return ok_rows(
        1, {"{" + state_json(a) +
            ",\"sc_interval_s\":" + std::to_string(interval.count() / 1000.0) +
            ",\"sc_lease_s\":" + std::to_string(lease.count() / 1000.0) + "}"});
  }
  std::string member_notice(const Assignment &a,
                            const std::string &extra = "") const {
    return R"({"cluster":"orders","member":"web-1",)" + state_json(a) + extra +
           "}";
  }
  static std::string cluster_notice(int num_shards, std::int64_t epoch) {
    return R"({"cluster":"orders","num_shards":)" + std::to_string(num_shards) +
           ",\"epoch\":" + std::to_string(epoch) + "}";
  }

  // A connection attempt that succeeds at once.
  void connect() {
    step();
    ASSERT_EQ(machine().phase(), Phase::Connecting);
    session_.attempt_done = true;
    step();
    ASSERT_EQ(machine().phase(), Phase::Connected);
  }
  // Connects, names the channels, LISTENs and heartbeats once: the first row
  // says `a`. The default lease is long enough to leave the fence point out
  // of the way.
  void join(const Assignment &a, std::chrono::milliseconds interval = 500ms,
            std::chrono::milliseconds lease = 60s) {
    connect();
    ASSERT_EQ(session_.last_sql(), channels_sql());
    answer(ok_rows(2, {"sc_1", "scc_1"}));
    ASSERT_EQ(session_.last_sql(), "LISTEN \"sc_1\"; LISTEN \"scc_1\"; ");
    answer(command_ok());
    ASSERT_EQ(session_.last_sql(), heartbeat_sql());
    answer(row(a, interval, lease));
    ASSERT_FALSE(session_.in_flight());
  }

  size_t count_sent(const std::string &sql) const {
    size_t n = 0;
    for (const auto &s : session_.sent) n += s.sql == sql;
    return n;
  }
  bool logged(const std::string &message) const {
    for (const auto &line : logs_)
      if (line == message) return true;
    return false;
  }

  Clock::time_point now_{std::chrono::seconds(1000)};
  Options options_;
  FakeSession session_;
  static constexpr std::int64_t kIncarnation = 4242;
  Protocol protocol_{"orders", "web-1", kIncarnation};
  std::unique_ptr<Machine> machine_;
  std::vector<Assignment> reported_;
  std::vector<Error> errors_;
  std::vector<std::string> logs_;
  std::vector<Revocation> revocations_;
  std::vector<Grant> grants_;
  std::vector<std::string> events_;  // revocations and grants, in order
  std::vector<std::int64_t> server_acks_;
};

Assignment with_slots(Assignment a, std::vector<std::int32_t> slots) {
  a.slots = std::move(slots);
  return a;
}

Assignment waiting(int num_shards, std::int64_t epoch) {
  Assignment a;
  a.state = State::Active;  // placed, its grant still held by another
  a.num_shards = num_shards;
  a.epoch = epoch;
  return a;
}

Grant plain_grant(int shard, int num_shards, std::int64_t epoch) {
  return Grant{shard, num_shards, std::nullopt, epoch};
}

// The applied epoch a heartbeat sent ($3), "NULL" for none.
std::string applied_param(const FakeSession::Sent &sent) {
  return sent.params.size() > 2 && sent.params[2] ? *sent.params[2] : "NULL";
}

TEST_F(MachineTest, NewConnectionNamesChannelsListensAndHeartbeatsAtOnce) {
  EXPECT_EQ(machine().phase(), Phase::Idle);
  EXPECT_EQ(machine().next_wait().deadline, now_);  // start at once
  join(active(0, 2, 5));
  EXPECT_EQ(session_.sent[0].params, (QueryParams{"orders", "web-1"}));
  // The heartbeat: nothing to acknowledge yet, and the incarnation.
  EXPECT_EQ(session_.sent[2].params,
            (QueryParams{"orders", "web-1", std::nullopt, "4242"}));
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_EQ(reported_[0], active(0, 2, 5));
  // The next heartbeat one interval after the last was sent.
  EXPECT_EQ(machine().next_wait().deadline, now_ + 500ms);
  advance(499ms);
  step(0);
  EXPECT_EQ(count_sent(heartbeat_sql()), 1u);
  advance(1ms);
  step(0);
  EXPECT_EQ(count_sent(heartbeat_sql()), 2u);
}

TEST_F(MachineTest, ReconnectsWithBackoffAfterALostConnection) {
  join(active(0, 2, 5));
  session_.lost = true;
  step();
  EXPECT_EQ(machine().phase(), Phase::Backoff);
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_EQ(errors_[0].message,
            "lost the connection to db:5432: server closed the connection "
            "unexpectedly; reconnecting");
  EXPECT_FALSE(errors_[0].fatal);
  EXPECT_FALSE(session_.connected);
  // min_backoff (100 ms), then doubling.
  EXPECT_EQ(machine().next_wait().deadline, now_ + 100ms);
  advance(99ms);
  step(0);
  EXPECT_EQ(session_.connects, 1);
  advance(1ms);
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Connecting);
  EXPECT_EQ(session_.connects, 2);
  session_.connect_error = "cannot connect to the database: refused";
  session_.attempt_done = true;
  step();
  EXPECT_EQ(machine().phase(), Phase::Backoff);
  EXPECT_EQ(errors_.back().message, "cannot connect to the database: refused");
  EXPECT_EQ(machine().next_wait().deadline, now_ + 200ms);
  advance(200ms);
  session_.connect_error.clear();
  connect();
  // A new connection asks for the channels again, LISTENs, heartbeats.
  EXPECT_EQ(session_.last_sql(), channels_sql());
  answer(ok_rows(2, {"sc_1", "scc_1"}));
  answer(command_ok());
  EXPECT_EQ(session_.last_sql(), heartbeat_sql());
  answer(row(active(0, 2, 5)));
  // The heartbeat succeeded: the next failure backs off from the start.
  session_.lost = true;
  step();
  EXPECT_EQ(machine().next_wait().deadline, now_ + 100ms);
}

TEST_F(MachineTest, BackoffIsCappedAtTheHeartbeatInterval) {
  join(active(0, 2, 5), 150ms);
  session_.lost = true;
  step();
  session_.connect_error = "cannot connect to the database: refused";
  for (auto expected : {100ms, 150ms, 150ms}) {
    ASSERT_EQ(machine().phase(), Phase::Backoff);
    EXPECT_EQ(machine().next_wait().deadline, now_ + expected);
    advance(expected);
    step(0);
    ASSERT_EQ(machine().phase(), Phase::Connecting);
    session_.attempt_done = true;
    step();
  }
}

TEST_F(MachineTest, QueryTimeoutDropsTheConnection) {
  options_.query_timeout = 1s;
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  ASSERT_TRUE(session_.in_flight());
  EXPECT_EQ(machine().next_wait().deadline, now_ + 1s);
  advance(999ms);
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Connected);
  advance(1ms);
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Backoff);
  EXPECT_FALSE(session_.connected);
  ASSERT_FALSE(errors_.empty());
  EXPECT_EQ(errors_.back().message,
            "no answer from db:5432 within 1s; reconnecting");
}

TEST_F(MachineTest, DefaultQueryTimeoutIsAtLeastFifteenSeconds) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  ASSERT_TRUE(session_.in_flight());
  EXPECT_EQ(machine().next_wait().deadline, now_ + 15s);
}

TEST_F(MachineTest, StopWithAQueryInFlightLeavesOnlyAfterIt) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  ASSERT_EQ(session_.last_sql(), heartbeat_sql());
  ASSERT_TRUE(session_.in_flight());
  machine().stop();
  EXPECT_EQ(machine().next_wait().deadline, now_);
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Leaving);
  EXPECT_EQ(session_.last_sql(), heartbeat_sql());  // nothing else yet
  // The heartbeat's answer still counts, then leave() goes out.
  answer(row(active(1, 2, 6)));
  EXPECT_EQ(reported_.back(), active(1, 2, 6));
  EXPECT_EQ(session_.last_sql(), leave_sql());
  EXPECT_EQ(session_.sent.back().params,
            (QueryParams{"orders", "web-1", "4242"}));
  answer(ok_rows(1, {"t"}));
  EXPECT_TRUE(machine().finished());
  EXPECT_FALSE(machine().failed());
  EXPECT_TRUE(logged("left cluster orders"));
  EXPECT_FALSE(session_.connected);
  // Finished: nothing to wait for.
  Registrar::Wait wait = machine().next_wait();
  EXPECT_EQ(wait.fd, -1);
  EXPECT_FALSE(wait.deadline);
}

TEST_F(MachineTest, LeaveTimeout) {
  options_.leave_timeout = 1s;
  join(active(0, 2, 5));
  machine().stop();
  step(0);
  ASSERT_EQ(machine().phase(), Phase::Leaving);
  EXPECT_EQ(session_.last_sql(), leave_sql());
  EXPECT_EQ(machine().next_wait().deadline, now_ + 1s);
  advance(999ms);
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Leaving);
  advance(1ms);
  step(0);
  EXPECT_TRUE(machine().finished());
  EXPECT_FALSE(machine().failed());
  EXPECT_TRUE(
      logged("leave() got no answer within 1s; the server will expire the "
             "member"));
}

TEST_F(MachineTest, StopWhileNotConnectedFinishesAtOnce) {
  join(active(0, 2, 5));
  session_.lost = true;
  step();
  ASSERT_EQ(machine().phase(), Phase::Backoff);
  machine().stop();
  step(0);
  EXPECT_TRUE(machine().finished());
  EXPECT_TRUE(
      logged("not connected, so not leaving: the server will expire the "
             "member"));
  EXPECT_EQ(count_sent(leave_sql()), 0u);
}

TEST_F(MachineTest, LostConnectionWhileStoppingFinishes) {
  join(active(0, 2, 5));
  machine().stop();
  step(0);
  ASSERT_EQ(session_.last_sql(), leave_sql());
  session_.lost = true;
  step();
  EXPECT_TRUE(machine().finished());
  EXPECT_FALSE(machine().failed());
}

TEST_F(MachineTest, WithoutLeaveOnStopFinishesAtOnce) {
  options_.leave_on_stop = false;
  join(active(0, 2, 5));
  machine().stop();
  step(0);
  EXPECT_TRUE(machine().finished());
  EXPECT_EQ(count_sent(leave_sql()), 0u);
}

// Tracker: anything older than the newest epoch seen is ignored. A heartbeat
// can read the server's state just before a reshard, whose notification then
// arrives before the row.
TEST_F(MachineTest, NotificationRacingAHeartbeatRow) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  ASSERT_TRUE(session_.in_flight());
  Clock::time_point sent_at = now_;
  notify("sc_1", member_notice(active(1, 3, 7)));
  EXPECT_EQ(reported_.back(), active(1, 3, 7));
  size_t reports = reported_.size();
  advance(10ms);
  answer(row(active(0, 2, 6), 500ms, 1500ms));
  // The row is older: ignored, but the heartbeat still renews the lease.
  EXPECT_EQ(reported_.size(), reports);
  EXPECT_EQ(machine().assignment(), active(1, 3, 7));
  ASSERT_TRUE(machine().lease());
  EXPECT_EQ(machine().lease()->end, sent_at + 1500ms);
}

TEST_F(MachineTest, SlotsOmittedHeartbeatsAtOnce) {
  join(active(0, 2, 5), 10s, 30s);
  ASSERT_EQ(count_sent(heartbeat_sql()), 1u);
  notify("sc_1", member_notice(active(1, 2, 6), R"(,"slots_omitted":true)"));
  // The notice itself is not used: its slots are missing.
  EXPECT_EQ(machine().assignment(), active(0, 2, 5));
  EXPECT_EQ(count_sent(heartbeat_sql()), 2u);
  Assignment with_slots = active(1, 2, 6);
  with_slots.slots = std::vector<std::int32_t>{3, 4, 5};
  answer(row(with_slots, 10s, 30s));
  EXPECT_EQ(machine().assignment(), with_slots);
}

TEST_F(MachineTest, RemovedHeartbeatsAtOnce) {
  join(active(0, 2, 5), 10s, 30s);
  Assignment removed;
  removed.state = State::Removed;
  removed.num_shards = 1;
  removed.epoch = 6;
  notify("sc_1", member_notice(removed));
  EXPECT_EQ(reported_.back().state, State::Removed);
  // Registers again at once, well before the next heartbeat was due.
  EXPECT_EQ(count_sent(heartbeat_sql()), 2u);
  answer(row(active(0, 2, 7), 10s, 30s));
  EXPECT_EQ(machine().assignment(), active(0, 2, 7));
}

TEST_F(MachineTest, ClusterNoticeDuringAHeartbeatAsksForAnother) {
  join(active(2, 3, 5), 10s, 30s);
  advance(10s);
  step(0);
  ASSERT_TRUE(session_.in_flight());
  // Shard 2 of 2 cannot be: a notice of the member's own was missed. The
  // row in flight may predate the reshard, so another heartbeat follows it.
  notify("scc_1", cluster_notice(2, 6));
  EXPECT_EQ(machine().assignment(), active(2, 3, 5));
  EXPECT_EQ(count_sent(heartbeat_sql()), 2u);
  answer(row(active(2, 3, 5), 10s, 30s));
  EXPECT_EQ(count_sent(heartbeat_sql()), 3u);
  answer(row(active(1, 2, 6), 10s, 30s));
  EXPECT_EQ(machine().assignment(), active(1, 2, 6));
  // Shard 2 of 3 was revoked; the callback's return acknowledged it, and
  // the acknowledgement goes out at once.
  EXPECT_EQ(count_sent(heartbeat_sql()), 4u);
  EXPECT_EQ(session_.sent.back().params[2], "6");
}

// Plain mode: a greater count takes keys from every shard (a revocation,
// acknowledged at once); a smaller one only adds keys.
TEST_F(MachineTest, ClusterNoticeChangesTheCount) {
  join(active(0, 2, 5), 10s, 30s);
  notify("scc_1", cluster_notice(3, 6));
  EXPECT_EQ(reported_.back(), active(0, 3, 6));
  EXPECT_EQ(count_sent(heartbeat_sql()), 2u);
  EXPECT_EQ(session_.sent.back().params[2], "6");
  answer(row(active(0, 3, 6), 10s, 30s));
  notify("scc_1", cluster_notice(2, 7));
  EXPECT_EQ(reported_.back(), active(0, 2, 7));
  EXPECT_EQ(count_sent(heartbeat_sql()), 2u);  // nothing to acknowledge
  EXPECT_EQ(machine().grant(), (Grant{0, 2, std::nullopt, 7}));
}

TEST_F(MachineTest, SelfFencingEvenWhileConnecting) {
  // Interval 200 ms, lease 1 s: fenced 800 ms after the heartbeat was sent.
  join(active(0, 2, 5), 200ms, 1000ms);
  Clock::time_point fence = now_ + 800ms;
  ASSERT_TRUE(machine().lease());
  EXPECT_EQ(machine().lease()->fence_at, fence);
  session_.lost = true;
  step();
  advance(100ms);
  step(0);
  ASSERT_EQ(machine().phase(), Phase::Connecting);  // and it never ends
  EXPECT_EQ(machine().next_wait().deadline, fence);
  now_ = fence;
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Connecting);
  ASSERT_FALSE(reported_.empty());
  EXPECT_EQ(reported_.back().state, State::Lost);
  EXPECT_FALSE(reported_.back().shard);
}

TEST_F(MachineTest, NotReadyRetriesTheHeartbeatOnTheSameConnection) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  answer(failure("55000", "not ready"));
  EXPECT_EQ(machine().phase(), Phase::Connected);
  EXPECT_TRUE(session_.connected);
  ASSERT_FALSE(errors_.empty());
  EXPECT_FALSE(errors_.back().fatal);
  EXPECT_EQ(machine().next_wait().deadline, now_ + 100ms);
  advance(100ms);
  step(0);
  EXPECT_EQ(count_sent(heartbeat_sql()), 3u);
  EXPECT_EQ(session_.connects, 1);
}

TEST_F(MachineTest, OlderExtensionListensOnTheMemberChannelOnly) {
  connect();
  answer(failure("42883",
                 "function shard_coordinator.channel(text) does "
                 "not exist"));
  EXPECT_EQ(machine().phase(), Phase::Connected);
  EXPECT_EQ(session_.last_sql(), channels_sql(true));
  answer(ok_rows(1, {"sc_1"}));
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_FALSE(errors_[0].fatal);
  EXPECT_EQ(session_.last_sql(), "LISTEN \"sc_1\"; ");
  answer(command_ok());
  EXPECT_EQ(session_.last_sql(), heartbeat_sql());
}

// diagnose() says GiveUp: retrying cannot help, the machine finishes.
class FatalErrorTest : public MachineTest,
                       public ::testing::WithParamInterface<const char *> {};

TEST_P(FatalErrorTest, OnTheChannelQuery) {
  connect();
  answer(failure(GetParam(), "refused"));
  if (std::string(GetParam()) == "42883") {
    // First the fallback to an older extension; failing again, give up.
    answer(failure(GetParam(), "refused"));
  }
  EXPECT_TRUE(machine().finished());
  EXPECT_TRUE(machine().failed());
  ASSERT_FALSE(errors_.empty());
  EXPECT_TRUE(errors_.back().fatal);
  EXPECT_EQ(errors_.back().sqlstate, GetParam());
  EXPECT_EQ(errors_.back().message.rfind("channel failed on db:5432: refused "
                                         "[SQLSTATE " +
                                             std::string(GetParam()) + "]; ",
                                         0),
            0u);
  EXPECT_FALSE(session_.connected);
  // Nothing happens any more.
  size_t sent = session_.sent.size();
  advance(1h);
  step(0);
  EXPECT_EQ(session_.sent.size(), sent);
  EXPECT_FALSE(machine().next_wait().deadline);
}

TEST_P(FatalErrorTest, OnAHeartbeat) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  answer(failure(GetParam(), "refused"));
  EXPECT_TRUE(machine().finished());
  EXPECT_TRUE(machine().failed());
  EXPECT_TRUE(errors_.back().fatal);
}

INSTANTIATE_TEST_SUITE_P(GiveUp, FatalErrorTest,
                         ::testing::Values("22023", "42883", "3F000", "42P01",
                                           "42501"));

TEST_F(MachineTest, NoChannelFromTheServerIsFatal) {
  connect();
  answer(ok_rows(2, {"sc_1", std::nullopt}));
  EXPECT_TRUE(machine().failed());
  EXPECT_EQ(errors_.back().message,
            "shard_coordinator.channel() returned no channel; upgrade the "
            "extension");
}

TEST_F(MachineTest, AnOlderExtensionsHeartbeatIsFatalWithAdvice) {
  connect();
  answer(ok_rows(2, {"sc_1", "scc_1"}));
  answer(command_ok());
  answer(failure("42883",
                 "function shard_coordinator.heartbeat(unknown, unknown, "
                 "bigint, bigint) does not exist"));
  EXPECT_TRUE(machine().failed());
  EXPECT_NE(errors_.back().message.find("ALTER EXTENSION shard_coordinator "
                                        "UPDATE"),
            std::string::npos)
      << errors_.back().message;
}

TEST_F(MachineTest, ReadOnlyServerReconnects) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  answer(failure("25006", "read-only"));
  EXPECT_EQ(machine().phase(), Phase::Backoff);
  EXPECT_FALSE(errors_.back().fatal);
}

TEST_F(MachineTest, FailedStartOfAnAttemptBacksOff) {
  session_.start_error = "pipe2: Too many open files";
  step();
  EXPECT_EQ(machine().phase(), Phase::Backoff);
  EXPECT_EQ(errors_.back().message,
            "cannot start connecting: pipe2: Too many open files");
}

TEST_F(MachineTest, StatisticsCountConnectionsHeartbeatsAndNotifications) {
  EXPECT_FALSE(machine().statistics().connected);
  join(active(0, 2, 5));
  notify("sc_1", member_notice(active(0, 2, 6)));
  notify("scc_1", cluster_notice(3, 7));
  advance(500ms);
  step(0);
  answer(failure("55000", "not ready"));  // retried on this connection
  Statistics s = machine().statistics();
  EXPECT_TRUE(s.connected);
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.connection_failures, 0u);
  EXPECT_EQ(s.heartbeats, 1u);
  EXPECT_EQ(s.heartbeat_failures, 1u);
  EXPECT_EQ(s.notifications, 2u);
  // A heartbeat in flight when the connection is lost failed too; the
  // attempt after the backoff fails as well.
  advance(1s);
  step(0);
  ASSERT_TRUE(session_.in_flight());
  session_.lost = true;
  step();
  session_.connect_error = "cannot connect to the database: refused";
  advance(1s);
  step(0);
  session_.attempt_done = true;
  step();
  s = machine().statistics();
  EXPECT_FALSE(s.connected);
  EXPECT_EQ(s.connection_failures, 2u);
  EXPECT_EQ(s.heartbeat_failures, 2u);
  session_.connect_error.clear();
  advance(1s);
  join(active(0, 3, 7));
  s = machine().statistics();
  EXPECT_EQ(s.connections, 2u);
  EXPECT_EQ(s.heartbeats, 2u);
}

// ----- grants, revocations and acknowledgements (extension 1.1) -----

// The notice of epoch 6 (key 3 revoked) is lost; the next heartbeat's row
// shows it. The row promises only the new grant: key 3 must stop by the end
// of the lease held before that row, and no later heartbeat moves that.
TEST_F(MachineTest, LostNoticeAndLateHeartbeatNeverExtendTheDeadline) {
  options_.acknowledge = Acknowledge::Explicit;
  Clock::time_point t0 = now_;
  join(with_slots(active(0, 1, 5), {1, 2, 3}), 500ms, 1500ms);
  ASSERT_EQ(grants_.size(), 1u);
  advance(500ms);
  step(0);
  ASSERT_EQ(session_.last_sql(), heartbeat_sql());
  EXPECT_EQ(applied_param(session_.sent.back()), "5");
  answer(row(with_slots(active(0, 1, 6), {1, 2}), 500ms, 1500ms));
  ASSERT_EQ(revocations_.size(), 1u);
  const Revocation &r = revocations_[0];
  EXPECT_EQ(r.reason, RevokeReason::Server);
  EXPECT_EQ(r.epoch, 6);
  EXPECT_EQ(r.keys, (std::vector<std::int32_t>{3}));
  EXPECT_EQ(r.deadline, t0 + 1500ms);  // not t0 + 500 ms + 1500 ms
  EXPECT_EQ(r.fence_at, t0 + 1000ms);
  EXPECT_EQ(grants_.size(), 1u);  // nothing gained
  // More heartbeats succeed; the deadline stays, the applied epoch too.
  for (int i = 0; i < 3; ++i) {
    advance(500ms);
    step(0);
    ASSERT_EQ(session_.last_sql(), heartbeat_sql());
    EXPECT_EQ(applied_param(session_.sent.back()), "5");
    answer(row(with_slots(active(0, 1, 6), {1, 2}), 500ms, 1500ms));
  }
  ASSERT_EQ(machine().releases().size(), 1u);
  EXPECT_EQ(machine().releases()[0].deadline, t0 + 1500ms);
  EXPECT_EQ(revocations_.size(), 1u);
  // Acknowledged: the server hears of it at once.
  size_t heartbeats = count_sent(heartbeat_sql());
  machine().acknowledge(6);
  step(0);
  EXPECT_EQ(count_sent(heartbeat_sql()), heartbeats + 1);
  EXPECT_EQ(applied_param(session_.sent.back()), "6");
  EXPECT_TRUE(machine().releases().empty());
}

// A notice's revocation has the lease held when the notice arrived.
TEST_F(MachineTest, ANoticesRevocationHasTheLeaseHeldThen) {
  options_.acknowledge = Acknowledge::Explicit;
  Clock::time_point t0 = now_;
  join(active(0, 2, 5), 500ms, 1500ms);
  advance(200ms);
  notify("sc_1", member_notice(waiting(2, 6)));
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].from, plain_grant(0, 2, 5));
  EXPECT_TRUE(revocations_[0].to.empty());
  EXPECT_TRUE(revocations_[0].keys.empty());  // plain mode: the shards say it
  EXPECT_EQ(revocations_[0].deadline, t0 + 1500ms);
  EXPECT_TRUE(machine().grant().empty());
  EXPECT_EQ(machine().assignment(), waiting(2, 6));
}

// stop() revokes everything first; leave() goes out only once the
// application acknowledged, and heartbeats go on meanwhile.
TEST_F(MachineTest, StopWhileWorkRunsSendsNoLeaveUntilAcknowledged) {
  options_.acknowledge = Acknowledge::Explicit;
  join(active(0, 2, 5));
  machine().stop();
  step(0);
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].reason, RevokeReason::Stop);
  EXPECT_EQ(revocations_[0].from, plain_grant(0, 2, 5));
  EXPECT_EQ(revocations_[0].epoch, 5);
  EXPECT_TRUE(machine().grant().empty());
  EXPECT_EQ(machine().phase(), Phase::Connected);
  EXPECT_EQ(count_sent(leave_sql()), 0u);
  for (int i = 0; i < 3; ++i) {
    advance(500ms);
    step(0);
    ASSERT_EQ(session_.last_sql(), heartbeat_sql());
    answer(row(active(0, 2, 5)));
  }
  EXPECT_EQ(count_sent(leave_sql()), 0u);
  EXPECT_TRUE(grants_.size() == 1u);  // nothing granted while stopping
  machine().acknowledge(5);
  step(0);
  EXPECT_EQ(machine().phase(), Phase::Leaving);
  EXPECT_EQ(session_.last_sql(), leave_sql());
  answer(ok_rows(1, {"t"}));
  EXPECT_TRUE(machine().finished());
}

// With Acknowledge::OnReturn the callback's return is the acknowledgement.
TEST_F(MachineTest, StopWithOnReturnLeavesOnceTheCallbackReturned) {
  join(active(0, 2, 5));
  machine().stop();
  step(0);
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(session_.last_sql(), leave_sql());
}

TEST_F(MachineTest, StopWithoutLeaveRevokesAndFinishes) {
  options_.acknowledge = Acknowledge::Explicit;
  options_.leave_on_stop = false;
  join(active(0, 2, 5));
  machine().stop();
  step(0);
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_TRUE(machine().finished());
  EXPECT_EQ(count_sent(leave_sql()), 0u);
}

// Not connected when stopping: it waits for the application all the same,
// then finishes without leaving (the server expires the member).
TEST_F(MachineTest, StopWhileDisconnectedWaitsForTheApplication) {
  options_.acknowledge = Acknowledge::Explicit;
  join(active(0, 2, 5));
  session_.lost = true;
  step();
  ASSERT_EQ(machine().phase(), Phase::Backoff);
  machine().stop();
  step(0);
  EXPECT_FALSE(machine().finished());
  machine().acknowledge(5);
  EXPECT_TRUE(machine().finished());
  EXPECT_EQ(count_sent(leave_sql()), 0u);
}

// The applied epoch and the incarnation go with the first heartbeat of every
// new connection.
TEST_F(MachineTest, AcknowledgementsSurviveReconnects) {
  options_.acknowledge = Acknowledge::Explicit;
  join(active(0, 2, 5), 500ms, 60s);
  notify("scc_1", cluster_notice(3, 6));  // plain mode: keys taken away
  ASSERT_EQ(revocations_.size(), 1u);
  machine().acknowledge(6);
  step(0);
  ASSERT_EQ(session_.last_sql(), heartbeat_sql());
  EXPECT_EQ(applied_param(session_.sent.back()), "6");
  // Lost before the answer.
  session_.lost = true;
  step();
  ASSERT_EQ(machine().phase(), Phase::Backoff);
  advance(100ms);
  step(0);
  session_.attempt_done = true;
  step();
  ASSERT_EQ(machine().phase(), Phase::Connected);
  answer(ok_rows(2, {"sc_1", "scc_1"}));
  answer(command_ok());
  ASSERT_EQ(session_.last_sql(), heartbeat_sql());
  EXPECT_EQ(session_.sent.back().params,
            (QueryParams{"orders", "web-1", "6", "4242"}));
  EXPECT_TRUE(machine().releases().empty());
}

// After acknowledging epoch 9, a row of epoch 8 (a server behind, on a new
// connection) that would give the released work back is ignored.
TEST_F(MachineTest, AnOlderRowAfterAnAcknowledgementIsIgnored) {
  options_.acknowledge = Acknowledge::Explicit;
  join(active(1, 3, 8), 500ms, 60s);
  notify("sc_1", member_notice(waiting(3, 9)));
  ASSERT_EQ(revocations_.size(), 1u);
  machine().acknowledge(9);
  session_.lost = true;
  step();
  advance(100ms);
  step(0);
  session_.attempt_done = true;
  step();
  answer(ok_rows(2, {"sc_1", "scc_1"}));
  answer(command_ok());
  EXPECT_EQ(applied_param(session_.sent.back()), "9");
  answer(row(active(1, 3, 8), 500ms, 60s));
  EXPECT_EQ(machine().assignment(), waiting(3, 9));
  EXPECT_TRUE(machine().grant().empty());
  EXPECT_EQ(grants_.size(), 1u);  // the first one only
}

// Plain mode: one row revokes the shard (placed, waiting for its new grant);
// the acknowledgement's heartbeat brings the grant.
TEST_F(MachineTest, AGrantAfterARevocationInTheSameRowPair) {
  options_.acknowledge = Acknowledge::Explicit;
  join(active(2, 3, 5), 500ms, 60s);
  advance(500ms);
  step(0);
  answer(row(waiting(2, 6), 500ms, 60s));
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].from, plain_grant(2, 3, 5));
  EXPECT_TRUE(revocations_[0].to.empty());
  EXPECT_EQ(events_, (std::vector<std::string>{"granted 5", "revoked 6"}));
  machine().acknowledge(6);
  step(0);
  ASSERT_EQ(session_.last_sql(), heartbeat_sql());
  EXPECT_EQ(applied_param(session_.sent.back()), "6");
  answer(row(active(1, 2, 7), 500ms, 60s));
  EXPECT_EQ(events_,
            (std::vector<std::string>{"granted 5", "revoked 6", "granted 7"}));
  EXPECT_EQ(machine().grant(), plain_grant(1, 2, 7));
  EXPECT_EQ(revocations_.size(), 1u);
  // Nothing pending: the next heartbeat applies epoch 7.
  advance(500ms);
  step(0);
  EXPECT_EQ(applied_param(session_.sent.back()), "7");
}

// Slot mode: keys gone are revoked, keys added granted, in that order; a
// change of the count or index alone is no change of work.
TEST_F(MachineTest, SlotModeKeyDiffs) {
  options_.acknowledge = Acknowledge::Explicit;
  join(with_slots(active(0, 2, 5), {1, 2, 3}), 500ms, 60s);
  notify("sc_1", member_notice(with_slots(active(0, 2, 6), {2, 3, 4})));
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].keys, (std::vector<std::int32_t>{1}));
  EXPECT_EQ(revocations_[0].to.slots, (std::vector<std::int32_t>{2, 3, 4}));
  EXPECT_EQ(events_,
            (std::vector<std::string>{"granted 5", "revoked 6", "granted 6"}));
  EXPECT_EQ(grants_.back().slots, (std::vector<std::int32_t>{2, 3, 4}));
  // A third member: the count (and this member's index) change, its keys
  // do not.
  notify("scc_1", cluster_notice(3, 7));
  notify("sc_1", member_notice(with_slots(active(1, 3, 8), {2, 3, 4})));
  EXPECT_EQ(events_.size(), 3u);
  EXPECT_EQ(machine().grant().epoch, 6);
  EXPECT_EQ(machine().grant().shard, 1);
  // Keys gone only: a revocation and no grant.
  notify("sc_1", member_notice(with_slots(active(1, 3, 9), {3})));
  EXPECT_EQ(revocations_.back().keys, (std::vector<std::int32_t>{2, 4}));
  EXPECT_EQ(events_.size(), 4u);
  // Both revocations are pending until acknowledged; the heartbeats apply
  // epoch 5 meanwhile (the one before the first revocation).
  EXPECT_EQ(machine().releases().size(), 2u);
  EXPECT_EQ(machine().applied_epoch(), 5);
  machine().acknowledge(6);
  EXPECT_EQ(machine().applied_epoch(), 8);
  machine().acknowledge(9);
  EXPECT_EQ(machine().applied_epoch(), 9);
}

// The lease ran out: everything is revoked by its end; a heartbeat that
// succeeds again grants the work anew.
TEST_F(MachineTest, LostRevokesEverythingByTheLeaseEnd) {
  options_.acknowledge = Acknowledge::Explicit;
  Clock::time_point t0 = now_;
  join(active(0, 2, 5), 200ms, 1000ms);
  session_.lost = true;
  step();
  now_ = t0 + 800ms;  // the fence point
  step(0);
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].reason, RevokeReason::Lost);
  EXPECT_EQ(revocations_[0].deadline, t0 + 1000ms);
  EXPECT_EQ(revocations_[0].fence_at, t0 + 800ms);
  EXPECT_EQ(machine().assignment().state, State::Lost);
  EXPECT_TRUE(machine().grant().empty());
  // Back: granted again, while the Lost revocation waits for its
  // acknowledgement.
  session_.connect_error.clear();
  connect();
  answer(ok_rows(2, {"sc_1", "scc_1"}));
  answer(command_ok());
  answer(row(active(0, 2, 5), 200ms, 1000ms));
  EXPECT_EQ(machine().grant(), plain_grant(0, 2, 5));
  EXPECT_EQ(events_,
            (std::vector<std::string>{"granted 5", "revoked 5", "granted 5"}));
  EXPECT_EQ(machine().releases().size(), 1u);
}

// The server dropped the member: nothing is held any more, at once.
TEST_F(MachineTest, RemovedRevokesAtOnce) {
  options_.acknowledge = Acknowledge::Explicit;
  join(active(0, 2, 5), 10s, 30s);
  Assignment removed;
  removed.state = State::Removed;
  removed.num_shards = 1;
  removed.epoch = 6;
  notify("sc_1", member_notice(removed));
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].reason, RevokeReason::Removed);
  EXPECT_EQ(revocations_[0].deadline, now_);
}

TEST_F(MachineTest, TheServersAcknowledgementIsTold) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  QueryResult acked = ok_rows(
      1, {"{" + state_json(active(0, 2, 5)) +
          R"(,"sc_interval_s":0.5,"sc_lease_s":60,"acknowledged_epoch":5})"});
  answer(acked);
  EXPECT_EQ(server_acks_, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(machine().acknowledged_epoch(), 5);
  advance(500ms);
  step(0);
  answer(acked);
  EXPECT_EQ(server_acks_.size(), 1u);  // told once
}

// A fatal error: nothing will renew the lease, so the work is revoked with
// its end as the deadline.
TEST_F(MachineTest, AFatalErrorRevokesTheWork) {
  join(active(0, 2, 5));
  advance(500ms);
  step(0);
  answer(failure("42501", "permission denied"));
  EXPECT_TRUE(machine().failed());
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0].reason, RevokeReason::Stop);
}

}  // namespace
}  // namespace shard_coordinator::client
