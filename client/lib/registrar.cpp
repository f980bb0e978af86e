// The registrar: the phase machine (machine.hpp) on the libpq session
// (session.hpp), a poll() loop for run(), and request_stop()'s wake-up pipe.
// The rest lives in its parts:
//   session.*   libpq's non-blocking I/O, behind the Session interface
//   protocol.*  the SQL sent, and what answers and notifications mean
//   machine.*   phases and timers: connect, LISTEN, heartbeat, back off, leave
//   tracker.*   what is reported: epochs, notices and the self-fencing lease

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <system_error>
#include <thread>

#include "backoff.hpp"
#include "deadline.hpp"
#include "machine.hpp"
#include "session.hpp"
#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

const char *state_name(State state) {
  switch (state) {
    case State::Pending:
      return "pending";
    case State::Active:
      return "active";
    case State::Standby:
      return "standby";
    case State::Removed:
      return "removed";
    case State::Lost:
      return "lost";
  }
  return "unknown";
}

bool Assignment::operator==(const Assignment &other) const {
  return state == other.state && shard == other.shard &&
         num_shards == other.num_shards && epoch == other.epoch &&
         slots == other.slots;
}

struct Registrar::Impl {
  explicit Impl(Options opts)
      : options(std::move(opts)),
        session(make_pg_session(options.conninfo, &options.on_log)),
        machine(options, *session, random_uniform01(), random_incarnation()) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    wake_read = fds[0];
    wake_write = fds[1];
  }
  ~Impl() {
    close(wake_read);
    close(wake_write);
  }

  Options options;
  std::unique_ptr<Session> session;
  Machine machine;  // uses options and session

  std::atomic<bool> stop_requested{false};
  // The greatest epoch acknowledge() was called with since the last step;
  // kNoAck: none.
  static constexpr std::int64_t kNoAck = INT64_MIN;
  std::atomic<std::int64_t> ack_requested{kNoAck};
  // The thread that steps the machine (set by step()): acknowledge() from
  // it takes effect at once.
  std::atomic<std::thread::id> loop_thread{};
  int wake_read = -1;
  int wake_write = -1;

  Clock::time_point now() const { return options.clock(); }
};

Registrar::Registrar(Options options) {
  if (!options.clock) options.clock = [] { return Clock::now(); };
  if (options.member.empty()) options.member = default_member_name();
  impl_ = std::make_unique<Impl>(std::move(options));
}

Registrar::~Registrar() {
  if (finished()) return;
  // Leave without calling back into an owner that is being destroyed.
  impl_->options.on_assignment = nullptr;
  impl_->options.on_error = nullptr;
  impl_->options.on_log = nullptr;
  impl_->options.on_revoked = nullptr;
  impl_->options.on_granted = nullptr;
  impl_->options.on_acknowledged = nullptr;
  // Acknowledgements asked for before this still count.
  std::int64_t acked = impl_->ack_requested.exchange(Impl::kNoAck);
  if (acked != Impl::kNoAck) impl_->machine.acknowledge(acked);
  // Work the application may still be doing: nobody can tell the registrar
  // it stopped, so it must not leave; the server expires the member after
  // the promise, by which the work must have stopped.
  if (impl_->machine.holds_work()) {
    impl_->machine.abandon();
    return;
  }
  request_stop();
  try {
    run();
  } catch (...) {
    // poll() failed: nothing more can be done for a clean leave.
  }
}

const std::string &Registrar::cluster() const { return impl_->options.cluster; }
const std::string &Registrar::member() const { return impl_->options.member; }
const Assignment &Registrar::assignment() const {
  return impl_->machine.assignment();
}

const Grant &Registrar::grant() const { return impl_->machine.grant(); }

std::vector<Revocation> Registrar::releases() const {
  return impl_->machine.releases();
}

std::optional<std::int64_t> Registrar::applied_epoch() const {
  return impl_->machine.applied_epoch();
}

std::optional<std::int64_t> Registrar::acknowledged_epoch() const {
  return impl_->machine.acknowledged_epoch();
}

void Registrar::acknowledge(std::int64_t epoch) {
  if (impl_->loop_thread.load() == std::this_thread::get_id()) {
    impl_->machine.acknowledge(epoch);
    return;
  }
  std::int64_t current = impl_->ack_requested.load();
  while (epoch > current &&
         !impl_->ack_requested.compare_exchange_weak(current, epoch)) {
  }
  int saved = errno;
  ssize_t ignored = write(impl_->wake_write, "a", 1);
  (void)ignored;  // a full pipe already wakes the loop
  errno = saved;
}

Statistics Registrar::statistics() const { return impl_->machine.statistics(); }

std::int64_t Registrar::incarnation() const {
  return impl_->machine.incarnation();
}

std::optional<LeaseTimes> Registrar::lease() const {
  return impl_->machine.lease();
}

bool Registrar::run() {
  while (!finished()) {
    Wait wait = next_wait();
    pollfd fds[2];
    nfds_t count = 0;
    if (wait.fd >= 0) fds[count++] = pollfd{wait.fd, wait.events, 0};
    fds[count++] = pollfd{impl_->wake_read, POLLIN, 0};
    int rc = poll(fds, count, poll_timeout_ms(wait.deadline, impl_->now()));
    if (rc < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "poll");
    char drain[64];
    while (read(impl_->wake_read, drain, sizeof drain) > 0) {
    }
    step(rc > 0 && wait.fd >= 0 ? fds[0].revents : 0);
  }
  return !failed();
}

void Registrar::request_stop() {
  int saved = errno;
  impl_->stop_requested.store(true);
  ssize_t ignored = write(impl_->wake_write, "x", 1);
  (void)ignored;  // a full pipe already wakes the loop
  errno = saved;
}

Registrar::Wait Registrar::next_wait() const {
  Wait wait = impl_->machine.next_wait();
  if (impl_->stop_requested.load() ||
      impl_->ack_requested.load() != Impl::kNoAck) {
    Clock::time_point now = impl_->now();
    if (!wait.deadline || now < *wait.deadline) wait.deadline = now;
  }
  return wait;
}

void Registrar::step(short revents) {
  impl_->loop_thread.store(std::this_thread::get_id());
  std::int64_t acked = impl_->ack_requested.exchange(Impl::kNoAck);
  if (acked != Impl::kNoAck) impl_->machine.acknowledge(acked);
  if (impl_->stop_requested.exchange(false)) impl_->machine.stop();
  impl_->machine.step(revents);
}

void Registrar::stop() { impl_->machine.stop(); }
void Registrar::abandon() { impl_->machine.abandon(); }
bool Registrar::finished() const { return impl_->machine.finished(); }
bool Registrar::failed() const { return impl_->machine.failed(); }

}  // namespace shard_coordinator::client
