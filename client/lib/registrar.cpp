// The registrar: one libpq connection driven by a non-blocking state machine.
//
//   Idle ──▶ Connecting ──▶ Connected ──(lost / timeout / error)──▶ Backoff
//                ▲                                                    │
//                └────────────────────────────────────────────────────┘
//
// On each new connection: SELECT the member's and the cluster's channel names,
// LISTEN on both, heartbeat at once; then a heartbeat every interval the
// server returns. Only one query is in flight at a time; notifications are
// read whenever the socket is readable. The self-fencing deadline
// (Tracker::fence_at) is a timer of its own, honoured in every phase,
// including while connecting.

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>

#include "backoff.hpp"
#include "deadline.hpp"
#include "protocol.hpp"
#include "query_timeout.hpp"
#include "session.hpp"
#include "shard_coordinator/client.hpp"
#include "sqlstate.hpp"
#include "text.hpp"
#include "tracker.hpp"

namespace shard_coordinator::client {

const char *state_name(State state) {
  switch (state) {
    case State::Pending:
      return "pending";
    case State::Active:
      return "active";
    case State::Standby:
      return "standby";
    case State::Removed:
      return "removed";
    case State::Lost:
      return "lost";
  }
  return "unknown";
}

bool Assignment::operator==(const Assignment &other) const {
  return state == other.state && shard == other.shard &&
         num_shards == other.num_shards && epoch == other.epoch &&
         slots == other.slots;
}

namespace {

using namespace std::chrono_literals;

enum class Phase { Idle, Backoff, Connecting, Connected, Finished };

}  // namespace

struct Registrar::Impl {
  explicit Impl(Options opts)
      : options(std::move(opts)),
        session(make_pg_session(options.conninfo, &options.on_log)),
        protocol(options.cluster, options.member),
        tracker(options.clock),
        backoff(options.min_backoff, options.max_backoff, random_uniform01()) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    wake_read = fds[0];
    wake_write = fds[1];
  }
  ~Impl() {
    close(wake_read);
    close(wake_write);
  }

  Options options;
  std::unique_ptr<Session> session;
  Protocol protocol;
  Tracker tracker;
  Backoff backoff;

  Phase phase = Phase::Idle;
  Channels channels;                    // empty until the server named them
  std::string member_channel_only_why;  // the server's error, for the warning
  // This server has no shard_coordinator.channel(cluster): an older
  // extension, which tells every member of a count change on its own channel.
  bool member_channel_only = false;
  bool warned_member_channel_only = false;
  bool listening = false;
  // Heartbeat at once again when the one in flight is done: its row may
  // predate the notification that asked for a fresh one.
  bool heartbeat_again = false;

  std::optional<QueryKind> query;  // the query in flight
  Clock::time_point query_sent_at{};
  Clock::time_point query_deadline{};

  std::optional<Clock::time_point> next_heartbeat_at;  // nullopt: at once
  std::optional<Clock::duration> heartbeat_interval;
  Clock::time_point retry_at{};

  bool stop_pending = false;
  bool stopping = false;
  Clock::time_point stop_deadline{};
  bool failed = false;

  std::atomic<bool> stop_requested{false};
  int wake_read = -1;
  int wake_write = -1;

  Clock::time_point now() const { return options.clock(); }

  void log(LogLevel level, const std::string &message) const {
    if (options.on_log) options.on_log(level, message);
  }

  void error(const std::string &message, const std::string &sqlstate,
             bool fatal) const {
    if (options.on_error) options.on_error(Error{message, sqlstate, fatal});
  }

  void report() const {
    const Assignment &a = tracker.reported();
    log(LogLevel::Info, "assignment: " + describe(a));
    if (options.on_assignment) options.on_assignment(a);
  }

  Clock::duration query_timeout() const {
    return client::query_timeout(options.query_timeout, heartbeat_interval);
  }

  // ----- phases -----

  void finish() {
    drop_connection();
    phase = Phase::Finished;
  }

  void give_up(const std::string &message, const std::string &sqlstate) {
    failed = true;
    finish();
    error(message, sqlstate, true);
  }

  void drop_connection() {
    session->disconnect();
    query.reset();
    channels = Channels{};
    member_channel_only = false;  // the next server may be another version
    listening = false;
    heartbeat_again = false;  // a new connection heartbeats at once anyway
  }

  void schedule_reconnect() {
    drop_connection();
    if (stopping) {
      log(LogLevel::Info,
          "not connected, so not leaving: the server will expire the member");
      finish();
      return;
    }
    auto delay = backoff.next();
    retry_at = now() + delay;
    phase = Phase::Backoff;
    log(LogLevel::Debug, "reconnecting in " + format_duration(delay));
  }

