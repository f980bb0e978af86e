// Parsing what the server sends: the JSON payload of an assignment
// notification, and the heartbeat row (which the registrar's query returns as
// one JSON object, so both go through the same checks).
//
// Member notification (on the member's channel): {"cluster","member","shard"
// (int|null),"num_shards","epoch","state" (active|standby|removed), optional
// "slots" (int array)}.
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
  // expires_at minus the server's clock_timestamp() after the heartbeat.
  std::chrono::nanoseconds lease_remaining{};
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
//            'sc_lease_s', extract(epoch FROM h.expires_at -
//            clock_timestamp()))
//     FROM shard_coordinator.heartbeat($1, $2) h
// (the heartbeat query of protocol.cpp).
std::optional<HeartbeatRow> parse_heartbeat_row(std::string_view json,
                                                std::string *error);

}  // namespace shard_coordinator::client
