// shard_coordinator client library: keeps one worker process registered as a
// member of a cluster and tells it, at every moment, which work is its own
// (its grant), which work was taken away and by when it must have stopped.
//
//   shard_coordinator::client::Options options;
//   options.conninfo = "host=db1,db2 target_session_attrs=read-write";
//   options.cluster = "orders";
//   options.on_granted = [](const Grant &g) { start_work(g); };
//   options.on_revoked = [](const Revocation &r) { stop_work(r); };
//   Registrar registrar(std::move(options));
//   std::thread t([&] { registrar.run(); });
//   ...
//   registrar.request_stop();  // revokes everything, waits, leaves
//   t.join();
//
// One libpq connection: LISTEN on the member's channel (its own changes) and on
// the cluster's (changes of the number of shards), then heartbeat at the
// interval the server returns. Assignments come from notifications and from
// heartbeat rows; anything with an epoch older than the newest seen is ignored.
// Lost connections are retried with exponential backoff and jitter.
//
// The protocol kept (extension 1.1, exclusive handover; docs/design.md):
//
// - Grants and revocations. The member's grant is what it may work on now:
//   plain mode, the keys x with jump_hash(x, num_shards) = shard; slot mode,
//   its slot keys. When work leaves the grant the server keeps it held by
//   this member until the member acknowledges the epoch that revoked it (or
//   leaves, expires, or the promise of its last heartbeat before the
//   revocation ends); only then is it granted to another member. on_revoked
//   tells of such work with its deadline, on_granted of new work (which may
//   start at once: nobody else holds it).
// - The deadline of a revocation is the end of the lease held when it was
//   learned. Heartbeats that succeed later do not move it: a row that shows
//   the revocation promises only the new grant.
// - Acknowledgements. Every heartbeat sends applied_epoch: the newest epoch
//   up to which every revocation has been released (applied_epoch()), and
//   this registrar's incarnation (a random id, the same across reconnects).
//   The application acknowledges a revocation once the work stopped: by
//   returning from on_revoked (Acknowledge::OnReturn) or by calling
//   acknowledge() (Acknowledge::Explicit). An acknowledgement that releases
//   something is sent at once, so handovers take a round trip, not a lease.
// - Never back: a heartbeat row older than the acknowledged epoch that would
//   give back work the member released is ignored, also on a new connection.
// - Shutdown: stop() revokes the whole grant first; leave() goes out only
//   once every revocation was acknowledged (heartbeats go on meanwhile).
//
// Self-fencing: each successful heartbeat grants a lease that ends when the
// server could expire the member: the client's clock (Clock: CLOCK_BOOTTIME,
// which counts suspend) read just before sending, plus the row's
// lease_remaining. No clock needs to agree with the server's. A safety
// margin before the lease ends the assignment is reported Lost and the whole
// grant revoked, so the application stops before the server can give its
// work to another member. See Lease (lib/lease.hpp) for the margin.
//
// Threads: a Registrar is driven by one thread (run(), or step() from the
// application's own poll loop); callbacks run on that thread. request_stop()
// may be called from any thread or from a signal handler, acknowledge() from
// any thread.
//
// Connections are opened on a detached helper thread (see lib/connect.hpp),
// so that the loop keeps its timers. An attempt still under way when the
// Registrar finishes is abandoned, not waited for: it may stay inside libpq
// for up to connect_timeout per host after the Registrar is gone. A process
// that may end meanwhile should flush its output and call _exit() rather
// than exit() or return from main(), which run atexit handlers (OpenSSL's
// cleanup) and static destructors under that thread. The agent does so.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shard_coordinator::client {

// The client's monotonic clock: CLOCK_BOOTTIME. Unlike std::chrono::
// steady_clock (CLOCK_MONOTONIC on Linux) it keeps counting while the machine
// is suspended, as the server's clock does: a lease measured on it cannot
// outlive a suspend of the client's machine.
struct BootClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<BootClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

using Clock = BootClock;

enum class State {
  Pending,  // registered, waiting for the coordinator to place it
  // Placed: its grant is `shard` of `num_shards` (slot mode: `slots`). With
  // no shard (plain mode) it waits for its grant: the previous holder has
  // not released it yet.
  Active,
  Standby,  // registered beyond the cluster's max_shards; holds nothing
  Removed,  // the server dropped the member (e.g. it expired); rejoining
  Lost,     // the local lease ran out: the assignment may be someone else's
};

// "pending", "active", "standby", "removed", "lost".
const char *state_name(State state);

