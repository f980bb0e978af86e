// `shard-coordinator watch`: joins the cluster and prints one JSON line per
// assignment change on stdout, for scripts. Stops (and leaves) on
// SIGTERM/SIGINT/SIGHUP or when stdout is closed.

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent.hpp"
#include "format.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "member.hpp"
#include "signals.hpp"

namespace shard_coordinator::agent {

namespace {

// Writes all of `line`; false when stdout is gone (EPIPE) or broken.
bool write_line(const std::string &line) {
  const char *data = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(STDOUT_FILENO, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

class Watcher final : public LoopHandler {
 public:
  explicit Watcher(const MemberOptions &options)
      : registrar_(options_for(options)) {
    log(Level::Info, "member " + registrar_.member() + " of cluster " +
                         registrar_.cluster());
  }

  client::Registrar &registrar() { return registrar_; }
  int exit_code() const {
    if (poll_failed_) return kExitInternal;
    if (registrar_.failed()) return kExitRejected;
    return kExitStopped;
  }

  bool before_wait() override { return !registrar_.finished(); }

  bool on_poll_error(int error) override {
    log(Level::Error, std::string("poll failed: ") + std::strerror(error));
    poll_failed_ = true;
    return false;
  }

  void on_signal(int signo) override {
    const char *name = sigabbrev_np(signo);
    log(Level::Info,
        std::string("received SIG") + (name ? name : "?") + ": leaving");
    stopping_ = true;
  }

  void after_wake() override {
    if (output_closed_ && !stopping_) {
      log(Level::Info, "stdout closed: leaving");
      stopping_ = true;
    }
    if (stopping_) registrar_.stop();
  }

 private:
  client::Options options_for(const MemberOptions &options) {
    client::Options reg_options = registrar_options(options, repeats_);
    reg_options.on_assignment = [this](const client::Assignment &a) {
      if (output_closed_) return;
      if (!write_line(
              assignment_json(registrar_.cluster(), registrar_.member(), a) +
              "\n"))
        output_closed_ = true;
    };
    return reg_options;
  }

  RepeatFilter repeats_{std::chrono::seconds(30)};
  bool output_closed_ = false;
  client::Registrar registrar_;  // after what its callbacks use
  bool stopping_ = false;
  bool poll_failed_ = false;
};

}  // namespace

int watch_command(const MemberOptions &options) {
  SignalPipe signals({SIGTERM, SIGINT, SIGHUP});
  Watcher watcher(options);
  run_event_loop(watcher.registrar(), signals, watcher);
  return watcher.exit_code();
}

}  // namespace shard_coordinator::agent
