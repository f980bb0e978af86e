// The agent's log: one line per message on stderr, with a UTC timestamp.
// Quiet by default (errors and warnings); -v adds progress, -vv every
// heartbeat and notification.
#pragma once

#include <chrono>
#include <string>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

enum class Level { Error, Warning, Info, Debug };

void set_verbosity(int verbosity);
bool log_enabled(Level level);
void log(Level level, const std::string &message);

// The library's progress messages, at the matching level.
void log_library(client::LogLevel level, const std::string &message);

// A server that stays down produces the same error at every retry: the first
// is a warning, repeats within `quiet_for` only show with -vv.
class RepeatFilter {
 public:
  explicit RepeatFilter(std::chrono::seconds quiet_for)
      : quiet_for_(quiet_for) {}
  void warn(const std::string &message);

 private:
  std::chrono::seconds quiet_for_;
  std::string last_;
  std::chrono::steady_clock::time_point last_at_{};
};

}  // namespace shard_coordinator::agent