// What the server says of the member: its row or notice (Lost: the local
// lease ran out). Grant, below, is what the application may work on.
struct Assignment {
  State state = State::Pending;
  // Plain mode: set when Active and granted; slot mode: the member's index
  // among the active members, set while Active.
  std::optional<std::int32_t> shard;
  // Plain mode: the count of its grant; slot mode: the active members.
  std::int32_t num_shards = 0;
  std::int64_t epoch = 0;
  std::optional<std::vector<std::int32_t>> slots;  // slot mode, when Active

  bool active() const { return state == State::Active && shard.has_value(); }
  bool operator==(const Assignment &other) const;
  bool operator!=(const Assignment &other) const { return !(*this == other); }
};

// What the member may work on now.
struct Grant {
  // Plain mode: the keys x with jump_hash(x, num_shards) = shard (empty
  // without a shard). Slot mode (slots set): exactly the keys in `slots`;
  // shard and num_shards are then the member's index and the count of
  // active members, for display.
  std::optional<std::int32_t> shard;
  std::int32_t num_shards = 0;
  std::optional<std::vector<std::int32_t>> slots;  // slot mode, ascending
  // The epoch at which it became these keys: pass it to
  // shard_coordinator.fence(). Changes of the count alone in slot mode do
  // not move it (nor fire on_granted).
  std::int64_t epoch = 0;

  // Nothing to work on.
  bool empty() const;
  bool slot_mode() const { return slots.has_value(); }
  // The same keys (the epoch, and slot mode's shard and count, aside).
  bool same_keys(const Grant &other) const;
  // Every key of `other` is in this grant. Plain mode uses jump hash's
  // nesting: (k, n) covers (k, m) for n <= m.
  bool covers(const Grant &other) const;
  bool operator==(const Grant &other) const;
  bool operator!=(const Grant &other) const { return !(*this == other); }
};

enum class RevokeReason {
  Server,   // the server moved the work (a row or notice showed it)
  Lost,     // the lease ran out: everything, until a heartbeat succeeds
  Removed,  // the server dropped the member: everything, at once
  Stop,     // stop(): everything, before leave()
};

// "server", "lost", "removed", "stop".
const char *reason_name(RevokeReason reason);

// Work taken from the member: stop it before `deadline`, then acknowledge
// `epoch`.
struct Revocation {
  // Acknowledge this (or a later) epoch once the work stopped.
  std::int64_t epoch = 0;
  RevokeReason reason = RevokeReason::Server;
  Grant from;  // the grant the work was part of
  Grant to;    // the grant now: work in `from` not in `to` must stop
  // Slot mode: the keys of `from` not in `to`, ascending. Plain mode:
  // empty; the work is the keys of `from` that are not in `to`.
  std::vector<std::int32_t> keys;
  // The end of the lease held when the revocation was learned (now, without
  // one): the work must have stopped by then. Later heartbeats never move
  // it.
  Clock::time_point deadline{};
  // That lease's fence point: stopping by then keeps its safety margin (the
  // agent SIGKILLs halfway between the two).
  Clock::time_point fence_at{};
};

struct Error {
  std::string message;   // one line that says what to do
  std::string sqlstate;  // empty for connection-level errors
  bool fatal = false;    // the registrar gave up and finished
};

enum class LogLevel { Info, Debug };

// How the registrar learns that revoked work has stopped.
enum class Acknowledge {
  // When on_revoked returns (or at once without it): the callback stops the
  // work before it returns.
  OnReturn,
  // When the application calls Registrar::acknowledge().
  Explicit,
};

struct Options {
  // libpq connection string or URI; empty uses PGHOST, PGPORT, ... and service
  // files. Multi-host lists and target_session_attrs work as libpq defines.
  std::string conninfo;
  std::string cluster;
  // Empty: default_member_name().
  std::string member;
  // stop() calls shard_coordinator.leave() (once the work stopped) so the
  // work is handed on at once.
  bool leave_on_stop = true;
  Acknowledge acknowledge = Acknowledge::OnReturn;

  // Reconnect and retry delays: exponential from min_backoff, capped at
  // max_backoff and at the cluster's heartbeat interval (so a member reconnects
  // within one interval of the server's return and keeps its shard).
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  // A query without an answer for this long drops the connection.
  // Zero: the heartbeat interval, at least 15 s, since the server's
  // heartbeat() and leave() may wait up to 10 s for its background worker
  // (loading the cluster's state, removing a member).
  std::chrono::milliseconds query_timeout{0};
  // How long stop() waits for leave() to answer.
  std::chrono::milliseconds leave_timeout{2000};

