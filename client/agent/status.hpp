// `status`'s members table and its warnings, from the members view as the
// server renders it (a JSON array; see status.cpp). Pure, unit-tested.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "connect.hpp"

namespace shard_coordinator::agent {

// A connection for one command (status, admin); logs why if it failed
// (check PQstatus).
client::PgConn connect_for_command(const std::string &dsn);

// CLUSTER MEMBER STATE SHARD EPOCH [SLOTS] ACKED LAST-HEARTBEAT EXPIRES-IN
// AGE RELEASING. SHARD "2 (waits for 2)" for a member whose grant is still
// withheld; RELEASING what the member must still release, its epoch and
// the time the server still waits ("-": nothing).
std::string members_table(const nlohmann::ordered_json &members);

// One cell of RELEASING.
std::string releasing_cell(const nlohmann::ordered_json &member);

// One warning per member (of the live view) that never acknowledged: an
// older client (no incarnation), or one that holds revoked work.
std::vector<std::string> acknowledgement_warnings(
    const nlohmann::ordered_json &members);

}  // namespace shard_coordinator::agent
