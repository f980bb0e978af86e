#include "supervise.hpp"

#include "format.hpp"

namespace shard_coordinator::agent {

client::Clock::time_point kill_deadline(
    const std::optional<client::LeaseTimes> &lease,
    client::Clock::time_point now) {
  if (!lease) return now;
  return lease->fence_at + (lease->end - lease->fence_at) / 2;
}

ChildDecision decide_child(const ChildSituation &s,
                           client::Clock::time_point now) {
  ChildDecision decision;
  decision.lease_lapsed = s.lease_lapsed;
  const client::Assignment &a = s.assignment;
  bool want_child = a.active() && !s.registrar_finished && !s.shutting_down;
  if (!s.child_running) {
    if (want_child) {
      decision.action = ChildAction::Start;
      decision.lease_lapsed = false;
    }
    return decision;
  }
  bool no_lease =
      a.state == client::State::Lost || a.state == client::State::Removed;
  // A lapse seen as such is handled with the lease's own deadlines; the
  // flag is for one that was not.
  if (no_lease) decision.lease_lapsed = false;
  std::optional<client::Clock::time_point> deadline;
  if (decision.lease_lapsed || s.kill_now) {
    deadline = now;
  } else if (no_lease || s.registrar_finished) {
    deadline = kill_deadline(s.lease, now);
  }
  if (s.child_stopping) {
    if (deadline) {
      decision.action = ChildAction::Kill;
      decision.deadline = deadline;
    }
  } else if (!want_child || !same_work(s.child_assignment, a) ||
             decision.lease_lapsed) {
    decision.action = ChildAction::Stop;
    decision.deadline = deadline;
  }
  return decision;
}

}  // namespace shard_coordinator::agent
