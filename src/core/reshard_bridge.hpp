// The reshard policy (core/reshard_policy.hpp) for Postgres-facing code:
// plain arrays in and out, and noexcept, so that no C++ exception reaches a
// PostgreSQL frame and the caller owns all memory (palloc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/reshard_policy.hpp"

namespace shard_coordinator {

struct BridgeInput {
  std::int64_t epoch;
  std::int32_t num_shards;
  std::int32_t max_shards;  // <= 0: no cap
  std::int32_t old_nkeys;   // 0: plain mode before
  const std::int32_t *old_keys;
  const std::uint64_t *old_owners;
  std::int32_t new_nkeys;  // 0: plain mode after
  const std::int32_t *new_keys;
  std::int32_t nmembers;
  const PolicyMember *members;
};

struct BridgeMemberResult {
  MemberState state;
  std::int32_t shard;
  bool removed;
  bool changed;
  RowAction row;
  bool notice;
  std::int64_t epoch;
  // Its keys: BridgeOutput::slots[slots_offset .. slots_offset + nslots).
  std::int32_t slots_offset;
  std::int32_t nslots;
};

// The caller allocates members[nmembers], new_owners[new_nkeys] and
// slots[new_nkeys].
struct BridgeOutput {
  bool epoch_moves;
  std::int64_t epoch;
  std::int32_t num_shards;
  bool cluster_notice;
  BridgeMemberResult *members;
  std::uint64_t *new_owners;
  std::int32_t *slots;
};

// Runs decide_reshard() and checks its result with decision_is_valid().
// Returns false, with a one-line reason in `error`, if it could not (out of
// memory, or an invalid decision, which would be a bug).
bool decide_reshard_into(const BridgeInput &input, BridgeOutput *output,
                         char *error, std::size_t error_len) noexcept;

}  // namespace shard_coordinator
