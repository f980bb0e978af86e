// Unit tests of the reshard algorithm (src/assignment.hpp).
//
// The expectations come from the rules in assignment.hpp and DESIGN.md
// ("Reshard rules", "Guarantees"), not from the implementation's output:
//  - num_shards = number of live members, capped by max_shards (<= 0: no cap);
//  - a live active member keeps its shard while it is < num_shards;
//  - the free shards, lowest first, go to the other live members in join
//    order; live members left over are standby (shard kNoShard);
//  - dead members are removed;
//  - the active shards are exactly 0 .. num_shards-1, one member each.

#include "core/assignment.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace sc = shard_coordinator;
using sc::kNoShard;
using sc::MemberOutcome;
using sc::MemberState;
using sc::MemberView;
using sc::ReshardPlan;

namespace {

MemberView Active(std::uint64_t seq, std::int32_t shard) {
  MemberView m;
  m.join_seq = seq;
  m.state = MemberState::Active;
  m.shard = shard;
  return m;
}

MemberView Standby(std::uint64_t seq) {
  MemberView m;
  m.join_seq = seq;
  m.state = MemberState::Standby;
  m.shard = kNoShard;
  return m;
}

MemberView Pending(std::uint64_t seq) {
  MemberView m;
  m.join_seq = seq;
  m.state = MemberState::Pending;
  m.shard = kNoShard;
  return m;
}

MemberView Dead(MemberView m) {
  m.alive = false;
  return m;
}

const char *StateStr(MemberState s) {
  switch (s) {
    case MemberState::Pending:
      return "Pending";
    case MemberState::Active:
      return "Active";
    case MemberState::Standby:
      return "Standby";
  }
  return "?";
}

std::string Describe(const std::vector<MemberView> &members) {
  std::ostringstream os;
  for (const MemberView &m : members) {
    os << "{seq=" << m.join_seq << " " << StateStr(m.state)
       << " shard=" << m.shard << (m.alive ? "" : " DEAD") << "} ";
  }
  return os.str();
}

std::string Describe(const ReshardPlan &plan) {
  std::ostringstream os;
  os << "num_shards=" << plan.num_shards << " changed=" << plan.changed
     << " removed_assigned=" << plan.removed_assigned << " [";
  for (const MemberOutcome &o : plan.outcomes) {
    os << "{" << StateStr(o.state) << " shard=" << o.shard
       << (o.removed ? " removed" : "") << (o.changed ? " changed" : "")
       << "} ";
  }
  os << "]";
  return os.str();
}

// Independent check of the safety invariant: the live outcomes' active shards
// are exactly 0 .. num_shards-1, each once, and every other live outcome is
// standby without a shard. Returns an empty string when it holds.
std::string CheckSafety(const ReshardPlan &plan) {
  if (plan.num_shards < 0) return "negative num_shards";
  std::vector<int> holders(static_cast<std::size_t>(plan.num_shards), 0);
  for (std::size_t i = 0; i < plan.outcomes.size(); ++i) {
    const MemberOutcome &o = plan.outcomes[i];
    if (o.removed) continue;
    if (o.state == MemberState::Active) {
      if (o.shard < 0 || o.shard >= plan.num_shards) {
        return "outcome " + std::to_string(i) + " active with shard " +
               std::to_string(o.shard) + " outside 0.." +
               std::to_string(plan.num_shards - 1);
      }
      ++holders[static_cast<std::size_t>(o.shard)];
    } else if (o.state == MemberState::Standby) {
      if (o.shard != kNoShard) {
        return "outcome " + std::to_string(i) + " standby with shard " +
               std::to_string(o.shard);
      }
    } else {
      return "outcome " + std::to_string(i) + " is live and still pending";
    }
  }
  for (std::size_t s = 0; s < holders.size(); ++s) {
    if (holders[s] != 1) {
      return "shard " + std::to_string(s) + " has " +
             std::to_string(holders[s]) + " holders";
    }
  }
  return "";
}

std::int32_t ExpectedNumShards(const std::vector<MemberView> &members,
                               std::int32_t max_shards) {
  std::int32_t live = 0;
  for (const MemberView &m : members) live += m.alive ? 1 : 0;
  if (max_shards > 0) return std::min(live, max_shards);
  return live;
}

// The full independent checker of one reshard over VALID input (actives hold
// distinct shards >= 0, join_seq distinct). Returns "" when all rules hold.
std::string CheckStep(const std::vector<MemberView> &in,
                      std::int32_t old_num_shards, std::int32_t max_shards,
                      const ReshardPlan &plan) {
  std::ostringstream err;
  if (plan.outcomes.size() != in.size()) {
    err << "outcomes.size()=" << plan.outcomes.size() << " != " << in.size();
    return err.str();
  }
  const std::int32_t num = ExpectedNumShards(in, max_shards);
  if (plan.num_shards != num) {
    err << "num_shards=" << plan.num_shards
        << ", expected min(live, cap)=" << num;
    return err.str();
  }
  std::string safety = CheckSafety(plan);
  if (!safety.empty()) return "safety: " + safety;
  if (!sc::plan_is_valid(plan)) return "plan_is_valid rejects the plan";

  std::size_t removed_assigned = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (plan.outcomes[i].removed != !in[i].alive) {
      err << "member " << i << " removed=" << plan.outcomes[i].removed
          << " but alive=" << in[i].alive;
      return err.str();
    }
    if (!in[i].alive && in[i].state != MemberState::Pending) ++removed_assigned;
  }
  if (plan.removed_assigned != removed_assigned) {
    err << "removed_assigned=" << plan.removed_assigned << ", expected "
        << removed_assigned;
    return err.str();
  }

