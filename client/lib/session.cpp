#include "session.hpp"

#include <system_error>

#include "connect.hpp"
#include "text.hpp"

namespace shard_coordinator::client {

namespace {

bool is_failure(const PGresult *result) {
  ExecStatusType status = PQresultStatus(result);
  return status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK;
}

// "message (hint)" from a failed result, one line.
std::string server_message(const PGresult *result, PGconn *conn) {
  const char *primary =
      result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string text =
      primary ? primary : (conn ? PQerrorMessage(conn) : "unknown error");
  const char *hint =
      result ? PQresultErrorField(result, PG_DIAG_MESSAGE_HINT) : nullptr;
  if (hint) text += std::string(" (") + hint + ")";
  return one_line(text);
}

class PgSession final : public Session {
 public:
  PgSession(std::string conninfo, const LogFunction *on_log)
      : conninfo_(std::move(conninfo)), on_log_(on_log) {}

  std::string connect() override {
    disconnect();
    try {
      attempt_ = std::make_unique<ConnectAttempt>(
          connection_params(conninfo_, kApplicationName));
    } catch (const std::system_error &e) {
      return e.what();
    }
    return "";
  }

  bool connect_done() const override { return attempt_ && attempt_->done(); }

  std::string finish_connect() override {
    PgConn c = attempt_->take();
    attempt_.reset();
    if (!c || PQstatus(c.get()) != CONNECTION_OK) {
      std::string why = c ? one_line(PQerrorMessage(c.get())) : "out of memory";
      return "cannot connect to the database: " + why +
             "; check the connection string (or PGHOST, PGPORT, PGUSER, "
             "PGDATABASE) and that the server is up; retrying";
    }
    if (PQsetnonblocking(c.get(), 1) != 0)
      return "cannot make the connection non-blocking: " +
             one_line(PQerrorMessage(c.get())) + "; retrying";
    // Server NOTICEs and WARNINGs go to the log, not raw to stderr.
    // log_notice() takes a pointer to non-const but only reads through it.
    PQsetNoticeProcessor(c.get(), log_notice,
                         const_cast<LogFunction *>(on_log_));
    conn_ = std::move(c);
    server_ = std::string(PQhost(conn_.get())) + ":" + PQport(conn_.get());
    return "";
  }

  void disconnect() override {
    attempt_.reset();
    conn_.reset();
    in_flight_ = false;
    pending_.reset();
    want_write_ = false;
  }

  int fd() const override {
    if (attempt_) return attempt_->fd();
    if (conn_) return PQsocket(conn_.get());
    return -1;
  }

  std::string server() const override { return server_; }

  std::string error_message() const override {
    return one_line(PQerrorMessage(conn_.get()));
  }

  bool broken() const override {
    return PQstatus(conn_.get()) == CONNECTION_BAD;
  }

  std::optional<std::string> quote_identifier(
      const std::string &name) override {
    char *quoted = PQescapeIdentifier(conn_.get(), name.c_str(), name.size());
    if (quoted == nullptr) return std::nullopt;
    std::string text(quoted);
    PQfreemem(quoted);
    return text;
  }

  bool send(const std::string &sql, const QueryParams &params) override {
    std::vector<const char *> values;
    for (const auto &param : params)
      values.push_back(param ? param->c_str() : nullptr);
    int ok = params.empty()
                 ? PQsendQuery(conn_.get(), sql.c_str())
                 : PQsendQueryParams(conn_.get(), sql.c_str(),
                                     static_cast<int>(values.size()), nullptr,
                                     values.data(), nullptr, nullptr, 0);
    if (!ok) return false;
    in_flight_ = true;
    pending_.reset();
    return true;
  }

  bool flush() override {
    int rc = PQflush(conn_.get());
    if (rc < 0) return false;
    want_write_ = rc == 1;
    return true;
  }

  bool want_write() const override { return want_write_; }

  bool consume_input() override { return PQconsumeInput(conn_.get()) != 0; }

  std::optional<QueryResult> result() override {
    while (in_flight_) {
      if (PQisBusy(conn_.get())) return std::nullopt;
      PgResult next(PQgetResult(conn_.get()));
      if (next) {
        // A query of several statements (the LISTENs) gives one result
        // each: keep a failure over the successes before it.
        if (!pending_ ||
            (is_failure(next.get()) && !is_failure(pending_.get())))
          pending_ = std::move(next);
        continue;
      }
      in_flight_ = false;
      PgResult done = std::move(pending_);
      return convert(done.get());
    }
    return std::nullopt;
  }

  std::optional<Notification> notification() override {
    PGnotify *raw = PQnotifies(conn_.get());
    if (raw == nullptr) return std::nullopt;
    std::unique_ptr<PGnotify, decltype(&PQfreemem)> note(raw, PQfreemem);
    return Notification{note->relname, note->extra};
  }

 private:
  // No result at all counts as a failure, with the connection's message.
  QueryResult convert(const PGresult *result) const {
    QueryResult out;
    out.ok = result != nullptr && !is_failure(result);
    if (!out.ok) {
      const char *state =
          result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
      out.sqlstate = state ? state : "";
      out.message = server_message(result, conn_.get());
      return out;
    }
    out.columns = PQnfields(result);
    int rows = PQntuples(result);
    out.rows.resize(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
      auto &row = out.rows[static_cast<size_t>(r)];
      for (int c = 0; c < out.columns; ++c) {
        if (PQgetisnull(result, r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(
              std::string(PQgetvalue(result, r, c), PQgetlength(result, r, c)));
        }
      }
    }
    return out;
  }

  std::string conninfo_;
  const LogFunction *on_log_;
  std::unique_ptr<ConnectAttempt> attempt_;
  PgConn conn_;
  std::string server_;  // "host:port" of the current connection
  bool in_flight_ = false;
  // The first failed result of the query in flight, else its first result.
  PgResult pending_;
  bool want_write_ = false;
};

}  // namespace

std::unique_ptr<Session> make_pg_session(std::string conninfo,
                                         const LogFunction *on_log) {
  return std::make_unique<PgSession>(std::move(conninfo), on_log);
}

}  // namespace shard_coordinator::client
