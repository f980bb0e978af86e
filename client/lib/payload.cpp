#include "payload.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

namespace shard_coordinator::client {

namespace {

using nlohmann::json;

// Fails with a message naming the key; all checks below go through these.
struct Reader {
  const json &object;
  std::string *error;

  bool fail(const std::string &message) {
    if (error != nullptr) *error = message;
    return false;
  }

  template <typename Int>
  bool integer(const char *key, Int min, Int *out) {
    auto it = object.find(key);
    if (it == object.end()) return fail(std::string("missing \"") + key + "\"");
    if (!it->is_number_integer())
      return fail(std::string("\"") + key + "\" is not an integer");
    bool in_range;
    if (it->is_number_unsigned()) {
      in_range = it->get<std::uint64_t>() <=
                 static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
    } else {
      auto v = it->get<std::int64_t>();
      in_range =
          v >= static_cast<std::int64_t>(min) &&
          v <= static_cast<std::int64_t>(std::numeric_limits<Int>::max());
    }
    if (!in_range) return fail(std::string("\"") + key + "\" is out of range");
    *out = it->get<Int>();
    return true;
  }

  bool string(const char *key, std::string *out) {
    auto it = object.find(key);
    if (it == object.end()) return fail(std::string("missing \"") + key + "\"");
    if (!it->is_string())
      return fail(std::string("\"") + key + "\" is not a string");
    *out = it->get<std::string>();
    return true;
  }

  bool seconds(const char *key, std::chrono::nanoseconds *out) {
    auto it = object.find(key);
    if (it == object.end()) return fail(std::string("missing \"") + key + "\"");
    if (!it->is_number())
      return fail(std::string("\"") + key + "\" is not a number");
    double s = it->get<double>();
    // Intervals beyond a year are a server bug, not a lease to trust.
    if (!std::isfinite(s) || std::fabs(s) > 366.0 * 24 * 3600)
      return fail(std::string("\"") + key + "\" is out of range");
    *out = std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
    return true;
  }

  // Like seconds(), but null (or missing) gives nullopt.
  bool optional_seconds(const char *key,
                        std::optional<std::chrono::nanoseconds> *out) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      out->reset();
      return true;
    }
    std::chrono::nanoseconds value{};
    if (!seconds(key, &value)) return false;
    *out = value;
    return true;
  }

  // Like integer(), but null (or missing) gives nullopt.
  template <typename Int>
  bool optional_integer(const char *key, Int min, std::optional<Int> *out) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      out->reset();
      return true;
    }
    Int value{};
    if (!integer<Int>(key, min, &value)) return false;
    *out = value;
    return true;
  }

  // shard, num_shards, epoch, state, slots.
  bool assignment(bool allow_removed, Assignment *out) {
    std::string state;
    if (!string("state", &state)) return false;
    if (state == "active") {
      out->state = State::Active;
    } else if (state == "standby") {
      out->state = State::Standby;
    } else if (state == "pending") {
      out->state = State::Pending;
    } else if (state == "removed" && allow_removed) {
      out->state = State::Removed;
    } else {
      return fail("unknown state \"" + state + "\"");
    }
    auto shard = object.find("shard");
    if (shard == object.end() || shard->is_null()) {
      out->shard.reset();
    } else {
      std::int32_t value = 0;
      if (!integer<std::int32_t>("shard", 0, &value)) return false;
      out->shard = value;
    }
    // Active with a null shard: placed, waiting for its grant.
    if (out->state != State::Active && out->shard)
      return fail("state is " + state + " but \"shard\" is not null");
    if (!integer<std::int32_t>("num_shards", 0, &out->num_shards)) return false;
    if (out->shard && *out->shard >= out->num_shards)
      return fail("\"shard\" is not below \"num_shards\"");
    if (!integer<std::int64_t>("epoch", 0, &out->epoch)) return false;
    auto slots = object.find("slots");
    if (slots == object.end() || slots->is_null()) {
      out->slots.reset();
    } else {
      if (!slots->is_array()) return fail("\"slots\" is not an array");
      std::vector<std::int32_t> values;
      values.reserve(slots->size());
      for (const json &slot : *slots) {
        // Slot keys are any 32-bit integers (microshard or island numbers).
        if (!slot.is_number_integer() ||
            slot.get<std::int64_t>() <
                std::numeric_limits<std::int32_t>::min() ||
            slot.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max())
          return fail("\"slots\" holds something other than 32-bit keys");
        values.push_back(slot.get<std::int32_t>());
      }
      out->slots = std::move(values);
    }
    return true;
  }
};

std::optional<json> parse_object(std::string_view text, std::string *error) {
  json value = json::parse(text.begin(), text.end(), nullptr, false);
  if (value.is_discarded()) {
    if (error != nullptr) *error = "not valid JSON";
    return std::nullopt;
  }
  if (!value.is_object()) {
    if (error != nullptr) *error = "not a JSON object";
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<Notice> parse_notice(std::string_view payload,
                                   std::string *error) {
  auto object = parse_object(payload, error);
  if (!object) return std::nullopt;
  Reader reader{*object, error};
  Notice notice;
  if (!reader.string("cluster", &notice.cluster) ||
      !reader.string("member", &notice.member) ||
      !reader.assignment(true, &notice.assignment))
    return std::nullopt;
  auto omitted = object->find("slots_omitted");
  notice.slots_omitted =
      omitted != object->end() && omitted->is_boolean() && omitted->get<bool>();
  return notice;
}

std::optional<ClusterNotice> parse_cluster_notice(std::string_view payload,
                                                  std::string *error) {
  auto object = parse_object(payload, error);
  if (!object) return std::nullopt;
  Reader reader{*object, error};
  if (object->contains("member")) {
    reader.fail("has \"member\": a member notice on the cluster channel");
    return std::nullopt;
  }
  ClusterNotice notice;
  if (!reader.string("cluster", &notice.cluster) ||
      !reader.integer<std::int32_t>("num_shards", 0, &notice.num_shards) ||
      !reader.integer<std::int64_t>("epoch", 0, &notice.epoch))
    return std::nullopt;
  return notice;
}

std::optional<HeartbeatRow> parse_heartbeat_row(std::string_view json_text,
                                                std::string *error) {
  auto object = parse_object(json_text, error);
  if (!object) return std::nullopt;
  Reader reader{*object, error};
  HeartbeatRow row;
  if (!reader.assignment(false, &row.assignment) ||
      !reader.seconds("sc_interval_s", &row.heartbeat_interval) ||
      !reader.seconds("sc_lease_s", &row.lease_remaining) ||
      !reader.optional_seconds("sc_release_s", &row.release_within) ||
      !reader.optional_integer<std::int64_t>("acknowledged_epoch", 0,
                                             &row.acknowledged_epoch))
    return std::nullopt;
  if (row.heartbeat_interval <= std::chrono::nanoseconds::zero()) {
    reader.fail("heartbeat_interval is not positive");
    return std::nullopt;
  }
  return row;
}

}  // namespace shard_coordinator::client