  // Stickiness, and which live members are "retained" (keep their shard).
  std::vector<bool> retained(in.size(), false);
  std::set<std::int32_t> retained_shards;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const MemberView &m = in[i];
    if (!m.alive || m.state != MemberState::Active) continue;
    if (m.shard >= 0 && m.shard < num) {
      const MemberOutcome &o = plan.outcomes[i];
      if (o.state != MemberState::Active || o.shard != m.shard) {
        err << "stickiness: member seq=" << m.join_seq << " held shard "
            << m.shard << " < num_shards " << num << " but got "
            << StateStr(o.state) << " " << o.shard;
        return err.str();
      }
      retained[i] = true;
      retained_shards.insert(m.shard);
    }
  }

  // Minimal movement: exactly the displaced actives and the newly activated
  // members change shard.
  std::size_t moved = 0, displaced = 0, newly_active = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const MemberView &m = in[i];
    if (!m.alive) continue;
    const MemberOutcome &o = plan.outcomes[i];
    const std::int32_t old_shard =
        m.state == MemberState::Active ? m.shard : kNoShard;
    if (o.shard != old_shard) ++moved;
    if (m.state == MemberState::Active && m.shard >= num) ++displaced;
    if (m.state != MemberState::Active && o.state == MemberState::Active) {
      ++newly_active;
    }
  }
  if (moved != displaced + newly_active) {
    err << "moved=" << moved << " but displaced=" << displaced
        << " + newly activated=" << newly_active;
    return err.str();
  }

  // The free shards, lowest first, go to the other live members in join
  // order; the rest are standby.
  std::vector<std::int32_t> free_shards;
  for (std::int32_t s = 0; s < num; ++s) {
    if (retained_shards.count(s) == 0) free_shards.push_back(s);
  }
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i].alive && !retained[i]) candidates.push_back(i);
  }
  std::sort(candidates.begin(), candidates.end(),
            [&in](std::size_t a, std::size_t b) {
              return in[a].join_seq < in[b].join_seq;
            });
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    const MemberOutcome &o = plan.outcomes[candidates[k]];
    if (k < free_shards.size()) {
      if (o.state != MemberState::Active || o.shard != free_shards[k]) {
        err << "fill order: candidate #" << k
            << " (seq=" << in[candidates[k]].join_seq
            << ") should get free shard " << free_shards[k] << ", got "
            << StateStr(o.state) << " " << o.shard;
        return err.str();
      }
    } else if (o.state != MemberState::Standby) {
      err << "candidate seq=" << in[candidates[k]].join_seq
          << " should be standby (no free shard left)";
      return err.str();
    }
  }

  // Consequences stated on their own: a standby is never older than a member
  // that was given a shard in this reshard, and standbys only exist when the
  // cap is reached.
  std::uint64_t youngest_new_holder = 0;
  bool any_new_holder = false;
  bool any_standby = false;
  std::uint64_t oldest_standby = UINT64_MAX;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (!in[i].alive) continue;
    const MemberOutcome &o = plan.outcomes[i];
    if (o.state == MemberState::Active && !retained[i]) {
      any_new_holder = true;
      youngest_new_holder = std::max(youngest_new_holder, in[i].join_seq);
    }
    if (o.state == MemberState::Standby) {
      any_standby = true;
      oldest_standby = std::min(oldest_standby, in[i].join_seq);
    }
  }
  if (any_new_holder && any_standby && oldest_standby < youngest_new_holder) {
    err << "standby seq=" << oldest_standby
        << " is older than newly placed seq=" << youngest_new_holder;
    return err.str();
  }
  if (any_standby && (max_shards <= 0 || num != max_shards)) {
    err << "standby members while num_shards=" << num << " is below the cap "
        << max_shards;
    return err.str();
  }

  // changed flags.
  std::size_t changed = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const MemberOutcome &o = plan.outcomes[i];
    if (!in[i].alive) continue;
    const bool expect = o.state != in[i].state || o.shard != in[i].shard ||
                        num != old_num_shards;
    if (o.changed != expect) {
      err << "member seq=" << in[i].join_seq << " changed=" << o.changed
          << ", expected " << expect;
      return err.str();
    }
    changed += expect ? 1 : 0;
  }
  if (plan.changed != changed) {
    err << "plan.changed=" << plan.changed << ", expected " << changed;
    return err.str();
  }
  if (plan.any_change() != (changed > 0 || removed_assigned > 0)) {
    return "any_change() disagrees with changed/removed_assigned";
  }
  return "";
}

// Applies a plan: drop removed members, copy state and shard.
std::vector<MemberView> Apply(const std::vector<MemberView> &in,
                              const ReshardPlan &plan) {
  std::vector<MemberView> out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (plan.outcomes[i].removed) continue;
    MemberView m = in[i];
    m.state = plan.outcomes[i].state;
    m.shard = plan.outcomes[i].shard;
    out.push_back(m);
  }
  return out;
}

// Runs plan_reshard, checks it with the independent checker, applies it.
struct Cluster {
  std::vector<MemberView> members;
  std::int32_t num_shards = 0;
  std::int32_t max_shards = 0;
  std::uint64_t next_seq = 1;

  std::uint64_t Join() {
    members.push_back(Pending(next_seq));
    return next_seq++;
  }
  void Kill(std::uint64_t seq) {
    for (MemberView &m : members) {
      if (m.join_seq == seq) m.alive = false;
    }
  }
  const MemberView *Find(std::uint64_t seq) const {
    for (const MemberView &m : members) {
      if (m.join_seq == seq) return &m;
    }
    return nullptr;
  }
  std::int32_t ShardOf(std::uint64_t seq) const {
    const MemberView *m = Find(seq);
    return m ? m->shard : -100;
  }
  MemberState StateOf(std::uint64_t seq) const {
    const MemberView *m = Find(seq);
    return m ? m->state : MemberState::Pending;
  }
  ReshardPlan Reshard() {
    ReshardPlan plan = sc::plan_reshard(members, num_shards, max_shards);
    const std::string err = CheckStep(members, num_shards, max_shards, plan);
    EXPECT_EQ(err, "") << "input: " << Describe(members)
                       << " old_num_shards=" << num_shards
                       << " max_shards=" << max_shards
                       << "\nplan: " << Describe(plan);
    members = Apply(members, plan);
    num_shards = plan.num_shards;
    return plan;
  }
};

