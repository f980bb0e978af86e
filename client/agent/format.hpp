// What the agent writes for others: the child's environment, watch's JSON
// lines, status's tables. Pure functions, unit-tested.
#pragma once

#include <string>
#include <vector>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

// `base` (KEY=VALUE strings, e.g. from environ) without any inherited
// SHARD_* variable of ours, plus the grant's:
//   SHARD_INDEX, SHARD_COUNT, SHARD_EPOCH (the grant's epoch, for
//   shard_coordinator.fence()), SHARD_CLUSTER, SHARD_MEMBER, SHARD_SLOTS
//   (comma-separated, slot mode only).
std::vector<std::string> child_environment(const char *const *base,
                                           const client::Grant &grant,
                                           const std::string &cluster,
                                           const std::string &member);

// {"cluster":..,"member":..,"shard":..,"num_shards":..,"epoch":..,
//  "state":..[,"slots":[..]]}, no newline.
std::string assignment_json(const std::string &cluster,
                            const std::string &member,
                            const client::Assignment &a);

// Left-aligned columns separated by two spaces, header first, each line
// ending in a newline; trailing spaces trimmed.
std::string render_table(const std::vector<std::string> &header,
                         const std::vector<std::vector<std::string>> &rows);

}  // namespace shard_coordinator::agent
