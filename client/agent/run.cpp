// `shard-coordinator run`: one loop that polls the registrar's socket and the
// signal pipe, and after every wake-up makes the child match the assignment.
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

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent.hpp"
#include "child.hpp"
#include "deadline.hpp"
#include "format.hpp"
#include "log.hpp"
#include "member.hpp"
#include "signals.hpp"
#include "supervise.hpp"
#include "text.hpp"

extern char **environ;

namespace shard_coordinator::agent {

namespace {

using client::Clock;
using client::describe;

}  // namespace

int run_command(const RunOptions &options) {
  SignalPipe signals({SIGTERM, SIGINT, SIGHUP, SIGCHLD});
  RepeatFilter repeats(std::chrono::seconds(30));

  client::Options reg_options = registrar_options(options, repeats);
  // Set when the reported assignment goes Lost or Removed while a child
  // runs. The loop looks at the assignment only between steps, and one step
  // can take it from Lost or Removed back to the same work (a heartbeat
  // answer and a notification handled together, after a pause of the whole
  // agent): the child still worked without a lease and must go at once.
  bool lease_lapsed = false;
  reg_options.on_assignment = [&lease_lapsed](const client::Assignment &a) {
    if (a.state == client::State::Lost || a.state == client::State::Removed)
      lease_lapsed = true;
  };
  client::Registrar reg(std::move(reg_options));
  log(Level::Info, "member " + reg.member() + " of cluster " + reg.cluster() +
                       ", command: " + options.command.front());

  ChildProcess child(options.command, options.kill_timeout);
  client::Assignment child_assignment;  // what the running child was given
  bool shutting_down = false;
  bool kill_now = false;  // signalled again while shutting down
  bool registrar_stopped = false;
  int exit_code = kExitStopped;
  auto shut_down = [&](int code) {
    if (shutting_down) return;
    shutting_down = true;
    exit_code = code;
  };

  // Makes the child match the assignment (see supervise.hpp).
  auto supervise = [&] {
    const client::Assignment &a = reg.assignment();
    ChildSituation situation;
    situation.assignment = a;
    situation.registrar_finished = reg.finished();
    situation.lease = reg.lease();
    situation.lease_lapsed = lease_lapsed;
    situation.child_running = child.running();
    situation.child_stopping = child.stopping();
    situation.child_assignment = child_assignment;
    situation.shutting_down = shutting_down;
    situation.kill_now = kill_now;
    Clock::time_point now = Clock::now();
    ChildDecision decision = decide_child(situation, now);
    lease_lapsed = decision.lease_lapsed;
    switch (decision.action) {
      case ChildAction::Nothing:
        break;
      case ChildAction::Start: {
        std::string error = child.start(
            child_environment(environ, a, reg.cluster(), reg.member()));
        if (!error.empty()) {
          log(Level::Error, error + "; check the command and PATH");
          shut_down(kExitCannotStart);
          break;
        }
        child_assignment = a;
        log(Level::Info,
            "started pid " + std::to_string(child.pid()) + ": " + describe(a));
        break;
      }
      case ChildAction::Stop:
        log(Level::Info,
            "stopping pid " + std::to_string(child.pid()) + " (" +
                describe(child_assignment) + "): now " +
                (shutting_down
                     ? "shutting down"
                     : describe(a) + (lease_lapsed ? ", after a lapse of the "
                                                     "lease"
                                                   : "")));
        child.stop(now, decision.deadline);
        break;
      case ChildAction::Kill:
        child.kill_by(*decision.deadline);
        break;
    }
  };

  for (;;) {
    if (reg.finished() && !shutting_down)
      shut_down(reg.failed() ? kExitRejected : kExitInternal);
    supervise();

    // Shutting down: leave once the child is gone (the shard is handed on
    // only when nobody here works on it any more).
    if (shutting_down && !child.running() && !registrar_stopped) {
      reg.stop();
      registrar_stopped = true;
    }
    if (reg.finished() && !child.running()) break;

    // Wait for the socket, a signal or the next deadline.
    client::Registrar::Wait wait = reg.next_wait();
    pollfd fds[2];
    nfds_t count = 0;
    fds[count++] = pollfd{signals.fd(), POLLIN, 0};
    if (wait.fd >= 0) fds[count++] = pollfd{wait.fd, wait.events, 0};
    int rc = poll(fds, count,
                  client::poll_timeout_ms(
                      client::earliest(wait.deadline, child.next_deadline()),
                      Clock::now()));
    if (rc < 0 && errno != EINTR) {
      log(Level::Error, std::string("poll failed: ") + std::strerror(errno));
      shut_down(kExitInternal);
    }

    for (int signo : signals.drain()) {
      if (signo == SIGCHLD) continue;
      const char *name = sigabbrev_np(signo);
      if (!shutting_down) {
        log(Level::Info, std::string("received SIG") + (name ? name : "?") +
                             ": stopping the command, then leaving");
        shut_down(kExitStopped);
      } else if (child.running()) {
        log(Level::Warning, std::string("received SIG") + (name ? name : "?") +
                                " again: killing pid " +
                                std::to_string(child.pid()));
        kill_now = true;
        supervise();
      }
    }

    pid_t pid = child.pid();
    if (auto exit = child.reap()) {
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
    child.on_timer(Clock::now());
    reg.step(rc > 0 && wait.fd >= 0 ? fds[1].revents : 0);
  }
  return exit_code;
}

}  // namespace shard_coordinator::agent