// ---------------------------------------------------------------------------
// Joins

TEST(PlanReshard, EmptyInputGivesEmptyValidPlan) {
  ReshardPlan plan = sc::plan_reshard({}, 0, 0);
  EXPECT_EQ(plan.num_shards, 0);
  EXPECT_TRUE(plan.outcomes.empty());
  EXPECT_EQ(plan.changed, 0u);
  EXPECT_EQ(plan.removed_assigned, 0u);
  EXPECT_FALSE(plan.any_change());
  EXPECT_TRUE(sc::plan_is_valid(plan));
}

TEST(PlanReshard, JoinsOneAtATimeGetShardsInJoinOrder) {
  Cluster c;
  std::vector<std::uint64_t> seqs;
  for (int k = 0; k < 12; ++k) {
    seqs.push_back(c.Join());
    ReshardPlan plan = c.Reshard();
    ASSERT_EQ(plan.num_shards, k + 1);
    // Every member so far: member j holds shard j.
    for (int j = 0; j <= k; ++j) {
      EXPECT_EQ(c.StateOf(seqs[static_cast<std::size_t>(j)]),
                MemberState::Active);
      EXPECT_EQ(c.ShardOf(seqs[static_cast<std::size_t>(j)]), j)
          << "after join #" << k;
    }
    // num_shards changed, so every live member is told.
    EXPECT_EQ(plan.changed, static_cast<std::size_t>(k + 1));
    for (const MemberOutcome &o : plan.outcomes) EXPECT_TRUE(o.changed);
  }
}

TEST(PlanReshard, BatchedJoinsFollowJoinOrderNotInputOrder) {
  // Five newcomers in one reshard, listed youngest first.
  std::vector<MemberView> in;
  for (std::uint64_t seq = 15; seq >= 11; --seq) in.push_back(Pending(seq));
  ReshardPlan plan = sc::plan_reshard(in, 0, 0);
  ASSERT_EQ(plan.num_shards, 5);
  ASSERT_TRUE(sc::plan_is_valid(plan));
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(plan.outcomes[i].state, MemberState::Active);
    EXPECT_EQ(plan.outcomes[i].shard,
              static_cast<std::int32_t>(in[i].join_seq - 11));
  }
}

TEST(PlanReshard, JoinDoesNotMoveExistingMembers) {
  // Actives in a scrambled (but valid) layout; a newcomer takes the new top
  // shard and nobody else moves.
  std::vector<MemberView> in = {Active(1, 2), Active(2, 0), Active(3, 3),
                                Active(4, 1), Pending(5)};
  ReshardPlan plan = sc::plan_reshard(in, 4, 0);
  ASSERT_EQ(CheckStep(in, 4, 0, plan), "");
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(plan.outcomes[i].shard, in[i].shard);
  }
  EXPECT_EQ(plan.outcomes[4].state, MemberState::Active);
  EXPECT_EQ(plan.outcomes[4].shard, 4);
}

// ---------------------------------------------------------------------------
// Stickiness on departure

TEST(PlanReshard, DeathMovesOnlyTheTopHolderIntoTheHole) {
  // 0..4 active; the holder of 1 dies: the holder of 4 moves to 1.
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2),
                                Active(4, 3), Active(5, 4)};
  in[1].alive = false;
  ReshardPlan plan = sc::plan_reshard(in, 5, 0);
  ASSERT_EQ(CheckStep(in, 5, 0, plan), "");
  EXPECT_EQ(plan.num_shards, 4);
  EXPECT_TRUE(plan.outcomes[1].removed);
  EXPECT_EQ(plan.outcomes[0].shard, 0);
  EXPECT_EQ(plan.outcomes[2].shard, 2);
  EXPECT_EQ(plan.outcomes[3].shard, 3);
  EXPECT_EQ(plan.outcomes[4].state, MemberState::Active);
  EXPECT_EQ(plan.outcomes[4].shard, 1);
  EXPECT_EQ(plan.removed_assigned, 1u);
  // num_shards went 5 -> 4, so all four survivors are notified.
  EXPECT_EQ(plan.changed, 4u);
  EXPECT_TRUE(plan.any_change());
}

TEST(PlanReshard, DeathOfTopHolderMovesNobody) {
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2),
                                Dead(Active(4, 3))};
  ReshardPlan plan = sc::plan_reshard(in, 4, 0);
  ASSERT_EQ(CheckStep(in, 4, 0, plan), "");
  EXPECT_EQ(plan.num_shards, 3);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(plan.outcomes[i].shard, in[i].shard);
  }
}

TEST(PlanReshard, SeveralHolesAreFilledLowestFirstInJoinOrder) {
  // Shards 0..7; holders of 1 and 3 die. The holder of 7 joined before the
  // holder of 6, so it gets the lowest hole (1) and the holder of 6 gets 3.
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2),
                                Active(4, 3), Active(5, 4), Active(6, 5),
                                Active(8, 6), Active(7, 7)};
  in[1].alive = false;
  in[3].alive = false;
  ReshardPlan plan = sc::plan_reshard(in, 8, 0);
  ASSERT_EQ(CheckStep(in, 8, 0, plan), "");
  EXPECT_EQ(plan.num_shards, 6);
  EXPECT_EQ(plan.outcomes[7].shard, 1);  // seq 7, held 7
  EXPECT_EQ(plan.outcomes[6].shard, 3);  // seq 8, held 6
  for (std::size_t i : {0u, 2u, 4u, 5u}) {
    EXPECT_EQ(plan.outcomes[i].shard, in[i].shard) << "member " << i;
  }
  EXPECT_EQ(plan.removed_assigned, 2u);
}

