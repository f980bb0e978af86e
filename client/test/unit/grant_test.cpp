// Grant (client.hpp): which work a grant holds, in plain mode (jump hash's
// shards) and slot mode (keys).
#include <gtest/gtest.h>

#include "shard_coordinator/client.hpp"
#include "tracker.hpp"

namespace shard_coordinator::client {
namespace {

Grant plain(int shard, int count) {
  Grant g;
  g.shard = shard;
  g.num_shards = count;
  return g;
}

Grant keys(std::vector<std::int32_t> slots) {
  Grant g;
  g.shard = 0;
  g.num_shards = 1;
  g.slots = std::move(slots);
  return g;
}

TEST(Grant, Empty) {
  EXPECT_TRUE(Grant{}.empty());
  EXPECT_FALSE(plain(0, 1).empty());
  EXPECT_TRUE(keys({}).empty());
  EXPECT_FALSE(keys({3}).empty());
}

TEST(Grant, PlainModeNestsAsJumpHashDoes) {
  // A greater count takes keys from every shard; a smaller one adds some.
  EXPECT_TRUE(plain(1, 2).covers(plain(1, 3)));
  EXPECT_FALSE(plain(1, 3).covers(plain(1, 2)));
  EXPECT_TRUE(plain(1, 3).covers(plain(1, 3)));
  EXPECT_FALSE(plain(0, 3).covers(plain(1, 3)));
  EXPECT_TRUE(plain(0, 3).covers(Grant{}));
  EXPECT_FALSE(Grant{}.covers(plain(0, 3)));
  EXPECT_TRUE(plain(1, 3).same_keys(plain(1, 3)));
  EXPECT_FALSE(plain(1, 3).same_keys(plain(1, 4)));
}

TEST(Grant, SlotModeIsSetInclusion) {
  EXPECT_TRUE(keys({1, 2, 3}).covers(keys({3, 1})));
  EXPECT_FALSE(keys({1, 2}).covers(keys({2, 4})));
  EXPECT_TRUE(keys({2, 1}).same_keys(keys({1, 2})));
  EXPECT_TRUE(keys({}).same_keys(Grant{}));  // both empty
  // Index and count are for display: the same keys are the same work.
  Grant moved = keys({1, 2});
  moved.shard = 3;
  moved.num_shards = 4;
  EXPECT_TRUE(moved.same_keys(keys({1, 2})));
  // A switch of mode is new work.
  EXPECT_FALSE(keys({0}).covers(plain(0, 1)));
  EXPECT_FALSE(plain(0, 1).covers(keys({0})));
}

TEST(Grant, RevokedKeys) {
  EXPECT_EQ(revoked_keys(keys({5, 1, 3}), keys({3})),
            (std::vector<std::int32_t>{1, 5}));
  EXPECT_EQ(revoked_keys(keys({1, 2}), Grant{}),
            (std::vector<std::int32_t>{1, 2}));
  EXPECT_TRUE(revoked_keys(plain(0, 2), plain(0, 3)).empty());
}

TEST(Grant, OfAnAssignment) {
  Assignment a;
  a.state = State::Active;
  a.shard = 1;
  a.num_shards = 3;
  a.epoch = 9;
  EXPECT_EQ(grant_of(a), (Grant{1, 3, std::nullopt, 9}));
  a.shard.reset();  // waiting for its grant
  EXPECT_TRUE(grant_of(a).empty());
  a.state = State::Standby;
  EXPECT_TRUE(grant_of(a).empty());
  EXPECT_EQ(grant_of(a).epoch, 9);
  Assignment s;
  s.state = State::Active;
  s.shard = 0;
  s.num_shards = 2;
  s.epoch = 4;
  s.slots = std::vector<std::int32_t>{7, 3};
  EXPECT_EQ(grant_of(s).slots, (std::vector<std::int32_t>{3, 7}));
}

}  // namespace
}  // namespace shard_coordinator::client
