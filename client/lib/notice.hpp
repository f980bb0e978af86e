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
//
// libpq calls it from its own C frames, which an exception must not unwind
// through. So nothing escapes: whatever on_log throws, or building the line
// (std::bad_alloc), is caught and that message is dropped.
void log_notice(void *on_log, const char *message) noexcept;

}  // namespace shard_coordinator::client
