#include "core/reshard_policy.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/slots.hpp"

namespace shard_coordinator {

namespace {

bool contains(const std::vector<std::int32_t> &sorted, std::int32_t key) {
  return std::binary_search(sorted.begin(), sorted.end(), key);
}

// The state of one step, built up in order: releases, targets, revocations,
// the key set's second phase, grants, and what everybody is told.
class Step {
 public:
  explicit Step(const PolicyCluster &c) : c_(c) {
    next_epoch_ = c.epoch + 1;
    for (std::size_t i = 0; i < c.members.size(); ++i)
      index_[c.members[i].id] = i;
    d_.num_shards = c.num_shards;
    d_.grant_count = c.grant_count;
    d_.keys = c.keys;
    d_.keys_pending = c.keys_pending;
    d_.next_keys = c.next_keys;
    d_.members.resize(c.members.size());
    for (std::size_t i = 0; i < c.members.size(); ++i) {
      const PolicyMember &m = c.members[i];
      MemberDecision &out = d_.members[i];
      out.state = m.state;
      out.shard = m.state == MemberState::Active ? m.shard : kNoShard;
      out.granted = m.granted && m.state == MemberState::Active;
      out.epoch = m.epoch;
    }
  }

  ReshardDecision run() {
    release();
    retarget();
    if (c_.mode == HandoverMode::Immediate) {
      immediate();
    } else {
      revoke();
      finish_key_change();
      grant();
      reclaim();
    }
    tell();
    return std::move(d_);
  }

 private:
  const PolicyMember *member(std::uint64_t id) const {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &c_.members[it->second];
  }

  // A member's hold is over: it acknowledged an epoch at or after the
  // revocation, it went and its work goes with it, or the deadline passed.
  // A member removed before this step (expired, its promise still running;
  // or dropped) holds until the deadline.
  bool released(std::uint64_t id, std::int64_t epoch,
                std::int64_t deadline) const {
    const bool deadline_passed =
        deadline != kDeadlineAtPublication && deadline <= c_.now;
    const PolicyMember *m = member(id);
    if (m == nullptr) return deadline_passed;
    if (m->acked >= epoch) return true;
    if (!m->alive && m->released_on_departure) return true;
    return deadline_passed;
  }

  void release() {
    std::vector<PolicyHold> kept;
    for (const PolicyHold &h : c_.holds) {
      if (c_.mode != HandoverMode::Immediate &&
          !released(h.member, h.epoch, h.deadline))
        kept.push_back(h);
      else
        stored_changed_ = true;
    }
    d_.holds = std::move(kept);
    for (PolicyKey &k : d_.keys) {
      if (k.holder == 0) continue;
      if (c_.mode == HandoverMode::Immediate ||
          released(k.holder, k.hold_epoch, k.hold_deadline)) {
        k.holder = 0;
        k.hold_epoch = 0;
        k.hold_deadline = 0;
        stored_changed_ = true;
      }
    }
  }

  // Slot mode after this step's key change (plain mode: false).
  bool slot_mode_eventually() const {
    return d_.keys_pending ? !d_.next_keys.empty() : !d_.keys.empty();
  }

  void retarget() {
    if (!c_.reshard) return;
    std::vector<MemberView> views;
    views.reserve(c_.members.size());
    for (const PolicyMember &m : c_.members)
      views.push_back(MemberView{m.id, m.state, m.shard, m.alive});
    std::int32_t cap = c_.max_shards;
    if (slot_mode_eventually()) {
      const auto nkeys = static_cast<std::int32_t>(
          d_.keys_pending ? d_.next_keys.size() : d_.keys.size());
      if (cap <= 0 || cap > nkeys) cap = nkeys;
    }
    const ReshardPlan plan = plan_reshard(views, c_.num_shards, cap);
    d_.num_shards = plan.num_shards;
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      const MemberOutcome &out = plan.outcomes[i];
      MemberDecision &m = d_.members[i];
      if (out.removed) {
        m.removed = true;
        continue;
      }
      m.state = out.state;
      m.shard = out.state == MemberState::Active ? out.shard : kNoShard;
    }
    retarget_keys();
  }

  // Active members by shard.
  std::vector<std::uint64_t> active_in_shard_order() const {
    std::vector<std::uint64_t> active(static_cast<std::size_t>(d_.num_shards),
                                      0);
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      const MemberDecision &m = d_.members[i];
      if (!m.removed && m.state == MemberState::Active)
        active[static_cast<std::size_t>(m.shard)] = c_.members[i].id;
    }
    return active;
  }

