#include "format.hpp"

#include <algorithm>
#include <cstring>
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

std::string assignment_json(const std::string &cluster,
                            const std::string &member,
                            const client::Assignment &a) {
  nlohmann::ordered_json j;
  j["cluster"] = cluster;
  j["member"] = member;
  if (a.shard) {
    j["shard"] = *a.shard;
  } else {
    j["shard"] = nullptr;
  }
  j["num_shards"] = a.num_shards;
  j["epoch"] = a.epoch;
  j["state"] = client::state_name(a.state);
  if (a.slots) j["slots"] = *a.slots;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
