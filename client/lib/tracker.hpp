// What the registrar reports, from everything the server said: heartbeat
// rows and notifications (ordered by epoch), the lease that each successful
// heartbeat grants (see lease.hpp), and the application's acknowledgements.
// Pure: no I/O, no clock but the one given.
//
// Three things are tracked:
// - the reported assignment (reported()): what the server says of the
//   member, or Lost once the lease ran out;
// - the grant (grant()): what the application may work on now; and
// - the releases (releases()): work revoked from the grant, not yet
//   acknowledged by the application, each with its deadline.
//
// Rules of the assignment:
// - Anything with an epoch older than the newest seen on this connection is
//   ignored: rows and notifications can arrive out of order (a heartbeat can
//   read the server's shared memory just before a reshard is published).
//   Equal epochs are accepted: the same epoch means the same assignment,
//   possibly in fuller form (slots).
// - Never back: a row (or notice) older than the applied epoch is ignored,
//   also on a new connection, if it would give work that the newest known
//   assignment does not (work the application may have released and
//   acknowledged). Older news that only takes work away is believed (a
//   failover to a server that is behind).
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
//
// Rules of the grant:
// - The grant is the known assignment's work (Grant: a shard of a count, or
//   slot keys) while it is Active, a heartbeat has succeeded, the lease holds
//   and no stop began; otherwise it is empty.
// - When the grant loses work (the new one does not cover the old: slot keys
//   gone, another shard, a greater count in plain mode), a Revocation is
//   recorded with the epoch that showed it and a deadline: the end of the
//   lease held when it was learned. For a heartbeat row that is the lease
//   from before that row: the row promises only the new grant. A lost lease
//   (Lost) revokes everything with its own end as the deadline; a removal,
//   with no lease left, at once; begin_stop() everything with the lease's
//   end.
// - When the grant gains work, the events say so; the new work may start at
//   once. When only the slot-mode count or index changes, the grant keeps its
//   epoch and nothing is told.
//
// Rules of the applied epoch (sent with every heartbeat):
// - With no release pending it is the newest epoch accepted: the state of
//   that epoch was applied, every revocation up to it released.
// - With releases pending it is the newest epoch accepted before the news
//   that revealed the oldest of them (a later epoch could release the
//   server's hold of work that has not stopped, e.g. when the notice of the
//   revocation's own epoch was lost and a later row showed it).
// - It never goes back.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "lease.hpp"
#include "payload.hpp"
#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

// What one event changed; the registrar tells the application in this order:
// the reported assignment, the revocations, the grant, the acknowledgement.
struct TrackerEvents {
  bool reported = false;            // reported() changed
  std::vector<Revocation> revoked;  // new revocations, oldest first
  bool granted = false;             // grant() gained work
  // The server's acknowledged epoch moved to this.
  std::optional<std::int64_t> acknowledged;
};

// The work a server-side assignment gives (empty unless Active).
Grant grant_of(const Assignment &assignment);

// The slot keys of `from` that `to` does not hold (ascending); empty in plain
// mode.
std::vector<std::int32_t> revoked_keys(const Grant &from, const Grant &to);

class Tracker {
 public:
  explicit Tracker(std::function<Clock::time_point()> clock);

  // A heartbeat sent at `sent_at` returned `row`.
  TrackerEvents on_heartbeat(const HeartbeatRow &row,
                             Clock::time_point sent_at);
  // A member notice arrived.
  TrackerEvents on_notice(const Assignment &notice);
  // A cluster notice arrived (see the rules above). Sets *heartbeat_now
  // (when not null) if the notice could not be used for want of a sound
  // assignment to amend: the registrar should then heartbeat at once.
  TrackerEvents on_cluster_notice(std::int64_t epoch, std::int32_t num_shards,
                                  bool *heartbeat_now = nullptr);
  // Re-evaluates the lease against the clock (Lost at the fence point).
  TrackerEvents on_clock();
  // A new connection: the server's word is the truth again, even with an
  // older epoch (after a failover that lost the last reshards, the promoted
  // server's epochs are behind what a notification once said), within the
  // never-back rule.
  void on_new_connection();
  // A graceful stop: the whole grant is revoked, and nothing is granted any
  // more.
  TrackerEvents begin_stop();
  // The application stopped every revoked work of `epoch` or earlier.
  // Returns true when the applied epoch moved (something to tell the
  // server).
  bool acknowledge(std::int64_t epoch);

  const Assignment &reported() const { return reported_; }
  const Grant &grant() const { return grant_; }
  std::vector<Revocation> releases() const;
  bool releases_pending() const { return !releases_.empty(); }
  // The grant or a release: work the application may still be doing.
  bool holds_work() const { return !grant_.empty() || !releases_.empty(); }
  std::optional<std::int64_t> applied_epoch() const { return applied_; }
  std::optional<std::int64_t> server_acknowledged() const {
    return server_acknowledged_;
  }
  bool stopping() const { return stopping_; }
  // When on_clock() should next be called; nullopt while no lease can run
  // out (before the first heartbeat, after removal, once Lost).
  std::optional<Clock::time_point> fence_at() const;
  const Lease &lease() const { return lease_; }

 private:
  struct Release {
    Revocation revocation;
    // The newest epoch accepted before the news that revoked it: every
    // revocation up to it was learned before, so while this one is pending
    // that much (no more) may be acknowledged.
    std::int64_t prior = 0;
  };

  bool accept(const Assignment &incoming) const;
  void take(const Assignment &incoming);
  // Lost from the fence point on.
  void check_lease(TrackerEvents *events);
  // Makes grant_ what it should be now; records a revocation (with this
  // reason and deadline) when it loses work.
  void update_grant(TrackerEvents *events, RevokeReason reason,
                    Clock::time_point deadline, Clock::time_point fence_at);
  // The deadline and fence point of work revoked now: the current lease's,
  // or now without one.
  Clock::time_point lease_end_or_now() const;
  Clock::time_point fence_or_now() const;
  // At the start of each event: the epoch before it (see Release::prior).
  void begin_event() { epoch_before_event_ = known_.epoch; }
  void settle_applied();
  void publish(TrackerEvents *events);

  std::function<Clock::time_point()> clock_;
  bool heartbeat_seen_ = false;
  bool reported_once_ = false;
  bool lost_ = false;
  bool stopping_ = false;
  std::optional<std::int64_t> newest_epoch_;  // on this connection
  std::int64_t epoch_before_event_ = 0;
  Assignment known_;  // newest accepted assignment from the server
  Lease lease_;
  Assignment reported_;
  Grant grant_;
  std::vector<Release> releases_;  // oldest first
  std::optional<std::int64_t> applied_;
  std::optional<std::int64_t> server_acknowledged_;
};

}  // namespace shard_coordinator::client
