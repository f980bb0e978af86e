#include "core/reshard_policy.hpp"

#include <algorithm>
#include <unordered_map>

#include "core/slots.hpp"

namespace shard_coordinator {

namespace {

using KeyLists = std::unordered_map<std::uint64_t, std::vector<std::int32_t>>;

// Each owner's keys, ascending (keys are ascending).
KeyLists lists_by_owner(const std::vector<std::int32_t> &keys,
                        const std::vector<std::uint64_t> &owners) {
  KeyLists lists;
  for (std::size_t k = 0; k < keys.size() && k < owners.size(); ++k) {
    if (owners[k] != kNoOwner) lists[owners[k]].push_back(keys[k]);
  }
  return lists;
}

const std::vector<std::int32_t> &list_of(const KeyLists &lists,
                                         std::uint64_t id) {
  static const std::vector<std::int32_t> none;
  auto it = lists.find(id);
  return it == lists.end() ? none : it->second;
}

// The slot owners after the reshard: keys keep their owner where it stays
// active, the rest go by the minimal-move rule (core/slots.hpp).
std::vector<std::uint64_t> new_slot_owners(const PolicyCluster &cluster,
                                           const ReshardPlan &plan) {
  const std::vector<std::int32_t> &keys = cluster.new_keys;
  std::vector<std::uint64_t> previous(keys.size(), kNoOwner);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    auto at = std::lower_bound(cluster.old_keys.begin(), cluster.old_keys.end(),
                               keys[k]);
    if (at != cluster.old_keys.end() && *at == keys[k]) {
      auto index = static_cast<std::size_t>(at - cluster.old_keys.begin());
      if (index < cluster.old_owners.size())
        previous[k] = cluster.old_owners[index];
    }
  }
  // The active members in shard order.
  std::vector<std::uint64_t> active(static_cast<std::size_t>(plan.num_shards),
                                    kNoOwner);
  for (std::size_t i = 0; i < plan.outcomes.size(); ++i) {
    const MemberOutcome &out = plan.outcomes[i];
    if (!out.removed && out.state == MemberState::Active)
      active[static_cast<std::size_t>(out.shard)] = cluster.members[i].id;
  }
  return assign_slots(keys, previous, active);
}

}  // namespace

ReshardDecision decide_reshard(const PolicyCluster &cluster) {
  ReshardDecision decision;
  const bool slot_mode_before = !cluster.old_keys.empty();
  const bool slot_mode = !cluster.new_keys.empty();

  std::vector<MemberView> views;
  views.reserve(cluster.members.size());
  for (const PolicyMember &m : cluster.members)
    views.push_back(MemberView{m.id, m.state, m.shard, m.alive});
  // In slot mode there are at most as many active members as keys.
  std::int32_t cap = cluster.max_shards;
  const auto nkeys = static_cast<std::int32_t>(cluster.new_keys.size());
  if (slot_mode && (cap <= 0 || cap > nkeys)) cap = nkeys;
  const ReshardPlan plan = plan_reshard(views, cluster.num_shards, cap);
  decision.num_shards = plan.num_shards;

  KeyLists old_lists;
  KeyLists new_lists;
  if (slot_mode_before)
    old_lists = lists_by_owner(cluster.old_keys, cluster.old_owners);
  if (slot_mode) {
    decision.new_owners = new_slot_owners(cluster, plan);
    new_lists = lists_by_owner(cluster.new_keys, decision.new_owners);
  }

  const bool count_changed = plan.num_shards != cluster.num_shards;
  bool any_notice = false;
  decision.members.resize(cluster.members.size());
  for (std::size_t i = 0; i < cluster.members.size(); ++i) {
    const PolicyMember &before = cluster.members[i];
    const MemberOutcome &out = plan.outcomes[i];
    MemberDecision &d = decision.members[i];
    d.epoch = before.epoch;
    if (out.removed) {
      d.removed = true;
      d.state = before.state;
      d.shard = before.shard;
      // Only a member that was assigned has a row and was ever told.
      const bool stored = before.state != MemberState::Pending;
      d.row = stored ? RowAction::Delete : RowAction::None;
      d.notice = stored;
      any_notice = any_notice || stored;
      continue;
    }
    d.state = out.state;
    d.shard = out.state == MemberState::Active ? out.shard : kNoShard;
    if (slot_mode && d.state == MemberState::Active)
      d.slots = list_of(new_lists, before.id);
    const bool active_before = before.state == MemberState::Active;
    const bool active_after = d.state == MemberState::Active;
    d.changed = d.state != before.state ||
                (active_after && d.shard != before.shard) ||
                (active_after && slot_mode_before != slot_mode) ||
                (active_after && slot_mode && active_before &&
                 d.slots != list_of(old_lists, before.id));
    d.row = d.changed ? RowAction::Write : RowAction::None;
    d.notice = d.changed;
    any_notice = any_notice || d.changed;
  }

  decision.epoch_moves = any_notice || count_changed;
  decision.epoch = cluster.epoch + (decision.epoch_moves ? 1 : 0);
  decision.cluster_notice = decision.epoch_moves && count_changed;
  for (MemberDecision &d : decision.members) {
    if (d.removed) continue;
    if (d.changed || decision.cluster_notice) d.epoch = decision.epoch;
  }
  return decision;
}

bool decision_is_valid(const ReshardDecision &decision,
                       const PolicyCluster &cluster) {
  if (decision.num_shards < 0) return false;
  std::vector<int> holders(static_cast<std::size_t>(decision.num_shards), 0);
  std::unordered_map<std::uint64_t, std::size_t> active_ids;
  for (std::size_t i = 0; i < decision.members.size(); ++i) {
    const MemberDecision &d = decision.members[i];
    if (d.removed) continue;
    if (d.state == MemberState::Active) {
      if (d.shard < 0 || d.shard >= decision.num_shards) return false;
      ++holders[static_cast<std::size_t>(d.shard)];
      active_ids[cluster.members[i].id] = i;
    } else if (d.state != MemberState::Standby || d.shard != kNoShard ||
               !d.slots.empty()) {
      return false;
    }
  }
  if (!std::all_of(holders.begin(), holders.end(),
                   [](int h) { return h == 1; }))
    return false;
  if (cluster.new_keys.empty()) return true;
  // Slot mode: an exact cover by the active members, balanced (no owner
  // while nobody is active).
  if (decision.new_owners.size() != cluster.new_keys.size()) return false;
  if (active_ids.empty())
    return std::all_of(decision.new_owners.begin(), decision.new_owners.end(),
                       [](std::uint64_t owner) { return owner == kNoOwner; });
  std::unordered_map<std::uint64_t, std::size_t> counts;
  for (std::uint64_t owner : decision.new_owners) {
    if (active_ids.count(owner) == 0) return false;
    ++counts[owner];
  }
  if (counts.size() != active_ids.size()) return false;
  std::size_t least = cluster.new_keys.size();
  std::size_t most = 0;
  for (const auto &entry : counts) {
    least = std::min(least, entry.second);
    most = std::max(most, entry.second);
    const MemberDecision &d = decision.members[active_ids[entry.first]];
    if (d.slots.size() != entry.second) return false;
  }
  return most - least <= 1;
}

}  // namespace shard_coordinator
