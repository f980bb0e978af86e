// Unit tests of the fixed slot set assignment (src/slots.hpp).
//
// The expectations come from the rules in slots.hpp and issue 6 ("Fixed slot
// sets"), checked by an independent checker written here, not from the
// implementation's output:
//  - cover and disjoint: every key has exactly one owner, an active member
//    (kNoOwner only if there are no members); no keys, no owners;
//  - balance: the members' key counts differ by at most one;
//  - minimal moves: the keys whose owner changed number exactly
//      (keys whose previous owner is not an active member)
//      + sum over members of max(0, held_m - q_m),
//    where the quotas q_m are base + 1 for the `extra` members holding the
//    most keys and base for the rest (base = keys / members,
//    extra = keys % members), which maximises the keys kept;
//  - stickiness: a member never loses a key while it holds no more than its
//    new count; a member over its new count keeps a subset of its keys.

#include "core/slots.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace sc = shard_coordinator;
using sc::assign_slots;
using sc::kNoOwner;

namespace {

using Keys = std::vector<std::int32_t>;
using Owners = std::vector<std::uint64_t>;

std::string Describe(const Keys &keys, const Owners &previous,
                     const Owners &members, const Owners &result) {
  std::ostringstream out;
  out << "members:";
  for (auto m : members) out << ' ' << m;
  out << "\nkey prev -> new:";
  for (std::size_t k = 0; k < keys.size(); ++k) {
    out << ' ' << keys[k] << ':'
        << (k < previous.size() ? previous[k] : kNoOwner) << "->"
        << (k < result.size() ? result[k] : kNoOwner);
  }
  return out.str();
}

// The minimum number of keys that must change owner, computed from the
// previous owners only.
std::size_t MinimumMoves(const Owners &previous, const Owners &members) {
  if (members.empty()) return 0;
  const std::set<std::uint64_t> active(members.begin(), members.end());
  std::map<std::uint64_t, std::size_t> held;
  for (auto m : members) held[m] = 0;
  std::size_t orphans = 0;
  for (auto p : previous) {
    if (active.count(p) != 0)
      ++held[p];
    else
      ++orphans;
  }
  std::vector<std::size_t> counts;
  for (const auto &entry : held) counts.push_back(entry.second);
  std::sort(counts.rbegin(), counts.rend());
  const std::size_t nkeys = previous.size();
  const std::size_t base = nkeys / members.size();
  const std::size_t extra = nkeys % members.size();
  std::size_t excess = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const std::size_t quota = i < extra ? base + 1 : base;
    if (counts[i] > quota) excess += counts[i] - quota;
  }
  return orphans + excess;
}

std::size_t Moves(const Owners &previous, const Owners &result) {
  std::size_t moves = 0;
  for (std::size_t k = 0; k < previous.size(); ++k)
    if (previous[k] != result[k]) ++moves;
  return moves;
}

// Checks every rule; returns the number of moves for the caller's own
// expectations. Failures are reported with the whole input.
std::size_t CheckAssignment(const Keys &keys, const Owners &previous,
                            const Owners &members, const Owners &result) {
  SCOPED_TRACE(Describe(keys, previous, members, result));
  EXPECT_EQ(result.size(), keys.size());
  if (result.size() != keys.size()) return 0;
  if (keys.empty()) return 0;
  if (members.empty()) {
    for (auto owner : result) EXPECT_EQ(owner, kNoOwner);
    return 0;
  }

  // Cover and disjoint: one owner per key, an active member.
  const std::set<std::uint64_t> active(members.begin(), members.end());
  std::map<std::uint64_t, std::size_t> count;
  for (auto m : members) count[m] = 0;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    EXPECT_NE(result[k], kNoOwner) << "key " << keys[k];
    EXPECT_EQ(active.count(result[k]), 1u)
        << "key " << keys[k] << " owned by non-member " << result[k];
    if (active.count(result[k]) != 0) ++count[result[k]];
  }

  // Balance.
  std::size_t lo = keys.size(), hi = 0, total = 0;
  for (const auto &entry : count) {
    lo = std::min(lo, entry.second);
    hi = std::max(hi, entry.second);
    total += entry.second;
  }
  EXPECT_EQ(total, keys.size());
  EXPECT_LE(hi - lo, 1u) << "counts from " << lo << " to " << hi;
  EXPECT_EQ(lo, keys.size() / members.size());

  // Stickiness: a member keeps min(held, new count) of its keys, i.e. all
  // of them while it holds no more than its new count.
  for (auto m : members) {
    std::size_t held = 0, kept = 0;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      if (previous[k] != m) continue;
      ++held;
      if (result[k] == m) ++kept;
    }
    EXPECT_EQ(kept, std::min(held, count[m]))
        << "member " << m << " held " << held << ", now has " << count[m];
  }

  // Minimal moves.
  const std::size_t moves = Moves(previous, result);
  EXPECT_EQ(moves, MinimumMoves(previous, members));
  return moves;
}