  // Targets of the keys, computed over the key set they are going to (so
  // that the keys in place move as little as once the set is complete); the
  // keys on their way out have no target.
  void retarget_keys() {
    if (d_.keys.empty()) return;
    const std::vector<std::int32_t> *eventual = &d_.next_keys;
    std::vector<std::int32_t> current;
    if (!d_.keys_pending) {
      for (const PolicyKey &k : d_.keys) current.push_back(k.key);
      eventual = &current;
    }
    std::vector<std::uint64_t> previous(eventual->size(), 0);
    std::size_t k = 0;
    for (std::size_t e = 0; e < eventual->size(); ++e) {
      while (k < d_.keys.size() && d_.keys[k].key < (*eventual)[e]) ++k;
      if (k < d_.keys.size() && d_.keys[k].key == (*eventual)[e])
        previous[e] = d_.keys[k].target;
    }
    const std::vector<std::uint64_t> owners =
        assign_slots(*eventual, previous, active_in_shard_order());
    for (PolicyKey &key : d_.keys) {
      auto at = std::lower_bound(eventual->begin(), eventual->end(), key.key);
      key.target =
          at != eventual->end() && *at == key.key
              ? owners[static_cast<std::size_t>(at - eventual->begin())]
              : 0;
    }
  }

  bool granted_before(std::size_t i) const {
    return c_.members[i].granted && c_.members[i].state == MemberState::Active;
  }

  void add_hold(std::uint64_t id, PlainGrant grant) {
    d_.holds.push_back(
        PolicyHold{id, grant, next_epoch_, kDeadlineAtPublication});
    stored_changed_ = true;
  }

  // The member's work goes with it (no hold) or is held.
  bool hold_needed(std::size_t i) const {
    return !(d_.members[i].removed && c_.members[i].released_on_departure);
  }

