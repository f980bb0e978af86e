// The reshard policy: from a snapshot of one cluster to the complete outcome
// of a reshard. The background worker only executes what it decides.
//
// Plain C++17 with no PostgreSQL headers, property-tested on its own
// (test/unit/reshard_policy_test.cpp). Postgres-facing code reaches it only
// through the noexcept bridge in core/reshard_bridge.hpp.
//
// What it decides (docs/design.md, "Reshard rules"):
//  - each member's state, shard and (in slot mode) keys, by the assignment
//    algorithm (core/assignment.hpp) and the slot algorithm
//    (core/slots.hpp): safety, stickiness, minimal movement;
//  - which members changed: their own state, shard or keys differ (entering
//    or leaving slot mode changes every active member). Exactly those get a
//    row written and a notice; a removed member that had a row gets its row
//    deleted and a "removed" notice;
//  - whether the epoch moves: when any member changed or was removed, or
//    num_shards changed;
//  - the cluster notice: when num_shards changed, one notice on the
//    cluster's channel stands for a notice to every member without one of
//    its own; their epoch becomes the new epoch too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/assignment.hpp"

namespace shard_coordinator {

// One member as the snapshot shows it.
struct PolicyMember {
  std::uint64_t id = 0;  // join_seq: registration order, lower is older
  MemberState state = MemberState::Pending;
  std::int32_t shard = kNoShard;  // set only when Active
  std::int64_t epoch = 0;         // the epoch of its assignment
  bool alive = true;              // false: expired or left, to be removed
};

// One cluster as the snapshot shows it.
struct PolicyCluster {
  std::int64_t epoch = 0;
  std::int32_t num_shards = 0;
  std::int32_t max_shards = 0;  // <= 0: no cap
  // Slot mode: the published keys (ascending) and each one's owner (a
  // member id, or kNoOwner); empty in plain mode.
  std::vector<std::int32_t> old_keys;
  std::vector<std::uint64_t> old_owners;
  // The key set after this reshard (ascending): the published one, or the
  // one configure() asked for; empty: plain mode after it.
  std::vector<std::int32_t> new_keys;
  std::vector<PolicyMember> members;
};

enum class RowAction : std::uint8_t { None, Write, Delete };

struct MemberDecision {
  MemberState state = MemberState::Pending;
  std::int32_t shard = kNoShard;
  bool removed = false;
  // Its keys after (slot mode, active), ascending.
  std::vector<std::int32_t> slots;
  // Its own state, shard or keys changed: it gets a row and a notice.
  bool changed = false;
  RowAction row = RowAction::None;
  bool notice = false;  // a notice of its own ("removed" if removed)
  // The epoch of its assignment after this reshard: the new epoch if it
  // changed or the cluster notice covers it, else as before.
  std::int64_t epoch = 0;
};

struct ReshardDecision {
  bool epoch_moves = false;
  std::int64_t epoch = 0;  // after: the old one + 1 if it moves
  std::int32_t num_shards = 0;
  bool cluster_notice = false;
  // Slot mode after: the owner of each new key.
  std::vector<std::uint64_t> new_owners;
  std::vector<MemberDecision> members;  // same order as the input
};

// Throws nothing but std::bad_alloc.
ReshardDecision decide_reshard(const PolicyCluster &cluster);

// The safety invariant of a decision: the active shards are exactly
// 0 .. num_shards-1, one member each; in slot mode every key has exactly one
// owner, an active member, and the counts differ by at most one.
bool decision_is_valid(const ReshardDecision &decision,
                       const PolicyCluster &cluster);

}  // namespace shard_coordinator
