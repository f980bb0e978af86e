#include "connect.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>

namespace shard_coordinator::client {

std::vector<std::pair<std::string, std::string>> connection_params(
    const std::string &conninfo, const std::string &application_name) {
  std::vector<std::pair<std::string, std::string>> params;
  params.emplace_back("fallback_application_name", application_name);
  // Without a timeout an unreachable host holds up the whole host list.
  if (std::getenv("PGCONNECT_TIMEOUT") == nullptr)
    params.emplace_back("connect_timeout", "5");
  // TCP keepalives, with timings of our own: libpq turns them on by default
  // but leaves the timings to the kernel (Linux: first probe after 2 hours),
  // and has no environment variables for them. Between heartbeats the
  // connection is idle, only listening: a peer gone without a word (a
  // crashed host, a NAT or firewall that forgot the connection) would be
  // noticed only when the next heartbeat goes unanswered, long after
  // notifications stopped arriving if the heartbeat interval is long. A
  // probe after 10 s of silence, then every 5 s; after 3 unanswered probes
  // the kernel reports the connection dead: within 10 + 3 * 5 = 25 s of
  // silence. Unix-domain sockets ignore them.
  params.emplace_back("keepalives", "1");
  params.emplace_back("keepalives_idle", "10");
  params.emplace_back("keepalives_interval", "5");
  params.emplace_back("keepalives_count", "3");
  // Last, so that whatever the connection string says wins; an empty value
  // makes libpq fall back to PGDATABASE and the other environment variables.
  params.emplace_back("dbname", conninfo);
  return params;
}

PgConn connect_blocking(
    const std::vector<std::pair<std::string, std::string>> &params) {
  std::vector<const char *> keywords;
  std::vector<const char *> values;
  for (const auto &[key, value] : params) {
    keywords.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  return PgConn(PQconnectdbParams(keywords.data(), values.data(), 1));
}

struct ConnectAttempt::Shared {
  std::mutex mutex;
  PGconn *conn = nullptr;  // guarded by mutex
  bool done = false;       // guarded by mutex
  bool abandoned = false;  // guarded by mutex
  int read_fd = -1;
  int write_fd = -1;

  ~Shared() {
    if (conn != nullptr) PQfinish(conn);
    if (read_fd >= 0) close(read_fd);
    if (write_fd >= 0) close(write_fd);
  }
};

ConnectAttempt::ConnectAttempt(
    std::vector<std::pair<std::string, std::string>> params)
    : shared_(std::make_shared<Shared>()) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  shared_->read_fd = fds[0];
  shared_->write_fd = fds[1];
  std::thread([shared = shared_, params = std::move(params)]() {
    PGconn *conn = connect_blocking(params).release();
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->done = true;
    if (shared->abandoned) {
      PQfinish(conn);
      return;
    }
    shared->conn = conn;
    ssize_t ignored = write(shared->write_fd, "x", 1);
    (void)ignored;  // the pipe is new and empty: it cannot be full
  }).detach();
}

ConnectAttempt::~ConnectAttempt() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->abandoned = true;
  if (shared_->conn != nullptr) {
    PQfinish(shared_->conn);
    shared_->conn = nullptr;
  }
}

int ConnectAttempt::fd() const { return shared_->read_fd; }

bool ConnectAttempt::done() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->done;
}

PgConn ConnectAttempt::take() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  PgConn conn(shared_->conn);
  shared_->conn = nullptr;
  return conn;
}

}  // namespace shard_coordinator::client