TEST(PlanReshard, DeathAndJoinInOneBatchNewcomerFillsTheHole) {
  std::vector<MemberView> in = {Active(1, 0), Dead(Active(2, 1)), Active(3, 2),
                                Active(4, 3), Pending(5)};
  ReshardPlan plan = sc::plan_reshard(in, 4, 0);
  ASSERT_EQ(CheckStep(in, 4, 0, plan), "");
  EXPECT_EQ(plan.num_shards, 4);
  EXPECT_EQ(plan.outcomes[0].shard, 0);
  EXPECT_EQ(plan.outcomes[2].shard, 2);
  EXPECT_EQ(plan.outcomes[3].shard, 3);
  EXPECT_EQ(plan.outcomes[4].state, MemberState::Active);
  EXPECT_EQ(plan.outcomes[4].shard, 1);
  // num_shards unchanged: only the newcomer's assignment changed.
  EXPECT_EQ(plan.changed, 1u);
  EXPECT_TRUE(plan.outcomes[4].changed);
  EXPECT_FALSE(plan.outcomes[0].changed);
}

TEST(PlanReshard, DisplacedOlderMemberBeatsNewcomerForTheLowestHole) {
  // 0..4; holders of 0 and 1 die while a newcomer joins: num_shards 4, the
  // holder of 4 is displaced. Holes 0 and 1 go in join order: the displaced
  // (older) member gets 0, the newcomer 1.
  std::vector<MemberView> in = {Dead(Active(1, 0)), Dead(Active(2, 1)),
                                Active(3, 2),       Active(4, 3),
                                Active(5, 4),       Pending(9)};
  ReshardPlan plan = sc::plan_reshard(in, 5, 0);
  ASSERT_EQ(CheckStep(in, 5, 0, plan), "");
  EXPECT_EQ(plan.num_shards, 4);
  EXPECT_EQ(plan.outcomes[2].shard, 2);
  EXPECT_EQ(plan.outcomes[3].shard, 3);
  EXPECT_EQ(plan.outcomes[4].shard, 0);
  EXPECT_EQ(plan.outcomes[5].state, MemberState::Active);
  EXPECT_EQ(plan.outcomes[5].shard, 1);
}

TEST(PlanReshard, AllMembersDeadGivesZeroShards) {
  std::vector<MemberView> in = {Dead(Active(1, 0)), Dead(Standby(2)),
                                Dead(Pending(3))};
  ReshardPlan plan = sc::plan_reshard(in, 1, 1);
  ASSERT_EQ(CheckStep(in, 1, 1, plan), "");
  EXPECT_EQ(plan.num_shards, 0);
  for (const MemberOutcome &o : plan.outcomes) EXPECT_TRUE(o.removed);
  EXPECT_EQ(plan.removed_assigned, 2u);  // the pending one does not count
  EXPECT_TRUE(plan.any_change());
}

// ---------------------------------------------------------------------------
// max_shards

TEST(PlanReshard, CapMakesExtraMembersStandby) {
  Cluster c;
  c.max_shards = 3;
  std::vector<std::uint64_t> seqs;
  for (int k = 0; k < 5; ++k) {
    seqs.push_back(c.Join());
    c.Reshard();
  }
  EXPECT_EQ(c.num_shards, 3);
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(c.StateOf(seqs[static_cast<std::size_t>(j)]),
              MemberState::Active);
    EXPECT_EQ(c.ShardOf(seqs[static_cast<std::size_t>(j)]), j);
  }
  for (int j = 3; j < 5; ++j) {
    EXPECT_EQ(c.StateOf(seqs[static_cast<std::size_t>(j)]),
              MemberState::Standby);
    EXPECT_EQ(c.ShardOf(seqs[static_cast<std::size_t>(j)]), kNoShard);
  }

  // A slot frees: the oldest standby is promoted into the hole, the other
  // stays standby.
  c.Kill(seqs[1]);
  ReshardPlan plan = c.Reshard();
  EXPECT_EQ(plan.num_shards, 3);
  EXPECT_EQ(c.StateOf(seqs[3]), MemberState::Active);
  EXPECT_EQ(c.ShardOf(seqs[3]), 1);
  EXPECT_EQ(c.StateOf(seqs[4]), MemberState::Standby);
  EXPECT_EQ(c.ShardOf(seqs[0]), 0);
  EXPECT_EQ(c.ShardOf(seqs[2]), 2);
}

TEST(PlanReshard, StandbyPromotionIsByJoinOrderNotInputOrder) {
  // Younger standby listed first; the older one must win the free shard.
  std::vector<MemberView> in = {Standby(30), Active(1, 0), Standby(20),
                                Dead(Active(2, 1)), Standby(25)};
  ReshardPlan plan = sc::plan_reshard(in, 2, 2);
  ASSERT_EQ(CheckStep(in, 2, 2, plan), "");
  EXPECT_EQ(plan.num_shards, 2);
  EXPECT_EQ(plan.outcomes[2].state, MemberState::Active);
  EXPECT_EQ(plan.outcomes[2].shard, 1);
  EXPECT_EQ(plan.outcomes[0].state, MemberState::Standby);
  EXPECT_EQ(plan.outcomes[4].state, MemberState::Standby);
  // The standbys that stay standby see the same num_shards: not changed.
  EXPECT_FALSE(plan.outcomes[0].changed);
  EXPECT_FALSE(plan.outcomes[4].changed);
  EXPECT_TRUE(plan.outcomes[2].changed);
  EXPECT_FALSE(plan.outcomes[1].changed);
  EXPECT_EQ(plan.changed, 1u);
}

TEST(PlanReshard, RaisingOrRemovingTheCapPromotesStandbys) {
  for (std::int32_t new_cap : {5, 0, -1, 100}) {
    SCOPED_TRACE("new_cap=" + std::to_string(new_cap));
    std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2),
                                  Standby(5), Standby(4)};
    ReshardPlan plan = sc::plan_reshard(in, 3, new_cap);
    ASSERT_EQ(CheckStep(in, 3, new_cap, plan), "");
    EXPECT_EQ(plan.num_shards, 5);
    EXPECT_EQ(plan.outcomes[4].shard, 3);  // seq 4 is older
    EXPECT_EQ(plan.outcomes[3].shard, 4);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(plan.outcomes[i].shard, in[i].shard);
    }
  }
}

