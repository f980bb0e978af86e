// Known answers and properties of the jump consistent hash.
#include "core/jump_hash.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace sc = shard_coordinator;

namespace {

struct Vector {
  std::uint64_t key;
  std::int32_t buckets;
  std::int32_t expected;
};

// The first five are the published test vectors of widely used
// implementations of the paper's algorithm; the rest were computed with an
// independent transcription of the paper's code (Python, arbitrary-precision
// integers masked to 64 bits), covering keys that are negative as bigint.
const Vector kVectors[] = {
    {1, 1, 0},
    {42, 57, 43},
    {0xDEAD10CCULL, 1, 0},
    {0xDEAD10CCULL, 666, 361},
    {256, 1024, 520},
    {static_cast<std::uint64_t>(std::int64_t{-1}), 10, 9},
    {static_cast<std::uint64_t>(std::int64_t{-1}), 1000, 313},
    {static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::min()), 10,
     5},
    {static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::min()),
     2147483647, 1119800965},
    {static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), 10,
     8},
    {static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
     2147483647, 213047985},
    {0, 2147483647, 0},
    {static_cast<std::uint64_t>(std::int64_t{-42}), 57, 8},
};

TEST(JumpHash, KnownAnswers) {
  for (const Vector &v : kVectors) {
    EXPECT_EQ(sc::jump_consistent_hash(v.key, v.buckets), v.expected)
        << "key " << v.key << " buckets " << v.buckets;
  }
}

TEST(JumpHash, TextKnownAnswers) {
  // FNV-1a 64 of the bytes, then the jump hash (same independent reference).
  EXPECT_EQ(sc::jump_consistent_hash_bytes("user-1", 6, 10), 9);
  EXPECT_EQ(sc::jump_consistent_hash_bytes("", 0, 10), 1);
  const std::string hello = "h\xc3\xa9llo";  // "héllo" in UTF-8
  EXPECT_EQ(sc::jump_consistent_hash_bytes(hello.data(), hello.size(), 1000),
            962);
}

TEST(JumpHash, InRange) {
  for (std::int32_t n = 1; n <= 200; ++n) {
    for (std::uint64_t key = 0; key < 500; ++key) {
      const std::int32_t b = sc::jump_consistent_hash(key * 7919, n);
      ASSERT_GE(b, 0);
      ASSERT_LT(b, n);
    }
  }
}

// Growing from n to n + 1 buckets moves a key only into the new bucket, and
// about 1/(n + 1) of the keys move.
TEST(JumpHash, MinimalMovement) {
  const int keys = 20000;
  for (std::int32_t n = 1; n < 40; ++n) {
    int moved = 0;
    for (int k = 0; k < keys; ++k) {
      const auto key = static_cast<std::uint64_t>(k) * 0x9E3779B97F4A7C15ULL;
      const std::int32_t before = sc::jump_consistent_hash(key, n);
      const std::int32_t after = sc::jump_consistent_hash(key, n + 1);
      if (before != after) {
        ASSERT_EQ(after, n) << "a key moved between old buckets";
        ++moved;
      }
    }
    const double expected = static_cast<double>(keys) / (n + 1);
    EXPECT_NEAR(moved, expected, expected * 0.15 + 30) << "n = " << n;
  }
}

}  // namespace
