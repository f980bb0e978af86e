// A Session (lib/session.hpp) without a server, for tests of the phase
// machine: the test decides when a connection attempt ends and how, answers
// each query, delivers notifications, and breaks the connection; the fake
// records what was sent.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "session.hpp"

namespace shard_coordinator::client::testing {

class FakeSession final : public Session {
 public:
  struct Sent {
    std::string sql;
    QueryParams params;
  };

  // ----- set by the test -----
  // connect() fails to start with this message.
  std::string start_error;
  // The attempt under way is over (connect_done()).
  bool attempt_done = false;
  // finish_connect() fails with this message.
  std::string connect_error;
  // The connection is broken: consume_input() and flush() fail, send() too
  // (the next query cannot go out), broken() says so.
  bool lost = false;
  // quote_identifier() fails.
  bool cannot_quote = false;
  // What error_message() says.
  std::string last_error = "server closed the connection unexpectedly";

  // Answers the query in flight (taken at the machine's next step).
  void answer(QueryResult result) { answers_.push_back(std::move(result)); }
  // A notification read from the connection (taken at the next step).
  void notify(std::string channel, std::string payload) {
    notifications_.push_back({std::move(channel), std::move(payload)});
  }

  // ----- what the machine did -----
  int connects = 0;  // attempts started
  bool connecting = false;
  bool connected = false;
  std::vector<Sent> sent;
  bool in_flight() const { return in_flight_; }
  std::string last_sql() const { return sent.empty() ? "" : sent.back().sql; }

  // ----- Session -----
  std::string connect() override {
    disconnect();
    if (!start_error.empty()) return start_error;
    ++connects;
    connecting = true;
    attempt_done = false;
    return "";
  }
  bool connect_done() const override { return connecting && attempt_done; }
  std::string finish_connect() override {
    connecting = false;
    attempt_done = false;
    if (!connect_error.empty()) return connect_error;
    connected = true;
    lost = false;
    return "";
  }
  void disconnect() override {
    connecting = false;
    connected = false;
    in_flight_ = false;
    answers_.clear();
    notifications_.clear();
  }
  int fd() const override { return -1; }
  std::string server() const override { return "db:5432"; }
  std::string error_message() const override { return last_error; }
  bool broken() const override { return lost; }
  std::optional<std::string> quote_identifier(
      const std::string &name) override {
    if (cannot_quote) return std::nullopt;
    return "\"" + name + "\"";
  }
  bool send(const std::string &sql, const QueryParams &params) override {
    if (lost || !connected || in_flight_) return false;
    sent.push_back({sql, params});
    in_flight_ = true;
    return true;
  }
  bool flush() override { return !lost; }
  bool want_write() const override { return false; }
  bool consume_input() override { return !lost; }
  std::optional<QueryResult> result() override {
    if (!in_flight_ || answers_.empty()) return std::nullopt;
    QueryResult next = std::move(answers_.front());
    answers_.pop_front();
    in_flight_ = false;
    return next;
  }
  std::optional<Notification> notification() override {
    if (notifications_.empty()) return std::nullopt;
    Notification next = std::move(notifications_.front());
    notifications_.pop_front();
    return next;
  }

 private:
  bool in_flight_ = false;
  std::deque<QueryResult> answers_;
  std::deque<Notification> notifications_;
};

}  // namespace shard_coordinator::client::testing
