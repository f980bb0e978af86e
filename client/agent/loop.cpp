#include "loop.hpp"

#include <poll.h>

#include <cerrno>

#include "deadline.hpp"

namespace shard_coordinator::agent {

void run_event_loop(client::Registrar &registrar, SignalPipe &signals,
                    LoopHandler &handler) {
  while (handler.before_wait()) {
    client::Registrar::Wait wait = registrar.next_wait();
    pollfd fds[2];
    nfds_t count = 0;
    fds[count++] = pollfd{signals.fd(), POLLIN, 0};
    if (wait.fd >= 0) fds[count++] = pollfd{wait.fd, wait.events, 0};
    int rc = poll(fds, count,
                  client::poll_timeout_ms(
                      client::earliest(wait.deadline, handler.deadline()),
                      client::Clock::now()));
    if (rc < 0 && errno != EINTR && !handler.on_poll_error(errno)) return;
    for (int signo : signals.drain()) handler.on_signal(signo);
    handler.after_wake();
    registrar.step(rc > 0 && wait.fd >= 0 ? fds[1].revents : 0);
  }
}

}  // namespace shard_coordinator::agent
