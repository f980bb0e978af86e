#include "core/clock.hpp"

#include <time.h>

namespace shard_coordinator {

std::int64_t mono_now_us() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace shard_coordinator