  // Work was taken away (see Revocation): stop it by r.deadline. Called
  // before on_granted when one change does both.
  std::function<void(const Revocation &r)> on_revoked;
  // The grant gained work (grant() is `g`): it may start at once.
  std::function<void(const Grant &g)> on_granted;
  // The server counts `epoch` as acknowledged (a heartbeat row's
  // acknowledged_epoch moved).
  std::function<void(std::int64_t epoch)> on_acknowledged;
  // Called whenever the assignment reported by assignment() changes.
  std::function<void(const Assignment &)> on_assignment;
  // Called for every failure; after a fatal one the registrar has finished.
  std::function<void(const Error &)> on_error;
  // Progress messages (connections, heartbeats, notifications).
  std::function<void(LogLevel, const std::string &)> on_log;

  // The monotonic clock; replaced in tests.
  std::function<Clock::time_point()> clock;
};

// Times of the current lease on the local monotonic clock.
struct LeaseTimes {
  Clock::time_point fence_at;    // the assignment is reported Lost from here
  Clock::time_point end;         // the server may expire the member from here
  Clock::time_point renewed_at;  // the heartbeat that granted it was sent
  Clock::duration heartbeat_interval{};
};

// What the registrar has done since it was made, for monitoring (the
// agent's --metrics-addr). Counts only grow.
struct Statistics {
  bool connected = false;         // a connection is up now
  std::uint64_t connections = 0;  // connections made
  // Connection attempts that failed, and connections lost or dropped (a
  // query without an answer in time, an error that asks for a new one):
  // each is followed by a reconnect after the backoff.
  std::uint64_t connection_failures = 0;
  std::uint64_t heartbeats = 0;  // heartbeats answered with a row
  // Heartbeats sent that got no row: an error, an answer not understood, or
  // the connection gone while one was in flight.
  std::uint64_t heartbeat_failures = 0;
  // Notifications received on the member's and the cluster's channels.
  std::uint64_t notifications = 0;
};

class Registrar {
 public:
  explicit Registrar(Options options);
  // A registrar that has not finished stops as stop() does, without calling
  // back; if the application still held work (a grant, or revocations not
  // acknowledged) it does not leave: the server expires the member instead.
  ~Registrar();
  Registrar(const Registrar &) = delete;
  Registrar &operator=(const Registrar &) = delete;

  const std::string &cluster() const;
  const std::string &member() const;
  const Assignment &assignment() const;
  // What the application may work on now: empty while pending, standby,
  // waiting for its grant, Lost, Removed, or stopping.
  const Grant &grant() const;
  // Revocations not acknowledged yet, oldest first.
  std::vector<Revocation> releases() const;
  std::optional<LeaseTimes> lease() const;
  // This registrar's incarnation: a random id made once, sent with every
  // heartbeat (on every connection) and with leave(), so the server can tell
  // this process from an earlier one with the same member name.
  std::int64_t incarnation() const;
  // What the next heartbeat sends as applied_epoch: the newest epoch up to
  // which every revocation was released; nullopt before the first row.
  std::optional<std::int64_t> applied_epoch() const;
  // The epoch the server last said it counts as acknowledged.
  std::optional<std::int64_t> acknowledged_epoch() const;
  // Connections, heartbeats and notifications so far (see Statistics).
  Statistics statistics() const;

  // The application stopped every revoked work of `epoch` or earlier (see
  // Revocation::epoch); releases() no longer lists it, and the server hears
  // of it at once (a heartbeat) if that releases anything. Thread-safe: on
  // the thread that steps the registrar (callbacks, or between steps) it
  // takes effect at once, from another thread at the next step (it wakes
  // run()).
  void acknowledge(std::int64_t epoch);

  // Runs until request_stop() (then stops as stop() does) or a fatal error.
  // Returns false after a fatal error.
  bool run();
  // Async-signal-safe and thread-safe: asks run() to stop.
  void request_stop();

  // For an application's own poll() loop: wait for `events` on `fd` (if fd
  // >= 0) or until `deadline`, whichever comes first, then call step() with
  // the revents (0 on timeout). step() never blocks.
  struct Wait {
    int fd = -1;
    short events = 0;
    std::optional<Clock::time_point> deadline;
  };
  Wait next_wait() const;
  void step(short revents);
  // Begins a graceful stop: revokes the whole grant (on_revoked, reason
  // Stop), keeps heartbeating until every revocation is acknowledged, then
  // leave() (unless leave_on_stop is false or not connected), then
  // disconnects. Without leave_on_stop it finishes at once after the
  // revocation. Keep calling step() until finished().
  void stop();
  // Finishes at once, without revoking, acknowledging or leaving: for an
  // owner that cannot tell when its work stops. The server expires the
  // member after the promise of its last heartbeat, by which the work must
  // have stopped (lease()->end).
  void abandon();
  bool finished() const;
  bool failed() const;  // finished because of a fatal error

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "<short host name>-<pid>-<6 random hex digits>", at most 127 bytes.
std::string default_member_name();

}  // namespace shard_coordinator::client
