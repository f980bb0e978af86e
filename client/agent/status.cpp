// `shard-coordinator status`: the clusters and members views as two tables
// (or one JSON document with --json). The server renders each view as a JSON
// array, so both outputs come from the same data.
//
// Per member the tables show its grant (SHARD, or SLOTS), the epoch it
// last acknowledged (ACKED) and any work revoked from it that it has not
// released yet (RELEASING: what, and how long the server still waits).
// Members that never acknowledge (older clients: each handover of their
// work waits for their lease to end) are warned about on stderr.

#include "status.hpp"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent.hpp"
#include "connect.hpp"
#include "format.hpp"
#include "log.hpp"
#include "sqlstate.hpp"
#include "text.hpp"

namespace shard_coordinator::agent {

namespace {

// Keeps the views' column order in --json output.
using json = nlohmann::ordered_json;

const char *const kClustersQuery =
    "SELECT coalesce(json_agg(c ORDER BY c.cluster), '[]') FROM ("
    "SELECT cluster, epoch, num_shards, members, active, standby, pending, "
    "heartbeat_interval, grace_period, reshard_interval, max_shards, "
    "resharded_at, slots, handover, grant_count, handover_pending, "
    "extract(epoch FROM heartbeat_interval)::float8 AS heartbeat_interval_s, "
    "extract(epoch FROM grace_period)::float8 AS grace_period_s, "
    "extract(epoch FROM reshard_interval)::float8 AS reshard_interval_s, "
    "extract(epoch FROM now() - resharded_at)::float8 AS resharded_ago_s "
    "FROM shard_coordinator.clusters "
    "WHERE $1::text IS NULL OR cluster = $1) c";

const char *const kMembersQuery =
    "SELECT coalesce(json_agg(m ORDER BY m.cluster, m.shard NULLS LAST, "
    "m.member), '[]') FROM ("
    "SELECT cluster, member, state, shard, num_shards, epoch, last_heartbeat, "
    "expires_at, joined_at, slots, target_shard, target_slots, withheld, "
    "releasing, release_epoch, release_until, acknowledged_epoch, "
    "incarnation, "
    "extract(epoch FROM now() - last_heartbeat)::float8 AS "
    "last_heartbeat_ago_s, "
    "extract(epoch FROM expires_at - now())::float8 AS expires_in_s, "
    "extract(epoch FROM now() - joined_at)::float8 AS age_s, "
    "extract(epoch FROM release_until - now())::float8 AS release_in_s "
    "FROM shard_coordinator.members "
    "WHERE $1::text IS NULL OR cluster = $1) m";

std::string text(const json &value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string seconds(const json &value, const char *suffix = "") {
  if (!value.is_number()) return "-";
  double s = value.get<double>();
  return client::format_duration(std::chrono::nanoseconds(
             static_cast<long long>(std::llround(s * 1e9)))) +
         suffix;
}

// The number of slot keys ("-" outside slot mode).
std::string slot_count(const json &value) {
  return value.is_array() ? std::to_string(value.size()) : "-";
}

// Whether any row is in slot mode: only then is there a SLOTS column.
bool any_slots(const json &rows) {
  for (const json &row : rows)
    if (row.contains("slots") && row["slots"].is_array()) return true;
  return false;
}

std::string clusters_table(const json &clusters) {
  bool slots = any_slots(clusters);
  std::vector<std::string> header = {"CLUSTER", "EPOCH",      "SHARDS",
                                     "MEMBERS", "ACTIVE",     "STANDBY",
                                     "PENDING", "HEARTBEAT",  "GRACE",
                                     "RESHARD", "MAX-SHARDS", "LAST-RESHARD"};
  if (slots) header.push_back("SLOTS");
  std::vector<std::vector<std::string>> rows;
  for (const json &c : clusters) {
    rows.push_back({text(c["cluster"]), text(c["epoch"]), text(c["num_shards"]),
                    text(c["members"]), text(c["active"]), text(c["standby"]),
                    text(c["pending"]), seconds(c["heartbeat_interval_s"]),
                    seconds(c["grace_period_s"]),
                    seconds(c["reshard_interval_s"]), text(c["max_shards"]),
                    seconds(c["resharded_ago_s"], " ago")});
    if (slots) rows.back().push_back(slot_count(c["slots"]));
  }
  return render_table(header, rows);
}

}  // namespace

std::string releasing_cell(const json &member) {
  const json &what = member.value("releasing", json());
  if (what.is_null()) return "-";
  std::string cell = text(what);
  const json &epoch = member.value("release_epoch", json());
  if (!epoch.is_null()) cell += " (epoch " + text(epoch) + ")";
  const json &left = member.value("release_in_s", json());
  if (left.is_number())
    cell += left.get<double>() > 0 ? ", " + seconds(left) + " left" : ", due";
  return cell;
}

std::string members_table(const json &members) {
  bool slots = any_slots(members);
  std::vector<std::string> header = {
      "CLUSTER", "MEMBER",         "STATE",      "SHARD", "EPOCH",
      "ACKED",   "LAST-HEARTBEAT", "EXPIRES-IN", "AGE",   "RELEASING"};
  if (slots) header.insert(header.begin() + 5, "SLOTS");
  std::vector<std::vector<std::string>> rows;
  for (const json &m : members) {
    std::string shard = text(m.value("shard", json()));
    // Placed, but its work is still held by its previous holder.
    if (m.value("withheld", false) && m.contains("target_shard") &&
        !m["target_shard"].is_null())
      shard += " (waits for " + text(m["target_shard"]) + ")";
    rows.push_back(
        {text(m["cluster"]), text(m["member"]), text(m["state"]), shard,
         text(m["epoch"]), text(m.value("acknowledged_epoch", json())),
         seconds(m["last_heartbeat_ago_s"], " ago"), seconds(m["expires_in_s"]),
         seconds(m["age_s"]), releasing_cell(m)});
    if (slots)
      rows.back().insert(rows.back().begin() + 5, slot_count(m["slots"]));
  }
  return render_table(header, rows);
}

std::vector<std::string> acknowledgement_warnings(const json &members) {
  std::vector<std::string> out;
  for (const json &m : members) {
    // Only the live view knows acknowledgements (a standby server shows
    // the tables: no heartbeats, no acknowledgements).
    if (m.value("last_heartbeat", json()).is_null()) continue;
    if (!m.value("acknowledged_epoch", json()).is_null()) continue;
    bool old_client = m.value("incarnation", json()).is_null();
    bool holding = !m.value("releasing", json()).is_null();
    if (!old_client && !holding) continue;  // a first heartbeat, say
    out.push_back(
        "member " + text(m["member"]) + " of cluster " + text(m["cluster"]) +
        " has never acknowledged an epoch" +
        (old_client ? " (an older client: no incarnation either)" : "") +
        ": each handover of its work waits for the end of its lease; use a "
        "client that acknowledges revocations (the protocol of extension "
        "1.1)");
  }
  return out;
}

namespace {

// One JSON array from `query`; on failure logs and sets *exit_code.
std::optional<json> fetch(PGconn *conn, const char *query,
                          const std::string &cluster, int *exit_code) {
  const char *values[1] = {cluster.empty() ? nullptr : cluster.c_str()};
  client::PgResult result(
      PQexecParams(conn, query, 1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    const char *state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    std::string sqlstate = state ? state : "";
    client::Diagnosis diagnosis = client::diagnose(sqlstate);
    std::string message = "cannot read the shard_coordinator views: " +
                          client::one_line(PQresultErrorMessage(result.get()));
    if (!diagnosis.advice.empty()) message += "; " + diagnosis.advice;
    log(Level::Error, message);
    *exit_code = diagnosis.recovery == client::Recovery::GiveUp ? kExitRejected
                                                                : kExitInternal;
    return std::nullopt;
  }
  json value = json::parse(PQgetvalue(result.get(), 0, 0), nullptr, false);
  if (value.is_discarded() || !value.is_array()) {
    log(Level::Error,
        "the server's answer is not a JSON array; make the "
        "client and the extension the same version");
    *exit_code = kExitInternal;
    return std::nullopt;
  }
  return value;
}

}  // namespace

client::PgConn connect_for_command(const std::string &dsn) {
  client::PgConn conn = client::connect_blocking(
      client::connection_params(dsn, client::kApplicationName));
  if (PQstatus(conn.get()) != CONNECTION_OK)
    log(Level::Error, "cannot connect to the database: " +
                          client::one_line(PQerrorMessage(conn.get())) +
                          "; check --dsn (or PGHOST, PGPORT, PGUSER, "
                          "PGDATABASE) and that the server is up");
  return conn;
}

int status_command(const StatusOptions &options) {
  client::PgConn conn = connect_for_command(options.dsn);
  if (PQstatus(conn.get()) != CONNECTION_OK) return kExitInternal;
  int exit_code = kExitOk;
  auto clusters =
      fetch(conn.get(), kClustersQuery, options.cluster, &exit_code);
  if (!clusters) return exit_code;
  auto members = fetch(conn.get(), kMembersQuery, options.cluster, &exit_code);
  if (!members) return exit_code;

  for (const std::string &warning : acknowledgement_warnings(*members))
    log(Level::Warning, warning);
  std::string out;
  if (options.json) {
    json doc;
    doc["clusters"] = *clusters;
    doc["members"] = *members;
    out = doc.dump(2) + "\n";
  } else if (clusters->empty()) {
    out = options.cluster.empty()
              ? "No clusters yet: a cluster appears with its first heartbeat "
                "or configure().\n"
              : "No cluster named \"" + options.cluster + "\".\n";
  } else {
    out = clusters_table(*clusters);
    if (!members->empty()) out += "\n" + members_table(*members);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::fflush(stdout) == 0 ? kExitOk : kExitInternal;
}

}  // namespace shard_coordinator::agent
