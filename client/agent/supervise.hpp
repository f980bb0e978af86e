// What `run` does about its child after each wake-up: start it, stop it,
// kill it, or nothing. A pure function of what the registrar reports, what
// the child is doing and what the agent is doing (unit-tested); run.cpp
// gathers the inputs and carries the decision out.
//
// - A child runs only while the assignment is active, the registrar has not
//   finished and the agent is not shutting down; one with other work (shard,
//   count, epoch or slots: same_work()) is stopped first, and the next one
//   starts once it is gone: two children never overlap.
// - Stopping is SIGTERM, then SIGKILL after --kill-timeout. Without a lease
//   (Lost, Removed, or the registrar finished) the SIGKILL comes no later
//   than kill_deadline(), so the child is gone before the server can give
//   the shard to another member; Removed comes without a lease (the server
//   already dropped the member): at once.
// - A lapse the loop did not see as such (Lost or Removed reported, and back
//   to the same work within one step, after a pause of the whole agent):
//   the child worked without a lease, it goes at once.
// - A second signal while shutting down: SIGKILL at once.
#pragma once

#include <optional>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

struct ChildSituation {
  // The registrar's.
  client::Assignment assignment;            // Registrar::assignment()
  bool registrar_finished = false;          // Registrar::finished()
  std::optional<client::LeaseTimes> lease;  // Registrar::lease()
  // Lost or Removed was reported since the child started: set by run's
  // on_assignment callback, which sees every report, where the loop sees
  // only the assignment between steps.
  bool lease_lapsed = false;
  // The child's.
  bool child_running = false;
  bool child_stopping = false;
  client::Assignment child_assignment;  // what the running child was given
  // The agent's.
  bool shutting_down = false;
  bool kill_now = false;  // signalled again while shutting down
};

enum class ChildAction {
  Nothing,
  Start,  // start a child for the assignment
  // SIGTERM now, SIGKILL after --kill-timeout or by the deadline if that is
  // earlier; a deadline already past means SIGKILL at once and nothing else
  // (ChildProcess::stop).
  Stop,
  Kill,  // the child is stopping already: SIGKILL by the deadline
};

struct ChildDecision {
  ChildAction action = ChildAction::Nothing;
  std::optional<client::Clock::time_point> deadline;  // Stop, Kill
  // The lapse flag from now on: cleared once a lapse is seen as such (the
  // deadlines above handle it) and when a child starts.
  bool lease_lapsed = false;
};

ChildDecision decide_child(const ChildSituation &situation,
                           client::Clock::time_point now);

// By when a child must be dead once the lease is not held: halfway between
// the fence point and the lease's end (the server cannot expire the member
// before the end); `now` without a lease.
client::Clock::time_point kill_deadline(
    const std::optional<client::LeaseTimes> &lease,
    client::Clock::time_point now);

}  // namespace shard_coordinator::agent
