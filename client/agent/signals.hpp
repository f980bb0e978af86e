// Signals as readable bytes on a pipe (the self-pipe trick), so the agent's
// poll() loop handles them with everything else and no work happens in a
// signal handler.
#pragma once

#include <initializer_list>
#include <vector>

namespace shard_coordinator::agent {

class SignalPipe {
 public:
  // Catches `signals` (SA_RESTART) and ignores SIGPIPE. One per process. The
  // pipe is non-blocking and close-on-exec: no command inherits it.
  explicit SignalPipe(std::initializer_list<int> signals);
  ~SignalPipe();
  SignalPipe(const SignalPipe &) = delete;
  SignalPipe &operator=(const SignalPipe &) = delete;

  int fd() const;
  // The signals received since the last call, in order.
  std::vector<int> drain();

 private:
  std::vector<int> signals_;
};

// For a child just forked, first thing, before exec: every caught signal
// (SignalPipe's, or any other handler in the process) back to its default
// action, so a signal that arrives before exec cannot run the agent's
// handler in the child and write into the agent's signal pipe; SIGPIPE too
// (ignored by SignalPipe); and no signal blocked. Other ignored signals stay
// ignored, as exec would keep them (nohup). Async-signal-safe: sigaction and
// sigprocmask only. The fork() should happen with every signal blocked (see
// ChildProcess::start), so that none is handled before this reset.
void reset_signals_after_fork() noexcept;

}  // namespace shard_coordinator::agent
