#include "tracker.hpp"

namespace shard_coordinator::client {

Tracker::Tracker(std::function<Clock::time_point()> clock)
    : clock_(std::move(clock)) {}

bool Tracker::accept(const Assignment &incoming) {
  if (newest_epoch_ && incoming.epoch < *newest_epoch_) return false;
  newest_epoch_ = incoming.epoch;
  known_ = incoming;
  return true;
}

bool Tracker::on_heartbeat(const HeartbeatRow &row, Clock::time_point sent_at) {
  heartbeat_seen_ = true;
  accept(row.assignment);
  // A member the server dropped is registered anew by this heartbeat, so the
  // lease counts again even if the row itself was older than the removal.
  lease_.renew(sent_at, row.lease_remaining, row.heartbeat_interval);
  return publish();
}

bool Tracker::on_notice(const Assignment &notice) {
  if (!accept(notice)) return false;
  if (notice.state == State::Removed) lease_.clear();
  return publish();
}

bool Tracker::on_cluster_notice(std::int64_t epoch, std::int32_t num_shards,
                                bool *heartbeat_now) {
  if (heartbeat_now != nullptr) *heartbeat_now = false;
  // Already known: the member notice of this epoch (queued before the cluster
  // notice) or a heartbeat row of it or later.
  if (newest_epoch_ && epoch <= *newest_epoch_) return false;
  if (known_.state == State::Removed) return false;
  // "Unchanged" means unchanged since what this connection said; with nothing
  // said yet, known_ may predate missed reshards. The same goes for a shard
  // the new count cannot hold.
  if (!newest_epoch_ || (known_.shard && *known_.shard >= num_shards)) {
    if (heartbeat_now != nullptr) *heartbeat_now = true;
    return false;
  }
  newest_epoch_ = epoch;
  known_.num_shards = num_shards;
  known_.epoch = epoch;
  return publish();
}

bool Tracker::on_clock() { return publish(); }

void Tracker::on_new_connection() { newest_epoch_.reset(); }

std::optional<Clock::time_point> Tracker::fence_at() const {
  if (!lease_.granted() || reported_.state == State::Lost ||
      known_.state == State::Removed)
    return std::nullopt;
  return lease_.fence_at();
}

bool Tracker::publish() {
  // Until a heartbeat succeeds, nothing is held: stay Pending.
  if (!heartbeat_seen_) return false;
  Assignment next = known_;
  // Removed needs no fencing: nothing is held.
  bool fenced = known_.state != State::Removed && lease_.ran_out(clock_());
  if (fenced) {
    next.state = State::Lost;
    next.shard.reset();
    next.slots.reset();
  }
  // The first heartbeat is always reported, even if it says what the default
  // Assignment says (pending in an empty cluster).
  if (reported_once_ && next == reported_) return false;
  reported_once_ = true;
  reported_ = std::move(next);
  return true;
}

}  // namespace shard_coordinator::client
