// The reshard policy (core/reshard_policy.hpp) for Postgres-facing code:
// plain arrays in and out, and noexcept, so that no C++ exception reaches a
// PostgreSQL frame and the caller owns all memory (palloc). PolicyMember,
// PolicyHold and PolicyKey are plain structs, used as they are.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/reshard_policy.hpp"

namespace shard_coordinator {

struct BridgeInput {
  HandoverMode mode;
  std::int64_t epoch;
  std::int32_t num_shards;
  std::int32_t grant_count;
  std::int32_t max_shards;  // <= 0: no cap
  bool reshard;
  bool grants_allowed;
  std::int64_t now;
  std::int32_t nkeys;  // the slot keys in place
  const PolicyKey *keys;
  bool keys_pending;
  std::int32_t nnext;  // configure's key set
  const std::int32_t *next_keys;
  std::int32_t nmembers;
  const PolicyMember *members;
  std::int32_t nholds;
  const PolicyHold *holds;
};

struct BridgeMemberResult {
  MemberState state;
  std::int32_t shard;
  bool granted;
  bool removed;
  bool changed;
  RowAction row;
  bool notice;
  std::int64_t epoch;
  std::int64_t hold_epoch;
  // Its granted keys: BridgeOutput::slots[slots_offset .. + nslots); its
  // target keys: BridgeOutput::target_slots[targets_offset .. + ntargets).
  std::int32_t slots_offset;
  std::int32_t nslots;
  std::int32_t targets_offset;
  std::int32_t ntargets;
};

// Room the caller allocates for the output, given the input.
struct BridgeRoom {
  std::int32_t keys;  // for keys, slots and target_slots
  std::int32_t holds;
};
BridgeRoom bridge_room(const BridgeInput &input) noexcept;

struct BridgeOutput {
  bool epoch_moves;
  std::int64_t epoch;
  std::int32_t num_shards;
  std::int32_t grant_count;
  bool cluster_notice;
  bool handover_pending;
  bool store;
  BridgeMemberResult *members;  // nmembers
  std::int32_t nkeys;
  PolicyKey *keys;  // room.keys
  bool keys_pending;
  std::int32_t nnext;
  std::int32_t *next_keys;  // input.nnext
  std::int32_t nholds;
  PolicyHold *holds;           // room.holds
  std::int32_t *slots;         // room.keys
  std::int32_t *target_slots;  // room.keys
};

// Runs decide_reshard() and checks its result with decision_problem().
// Returns false, with a one-line reason in `error`, if it could not (out of
// memory, no room, or an invalid decision, which would be a bug).
bool decide_reshard_into(const BridgeInput &input, BridgeOutput *output,
                         char *error, std::size_t error_len) noexcept;

}  // namespace shard_coordinator
