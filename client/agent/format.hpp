// What the agent writes for others: the child's environment, watch's JSON
// lines, status's tables. Pure functions, unit-tested.
#pragma once

#include <chrono>
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

// watch's lines, one JSON object each, no newline. Every line has "event",
// "cluster" and "member":
//   {"event":"assignment",..,"shard","num_shards","epoch","state"[,"slots"]}
//     what the server says of the member (state lost: the lease ran out);
//   {"event":"granted",..,"epoch","shard","num_shards"[,"slots"]}
//     the grant gained work (the whole grant; epoch: the grant's);
//   {"event":"revoked",..,"epoch","reason","revoked":{"shard","num_shards"}
//     or {"slots":[..]},"grant":{..},"deadline_ms","deadline"}
//     work to stop within deadline_ms (deadline: the same moment, UTC, as
//     the local wall clock tells it), then acknowledge epoch;
//   {"event":"acknowledged",..,"epoch"}
//     the server counts the epoch as acknowledged.
std::string assignment_json(const std::string &cluster,
                            const std::string &member,
                            const client::Assignment &a);
std::string grant_json(const std::string &cluster, const std::string &member,
                       const client::Grant &grant);
std::string revocation_json(const std::string &cluster,
                            const std::string &member,
                            const client::Revocation &revocation,
                            client::Clock::time_point now,
                            std::chrono::system_clock::time_point wall_now);
std::string acknowledged_json(const std::string &cluster,
                              const std::string &member, std::int64_t epoch);

// "2026-12-06T20:25:54.543Z".
std::string utc_timestamp(std::chrono::system_clock::time_point t);

// Left-aligned columns separated by two spaces, header first, each line
// ending in a newline; trailing spaces trimmed.
std::string render_table(const std::vector<std::string> &header,
                         const std::vector<std::vector<std::string>> &rows);

}  // namespace shard_coordinator::agent
