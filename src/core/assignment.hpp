// The assignment algorithm: who holds which shard after a reshard.
//
// Plain C++17 with no PostgreSQL headers, so it is unit-tested on its own
// (test/unit/assignment_test.cpp) and used unchanged by the background worker.
//
// Rules (DESIGN.md, "Reshard rules"):
//  - num_shards = number of live members, capped by max_shards;
//  - sticky: a live active member keeps its shard while it is < num_shards;
//  - the free shards, lowest first, go to the other live members in join
//    order (displaced actives, standbys, pending newcomers alike);
//  - live members left over are standby; dead members are removed;
//  - so the active shards are exactly 0 .. num_shards-1, one member each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shard_coordinator {

enum class MemberState : std::uint8_t { Pending = 0, Active = 1, Standby = 2 };

constexpr std::int32_t kNoShard = -1;

// One member as the worker sees it when it decides to reshard.
struct MemberView {
  std::uint64_t join_seq = 0;  // registration order; lower is older
  MemberState state = MemberState::Pending;
  std::int32_t shard = kNoShard;  // held shard if Active
  bool alive = true;              // false: expired or left, to be removed
};

// What becomes of that member.
struct MemberOutcome {
  MemberState state = MemberState::Pending;
  std::int32_t shard = kNoShard;
  bool removed = false;  // the member is dropped from the cluster
  bool changed = false;  // its (state, shard, num_shards) differs: notify it
};

struct ReshardPlan {
  std::int32_t num_shards = 0;
  std::vector<MemberOutcome> outcomes;  // same order as the input
  std::size_t changed = 0;              // outcomes with changed == true
  // Removed members that held an assignment (not merely pending): their
  // removal changes the stored state even when nobody else moves.
  std::size_t removed_assigned = 0;
  bool any_change() const { return changed > 0 || removed_assigned > 0; }
};

// max_shards <= 0 means no cap. old_num_shards is the cluster's current count:
// a live member whose num_shards would change counts as changed even if it
// keeps its shard. Input need not be valid: duplicate or out-of-range shards
// are treated as displaced, so the output always satisfies the invariant.
ReshardPlan plan_reshard(const std::vector<MemberView> &members,
                         std::int32_t old_num_shards, std::int32_t max_shards);

// Checks the safety invariant over a finished plan: active shards are exactly
// 0 .. num_shards-1, each once; non-removed, non-active members are standby.
bool plan_is_valid(const ReshardPlan &plan);

}  // namespace shard_coordinator
