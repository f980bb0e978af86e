// The worker command that `run` supervises.
//
// The child runs in its own process group, so stopping it reaches whatever it
// started (a shell's children too), and a Ctrl-C on the agent's terminal
// reaches only the agent, which then stops the child in order. It is started
// with PR_SET_PDEATHSIG = SIGKILL: if the agent dies, even by SIGKILL, the
// kernel kills the child (its own children are then stopped by nobody, so
// a wrapper script should `exec` the real worker). When the agent's stdin is
// a terminal, the child's is /dev/null (see start()).
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
  ~ChildProcess();  // kills a child still running (SIGKILL) and reaps it
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // Starts the command with exactly `env`. Returns an empty string, or why
  // it could not be started (fork failed, command not found, ...).
  std::string start(const std::vector<std::string> &env);

  bool running() const { return pid_ > 0; }
  bool stopping() const { return stopping_; }
  pid_t pid() const { return pid_; }

  // SIGTERM (and SIGCONT, for a stopped child) to the process group now;
  // SIGKILL kill_timeout later, or at `kill_by` if that is earlier. A
  // `kill_by` already past means SIGKILL at once and nothing else.
  void stop(Clock::time_point now,
            std::optional<Clock::time_point> kill_by = std::nullopt);
  // Brings the SIGKILL forward to `at` (at once if `at` has passed).
  void kill_by(Clock::time_point at);
  // Sends the SIGKILL when it is due.
  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

  struct Exit {
    int wait_status;  // as from waitpid()
    bool stopped;     // the agent asked it to stop
  };
  // Reaps the child if it ended (non-blocking), and SIGKILLs whatever is left
  // of its process group.
  std::optional<Exit> reap();

 private:
  void signal_group(int signo);

  std::vector<std::string> argv_;
  std::chrono::milliseconds kill_timeout_;
  pid_t pid_ = -1;
  bool stopping_ = false;
  bool killed_ = false;
  std::optional<Clock::time_point> kill_at_;
};

// "exited with status 3", "was killed by SIGKILL".
std::string describe_wait_status(int wait_status);

}  // namespace shard_coordinator::agent
