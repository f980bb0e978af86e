// `shard-coordinator run`: the agent's event loop (loop.hpp) with a handler
// that, after every wake-up, makes the child match the grant (the decision
// is decide_child(), supervise.hpp). The registrar acknowledges revocations
// only when told (Acknowledge::Explicit): when the child's whole process
// tree is gone.
//
// Order of events that matter:
// - a revocation (the server moved work, the lease ran out, the member was
//   removed): SIGTERM (and SIGCONT) to the child's group and descendants,
//   SIGKILL after --kill-timeout and no later than halfway between the
//   revocation's fence point and its deadline (the lease end held when it
//   was learned), so the child is gone before the server may give the work
//   to another member. Once nothing of its tree is left: acknowledge (the
//   registrar heartbeats at once, and the server hands the work on), then
//   start a child for the new grant, if any.
// - the grant changed without a revocation (more keys, a smaller count):
//   the same stop with --kill-timeout only, then the new child. A new epoch
//   or count alone (slot mode) restarts nothing.
// - a child past its deadline gets SIGKILL and nothing else (it must not
//   run again, not even its SIGTERM handler).
// - SIGTERM/SIGINT/SIGHUP: the registrar's stop() revokes everything; the
//   child is stopped as for a revocation while heartbeats go on, then the
//   registrar leaves (the work is handed on at once), then exit 0. A second
//   signal SIGKILLs the child at once.
// - the child exits by itself: leave and exit (5 or 6); a supervisor such as
//   systemd or Kubernetes restarts the agent.
//
// With --metrics-addr the loop hands its state to the metrics endpoint
// (metrics.hpp) after every wake-up, with what it counted: revocations by
// reason, lease losses, children started, acknowledgements.
//
// With -v each child's start (its whole grant) and the moment nothing of its
// process tree is left are logged with CLOCK_MONOTONIC stamps, which tools
// can line up with other processes' (test/chaos does): the start is read
// before the fork, the end before the acknowledgement, leave or next child
// that follows from it.

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "agent.hpp"
#include "child.hpp"
#include "format.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "member.hpp"
#include "metrics.hpp"
#include "proctree.hpp"
#include "signals.hpp"
#include "supervise.hpp"
#include "text.hpp"

extern char **environ;

namespace shard_coordinator::agent {

namespace {

using client::Clock;
using client::describe;

// CLOCK_MONOTONIC as seconds with microseconds, for logs that tools line up
// with other processes' monotonic timestamps (test/chaos reads them).
std::string monotonic_stamp() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%06ld",
                static_cast<long long>(now.tv_sec), now.tv_nsec / 1000);
  return text;
}

// The whole grant, every slot key included (describe() shortens long key
// lists): what a tool reading the log needs to know the child's work.
std::string describe_in_full(const client::Grant &grant) {
  std::string text;
  if (grant.slots) {
    text = "slots [";
    for (size_t i = 0; i < grant.slots->size(); ++i)
      text += (i ? "," : "") + std::to_string((*grant.slots)[i]);
    text += "]";
  } else {
    text = "shard " + std::to_string(grant.shard.value_or(-1)) + " of " +
           std::to_string(grant.num_shards);
  }
  return text + ", epoch " + std::to_string(grant.epoch);
}

