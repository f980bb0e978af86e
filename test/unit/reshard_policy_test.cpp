// The reshard policy: from a snapshot of one cluster to the complete
// outcome (core/reshard_policy.hpp): who is told, rows, epochs, targets.
// Examples, then a randomized property test over sequences of joins,
// leaves, expiries, max_shards changes and slot-set changes (including
// entering and leaving slot mode), in immediate mode (grants are targets)
// and in exclusive mode (targets; grants follow in test/unit/handover_test).
#include "core/reshard_policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/slots.hpp"

namespace shard_coordinator {
namespace {

PolicyMember member(std::uint64_t id, MemberState state, std::int32_t shard,
                    std::int64_t epoch, bool alive = true) {
  PolicyMember m;
  m.id = id;
  m.state = state;
  m.shard = shard;
  m.epoch = epoch;
  m.alive = alive;
  m.granted = state == MemberState::Active;
  return m;
}

// A cluster in immediate mode, plain or with these keys and owners.
PolicyCluster cluster(std::int64_t epoch, std::int32_t num_shards) {
  PolicyCluster c;
  c.mode = HandoverMode::Immediate;
  c.epoch = epoch;
  c.num_shards = num_shards;
  c.grant_count = num_shards;
  c.reshard = true;
  return c;
}

std::vector<PolicyKey> keys_owned(const std::vector<std::int32_t> &keys,
                                  const std::vector<std::uint64_t> &owners) {
  std::vector<PolicyKey> out;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    PolicyKey key;
    key.key = keys[k];
    key.target = owners[k];
    key.grantee = owners[k];
    out.push_back(key);
  }
  return out;
}

// In slot mode grants are keys: no member holds a plain grant.
void slot_mode_grants(PolicyCluster *c) {
  if (c->keys.empty()) return;
  for (PolicyMember &m : c->members) m.granted = false;
}

bool valid(const ReshardDecision &d, const PolicyCluster &c) {
  return std::string(decision_problem(d, c)).empty();
}

constexpr MemberState kActive = MemberState::Active;
constexpr MemberState kPending = MemberState::Pending;
constexpr MemberState kStandby = MemberState::Standby;

TEST(ReshardPolicy, JoinInPlainModeTellsTheNewcomerAndTheClusterOnly) {
  PolicyCluster c = cluster(5, 2);
  c.members = {member(1, kActive, 0, 3), member(2, kActive, 1, 5),
               member(3, kPending, kNoShard, 0)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_TRUE(valid(d, c));
  EXPECT_TRUE(d.epoch_moves);
  EXPECT_EQ(d.epoch, 6);
  EXPECT_EQ(d.num_shards, 3);
  EXPECT_TRUE(d.cluster_notice);
  EXPECT_FALSE(d.members[0].notice);
  EXPECT_EQ(d.members[0].row, RowAction::None);
  EXPECT_EQ(d.members[0].epoch, 6);  // covered by the cluster notice
  EXPECT_FALSE(d.members[1].notice);
  EXPECT_TRUE(d.members[2].notice);
  EXPECT_EQ(d.members[2].row, RowAction::Write);
  EXPECT_EQ(d.members[2].shard, 2);
}

TEST(ReshardPolicy, RemovingAPendingMemberChangesNothing) {
  PolicyCluster c = cluster(4, 1);
  c.members = {member(1, kActive, 0, 2),
               member(2, kPending, kNoShard, 0, /*alive=*/false)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_TRUE(valid(d, c));
  EXPECT_FALSE(d.epoch_moves);
  EXPECT_EQ(d.epoch, 4);
  EXPECT_TRUE(d.members[1].removed);
  EXPECT_EQ(d.members[1].row, RowAction::None);
  EXPECT_FALSE(d.members[1].notice);
}

TEST(ReshardPolicy, RemovingAnAssignedMemberDeletesItsRowAndTellsIt) {
  PolicyCluster c = cluster(4, 2);
  c.members = {member(1, kActive, 0, 2), member(2, kActive, 1, 3, false)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_TRUE(valid(d, c));
  EXPECT_TRUE(d.epoch_moves);
  EXPECT_EQ(d.members[1].row, RowAction::Delete);
  EXPECT_TRUE(d.members[1].notice);
  EXPECT_FALSE(d.members[0].notice);
  EXPECT_TRUE(d.cluster_notice);
}

// Slot mode: keys {1,2,3,4}, a holds {1,2}, b {3,4}; c joins. b gives up 4
// to c; a keeps its state, shard and keys, so it gets no notice of its own,
// only the cluster notice of the new num_shards.
TEST(ReshardPolicy, SlotModeTellsOnlyMembersWhoseKeysChanged) {
  PolicyCluster c = cluster(2, 2);
  c.keys = keys_owned({1, 2, 3, 4}, {1, 1, 2, 2});
  c.members = {member(1, kActive, 0, 1), member(2, kActive, 1, 2),
               member(3, kPending, kNoShard, 0)};
  slot_mode_grants(&c);
  ReshardDecision d = decide_reshard(c);
  ASSERT_TRUE(valid(d, c));
  EXPECT_EQ(d.num_shards, 3);
  EXPECT_TRUE(d.cluster_notice);
  EXPECT_FALSE(d.members[0].changed);
  EXPECT_FALSE(d.members[0].notice);
  EXPECT_EQ(d.members[0].slots, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(d.members[0].epoch, 3);
  EXPECT_TRUE(d.members[1].notice);
  EXPECT_EQ(d.members[1].slots, (std::vector<std::int32_t>{3}));
  EXPECT_TRUE(d.members[2].notice);
  EXPECT_EQ(d.members[2].slots, (std::vector<std::int32_t>{4}));
}

TEST(ReshardPolicy, EnteringSlotModeTellsEveryActiveMember) {
  PolicyCluster c = cluster(2, 2);
  c.keys_pending = true;
  c.next_keys = {10, 20};
  c.members = {member(1, kActive, 0, 1), member(2, kActive, 1, 2)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_TRUE(valid(d, c));
  EXPECT_TRUE(d.members[0].notice);
  EXPECT_TRUE(d.members[1].notice);
  EXPECT_FALSE(d.cluster_notice);  // num_shards stays 2
}

TEST(ReshardPolicy, LeavingSlotModeTellsEveryActiveMember) {
  PolicyCluster c = cluster(2, 2);
  c.keys = keys_owned({10, 20}, {1, 2});
  c.keys_pending = true;
  c.members = {member(1, kActive, 0, 1), member(2, kActive, 1, 2)};
  slot_mode_grants(&c);
  ReshardDecision d = decide_reshard(c);
  ASSERT_TRUE(valid(d, c));
  EXPECT_TRUE(d.members[0].notice);
  EXPECT_TRUE(d.members[1].notice);
  EXPECT_TRUE(d.members[0].slots.empty());
}

TEST(ReshardPolicy, NothingDueMovesNothing) {
  PolicyCluster c = cluster(7, 2);
  c.members = {member(1, kActive, 0, 3), member(2, kActive, 1, 7)};
  ReshardDecision d = decide_reshard(c);
  EXPECT_FALSE(d.epoch_moves);
  EXPECT_EQ(d.epoch, 7);
  EXPECT_FALSE(d.cluster_notice);
  EXPECT_EQ(d.members[0].epoch, 3);
}

// ---- Randomized property test ----------------------------------------------

struct SimMember {
  std::uint64_t id;
  MemberState state;
  std::int32_t shard;
  std::int64_t epoch;
};

struct Sim {
  std::int64_t epoch = 0;
  std::int32_t num_shards = 0;
  std::int32_t max_shards = 0;
  std::vector<std::int32_t> keys;  // published, ascending
  std::vector<std::uint64_t> owners;
  std::vector<SimMember> members;
  std::uint64_t next_id = 1;
};

std::vector<std::int32_t> keys_of(const std::vector<std::int32_t> &keys,
                                  const std::vector<std::uint64_t> &owners,
                                  std::uint64_t id) {
  std::vector<std::int32_t> out;
  for (std::size_t k = 0; k < keys.size(); ++k)
    if (owners[k] == id) out.push_back(keys[k]);
  return out;
}

TEST(ReshardPolicy, RandomSequencesKeepEveryRule) {
  std::mt19937_64 rng(0x5eed7011ULL);
  auto uniform = [&rng](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  int decisions = 0;
  for (int sequence = 0; sequence < 300; ++sequence) {
    Sim sim;
    for (int step = 0; step < 40; ++step) {
      SCOPED_TRACE("sequence " + std::to_string(sequence) + " step " +
                   std::to_string(step));
      // Events of this step.
      PolicyCluster c = cluster(sim.epoch, sim.num_shards);
      const int event = uniform(0, 9);
      if (event == 0) sim.max_shards = uniform(0, 6);
      c.max_shards = sim.max_shards;
      c.keys = keys_owned(sim.keys, sim.owners);
      std::vector<std::int32_t> new_keys = sim.keys;
      if (event == 1) {
        // A new key set: sometimes none (plain mode), else 1..12 keys.
        std::set<std::int32_t> keys;
        if (uniform(0, 3) > 0) {
          const int n = uniform(1, 12);
          while (static_cast<int>(keys.size()) < n) keys.insert(uniform(0, 20));
        }
        new_keys.assign(keys.begin(), keys.end());
        c.keys_pending = true;
        c.next_keys = new_keys;
      }
      for (const SimMember &m : sim.members)
        c.members.push_back(member(m.id, m.state, m.shard, m.epoch,
                                   uniform(0, 5) > 0 || event < 2));
      const int joins = event >= 2 && event <= 6 ? uniform(0, 3) : 0;
      for (int j = 0; j < joins; ++j)
        c.members.push_back(
            member(sim.next_id++, kPending, kNoShard, sim.epoch));

      slot_mode_grants(&c);
      const ReshardDecision d = decide_reshard(c);
      ++decisions;
      ASSERT_TRUE(valid(d, c));
      ASSERT_EQ(d.members.size(), c.members.size());

      // Epochs never go back; the epoch moves exactly when somebody is told.
      const bool count_changed = d.num_shards != c.num_shards;
      bool any_notice = false;
      for (const MemberDecision &m : d.members) any_notice |= m.notice;
      EXPECT_GE(d.epoch, c.epoch);
      EXPECT_EQ(d.epoch_moves, any_notice || count_changed);
      EXPECT_EQ(d.epoch, c.epoch + (d.epoch_moves ? 1 : 0));
      EXPECT_EQ(d.cluster_notice, d.epoch_moves && count_changed);

      const bool slot_before = !sim.keys.empty();
      const bool slot_after = !new_keys.empty();
      for (std::size_t i = 0; i < c.members.size(); ++i) {
        const PolicyMember &before = c.members[i];
        const MemberDecision &m = d.members[i];
        EXPECT_GE(m.epoch, before.epoch);
        if (m.removed) {
          EXPECT_FALSE(before.alive);
          const bool stored = before.state != kPending;
          EXPECT_EQ(m.row, stored ? RowAction::Delete : RowAction::None);
          EXPECT_EQ(m.notice, stored);
          continue;
        }
        EXPECT_TRUE(before.alive);
        // Exactly the members whose own assignment changed get a row and a
        // notice.
        const bool active = m.state == kActive;
        const std::vector<std::int32_t> old_keys =
            slot_before ? keys_of(sim.keys, sim.owners, before.id)
                        : std::vector<std::int32_t>{};
        const bool own_change =
            m.state != before.state || (active && m.shard != before.shard) ||
            (active && slot_before != slot_after) ||
            (active && slot_after && before.state == kActive &&
             m.slots != old_keys);
        EXPECT_EQ(m.changed, own_change);
        EXPECT_EQ(m.notice, own_change);
        EXPECT_EQ(m.row, own_change ? RowAction::Write : RowAction::None);
        // Everybody else is covered by the cluster notice when num_shards
        // changed, and keeps its epoch otherwise.
        if (own_change || d.cluster_notice)
          EXPECT_EQ(m.epoch, d.epoch);
        else
          EXPECT_EQ(m.epoch, before.epoch);
        // Stickiness: a live active member keeps a shard still in range.
        if (before.state == kActive && before.shard < d.num_shards) {
          EXPECT_EQ(m.state, kActive);
          EXPECT_EQ(m.shard, before.shard);
        }
        // Minimal movement of keys: an active member keeps what it had (of
        // the keys that remain) up to the smaller quota.
        if (slot_before && slot_after && before.state == kActive && active) {
          std::size_t kept = 0;
          std::size_t remaining = 0;
          for (std::int32_t key : old_keys) {
            if (!std::binary_search(new_keys.begin(), new_keys.end(), key))
              continue;
            ++remaining;
            if (std::binary_search(m.slots.begin(), m.slots.end(), key)) ++kept;
          }
          const std::size_t quota =
              new_keys.size() / static_cast<std::size_t>(d.num_shards);
          EXPECT_GE(kept, std::min(remaining, quota));
        }
      }

      // Apply the decision, as the worker publishes it.
      std::vector<SimMember> next;
      for (std::size_t i = 0; i < c.members.size(); ++i) {
        const MemberDecision &m = d.members[i];
        if (m.removed) continue;
        next.push_back(SimMember{c.members[i].id, m.state, m.shard, m.epoch});
      }
      sim.members = next;
      sim.epoch = d.epoch;
      sim.num_shards = d.num_shards;
      sim.keys.clear();
      sim.owners.clear();
      for (const PolicyKey &k : d.keys) {
        sim.keys.push_back(k.key);
        sim.owners.push_back(k.grantee);
      }
      EXPECT_EQ(sim.keys, new_keys);
    }
  }
  EXPECT_EQ(decisions, 300 * 40);
}

}  // namespace
}  // namespace shard_coordinator

namespace shard_coordinator {
namespace {

// The pairwise reference of the exclusivity check of plain grants.
bool plain_grants_disjoint_pairwise(const ReshardDecision &d,
                                    const PolicyCluster &c) {
  std::vector<std::pair<std::uint64_t, PlainGrant>> grants;
  for (std::size_t i = 0; i < d.members.size(); ++i)
    if (d.members[i].granted)
      grants.emplace_back(c.members[i].id,
                          PlainGrant{d.members[i].shard, d.grant_count});
  for (std::size_t a = 0; a < grants.size(); ++a) {
    for (std::size_t b = a + 1; b < grants.size(); ++b)
      if (!grants_disjoint(grants[a].second, grants[b].second, c.mode))
        return false;
    for (const PolicyHold &h : d.holds)
      if (h.member != grants[a].first &&
          !grants_disjoint(grants[a].second, h.grant, c.mode))
        return false;
  }
  return true;
}

// decision_problem() checks plain grants in O(n log n): it must agree with
// the pairwise check on every decision (random targets, grant counts that
// may lie below the shards, holds at other counts, every mode).
TEST(DecisionProblem, PlainGrantCheckAgreesWithPairwise) {
  std::mt19937_64 rng(20261207);
  int disagreements = 0;
  int problems = 0;
  for (int round = 0; round < 20000; ++round) {
    const int k = 1 + static_cast<int>(rng() % 8);
    PolicyCluster c;
    c.mode = static_cast<HandoverMode>(rng() % 3);
    ReshardDecision d;
    d.num_shards = k;
    d.grant_count = 1 + static_cast<std::int32_t>(rng() % (k + 2));
    for (int i = 0; i < k; ++i) {
      PolicyMember m;
      m.id = static_cast<std::uint64_t>(i + 1);
      c.members.push_back(m);
      MemberDecision md;
      md.state = MemberState::Active;
      md.shard = static_cast<std::int32_t>((i + round) % k);
      md.granted = rng() % 3 != 0;
      d.members.push_back(md);
    }
    const int nholds = static_cast<int>(rng() % 4);
    for (int h = 0; h < nholds; ++h) {
      PolicyHold hold;
      hold.member = 1 + rng() % static_cast<std::uint64_t>(k + 1);
      hold.grant.count = static_cast<std::int32_t>(rng() % (k + 3));
      hold.grant.shard = static_cast<std::int32_t>(
          rng() % static_cast<std::uint64_t>(hold.grant.count + 2));
      d.holds.push_back(hold);
    }
    const bool reference = plain_grants_disjoint_pairwise(d, c);
    const std::string problem = decision_problem(d, c);
    const bool grant_problem = problem.find("plain grant") != std::string::npos;
    if (!reference) ++problems;
    if (grant_problem == reference) ++disagreements;
    EXPECT_EQ(grant_problem, !reference)
        << "round " << round << ": " << problem;
    if (disagreements > 5) break;
  }
  EXPECT_GT(problems, 1000);  // both outcomes are exercised
}

}  // namespace
}  // namespace shard_coordinator