  void revoke() {
    // Plain grants that leave a member: it moved, went standby or away, or
    // the cluster is on its way to slot mode.
    const bool to_slots = slot_mode_eventually();
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      MemberDecision &m = d_.members[i];
      if (!m.granted) continue;
      const bool moved = m.removed || m.state != MemberState::Active ||
                         m.shard != c_.members[i].shard || to_slots;
      if (!moved) continue;
      if (hold_needed(i))
        add_hold(c_.members[i].id,
                 PlainGrant{c_.members[i].shard, c_.grant_count});
      m.granted = false;
    }
    // A change of the count.
    if (!to_slots && d_.num_shards != d_.grant_count) {
      const bool grows = d_.num_shards > d_.grant_count;
      bool any_granted = false;
      for (std::size_t i = 0; i < c_.members.size(); ++i) {
        MemberDecision &m = d_.members[i];
        if (!m.granted) continue;
        if (c_.mode == HandoverMode::Exclusive && !grows) {
          any_granted = true;  // a shrink: they keep working, grow later
          continue;
        }
        // Exclusive growth: each shard's keys only shrink, the member keeps
        // (shard, new count) and releases the rest. Barrier: all of it.
        add_hold(c_.members[i].id, PlainGrant{m.shard, d_.grant_count});
        if (c_.mode == HandoverMode::Exclusive)
          any_granted = true;
        else
          m.granted = false;
      }
      if (!any_granted || (c_.mode == HandoverMode::Exclusive && grows))
        d_.grant_count = d_.num_shards;
    }
    // Barrier mode trusts no nesting: a grant that shares keys with another
    // member's hold under its rule (a hold made at another count, under
    // exclusive mode before a switch) is revoked until that hold is over.
    if (!to_slots && c_.mode == HandoverMode::Barrier) {
      std::vector<std::size_t> conflicting;
      for (std::size_t i = 0; i < c_.members.size(); ++i) {
        const MemberDecision &m = d_.members[i];
        if (!m.granted) continue;
        const PlainGrant grant{m.shard, d_.grant_count};
        for (const PolicyHold &h : d_.holds)
          if (h.member != c_.members[i].id &&
              !grants_disjoint(grant, h.grant, c_.mode)) {
            conflicting.push_back(i);
            break;
          }
      }
      for (std::size_t i : conflicting) {
        add_hold(c_.members[i].id,
                 PlainGrant{d_.members[i].shard, d_.grant_count});
        d_.members[i].granted = false;
      }
    }
    if (to_slots && d_.grant_count != 0 && !any_plain_grant())
      d_.grant_count = 0;
    // Keys that leave their grantee; a key back with its holder before it
    // released it is its own again.
    for (PolicyKey &k : d_.keys) {
      if (k.holder != 0 && k.holder == k.target && k.grantee == 0) {
        k.grantee = k.holder;
        k.grant_epoch = next_epoch_;
        k.holder = 0;
        k.hold_epoch = 0;
        k.hold_deadline = 0;
        continue;
      }
      if (k.grantee == 0 || k.grantee == k.target) continue;
      auto it = index_.find(k.grantee);
      if (it != index_.end() && hold_needed(it->second)) {
        k.holder = k.grantee;
        k.hold_epoch = next_epoch_;
        k.hold_deadline = kDeadlineAtPublication;
      }
      k.grantee = 0;
      stored_changed_ = true;
    }
  }

  bool any_plain_grant() const {
    for (const MemberDecision &m : d_.members)
      if (m.granted) return true;
    return false;
  }

  // The second phase of a key-set change: once nobody holds the keys on
  // their way out (nor, on the way to slot mode, any plain grant), they go
  // and the new keys come.
  void finish_key_change() {
    if (!d_.keys_pending) return;
    for (const PolicyKey &k : d_.keys) {
      if (!contains(d_.next_keys, k.key) && (k.grantee != 0 || k.holder != 0))
        return;
    }
    if (!d_.next_keys.empty() && (any_plain_grant() || !d_.holds.empty()))
      return;
    apply_next_keys();
  }

  void apply_next_keys() {
    std::vector<PolicyKey> next;
    next.reserve(d_.next_keys.size());
    std::size_t k = 0;
    for (std::int32_t key : d_.next_keys) {
      while (k < d_.keys.size() && d_.keys[k].key < key) ++k;
      if (k < d_.keys.size() && d_.keys[k].key == key) {
        next.push_back(d_.keys[k]);
      } else {
        PolicyKey fresh;
        fresh.key = key;
        next.push_back(fresh);
      }
    }
    d_.keys = std::move(next);
    d_.keys_pending = false;
    d_.next_keys.clear();
    stored_changed_ = true;
    retarget_keys();
  }

  // Whether `grant` shares a key with what any member but `id` holds.
  bool plain_conflict(std::uint64_t id, PlainGrant grant) const {
    for (const PolicyHold &h : d_.holds)
      if (h.member != id && !grants_disjoint(grant, h.grant, c_.mode))
        return true;
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      const MemberDecision &m = d_.members[i];
      if (c_.members[i].id == id || !m.granted) continue;
      if (!grants_disjoint(grant, PlainGrant{m.shard, d_.grant_count}, c_.mode))
        return true;
    }
    return false;
  }

  void grant() {
    if (!c_.grants_allowed) return;
    if (slot_mode_eventually()) {
      grant_keys();
      return;
    }
    if (!d_.keys.empty()) return;  // slot keys still on their way out
    // A shrink: the members that stay grow to the new count together, once
    // nobody else holds any key of theirs.
    if (d_.grant_count != d_.num_shards && any_plain_grant()) {
      for (std::size_t i = 0; i < c_.members.size(); ++i) {
        const MemberDecision &m = d_.members[i];
        if (!m.granted) continue;
        const PlainGrant grown{m.shard, d_.num_shards};
        for (const PolicyHold &h : d_.holds)
          if (h.member != c_.members[i].id &&
              !grants_disjoint(grown, h.grant, c_.mode))
            return;
      }
      d_.grant_count = d_.num_shards;
    }
    if (!any_plain_grant()) d_.grant_count = d_.num_shards;
    // Every plain grant has the cluster's one count: nobody else is granted
    // before the members that stay have grown to the new count.
    if (d_.grant_count != d_.num_shards) return;
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      MemberDecision &m = d_.members[i];
      if (m.removed || m.granted || m.state != MemberState::Active ||
          !c_.members[i].alive)
        continue;
      const PlainGrant want{m.shard, d_.num_shards};
      if (!plain_conflict(c_.members[i].id, want)) m.granted = true;
    }
  }

  // A plain hold inside its own member's grant is void: those keys are its
  // own again (a handover undone before it ended, e.g. the newcomer it was
  // for went away).
  void reclaim() {
    std::vector<PolicyHold> kept;
    for (const PolicyHold &h : d_.holds) {
      auto it = index_.find(h.member);
      bool own = false;
      if (it != index_.end()) {
        const MemberDecision &m = d_.members[it->second];
        own =
            !m.removed && m.granted && m.state == MemberState::Active &&
            grant_inside(h.grant, PlainGrant{m.shard, d_.grant_count}, c_.mode);
      }
      if (own)
        stored_changed_ = true;
      else
        kept.push_back(h);
    }
    d_.holds = std::move(kept);
  }

  void grant_keys() {
    // Plain grants or holds left from plain mode: the keys wait.
    if (any_plain_grant() || !d_.holds.empty()) return;
    for (PolicyKey &k : d_.keys) {
      if (k.target == 0 || k.grantee != 0 || k.holder != 0) continue;
      const PolicyMember *m = member(k.target);
      if (m == nullptr || !m->alive) continue;
      k.grantee = k.target;
      k.grant_epoch = next_epoch_;
      stored_changed_ = true;
    }
  }

  void immediate() {
    d_.holds.clear();
    if (d_.keys_pending) apply_next_keys();
    for (PolicyKey &k : d_.keys) {
      k.holder = 0;
      k.hold_epoch = 0;
      k.hold_deadline = 0;
      if (k.grantee != k.target) {
        stored_changed_ = true;
        k.grant_epoch = next_epoch_;
      }
      k.grantee = k.target;
    }
    const bool slots = !d_.keys.empty();
    d_.grant_count = slots ? 0 : d_.num_shards;
    for (MemberDecision &m : d_.members)
      m.granted = !slots && !m.removed && m.state == MemberState::Active;
  }

  // Rows, notices, epochs.
  void tell() {
    const bool slots_after = !d_.keys.empty();
    const bool slots_before = !c_.keys.empty();
    std::unordered_map<std::uint64_t, std::vector<std::int32_t>> had;
    std::unordered_map<std::uint64_t, std::vector<std::int32_t>> has;
    std::unordered_map<std::uint64_t, std::vector<std::int32_t>> targets;
    std::unordered_map<std::uint64_t, std::vector<std::int32_t>> old_targets;
    for (const PolicyKey &k : c_.keys) {
      if (k.grantee != 0) had[k.grantee].push_back(k.key);
      if (k.target != 0) old_targets[k.target].push_back(k.key);
    }
    for (const PolicyKey &k : d_.keys) {
      if (k.grantee != 0) has[k.grantee].push_back(k.key);
      if (k.target != 0) targets[k.target].push_back(k.key);
    }
    // The count members see (rows' num_shards): plain mode, that of every
    // grant; slot mode, the active targets. It changes for everybody at
    // once: one cluster notice.
    const std::int32_t count_before =
        slots_before ? c_.num_shards : c_.grant_count;
    const std::int32_t count_after =
        slots_after ? d_.num_shards : d_.grant_count;
    const bool count_changed = count_after != count_before;
    bool anyone_told = false;
    std::vector<bool> stored_row_changed(c_.members.size(), false);
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      const PolicyMember &before = c_.members[i];
      MemberDecision &m = d_.members[i];
      if (m.removed) {
        const bool stored = before.state != MemberState::Pending;
        m.row = stored ? RowAction::Delete : RowAction::None;
        m.notice = stored;
        anyone_told = anyone_told || stored;
        stored_changed_ = stored_changed_ || stored;
        continue;
      }
      m.slots = has[before.id];
      m.target_slots = targets[before.id];
      const bool active = m.state == MemberState::Active;
      m.changed = m.state != before.state ||
                  (active && m.shard != before.shard) ||
                  m.granted != granted_before(i) || m.slots != had[before.id] ||
                  (active && slots_before != slots_after);
      const bool targets_changed = m.target_slots != old_targets[before.id];
      stored_row_changed[i] = m.changed || targets_changed;
      m.notice = m.changed;
      anyone_told = anyone_told || m.changed;
    }
    stored_changed_ = stored_changed_ || count_changed ||
                      d_.num_shards != c_.num_shards ||
                      d_.grant_count != c_.grant_count;
    for (bool b : stored_row_changed) stored_changed_ = stored_changed_ || b;
    d_.epoch_moves = anyone_told || count_changed || holds_added() ||
                     targets_moved(stored_row_changed);
    d_.epoch = c_.epoch + (d_.epoch_moves ? 1 : 0);
    d_.cluster_notice = d_.epoch_moves && count_changed;
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      MemberDecision &m = d_.members[i];
      if (m.removed) continue;
      if (m.changed || d_.cluster_notice) m.epoch = d_.epoch;
      if (stored_row_changed[i]) m.row = RowAction::Write;
    }
    // The epoch of a new hold is the epoch that publishes it.
    for (PolicyHold &h : d_.holds)
      if (h.deadline == kDeadlineAtPublication) h.epoch = d_.epoch;
    for (PolicyKey &k : d_.keys) {
      if (k.holder != 0 && k.hold_deadline == kDeadlineAtPublication)
        k.hold_epoch = d_.epoch;
      // A key granted in this step (the epoch moves then).
      if (k.grant_epoch == next_epoch_) k.grant_epoch = d_.epoch;
    }
    // The oldest hold of each member, for its acknowledgements.
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      const std::uint64_t id = c_.members[i].id;
      std::int64_t oldest = 0;
      for (const PolicyHold &h : d_.holds)
        if (h.member == id && (oldest == 0 || h.epoch < oldest))
          oldest = h.epoch;
      for (const PolicyKey &k : d_.keys)
        if (k.holder == id && (oldest == 0 || k.hold_epoch < oldest))
          oldest = k.hold_epoch;
      d_.members[i].hold_epoch = oldest;
    }
    d_.handover_pending = pending();
    d_.store = stored_changed_ || d_.epoch_moves;
  }

  bool holds_added() const {
    for (const PolicyHold &h : d_.holds)
      if (h.deadline == kDeadlineAtPublication) return true;
    for (const PolicyKey &k : d_.keys)
      if (k.holder != 0 && k.hold_deadline == kDeadlineAtPublication)
        return true;
    return false;
  }

  bool targets_moved(const std::vector<bool> &rows) const {
    for (bool b : rows)
      if (b) return true;
    return false;
  }

  bool pending() const {
    if (!d_.holds.empty() || d_.keys_pending) return true;
    for (const PolicyKey &k : d_.keys) {
      if (k.holder != 0) return true;
      if (k.target != 0 && k.grantee != k.target) {
        const PolicyMember *m = member(k.target);
        if (m != nullptr && m->alive) return true;
      }
    }
    if (!d_.keys.empty()) return false;
    for (std::size_t i = 0; i < c_.members.size(); ++i) {
      const MemberDecision &m = d_.members[i];
      if (m.removed || m.state != MemberState::Active || !c_.members[i].alive)
        continue;
      if (!m.granted || d_.grant_count != d_.num_shards) return true;
    }
    return false;
  }

  const PolicyCluster &c_;
  ReshardDecision d_;
  std::unordered_map<std::uint64_t, std::size_t> index_;
  std::int64_t next_epoch_ = 0;
  bool stored_changed_ = false;
};

}  // namespace

