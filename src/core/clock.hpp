// The server's clocks. Deadlines (leases, the reshard gate, release
// deadlines) run on the monotonic clock, so that a step of the wall clock
// moves none of them; the wall clock is only for people (expires_at,
// last_heartbeat, joined_at). Plain C++ with no PostgreSQL headers.
#pragma once

#include <cstdint>

namespace shard_coordinator {

// CLOCK_MONOTONIC in microseconds. It does not count a suspended machine:
// the server's waits only get longer for that, never shorter.
std::int64_t mono_now_us() noexcept;

}  // namespace shard_coordinator
