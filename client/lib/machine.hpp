// The registrar's phase machine: one connection at a time through a Session
// (session.hpp), speaking the Protocol (protocol.hpp), with the Tracker
// (tracker.hpp) deciding what is reported. It never blocks and reads no
// clock but Options::clock, so tests drive it with a fake session and a fake
// clock; the Registrar (registrar.cpp) wraps it with the libpq session, a
// poll() loop and request_stop().
//
//   Idle ──▶ Connecting ──▶ Connected ──(lost / timeout / error)──▶ Backoff
//                ▲              │                                     │
//                │   stop(), work released                            │
//                │              ▼                                     │
//                │           Leaving ──▶ Finished                     │
//                └────────────────────────────────────────────────────┘
//
// - Idle: nothing yet; the first step() starts connecting.
// - Connecting: an attempt under way (Session::connect).
// - Connected: on a new connection, the channel names, then LISTEN, then a
//   heartbeat at once; then a heartbeat at every interval the server
//   returns, and at once after an acknowledgement that released something.
//   One query in flight at a time; notifications are read whenever the
//   socket is readable.
// - Backoff: waiting to reconnect, with exponential backoff and jitter.
// - Leaving: still connected: the query in flight completes (its answer is
//   used), then leave() is sent. Finished at its answer, its failure, a lost
//   connection, or the stop deadline (leave_timeout).
// - Finished: stopped, or a fatal error (failed()).
//
// stop() first revokes the whole grant (Tracker::begin_stop, on_revoked with
// reason Stop). The phases then go on as before (heartbeats, reconnects)
// until every revocation is acknowledged: the application's work stops
// before the server hands it on. Then Leaving if connected, Finished
// otherwise. With leave_on_stop false, or nothing held, it does not wait.
//
// Each tracker event is told in order: on_assignment, on_revoked (and with
// Acknowledge::OnReturn the acknowledgement when it returns), on_granted,
// on_acknowledged.
//
// Timers: the next heartbeat (Connected), the query deadline (a query in
// flight: no answer drops the connection), the retry (Backoff), the stop
// deadline (Leaving), and the self-fencing point (Tracker::fence_at),
// honoured in every phase, including while connecting.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "backoff.hpp"
#include "protocol.hpp"
#include "session.hpp"
#include "shard_coordinator/client.hpp"
#include "tracker.hpp"

namespace shard_coordinator::client {

class Machine {
 public:
  enum class Phase { Idle, Connecting, Connected, Backoff, Leaving, Finished };

  // `options` (with clock and member set) and `session` must outlive the
  // machine; the callbacks are read from `options` at each call, so they can
  // be cleared meanwhile. `uniform01` draws the backoff's jitter;
  // `incarnation` is sent with every heartbeat (random_incarnation()).
  Machine(const Options &options, Session &session,
          std::function<double()> uniform01, std::int64_t incarnation);
  Machine(const Machine &) = delete;
  Machine &operator=(const Machine &) = delete;

  // As Registrar::next_wait() and Registrar::step().
  Registrar::Wait next_wait() const;
  void step(short revents);
  // Begins a graceful stop at the next step().
  void stop() { stop_pending_ = true; }
  // Finishes at once without leaving (the server expires the member), and
  // without calling back.
  void abandon();
  // The application stopped every revoked work of `epoch` or earlier (see
  // Tracker::acknowledge); heartbeats at once if that is news for the
  // server. Call between steps or from a callback.
  void acknowledge(std::int64_t epoch);

  Phase phase() const { return phase_; }
  bool finished() const { return phase_ == Phase::Finished; }
  bool failed() const { return failed_; }
  bool stopping() const { return tracker_.stopping(); }
  const Assignment &assignment() const { return tracker_.reported(); }
  const Grant &grant() const { return tracker_.grant(); }
  std::vector<Revocation> releases() const { return tracker_.releases(); }
  bool holds_work() const { return tracker_.holds_work(); }
  std::optional<std::int64_t> applied_epoch() const {
    return tracker_.applied_epoch();
  }
  std::optional<std::int64_t> acknowledged_epoch() const {
    return tracker_.server_acknowledged();
  }
  std::int64_t incarnation() const { return protocol_.incarnation(); }
  std::optional<LeaseTimes> lease() const;
  Statistics statistics() const;

 private:
  Clock::time_point now() const { return options_.clock(); }
  void log(LogLevel level, const std::string &message) const;
  void error(const std::string &message, const std::string &sqlstate,
             bool fatal) const;
  // Tells the application what the tracker saw.
  void dispatch(const TrackerEvents &events);
  void heartbeat_now();
  Clock::duration query_timeout() const;
  bool connected() const {
    return phase_ == Phase::Connected || phase_ == Phase::Leaving;
  }

  // Phases.
  void finish();
  void give_up(const std::string &message, const std::string &sqlstate);
  void drop_connection();
  void schedule_reconnect();
  void connection_lost(const std::string &what);
  void lost_connection();
  void start_connect();
  void finish_connect();
  void begin_stop();
  // Stopping and nothing left to release: leave (or finish).
  void maybe_leave();

  // Queries.
  void send(const Statement &statement);
  void flush();
  void next_action();
  void collect_results();
  void complete(QueryKind kind, const QueryResult &result);
  void heartbeat_done(const QueryResult &result);
  void failed_query(QueryKind kind, const QueryResult &result);

  // Notifications.
  void read_notifications();
  void member_notice(const Notice &notice);
  void cluster_notice(const ClusterNotice &notice);

  void service_connection(short revents);

  const Options &options_;
  Session &session_;
  Protocol protocol_;
  Tracker tracker_;
  Backoff backoff_;

  Phase phase_ = Phase::Idle;
  Channels channels_;                    // empty until the server named them
  std::string member_channel_only_why_;  // the server's error, for the warning
  // This server has no shard_coordinator.channel(cluster): an older
  // extension, which tells every member of a count change on its own channel.
  bool member_channel_only_ = false;
  bool warned_member_channel_only_ = false;
  bool listening_ = false;
  // Heartbeat at once again when the one in flight is done: its row may
  // predate the notification that asked for a fresh one.
  bool heartbeat_again_ = false;

  std::optional<QueryKind> query_;  // the query in flight
  Clock::time_point query_sent_at_{};
  Clock::time_point query_deadline_{};

  std::optional<Clock::time_point> next_heartbeat_at_;  // nullopt: at once
  std::optional<Clock::duration> heartbeat_interval_;
  Clock::time_point retry_at_{};

  bool stop_pending_ = false;
  Clock::time_point stop_deadline_{};
  bool failed_ = false;

  Statistics statistics_;  // counts only; connected is read from phase_
};

}  // namespace shard_coordinator::client