TEST(PlanReshard, LoweringTheCapDemotesHoldersOfHighShards) {
  std::vector<MemberView> in = {Active(1, 4), Active(2, 3), Active(3, 2),
                                Active(4, 1), Active(5, 0)};
  ReshardPlan plan = sc::plan_reshard(in, 5, 2);
  ASSERT_EQ(CheckStep(in, 5, 2, plan), "");
  EXPECT_EQ(plan.num_shards, 2);
  // Holders of 0 and 1 keep them even though they are the youngest.
  EXPECT_EQ(plan.outcomes[4].shard, 0);
  EXPECT_EQ(plan.outcomes[3].shard, 1);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(plan.outcomes[i].state, MemberState::Standby);
    EXPECT_EQ(plan.outcomes[i].shard, kNoShard);
    EXPECT_TRUE(plan.outcomes[i].changed);
  }
  EXPECT_EQ(plan.removed_assigned, 0u);
}

TEST(PlanReshard, LoweringTheCapWithAHoleGivesItToTheOldestDisplaced) {
  // 0..4; holder of 0 dies; cap 3: shards 1, 2 stay; the hole 0 goes to the
  // older of the displaced holders of 3 and 4; the other becomes standby.
  std::vector<MemberView> in = {Dead(Active(1, 0)), Active(2, 1), Active(3, 2),
                                Active(5, 3), Active(4, 4)};
  ReshardPlan plan = sc::plan_reshard(in, 5, 3);
  ASSERT_EQ(CheckStep(in, 5, 3, plan), "");
  EXPECT_EQ(plan.num_shards, 3);
  EXPECT_EQ(plan.outcomes[4].shard, 0);  // seq 4, held 4
  EXPECT_EQ(plan.outcomes[3].state, MemberState::Standby);
}

TEST(PlanReshard, StickinessCanLeaveAnOlderMemberOnStandby) {
  // The rules put stickiness before age: a member holding a low shard keeps
  // it even if an older member is displaced to standby by a lower cap. When
  // a slot frees later, the older standby goes first.
  Cluster c;
  const std::uint64_t a = c.Join(), b = c.Join(), cc = c.Join();
  c.Reshard();  // a:0 b:1 c:2
  c.Kill(b);
  c.Reshard();  // a:0 c:1
  const std::uint64_t d = c.Join();
  c.Reshard();  // d:2
  const std::uint64_t e = c.Join();
  c.Reshard();  // e:3
  c.Kill(cc);
  c.Reshard();  // e moves to 1: a:0 e:1 d:2
  ASSERT_EQ(c.ShardOf(a), 0);
  ASSERT_EQ(c.ShardOf(e), 1);
  ASSERT_EQ(c.ShardOf(d), 2);
  c.max_shards = 2;
  c.Reshard();
  EXPECT_EQ(c.StateOf(d), MemberState::Standby);  // older, but displaced
  EXPECT_EQ(c.ShardOf(e), 1);                     // younger, but sticky
  const std::uint64_t f = c.Join();
  c.Reshard();
  EXPECT_EQ(c.StateOf(f), MemberState::Standby);
  c.Kill(a);
  c.Reshard();
  EXPECT_EQ(c.StateOf(d), MemberState::Active);  // oldest standby first
  EXPECT_EQ(c.ShardOf(d), 0);
  EXPECT_EQ(c.StateOf(f), MemberState::Standby);
}

// ---------------------------------------------------------------------------
// changed flags, removed_assigned, any_change

TEST(PlanReshard, NoOpReshardChangesNothing) {
  std::vector<MemberView> in = {Active(1, 1), Active(2, 0), Active(3, 2),
                                Standby(4)};
  ReshardPlan plan = sc::plan_reshard(in, 3, 3);
  ASSERT_EQ(CheckStep(in, 3, 3, plan), "");
  EXPECT_EQ(plan.changed, 0u);
  EXPECT_EQ(plan.removed_assigned, 0u);
  EXPECT_FALSE(plan.any_change());
  for (const MemberOutcome &o : plan.outcomes) {
    EXPECT_FALSE(o.changed);
    EXPECT_FALSE(o.removed);
  }
}

TEST(PlanReshard, NumShardsDifferenceAloneMarksEveryLiveMemberChanged) {
  // Stored count disagrees with the members (e.g. 4 while 3 hold 0..2).
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2)};
  ReshardPlan plan = sc::plan_reshard(in, 4, 0);
  ASSERT_EQ(CheckStep(in, 4, 0, plan), "");
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(plan.outcomes[i].shard, in[i].shard);
    EXPECT_TRUE(plan.outcomes[i].changed);
  }
  EXPECT_EQ(plan.changed, 3u);
}

TEST(PlanReshard, StandbyThatStaysStandbyIsChangedOnlyIfNumShardsChanges) {
  // Cap 3 -> 2: holder of 2 demoted; the old standby stays standby but sees a
  // new num_shards, so it is changed.
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2),
                                Standby(4)};
  ReshardPlan plan = sc::plan_reshard(in, 3, 2);
  ASSERT_EQ(CheckStep(in, 3, 2, plan), "");
  EXPECT_EQ(plan.outcomes[3].state, MemberState::Standby);
  EXPECT_TRUE(plan.outcomes[3].changed);
  EXPECT_EQ(plan.changed, 4u);

  // A standby dies and nothing else happens: nobody is changed, but the
  // removal is an assigned removal.
  std::vector<MemberView> in2 = {Active(1, 0), Active(2, 1), Standby(3),
                                 Dead(Standby(4))};
  ReshardPlan plan2 = sc::plan_reshard(in2, 2, 2);
  ASSERT_EQ(CheckStep(in2, 2, 2, plan2), "");
  EXPECT_EQ(plan2.changed, 0u);
  EXPECT_FALSE(plan2.outcomes[2].changed);
  EXPECT_TRUE(plan2.outcomes[3].removed);
  EXPECT_EQ(plan2.removed_assigned, 1u);
  EXPECT_TRUE(plan2.any_change());
}

