#include "tracker.hpp"

#include <algorithm>

namespace shard_coordinator::client {

Grant grant_of(const Assignment &assignment) {
  Grant grant;
  grant.epoch = assignment.epoch;
  if (assignment.state != State::Active) return grant;
  grant.shard = assignment.shard;
  grant.num_shards = assignment.num_shards;
  grant.slots = assignment.slots;
  if (grant.slots) std::sort(grant.slots->begin(), grant.slots->end());
  return grant;
}

std::vector<std::int32_t> revoked_keys(const Grant &from, const Grant &to) {
  std::vector<std::int32_t> keys;
  if (!from.slots) return keys;
  std::vector<std::int32_t> kept = to.slots.value_or(std::vector<int32_t>{});
  std::sort(kept.begin(), kept.end());
  for (std::int32_t key : *from.slots)
    if (!std::binary_search(kept.begin(), kept.end(), key)) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

Tracker::Tracker(std::function<Clock::time_point()> clock)
    : clock_(std::move(clock)) {}

bool Tracker::accept(const Assignment &incoming) const {
  if (newest_epoch_ && incoming.epoch < *newest_epoch_) return false;
  // Never back to work released and acknowledged: news older than the
  // applied epoch may only take work away.
  if (applied_ && incoming.epoch < *applied_ &&
      !grant_of(known_).covers(grant_of(incoming)))
    return false;
  return true;
}

void Tracker::take(const Assignment &incoming) {
  newest_epoch_ = incoming.epoch;
  known_ = incoming;
}

Clock::time_point Tracker::lease_end_or_now() const {
  return lease_.granted() ? lease_.end() : clock_();
}

Clock::time_point Tracker::fence_or_now() const {
  return lease_.granted() ? lease_.fence_at() : clock_();
}

void Tracker::check_lease(TrackerEvents *events) {
  if (lost_ || !heartbeat_seen_ || known_.state == State::Removed ||
      !lease_.granted() || !lease_.ran_out(clock_()))
    return;
  lost_ = true;
  update_grant(events, RevokeReason::Lost, lease_.end(), lease_.fence_at());
}

void Tracker::update_grant(TrackerEvents *events, RevokeReason reason,
                           Clock::time_point deadline,
                           Clock::time_point fence_at) {
  Grant next;
  next.epoch = known_.epoch;
  if (heartbeat_seen_ && !lost_ && !stopping_ && known_.state == State::Active)
    next = grant_of(known_);
  if (next.same_keys(grant_)) {
    // The same work: the grant keeps its epoch; slot mode's index and count
    // are for display.
    if (!next.empty()) {
      grant_.shard = next.shard;
      grant_.num_shards = next.num_shards;
    }
    return;
  }
  if (!next.covers(grant_)) {
    Revocation revocation;
    revocation.epoch = known_.epoch;
    revocation.reason = reason;
    revocation.from = grant_;
    revocation.to = next;
    revocation.keys = revoked_keys(grant_, next);
    revocation.deadline = deadline;
    revocation.fence_at = std::min(fence_at, deadline);
    releases_.push_back(Release{revocation, epoch_before_event_});
    events->revoked.push_back(std::move(revocation));
  }
  if (!grant_.covers(next)) events->granted = true;
  grant_ = std::move(next);
}

TrackerEvents Tracker::on_heartbeat(const HeartbeatRow &row,
                                    Clock::time_point sent_at) {
  TrackerEvents events;
  begin_event();
  check_lease(&events);
  // Work this row revokes had the lease held before it: the row promises
  // only its own grant.
  Clock::time_point deadline = lease_end_or_now();
  Clock::time_point fence = fence_or_now();
  heartbeat_seen_ = true;
  if (accept(row.assignment)) take(row.assignment);
  // A member the server dropped is registered anew by this heartbeat, so the
  // lease counts again even if the row itself was older than the removal.
  lease_.renew(sent_at, row.lease_remaining, row.heartbeat_interval);
  lost_ = false;
  update_grant(&events, RevokeReason::Server, deadline, fence);
  if (row.acknowledged_epoch &&
      (!server_acknowledged_ ||
       *row.acknowledged_epoch > *server_acknowledged_)) {
    server_acknowledged_ = row.acknowledged_epoch;
    events.acknowledged = row.acknowledged_epoch;
  }
  settle_applied();
  publish(&events);
  return events;
}

TrackerEvents Tracker::on_notice(const Assignment &notice) {
  TrackerEvents events;
  begin_event();
  check_lease(&events);
  if (accept(notice)) {
    take(notice);
    if (notice.state == State::Removed) {
      // The server already gave the work away: stop at once.
      lease_.clear();
      lost_ = false;
      Clock::time_point now = clock_();
      update_grant(&events, RevokeReason::Removed, now, now);
    } else {
      update_grant(&events, RevokeReason::Server, lease_end_or_now(),
                   fence_or_now());
    }
  }
  settle_applied();
  publish(&events);
  return events;
}

TrackerEvents Tracker::on_cluster_notice(std::int64_t epoch,
                                         std::int32_t num_shards,
                                         bool *heartbeat_now) {
  TrackerEvents events;
  if (heartbeat_now != nullptr) *heartbeat_now = false;
  begin_event();
  check_lease(&events);
  // Already known: the member notice of this epoch (queued before the cluster
  // notice) or a heartbeat row of it or later. Or removed.
  bool usable = !(newest_epoch_ && epoch <= *newest_epoch_) &&
                known_.state != State::Removed;
  // "Unchanged" means unchanged since what this connection said; with nothing
  // said yet, known_ may predate missed reshards. The same goes for a shard
  // the new count cannot hold.
  if (usable &&
      (!newest_epoch_ || (known_.shard && *known_.shard >= num_shards))) {
    if (heartbeat_now != nullptr) *heartbeat_now = true;
    usable = false;
  }
  if (usable) {
    newest_epoch_ = epoch;
    known_.num_shards = num_shards;
    known_.epoch = epoch;
    // Plain mode: a greater count takes keys away from every shard.
    update_grant(&events, RevokeReason::Server, lease_end_or_now(),
                 fence_or_now());
  }
  settle_applied();
  publish(&events);
  return events;
}

TrackerEvents Tracker::on_clock() {
  TrackerEvents events;
  begin_event();
  check_lease(&events);
  settle_applied();
  publish(&events);
  return events;
}

void Tracker::on_new_connection() { newest_epoch_.reset(); }

TrackerEvents Tracker::begin_stop() {
  TrackerEvents events;
  begin_event();
  check_lease(&events);
  stopping_ = true;
  update_grant(&events, RevokeReason::Stop, lease_end_or_now(), fence_or_now());
  settle_applied();
  publish(&events);
  return events;
}

bool Tracker::acknowledge(std::int64_t epoch) {
  std::optional<std::int64_t> before = applied_;
  releases_.erase(std::remove_if(releases_.begin(), releases_.end(),
                                 [epoch](const Release &r) {
                                   return r.revocation.epoch <= epoch;
                                 }),
                  releases_.end());
  settle_applied();
  return applied_ != before;
}

std::vector<Revocation> Tracker::releases() const {
  std::vector<Revocation> out;
  out.reserve(releases_.size());
  for (const Release &r : releases_) out.push_back(r.revocation);
  return out;
}

void Tracker::settle_applied() {
  if (!heartbeat_seen_) return;
  std::int64_t candidate =
      releases_.empty() ? known_.epoch : releases_.front().prior;
  if (!applied_ || candidate > *applied_) applied_ = candidate;
}

std::optional<Clock::time_point> Tracker::fence_at() const {
  if (!lease_.granted() || lost_ || known_.state == State::Removed)
    return std::nullopt;
  return lease_.fence_at();
}

void Tracker::publish(TrackerEvents *events) {
  // Until a heartbeat succeeds, nothing is held: stay Pending.
  if (!heartbeat_seen_) return;
  Assignment next = known_;
  // Removed needs no fencing: nothing is held.
  if (lost_ && known_.state != State::Removed) {
    next.state = State::Lost;
    next.shard.reset();
    next.slots.reset();
  }
  // The first heartbeat is always reported, even if it says what the default
  // Assignment says (pending in an empty cluster).
  if (reported_once_ && next == reported_) return;
  reported_once_ = true;
  reported_ = std::move(next);
  events->reported = true;
}

}  // namespace shard_coordinator::client
