// The assignment the registrar reports, from everything the server said:
// heartbeat rows and notifications (ordered by epoch), and the lease that
// each successful heartbeat grants (see lease.hpp).
//
// Rules:
// - Anything with an epoch older than the newest seen is ignored: rows and
//   notifications can arrive out of order (a heartbeat can read the server's
//   shared memory just before a reshard is published). Equal epochs are
//   accepted: the same epoch means the same assignment, possibly in fuller
//   form (slots).
// - A successful heartbeat renews the lease even when its row is ignored: the
//   server stamped the member either way.
// - Until the first heartbeat succeeds the reported state stays Pending, even
//   if a notification (for an earlier process with the same member name)
//   says otherwise.
// - Once the lease runs out (fence point), the reported state is Lost until a
//   heartbeat succeeds again. A notification cannot end Lost: only a
//   heartbeat proves the server still counts the member.
// - "removed" means the server dropped the member; it is reported as is and
//   the registrar heartbeats at once, which registers it anew.
// - A cluster notice (epoch E, num_shards N) says: at E the cluster has N
//   shards, and every member without a member notice of E keeps its state,
//   shard and slots. The server queues it after the member notices of the same
//   reshard, so it is ignored when E is not newer than the newest epoch seen
//   (the member notice, or a heartbeat row, of E said everything). Otherwise
//   it sets num_shards and the epoch of the known assignment and keeps the
//   rest; like any notice it cannot end Lost. It is also ignored:
//   - while the member is known as removed (the heartbeat that registers it
//     anew tells the truth);
//   - when nothing was heard on this connection yet: the assignment it would
//     amend may be from before a disconnection, so it may be stale; a
//     heartbeat row is asked for instead;
//   - when the known shard is not below N: the member missed a notice of its
//     own (the server changed its shard), so again a heartbeat row is asked
//     for rather than report a shard the count does not hold.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "lease.hpp"
#include "payload.hpp"
#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

class Tracker {
 public:
  explicit Tracker(std::function<Clock::time_point()> clock);

  // A heartbeat sent at `sent_at` returned `row`. Returns true when the
  // reported assignment changed.
  bool on_heartbeat(const HeartbeatRow &row, Clock::time_point sent_at);
  // A notification arrived. Returns true when the reported assignment
  // changed.
  bool on_notice(const Assignment &notice);
  // A cluster notice arrived (see the rules above). Returns true when the
  // reported assignment changed. Sets *heartbeat_now (when not null) if the
  // notice could not be used for want of a sound assignment to amend: the
  // registrar should then heartbeat at once.
  bool on_cluster_notice(std::int64_t epoch, std::int32_t num_shards,
                         bool *heartbeat_now = nullptr);
  // Re-evaluates the lease against the clock. Returns true when the reported
  // assignment changed (to Lost).
  bool on_clock();
  // A new connection: the server's word is the truth again, even with an
  // older epoch (after a failover that lost the last reshards, the promoted
  // server's epochs are behind what a notification once said).
  void on_new_connection();

  const Assignment &reported() const { return reported_; }
  // When on_clock() should next be called; nullopt while no lease can run
  // out (before the first heartbeat, after removal, once Lost).
  std::optional<Clock::time_point> fence_at() const;
  const Lease &lease() const { return lease_; }

 private:
  bool accept(const Assignment &incoming);
  bool publish();

  std::function<Clock::time_point()> clock_;
  bool heartbeat_seen_ = false;
  bool reported_once_ = false;
  std::optional<std::int64_t> newest_epoch_;
  Assignment known_;  // newest accepted assignment from the server
  Lease lease_;
  Assignment reported_;
};

}  // namespace shard_coordinator::client