// Runs assign_slots and checks it; returns the result.
Owners AssignAndCheck(const Keys &keys, const Owners &previous,
                      const Owners &members) {
  Owners result = assign_slots(keys, previous, members);
  CheckAssignment(keys, previous, members, result);
  return result;
}

Keys Range(std::int32_t first, std::int32_t last) {
  Keys keys;
  for (std::int32_t k = first; k <= last; ++k) keys.push_back(k);
  return keys;
}

std::map<std::uint64_t, std::size_t> Counts(const Owners &result) {
  std::map<std::uint64_t, std::size_t> counts;
  for (auto owner : result) ++counts[owner];
  return counts;
}

std::set<std::int32_t> KeysOf(const Keys &keys, const Owners &owners,
                              std::uint64_t member) {
  std::set<std::int32_t> mine;
  for (std::size_t k = 0; k < keys.size(); ++k)
    if (owners[k] == member) mine.insert(keys[k]);
  return mine;
}

bool IsSubset(const std::set<std::int32_t> &a,
              const std::set<std::int32_t> &b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

// ---- The checker itself ------------------------------------------------

TEST(SlotsChecker, MinimumMovesFormula) {
  // 5 keys, A(1) holds 3, B(2) holds 1, one orphan: A keeps 3, B gets 2.
  EXPECT_EQ(MinimumMoves({1, 1, 1, 2, 0}, {2, 1}), 1u);
  // Three members hold 2 each, a fourth joins, 6 keys: one gives one away.
  EXPECT_EQ(MinimumMoves({1, 1, 2, 2, 3, 3}, {1, 2, 3, 4}), 1u);
  // Everyone left: every key moves.
  EXPECT_EQ(MinimumMoves({7, 7, 8}, {1, 2}), 3u);
  // Already balanced.
  EXPECT_EQ(MinimumMoves({1, 2, 1, 2, 1}, {1, 2}), 0u);
}

TEST(SlotsChecker, RejectsBadAssignments) {
  const Keys keys = {1, 2, 3, 4};
  const Owners prev = {1, 1, 2, 2};
  // Balanced and sticky, but a move too many.
  EXPECT_EQ(Moves(prev, {2, 1, 1, 2}), 2u);
  EXPECT_NE(Moves(prev, {2, 1, 1, 2}), MinimumMoves(prev, {1, 2}));
}

// ---- Edge cases ----------------------------------------------------------

TEST(Slots, EmptyKeysGiveEmptyResult) {
  EXPECT_TRUE(assign_slots({}, {}, {}).empty());
  EXPECT_TRUE(assign_slots({}, {}, {1, 2, 3}).empty());
}

TEST(Slots, NoMembersGiveNoOwner) {
  const Keys keys = {1, 2, 3};
  const Owners result = assign_slots(keys, {1, 2, 0}, {});
  ASSERT_EQ(result.size(), 3u);
  for (auto owner : result) EXPECT_EQ(owner, kNoOwner);
}

TEST(Slots, SingleMemberTakesEverything) {
  const Keys keys = Range(1, 10);
  const Owners result = AssignAndCheck(keys, Owners(10, kNoOwner), {42});
  for (auto owner : result) EXPECT_EQ(owner, 42u);
}

TEST(Slots, AlreadyBalancedMovesNothing) {
  const Keys keys = Range(1, 7);
  const Owners prev = {3, 1, 2, 3, 1, 2, 3};
  const Owners result = AssignAndCheck(keys, prev, {1, 2, 3});
  EXPECT_EQ(result, prev);
}

TEST(Slots, ExtraQuotaGoesToTheBiggestHolder) {
  // Member 1 holds 3, member 2 holds 1, one key is new. 5 keys over 2: the
  // larger quota (3) must go to member 1, although member 2 is first in shard
  // order; only the new key moves.
  const Keys keys = {1, 2, 3, 4, 5};
  const Owners prev = {1, 1, 1, 2, kNoOwner};
  const Owners result = AssignAndCheck(keys, prev, {2, 1});
  EXPECT_EQ(result, (Owners{1, 1, 1, 2, 2}));
}

TEST(Slots, TooManyHoldersOfTheLargerQuota) {
  // 6 keys, three members hold 2 each, a fourth joins: quotas 2, 2, 1, 1.
  // Exactly one key moves, to the newcomer.
  const Keys keys = Range(1, 6);
  const Owners prev = {1, 1, 2, 2, 3, 3};
  const Owners result = AssignAndCheck(keys, prev, {1, 2, 3, 4});
  EXPECT_EQ(Moves(prev, result), 1u);
  EXPECT_EQ(Counts(result)[4], 1u);
}

TEST(Slots, MoreMembersThanKeys) {
  const Keys keys = {10, 20, 30};
  // From scratch: three members get one key each, two get none.
  Owners result = AssignAndCheck(keys, Owners(3, kNoOwner), {1, 2, 3, 4, 5});
  auto counts = Counts(result);
  EXPECT_EQ(counts.size(), 3u);
  for (const auto &entry : counts) EXPECT_EQ(entry.second, 1u);
  // The holders keep their keys, whoever they are in shard order.
  const Owners prev = {4, 5, 1};
  result = AssignAndCheck(keys, prev, {1, 2, 3, 4, 5});
  EXPECT_EQ(result, prev);
  // A holder of two keys gives one to a member without one.
  result = AssignAndCheck(keys, {5, 5, 1}, {1, 2, 3, 4, 5});
  EXPECT_EQ(Moves({5, 5, 1}, result), 1u);
  EXPECT_EQ(result[2], 1u);
}

TEST(Slots, ShortPreviousOwnerMeansNewKeys) {
  // The header asks for the same length; a shorter one must not crash and
  // must still give a valid cover.
  const Keys keys = Range(1, 4);
  const Owners result = assign_slots(keys, {1}, {1, 2});
  ASSERT_EQ(result.size(), 4u);
  CheckAssignment(keys, {1, kNoOwner, kNoOwner, kNoOwner}, {1, 2}, result);
}

// ---- Microshards ------------------------------------------------------------

TEST(Slots, ThreeHundredMicroshardsFromScratch) {
  const Keys keys = Range(1, 300);
  const Owners none(300, kNoOwner);
  for (std::size_t n : {1u, 2u, 3u, 7u}) {
    SCOPED_TRACE("members: " + std::to_string(n));
    Owners members(n);
    std::iota(members.begin(), members.end(), 1);
    const Owners result = AssignAndCheck(keys, none, members);
    auto counts = Counts(result);
    ASSERT_EQ(counts.size(), n);
    std::size_t big = 0;
    for (const auto &entry : counts) {
      EXPECT_TRUE(entry.second == 300 / n || entry.second == 300 / n + 1);
      if (entry.second == 300 / n + 1) ++big;
    }
    EXPECT_EQ(big, 300 % n);
  }
}

TEST(Slots, ThreeHundredMicroshardsGrowingOneTwoThreeSeven) {
  const Keys keys = Range(1, 300);
  Owners owners(300, kNoOwner);
  owners = AssignAndCheck(keys, owners, {1});
  EXPECT_EQ(Counts(owners)[1], 300u);

  Owners next = AssignAndCheck(keys, owners, {1, 2});
  EXPECT_EQ(Moves(owners, next), 150u);
  EXPECT_TRUE(IsSubset(KeysOf(keys, next, 1), KeysOf(keys, owners, 1)));
  owners = next;

  next = AssignAndCheck(keys, owners, {1, 2, 3});
  EXPECT_EQ(Moves(owners, next), 100u);  // 50 from each
  for (std::uint64_t m : {1u, 2u})
    EXPECT_TRUE(IsSubset(KeysOf(keys, next, m), KeysOf(keys, owners, m)));
  owners = next;

  next = AssignAndCheck(keys, owners, {1, 2, 3, 4, 5, 6, 7});
  // 300 = 6 * 43 + 42: the three old members (100 each) get the larger
  // quota 43 and give away 57 each.
  EXPECT_EQ(Moves(owners, next), 171u);
  auto counts = Counts(next);
  for (std::uint64_t m : {1u, 2u, 3u}) {
    EXPECT_EQ(counts[m], 43u);
    EXPECT_TRUE(IsSubset(KeysOf(keys, next, m), KeysOf(keys, owners, m)));
  }
  owners = next;

  // And back down to one.
  next = AssignAndCheck(keys, owners, {5});
  EXPECT_EQ(Moves(owners, next), 300u - counts[5]);
}

TEST(Slots, MemberJoinsTakesOnlyExcess) {
  const Keys keys = Range(1, 300);
  Owners prev(300);
  for (std::size_t k = 0; k < 300; ++k) prev[k] = 1 + k / 100;  // 1, 2, 3
  const Owners result = AssignAndCheck(keys, prev, {1, 2, 3, 4});
  EXPECT_EQ(Moves(prev, result), 75u);
  auto counts = Counts(result);
  for (std::uint64_t m : {1u, 2u, 3u, 4u}) EXPECT_EQ(counts[m], 75u);
  for (std::uint64_t m : {1u, 2u, 3u})
    EXPECT_TRUE(IsSubset(KeysOf(keys, result, m), KeysOf(keys, prev, m)));
  // The newcomer's keys all came from the others' excess: 25 from each.
  for (std::uint64_t m : {1u, 2u, 3u}) {
    std::size_t from_m = 0;
    for (std::size_t k = 0; k < 300; ++k)
      if (result[k] == 4 && prev[k] == m) ++from_m;
    EXPECT_EQ(from_m, 25u) << "from member " << m;
  }
}

TEST(Slots, MemberLeavesSpreadsItsKeys) {
  const Keys keys = Range(1, 300);
  Owners prev(300);
  for (std::size_t k = 0; k < 300; ++k) prev[k] = 1 + k / 100;  // 1, 2, 3
  // Member 2 left: its keys still name it (or kNoOwner); same outcome rules.
  for (bool forget : {false, true}) {
    SCOPED_TRACE(forget ? "departed keys kNoOwner" : "departed keys named");
    Owners p = prev;
    if (forget)
      for (auto &o : p)
        if (o == 2) o = kNoOwner;
    const Owners result = AssignAndCheck(keys, p, {1, 3});
    EXPECT_EQ(Moves(p, result), 100u);
    auto counts = Counts(result);
    EXPECT_EQ(counts[1], 150u);
    EXPECT_EQ(counts[3], 150u);
    for (std::uint64_t m : {1u, 3u})
      EXPECT_TRUE(IsSubset(KeysOf(keys, p, m), KeysOf(keys, result, m)));
  }
}

TEST(Slots, AddingKeysMovesOnlyTheNewKeys) {
  const Keys keys = Range(1, 310);
  Owners prev(310, kNoOwner);
  for (std::size_t k = 0; k < 300; ++k) prev[k] = 1 + k / 100;
  const Owners result = AssignAndCheck(keys, prev, {1, 2, 3});
  EXPECT_EQ(Moves(prev, result), 10u);
  for (std::size_t k = 0; k < 300; ++k) EXPECT_EQ(result[k], prev[k]);
  auto counts = Counts(result);
  EXPECT_EQ(counts[1] + counts[2] + counts[3], 310u);
}

TEST(Slots, RemovingKeysRebalancesMinimally) {
  // Keys 1..30 (all member 1's) are removed: 270 keys, quota 90; members 2
  // and 3 each give 10 to member 1.
  const Keys keys = Range(31, 300);
  Owners prev;
  for (std::int32_t k = 31; k <= 300; ++k) prev.push_back(1 + (k - 1) / 100);
  const Owners result = AssignAndCheck(keys, prev, {1, 2, 3});
  EXPECT_EQ(Moves(prev, result), 20u);
  auto counts = Counts(result);
  for (std::uint64_t m : {1u, 2u, 3u}) EXPECT_EQ(counts[m], 90u);
  EXPECT_TRUE(IsSubset(KeysOf(keys, prev, 1), KeysOf(keys, result, 1)));
}

TEST(Slots, ReplacingTheKeySet) {
  // Half of the keys replaced by new ones.
  const Keys old_keys = Range(1, 300);
  Owners old_owners(300);
  for (std::size_t k = 0; k < 300; ++k) old_owners[k] = 1 + k % 3;
  Keys keys;
  Owners prev;
  for (std::size_t k = 0; k < 300; ++k) {
    if (old_keys[k] % 2 == 0) {
      keys.push_back(old_keys[k]);
      prev.push_back(old_owners[k]);
    }
  }
  for (std::int32_t k = 1001; k <= 1150; ++k) {
    keys.push_back(k);
    prev.push_back(kNoOwner);
  }
  const Owners result = AssignAndCheck(keys, prev, {1, 2, 3});
  EXPECT_EQ(Moves(prev, result), 150u);
}

// ---- Islands
// ------------------------------------------------------------------

TEST(Slots, SparseIslands) {
  const Keys keys = {-5, 3, 17, 42, 1000};
  Owners owners = AssignAndCheck(keys, Owners(5, kNoOwner), {7, 9});
  auto counts = Counts(owners);
  EXPECT_EQ(counts[7] + counts[9], 5u);
  EXPECT_EQ(std::max(counts[7], counts[9]), 3u);

  // A third worker joins: the one with 3 gives one away, the other keeps 2.
  Owners next = AssignAndCheck(keys, owners, {7, 9, 11});
  EXPECT_EQ(Moves(owners, next), 1u);
  owners = next;

  // Five workers, one island each ("at most one crawler per island").
  next = AssignAndCheck(keys, owners, {7, 9, 11, 12, 13});
  EXPECT_EQ(Moves(owners, next), 2u);
  for (const auto &entry : Counts(next)) EXPECT_EQ(entry.second, 1u);
  owners = next;

  // Worker 9 dies: its island goes to one of the others.
  next = AssignAndCheck(keys, owners, {7, 11, 12, 13});
  EXPECT_EQ(Moves(owners, next), 1u);
  owners = next;

  // Island 1000 decommissioned, island 0 added.
  const Keys new_keys = {-5, 0, 3, 17, 42};
  Owners prev;
  for (std::size_t k = 0; k < keys.size(); ++k)
    if (keys[k] != 1000) prev.push_back(owners[k]);
  prev.insert(prev.begin() + 1, kNoOwner);
  next = AssignAndCheck(new_keys, prev, {7, 11, 12, 13});
  EXPECT_EQ(Moves(prev, next), 1u);
}

TEST(Slots, ExtremeKeys) {
  const Keys keys = {INT32_MIN, -1, 0, 1, INT32_MAX};
  Owners owners = AssignAndCheck(keys, Owners(5, kNoOwner), {1, 2});
  owners = AssignAndCheck(keys, owners, {2, 3});
  owners = AssignAndCheck(keys, owners, {UINT64_MAX, 2, 3});
}

// ---- Randomized property test
// ------------------------------------------------

TEST(Slots, RandomJoinsLeavesAndKeyChanges) {
  // A fixed seed, so that `make test` is repeatable; SLOTS_SEED=<n> replays
  // a run and SLOTS_SEED=random picks one (scripts/soak.sh does).
  const char *given = std::getenv("SLOTS_SEED");
  std::uint64_t seed = 0x51075eedULL;
  if (given != nullptr && std::string(given) == "random")
    seed = std::random_device{}();
  else if (given != nullptr)
    seed = std::strtoull(given, nullptr, 10);
  std::cout << "[ seed ] slots random test seed " << seed << std::endl;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };

  const int kSequences = 3000;
  const int kSteps = 25;
  for (int seq = 0; seq < kSequences; ++seq) {
    // Key universe per sequence: dense (microshards) or sparse (islands).
    const bool sparse = uniform(0, 1) == 1;
    auto random_key = [&]() -> std::int32_t {
      if (sparse)
        return static_cast<std::int32_t>(
            std::uniform_int_distribution<std::int64_t>(INT32_MIN,
                                                        INT32_MAX)(rng));
      return static_cast<std::int32_t>(uniform(0, 400));
    };
    std::map<std::int32_t, std::uint64_t> owner_of;  // key -> owner
    const std::size_t initial_keys = uniform(0, 60);
    while (owner_of.size() < initial_keys) owner_of[random_key()] = kNoOwner;
    Owners members;
    std::uint64_t next_id = 1;
    const std::size_t initial_members = uniform(0, 8);
    for (std::size_t i = 0; i < initial_members; ++i)
      members.push_back(next_id++);

    for (int step = 0; step < kSteps; ++step) {
      const std::size_t op = uniform(0, 9);
      if (op <= 2) {
        // Join, at a random position in shard order.
        const std::size_t pos = uniform(0, members.size());
        members.insert(members.begin() + pos, next_id++);
      } else if (op <= 4 && !members.empty()) {
        // Leave or die; its keys keep naming it, or are cleared.
        const std::size_t pos = uniform(0, members.size() - 1);
        const std::uint64_t gone = members[pos];
        members.erase(members.begin() + pos);
        if (uniform(0, 1) == 0)
          for (auto &entry : owner_of)
            if (entry.second == gone) entry.second = kNoOwner;
      } else if (op == 5) {
        // Add keys.
        const std::size_t n = uniform(1, 20);
        for (std::size_t i = 0; i < n; ++i)
          owner_of.emplace(random_key(), kNoOwner);
      } else if (op == 6 && !owner_of.empty()) {
        // Remove keys.
        const std::size_t n =
            uniform(1, std::min<std::size_t>(20, owner_of.size()));
        for (std::size_t i = 0; i < n && !owner_of.empty(); ++i) {
          auto it = owner_of.begin();
          std::advance(it, uniform(0, owner_of.size() - 1));
          owner_of.erase(it);
        }
      } else if (op == 7) {
        // Several members join and leave at once (one batched reshard).
        const std::size_t leaves = uniform(0, members.size());
        for (std::size_t i = 0; i < leaves; ++i)
          members.erase(members.begin() + uniform(0, members.size() - 1));
        const std::size_t joins = uniform(0, 4);
        for (std::size_t i = 0; i < joins; ++i) members.push_back(next_id++);
        std::shuffle(members.begin(), members.end(), rng);
      } else if (op == 8 && uniform(0, 3) == 0) {
        // Clear the slot set, or replace it wholesale.
        owner_of.clear();
        const std::size_t n = uniform(0, 60);
        while (owner_of.size() < n) owner_of[random_key()] = kNoOwner;
      }
      // op 9 (and the fall-throughs): a reshard with nothing changed.

      Keys keys;
      Owners prev;
      for (const auto &entry : owner_of) {
        keys.push_back(entry.first);
        prev.push_back(entry.second);
      }
      const Owners result = assign_slots(keys, prev, members);
      {
        SCOPED_TRACE("sequence " + std::to_string(seq) + " step " +
                     std::to_string(step));
        CheckAssignment(keys, prev, members, result);
        if (step > 0 && op == 9 && !members.empty()) {
          // Nothing changed since the last reshard: nothing moves.
          EXPECT_EQ(result, prev);
        }
      }
      if (::testing::Test::HasFailure()) {
        return;  // the first failing input is reported; stop there
      }
      std::size_t k = 0;
      for (auto &entry : owner_of) entry.second = result[k++];
    }
  }
}

}  // namespace
