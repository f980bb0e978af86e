#include "protocol.hpp"

#include <random>

#include "text.hpp"

namespace shard_coordinator::client {

namespace {

// Returns the heartbeat row as one JSON object (see parse_heartbeat_row):
// the columns of shard_coordinator.assignment, with the heartbeat interval,
// the lease left (measured by the server after the heartbeat was stamped,
// see lease.hpp) and the release deadline in seconds.
const char *const kHeartbeatQuery =
    "SELECT to_jsonb(h) || jsonb_build_object("
    "'sc_interval_s', extract(epoch FROM h.heartbeat_interval), "
    "'sc_lease_s', extract(epoch FROM h.lease_remaining), "
    "'sc_release_s', extract(epoch FROM h.release_within)) "
    "FROM shard_coordinator.heartbeat($1, $2, $3::bigint, $4::bigint) h";

// The value in the first column of the only row, if there is exactly one row
// of `columns` columns and that value is not NULL.
const std::optional<std::string> *only_value(const QueryResult &result,
                                             int columns) {
  if (result.rows.size() != 1 || result.columns != columns ||
      result.rows[0].size() != static_cast<size_t>(columns))
    return nullptr;
  const auto &value = result.rows[0][0];
  return value ? &value : nullptr;
}

}  // namespace

std::int64_t random_incarnation() {
  std::random_device random;
  std::uint64_t bits = 0;
  while (bits == 0) {
    bits = (static_cast<std::uint64_t>(random()) << 32) ^ random();
    bits >>= 1;  // positive as a bigint
  }
  return static_cast<std::int64_t>(bits);
}

const char *query_name(QueryKind kind) {
  switch (kind) {
    case QueryKind::Channels:
      return "channel";
    case QueryKind::Listen:
      return "LISTEN";
    case QueryKind::Heartbeat:
      return "heartbeat";
    case QueryKind::Leave:
      return "leave";
  }
  return "query";
}

Protocol::Protocol(std::string cluster, std::string member,
                   std::int64_t incarnation)
    : cluster_(std::move(cluster)),
      member_(std::move(member)),
      incarnation_(incarnation) {}

Statement Protocol::channels_query(bool member_only) const {
  return {QueryKind::Channels,
          member_only ? "SELECT shard_coordinator.channel($1, $2)"
                      : "SELECT shard_coordinator.channel($1, $2), "
                        "shard_coordinator.channel($1)",
          {cluster_, member_}};
}

Statement Protocol::listen_query(const std::vector<std::string> &quoted) {
  std::string sql;
  for (const std::string &name : quoted) sql += "LISTEN " + name + "; ";
  // No parameters: the simple protocol, which takes several statements.
  return {QueryKind::Listen, sql, {}};
}

Statement Protocol::heartbeat_query(
    std::optional<std::int64_t> applied_epoch) const {
  std::optional<std::string> applied;
  if (applied_epoch) applied = std::to_string(*applied_epoch);
  return {QueryKind::Heartbeat,
          kHeartbeatQuery,
          {cluster_, member_, applied, std::to_string(incarnation_)}};
}

Statement Protocol::leave_query() const {
  return {QueryKind::Leave,
          "SELECT shard_coordinator.leave($1, $2, $3::bigint)",
          {cluster_, member_, std::to_string(incarnation_)}};
}

bool Protocol::lacks_cluster_channel(const QueryResult &failed) {
  return !failed.ok && failed.sqlstate == "42883";
}

bool Protocol::lacks_heartbeat_1_1(const QueryResult &failed) {
  return !failed.ok && failed.sqlstate == "42883";
}

std::optional<Channels> Protocol::read_channels(const QueryResult &result,
                                                bool member_only) {
  int columns = member_only ? 1 : 2;
  if (result.rows.size() != 1 || result.columns != columns ||
      result.rows[0].size() != static_cast<size_t>(columns))
    return std::nullopt;
  const auto &row = result.rows[0];
  for (const auto &value : row)
    if (!value) return std::nullopt;
  Channels channels;
  channels.member = *row[0];
  if (!member_only) channels.cluster = *row[1];
  return channels;
}

HeartbeatReply Protocol::read_heartbeat(const QueryResult &result) {
  std::string why;
  std::optional<HeartbeatRow> row;
  if (const auto *value = only_value(result, 1)) {
    row = parse_heartbeat_row(**value, &why);
  } else {
    why = "not one row";
  }
  if (!row)
    return NotUnderstood{
        "the server's heartbeat answer is not understood (" + why +
        "); make the client and the extension the same version"};
  return *row;
}

bool Protocol::read_leave(const QueryResult &result) {
  return result.rows.size() == 1 && !result.rows[0].empty() &&
         result.rows[0][0] == "t";
}

NotificationEvent Protocol::read_notification(const Notification &notification,
                                              const Channels &channels) const {
  const std::string &payload = notification.payload;
  std::string why;
  // The two names differ ("sc_" and "scc_" prefixes), and each is set only
  // while listening on it.
  if (!channels.member.empty() && notification.channel == channels.member) {
    auto notice = parse_notice(payload, &why);
    if (!notice)
      return NotUnderstood{"ignored a notification that is not understood (" +
                           why + "): " + one_line(payload)};
    if (notice->cluster != cluster_ || notice->member != member_)
      return Ignored{"ignored a notification for another member"};
    return *notice;
  }
  if (!channels.cluster.empty() && notification.channel == channels.cluster) {
    auto notice = parse_cluster_notice(payload, &why);
    if (!notice)
      return NotUnderstood{
          "ignored a cluster notification that is not understood (" + why +
          "): " + one_line(payload)};
    // Channel names are hashed: another cluster's may collide with ours.
    if (notice->cluster != cluster_)
      return Ignored{"ignored a notification for another cluster"};
    return *notice;
  }
  return std::monostate{};
}

}  // namespace shard_coordinator::client
