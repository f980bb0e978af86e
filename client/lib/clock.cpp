// BootClock (client.hpp): CLOCK_BOOTTIME, the monotonic clock that counts
// suspend.
#include <time.h>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

BootClock::time_point BootClock::now() noexcept {
  timespec ts{};
  // Cannot fail for a valid clock id and a valid pointer (Linux >= 2.6.39).
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return time_point(std::chrono::seconds(ts.tv_sec) +
                    std::chrono::nanoseconds(ts.tv_nsec));
}

}  // namespace shard_coordinator::client
