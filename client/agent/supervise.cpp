#include "supervise.hpp"

#include <algorithm>

#include "deadline.hpp"

namespace shard_coordinator::agent {

client::Clock::time_point kill_deadline(
    const std::optional<client::LeaseTimes> &lease,
    client::Clock::time_point now) {
  if (!lease) return now;
  return lease->fence_at + (lease->end - lease->fence_at) / 2;
}

client::Clock::time_point kill_deadline(const client::Revocation &revocation) {
  client::Clock::time_point fence =
      std::min(revocation.fence_at, revocation.deadline);
  return fence + (revocation.deadline - fence) / 2;
}

client::Clock::duration revocation_window(const client::LeaseTimes &lease) {
  client::Clock::time_point learned =
      lease.renewed_at + lease.heartbeat_interval;
  return std::max(client::Clock::duration::zero(),
                  kill_deadline(lease, learned) - learned);
}

ChildDecision decide_child(const ChildSituation &s,
                           client::Clock::time_point now) {
  ChildDecision decision;
  bool want_child =
      !s.grant.empty() && !s.registrar_finished && !s.shutting_down;
  if (!s.child_running) {
    // Nothing of the tree is left: whatever was revoked has stopped.
    for (const client::Revocation &r : s.releases)
      if (!decision.acknowledge || r.epoch > *decision.acknowledge)
        decision.acknowledge = r.epoch;
    if (want_child) decision.action = ChildAction::Start;
    return decision;
  }
  std::optional<client::Clock::time_point> deadline;
  for (const client::Revocation &r : s.releases)
    deadline = client::earliest(deadline, kill_deadline(r));
  // Nothing renews the lease any more.
  if (s.registrar_finished)
    deadline = client::earliest(deadline, kill_deadline(s.lease, now));
  if (s.kill_now) deadline = now;
  if (s.child_stopping) {
    if (deadline) {
      decision.action = ChildAction::Kill;
      decision.deadline = deadline;
    }
  } else if (!want_child || !s.child_grant.same_keys(s.grant) ||
             !s.releases.empty()) {
    decision.action = ChildAction::Stop;
    decision.deadline = deadline;
  }
  return decision;
}

}  // namespace shard_coordinator::agent
