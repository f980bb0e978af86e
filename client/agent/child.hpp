// The worker command that `run` supervises, and its whole process tree.
//
// The child runs in its own process group, so stopping it reaches whatever it
// started (a shell's children too), and a Ctrl-C on the agent's terminal
// reaches only the agent, which then stops the child in order. Processes
// that left the group (setsid, setpgid) are found as the agent's descendants
// (proctree.hpp: the agent is a child subreaper, so orphans are reparented
// to it): stopping signals them too, as systemd signals a unit's cgroup.
// The child is gone (running() false) only once none of its tree is left:
// when the child itself exits, whatever is left is waited for, and SIGKILLed
// when the child's own SIGKILL was due (at once if it was not asked to
// stop).
//
// It is started with PR_SET_PDEATHSIG = SIGKILL: if the agent dies, even by
// SIGKILL, the kernel kills the child (its own children are then stopped by
// nobody, so a wrapper script should `exec` the real worker). When the
// agent's stdin is a terminal, the child's is /dev/null (see start()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::agent {

class ChildProcess {
 public:
  using Clock = client::Clock;

  ChildProcess(std::vector<std::string> argv,
               std::chrono::milliseconds kill_timeout);
  // Kills a child (and its tree) still running (SIGKILL) and reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // Starts the command with exactly `env`. Returns an empty string, or why
  // it could not be started (fork failed, command not found, ...).
  std::string start(const std::vector<std::string> &env);

  // The child, or something of its tree, is still alive.
  bool running() const { return pid_ > 0 || leftovers_; }
  // Being stopped: asked to, or the child is gone and its leftovers are
  // being killed.
  bool stopping() const { return stopping_ || leftovers_; }
  // The child itself; -1 once it was reaped (leftovers may remain).
  pid_t pid() const { return pid_; }

  // SIGTERM (and SIGCONT, for a stopped child) to the process group and to
  // every descendant now; SIGKILL to all of them kill_timeout later, or at
  // `kill_by` if that is earlier. A `kill_by` already past means SIGKILL at
  // once and nothing else.
  void stop(Clock::time_point now,
            std::optional<Clock::time_point> kill_by = std::nullopt);
  // Brings the SIGKILL forward to `at` (at once if `at` has passed).
  void kill_by(Clock::time_point at);
  // Sends the SIGKILL when it is due (and again, to what a fork created
  // meanwhile, until the child is gone).
  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

  struct Exit {
    int wait_status;  // as from waitpid()
    bool stopped;     // the agent asked it to stop
  };
  // Non-blocking. Reaps the child if it ended; whatever is left of its tree
  // (its group, and every descendant of the agent) is SIGKILLed when the
  // child's SIGKILL was due, at once if it was not being stopped. Reaps
  // descendants reparented to the agent once they end. Returns the child's
  // own exit, once.
  std::optional<Exit> reap();

 private:
  // The group (while the child is unreaped) and every descendant.
  void signal_tree(int signo);
  // Reaps the leftovers that ended and SIGKILLs the others once kill_at_
  // is due (or unset); leftovers_ says whether any is still alive.
  void check_leftovers(Clock::time_point now);
  // Reaps ended descendants that were reparented to the agent.
  void reap_orphans();

  std::vector<std::string> argv_;
  std::chrono::milliseconds kill_timeout_;
  pid_t pid_ = -1;
  // The child's process group, also after the child was reaped, while
  // leftovers remain.
  pid_t group_ = -1;
  bool stopping_ = false;
  bool killed_ = false;
  bool leftovers_ = false;
  std::optional<Clock::time_point> kill_at_;
};

// "exited with status 3", "was killed by SIGKILL".
std::string describe_wait_status(int wait_status);

}  // namespace shard_coordinator::agent
