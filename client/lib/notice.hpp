// Server NOTICEs and WARNINGs go to the registrar's log, not raw to stderr.
#pragma once

#include <functional>
#include <string>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

using LogFunction = std::function<void(LogLevel, const std::string &)>;

// A PQnoticeProcessor: PQsetNoticeProcessor(conn, log_notice, &on_log) passes
// each message to `on_log` (a const LogFunction *, may be empty) as
// "server: <the message on one line>" at LogLevel::Info.
void log_notice(void *on_log, const char *message);

}  // namespace shard_coordinator::client
