// How long the registrar waits for a query's answer before it drops the
// connection and reconnects.
#pragma once

#include <chrono>
#include <optional>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

// The least default query timeout. The server's heartbeat() and leave() may
// legitimately wait up to 10 s for its background worker (while the worker
// loads the cluster's state, or removes the member: kWorkerWaitMs in
// src/sql_functions.cpp); a shorter timeout would drop a healthy connection
// and retry a call the server was about to answer. 15 s leaves 5 s for the
// round trip and a loaded server. The self-fencing lease does not depend on
// it: a heartbeat that waits reports the assignment Lost on time anyway. The
// price: a connection that died silently while a query was in flight is
// given up only after the timeout, which with the default lease (5 s
// interval, 10 s grace) is after the member was fenced.
inline constexpr std::chrono::milliseconds kMinDefaultQueryTimeout{15000};

// Options::query_timeout when set (positive); otherwise the default: the
// heartbeat interval once a heartbeat returned it, and at least
// kMinDefaultQueryTimeout.
Clock::duration query_timeout(
    std::chrono::milliseconds configured,
    std::optional<Clock::duration> heartbeat_interval);

}  // namespace shard_coordinator::client
