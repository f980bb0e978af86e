#include "text.hpp"

#include <algorithm>
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

namespace {

std::string key_list(const std::vector<std::int32_t> &keys) {
  constexpr size_t kShown = 8;
  std::string text = "[";
  for (size_t i = 0; i < keys.size() && i < kShown; ++i)
    text += (i ? "," : "") + std::to_string(keys[i]);
  if (keys.size() > kShown)
    text += ",... " + std::to_string(keys.size()) + " keys";
  return text + "]";
}

std::string work(const Grant &grant) {
  if (grant.empty()) return "nothing";
  if (grant.slots) return "slots " + key_list(*grant.slots);
  return "shard " + std::to_string(*grant.shard) + " of " +
         std::to_string(grant.num_shards);
}

}  // namespace

std::string describe(const Grant &grant) {
  return work(grant) + ", epoch " + std::to_string(grant.epoch);
}

std::string describe(const Revocation &revocation, Clock::time_point now) {
  std::string text = std::string(reason_name(revocation.reason)) + ": ";
  text += revocation.keys.empty() ? work(revocation.from)
                                  : "slots " + key_list(revocation.keys);
  text += " (now " + work(revocation.to) + "), epoch " +
          std::to_string(revocation.epoch) + ", stop within " +
          format_duration(
              std::max(Clock::duration::zero(), revocation.deadline - now));
  return text;
}

}  // namespace shard_coordinator::client
