// `shard-coordinator watch`: joins the cluster and prints one JSON line per
// assignment change on stdout, for scripts. Stops (and leaves) on
// SIGTERM/SIGINT/SIGHUP or when stdout is closed.

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent.hpp"
#include "deadline.hpp"
#include "format.hpp"
#include "log.hpp"
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

}  // namespace

int watch_command(const MemberOptions &options) {
  SignalPipe signals({SIGTERM, SIGINT, SIGHUP});
  RepeatFilter repeats(std::chrono::seconds(30));
  bool output_closed = false;

  client::Options reg_options = registrar_options(options, repeats);
  std::string cluster = options.cluster;
  std::string member;  // known once the registrar exists
  reg_options.on_assignment = [&](const client::Assignment &a) {
    if (output_closed) return;
    if (!write_line(assignment_json(cluster, member, a) + "\n"))
      output_closed = true;
  };
  client::Registrar reg(std::move(reg_options));
  member = reg.member();
  log(Level::Info, "member " + member + " of cluster " + cluster);

  bool stopping = false;
  while (!reg.finished()) {
    client::Registrar::Wait wait = reg.next_wait();
    pollfd fds[2];
    nfds_t count = 0;
    fds[count++] = pollfd{signals.fd(), POLLIN, 0};
    if (wait.fd >= 0) fds[count++] = pollfd{wait.fd, wait.events, 0};
    int rc = poll(fds, count,
                  client::poll_timeout_ms(wait.deadline, client::Clock::now()));
    if (rc < 0 && errno != EINTR) {
      log(Level::Error, std::string("poll failed: ") + std::strerror(errno));
      return kExitInternal;
    }
    for (int signo : signals.drain()) {
      const char *name = sigabbrev_np(signo);
      log(Level::Info,
          std::string("received SIG") + (name ? name : "?") + ": leaving");
      stopping = true;
    }
    if (output_closed && !stopping) {
      log(Level::Info, "stdout closed: leaving");
      stopping = true;
    }
    if (stopping) reg.stop();
    reg.step(rc > 0 && wait.fd >= 0 ? fds[1].revents : 0);
  }
  if (reg.failed()) return kExitRejected;
  return kExitStopped;
}

}  // namespace shard_coordinator::agent
