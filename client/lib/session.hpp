// The registrar's connection to the server: libpq's non-blocking I/O behind a
// small interface, so that the phase machine (machine.hpp) can be driven by a
// fake in tests. A session knows nothing of the SQL it sends nor of what the
// answers mean (protocol.hpp): it connects, sends one query at a time, and
// hands back results and notifications as plain values.
//
// The libpq session (make_pg_session) connects on ConnectAttempt's helper
// thread (connect.hpp), then switches the connection to non-blocking mode
// and sends server notices to the log (notice.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "notice.hpp"

namespace shard_coordinator::client {

// A query's outcome, once all of it arrived.
struct QueryResult {
  bool ok = false;  // PGRES_TUPLES_OK or PGRES_COMMAND_OK
  // When not ok: the SQLSTATE (empty for a connection-level error) and
  // "message (hint)" on one line.
  std::string sqlstate;
  std::string message;
  // When ok: the columns and, for each row, each value as text (nullopt for
  // NULL).
  int columns = 0;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// A query's parameters ($1, $2, ...) as text; nullopt sends NULL.
using QueryParams = std::vector<std::optional<std::string>>;

// A NOTIFY received on a channel the session listens on.
struct Notification {
  std::string channel;
  std::string payload;
};

class Session {
 public:
  virtual ~Session() = default;

  // ----- connecting -----
  // Drops any connection and starts opening a new one, without blocking.
  // Returns an empty string, or why no attempt could be started.
  virtual std::string connect() = 0;
  // Whether the attempt begun by connect() is over.
  virtual bool connect_done() const = 0;
  // Once connect_done(): an empty string when connected, else the whole
  // message to report (one line, with advice).
  virtual std::string finish_connect() = 0;
  // Drops the connection, or abandons an attempt under way.
  virtual void disconnect() = 0;

  // What to poll: while connecting, a descriptor readable once the attempt
  // is over; once connected, the connection's socket; -1 otherwise.
  virtual int fd() const = 0;
  // "host:port" of the connection.
  virtual std::string server() const = 0;
  // The connection's last error, one line.
  virtual std::string error_message() const = 0;
  // Whether the connection is broken (as libpq's CONNECTION_BAD).
  virtual bool broken() const = 0;

  // ----- connected -----
  // `name` quoted as an SQL identifier; nullopt when it cannot be
  // (error_message() says why).
  virtual std::optional<std::string> quote_identifier(
      const std::string &name) = 0;
  // Sends one query: with `params` ($1, $2, ...) by the extended protocol,
  // one statement; without, by the simple protocol, which allows several
  // statements (run in one implicit transaction). Only one query may be in
  // flight. False when it could not be sent (error_message()).
  virtual bool send(const std::string &sql, const QueryParams &params) = 0;
  // Writes what send() left buffered. False when the connection is lost.
  virtual bool flush() = 0;
  // Whether output is still buffered: poll for POLLOUT, then flush().
  virtual bool want_write() const = 0;
  // Reads what the socket holds. False when the connection is lost.
  virtual bool consume_input() = 0;
  // The result of the query in flight once all of it arrived; nullopt while
  // it has not (or when nothing is in flight). A query of several statements
  // gives the first failure among them, else the first result.
  virtual std::optional<QueryResult> result() = 0;
  // The next notification read by consume_input(), if any.
  virtual std::optional<Notification> notification() = 0;
};

// The libpq session for `conninfo` (see connection_params() for the defaults
// it adds). `on_log`, which may be empty but must outlive the session,
// receives the server's notices and warnings.
std::unique_ptr<Session> make_pg_session(std::string conninfo,
                                         const LogFunction *on_log);

}  // namespace shard_coordinator::client
