// The reshard policy: from a snapshot of one cluster to the complete outcome
// of one step. The background worker only executes what it decides.
//
// Plain C++17 with no PostgreSQL headers, property-tested on its own
// (test/unit/reshard_policy_test.cpp, handover_test.cpp). Postgres-facing
// code reaches it only through the noexcept bridge in core/reshard_bridge.hpp.
//
// Targets and grants (docs/design.md, "Exclusive handover"):
//  - A member's *target* is where the assignment algorithm places it: its
//    state (active, standby, pending) and shard (core/assignment.hpp), and
//    in slot mode its keys (core/slots.hpp). Targets are recomputed only in
//    a step that reshards (a membership change with the gate open).
//  - A member's *grant* is what it may work on now. In plain mode it is the
//    keys of (its target shard, the cluster's grant_count) or nothing: every
//    grant of a cluster has the same count. In slot mode it is the keys
//    whose grantee it is.
//  - When work leaves a member's grant it is *revoked*: a hold records that
//    the member may still work on it, until it acknowledges an epoch at or
//    after the revocation, leaves itself or expires, or the promise of its
//    last heartbeat before the revocation ends (the deadline, set when the
//    step is published). Revocations happen at once.
//  - Work is *granted* to a member only when no other member holds it
//    (granted or on hold). Exclusive mode uses jump hash's nesting (a grown
//    count only shrinks each shard, so members that stay keep working);
//    barrier mode (other key mappings) revokes everyone on a count change;
//    immediate mode grants targets at once and keeps no holds.
//  - Slot-set changes and switches between plain and slot mode go in two
//    phases: the keys on their way out are revoked first; new keys (and the
//    other mode's grants) come once nobody holds the old ones.
//
// Who is told: a member whose own state, shard, grant or keys change gets a
// row and a notice; a change of the count alone (plain: grant_count; slot:
// num_shards) reaches the others by one cluster notice. The epoch moves when
// anyone is told or anything stored changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/assignment.hpp"
#include "core/grants.hpp"

namespace shard_coordinator {

// A hold's deadline not known yet: the promise of the member's last
// heartbeat before the step is published (set by the worker).
constexpr std::int64_t kDeadlineAtPublication = -1;

// One member as the snapshot shows it.
struct PolicyMember {
  std::uint64_t id = 0;  // join_seq: registration order, lower is older
  bool alive = true;     // false: it left or expired; removed by a reshard
  // When it goes, its work is released at once (it left by its own leave()
  // or its promise ended); false: it stays held until its deadline.
  bool released_on_departure = true;
  MemberState state = MemberState::Pending;  // target
  std::int32_t shard = kNoShard;             // target shard, when Active
  bool granted = false;    // plain mode: holds (shard, grant_count)
  std::int64_t epoch = 0;  // the epoch of its assignment
  std::int64_t acked = 0;  // the epoch it acknowledged (0: none)
};

// A plain-mode grant revoked from a member and not released yet.
struct PolicyHold {
  std::uint64_t member = 0;
  PlainGrant grant;
  std::int64_t epoch = 0;     // the epoch that revoked it
  std::int64_t deadline = 0;  // monotonic; kDeadlineAtPublication
};

// One slot key.
struct PolicyKey {
  std::int32_t key = 0;
  std::uint64_t target = 0;   // member id, or 0: nobody
  std::uint64_t grantee = 0;  // may work on it now (0: nobody)
  std::uint64_t holder = 0;   // revoked from, not released yet (0: nobody)
  std::int64_t hold_epoch = 0;
  std::int64_t hold_deadline = 0;  // monotonic; kDeadlineAtPublication
  std::int64_t grant_epoch = 0;    // when its grantee got it (fence)
};

// One cluster as the snapshot shows it.
struct PolicyCluster {
  HandoverMode mode = HandoverMode::Exclusive;
  std::int64_t epoch = 0;
  std::int32_t num_shards = 0;   // active targets
  std::int32_t grant_count = 0;  // plain mode: the count of every grant
  std::int32_t max_shards = 0;   // <= 0: no cap
  bool reshard = false;          // recompute the targets
  bool grants_allowed = true;    // false while grants are held (failover)
  std::int64_t now = 0;          // monotonic
  // The slot keys in place, ascending (also keys on their way out).
  std::vector<PolicyKey> keys;
  // configure() asked for this key set (ascending; empty: leave slot mode).
  bool keys_pending = false;
  std::vector<std::int32_t> next_keys;
  std::vector<PolicyMember> members;
  std::vector<PolicyHold> holds;
};

enum class RowAction : std::uint8_t { None, Write, Delete };

struct MemberDecision {
  MemberState state = MemberState::Pending;  // target
  std::int32_t shard = kNoShard;             // target
  bool granted = false;                      // plain mode
  bool removed = false;
  // Slot mode: its granted keys, and its target keys (ascending).
  std::vector<std::int32_t> slots;
  std::vector<std::int32_t> target_slots;
  // Its own state, shard, grant or keys changed: a notice of its own.
  bool changed = false;
  RowAction row = RowAction::None;  // its stored row
  bool notice = false;              // a notice of its own
  std::int64_t epoch = 0;           // the epoch of its assignment after
  std::int64_t hold_epoch = 0;      // its oldest hold's epoch (0: none)
};

struct ReshardDecision {
  bool epoch_moves = false;
  std::int64_t epoch = 0;  // after: the old one + 1 if it moves
  std::int32_t num_shards = 0;
  std::int32_t grant_count = 0;
  // For the members without a notice of their own: the count they see
  // (plain: grant_count; slot mode: num_shards) changed.
  bool cluster_notice = false;
  std::vector<PolicyKey> keys;
  bool keys_pending = false;
  std::vector<std::int32_t> next_keys;
  std::vector<PolicyHold> holds;
  std::vector<MemberDecision> members;  // same order as the input
  // Something is held or withheld from a live member: a handover is going
  // on (the gate waits for its end).
  bool handover_pending = false;
  // Stored state changed (rows, holds, keys, counts): store it.
  bool store = false;
};

// Throws nothing but std::bad_alloc.
ReshardDecision decide_reshard(const PolicyCluster &cluster);

// The invariants of a decision (the safety of a step):
//  - targets: the active targets' shards are exactly 0 .. num_shards-1, one
//    member each; in slot mode every key in the set has an active target
//    (or none while nobody is active), the counts differing by at most one;
//  - exclusivity: no key is granted to a member while another member holds
//    it (granted or on hold); plain grants are pairwise disjoint.
// Returns an empty string, or what is wrong.
const char *decision_problem(const ReshardDecision &decision,
                             const PolicyCluster &cluster);

}  // namespace shard_coordinator
