// The self-fencing lease: how long the member may keep using its assignment
// after a successful heartbeat, measured on the local monotonic clock only.
//
// The server expires a member at its promise's end: last heartbeat +
// heartbeat interval + grace period (server clock). The heartbeat row's
// lease_remaining is what is left of that promise, measured by the server
// after the heartbeat was stamped. Locally, sent_at is read (Clock,
// CLOCK_BOOTTIME) just before the query is sent, so it precedes the server's
// stamp. Hence sent_at + remaining is never later than the moment the
// server can expire the member (up to the two clocks' rate difference, a few
// parts per million): that is the lease end. No timestamp of the server is
// compared with the local clock.
//
// The assignment is reported Lost a safety margin before the lease end, so
// the application has time to stop using its shard:
//
//   margin = max(10% of remaining, heartbeat_interval),
//            at most (remaining - heartbeat_interval) / 2, at least 0.
//
// The lower bound gives the application at least one heartbeat interval to
// stop. The upper bound keeps the fence point at least half a grace period
// after the next heartbeat is due, so one slow heartbeat does not fence a
// healthy member. Example: interval 5 s, grace 10 s: remaining 15 s, margin
// 5 s, Lost 10 s after the last successful heartbeat was sent.
#pragma once

#include <chrono>
#include <optional>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

class Lease {
 public:
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;

  static Duration safety_margin(Duration remaining, Duration interval);

  // A heartbeat sent at `sent_at` succeeded and the server reported
  // `remaining` until it could expire the member.
  void renew(TimePoint sent_at, Duration remaining, Duration interval);
  // Forget the lease (the server dropped the member).
  void clear() { granted_ = false; }

  bool granted() const { return granted_; }
  // Only meaningful when granted().
  TimePoint end() const { return end_; }
  TimePoint fence_at() const { return fence_at_; }
  TimePoint renewed_at() const { return renewed_at_; }  // sent_at
  Duration interval() const { return interval_; }
  Duration margin() const { return end_ - fence_at_; }
  // True from fence_at() on (and when no lease was ever granted).
  bool ran_out(TimePoint now) const { return !granted_ || now >= fence_at_; }

 private:
  bool granted_ = false;
  TimePoint end_{};
  TimePoint fence_at_{};
  TimePoint renewed_at_{};
  Duration interval_{};
};

}  // namespace shard_coordinator::client
