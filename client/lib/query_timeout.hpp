// How long the registrar waits for a query's answer before it drops the
// connection and reconnects.
#pragma once

#include <chrono>
#include <optional>

namespace shard_coordinator::client {

// Options::query_timeout when set (positive); otherwise the default: the
// heartbeat interval once a heartbeat returned it, and at least 2 s.
std::chrono::steady_clock::duration query_timeout(
    std::chrono::milliseconds configured,
    std::optional<std::chrono::steady_clock::duration> heartbeat_interval);

}  // namespace shard_coordinator::client