class Runner final : public LoopHandler {
 public:
  // `metrics`, if any, must outlive the runner.
  Runner(const RunOptions &options, MetricsEndpoint *metrics)
      : kill_timeout_(options.kill_timeout),
        metrics_(metrics),
        registrar_(options_for(options)),
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
    warn_about_kill_timeout();
    supervise();
    publish_metrics();
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
                              " again: killing the command");
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
      if (child_.running())
        log(Level::Info, "killing what is left of pid " + std::to_string(pid) +
                             "'s process tree");
    }
    child_.on_timer(Clock::now());
  }

 private:
  client::Options options_for(const RunOptions &options) {
    client::Options reg_options = registrar_options(options, repeats_);
    // Revoked work has stopped only once the child's tree is gone.
    reg_options.acknowledge = client::Acknowledge::Explicit;
    // Counted for the metrics; supervise() acts on releases().
    reg_options.on_revoked = [this](const client::Revocation &r) {
      ++counts_.revocations.at(static_cast<size_t>(r.reason));
    };
    reg_options.on_assignment = [this](const client::Assignment &a) {
      if (a.state == client::State::Lost) ++counts_.lease_losses;
    };
    return reg_options;
  }

  void publish_metrics() {
    if (metrics_ == nullptr) return;
    AgentSnapshot snapshot;
    snapshot.cluster = registrar_.cluster();
    snapshot.member = registrar_.member();
    snapshot.assignment = registrar_.assignment();
    snapshot.grant = registrar_.grant();
    if (std::optional<client::LeaseTimes> lease = registrar_.lease())
      snapshot.lease_end = lease->end;
    snapshot.acknowledged_epoch = registrar_.acknowledged_epoch();
    snapshot.releases_pending = registrar_.releases().size();
    snapshot.child_running = child_.running();
    snapshot.registrar = registrar_.statistics();
    snapshot.counts = counts_;
    metrics_->update(std::move(snapshot));
  }

  void shut_down(int code) {
    if (shutting_down_) return;
    shutting_down_ = true;
    exit_code_ = code;
    // Revokes everything; the registrar leaves once it is acknowledged.
    if (!registrar_.finished()) registrar_.stop();
  }

  // Once the cluster's lease is known: a --kill-timeout longer than a
  // revocation can wait is cut short, say so.
  void warn_about_kill_timeout() {
    if (warned_kill_timeout_) return;
    std::optional<client::LeaseTimes> lease = registrar_.lease();
    if (!lease) return;
    warned_kill_timeout_ = true;
    Clock::duration window = revocation_window(*lease);
    if (kill_timeout_ <= window) return;
    log(Level::Warning,
        "--kill-timeout " + client::format_duration(kill_timeout_) +
            " is longer than this cluster's lease allows: a revoked command "
            "may get as little as " +
            client::format_duration(window) +
            " between SIGTERM and SIGKILL (heartbeat interval " +
            client::format_duration(lease->heartbeat_interval) + ", lease " +
            client::format_duration(lease->end - lease->renewed_at) +
            "); give the cluster a longer grace period, or lower "
            "--kill-timeout");
  }

  // Why the child stops, for the log.
  std::string stop_reason(const std::vector<client::Revocation> &releases,
                          Clock::time_point now) const {
    if (!releases.empty())
      return "revoked (" + describe(releases.back(), now) + ")";
    if (shutting_down_) return "shutting down";
    const client::Grant &grant = registrar_.grant();
    if (grant.empty()) return "nothing granted";
    return "granted " + describe(grant);
  }

  // Makes the child match the grant (see supervise.hpp).
  void supervise() {
    // Logged before anything that follows from it (an acknowledgement, a
    // leave, the next child), so its time is no earlier than the tree's end.
    if (child_pid_ > 0 && !child_.running()) {
      log(Level::Info, "pid " + std::to_string(child_pid_) +
                           " and its process tree are gone (CLOCK_MONOTONIC " +
                           monotonic_stamp() + ")");
      child_pid_ = -1;
    }
    ChildSituation situation;
    situation.grant = registrar_.grant();
    situation.releases = registrar_.releases();
    situation.registrar_finished = registrar_.finished();
    situation.lease = registrar_.lease();
    situation.child_running = child_.running();
    situation.child_stopping = child_.stopping();
    situation.child_grant = child_grant_;
    situation.shutting_down = shutting_down_;
    situation.kill_now = kill_now_;
    Clock::time_point now = Clock::now();
    ChildDecision decision = decide_child(situation, now);
    if (decision.acknowledge) {
      log(Level::Info, "acknowledging epoch " +
                           std::to_string(*decision.acknowledge) +
                           ": no process of the command is left");
      registrar_.acknowledge(*decision.acknowledge);
      ++counts_.acknowledgements;
    }
    switch (decision.action) {
      case ChildAction::Nothing:
        break;
      case ChildAction::Start: {
        const client::Grant &grant = registrar_.grant();
        // Read before the fork, so that the child cannot have begun before
        // the time logged.
        std::string started_at = monotonic_stamp();
        std::string error = child_.start(child_environment(
            environ, grant, registrar_.cluster(), registrar_.member()));
        if (!error.empty()) {
          log(Level::Error, error + "; check the command and PATH");
          shut_down(kExitCannotStart);
          break;
        }
        child_grant_ = grant;
        child_pid_ = child_.pid();
        ++counts_.child_starts;
        log(Level::Info, "started pid " + std::to_string(child_.pid()) +
                             " (CLOCK_MONOTONIC " + started_at +
                             "): " + describe_in_full(grant));
        break;
      }
      case ChildAction::Stop: {
        Clock::time_point kill_at = now + kill_timeout_;
        if (decision.deadline) kill_at = std::min(kill_at, *decision.deadline);
        log(Level::Info, "stopping pid " + std::to_string(child_.pid()) + " (" +
                             describe(child_grant_) + "): now " +
                             stop_reason(situation.releases, now) +
                             ", SIGKILL within " +
                             client::format_duration(std::max(
                                 Clock::duration::zero(), kill_at - now)));
        child_.stop(now, decision.deadline);
        break;
      }
      case ChildAction::Kill:
        child_.kill_by(*decision.deadline);
        break;
    }
  }

  RepeatFilter repeats_{std::chrono::seconds(30)};
  std::chrono::milliseconds kill_timeout_;
  MetricsEndpoint *metrics_;  // null without --metrics-addr
  AgentCounts counts_;
  client::Registrar registrar_;  // after what its callbacks use
  ChildProcess child_;
  client::Grant child_grant_;  // what the running child was given
  pid_t child_pid_ = -1;       // the last child started, until its tree ends
  bool shutting_down_ = false;
  bool kill_now_ = false;  // signalled again while shutting down
  bool warned_kill_timeout_ = false;
  int exit_code_ = kExitStopped;
};

}  // namespace

int run_command(const RunOptions &options) {
  // Listening first: an address that cannot be used stops the agent before
  // it joins the cluster. Static, so never destroyed: it serves until the
  // agent's _exit() (exit_process), and stopping civetweb would hold up the
  // exit for up to 2 s (its listening thread's poll timeout).
  static std::unique_ptr<MetricsEndpoint> metrics;
  if (!options.metrics_address.empty()) {
    std::string error;
    metrics = MetricsEndpoint::listen(options.metrics_address, &error);
    if (!metrics) {
      log(Level::Error, error);
      return kExitInternal;
    }
    log(Level::Info,
        "serving metrics on http://" + metrics->where() + "/metrics");
  }
  // Orphans of the child's tree come to the agent, which finds and kills
  // them (child.hpp).
  std::string why = become_subreaper();
  if (!why.empty())
    log(Level::Warning,
        why +
            "; descendants of the command that leave its process group "
            "are not stopped");
  SignalPipe signals({SIGTERM, SIGINT, SIGHUP, SIGCHLD});
  Runner runner(options, metrics.get());
  run_event_loop(runner.registrar(), signals, runner);
  return runner.exit_code();
}

}  // namespace shard_coordinator::agent
