#include "text.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

using namespace std::chrono_literals;

TEST(OneLine, CollapsesLibpqMessages) {
  EXPECT_EQ(one_line("connection to server at \"localhost\" (::1), port 5 "
                     "failed: Connection refused\n\tIs the server running on "
                     "that host and accepting TCP/IP connections?\n"),
            "connection to server at \"localhost\" (::1), port 5 failed: "
            "Connection refused Is the server running on that host and "
            "accepting TCP/IP connections?");
  EXPECT_EQ(one_line("  \n"), "");
  EXPECT_EQ(one_line("a"), "a");
}

TEST(FormatDuration, ShortAndReadable) {
  EXPECT_EQ(format_duration(0ms), "0ms");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(1s), "1s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(120s), "2m");
  EXPECT_EQ(format_duration(3h), "3h");
  EXPECT_EQ(format_duration(3h + 5min), "3h5m");
  EXPECT_EQ(format_duration(-250ms), "-250ms");
}

// test/chaos/chaos.py reads the agent's "assignment: " lines in this form.
TEST(Describe, StateShardCountEpoch) {
  Assignment a;
  a.state = State::Active;
  a.shard = 2;
  a.num_shards = 5;
  a.epoch = 41;
  EXPECT_EQ(describe(a), "active shard 2 of 5, epoch 41");
  a.shard.reset();
  EXPECT_EQ(describe(a), "active, waiting for its grant, 5 shards, epoch 41");
  a.state = State::Lost;
  EXPECT_EQ(describe(a), "lost, 5 shards, epoch 41");
  EXPECT_EQ(describe(Assignment{}), "pending, 0 shards, epoch 0");
}

}  // namespace
}  // namespace shard_coordinator::client
