#include "machine.hpp"

#include <poll.h>

#include <algorithm>

#include "query_timeout.hpp"
#include "sqlstate.hpp"
#include "text.hpp"

namespace shard_coordinator::client {

Machine::Machine(const Options &options, Session &session,
                 std::function<double()> uniform01, std::int64_t incarnation)
    : options_(options),
      session_(session),
      protocol_(options.cluster, options.member, incarnation),
      tracker_(options.clock),
      backoff_(options.min_backoff, options.max_backoff, std::move(uniform01)) {
}

std::optional<LeaseTimes> Machine::lease() const {
  const Lease &lease = tracker_.lease();
  if (!lease.granted()) return std::nullopt;
  return LeaseTimes{lease.fence_at(), lease.end(), lease.renewed_at(),
                    lease.interval()};
}

Statistics Machine::statistics() const {
  Statistics statistics = statistics_;
  statistics.connected = connected();
  return statistics;
}

void Machine::log(LogLevel level, const std::string &message) const {
  if (options_.on_log) options_.on_log(level, message);
}

void Machine::error(const std::string &message, const std::string &sqlstate,
                    bool fatal) const {
  if (options_.on_error) options_.on_error(Error{message, sqlstate, fatal});
}

void Machine::dispatch(const TrackerEvents &events) {
  if (events.reported) {
    const Assignment &a = tracker_.reported();
    log(LogLevel::Info, "assignment: " + describe(a));
    if (options_.on_assignment) options_.on_assignment(a);
  }
  for (const Revocation &r : events.revoked) {
    log(LogLevel::Info,
        "revoked: " + describe(r, now()) +
            (options_.acknowledge == Acknowledge::Explicit
                 ? "; waiting for the application's acknowledgement"
                 : ""));
    if (options_.on_revoked) options_.on_revoked(r);
    if (options_.acknowledge == Acknowledge::OnReturn) acknowledge(r.epoch);
  }
  if (events.granted) {
    log(LogLevel::Info, "granted: " + describe(tracker_.grant()));
    if (options_.on_granted) options_.on_granted(tracker_.grant());
  }
  if (events.acknowledged) {
    log(LogLevel::Debug, "the server counts epoch " +
                             std::to_string(*events.acknowledged) +
                             " as acknowledged");
    if (options_.on_acknowledged)
      options_.on_acknowledged(*events.acknowledged);
  }
}

void Machine::heartbeat_now() {
  next_heartbeat_at_.reset();
  // The one in flight carries the old applied epoch.
  if (query_ == QueryKind::Heartbeat) heartbeat_again_ = true;
}

void Machine::acknowledge(std::int64_t epoch) {
  if (finished()) return;
  if (tracker_.acknowledge(epoch)) {
    log(LogLevel::Debug,
        "acknowledged epoch " + std::to_string(epoch) + "; applied epoch now " +
            std::to_string(tracker_.applied_epoch().value_or(0)));
    // Tell the server at once: the work it holds for this member can go on.
    if (phase_ == Phase::Connected) heartbeat_now();
  }
  maybe_leave();
}

Clock::duration Machine::query_timeout() const {
  return client::query_timeout(options_.query_timeout, heartbeat_interval_);
}

// ----- phases -----

void Machine::finish() {
  drop_connection();
  phase_ = Phase::Finished;
}

void Machine::give_up(const std::string &message, const std::string &sqlstate) {
  failed_ = true;
  // Nothing will renew the lease: the work must stop by its end.
  dispatch(tracker_.begin_stop());
  finish();
  error(message, sqlstate, true);
}

void Machine::drop_connection() {
  if (query_ == QueryKind::Heartbeat) ++statistics_.heartbeat_failures;
  session_.disconnect();
  query_.reset();
  channels_ = Channels{};
  member_channel_only_ = false;  // the next server may be another version
  listening_ = false;
  heartbeat_again_ = false;  // a new connection heartbeats at once anyway
}

void Machine::schedule_reconnect() {
  drop_connection();
  if (phase_ == Phase::Leaving) {
    log(LogLevel::Info,
        "not connected, so not leaving: the server will expire the member");
    finish();
    return;
  }
  ++statistics_.connection_failures;
  auto delay = backoff_.next();
  retry_at_ = now() + delay;
  phase_ = Phase::Backoff;
  log(LogLevel::Debug, "reconnecting in " + format_duration(delay));
}

void Machine::connection_lost(const std::string &what) {
  error(what + "; reconnecting", "", false);
  schedule_reconnect();
}

void Machine::lost_connection() {
  connection_lost("lost the connection to " + session_.server() + ": " +
                  session_.error_message());
}

void Machine::start_connect() {
  std::string why = session_.connect();
  if (!why.empty()) {
    error("cannot start connecting: " + why, "", false);
    schedule_reconnect();
    return;
  }
  phase_ = Phase::Connecting;
  log(LogLevel::Debug, "connecting");
}

void Machine::finish_connect() {
  std::string why = session_.finish_connect();
  if (!why.empty()) {
    error(why, "", false);
    schedule_reconnect();
    return;
  }
  phase_ = Phase::Connected;
  ++statistics_.connections;
  next_heartbeat_at_.reset();  // heartbeat at once after LISTEN
  tracker_.on_new_connection();
  log(LogLevel::Info, "connected to " + session_.server());
}

void Machine::begin_stop() {
  stop_pending_ = false;
  if (tracker_.stopping() || phase_ == Phase::Finished) return;
  bool held = tracker_.holds_work();
  dispatch(tracker_.begin_stop());
  if (!options_.leave_on_stop) {
    // The server expires the member after the promise, by which the work
    // has stopped (the revocation's deadline).
    finish();
    return;
  }
  if (held && tracker_.releases_pending())
    log(LogLevel::Info,
        "stopping: waiting for the application to stop its work before "
        "leaving");
  maybe_leave();
}

void Machine::maybe_leave() {
  if (!tracker_.stopping() || tracker_.releases_pending()) return;
  if (phase_ == Phase::Leaving || phase_ == Phase::Finished) return;
  if (options_.leave_on_stop && phase_ == Phase::Connected) {
    // next_action() sends leave() once nothing is in flight.
    phase_ = Phase::Leaving;
    stop_deadline_ = now() + options_.leave_timeout;
    return;
  }
  if (options_.leave_on_stop)
    log(LogLevel::Info,
        "not connected, so not leaving: the server will expire the member");
  finish();
}

void Machine::abandon() {
  stop_pending_ = false;
  if (phase_ == Phase::Finished) return;
  if (tracker_.holds_work())
    log(LogLevel::Info,
        "finishing with work held: not leaving, the server will expire the "
        "member");
  finish();
}

// ----- queries -----

void Machine::send(const Statement &statement) {
  Clock::time_point sent_at = now();  // before sending: see lease.hpp
  if (!session_.send(statement.sql, statement.params)) {
    lost_connection();
    return;
  }
  query_ = statement.kind;
  query_sent_at_ = sent_at;
  query_deadline_ = sent_at + query_timeout();
  flush();
}

void Machine::flush() {
  if (!session_.flush()) lost_connection();
}

// What to send next when nothing is in flight.
void Machine::next_action() {
  if (!connected() || query_) return;
  if (phase_ == Phase::Leaving) {
    send(protocol_.leave_query());
  } else if (channels_.member.empty()) {
    send(protocol_.channels_query(member_channel_only_));
  } else if (!listening_) {
    std::vector<std::string> quoted;
    for (const std::string *name : {&channels_.member, &channels_.cluster}) {
      if (name->empty()) continue;
      auto q = session_.quote_identifier(*name);
      if (!q) {
        connection_lost("cannot quote the channel name: " +
                        session_.error_message());
        return;
      }
      quoted.push_back(std::move(*q));
    }
    send(Protocol::listen_query(quoted));
  } else if (!next_heartbeat_at_ || now() >= *next_heartbeat_at_) {
    send(protocol_.heartbeat_query(tracker_.applied_epoch()));
  }
}

void Machine::collect_results() {
  while (connected() && query_) {
    std::optional<QueryResult> result = session_.result();
    if (!result) return;
    QueryKind done = *query_;
    query_.reset();
    complete(done, *result);
  }
}

void Machine::complete(QueryKind kind, const QueryResult &result) {
  if (!result.ok) {
    failed_query(kind, result);
    return;
  }
  switch (kind) {
    case QueryKind::Channels: {
      auto names = Protocol::read_channels(result, member_channel_only_);
      if (!names) {
        give_up(
            "shard_coordinator.channel() returned no channel; upgrade the "
            "extension",
            "");
        return;
      }
      channels_ = std::move(*names);
      if (member_channel_only_ && !warned_member_channel_only_) {
        // Once per registrar: reconnecting to the same server says nothing
        // new.
        warned_member_channel_only_ = true;
        error("the server has no shard_coordinator.channel(cluster) (" +
                  member_channel_only_why_ +
                  "): an older extension, which notifies each member of a "
                  "count change on its own channel; listening there only. "
                  "Make the client and the extension the same version",
              "", false);
      }
      break;
    }
    case QueryKind::Listen:
      listening_ = true;
      log(LogLevel::Debug,
          "listening on " + channels_.member +
              (channels_.cluster.empty() ? "" : " and " + channels_.cluster));
      break;
    case QueryKind::Heartbeat:
      heartbeat_done(result);
      break;
    case QueryKind::Leave: {
      bool left = Protocol::read_leave(result);
      log(LogLevel::Info, left ? "left cluster " + options_.cluster
                               : "was no longer a member of " +
                                     options_.cluster + " when leaving");
      finish();
      return;
    }
  }
}

void Machine::heartbeat_done(const QueryResult &result) {
  HeartbeatReply reply = Protocol::read_heartbeat(result);
  if (const auto *bad = std::get_if<NotUnderstood>(&reply)) {
    ++statistics_.heartbeat_failures;
    error(bad->message, "", false);
    next_heartbeat_at_ = now() + backoff_.next();
    return;
  }
  ++statistics_.heartbeats;
  const HeartbeatRow &row = std::get<HeartbeatRow>(reply);
  heartbeat_interval_ = row.heartbeat_interval;
  backoff_.set_cap(std::min<Backoff::Duration>(options_.max_backoff,
                                               row.heartbeat_interval));
  backoff_.reset();
  next_heartbeat_at_ = query_sent_at_ + row.heartbeat_interval;
  if (heartbeat_again_) {
    heartbeat_again_ = false;
    next_heartbeat_at_.reset();
  }
  log(LogLevel::Debug,
      "heartbeat: " + describe(row.assignment) + ", lease " +
          format_duration(row.lease_remaining) +
          (row.release_within
               ? ", release within " + format_duration(*row.release_within)
               : ""));
  dispatch(tracker_.on_heartbeat(row, query_sent_at_));
}

void Machine::failed_query(QueryKind kind, const QueryResult &result) {
  if (kind == QueryKind::Heartbeat) ++statistics_.heartbeat_failures;
  const std::string &sqlstate = result.sqlstate;
  const std::string &message = result.message;
  if (kind == QueryKind::Channels && Protocol::lacks_cluster_channel(result) &&
      !member_channel_only_) {
    // Ask for the member's channel alone, and warn once that succeeds: if it
    // fails too, the extension is missing, and the usual advice says so.
    member_channel_only_ = true;
    member_channel_only_why_ = message;
    return;  // next_action() sends the member-only query
  }
  if (kind == QueryKind::Heartbeat && Protocol::lacks_heartbeat_1_1(result)) {
    give_up("heartbeat failed on " + session_.server() + ": " + message +
                " [SQLSTATE " + sqlstate +
                "]; the extension is older than this client: run ALTER "
                "EXTENSION shard_coordinator UPDATE (version 1.1 or later)",
            sqlstate);
    return;
  }
  if (kind == QueryKind::Leave) {
    error("could not leave: " + message +
              "; the server will expire the member instead",
          sqlstate, false);
    finish();
    return;
  }
  std::string what = std::string(query_name(kind)) + " failed on " +
                     session_.server() + ": " + message;
  if (!sqlstate.empty()) what += " [SQLSTATE " + sqlstate + "]";
  if (session_.broken()) {
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
        next_heartbeat_at_ = now() + backoff_.next();
        return;
      }
      [[fallthrough]];
    case Recovery::Reconnect:
      error(what + "; reconnecting", sqlstate, false);
      schedule_reconnect();
      return;
  }
}

