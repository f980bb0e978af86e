// The JSON payload of an assignment-change notification. Plain C++ (uses
// nlohmann-json), no PostgreSQL headers; unit-tested on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/assignment.hpp"

namespace shard_coordinator {

// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
constexpr std::size_t kNotifyPayloadMax = 7999;

struct AssignmentNotice {
  std::string cluster;
  std::string member;
  std::int32_t shard = kNoShard;  // kNoShard -> JSON null
  std::int32_t num_shards = 0;
  std::int64_t epoch = 0;
  const char *state = "pending";  // "active", "standby" or "removed"
  bool has_slots = false;         // slot mode: add a "slots" key
  std::vector<std::int32_t> slots;
  bool slots_omitted = false;  // add "slots_omitted":true
};

// The payload of a notice; when its slot list makes it longer than
// kNotifyPayloadMax, the list is left out and "slots_omitted":true added
// (the member then reads it from its next heartbeat row).
std::string notice_payload(const AssignmentNotice &notice);

// {"cluster":..,"member":..,"shard":..,"num_shards":..,"epoch":..,"state":..}
// plus "slots":[..] in slot mode.
// Invalid UTF-8 in names is replaced, never thrown on.
std::string notice_to_json(const AssignmentNotice &notice);

// The notice on the cluster channel (cluster_channel_name()) of a reshard
// that changed num_shards: {"cluster":..,"num_shards":..,"epoch":..}. It
// stands for a member notice to every member whose state, shard and slots
// stayed the same; at most 63 + 60 bytes, so it always fits.
std::string cluster_notice_to_json(const std::string &cluster,
                                   std::int32_t num_shards, std::int64_t epoch);

const char *state_name(MemberState state) noexcept;

// For Postgres-facing code (noexcept, plain arguments): a member notice's
// payload written into buf (room for kNotifyPayloadMax + 1 bytes, NUL
// terminated). slots may be null (no "slots" key). Returns false if it could
// not be built (out of memory) or did not fit.
bool member_notice_into(const char *cluster, const char *member,
                        std::int32_t shard, std::int32_t num_shards,
                        std::int64_t epoch, const char *state,
                        const std::int32_t *slots, std::int32_t nslots,
                        char *buf) noexcept;
// The same for a cluster notice.
bool cluster_notice_into(const char *cluster, std::int32_t num_shards,
                         std::int64_t epoch, char *buf) noexcept;

}  // namespace shard_coordinator
