// Signals as readable bytes on a pipe (the self-pipe trick), so the agent's
// poll() loop handles them with everything else and no work happens in a
// signal handler.
#pragma once

#include <initializer_list>
#include <vector>

namespace shard_coordinator::agent {

class SignalPipe {
 public:
  // Catches `signals` (SA_RESTART) and ignores SIGPIPE. One per process.
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

// For a child just forked, before exec: SIGPIPE (ignored by SignalPipe) back
// to its default action, and no signal blocked. Async-signal-safe.
void reset_signals_after_fork();

}  // namespace shard_coordinator::agent
