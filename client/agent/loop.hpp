// The agent's one event loop, for `run` and `watch`: poll() on the signal
// pipe and the registrar's socket until the earliest deadline (the
// registrar's or the subcommand's own), then hand the signals to the
// subcommand, let it do its own work, and step the registrar. What differs
// between the subcommands is their LoopHandler.
#pragma once

#include <optional>

#include "shard_coordinator/client.hpp"
#include "signals.hpp"

namespace shard_coordinator::agent {

class LoopHandler {
 public:
  virtual ~LoopHandler() = default;
  // Before each wait: act on what the registrar reports. False ends the
  // loop.
  virtual bool before_wait() = 0;
  // The handler's own next deadline (a child's SIGKILL), if any.
  virtual std::optional<client::Clock::time_point> deadline() const {
    return std::nullopt;
  }
  // poll() failed with `error` (an errno value, not EINTR). False ends the
  // loop at once, without the rest of this round.
  virtual bool on_poll_error(int error) = 0;
  // Each signal received, in order.
  virtual void on_signal(int signo) = 0;
  // After the signals, before the registrar's step.
  virtual void after_wake() {}
};

// Each round: handler.before_wait(), wait, on_poll_error() if poll() failed,
// on_signal() for each signal, after_wake(), registrar.step(). Returns when
// before_wait() or on_poll_error() returns false.
void run_event_loop(client::Registrar &registrar, SignalPipe &signals,
                    LoopHandler &handler);

}  // namespace shard_coordinator::agent
