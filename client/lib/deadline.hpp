// Deadlines for poll(): the library's run() and the agent's event loop wait
// for a socket or the earliest of several timers.
#pragma once

#include <optional>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

// The earlier of two deadlines; nullopt when neither is set.
std::optional<Clock::time_point> earliest(std::optional<Clock::time_point> a,
                                          std::optional<Clock::time_point> b);

// poll()'s timeout for waking at `deadline`: -1 (no timeout) without one, 0
// once it has passed, else the milliseconds left rounded up (waking early
// would only spin), at most INT_MAX.
int poll_timeout_ms(std::optional<Clock::time_point> deadline,
                    Clock::time_point now);

}  // namespace shard_coordinator::client
