#include "format.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

namespace shard_coordinator::agent {

namespace {
const char *const kOurVariables[] = {"SHARD_INDEX",   "SHARD_COUNT",
                                     "SHARD_EPOCH",   "SHARD_SLOTS",
                                     "SHARD_CLUSTER", "SHARD_MEMBER"};

bool is_ours(const char *entry) {
  for (const char *name : kOurVariables) {
    size_t len = std::strlen(name);
    if (std::strncmp(entry, name, len) == 0 && entry[len] == '=') return true;
  }
  return false;
}
}  // namespace

std::vector<std::string> child_environment(const char *const *base,
                                           const client::Grant &a,
                                           const std::string &cluster,
                                           const std::string &member) {
  std::vector<std::string> env;
  for (const char *const *entry = base; entry && *entry; ++entry)
    if (!is_ours(*entry)) env.emplace_back(*entry);
  env.push_back("SHARD_INDEX=" + std::to_string(a.shard.value_or(-1)));
  env.push_back("SHARD_COUNT=" + std::to_string(a.num_shards));
  env.push_back("SHARD_EPOCH=" + std::to_string(a.epoch));
  env.push_back("SHARD_CLUSTER=" + cluster);
  env.push_back("SHARD_MEMBER=" + member);
  if (a.slots) {
    std::string slots = "SHARD_SLOTS=";
    for (size_t i = 0; i < a.slots->size(); ++i) {
      if (i > 0) slots += ',';
      slots += std::to_string((*a.slots)[i]);
    }
    env.push_back(std::move(slots));
  }
  return env;
}

namespace {

using Json = nlohmann::ordered_json;

Json event(const char *name, const std::string &cluster,
           const std::string &member) {
  Json j;
  j["event"] = name;
  j["cluster"] = cluster;
  j["member"] = member;
  return j;
}

// "shard", "num_shards"[, "slots"] of a grant.
void add_work(Json *j, const client::Grant &grant) {
  if (grant.shard) {
    (*j)["shard"] = *grant.shard;
  } else {
    (*j)["shard"] = nullptr;
  }
  (*j)["num_shards"] = grant.num_shards;
  if (grant.slots) (*j)["slots"] = *grant.slots;
}

std::string line(const Json &j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string assignment_json(const std::string &cluster,
                            const std::string &member,
                            const client::Assignment &a) {
  Json j = event("assignment", cluster, member);
  if (a.shard) {
    j["shard"] = *a.shard;
  } else {
    j["shard"] = nullptr;
  }
  j["num_shards"] = a.num_shards;
  j["epoch"] = a.epoch;
  j["state"] = client::state_name(a.state);
  if (a.slots) j["slots"] = *a.slots;
  return line(j);
}

std::string grant_json(const std::string &cluster, const std::string &member,
                       const client::Grant &grant) {
  Json j = event("granted", cluster, member);
  j["epoch"] = grant.epoch;
  add_work(&j, grant);
  return line(j);
}

std::string revocation_json(const std::string &cluster,
                            const std::string &member,
                            const client::Revocation &revocation,
                            client::Clock::time_point now,
                            std::chrono::system_clock::time_point wall_now) {
  Json j = event("revoked", cluster, member);
  j["epoch"] = revocation.epoch;
  j["reason"] = client::reason_name(revocation.reason);
  Json revoked = Json::object();
  if (revocation.from.slots) {
    revoked["slots"] = revocation.keys;
  } else {
    add_work(&revoked, revocation.from);
  }
  j["revoked"] = revoked;
  Json grant = Json::object();
  add_work(&grant, revocation.to);
  grant["epoch"] = revocation.to.epoch;
  j["grant"] = grant;
  auto left =
      std::max(client::Clock::duration::zero(), revocation.deadline - now);
  j["deadline_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
  j["deadline"] = utc_timestamp(
      wall_now + std::chrono::duration_cast<std::chrono::microseconds>(left));
  return line(j);
}

std::string acknowledged_json(const std::string &cluster,
                              const std::string &member, std::int64_t epoch) {
  Json j = event("acknowledged", cluster, member);
  j["epoch"] = epoch;
  return line(j);
}

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                t.time_since_epoch())
                .count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::string render_table(const std::vector<std::string> &header,
                         const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto &row : rows)
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  std::string out;
  auto line = [&](const std::vector<std::string> &cells) {
    std::string text;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      text += cell;
      if (i + 1 < widths.size())
        text += std::string(widths[i] - cell.size() + 2, ' ');
    }
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  };
  line(header);
  for (const auto &row : rows) line(row);
  return out;
}

}  // namespace shard_coordinator::agent