ReshardDecision decide_reshard(const PolicyCluster &cluster) {
  return Step(cluster).run();
}

namespace {

// Whether the plain grants (all of one count) are pairwise disjoint and
// disjoint from the other members' holds, as grants_disjoint() says; in
// O((grants + holds) log grants), not pairwise: a cluster of 10,000 granted
// members would otherwise cost 5 * 10^7 comparisons a step.
const char *plain_grants_problem(
    const std::vector<std::pair<std::uint64_t, PlainGrant>> &grants,
    const std::vector<PolicyHold> &holds, HandoverMode mode) {
  if (grants.empty()) return nullptr;
  const std::int32_t n = grants.front().second.count;  // every grant's
  // Two grants of one count share keys if they have one shard; and, but
  // under barrier, if the later of the two lies outside the count
  // (grants_disjoint(a, b) needs b.shard < count).
  std::unordered_map<std::int32_t, std::uint64_t> owner;  // shard -> member
  std::unordered_map<std::uint64_t, std::int32_t> shard_of;
  std::vector<std::int32_t> shards;
  for (std::size_t i = 0; i < grants.size(); ++i) {
    const PlainGrant g = grants[i].second;
    if (i > 0 && mode != HandoverMode::Barrier && g.shard >= n)
      return "two plain grants share keys";
    if (!owner.emplace(g.shard, grants[i].first).second)
      return "two plain grants share keys";
    shard_of[grants[i].first] = g.shard;
    shards.push_back(g.shard);
  }
  std::sort(shards.begin(), shards.end());
  // How many grants have a shard >= s.
  auto at_or_above = [&](std::int32_t s) {
    return static_cast<std::size_t>(
        shards.end() - std::lower_bound(shards.begin(), shards.end(), s));
  };
  for (const PolicyHold &h : holds) {
    const PlainGrant hg = h.grant;
    if (hg.count == 0) continue;  // no keys
    // A grant of another member with this shard, other than the holder's.
    const auto same = owner.find(hg.shard);
    const bool same_shard_other =
        same != owner.end() && same->second != h.member;
    // Every grant but the holder's own.
    const bool any_other =
        grants.size() > (shard_of.count(h.member) != 0 ? 1u : 0u);
    bool shares = false;
    if (mode == HandoverMode::Barrier) {
      // Disjoint only at the same count and another shard.
      shares = hg.count != n ? any_other : same_shard_other;
    } else if (n <= hg.count) {
      // grants_disjoint(grant, hold): hold.shard < n and shards differ.
      shares = hg.shard >= n ? any_other : same_shard_other;
    } else {
      // grants_disjoint(hold, grant): grant.shard < hold.count and shards
      // differ. Grants with shard >= hold.count share keys with it.
      std::size_t above = at_or_above(hg.count);
      const auto own = shard_of.find(h.member);
      if (own != shard_of.end() && own->second >= hg.count) --above;
      shares = above > 0 || same_shard_other;
    }
    if (shares) return "a plain grant shares keys with another member's hold";
  }
  return nullptr;
}

}  // namespace

