// What the agent writes for others: the child's environment, watch's JSON
// lines, status's tables. Pure functions, unit-tested.
#pragma once

#include <string>
#include <vector>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

// `base` (KEY=VALUE strings, e.g. from environ) without any inherited
// SHARD_* variable of ours, plus:
//   SHARD_INDEX, SHARD_COUNT, SHARD_EPOCH, SHARD_CLUSTER, SHARD_MEMBER,
//   SHARD_SLOTS (comma-separated, only when the server sends slots).
std::vector<std::string> child_environment(const char *const *base,
                                           const client::Assignment &a,
                                           const std::string &cluster,
                                           const std::string &member);

// Whether a running child can go on under `next`: same shard, shard count,
// epoch and slots. The epoch counts because the child may pass SHARD_EPOCH to
// shard_coordinator.fence(), which refuses an epoch older than the member's
// (the server bumps a member's epoch only when its shard or count changes,
// so this restarts nothing extra).
bool same_work(const client::Assignment &running,
               const client::Assignment &next);

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
