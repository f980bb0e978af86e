#include "metrics.hpp"

#include <arpa/inet.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <mutex>
#include <utility>

namespace shard_coordinator::agent {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr const char *kPrefix = "shard_coordinator_agent_";

// Builds the families of one scrape; every sample carries the cluster and
// member labels.
class Families {
 public:
  explicit Families(const AgentSnapshot &snapshot) : snapshot_(snapshot) {}

  void gauge(const std::string &name, const std::string &help, double value) {
    family(name, help, MetricType::Gauge).metric.push_back(sample(value, {}));
  }
  void counter(const std::string &name, const std::string &help,
               std::uint64_t value) {
    family(name, help, MetricType::Counter)
        .metric.push_back(sample(static_cast<double>(value), {}));
  }
  // One sample per value of the label `label`.
  void labelled(const std::string &name, const std::string &help,
                MetricType type, const std::string &label,
                const std::vector<std::pair<std::string, double>> &values) {
    MetricFamily &f = family(name, help, type);
    for (const auto &[label_value, value] : values)
      f.metric.push_back(sample(value, {{label, label_value}}));
  }

  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  MetricFamily &family(const std::string &name, const std::string &help,
                       MetricType type) {
    families_.push_back(MetricFamily{kPrefix + name, help, type, {}});
    return families_.back();
  }

  ClientMetric sample(double value, std::vector<ClientMetric::Label> extra) {
    ClientMetric m;
    m.label = {{"cluster", snapshot_.cluster}, {"member", snapshot_.member}};
    m.label.insert(m.label.end(), extra.begin(), extra.end());
    m.gauge.value = value;
    m.counter.value = value;
    return m;
  }

  const AgentSnapshot &snapshot_;
  std::vector<MetricFamily> families_;
};

double seconds(client::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

std::vector<MetricFamily> agent_metrics(const AgentSnapshot &snapshot,
                                        client::Clock::time_point now) {
  const client::Assignment &assignment = snapshot.assignment;
  const client::Grant &grant = snapshot.grant;
  const client::Statistics &registrar = snapshot.registrar;
  const AgentCounts &counts = snapshot.counts;
  Families out(snapshot);

  out.gauge("connected", "1 while the agent is connected to the server",
            registrar.connected ? 1 : 0);
  std::vector<std::pair<std::string, double>> states;
  for (client::State state :
       {client::State::Pending, client::State::Active, client::State::Standby,
        client::State::Removed, client::State::Lost})
    states.emplace_back(client::state_name(state),
                        assignment.state == state ? 1 : 0);
  out.labelled("state",
               "The member's state as the server last told it (lost: the "
               "lease ran out): 1 for the current one",
               MetricType::Gauge, "state", states);
  out.gauge("epoch", "The epoch of the member's assignment",
            static_cast<double>(assignment.epoch));
  out.gauge("lease_remaining_seconds",
            "Time left of the lease from the last successful heartbeat (0 "
            "without one); the server may give the work away at its end",
            snapshot.lease_end
                ? std::max(0.0, seconds(*snapshot.lease_end - now))
                : 0.0);
  out.gauge("granted", "1 while the member holds work (a non-empty grant)",
            grant.empty() ? 0 : 1);
  if (grant.shard)
    out.gauge("grant_shard",
              "The grant's shard (slot mode: the member's index among the "
              "active members); absent without one",
              *grant.shard);
  out.gauge("grant_num_shards",
            "The grant's number of shards (slot mode: of active members)",
            grant.num_shards);
  out.gauge("grant_epoch",
            "The epoch at which the grant became these keys (SHARD_EPOCH)",
            static_cast<double>(grant.epoch));
  if (grant.slots)
    out.gauge("grant_slots",
              "The number of slot keys in the grant (slot mode only)",
              static_cast<double>(grant.slots->size()));
  if (snapshot.acknowledged_epoch)
    out.gauge("acknowledged_epoch",
              "The epoch the server counts as acknowledged; absent before "
              "the first",
              static_cast<double>(*snapshot.acknowledged_epoch));
  out.gauge("releases_pending",
            "Revocations not acknowledged yet: work the command must still "
            "stop",
            static_cast<double>(snapshot.releases_pending));
  out.gauge("child_running",
            "1 while the command, or anything of its process tree, runs",
            snapshot.child_running ? 1 : 0);

  std::vector<std::pair<std::string, double>> revocations;
  for (client::RevokeReason reason :
       {client::RevokeReason::Server, client::RevokeReason::Lost,
        client::RevokeReason::Removed, client::RevokeReason::Stop})
    revocations.emplace_back(
        client::reason_name(reason),
        static_cast<double>(counts.revocations[static_cast<size_t>(reason)]));
  out.labelled("revocations_total",
               "Work taken away, by reason: server (moved by a reshard), "
               "lost (the lease ran out), removed (the server dropped the "
               "member), stop (the agent is stopping)",
               MetricType::Counter, "reason", revocations);
  out.counter("lease_losses_total",
              "Times the lease ran out without a successful heartbeat",
              counts.lease_losses);
  out.counter("child_starts_total",
              "Commands started: the first, and one per new grant",
              counts.child_starts);
  out.counter("acknowledgements_total",
              "Revocations acknowledged once nothing of the command's "
              "process tree was left",
              counts.acknowledgements);
  out.counter("connections_total", "Connections made to the server",
              registrar.connections);
  out.counter("connection_failures_total",
              "Connection attempts that failed and connections lost; each "
              "is retried after a backoff",
              registrar.connection_failures);
  out.counter("heartbeats_total", "Heartbeats the server answered",
              registrar.heartbeats);
  out.counter("heartbeat_failures_total",
              "Heartbeats that got an error or no answer",
              registrar.heartbeat_failures);
  out.counter("notifications_total",
              "Notifications received on the member's and the cluster's "
              "channels",
              registrar.notifications);
  return out.take();
}

std::optional<MetricsAddress> parse_metrics_address(const std::string &text,
                                                    std::string *error) {
  auto fail = [&](const std::string &why) -> std::optional<MetricsAddress> {
    *error = why;
    return std::nullopt;
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return fail("expected HOST:PORT");
  MetricsAddress address{text.substr(0, colon), text.substr(colon + 1)};
  const std::string &port = address.port;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(),
                   [](unsigned char c) { return std::isdigit(c) != 0; }) ||
      std::stoi(port) > 65535)
    return fail("the port must be a number from 0 to 65535");
  std::string &host = address.host;
  if (host == "localhost") host = "127.0.0.1";
  unsigned char buffer[sizeof(in_addr)];
  if (host.empty() || inet_pton(AF_INET, host.c_str(), buffer) == 1)
    return address;
  // Debian's civetweb, under prometheus-cpp, binds no IPv6 address.
  if (host.front() == '[')
    return fail("IPv6 addresses are not supported: give an IPv4 one");
  return fail(
      "HOST must be an IPv4 address, localhost, or empty for every IPv4 "
      "interface");
}

class MetricsEndpoint::Collector final : public prometheus::Collectable {
 public:
  std::vector<MetricFamily> Collect() const override {
    try {
      std::optional<AgentSnapshot> snapshot;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        snapshot = snapshot_;
      }
      if (!snapshot) return {};
      return agent_metrics(*snapshot, client::Clock::now());
    } catch (...) {
      return {};  // on civetweb's thread: nothing may escape
    }
  }

