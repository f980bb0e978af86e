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

}  // namespace shard_coordinator::client
