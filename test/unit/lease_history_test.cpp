// LeaseHistory: a promise made is kept when the lease is shortened.
#include "core/lease_history.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace shard_coordinator {
namespace {

constexpr std::int64_t kS = 1000000;

LeaseHistory empty_history() {
  LeaseHistory h{};
  h.clear();
  return h;
}

TEST(LeaseHistory, NoChangeGivesTheCurrentLease) {
  LeaseHistory h = empty_history();
  EXPECT_EQ(h.lease_at(0, 5 * kS), 5 * kS);
  EXPECT_EQ(h.lease_at(100 * kS, 5 * kS), 5 * kS);
}

TEST(LeaseHistory, ShorteningAppliesOnlyToLaterStamps) {
  LeaseHistory h = empty_history();
  h.change(15 * kS, 5 * kS, 100 * kS);
  EXPECT_EQ(h.lease_at(99 * kS, 5 * kS), 15 * kS);
  EXPECT_EQ(h.lease_at(100 * kS, 5 * kS), 5 * kS);
  EXPECT_EQ(h.lease_at(101 * kS, 5 * kS), 5 * kS);
}

TEST(LeaseHistory, EachStampKeepsItsOwnLeaseAcrossTwoShortenings) {
  LeaseHistory h = empty_history();
  h.change(15 * kS, 5 * kS, 100 * kS);  // 15 s -> 5 s at t = 100
  h.change(5 * kS, 1 * kS, 102 * kS);   // 5 s -> 1 s at t = 102
  EXPECT_EQ(h.lease_at(99 * kS, 1 * kS), 15 * kS);
  EXPECT_EQ(h.lease_at(101 * kS, 1 * kS), 5 * kS);
  EXPECT_EQ(h.lease_at(103 * kS, 1 * kS), 1 * kS);
}

TEST(LeaseHistory, LengtheningAppliesToEverybody) {
  LeaseHistory h = empty_history();
  h.change(5 * kS, 20 * kS, 100 * kS);
  EXPECT_EQ(h.count, 0);
  EXPECT_EQ(h.lease_at(99 * kS, 20 * kS), 20 * kS);
  // Shortened, then lengthened beyond: the longer one wins for all.
  h.change(20 * kS, 2 * kS, 200 * kS);
  EXPECT_EQ(h.lease_at(199 * kS, 30 * kS), 30 * kS);
}

TEST(LeaseHistory, ShorteningsEveryPromiseOutlivedAreForgotten) {
  LeaseHistory h = empty_history();
  h.change(10 * kS, 1 * kS, 100 * kS);
  EXPECT_EQ(h.count, 1);
  // At t = 111, every stamp before 100 has expired (100 + 10 <= 111).
  h.change(1 * kS, kS / 2, 111 * kS);
  EXPECT_EQ(h.count, 1);
  EXPECT_EQ(h.lease_at(110 * kS, kS / 2), 1 * kS);
}

// Property: whatever the sequence of changes, every stamp gets at least the
// lease that was in force when it was made (a promise is never shortened),
// and a stamp after the last change gets exactly the current lease.
TEST(LeaseHistory, PromisesAreNeverShortenedProperty) {
  std::uint64_t seed = 12345;
  auto next = [&seed](std::int64_t bound) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::int64_t>((seed >> 33) %
                                     static_cast<std::uint64_t>(bound));
  };
  for (int round = 0; round < 500; ++round) {
    LeaseHistory h = empty_history();
    std::int64_t now = 0;
    std::int64_t lease = 1 + next(20 * kS);
    struct Stamp {
      std::int64_t at;
      std::int64_t lease;
    };
    std::vector<Stamp> stamps;
    for (int step = 0; step < 30; ++step) {
      now += next(3 * kS);
      if (next(2) == 0) {
        stamps.push_back({now, lease});
      } else {
        std::int64_t new_lease = 1 + next(20 * kS);
        h.change(lease, new_lease, now);
        lease = new_lease;
      }
      for (const Stamp &s : stamps) {
        // Only promises that have not ended yet matter.
        if (s.at + s.lease <= now) continue;
        ASSERT_GE(h.lease_at(s.at, lease), s.lease)
            << "round " << round << " step " << step;
      }
    }
    EXPECT_EQ(h.lease_at(now + 1, lease), lease);
  }
}

}  // namespace
}  // namespace shard_coordinator