TEST(PlanReshard, PendingMemberThatDiesIsNotAnAssignedRemoval) {
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Dead(Pending(3))};
  ReshardPlan plan = sc::plan_reshard(in, 2, 0);
  ASSERT_EQ(CheckStep(in, 2, 0, plan), "");
  EXPECT_TRUE(plan.outcomes[2].removed);
  EXPECT_EQ(plan.removed_assigned, 0u);
  EXPECT_EQ(plan.changed, 0u);
  EXPECT_FALSE(plan.any_change());
}

TEST(PlanReshard, NewcomerIsAlwaysChangedEvenAsStandby) {
  // A pending member becoming standby changes state (Pending -> Standby).
  std::vector<MemberView> in = {Active(1, 0), Pending(2)};
  ReshardPlan plan = sc::plan_reshard(in, 1, 1);
  ASSERT_EQ(CheckStep(in, 1, 1, plan), "");
  EXPECT_EQ(plan.outcomes[1].state, MemberState::Standby);
  EXPECT_TRUE(plan.outcomes[1].changed);
  EXPECT_FALSE(plan.outcomes[0].changed);
  EXPECT_EQ(plan.changed, 1u);
  EXPECT_TRUE(plan.any_change());
}

// ---------------------------------------------------------------------------
// Robustness against invalid input

void ExpectValidFor(const std::vector<MemberView> &in, std::int32_t old_num,
                    std::int32_t max_shards) {
  ReshardPlan plan = sc::plan_reshard(in, old_num, max_shards);
  EXPECT_EQ(CheckSafety(plan), "") << Describe(in) << "\n" << Describe(plan);
  EXPECT_TRUE(sc::plan_is_valid(plan));
  EXPECT_EQ(plan.num_shards, ExpectedNumShards(in, max_shards));
  ASSERT_EQ(plan.outcomes.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(plan.outcomes[i].removed, !in[i].alive);
  }
}

TEST(PlanReshard, DuplicateShardClaimStillGivesValidPlan) {
  std::vector<MemberView> in = {Active(1, 0), Active(2, 0), Active(3, 1)};
  ExpectValidFor(in, 3, 0);
  ReshardPlan plan = sc::plan_reshard(in, 3, 0);
  // The uncontested holder keeps its shard, and one claimant keeps shard 0.
  EXPECT_EQ(plan.outcomes[2].shard, 1);
  EXPECT_TRUE(plan.outcomes[0].shard == 0 || plan.outcomes[1].shard == 0);
  EXPECT_EQ(plan.outcomes[0].shard + plan.outcomes[1].shard, 2);
}

TEST(PlanReshard, RepairedMemberIsChangedEvenIfStateAndCountStay) {
  // Invalid input: shard 5 with two members and a stored count of 2. The
  // member moves 5 -> 1 while state and num_shards stay: it must be told.
  std::vector<MemberView> in = {Active(1, 0), Active(2, 5)};
  ReshardPlan plan = sc::plan_reshard(in, 2, 0);
  ASSERT_TRUE(sc::plan_is_valid(plan));
  EXPECT_EQ(plan.num_shards, 2);
  EXPECT_EQ(plan.outcomes[1].shard, 1);
  EXPECT_TRUE(plan.outcomes[1].changed);
  EXPECT_FALSE(plan.outcomes[0].changed);
  EXPECT_EQ(plan.changed, 1u);

  // Duplicate claim: the claimant that moves is told, the other is not.
  std::vector<MemberView> dup = {Active(1, 0), Active(2, 0)};
  ReshardPlan p2 = sc::plan_reshard(dup, 2, 0);
  ASSERT_TRUE(sc::plan_is_valid(p2));
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(p2.outcomes[i].changed, p2.outcomes[i].shard != 0) << i;
  }
  EXPECT_EQ(p2.changed, 1u);
}

TEST(PlanReshard, ShardBeyondRangeStillGivesValidPlan) {
  ExpectValidFor({Active(1, 0), Active(2, 7)}, 2, 0);
  ExpectValidFor({Active(1, 2), Active(2, 3)}, 2, 0);
  ExpectValidFor({Active(1, 1000000), Active(2, INT32_MAX)}, 2, 0);
  ReshardPlan plan = sc::plan_reshard({Active(1, 0), Active(2, 7)}, 2, 0);
  EXPECT_EQ(plan.outcomes[0].shard, 0);
  EXPECT_EQ(plan.outcomes[1].shard, 1);
}

TEST(PlanReshard, NegativeShardStillGivesValidPlan) {
  ExpectValidFor({Active(1, -1), Active(2, 0)}, 2, 0);
  ExpectValidFor({Active(1, INT32_MIN), Active(2, -5), Active(3, 1)}, 3, 0);
  ReshardPlan plan = sc::plan_reshard({Active(1, -1), Active(2, 0)}, 2, 0);
  EXPECT_EQ(plan.outcomes[1].shard, 0);
  EXPECT_EQ(plan.outcomes[0].shard, 1);
}

TEST(PlanReshard, OtherOddInputsStillGiveValidPlans) {
  // Standby or pending claiming a shard that an active holds.
  MemberView s = Standby(1);
  s.shard = 0;
  MemberView p = Pending(2);
  p.shard = 0;
  ExpectValidFor({s, p, Active(3, 0)}, 1, 0);
  ExpectValidFor({s, p, Active(3, 0)}, 1, 1);
  // Duplicate join_seq, garbage old_num_shards, negative caps.
  ExpectValidFor({Pending(1), Pending(1), Active(1, 0)}, -7, 0);
  ExpectValidFor({Pending(1), Pending(1), Active(1, 0)}, INT32_MAX, -3);
  ExpectValidFor({Active(1, 0), Active(2, 0), Active(3, 0)}, 3, INT32_MAX);
  ExpectValidFor({Active(1, 0), Active(2, 0), Active(3, 0)}, 3, INT32_MIN);
  // An invalid state value must not crash or produce a broken plan.
  MemberView weird = Pending(9);
  weird.state = static_cast<MemberState>(7);
  weird.shard = 0;
  ExpectValidFor({weird, Active(1, 0)}, 1, 0);
}