  void update(AgentSnapshot snapshot) {
    std::lock_guard<std::mutex> lock(mutex_);
    snapshot_ = std::move(snapshot);
  }

 private:
  mutable std::mutex mutex_;
  std::optional<AgentSnapshot> snapshot_;
};

std::unique_ptr<MetricsEndpoint> MetricsEndpoint::listen(
    const std::string &text, std::string *error) noexcept {
  try {
    std::optional<MetricsAddress> address = parse_metrics_address(text, error);
    if (!address) {
      *error = "--metrics-addr " + text + ": " + *error;
      return nullptr;
    }
    std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
    endpoint->collector_ = std::make_shared<Collector>();
    // civetweb's listening_ports: a port alone is every IPv4 interface.
    const std::string spec = address->host.empty()
                                 ? address->port
                                 : address->host + ":" + address->port;
    try {
      // One worker thread: scrapes are rare and cheap.
      endpoint->exposer_ = std::make_unique<prometheus::Exposer>(spec, 1);
    } catch (const std::exception &) {
      // civetweb says only "null context when constructing CivetServer".
      *error = "--metrics-addr " + text +
               ": cannot listen there (the port is in use, or the address "
               "is not one of this machine's)";
      return nullptr;
    }
    endpoint->exposer_->RegisterCollectable(endpoint->collector_);
    const std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
    endpoint->where_ =
        (address->host.empty() ? "0.0.0.0" : address->host) + ":" +
        (ports.empty() ? address->port : std::to_string(ports.front()));
    return endpoint;
  } catch (const std::exception &e) {
    *error = "--metrics-addr " + text + ": " + e.what();
    return nullptr;
  }
}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::update(AgentSnapshot snapshot) {
  collector_->update(std::move(snapshot));
}

}  // namespace shard_coordinator::agent
