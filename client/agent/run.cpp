// `shard-coordinator run`: the agent's event loop (loop.hpp) with a handler
// that, after every wake-up, makes the child match the assignment (the
// decision is decide_child(), supervise.hpp).
//
// Order of events that matter:
// - assignment changes (shard, count or slots): SIGTERM the old child, wait
//   for it (SIGKILL after --kill-timeout), then start the new one; two
//   children of one agent never overlap.
// - the lease runs out (Lost): same, but SIGKILL no later than halfway
//   between the fence point and the lease end, whatever --kill-timeout says,
//   so the child is gone before the server can give the shard away. The
//   server dropped the member (Removed): SIGKILL at once. The same for a
//   lapse the loop did not see as such (Lost or Removed and back to the same
//   work within one step, after the whole agent was paused).
// - a graceful stop's SIGTERM is followed by a SIGCONT, so a stopped child
//   acts on it; a child past its deadline gets SIGKILL and nothing else (it
//   must not run again, not even its SIGTERM handler).
// - SIGTERM/SIGINT/SIGHUP: stop the child while still heartbeating, then
//   leave() so the shard is handed on at once, then exit 0. A second signal
//   SIGKILLs the child at once.
// - the child exits by itself: leave and exit (5 or 6); a supervisor such as
//   systemd or Kubernetes restarts the agent.

#include <signal.h>
#include <sys/wait.h>

#include <cstring>

#include "agent.hpp"
#include "child.hpp"
#include "format.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "member.hpp"
#include "proctree.hpp"
#include "signals.hpp"
#include "supervise.hpp"
#include "text.hpp"

extern char **environ;

namespace shard_coordinator::agent {

namespace {

using client::Clock;
using client::describe;

class Runner final : public LoopHandler {
 public:
  explicit Runner(const RunOptions &options)
      : registrar_(options_for(options)),
        child_(options.command, options.kill_timeout) {
    log(Level::Info, "member " + registrar_.member() + " of cluster " +
                         registrar_.cluster() +
                         ", command: " + options.command.front());
  }

  client::Registrar &registrar() { return registrar_; }
  int exit_code() const { return exit_code_; }

  bool before_wait() override {
    if (registrar_.finished() && !shutting_down_)
      shut_down(registrar_.failed() ? kExitRejected : kExitInternal);
    supervise();
    // Shutting down: leave once the child is gone (the shard is handed on
    // only when nobody here works on it any more).
    if (shutting_down_ && !child_.running() && !registrar_stopped_) {
      registrar_.stop();
      registrar_stopped_ = true;
    }
    return !(registrar_.finished() && !child_.running());
  }

  std::optional<Clock::time_point> deadline() const override {
    return child_.next_deadline();
  }

  bool on_poll_error(int error) override {
    log(Level::Error, std::string("poll failed: ") + std::strerror(error));
    shut_down(kExitInternal);
    return true;
  }

  void on_signal(int signo) override {
    if (signo == SIGCHLD) return;
    const char *name = sigabbrev_np(signo);
    if (!shutting_down_) {
      log(Level::Info, std::string("received SIG") + (name ? name : "?") +
                           ": stopping the command, then leaving");
      shut_down(kExitStopped);
    } else if (child_.running()) {
      log(Level::Warning, std::string("received SIG") + (name ? name : "?") +
                              " again: killing pid " +
                              std::to_string(child_.pid()));
      kill_now_ = true;
      supervise();
    }
  }

  void after_wake() override {
    pid_t pid = child_.pid();
    if (auto exit = child_.reap()) {
      std::string how = describe_wait_status(exit->wait_status);
      if (exit->stopped) {
        log(Level::Info, "pid " + std::to_string(pid) + " " + how);
      } else {
        bool ok =
            WIFEXITED(exit->wait_status) && WEXITSTATUS(exit->wait_status) == 0;
        log(Level::Warning, "the command (pid " + std::to_string(pid) + ") " +
                                how + " by itself; leaving the cluster");
        shut_down(ok ? kExitChildDone : kExitChildFailed);
      }
    }
    child_.on_timer(Clock::now());
  }

