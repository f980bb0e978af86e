// What `run` does about its child after each wake-up: start it, stop it,
// kill it, acknowledge, or nothing. A pure function of what the registrar
// reports, what the child is doing and what the agent is doing
// (unit-tested); run.cpp gathers the inputs and carries the decision out.
//
// - A child runs only on a non-empty grant, while the registrar has not
//   finished and the agent is not shutting down. It is restarted only when
//   its own grant changed (Grant::same_keys: slot mode its keys, plain mode
//   its shard or count), never for a new epoch or count alone; the next one
//   starts once the whole tree of the old one is gone: two children never
//   overlap.
// - A revocation (the registrar's releases(): work the server moved, the
//   lease running out, a removal, a stop) stops the child: SIGTERM, then
//   SIGKILL after --kill-timeout, and no later than the revocation's kill
//   deadline (halfway between its fence point and its deadline, whatever
//   --kill-timeout says). Any release pending while a child runs concerns
//   that child: releases are acknowledged before a child starts.
// - Once no process of the child's tree is left, every pending release is
//   acknowledged (the registrar tells the server at once), then a child
//   starts for the grant, if any.
// - A second signal while shutting down: SIGKILL at once.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

struct ChildSituation {
  // The registrar's.
  client::Grant grant;                       // Registrar::grant()
  std::vector<client::Revocation> releases;  // Registrar::releases()
  bool registrar_finished = false;           // Registrar::finished()
  std::optional<client::LeaseTimes> lease;   // Registrar::lease()
  // The child's: the child or anything of its process tree is alive.
  bool child_running = false;
  bool child_stopping = false;
  client::Grant child_grant;  // what the running child was started with
  // The agent's.
  bool shutting_down = false;
  bool kill_now = false;  // signalled again while shutting down
};

enum class ChildAction {
  Nothing,
  Start,  // start a child for the grant
  // SIGTERM now, SIGKILL after --kill-timeout or by the deadline if that is
  // earlier; a deadline already past means SIGKILL at once and nothing else
  // (ChildProcess::stop).
  Stop,
  Kill,  // the child is stopping already: SIGKILL by the deadline
};

struct ChildDecision {
  ChildAction action = ChildAction::Nothing;
  std::optional<client::Clock::time_point> deadline;  // Stop, Kill
  // Nothing of the child's tree is left: acknowledge this epoch (every
  // pending release) before anything else.
  std::optional<std::int64_t> acknowledge;
};

ChildDecision decide_child(const ChildSituation &situation,
                           client::Clock::time_point now);

// By when a child must be dead once the lease is not held: halfway between
// the fence point and the lease's end (the server cannot expire the member
// before the end); `now` without a lease.
client::Clock::time_point kill_deadline(
    const std::optional<client::LeaseTimes> &lease,
    client::Clock::time_point now);

// By when a child must be dead for a revocation: halfway between its fence
// point and its deadline (the end of the lease held when it was learned).
client::Clock::time_point kill_deadline(const client::Revocation &revocation);

// The least time a revoked child gets between learning of a revocation and
// its SIGKILL, with this lease: a revocation shown by the next heartbeat's
// row (a heartbeat interval after this lease began) keeps this lease's
// deadline. A --kill-timeout beyond it is cut short.
client::Clock::duration revocation_window(const client::LeaseTimes &lease);

}  // namespace shard_coordinator::agent
