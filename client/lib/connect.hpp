// Opening a libpq connection without blocking the registrar's loop.
//
// libpq's non-blocking PQconnectPoll ignores connect_timeout, so with a
// multi-host connection string it would wait on an unreachable first host
// until the kernel gives up (minutes) and never try the next one. The blocking
// PQconnectdbParams honours connect_timeout per host, so it runs on a helper
// thread while the loop keeps its timers (the self-fencing deadline above
// all). The thread signals completion through a pipe the loop can poll.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace shard_coordinator::client {

struct PGconnDeleter {
  void operator()(PGconn *conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PGconnDeleter>;

struct PGresultDeleter {
  void operator()(PGresult *result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PGresultDeleter>;

// What the client's connections are called in pg_stat_activity (the
// fallback_application_name of connection_params()).
inline constexpr const char *kApplicationName = "shard-coordinator";

// libpq keyword/value pairs for `conninfo`: our defaults
// (fallback_application_name, connect_timeout unless PGCONNECT_TIMEOUT is
// set, TCP keepalives: idle 10 s, interval 5 s, count 3) first, then the
// connection string as `dbname`, which overrides them: with expand_dbname,
// libpq lets the settings of a connection string in `dbname` override the
// keywords before it. (A service file does not: libpq fills in from it only
// what is still unset.)
std::vector<std::pair<std::string, std::string>> connection_params(
    const std::string &conninfo, const std::string &application_name);

// Connects with `params` (from connection_params()), blocking for up to
// connect_timeout per host: PQconnectdbParams with expand_dbname. Check
// PQstatus(); null only when libpq is out of memory.
PgConn connect_blocking(
    const std::vector<std::pair<std::string, std::string>> &params);

// The thread is detached, so that an abandoned attempt never holds up the
// caller: it runs on until libpq returns (connect_timeout for each host) and
// then closes its connection. Meanwhile the process must not exit(): that
// runs atexit handlers (OpenSSL's cleanup) and static destructors while the
// thread may be inside libpq or OpenSSL. The agent ends with _exit() instead
// (exit_process in agent/agent.hpp).
class ConnectAttempt {
 public:
  // Starts connecting on a detached thread. Throws std::system_error if no
  // pipe or thread can be made.
  explicit ConnectAttempt(
      std::vector<std::pair<std::string, std::string>> params);
  // Abandons the attempt: the thread closes its connection when it is done.
  ~ConnectAttempt();
  ConnectAttempt(const ConnectAttempt &) = delete;
  ConnectAttempt &operator=(const ConnectAttempt &) = delete;

  // Readable once the attempt is over.
  int fd() const;
  bool done() const;
  // The connection (check PQstatus) once done(); null before.
  PgConn take();

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace shard_coordinator::client