TEST(PlanReshard, RandomGarbageInputAlwaysGivesValidPlans) {
  const std::uint64_t seed = 0x5eed0001;
  std::mt19937_64 rng(seed);
  for (int iter = 0; iter < 5000; ++iter) {
    const int n = static_cast<int>(rng() % 30);
    std::vector<MemberView> in;
    for (int i = 0; i < n; ++i) {
      MemberView m;
      m.join_seq = rng() % 20;
      m.state = static_cast<MemberState>(rng() % 3);
      m.shard = static_cast<std::int32_t>(rng() % 70) - 5;
      if (rng() % 4 == 0) m.shard = kNoShard;
      m.alive = rng() % 5 != 0;
      in.push_back(m);
    }
    const auto old_num = static_cast<std::int32_t>(rng() % 40) - 5;
    const auto cap = static_cast<std::int32_t>(rng() % 40) - 5;
    ReshardPlan plan = sc::plan_reshard(in, old_num, cap);
    const std::string err = CheckSafety(plan);
    ASSERT_EQ(err, "") << "seed=" << seed << " iter=" << iter << "\n"
                       << Describe(in) << "\n"
                       << Describe(plan);
    ASSERT_TRUE(sc::plan_is_valid(plan)) << "seed=" << seed << " iter=" << iter;
    ASSERT_EQ(plan.num_shards, ExpectedNumShards(in, cap))
        << "seed=" << seed << " iter=" << iter;
    ASSERT_EQ(plan.outcomes.size(), in.size());
    std::size_t changed = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      ASSERT_EQ(plan.outcomes[i].removed, !in[i].alive);
      changed += plan.outcomes[i].changed ? 1 : 0;
    }
    ASSERT_EQ(plan.changed, changed);
  }
}

// ---------------------------------------------------------------------------
// Randomized property test over sequences of reshards

TEST(PlanReshard, RandomSequencesSatisfyAllRules) {
  const std::uint64_t base_seed = 20240601;
  const int kSequences = 3000;
  const std::size_t kMaxMembers = 40;
  std::size_t total_steps = 0;
  // Coverage counters: the generator must exercise every kind of move.
  std::size_t with_standby = 0, moved_active = 0, promoted = 0, demoted = 0,
              unlimited = 0, big = 0, assigned_removals = 0;
  for (int sequence = 0; sequence < kSequences; ++sequence) {
    const std::uint64_t seed = base_seed + static_cast<std::uint64_t>(sequence);
    std::mt19937_64 rng(seed);
    std::vector<MemberView> members;
    std::int32_t num_shards = 0;
    std::int32_t cap =
        rng() % 3 == 0 ? static_cast<std::int32_t>(rng() % 10) : 0;
    std::uint64_t next_seq = 1;
    const int steps = 1 + static_cast<int>(rng() % 80);
    // Per-sequence event rates: some clusters grow to the member limit,
    // some churn, some shrink.
    const int join_pct = 20 + static_cast<int>(rng() % 70);
    const int death_pct = 10 + static_cast<int>(rng() % 50);
    const int cap_pct = 5 + static_cast<int>(rng() % 25);
    for (int step = 0; step < steps; ++step) {
      ++total_steps;
      std::ostringstream where;
      where << "seed=" << seed << " (base " << base_seed << " + sequence "
            << sequence << ") step=" << step;

      // Events batched into one reshard (several may happen together, or
      // none: then the reshard must be a no-op).
      if (static_cast<int>(rng() % 100) < join_pct) {
        const int joins = 1 + static_cast<int>(rng() % 4);
        for (int j = 0; j < joins && members.size() < kMaxMembers; ++j) {
          MemberView m = Pending(next_seq++);
          if (rng() % 15 == 0) m.alive = false;  // joined and died at once
          members.push_back(m);
        }
      }
      if (!members.empty() && static_cast<int>(rng() % 100) < death_pct) {
        const int deaths = 1 + static_cast<int>(rng() % 3);
        for (int d = 0; d < deaths; ++d) {
          members[rng() % members.size()].alive = false;
        }
      }
      if (static_cast<int>(rng() % 100) < cap_pct) {
        const int pick = static_cast<int>(rng() % 6);
        if (pick == 0) {
          cap = 0;
        } else if (pick == 1) {
          cap = -static_cast<std::int32_t>(rng() % 3);
        } else {
          cap = 1 + static_cast<std::int32_t>(rng() % 45);
        }
      }

      ReshardPlan plan = sc::plan_reshard(members, num_shards, cap);
      const std::string err = CheckStep(members, num_shards, cap, plan);
      ASSERT_EQ(err, "") << where.str() << " max_shards=" << cap
                         << " old_num_shards=" << num_shards
                         << "\ninput: " << Describe(members)
                         << "\nplan: " << Describe(plan);

      // Input order must not matter: the rules speak of join order only.
      std::vector<std::size_t> perm(members.size());
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      std::vector<MemberView> shuffled;
      for (std::size_t i : perm) shuffled.push_back(members[i]);
      ReshardPlan plan_s = sc::plan_reshard(shuffled, num_shards, cap);
      ASSERT_EQ(plan_s.num_shards, plan.num_shards) << where.str();
      ASSERT_EQ(plan_s.changed, plan.changed) << where.str();
      for (std::size_t k = 0; k < perm.size(); ++k) {
        const MemberOutcome &a = plan.outcomes[perm[k]];
        const MemberOutcome &b = plan_s.outcomes[k];
        ASSERT_TRUE(a.state == b.state && a.shard == b.shard &&
                    a.removed == b.removed && a.changed == b.changed)
            << where.str() << ": outcome depends on input order for seq "
            << members[perm[k]].join_seq;
      }

      for (std::size_t i = 0; i < members.size(); ++i) {
        const MemberOutcome &o = plan.outcomes[i];
        if (o.removed) continue;
        const MemberState was = members[i].state;
        if (was == MemberState::Active && o.state == MemberState::Active &&
            o.shard != members[i].shard) {
          ++moved_active;
        }
        if (was == MemberState::Standby && o.state == MemberState::Active) {
          ++promoted;
        }
        if (was == MemberState::Active && o.state == MemberState::Standby) {
          ++demoted;
        }
      }
      for (const MemberOutcome &o : plan.outcomes) {
        if (!o.removed && o.state == MemberState::Standby) {
          ++with_standby;
          break;
        }
      }
      if (cap <= 0) ++unlimited;
      if (members.size() >= 30) ++big;
      assigned_removals += plan.removed_assigned;

      members = Apply(members, plan);
      num_shards = plan.num_shards;

      // Resharding the result again with nothing new is a no-op.
      ReshardPlan again = sc::plan_reshard(members, num_shards, cap);
      ASSERT_FALSE(again.any_change())
          << where.str() << " not idempotent: " << Describe(again);
      for (std::size_t i = 0; i < members.size(); ++i) {
        ASSERT_EQ(again.outcomes[i].state, members[i].state) << where.str();
        ASSERT_EQ(again.outcomes[i].shard, members[i].shard) << where.str();
      }
    }
  }
  EXPECT_GT(total_steps, 50000u);
  RecordProperty("steps", static_cast<int>(total_steps));
  std::cout << "steps=" << total_steps << " with_standby=" << with_standby
            << " moved_active=" << moved_active << " promoted=" << promoted
            << " demoted=" << demoted << " unlimited_cap=" << unlimited
            << " members>=30=" << big
            << " assigned_removals=" << assigned_removals << "\n";
  EXPECT_GT(with_standby, 1000u);
  EXPECT_GT(moved_active, 1000u);
  EXPECT_GT(promoted, 1000u);
  EXPECT_GT(demoted, 1000u);
  EXPECT_GT(unlimited, 1000u);
  EXPECT_GT(big, 1000u);
  EXPECT_GT(assigned_removals, 1000u);
}