// ----- notifications -----

void Machine::read_notifications() {
  while (connected()) {
    std::optional<Notification> note = session_.notification();
    if (!note) return;
    ++statistics_.notifications;
    NotificationEvent event = protocol_.read_notification(*note, channels_);
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

void Machine::member_notice(const Notice &notice) {
  log(LogLevel::Debug, "notification: " + describe(notice.assignment));
  if (notice.slots_omitted) {
    // Too many slots for a payload: the heartbeat row has them.
    next_heartbeat_at_.reset();
    return;
  }
  dispatch(tracker_.on_notice(notice.assignment));
  // The server dropped the member: register again at once.
  if (tracker_.reported().state == State::Removed) next_heartbeat_at_.reset();
}

void Machine::cluster_notice(const ClusterNotice &notice) {
  log(LogLevel::Debug,
      "cluster notification: " + std::to_string(notice.num_shards) +
          " shards, epoch " + std::to_string(notice.epoch));
  bool again = false;
  dispatch(tracker_.on_cluster_notice(notice.epoch, notice.num_shards, &again));
  if (again) {
    // Nothing sound to amend (see tracker.hpp): a row will say it all.
    log(LogLevel::Debug,
        "cluster notification not applicable here; heartbeating at once");
    heartbeat_now();
  }
}

// ----- the loop's side -----

void Machine::service_connection(short revents) {
  if (revents & (POLLIN | POLLERR | POLLHUP)) {
    if (!session_.consume_input()) {
      lost_connection();
      return;
    }
  }
  if (session_.want_write() || (revents & POLLOUT)) flush();
  collect_results();
  read_notifications();
  if (!connected()) return;
  if (query_ && now() >= query_deadline_) {
    connection_lost("no answer from " + session_.server() + " within " +
                    format_duration(query_timeout()));
    return;
  }
  next_action();
}

void Machine::step(short revents) {
  if (stop_pending_) begin_stop();
  switch (phase_) {
    case Phase::Idle:
      start_connect();
      break;
    case Phase::Backoff:
      if (now() >= retry_at_) start_connect();
      break;
    case Phase::Connecting:
      if (session_.connect_done()) finish_connect();
      if (phase_ == Phase::Connected) next_action();
      break;
    case Phase::Connected:
    case Phase::Leaving:
      service_connection(revents);
      break;
    case Phase::Finished:
      return;
  }
  if (phase_ == Phase::Leaving && now() >= stop_deadline_) {
    log(LogLevel::Info, "leave() got no answer within " +
                            format_duration(options_.leave_timeout) +
                            "; the server will expire the member");
    finish();
  }
  dispatch(tracker_.on_clock());
  maybe_leave();
}

Registrar::Wait Machine::next_wait() const {
  Registrar::Wait wait;
  auto at = [&wait](Clock::time_point t) {
    if (!wait.deadline || t < *wait.deadline) wait.deadline = t;
  };
  if (stop_pending_) at(now());
  switch (phase_) {
    case Phase::Finished:
      return wait;
    case Phase::Idle:
      at(now());
      break;
    case Phase::Backoff:
      at(retry_at_);
      break;
    case Phase::Connecting:
      wait.fd = session_.fd();
      wait.events = POLLIN;
      break;
    case Phase::Connected:
    case Phase::Leaving:
      wait.fd = session_.fd();
      wait.events =
          static_cast<short>(POLLIN | (session_.want_write() ? POLLOUT : 0));
      if (query_) {
        at(query_deadline_);
      } else if (phase_ == Phase::Connected && listening_ &&
                 next_heartbeat_at_) {
        at(*next_heartbeat_at_);
      } else {
        at(now());  // something to send now
      }
      break;
  }
  if (phase_ == Phase::Leaving) at(stop_deadline_);
  if (auto fence = tracker_.fence_at()) at(*fence);
  return wait;
}

}  // namespace shard_coordinator::client
