// `shard-coordinator watch`: joins the cluster and prints one JSON line per
// event on stdout, for scripts (format.hpp): the assignment, grants,
// revocations with their deadlines, and the server's acknowledgements.
//
// With --ack each revocation is acknowledged once its line is written
// (Acknowledge::OnReturn): for a script that applies each line before it
// reads the next. Without it nothing is acknowledged: the server keeps
// revoked work held until its own deadline, and on a stop watch leaves only
// if it held nothing (the server expires it otherwise), since it cannot know
// when the script stopped.
//
// Stops on SIGTERM/SIGINT/SIGHUP or when stdout is closed.

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
  explicit Watcher(const WatchOptions &options)
      : ack_(options.ack),
        no_leave_(options.no_leave),
        registrar_(options_for(options)) {
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
    if (!stopping_ || stop_begun_) return;
    stop_begun_ = true;
    if (ack_ || no_leave_ ||
        (registrar_.grant().empty() && registrar_.releases().empty())) {
      registrar_.stop();
    } else {
      log(Level::Info,
          "holding work nobody acknowledged (no --ack): not leaving; the "
          "server hands it on when the member's lease ends");
      registrar_.abandon();
    }
  }

 private:
  client::Options options_for(const WatchOptions &options) {
    client::Options reg_options = registrar_options(options, repeats_);
    reg_options.acknowledge = options.ack ? client::Acknowledge::OnReturn
                                          : client::Acknowledge::Explicit;
    reg_options.on_assignment = [this](const client::Assignment &a) {
      print(assignment_json(registrar_.cluster(), registrar_.member(), a));
    };
    reg_options.on_granted = [this](const client::Grant &g) {
      print(grant_json(registrar_.cluster(), registrar_.member(), g));
    };
    reg_options.on_revoked = [this](const client::Revocation &r) {
      print(revocation_json(registrar_.cluster(), registrar_.member(), r,
                            client::Clock::now(),
                            std::chrono::system_clock::now()));
    };
    reg_options.on_acknowledged = [this](std::int64_t epoch) {
      print(
          acknowledged_json(registrar_.cluster(), registrar_.member(), epoch));
    };
    return reg_options;
  }

  void print(const std::string &line) {
    if (output_closed_) return;
    if (!write_line(line + "\n")) output_closed_ = true;
  }

  bool ack_;
  bool no_leave_;
  RepeatFilter repeats_{std::chrono::seconds(30)};
  bool output_closed_ = false;
  client::Registrar registrar_;  // after what its callbacks use
  bool stopping_ = false;
  bool stop_begun_ = false;
  bool poll_failed_ = false;
};

}  // namespace

int watch_command(const WatchOptions &options) {
  SignalPipe signals({SIGTERM, SIGINT, SIGHUP});
  Watcher watcher(options);
  run_event_loop(watcher.registrar(), signals, watcher);
  return watcher.exit_code();
}

}  // namespace shard_coordinator::agent
