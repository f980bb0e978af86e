// `shard-coordinator admin evict|freeze|unfreeze|drop`: the operator controls
// (README, "Operator controls"), one SQL call each. The role needs EXECUTE
// on the function; the server checks it.

#include <string>

#include "agent.hpp"
#include "connect.hpp"
#include "log.hpp"
#include "sqlstate.hpp"
#include "status.hpp"
#include "text.hpp"

namespace shard_coordinator::agent {

namespace {

// The statement of one action, with $1 cluster, $2 member, $3 reason.
const char *statement(AdminAction action) {
  switch (action) {
    case AdminAction::Evict:
      return "SELECT shard_coordinator.evict($1, $2, $3)::text";
    case AdminAction::Freeze:
      return "SELECT shard_coordinator.freeze($1)::text";
    case AdminAction::Unfreeze:
      return "SELECT shard_coordinator.unfreeze($1)::text";
    case AdminAction::Drop:
      return "SELECT shard_coordinator.drop_cluster($1)::text";
  }
  return "";
}

int parameters(AdminAction action) {
  return action == AdminAction::Evict ? 3 : 1;
}

}  // namespace

int admin_command(const AdminOptions &options) {
  client::PgConn conn = connect_for_command(options.dsn);
  if (PQstatus(conn.get()) != CONNECTION_OK) return kExitInternal;
  const char *values[3] = {
      options.cluster.c_str(),
      options.member.c_str(),
      options.reason.empty() ? nullptr : options.reason.c_str(),
  };
  client::PgResult result(PQexecParams(conn.get(), statement(options.action),
                                       parameters(options.action), nullptr,
                                       values, nullptr, nullptr, 0));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    const char *state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    const std::string sqlstate = state ? state : "";
    client::Diagnosis diagnosis = client::diagnose(sqlstate);
    std::string message = client::one_line(PQresultErrorMessage(result.get()));
    if (!sqlstate.empty()) message += " [SQLSTATE " + sqlstate + "]";
    if (sqlstate == "42501")
      message +=
          "; grant this role EXECUTE on the function (README.md, "
          "\"Operator controls\")";
    else if (sqlstate != "42704" && !diagnosis.advice.empty())
      message += "; " + diagnosis.advice;  // 42704: the server's hint says it
    log(Level::Error, message);
    return diagnosis.recovery == client::Recovery::GiveUp || sqlstate == "42704"
               ? kExitRejected
               : kExitInternal;
  }
  if (options.action == AdminAction::Evict &&
      std::string(PQgetvalue(result.get(), 0, 0)) != "true") {
    log(Level::Error, "no member \"" + options.member + "\" in cluster \"" +
                          options.cluster + "\"");
    return kExitRejected;
  }
  return kExitOk;
}

}  // namespace shard_coordinator::agent
