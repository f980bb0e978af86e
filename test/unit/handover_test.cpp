// Exclusive handover, tested against an independent model of the clients.
//
// A simulation runs the reshard policy (core/reshard_policy.hpp) over random
// histories: joins, leaves, deaths, heartbeats, acknowledgements (early,
// late, stale, never: two-argument clients), lost notices, max_shards
// changes, slot-set changes (keys removed and added back) and switches
// between plain and slot mode, swaps and chains. Each step is published as
// the worker publishes it (a new hold's deadline is the promise of the
// member's last heartbeat). Each simulated client follows the protocol
// (docs/design.md, "The protocol"): it works on the newest grant it heard
// of, and stops revoked work by the lease end it held when it learned of
// the revocation, acknowledging (if it does) only once it stopped.
//
// The oracle does not use the policy's own bookkeeping: work items are
// integers; an item belongs to plain grant (s, n) when jump_hash(item, n) =
// s and to slot key k when item % 64 = k. At every moment no item may be
// worked on by two members. Also checked: the policy's own invariants
// (decision_problem), liveness (with stable membership and acknowledging
// clients everything ends up granted), and that in plain mode a member that
// stays is never revoked to nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/grants.hpp"
#include "core/jump_hash.hpp"
#include "core/reshard_policy.hpp"