// ---------------------------------------------------------------------------
// plan_is_valid

ReshardPlan ValidPlanOfFour() {
  std::vector<MemberView> in = {Active(1, 0), Active(2, 1), Active(3, 2),
                                Standby(4), Dead(Active(5, 3))};
  ReshardPlan plan = sc::plan_reshard(in, 4, 3);
  EXPECT_TRUE(sc::plan_is_valid(plan));
  return plan;
}

TEST(PlanIsValid, AcceptsValidPlans) {
  EXPECT_TRUE(sc::plan_is_valid(ReshardPlan{}));
  ReshardPlan p;
  p.num_shards = 2;
  p.outcomes.resize(3);
  p.outcomes[0].state = MemberState::Active;
  p.outcomes[0].shard = 1;
  p.outcomes[1].state = MemberState::Active;
  p.outcomes[1].shard = 0;
  p.outcomes[2].state = MemberState::Standby;
  p.outcomes[2].shard = kNoShard;
  EXPECT_TRUE(sc::plan_is_valid(p));
  // Removed outcomes are ignored whatever they hold.
  MemberOutcome gone;
  gone.removed = true;
  gone.state = MemberState::Active;
  gone.shard = 0;
  p.outcomes.push_back(gone);
  EXPECT_TRUE(sc::plan_is_valid(p));
}

TEST(PlanIsValid, RejectsDuplicateShard) {
  ReshardPlan p = ValidPlanOfFour();
  p.outcomes[1].shard = p.outcomes[0].shard;
  EXPECT_FALSE(sc::plan_is_valid(p));
}

TEST(PlanIsValid, RejectsHole) {
  ReshardPlan p = ValidPlanOfFour();
  p.outcomes[1].shard = p.num_shards;  // shard 1 now empty, 3 out of range
  EXPECT_FALSE(sc::plan_is_valid(p));
  ReshardPlan q = ValidPlanOfFour();
  q.num_shards += 1;  // shard 3 has no holder
  EXPECT_FALSE(sc::plan_is_valid(q));
  ReshardPlan r = ValidPlanOfFour();
  r.outcomes[2].state = MemberState::Standby;  // shard 2 vacated
  r.outcomes[2].shard = kNoShard;
  EXPECT_FALSE(sc::plan_is_valid(r));
  ReshardPlan s = ValidPlanOfFour();
  s.outcomes[0].removed = true;  // shard 0 holder gone
  EXPECT_FALSE(sc::plan_is_valid(s));
}

TEST(PlanIsValid, RejectsStandbyWithShard) {
  ReshardPlan p = ValidPlanOfFour();
  ASSERT_EQ(p.outcomes[3].state, MemberState::Standby);
  p.outcomes[3].shard = 0;
  EXPECT_FALSE(sc::plan_is_valid(p));
  p.outcomes[3].shard = 7;
  EXPECT_FALSE(sc::plan_is_valid(p));
}

TEST(PlanIsValid, RejectsOtherBrokenPlans) {
  ReshardPlan p = ValidPlanOfFour();
  p.outcomes[3].state = MemberState::Pending;  // live but left pending
  EXPECT_FALSE(sc::plan_is_valid(p));
  ReshardPlan q = ValidPlanOfFour();
  q.outcomes[0].shard = kNoShard;  // active without a shard
  EXPECT_FALSE(sc::plan_is_valid(q));
  ReshardPlan r = ValidPlanOfFour();
  r.outcomes[0].shard = -2;
  EXPECT_FALSE(sc::plan_is_valid(r));
  ReshardPlan s;
  s.num_shards = -1;
  EXPECT_FALSE(sc::plan_is_valid(s));
  ReshardPlan t;
  t.num_shards = 1;  // nobody holds shard 0
  EXPECT_FALSE(sc::plan_is_valid(t));
}

}  // namespace
