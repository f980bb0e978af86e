#include "notify_payload.hpp"

#include <nlohmann/json.hpp>

namespace shard_coordinator {

const char *state_name(MemberState state) {
  switch (state) {
    case MemberState::Active:
      return "active";
    case MemberState::Standby:
      return "standby";
    case MemberState::Pending:
      break;
  }
  return "pending";
}

std::string notice_to_json(const AssignmentNotice &notice) {
  nlohmann::ordered_json j;
  j["cluster"] = notice.cluster;
  j["member"] = notice.member;
  if (notice.shard == kNoShard) {
    j["shard"] = nullptr;
  } else {
    j["shard"] = notice.shard;
  }
  j["num_shards"] = notice.num_shards;
  j["epoch"] = notice.epoch;
  j["state"] = notice.state;
  if (notice.has_slots) j["slots"] = notice.slots;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace shard_coordinator
