// Parsing what the server sends: the JSON payload of an assignment
// notification, and the heartbeat row (which the registrar's query returns as
// one JSON object, so both go through the same checks).
//
// Member notification (on the member's channel): {"cluster","member","shard"
// (int|null),"num_shards","epoch","state" (active|standby|removed), optional
// "slots" (int array)}. "active" with a null shard: placed, but still waiting
// for its grant (plain mode: the previous holder has not released it yet).
// Cluster notification (on the cluster's channel, when a reshard changed
// num_shards): {"cluster","num_shards","epoch"}.
// Unknown keys are ignored, so the server may add keys without breaking
// clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

struct Notice {
  std::string cluster;
  std::string member;
  Assignment assignment;
  // The member's slot list did not fit in a NOTIFY payload: the notice says
  // only that the assignment changed; the next heartbeat row has it all.
  bool slots_omitted = false;
};

// At `epoch` the cluster has `num_shards` shards; members without a member
// notice of that epoch keep their state, shard and slots (see tracker.hpp).
struct ClusterNotice {
  std::string cluster;
  std::int32_t num_shards = 0;
  std::int64_t epoch = 0;
};

struct HeartbeatRow {
  Assignment assignment;
  std::chrono::nanoseconds heartbeat_interval{};
  // The row's promise left, measured by the server after the heartbeat was
  // stamped (lease_remaining; see lease.hpp).
  std::chrono::nanoseconds lease_remaining{};
  // Revoked work the server waits for: its own deadline for the release
  // (release_within); nullopt: nothing to release.
  std::optional<std::chrono::nanoseconds> release_within;
  // The epoch the server counts as acknowledged (acknowledged_epoch);
  // nullopt: none.
  std::optional<std::int64_t> acknowledged_epoch;
};

// On failure returns nullopt and sets *error to a one-line reason.
std::optional<Notice> parse_notice(std::string_view payload,
                                   std::string *error);

// A payload with a "member" key is refused: it is a member notice, and taking
// it for a count-only change would drop its state and shard.
std::optional<ClusterNotice> parse_cluster_notice(std::string_view payload,
                                                  std::string *error);

// The row of
//   SELECT to_jsonb(h) || jsonb_build_object(
//            'sc_interval_s', extract(epoch FROM h.heartbeat_interval),
//            'sc_lease_s', extract(epoch FROM h.lease_remaining),
//            'sc_release_s', extract(epoch FROM h.release_within))
//     FROM shard_coordinator.heartbeat($1, $2, $3, $4) h
// (the heartbeat query of protocol.cpp): the columns of
// shard_coordinator.assignment (extension 1.1) and the intervals in seconds.
std::optional<HeartbeatRow> parse_heartbeat_row(std::string_view json,
                                                std::string *error);

}  // namespace shard_coordinator::client
