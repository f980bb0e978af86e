#include "log.hpp"

#include <unistd.h>

#include <ctime>

namespace shard_coordinator::agent {

namespace {
int g_verbosity = 0;

const char *level_name(Level level) {
  switch (level) {
    case Level::Error:
      return "error";
    case Level::Warning:
      return "warning";
    case Level::Info:
      return "info";
    case Level::Debug:
      return "debug";
  }
  return "";
}
}  // namespace

void set_verbosity(int verbosity) { g_verbosity = verbosity; }

bool log_enabled(Level level) {
  switch (level) {
    case Level::Error:
    case Level::Warning:
      return true;
    case Level::Info:
      return g_verbosity >= 1;
    case Level::Debug:
      return g_verbosity >= 2;
  }
  return false;
}

void log(Level level, const std::string &message) {
  if (!log_enabled(level)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                now.time_since_epoch())
                .count() %
            1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  char prefix[96];
  std::snprintf(
      prefix, sizeof prefix, "%s.%03dZ shard-coordinator[%ld] %s: ", stamp,
      static_cast<int>(ms), static_cast<long>(getpid()), level_name(level));
  std::string line = prefix + message + "\n";
  // One write() per line, so lines of concurrent agents do not interleave.
  const char *data = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, data, left);
    if (n <= 0) return;
    data += n;
    left -= static_cast<size_t>(n);
  }
}

void log_library(client::LogLevel level, const std::string &message) {
  log(level == client::LogLevel::Info ? Level::Info : Level::Debug, message);
}

void RepeatFilter::warn(const std::string &message) {
  auto now = std::chrono::steady_clock::now();
  if (message == last_ && now - last_at_ < quiet_for_) {
    log(Level::Debug, message);
    return;
  }
  last_ = message;
  last_at_ = now;
  log(Level::Warning, message);
}

}  // namespace shard_coordinator::agent
