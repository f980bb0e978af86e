// Grant (client.hpp): which keys a grant holds, compared without knowing
// the keys themselves (plain mode's keys are those of jump hash).
#include <algorithm>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

namespace {

std::vector<std::int32_t> sorted(const std::vector<std::int32_t> &keys) {
  std::vector<std::int32_t> out = keys;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

const char *reason_name(RevokeReason reason) {
  switch (reason) {
    case RevokeReason::Server:
      return "server";
    case RevokeReason::Lost:
      return "lost";
    case RevokeReason::Removed:
      return "removed";
    case RevokeReason::Stop:
      return "stop";
  }
  return "unknown";
}

bool Grant::empty() const { return slots ? slots->empty() : !shard; }

bool Grant::same_keys(const Grant &other) const {
  if (empty() || other.empty()) return empty() && other.empty();
  if (slot_mode() != other.slot_mode()) return false;
  if (slot_mode()) return sorted(*slots) == sorted(*other.slots);
  return shard == other.shard && num_shards == other.num_shards;
}

bool Grant::covers(const Grant &other) const {
  if (other.empty()) return true;
  if (empty() || slot_mode() != other.slot_mode()) return false;
  if (slot_mode()) {
    std::vector<std::int32_t> mine = sorted(*slots);
    std::vector<std::int32_t> theirs = sorted(*other.slots);
    return std::includes(mine.begin(), mine.end(), theirs.begin(),
                         theirs.end());
  }
  // Jump hash moves a key only into a new bucket when the count grows: the
  // keys of shard k at count m are among those of k at count n <= m.
  return shard == other.shard && num_shards <= other.num_shards;
}

bool Grant::operator==(const Grant &other) const {
  return shard == other.shard && num_shards == other.num_shards &&
         slots == other.slots && epoch == other.epoch;
}

}  // namespace shard_coordinator::client
