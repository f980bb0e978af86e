// `run --metrics-addr HOST:PORT`: the agent's own state in the Prometheus
// text format at http://HOST:PORT/metrics, served by prometheus-cpp's
// Exposer (civetweb, on threads of its own). Without the option nothing
// listens.
//
// Threads: the agent's loop owns everything reported here. After each
// wake-up it hands MetricsEndpoint::update() a copy (AgentSnapshot), under
// a mutex. A scrape, on an exposer thread, copies the last snapshot under
// the same mutex and renders it with agent_metrics(); only
// lease_remaining_seconds depends on the moment of the scrape (the lease's
// end minus the clock then). The loop never waits on a scrape for longer
// than that copy, and nothing on the exposer's threads throws (a scrape
// that cannot be rendered shows nothing).
//
// Every metric is named shard_coordinator_agent_* and labelled with the
// cluster and the member (README, "Operations", lists them).
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shard_coordinator/client.hpp"

namespace prometheus {
class Exposer;
}

namespace shard_coordinator::agent {

// What the agent counted itself (the registrar counts connections,
// heartbeats and notifications: client::Statistics).
struct AgentCounts {
  // Work taken away, by client::RevokeReason (Server, Lost, Removed, Stop).
  std::array<std::uint64_t, 4> revocations{};
  std::uint64_t lease_losses = 0;      // the assignment became Lost
  std::uint64_t child_starts = 0;      // commands started
  std::uint64_t acknowledgements = 0;  // once a child's tree was gone
};

// The agent's state at one moment, as the loop saw it.
struct AgentSnapshot {
  std::string cluster;
  std::string member;
  client::Assignment assignment;  // Registrar::assignment()
  client::Grant grant;            // Registrar::grant()
  std::optional<client::Clock::time_point> lease_end;
  std::optional<std::int64_t> acknowledged_epoch;
  std::size_t releases_pending = 0;  // Registrar::releases()
  bool child_running = false;        // the command or its tree
  client::Statistics registrar;
  AgentCounts counts;
};

// The metric families of `snapshot`, at `now` (for the lease remaining).
// Pure: unit-tested.
std::vector<prometheus::MetricFamily> agent_metrics(
    const AgentSnapshot &snapshot, client::Clock::time_point now);

// Where --metrics-addr says to listen.
struct MetricsAddress {
  std::string host;  // empty: every IPv4 interface
  std::string port;  // "0": a free port, which the log names
};

// Checks --metrics-addr: HOST:PORT, where HOST is an IPv4 address,
// `localhost`, or empty for every IPv4 interface (the server, civetweb as
// Debian builds it, binds no IPv6 address), and PORT 0 to 65535. Returns
// nullopt and why in *error (one sentence, without the address).
std::optional<MetricsAddress> parse_metrics_address(const std::string &text,
                                                    std::string *error);

class MetricsEndpoint {
 public:
  // Listens on `address` (checked by parse_metrics_address). Returns nullptr
  // and says why in *error when it cannot (a malformed address, the port
  // in use, not an address of this machine).
  static std::unique_ptr<MetricsEndpoint> listen(const std::string &address,
                                                 std::string *error) noexcept;
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint &) = delete;
  MetricsEndpoint &operator=(const MetricsEndpoint &) = delete;

  // "127.0.0.1:9187": where it listens, with the port the system chose for
  // port 0.
  const std::string &where() const { return where_; }
  // What the next scrapes show (nothing before the first call).
  void update(AgentSnapshot snapshot);

 private:
  class Collector;
  MetricsEndpoint() = default;

  std::string where_;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // after what it serves
};

}  // namespace shard_coordinator::agent
