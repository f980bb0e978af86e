// shard_coordinator client library: keeps one worker process registered as a
// member of a cluster and tells it, at every moment, which shard it holds.
//
//   shard_coordinator::client::Options options;
//   options.conninfo = "host=db1,db2 target_session_attrs=read-write";
//   options.cluster = "orders";
//   options.on_assignment = [](const Assignment &a) { ... };
//   Registrar registrar(std::move(options));
//   std::thread t([&] { registrar.run(); });
//   ...
//   registrar.request_stop();  // leaves the cluster, run() returns
//   t.join();
//
// One libpq connection: LISTEN on the member's channel (its own changes) and on
// the cluster's (changes of the number of shards), then heartbeat at the
// interval the server returns. Assignments come from notifications and from
// heartbeat rows; anything with an epoch older than the newest seen is ignored.
// Lost connections are retried with exponential backoff and jitter.
//
// Self-fencing: each successful heartbeat grants a lease that ends when the
// server could expire the member. It is measured on the local monotonic clock
// from just before the heartbeat was sent, so no clock needs to agree with the
// server's. A safety margin before the lease ends, the assignment is reported
// as Lost, so the application stops using its shard before the server can give
// it to another member. See Lease (lib/lease.hpp) for the margin.
//
// Threads: a Registrar is driven by one thread (run(), or step() from the
// application's own poll loop); callbacks run on that thread. request_stop()
// may be called from any thread or from a signal handler.
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
  Active,   // holds `shard` of `num_shards`
  Standby,  // registered beyond the cluster's max_shards; holds nothing
  Removed,  // the server dropped the member (e.g. it expired); rejoining
  Lost,     // the local lease ran out: the assignment may be someone else's
};

// "pending", "active", "standby", "removed", "lost".
const char *state_name(State state);

struct Assignment {
  State state = State::Pending;
  std::optional<std::int32_t> shard;  // set only when Active
  std::int32_t num_shards = 0;
  std::int64_t epoch = 0;
  std::optional<std::vector<std::int32_t>> slots;  // when the server sends it

  bool active() const { return state == State::Active && shard.has_value(); }
  bool operator==(const Assignment &other) const;
  bool operator!=(const Assignment &other) const { return !(*this == other); }
};

struct Error {
  std::string message;   // one line that says what to do
  std::string sqlstate;  // empty for connection-level errors
  bool fatal = false;    // the registrar gave up and finished
};

enum class LogLevel { Info, Debug };

struct Options {
  // libpq connection string or URI; empty uses PGHOST, PGPORT, ... and service
  // files. Multi-host lists and target_session_attrs work as libpq defines.
  std::string conninfo;
  std::string cluster;
  // Empty: default_member_name().
  std::string member;
  // stop() calls shard_coordinator.leave() so the shard is handed on at once.
  bool leave_on_stop = true;

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
  Clock::time_point fence_at;  // the assignment is reported Lost from here
  Clock::time_point end;       // the server may expire the member from here
};

class Registrar {
 public:
  explicit Registrar(Options options);
  ~Registrar();
  Registrar(const Registrar &) = delete;
  Registrar &operator=(const Registrar &) = delete;

  const std::string &cluster() const;
  const std::string &member() const;
  const Assignment &assignment() const;
  std::optional<LeaseTimes> lease() const;
  // This registrar's incarnation: a random id made once, sent with every
  // heartbeat (on every connection) and with leave(), so the server can tell
  // this process from an earlier one with the same member name.
  std::int64_t incarnation() const;

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
  // Begins a graceful stop: leave() (unless leave_on_stop is false or not
  // connected), then disconnect. Keep calling step() until finished().
  void stop();
  bool finished() const;
  bool failed() const;  // finished because of a fatal error

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "<short host name>-<pid>-<6 random hex digits>", at most 127 bytes.
std::string default_member_name();

}  // namespace shard_coordinator::client