  void connection_lost(const std::string &what) {
    error(what + "; reconnecting", "", false);
    schedule_reconnect();
  }

  void start_connect() {
    std::string why = session->connect();
    if (!why.empty()) {
      error("cannot start connecting: " + why, "", false);
      schedule_reconnect();
      return;
    }
    phase = Phase::Connecting;
    log(LogLevel::Debug, "connecting");
  }

  void finish_connect() {
    std::string why = session->finish_connect();
    if (!why.empty()) {
      error(why, "", false);
      schedule_reconnect();
      return;
    }
    phase = Phase::Connected;
    next_heartbeat_at.reset();  // heartbeat at once after LISTEN
    tracker.on_new_connection();
    log(LogLevel::Info, "connected to " + session->server());
  }

  void lost_connection() {
    connection_lost("lost the connection to " + session->server() + ": " +
                    session->error_message());
  }

  // ----- queries -----

  void send(const Statement &statement) {
    Clock::time_point sent_at = now();  // before sending: see lease.hpp
    if (!session->send(statement.sql, statement.params)) {
      lost_connection();
      return;
    }
    query = statement.kind;
    query_sent_at = sent_at;
    query_deadline = sent_at + query_timeout();
    flush();
  }

  void flush() {
    if (!session->flush()) lost_connection();
  }

  // What to send next when nothing is in flight.
  void next_action() {
    if (phase != Phase::Connected || query) return;
    if (stopping) {
      send(protocol.leave_query());
    } else if (channels.member.empty()) {
      send(protocol.channels_query(member_channel_only));
    } else if (!listening) {
      std::vector<std::string> quoted;
      for (const std::string *name : {&channels.member, &channels.cluster}) {
        if (name->empty()) continue;
        auto q = session->quote_identifier(*name);
        if (!q) {
          connection_lost("cannot quote the channel name: " +
                          session->error_message());
          return;
        }
        quoted.push_back(std::move(*q));
      }
      send(Protocol::listen_query(quoted));
    } else if (!next_heartbeat_at || now() >= *next_heartbeat_at) {
      send(protocol.heartbeat_query());
    }
  }

  void collect_results() {
    while (phase == Phase::Connected && query) {
      std::optional<QueryResult> result = session->result();
      if (!result) return;
      QueryKind done = *query;
      query.reset();
      complete(done, *result);
    }
  }

  void complete(QueryKind kind, const QueryResult &result) {
    if (!result.ok) {
      failed_query(kind, result);
      return;
    }
    switch (kind) {
      case QueryKind::Channels: {
        auto names = Protocol::read_channels(result, member_channel_only);
        if (!names) {
          give_up(
              "shard_coordinator.channel() returned no channel; upgrade "
              "the extension",
              "");
          return;
        }
        channels = std::move(*names);
        if (member_channel_only && !warned_member_channel_only) {
          // Once per registrar: reconnecting to the same server says nothing
          // new.
          warned_member_channel_only = true;
          error("the server has no shard_coordinator.channel(cluster) (" +
                    member_channel_only_why +
                    "): an older extension, which notifies each member of a "
                    "count change on its own channel; listening there only. "
                    "Make the client and the extension the same version",
                "", false);
        }
        break;
      }
      case QueryKind::Listen:
        listening = true;
        log(LogLevel::Debug,
            "listening on " + channels.member +
                (channels.cluster.empty() ? "" : " and " + channels.cluster));
        break;
      case QueryKind::Heartbeat:
        heartbeat_done(result);
        break;
      case QueryKind::Leave: {
        bool left = Protocol::read_leave(result);
        log(LogLevel::Info, left ? "left cluster " + options.cluster
                                 : "was no longer a member of " +
                                       options.cluster + " when leaving");
        finish();
        return;
      }
    }
  }

  void heartbeat_done(const QueryResult &result) {
    HeartbeatReply reply = Protocol::read_heartbeat(result);
    if (const auto *bad = std::get_if<NotUnderstood>(&reply)) {
      error(bad->message, "", false);
      next_heartbeat_at = now() + backoff.next();
      return;
    }
    const HeartbeatRow &row = std::get<HeartbeatRow>(reply);
    heartbeat_interval = row.heartbeat_interval;
    backoff.set_cap(std::min<Backoff::Duration>(options.max_backoff,
                                                row.heartbeat_interval));
    backoff.reset();
    next_heartbeat_at = query_sent_at + row.heartbeat_interval;
    if (heartbeat_again) {
      heartbeat_again = false;
      next_heartbeat_at.reset();
    }
    log(LogLevel::Debug, "heartbeat: " + describe(row.assignment) + ", lease " +
                             format_duration(row.lease_remaining));
    if (tracker.on_heartbeat(row, query_sent_at)) report();
  }