const char *decision_problem(const ReshardDecision &d, const PolicyCluster &c) {
  // Targets: shards 0 .. num_shards-1, one member each.
  if (d.num_shards < 0) return "negative num_shards";
  std::vector<int> holders(static_cast<std::size_t>(d.num_shards), 0);
  std::unordered_set<std::uint64_t> active;
  for (std::size_t i = 0; i < d.members.size(); ++i) {
    const MemberDecision &m = d.members[i];
    if (m.removed) continue;
    if (m.state == MemberState::Active) {
      if (m.shard < 0 || m.shard >= d.num_shards)
        return "an active target out of range";
      ++holders[static_cast<std::size_t>(m.shard)];
      active.insert(c.members[i].id);
    } else if (m.shard != kNoShard || m.granted) {
      return "a member that is not active has a shard or a grant";
    }
  }
  for (int h : holders)
    if (h != 1) return "a target shard with no or several members";
  // Slot targets: every key in the set has an active target, balanced.
  const bool set_settled = !d.keys_pending;
  if (set_settled && !d.keys.empty()) {
    std::unordered_map<std::uint64_t, std::size_t> counts;
    for (const PolicyKey &k : d.keys) {
      if (active.empty()) {
        if (k.target != 0) return "a key targets a member that is not active";
        continue;
      }
      if (active.count(k.target) == 0) return "a key without an active target";
      ++counts[k.target];
    }
    if (!active.empty()) {
      if (counts.size() != active.size())
        return "an active member without keys";
      std::size_t least = d.keys.size();
      std::size_t most = 0;
      for (const auto &e : counts) {
        least = std::min(least, e.second);
        most = std::max(most, e.second);
      }
      if (most - least > 1) return "unbalanced keys";
    }
  }
  // Exclusivity of keys: a granted key has nobody else on hold.
  for (const PolicyKey &k : d.keys) {
    if (k.grantee != 0 && k.holder != 0 && k.holder != k.grantee)
      return "a key granted while another member holds it";
    if (k.grantee != 0 && k.grantee != k.target)
      return "a key granted to a member that is not its target";
  }
  // Exclusivity of plain grants: pairwise disjoint, and disjoint from the
  // other members' holds; no plain grant while slot keys are held.
  std::vector<std::pair<std::uint64_t, PlainGrant>> grants;
  for (std::size_t i = 0; i < d.members.size(); ++i)
    if (!d.members[i].removed && d.members[i].granted)
      grants.emplace_back(c.members[i].id,
                          PlainGrant{d.members[i].shard, d.grant_count});
  if (!grants.empty()) {
    for (const PolicyKey &k : d.keys)
      if (k.grantee != 0 || k.holder != 0)
        return "a plain grant while slot keys are held";
    if (d.grant_count <= 0) return "a plain grant with no count";
  }
  if (const char *problem = plain_grants_problem(grants, d.holds, c.mode))
    return problem;
  for (const PolicyKey &k : d.keys)
    if (k.grantee != 0 && !d.holds.empty())
      return "a slot key granted while plain grants are held";
  return "";
}

}  // namespace shard_coordinator
