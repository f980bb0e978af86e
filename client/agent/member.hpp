// What `run` and `watch` share to be a member: the registrar's options from
// the agent's.
#pragma once

#include "agent.hpp"
#include "log.hpp"
#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

// The connection string, cluster, member and leave-on-stop from `options`;
// the library's progress to the agent's log; errors to the log, fatal ones
// as errors and the others as warnings through `repeats` (which must
// outlive the registrar). on_assignment is left to the subcommand.
client::Options registrar_options(const MemberOptions &options,
                                  RepeatFilter &repeats);

}  // namespace shard_coordinator::agent