  void failed_query(QueryKind kind, const QueryResult &result) {
    const std::string &sqlstate = result.sqlstate;
    const std::string &message = result.message;
    if (kind == QueryKind::Channels &&
        Protocol::lacks_cluster_channel(result) && !member_channel_only) {
      // Ask for the member's channel alone, and warn once that succeeds: if
      // it fails too, the extension is missing, and the usual advice says so.
      member_channel_only = true;
      member_channel_only_why = message;
      return;  // next_action() sends the member-only query
    }
    if (kind == QueryKind::Leave) {
      error("could not leave: " + message +
                "; the server will expire the member instead",
            sqlstate, false);
      finish();
      return;
    }
    std::string what = std::string(query_name(kind)) + " failed on " +
                       session->server() + ": " + message;
    if (!sqlstate.empty()) what += " [SQLSTATE " + sqlstate + "]";
    if (session->broken()) {
      connection_lost(what);
      return;
    }
    Diagnosis diagnosis = diagnose(sqlstate);
    if (!diagnosis.advice.empty()) what += "; " + diagnosis.advice;
    switch (diagnosis.recovery) {
      case Recovery::GiveUp:
        give_up(what, sqlstate);
        return;
      case Recovery::RetrySameConnection:
        if (kind == QueryKind::Heartbeat) {
          error(what, sqlstate, false);
          next_heartbeat_at = now() + backoff.next();
          return;
        }
        [[fallthrough]];
      case Recovery::Reconnect:
        error(what + "; reconnecting", sqlstate, false);
        schedule_reconnect();
        return;
    }
  }

  void read_notifications() {
    while (phase == Phase::Connected) {
      std::optional<Notification> note = session->notification();
      if (!note) return;
      NotificationEvent event = protocol.read_notification(*note, channels);
      if (const auto *notice = std::get_if<Notice>(&event)) {
        member_notice(*notice);
      } else if (const auto *count = std::get_if<ClusterNotice>(&event)) {
        cluster_notice(*count);
      } else if (const auto *ignored = std::get_if<Ignored>(&event)) {
        log(LogLevel::Debug, ignored->message);
      } else if (const auto *bad = std::get_if<NotUnderstood>(&event)) {
        error(bad->message, "", false);
      }
    }
  }

  void member_notice(const Notice &notice) {
    log(LogLevel::Debug, "notification: " + describe(notice.assignment));
    if (notice.slots_omitted) {
      // Too many slots for a payload: the heartbeat row has them.
      next_heartbeat_at.reset();
      return;
    }
    if (tracker.on_notice(notice.assignment)) report();
    // The server dropped the member: register again at once.
    if (tracker.reported().state == State::Removed) next_heartbeat_at.reset();
  }

  void cluster_notice(const ClusterNotice &notice) {
    log(LogLevel::Debug,
        "cluster notification: " + std::to_string(notice.num_shards) +
            " shards, epoch " + std::to_string(notice.epoch));
    bool heartbeat_now = false;
    if (tracker.on_cluster_notice(notice.epoch, notice.num_shards,
                                  &heartbeat_now))
      report();
    if (heartbeat_now) {
      // Nothing sound to amend (see tracker.hpp): a row will say it all.
      log(LogLevel::Debug,
          "cluster notification not applicable here; heartbeating at once");
      next_heartbeat_at.reset();
      if (query == QueryKind::Heartbeat) heartbeat_again = true;
    }
  }

  void service_connection(short revents) {
    if (revents & (POLLIN | POLLERR | POLLHUP)) {
      if (!session->consume_input()) {
        lost_connection();
        return;
      }
    }
    if (session->want_write() || (revents & POLLOUT)) flush();
    collect_results();
    read_notifications();
    if (phase != Phase::Connected) return;
    if (query && now() >= query_deadline) {
      connection_lost("no answer from " + session->server() + " within " +
                      format_duration(query_timeout()));
      return;
    }
    next_action();
  }

