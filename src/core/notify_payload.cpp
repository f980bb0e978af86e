#include "core/notify_payload.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

namespace shard_coordinator {

std::string notice_payload(const AssignmentNotice &notice) {
  std::string json = notice_to_json(notice);
  if (json.size() <= kNotifyPayloadMax || !notice.has_slots) return json;
  AssignmentNotice shorter = notice;
  shorter.has_slots = false;
  shorter.slots.clear();
  shorter.slots_omitted = true;
  return notice_to_json(shorter);
}

const char *state_name(MemberState state) noexcept {
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
  if (notice.slots_omitted) j["slots_omitted"] = true;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string cluster_notice_to_json(const std::string &cluster,
                                   std::int32_t num_shards,
                                   std::int64_t epoch) {
  nlohmann::ordered_json j;
  j["cluster"] = cluster;
  j["num_shards"] = num_shards;
  j["epoch"] = epoch;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

bool copy_payload(const std::string &json, char *buf) noexcept {
  if (json.size() > kNotifyPayloadMax) return false;
  std::memcpy(buf, json.data(), json.size());
  buf[json.size()] = '\0';
  return true;
}

}  // namespace

bool member_notice_into(const char *cluster, const char *member,
                        std::int32_t shard, std::int32_t num_shards,
                        std::int64_t epoch, const char *state,
                        const std::int32_t *slots, std::int32_t nslots,
                        char *buf) noexcept {
  try {
    AssignmentNotice notice;
    notice.cluster = cluster;
    notice.member = member;
    notice.shard = shard;
    notice.num_shards = num_shards;
    notice.epoch = epoch;
    notice.state = state;
    if (slots != nullptr) {
      notice.has_slots = true;
      notice.slots.assign(slots, slots + nslots);
    }
    return copy_payload(notice_payload(notice), buf);
  } catch (...) {
    return false;
  }
}

bool cluster_notice_into(const char *cluster, std::int32_t num_shards,
                         std::int64_t epoch, char *buf) noexcept {
  try {
    return copy_payload(cluster_notice_to_json(cluster, num_shards, epoch),
                        buf);
  } catch (...) {
    return false;
  }
}

}  // namespace shard_coordinator
