#include "sqlstate.hpp"

namespace shard_coordinator::client {

Diagnosis diagnose(std::string_view sqlstate) {
  // The server's own errors (see sql/shard_coordinator--1.0.sql).
  if (sqlstate == "25006")
    return {Recovery::Reconnect,
            "the server is read-only (a standby); list every host and add "
            "target_session_attrs=read-write to the connection string"};
  if (sqlstate == "53400")
    return {Recovery::RetrySameConnection,
            "the server's member table is full; raise "
            "shard_coordinator.max_members on the server"};
  if (sqlstate == "55000")
    return {Recovery::RetrySameConnection,
            "shard_coordinator is not ready on the server yet; retrying"};
  if (sqlstate == "SC002")
    return {Recovery::RetrySameConnection,
            "another process holds this member name; retrying until it is "
            "free (its promise ends or it leaves), or give this process "
            "another --member name"};
  if (sqlstate == "SC003")
    return {Recovery::GiveUp,
            "an operator evicted this process (shard_coordinator.evict); "
            "start a new one once the cause is fixed"};
  if (sqlstate == "SC004")
    return {Recovery::GiveUp,
            "an operator dropped this cluster (shard_coordinator."
            "drop_cluster); its members are removed"};
  if (sqlstate == "22023" || sqlstate == "22004" || sqlstate == "22P02" ||
      sqlstate == "22001" || sqlstate == "22021")
    return {Recovery::GiveUp, "fix the cluster or member name"};
  // The extension is not there, or not for us.
  if (sqlstate == "42883" || sqlstate == "3F000" || sqlstate == "42P01")
    return {Recovery::GiveUp,
            "run CREATE EXTENSION shard_coordinator in this database (the "
            "one named by shard_coordinator.database), or connect to it"};
  if (sqlstate == "42501")
    return {Recovery::GiveUp,
            "grant this role EXECUTE on the shard_coordinator functions, and "
            "membership in the cluster's member_role if it has one (see "
            "README.md, \"Privileges\")"};
  if (sqlstate == "42704")
    return {Recovery::GiveUp,
            "the cluster does not exist and shard_coordinator."
            "create_on_heartbeat is off: an administrator creates it with "
            "configure()"};
  // Shutdown, crash recovery, lost connections, out of memory, anything else:
  // a new connection (possibly to another host) is the best bet.
  return {Recovery::Reconnect, ""};
}

}  // namespace shard_coordinator::client
