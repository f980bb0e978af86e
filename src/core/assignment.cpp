#include "core/assignment.hpp"

#include <algorithm>

namespace shard_coordinator {

ReshardPlan plan_reshard(const std::vector<MemberView> &members,
                         std::int32_t old_num_shards, std::int32_t max_shards) {
  ReshardPlan plan;
  const std::size_t n = members.size();
  plan.outcomes.resize(n);

  std::size_t live = 0;
  for (const MemberView &m : members) {
    if (m.alive) ++live;
  }
  std::size_t cap = live;
  if (max_shards > 0 && static_cast<std::size_t>(max_shards) < cap) {
    cap = static_cast<std::size_t>(max_shards);
  }
  const auto num_shards = static_cast<std::int32_t>(cap);
  plan.num_shards = num_shards;

  // Sticky pass: live actives keep their shard while it is still in range.
  std::vector<bool> taken(cap, false);
  std::vector<std::size_t> candidates;
  candidates.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const MemberView &m = members[i];
    MemberOutcome &out = plan.outcomes[i];
    if (!m.alive) {
      out.removed = true;
      out.state = m.state;
      out.shard = m.shard;
      if (m.state != MemberState::Pending) ++plan.removed_assigned;
      continue;
    }
    if (m.state == MemberState::Active && m.shard >= 0 &&
        m.shard < num_shards && !taken[static_cast<std::size_t>(m.shard)]) {
      taken[static_cast<std::size_t>(m.shard)] = true;
      out.state = MemberState::Active;
      out.shard = m.shard;
    } else {
      candidates.push_back(i);
    }
  }

  // Fill the free shards, lowest first, oldest candidate first.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&members](std::size_t a, std::size_t b) {
                     return members[a].join_seq < members[b].join_seq;
                   });
  std::size_t next_free = 0;
  for (std::size_t idx : candidates) {
    MemberOutcome &out = plan.outcomes[idx];
    while (next_free < cap && taken[next_free]) ++next_free;
    if (next_free < cap) {
      taken[next_free] = true;
      out.state = MemberState::Active;
      out.shard = static_cast<std::int32_t>(next_free);
    } else {
      out.state = MemberState::Standby;
      out.shard = kNoShard;
    }
  }

  for (std::size_t i = 0; i < n; ++i) {
    MemberOutcome &out = plan.outcomes[i];
    if (out.removed) continue;
    const MemberView &m = members[i];
    out.changed = out.state != m.state || out.shard != m.shard ||
                  num_shards != old_num_shards;
    if (out.changed) ++plan.changed;
  }
  return plan;
}

bool plan_is_valid(const ReshardPlan &plan) {
  if (plan.num_shards < 0) return false;
  std::vector<int> holders(static_cast<std::size_t>(plan.num_shards), 0);
  for (const MemberOutcome &out : plan.outcomes) {
    if (out.removed) continue;
    if (out.state == MemberState::Active) {
      if (out.shard < 0 || out.shard >= plan.num_shards) return false;
      ++holders[static_cast<std::size_t>(out.shard)];
    } else if (out.state != MemberState::Standby || out.shard != kNoShard) {
      return false;
    }
  }
  return std::all_of(holders.begin(), holders.end(),
                     [](int h) { return h == 1; });
}

}  // namespace shard_coordinator
