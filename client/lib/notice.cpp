#include "notice.hpp"

#include "text.hpp"

namespace shard_coordinator::client {

void log_notice(void *on_log, const char *message) noexcept {
  try {
    const auto &log = *static_cast<const LogFunction *>(on_log);
    if (log) log(LogLevel::Info, "server: " + one_line(message));
  } catch (...) {
    // Dropped: see notice.hpp. There is nowhere safe to report it.
  }
}

}  // namespace shard_coordinator::client