namespace shard_coordinator {
namespace {

// ---- Grants, checked on concrete keys ---------------------------------------

// Does the nesting rule hold for real keys? (grants_disjoint / grant_inside
// against a brute-force count over 20,000 keys.)
TEST(Grants, DisjointAndInsideAgreeWithJumpHash) {
  for (std::int32_t n = 1; n <= 7; ++n) {
    for (std::int32_t m = 1; m <= 7; ++m) {
      for (std::int32_t a = 0; a < n; ++a) {
        for (std::int32_t b = 0; b < m; ++b) {
          bool share = false;
          bool b_in_a = true;
          for (std::uint64_t x = 0; x < 20000; ++x) {
            const bool in_a = jump_consistent_hash(x, n) == a;
            const bool in_b = jump_consistent_hash(x, m) == b;
            share = share || (in_a && in_b);
            if (in_b && !in_a) b_in_a = false;
          }
          EXPECT_EQ(grants_disjoint({a, n}, {b, m}, HandoverMode::Exclusive),
                    !share)
              << a << "/" << n << " and " << b << "/" << m;
          EXPECT_EQ(grant_inside({b, m}, {a, n}, HandoverMode::Exclusive),
                    b_in_a)
              << b << "/" << m << " inside " << a << "/" << n;
        }
      }
    }
  }
}

TEST(Grants, BarrierIsDisjointOnlyAtTheSameCount) {
  EXPECT_TRUE(grants_disjoint({0, 3}, {1, 3}, HandoverMode::Barrier));
  EXPECT_FALSE(grants_disjoint({0, 3}, {1, 4}, HandoverMode::Barrier));
  EXPECT_FALSE(grant_inside({0, 4}, {0, 3}, HandoverMode::Barrier));
  EXPECT_TRUE(grant_inside({0, 3}, {0, 3}, HandoverMode::Barrier));
}

// ---- Examples
// ----------------------------------------------------------------

PolicyMember active(std::uint64_t id, std::int32_t shard, bool granted,
                    std::int64_t epoch) {
  PolicyMember m;
  m.id = id;
  m.state = MemberState::Active;
  m.shard = shard;
  m.granted = granted;
  m.epoch = epoch;
  return m;
}

PolicyMember pending(std::uint64_t id) {
  PolicyMember m;
  m.id = id;
  return m;
}

// Three members, a fourth joins: the three keep working on a smaller share
// at once (revoked, held), the newcomer waits until they acknowledge.
TEST(Handover, GrowthRevokesAtOnceAndGrantsAfterTheAcknowledgements) {
  PolicyCluster c;
  c.epoch = 10;
  c.num_shards = 3;
  c.grant_count = 3;
  c.reshard = true;
  c.members = {active(1, 0, true, 5), active(2, 1, true, 6),
               active(3, 2, true, 7), pending(4)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_EQ(d.epoch, 11);
  EXPECT_EQ(d.num_shards, 4);
  EXPECT_EQ(d.grant_count, 4);
  EXPECT_TRUE(d.cluster_notice);  // the three: count 3 -> 4, one notice
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(d.members[i].granted);
    EXPECT_FALSE(d.members[i].notice);
    EXPECT_EQ(d.members[i].hold_epoch, 11);
  }
  EXPECT_FALSE(d.members[3].granted);  // withheld
  EXPECT_TRUE(d.members[3].notice);    // pending -> active
  ASSERT_EQ(d.holds.size(), 3U);
  EXPECT_TRUE(d.handover_pending);

  // Two acknowledge epoch 11: still withheld. The third too: granted.
  PolicyCluster next = c;
  next.reshard = false;
  next.epoch = d.epoch;
  next.num_shards = d.num_shards;
  next.grant_count = d.grant_count;
  next.holds = d.holds;
  for (PolicyHold &h : next.holds) h.deadline = 1000000;
  for (std::size_t i = 0; i < 4; ++i) {
    next.members[i].state = d.members[i].state;
    next.members[i].shard = d.members[i].shard;
    next.members[i].granted = d.members[i].granted;
    next.members[i].epoch = d.members[i].epoch;
  }
  next.members[0].acked = 11;
  next.members[1].acked = 11;
  ReshardDecision d2 = decide_reshard(next);
  ASSERT_STREQ(decision_problem(d2, next), "");
  EXPECT_FALSE(d2.members[3].granted);
  next.members[2].acked = 11;
  ReshardDecision d3 = decide_reshard(next);
  ASSERT_STREQ(decision_problem(d3, next), "");
  EXPECT_TRUE(d3.members[3].granted);
  EXPECT_TRUE(d3.members[3].notice);
  EXPECT_FALSE(d3.handover_pending);
  EXPECT_TRUE(d3.holds.empty());
}

// A two-argument client never acknowledges: its hold ends with the promise.
TEST(Handover, ADeadlineReleasesWithoutAcknowledgement) {
  PolicyCluster c;
  c.epoch = 11;
  c.num_shards = 2;
  c.grant_count = 2;
  c.now = 5000;
  c.members = {active(1, 0, true, 11), active(2, 1, false, 11)};
  c.holds = {PolicyHold{1, {0, 1}, 11, 4000}};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_TRUE(d.members[1].granted);
  EXPECT_TRUE(d.holds.empty());
  c.now = 3999;
  d = decide_reshard(c);
  EXPECT_FALSE(d.members[1].granted);
}

// A member that leaves itself releases at once: the next one takes over
// in the same step.
TEST(Handover, AnOwnLeaveReleasesAtOnce) {
  PolicyCluster c;
  c.epoch = 3;
  c.num_shards = 1;
  c.grant_count = 1;
  c.reshard = true;
  PolicyMember leaving = active(1, 0, true, 2);
  leaving.alive = false;
  c.members = {leaving, pending(2)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_TRUE(d.members[0].removed);
  EXPECT_TRUE(d.members[1].granted);
  EXPECT_TRUE(d.holds.empty());
}

// A newcomer that leaves before the members it was waiting for have
// acknowledged: they get their old share back at once (their holds are
// inside their grants again) and nothing is left pending; nobody waits for
// a lease.
TEST(Handover, ANewcomerLeavingBeforeTheHandoverEndsGivesTheSharesBack) {
  PolicyCluster c;
  c.epoch = 4;
  c.num_shards = 2;
  c.grant_count = 2;
  c.reshard = true;
  c.members = {active(1, 0, true, 3), active(2, 1, true, 4), pending(3)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  ASSERT_EQ(d.grant_count, 3);
  ASSERT_EQ(d.holds.size(), 2U);
  ASSERT_FALSE(d.members[2].granted);

  PolicyCluster next = c;
  next.epoch = d.epoch;
  next.num_shards = d.num_shards;
  next.grant_count = d.grant_count;
  next.holds = d.holds;
  for (PolicyHold &h : next.holds) h.deadline = 1000000;
  for (std::size_t i = 0; i < 3; ++i) {
    next.members[i].state = d.members[i].state;
    next.members[i].shard = d.members[i].shard;
    next.members[i].granted = d.members[i].granted;
    next.members[i].epoch = d.members[i].epoch;
  }
  next.members[2].alive = false;  // it left; nobody acknowledged
  ReshardDecision d2 = decide_reshard(next);
  ASSERT_STREQ(decision_problem(d2, next), "");
  EXPECT_TRUE(d2.members[2].removed);
  EXPECT_EQ(d2.num_shards, 2);
  EXPECT_EQ(d2.grant_count, 2);
  EXPECT_TRUE(d2.members[0].granted);
  EXPECT_TRUE(d2.members[1].granted);
  EXPECT_TRUE(d2.holds.empty());
  EXPECT_FALSE(d2.handover_pending);
  EXPECT_TRUE(d2.cluster_notice);  // count 3 -> 2
}

// An expired member is removed at once, but its work stays held until its
// promise ends: also in the steps after its removal, when the member is
// gone from the cluster.
TEST(Handover, AnExpiredMembersHoldOutlivesItsRemoval) {
  PolicyCluster c;
  c.epoch = 3;
  c.num_shards = 1;
  c.grant_count = 1;
  c.reshard = true;
  c.now = 100;
  PolicyMember expired = active(1, 0, true, 2);
  expired.alive = false;
  expired.released_on_departure = false;  // its promise runs until 1000
  c.members = {expired, pending(2)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_TRUE(d.members[0].removed);
  EXPECT_FALSE(d.members[1].granted);
  ASSERT_EQ(d.holds.size(), 1U);

  PolicyCluster next;
  next.epoch = d.epoch;
  next.num_shards = d.num_shards;
  next.grant_count = d.grant_count;
  next.now = 500;
  next.holds = d.holds;
  next.holds[0].deadline = 1000;
  PolicyMember second =
      active(2, d.members[1].shard, false, d.members[1].epoch);
  next.members = {second};
  ReshardDecision d2 = decide_reshard(next);
  ASSERT_STREQ(decision_problem(d2, next), "");
  EXPECT_FALSE(d2.members[0].granted);
  EXPECT_EQ(d2.holds.size(), 1U);
  EXPECT_TRUE(d2.handover_pending);
  next.now = 1000;
  ReshardDecision d3 = decide_reshard(next);
  ASSERT_STREQ(decision_problem(d3, next), "");
  EXPECT_TRUE(d3.members[0].granted);
  EXPECT_TRUE(d3.holds.empty());
}

// A swap in slot mode: each gives up a key the other gets; both revocations
// are published at once, each grant follows its holder's acknowledgement.
TEST(Handover, SlotSwapCompletes) {
  PolicyCluster c;
  c.epoch = 5;
  c.num_shards = 2;
  c.members = {active(1, 0, false, 5), active(2, 1, false, 5)};
  // Keys 1 and 2: targets swapped relative to the grantees.
  c.keys = {PolicyKey{1, 2, 1, 0, 0, 0}, PolicyKey{2, 1, 2, 0, 0, 0}};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_EQ(d.keys[0].grantee, 0U);
  EXPECT_EQ(d.keys[0].holder, 1U);
  EXPECT_EQ(d.keys[1].holder, 2U);
  PolicyCluster next = c;
  next.epoch = d.epoch;
  next.keys = d.keys;
  for (PolicyKey &k : next.keys) k.hold_deadline = 1000000;
  next.members[0].acked = d.epoch;
  ReshardDecision d2 = decide_reshard(next);
  ASSERT_STREQ(decision_problem(d2, next), "");
  EXPECT_EQ(d2.keys[0].grantee, 2U);  // 1 released key 1: 2 gets it
  EXPECT_EQ(d2.keys[1].grantee, 0U);  // 2 has not released key 2 yet
}

// A key that comes back to its holder before it released it is its own
// again: the revocation is void.
TEST(Handover, AKeyBackWithItsHolderIsVoid) {
  PolicyCluster c;
  c.epoch = 5;
  c.num_shards = 1;
  c.members = {active(1, 0, false, 5)};
  c.keys = {PolicyKey{7, 1, 0, 1, 4, 100000}};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_EQ(d.keys[0].grantee, 1U);
  EXPECT_EQ(d.keys[0].holder, 0U);
}

TEST(Handover, ImmediateGrantsAtOnce) {
  PolicyCluster c;
  c.mode = HandoverMode::Immediate;
  c.epoch = 10;
  c.num_shards = 2;
  c.grant_count = 2;
  c.reshard = true;
  c.members = {active(1, 0, true, 5), active(2, 1, true, 6), pending(3)};
  c.holds = {PolicyHold{1, {0, 1}, 9, 1000000}};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_TRUE(d.members[2].granted);
  EXPECT_TRUE(d.holds.empty());
  EXPECT_FALSE(d.handover_pending);
}

TEST(Handover, BarrierRevokesEveryoneOnACountChange) {
  PolicyCluster c;
  c.mode = HandoverMode::Barrier;
  c.epoch = 10;
  c.num_shards = 2;
  c.grant_count = 2;
  c.reshard = true;
  c.members = {active(1, 0, true, 5), active(2, 1, true, 6), pending(3)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  for (const MemberDecision &m : d.members) EXPECT_FALSE(m.granted);
  EXPECT_EQ(d.holds.size(), 2U);
}

TEST(Handover, NoGrantsWhileGrantsAreHeld) {
  PolicyCluster c;
  c.epoch = 1;
  c.reshard = true;
  c.grants_allowed = false;
  c.members = {pending(1)};
  ReshardDecision d = decide_reshard(c);
  ASSERT_STREQ(decision_problem(d, c), "");
  EXPECT_EQ(d.members[0].state, MemberState::Active);
  EXPECT_FALSE(d.members[0].granted);
  EXPECT_TRUE(d.handover_pending);
}

// ---- The simulation
// ------------------------------------------------------------

constexpr std::int64_t kLease = 1000;  // ms: heartbeat 300 + grace 700
constexpr std::int64_t kInterval = 300;
constexpr int kItems = 4000;
constexpr std::int32_t kSlotOf = 64;  // item -> slot key item % 64

// What a member may work on: a plain grant or slot keys.
struct Work {
  bool plain = false;
  PlainGrant grant;
  std::vector<std::int32_t> keys;
  bool empty() const { return plain ? grant.count == 0 : keys.empty(); }
  bool covers(int item) const {
    if (plain)
      return grant.count > 0 &&
             jump_consistent_hash(static_cast<std::uint64_t>(item),
                                  grant.count) == grant.shard;
    return std::binary_search(keys.begin(), keys.end(), item % kSlotOf);
  }
};

// A piece of revoked work the client still does, until `until`.
struct Fading {
  Work work;
  std::int64_t until;
};

struct Client {
  std::uint64_t id = 0;
  bool acks = true;  // sends applied_epoch
  // The server expires it this long after its last heartbeat; shorter than
  // the lease it was promised when the cluster's lease was shortened since
  // (the promise still stands: it may work on until stamp + kLease).
  std::int64_t expires_after = kLease;
  bool alive = true;       // heartbeats (false: died or left)
  bool left = false;       // left by its own leave()
  std::int64_t stamp = 0;  // last heartbeat (its send time)
  // What it works on: the newest grant it heard of, at epoch told_epoch.
  Work told;
  std::int64_t told_epoch = -1;
  std::vector<Fading> fading;
  std::int64_t ack_pending = 0;  // epoch to acknowledge once stopped
  std::int64_t stop_at = 0;      // when its revoked work has stopped
  std::int64_t acked_sent = 0;   // the server's view of its acknowledgement
};

struct World {
  std::mt19937_64 rng;
  PolicyCluster server;  // the published state, in the policy's own terms
  std::map<std::uint64_t, Client> clients;
  std::uint64_t next_id = 1;
  std::int64_t now = 0;
  std::int64_t violations = 0;
  std::int64_t grants_seen = 0;
  std::string first_violation;

  explicit World(std::uint64_t seed) : rng(seed) {}

  int uniform(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  }

  // What the published state grants member `id`.
  Work grant_of(std::uint64_t id) const {
    Work w;
    if (!server.keys.empty()) {
      for (const PolicyKey &k : server.keys)
        if (k.grantee == id) w.keys.push_back(k.key);
      return w;
    }
    w.plain = true;
    for (const PolicyMember &m : server.members)
      if (m.id == id && m.granted && m.state == MemberState::Active)
        w.grant = PlainGrant{m.shard, server.grant_count};
    return w;
  }

  std::int64_t epoch_of(std::uint64_t id) const {
    for (const PolicyMember &m : server.members)
      if (m.id == id) return m.epoch;
    return 0;
  }

  bool registered(std::uint64_t id) const {
    for (const PolicyMember &m : server.members)
      if (m.id == id) return true;
    return false;
  }

  // The client hears of the published grant (a notice or a heartbeat row).
  // `lease_end` is the lease end it held when it learned: revoked work stops
  // by then (a heartbeat row that tells of a revocation does not extend the
  // revoked work's lease).
  void learn(Client &c, std::int64_t lease_end) {
    if (!registered(c.id)) {
      // Removed: it stops everything at once (it holds no lease here).
      c.told = Work{};
      c.fading.clear();
      c.told_epoch = -1;
      return;
    }
    const std::int64_t epoch = epoch_of(c.id);
    if (epoch < c.told_epoch) return;  // older than what it knows
    Work next = grant_of(c.id);
    bool same = next.plain == c.told.plain && next.keys == c.told.keys &&
                next.grant.shard == c.told.grant.shard &&
                next.grant.count == c.told.grant.count;
    if (!same && !c.told.empty()) {
      // The old grant fades out by the lease end it holds now; an
      // acknowledging client stops sooner and then acknowledges.
      std::int64_t until = lease_end;
      if (c.acks) until = std::min(lease_end, now + uniform(0, 400));
      c.fading.push_back(Fading{c.told, until});
      c.stop_at = std::max(c.stop_at, until);
    }
    c.told = next;
    c.told_epoch = epoch;
    if (c.acks) c.ack_pending = epoch;
  }

  void heartbeat(Client &c) {
    if (!c.alive) return;
    const std::int64_t lease_end = c.stamp + kLease;
    c.stamp = now;
    if (!registered(c.id)) {
      PolicyMember m;
      m.id = c.id;
      m.epoch = 0;
      server.members.push_back(m);
    }
    // Acknowledge what it applied, once its revoked work has stopped (a
    // stale or early value sometimes).
    for (PolicyMember &m : server.members) {
      if (m.id != c.id) continue;
      std::int64_t ack = 0;
      if (c.acks && c.ack_pending > 0 && now >= c.stop_at) ack = c.ack_pending;
      if (c.acks && uniform(0, 20) == 0)
        ack = std::max<std::int64_t>(0, ack - 3);
      if (ack > 0) m.acked = std::max(m.acked, ack);
      c.acked_sent = m.acked;
    }
    learn(c, lease_end);
  }

  // The client's own lease ran out: it stops everything.
  void self_fence(Client &c) {
    if (c.stamp + kLease <= now) {
      c.told = Work{};
      c.fading.clear();
    }
  }

  // Until then the history makes no claim of exclusivity: one lease after
  // a switch back from immediate mode (what it handed over was not held).
  std::int64_t unchecked_until = 0;

  void check_exclusive() {
    std::vector<const Client *> working;
    for (auto &entry : clients) {
      Client &c = entry.second;
      c.fading.erase(
          std::remove_if(c.fading.begin(), c.fading.end(),
                         [this](const Fading &f) { return f.until <= now; }),
          c.fading.end());
      self_fence(c);
      if (c.left) {
        c.told = Work{};
        c.fading.clear();
      }
      working.push_back(&c);
    }
    for (int item = 0; item < kItems; item += 7) {
      const Client *owner = nullptr;
      for (const Client *c : working) {
        bool works = c->told.covers(item);
        for (const Fading &f : c->fading) works = works || f.work.covers(item);
        if (!works) continue;
        if (owner != nullptr && owner != c && now >= unchecked_until &&
            server.mode != HandoverMode::Immediate) {
          ++violations;
          if (first_violation.empty())
            first_violation = "item " + std::to_string(item) +
                              " worked on by " + std::to_string(owner->id) +
                              " and " + std::to_string(c->id) + " at " +
                              std::to_string(now) + " (checked from " +
                              std::to_string(unchecked_until) + ")";
        }
        owner = c;
      }
    }
  }

  // One step of the policy, published.
  void step(bool reshard) {
    PolicyCluster in = server;
    in.reshard = reshard;
    in.now = now;
    for (PolicyMember &m : in.members) {
      const Client &c = clients.at(m.id);
      // What the server can know: its own leave, or the promise of its
      // last heartbeat ended (a client that stopped heartbeating may work
      // on until then).
      const bool expired = c.stamp + c.expires_after <= now;
      m.alive = !expired && !c.left;
      m.released_on_departure = c.left || c.stamp + kLease <= now;
    }
    ReshardDecision d = decide_reshard(in);
    const char *problem = decision_problem(d, in);
    ASSERT_STREQ(problem, "") << "at " << now;
    // Publish.
    server.epoch = d.epoch;
    server.num_shards = d.num_shards;
    server.grant_count = d.grant_count;
    server.keys = d.keys;
    server.keys_pending = d.keys_pending;
    server.next_keys = d.next_keys;
    server.holds = d.holds;
    std::vector<PolicyMember> members;
    for (std::size_t i = 0; i < in.members.size(); ++i) {
      const MemberDecision &m = d.members[i];
      if (m.removed) continue;
      PolicyMember p = in.members[i];
      p.state = m.state;
      p.shard = m.shard;
      p.granted = m.granted;
      p.epoch = m.epoch;
      members.push_back(p);
    }
    server.members = members;
    // A new hold's deadline: the promise of the member's last heartbeat.
    for (PolicyHold &h : server.holds)
      if (h.deadline == kDeadlineAtPublication)
        h.deadline = clients.at(h.member).stamp + kLease;
    for (PolicyKey &k : server.keys)
      if (k.holder != 0 && k.hold_deadline == kDeadlineAtPublication)
        k.hold_deadline = clients.at(k.holder).stamp + kLease;
    // Notices: most arrive at once, some are lost.
    for (std::size_t i = 0; i < d.members.size(); ++i) {
      if (!d.members[i].notice && !d.cluster_notice) continue;
      Client &c = clients.at(in.members[i].id);
      if (c.alive && !c.left && uniform(0, 4) > 0) learn(c, c.stamp + kLease);
    }
    for (const MemberDecision &m : d.members) grants_seen += m.granted ? 1 : 0;
  }
};

void run_history(std::uint64_t seed, HandoverMode mode, bool slots, int steps,
                 World *out_world) {
  World w(seed);
  w.server.mode = mode;
  if (slots) {
    w.server.keys_pending = true;
    for (int k = 0; k < 24; ++k) w.server.next_keys.push_back(k * 2);
  }
  int immediate_until = -1;  // the step at which an immediate spell ends
  for (int s = 0; s < steps; ++s) {
    w.now += w.uniform(0, 250);
    const int event = w.uniform(0, 19);
    bool membership = false;
    if (s == immediate_until) {
      // Back from immediate: exclusive again one lease later.
      w.server.mode = mode;
      w.unchecked_until = w.now + kLease;
      immediate_until = -1;
    }
    if (event <= 2 || w.clients.size() < 2) {
      Client c;
      c.id = w.next_id++;
      c.acks = w.uniform(0, 3) > 0;
      if (w.uniform(0, 3) == 0) c.expires_after = kLease / 2;
      c.stamp = w.now;
      w.clients[c.id] = c;
      w.heartbeat(w.clients[c.id]);
      membership = true;
    } else if (event == 3) {
      // An own leave: the client stops first, then leaves.
      for (auto &e : w.clients)
        if (e.second.alive && w.uniform(0, 3) == 0) {
          e.second.left = true;
          e.second.alive = false;
          membership = true;
          break;
        }
    } else if (event == 4) {
      for (auto &e : w.clients)
        if (e.second.alive && w.uniform(0, 3) == 0) {
          e.second.alive = false;  // dies: stops heartbeating
          break;
        }
    } else if (event == 5) {
      w.server.max_shards = w.uniform(0, 6);
      membership = true;
    } else if (event == 6) {
      // A new key set: sometimes plain mode, else a few keys (some back).
      w.server.keys_pending = true;
      w.server.next_keys.clear();
      if (w.uniform(0, 3) > 0) {
        std::set<std::int32_t> keys;
        const int n = w.uniform(1, 20);
        while (static_cast<int>(keys.size()) < n)
          keys.insert(w.uniform(0, kSlotOf - 1));
        w.server.next_keys.assign(keys.begin(), keys.end());
      }
      membership = true;
    } else if (event == 7 && immediate_until < 0) {
      // Switching between the two exclusive modes keeps every hold.
      w.server.mode = w.server.mode == HandoverMode::Exclusive
                          ? HandoverMode::Barrier
                          : HandoverMode::Exclusive;
    } else if (event == 8 && immediate_until < 0 && w.uniform(0, 3) == 0) {
      // A spell of immediate mode: withheld work is granted at once.
      w.server.mode = HandoverMode::Immediate;
      immediate_until = s + w.uniform(1, 6);
    }
    // Heartbeats of the live clients that are due.
    for (auto &e : w.clients) {
      Client &c = e.second;
      if (c.alive && w.now - c.stamp >= kInterval - w.uniform(0, 100))
        w.heartbeat(c);
    }
    w.step(membership || w.uniform(0, 3) == 0);
    if (::testing::Test::HasFatalFailure()) return;
    w.check_exclusive();
  }
  if (immediate_until >= 0) {
    w.server.mode = mode;
    w.unchecked_until = w.now + kLease;
  }
  // Liveness: stable membership, everybody heartbeats and acknowledges:
  // every target ends up granted.
  for (auto &e : w.clients) e.second.acks = true;
  for (int s = 0; s < 60; ++s) {
    w.now += 100;
    for (auto &e : w.clients) w.heartbeat(e.second);
    w.step(true);
    if (::testing::Test::HasFatalFailure()) return;
    w.check_exclusive();
  }
  PolicyCluster last = w.server;
  last.now = w.now;
  last.reshard = true;
  for (PolicyMember &m : last.members) {
    const Client &c = w.clients.at(m.id);
    m.alive = !c.left && c.stamp + kLease > w.now;
  }
  ReshardDecision d = decide_reshard(last);
  EXPECT_FALSE(d.handover_pending)
      << "seed " << seed << ": a handover did not complete";
  *out_world = w;
}

class HandoverHistory
    : public ::testing::TestWithParam<std::tuple<HandoverMode, bool>> {};

TEST_P(HandoverHistory, NoItemIsEverWorkedOnTwice) {
  const HandoverMode mode = std::get<0>(GetParam());
  const bool slots = std::get<1>(GetParam());
  std::int64_t grants = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    World w(0);
    run_history(0x4a0d0000ULL + seed, mode, slots, 120, &w);
    if (::testing::Test::HasFatalFailure()) return;
    EXPECT_EQ(w.violations, 0) << w.first_violation;
    grants += w.grants_seen;
  }
  EXPECT_GT(grants, 0);  // the histories granted something at all
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HandoverHistory,
    ::testing::Combine(::testing::Values(HandoverMode::Exclusive,
                                         HandoverMode::Barrier),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<HandoverHistory::ParamType> &info) {
      return std::string(handover_mode_name(std::get<0>(info.param))) +
             (std::get<1>(info.param) ? "_slots" : "_plain");
    });

// Immediate mode makes no promise of exclusivity: only its invariants hold
// and it is always settled.
TEST(HandoverHistoryImmediate, InvariantsHoldAndNothingIsPending) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    World w(seed);
    w.server.mode = HandoverMode::Immediate;
    for (int s = 0; s < 60; ++s) {
      w.now += 100;
      if (w.uniform(0, 2) == 0) {
        Client c;
        c.id = w.next_id++;
        c.stamp = w.now;
        w.clients[c.id] = c;
        w.heartbeat(w.clients[c.id]);
      }
      for (auto &e : w.clients) w.heartbeat(e.second);
      w.step(true);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// In plain exclusive mode a member that stays is never revoked to nothing:
// growth leaves it a share, shrinkage lets it keep working.
TEST(HandoverPlain, AMemberThatStaysKeepsWorking) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    World w(seed);
    for (int s = 0; s < 80; ++s) {
      w.now += 100;
      const int event = w.uniform(0, 5);
      if (event <= 1 || w.clients.size() < 2) {
        Client c;
        c.id = w.next_id++;
        c.stamp = w.now;
        w.clients[c.id] = c;
      } else if (event == 2) {
        for (auto &e : w.clients)
          if (e.second.alive && w.uniform(0, 2) == 0) {
            e.second.left = true;
            e.second.alive = false;
            break;
          }
      }
      for (auto &e : w.clients) w.heartbeat(e.second);
      // Who works now, and on which shard.
      std::map<std::uint64_t, std::int32_t> before;
      for (const PolicyMember &m : w.server.members)
        if (m.granted && m.state == MemberState::Active) before[m.id] = m.shard;
      w.step(true);
      if (::testing::Test::HasFatalFailure()) return;
      for (const PolicyMember &m : w.server.members) {
        auto it = before.find(m.id);
        if (it == before.end() || m.state != MemberState::Active) continue;
        if (m.shard == it->second) {
          EXPECT_TRUE(m.granted)
              << "seed " << seed << ": member " << m.id << " stays on shard "
              << m.shard << " but was revoked to nothing";
        }
      }
    }
  }
}

}  // namespace
}  // namespace shard_coordinator
