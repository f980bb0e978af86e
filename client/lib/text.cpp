#include "text.hpp"

#include <cctype>
#include <cstdio>

namespace shard_coordinator::client {

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string format_duration(std::chrono::nanoseconds duration) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const char *sign = duration.count() < 0 ? "-" : "";
  long long ms = duration_cast<milliseconds>(duration).count();
  if (ms < 0) ms = -ms;
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%s%lldms", sign, ms);
  } else if (ms < 60 * 1000) {
    if (ms % 1000 == 0) {
      std::snprintf(buf, sizeof buf, "%s%llds", sign, ms / 1000);
    } else {
      std::snprintf(buf, sizeof buf, "%s%.1fs", sign,
                    static_cast<double>(ms) / 1000.0);
    }
  } else if (ms < 3600 * 1000) {
    long long s = ms / 1000;
    if (s % 60 == 0) {
      std::snprintf(buf, sizeof buf, "%s%lldm", sign, s / 60);
    } else {
      std::snprintf(buf, sizeof buf, "%s%lldm%llds", sign, s / 60, s % 60);
    }
  } else {
    long long m = ms / 60000;
    if (m % 60 == 0) {
      std::snprintf(buf, sizeof buf, "%s%lldh", sign, m / 60);
    } else {
      std::snprintf(buf, sizeof buf, "%s%lldh%lldm", sign, m / 60, m % 60);
    }
  }
  return buf;
}

std::string describe(const Assignment &assignment) {
  std::string text = state_name(assignment.state);
  if (assignment.shard) {
    text += " shard " + std::to_string(*assignment.shard) + " of " +
            std::to_string(assignment.num_shards);
  } else if (assignment.state == State::Active) {
    // Placed, but its work is still held by its previous holder.
    text += ", waiting for its grant, " +
            std::to_string(assignment.num_shards) + " shards";
  } else {
    text += ", " + std::to_string(assignment.num_shards) + " shards";
  }
  text += ", epoch " + std::to_string(assignment.epoch);
  return text;
}

}  // namespace shard_coordinator::client
