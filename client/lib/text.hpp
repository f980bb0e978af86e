// Small text helpers shared by the library and the agent.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

// Collapses a multi-line message (libpq's "...failed: X\n\tIs the server
// running...") into one line: runs of whitespace become one space, and the
// trailing newline and spaces go.
std::string one_line(std::string_view text);

// "250ms", "1.5s", "2m30s": short, for log lines.
std::string format_duration(std::chrono::nanoseconds duration);

// "active shard 2 of 5, epoch 41", "standby, 5 shards, epoch 41",
// "active, waiting for its grant, 5 shards, epoch 41": an assignment in log
// lines, the library's and the agent's alike.
std::string describe(const Assignment &assignment);

// "shard 2 of 5, epoch 41", "slots [1,2,3], epoch 41", "nothing, epoch 41"
// (more than 8 slots: the first 8 and the count).
std::string describe(const Grant &grant);

// "server: shard 0 of 2 (now shard 0 of 3), epoch 7, stop within 1.5s",
// "server: slots [4,5] (now slots [1,2,3]), epoch 9, stop within 0ms".
std::string describe(const Revocation &revocation, Clock::time_point now);

}  // namespace shard_coordinator::client