  void begin_stop() {
    stop_pending = false;
    if (stopping || phase == Phase::Finished) return;
    stopping = true;
    stop_deadline = now() + options.leave_timeout;
    if (!options.leave_on_stop || phase != Phase::Connected) {
      if (options.leave_on_stop)
        log(LogLevel::Info,
            "not connected, so not leaving: the server will expire the member");
      finish();
    }
    // Connected: next_action() sends leave() once nothing is in flight.
  }

  void step(short revents) {
    if (stop_requested.exchange(false)) stop_pending = true;
    if (stop_pending) begin_stop();
    switch (phase) {
      case Phase::Idle:
        start_connect();
        break;
      case Phase::Backoff:
        if (now() >= retry_at) start_connect();
        break;
      case Phase::Connecting:
        if (session->connect_done()) finish_connect();
        if (phase == Phase::Connected) next_action();
        break;
      case Phase::Connected:
        service_connection(revents);
        break;
      case Phase::Finished:
        return;
    }
    if (stopping && phase != Phase::Finished && now() >= stop_deadline) {
      log(LogLevel::Info, "leave() got no answer within " +
                              format_duration(options.leave_timeout) +
                              "; the server will expire the member");
      finish();
    }
    if (tracker.on_clock()) report();
  }

  Wait next_wait() const {
    Wait wait;
    auto at = [&wait](Clock::time_point t) {
      if (!wait.deadline || t < *wait.deadline) wait.deadline = t;
    };
    if (stop_pending || stop_requested.load()) at(now());
    switch (phase) {
      case Phase::Finished:
        return wait;
      case Phase::Idle:
        at(now());
        break;
      case Phase::Backoff:
        at(retry_at);
        break;
      case Phase::Connecting:
        wait.fd = session->fd();
        wait.events = POLLIN;
        break;
      case Phase::Connected:
        wait.fd = session->fd();
        wait.events =
            static_cast<short>(POLLIN | (session->want_write() ? POLLOUT : 0));
        if (query) {
          at(query_deadline);
        } else if (!stopping && listening && next_heartbeat_at) {
          at(*next_heartbeat_at);
        } else {
          at(now());  // something to send now
        }
        break;
    }
    if (stopping) at(stop_deadline);
    if (auto fence = tracker.fence_at()) at(*fence);
    return wait;
  }
};

Registrar::Registrar(Options options) {
  if (!options.clock) options.clock = [] { return Clock::now(); };
  if (options.member.empty()) options.member = default_member_name();
  impl_ = std::make_unique<Impl>(std::move(options));
}

Registrar::~Registrar() {
  if (finished()) return;
  // Leave without calling back into an owner that is being destroyed.
  impl_->options.on_assignment = nullptr;
  impl_->options.on_error = nullptr;
  impl_->options.on_log = nullptr;
  request_stop();
  try {
    run();
  } catch (...) {
    // poll() failed: nothing more can be done for a clean leave.
  }
}

const std::string &Registrar::cluster() const { return impl_->options.cluster; }
const std::string &Registrar::member() const { return impl_->options.member; }
const Assignment &Registrar::assignment() const {
  return impl_->tracker.reported();
}

std::optional<LeaseTimes> Registrar::lease() const {
  const Lease &lease = impl_->tracker.lease();
  if (!lease.granted()) return std::nullopt;
  return LeaseTimes{lease.fence_at(), lease.end()};
}

bool Registrar::run() {
  while (!finished()) {
    Wait wait = next_wait();
    pollfd fds[2];
    nfds_t count = 0;
    if (wait.fd >= 0) fds[count++] = pollfd{wait.fd, wait.events, 0};
    fds[count++] = pollfd{impl_->wake_read, POLLIN, 0};
    int rc = poll(fds, count, poll_timeout_ms(wait.deadline, impl_->now()));
    if (rc < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "poll");
    char drain[64];
    while (read(impl_->wake_read, drain, sizeof drain) > 0) {
    }
    step(rc > 0 && wait.fd >= 0 ? fds[0].revents : 0);
  }
  return !failed();
}

void Registrar::request_stop() {
  int saved = errno;
  impl_->stop_requested.store(true);
  ssize_t ignored = write(impl_->wake_write, "x", 1);
  (void)ignored;  // a full pipe already wakes the loop
  errno = saved;
}

Registrar::Wait Registrar::next_wait() const { return impl_->next_wait(); }
void Registrar::step(short revents) { impl_->step(revents); }
void Registrar::stop() { impl_->stop_pending = true; }
bool Registrar::finished() const { return impl_->phase == Phase::Finished; }
bool Registrar::failed() const { return impl_->failed; }

}  // namespace shard_coordinator::client