 private:
  client::Options options_for(const RunOptions &options) {
    client::Options reg_options = registrar_options(options, repeats_);
    // Revoked work has stopped only once the child is gone.
    reg_options.acknowledge = client::Acknowledge::Explicit;
    // Set when the reported assignment goes Lost or Removed. The loop looks
    // at the assignment only between steps, and one step can take it from
    // Lost or Removed back to the same work (a heartbeat answer and a
    // notification handled together, after a pause of the whole agent): a
    // child that still worked without a lease must go at once.
    reg_options.on_assignment = [this](const client::Assignment &a) {
      if (a.state == client::State::Lost || a.state == client::State::Removed)
        lease_lapsed_ = true;
    };
    return reg_options;
  }

  void shut_down(int code) {
    if (shutting_down_) return;
    shutting_down_ = true;
    exit_code_ = code;
  }

  // Makes the child match the assignment (see supervise.hpp).
  void supervise() {
    // Nothing runs: whatever was revoked has stopped.
    std::vector<client::Revocation> releases = registrar_.releases();
    if (!releases.empty() && !child_.running())
      registrar_.acknowledge(releases.back().epoch);
    const client::Assignment &a = registrar_.assignment();
    ChildSituation situation;
    situation.assignment = a;
    situation.registrar_finished = registrar_.finished();
    situation.lease = registrar_.lease();
    situation.lease_lapsed = lease_lapsed_;
    situation.child_running = child_.running();
    situation.child_stopping = child_.stopping();
    situation.child_assignment = child_assignment_;
    situation.shutting_down = shutting_down_;
    situation.kill_now = kill_now_;
    Clock::time_point now = Clock::now();
    ChildDecision decision = decide_child(situation, now);
    lease_lapsed_ = decision.lease_lapsed;
    switch (decision.action) {
      case ChildAction::Nothing:
        break;
      case ChildAction::Start: {
        std::string error = child_.start(child_environment(
            environ, a, registrar_.cluster(), registrar_.member()));
        if (!error.empty()) {
          log(Level::Error, error + "; check the command and PATH");
          shut_down(kExitCannotStart);
          break;
        }
        child_assignment_ = a;
        log(Level::Info,
            "started pid " + std::to_string(child_.pid()) + ": " + describe(a));
        break;
      }
      case ChildAction::Stop:
        log(Level::Info,
            "stopping pid " + std::to_string(child_.pid()) + " (" +
                describe(child_assignment_) + "): now " +
                (shutting_down_
                     ? "shutting down"
                     : describe(a) + (lease_lapsed_ ? ", after a lapse of the "
                                                      "lease"
                                                    : "")));
        child_.stop(now, decision.deadline);
        break;
      case ChildAction::Kill:
        child_.kill_by(*decision.deadline);
        break;
    }
  }

  RepeatFilter repeats_{std::chrono::seconds(30)};
  bool lease_lapsed_ = false;
  client::Registrar registrar_;  // after what its callbacks use
  ChildProcess child_;
  client::Assignment child_assignment_;  // what the running child was given
  bool shutting_down_ = false;
  bool kill_now_ = false;  // signalled again while shutting down
  bool registrar_stopped_ = false;
  int exit_code_ = kExitStopped;
};

}  // namespace

int run_command(const RunOptions &options) {
  // Orphans of the child's tree come to the agent, which finds and kills
  // them (child.hpp).
  std::string why = become_subreaper();
  if (!why.empty())
    log(Level::Warning,
        why +
            "; descendants of the command that leave its process group "
            "are not stopped");
  SignalPipe signals({SIGTERM, SIGINT, SIGHUP, SIGCHLD});
  Runner runner(options);
  run_event_loop(runner.registrar(), signals, runner);
  return runner.exit_code();
}

}  // namespace shard_coordinator::agent
