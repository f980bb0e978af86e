// sc_bench_handover_child: the command the agents of bench/handover.py run.
// It starts at once, appends one line to LOG with the moment it started and
// the grant the agent gave it, waits for SIGTERM (or SIGINT, SIGHUP), and
// then appends the moment it stopped and exits 0 at once:
//
//   start TIME PID SHARD_MEMBER SHARD_INDEX SHARD_COUNT SHARD_EPOCH SLOTS
//   stop TIME PID
//
// TIME: CLOCK_MONOTONIC in seconds; SLOTS: SHARD_SLOTS, or - without it.
//
//   sc_bench_handover_child LOG
//
// CLOCK_MONOTONIC is the clock of Python's time.monotonic() on Linux, so
// the harness compares these times with its own events directly. Each line
// is one write() to a file opened with O_APPEND: lines of several children
// never interleave. A SIGKILL (the agent's death, PR_SET_PDEATHSIG) leaves
// no stop line.

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::string now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%09ld",
                static_cast<long long>(ts.tv_sec), ts.tv_nsec);
  return buf;
}

const char *env_or(const char *name, const char *fallback) {
  const char *value = std::getenv(name);
  return value && *value ? value : fallback;
}

void append(int fd, const std::string &line) {
  // One write: O_APPEND keeps it whole among the other children's lines.
  ssize_t n = write(fd, line.data(), line.size());
  (void)n;
}

}  // namespace

int main(int argc, char **argv) {
  // Block the stop signals first: one that arrives before sigwait() then
  // waits for it instead of killing the process without a stop line.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  std::string started = now_seconds();

  if (argc != 2) {
    std::fprintf(stderr, "usage: %s LOG\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  std::string pid = std::to_string(getpid());
  append(fd, "start " + started + " " + pid + " " +
                 env_or("SHARD_MEMBER", "-") + " " +
                 env_or("SHARD_INDEX", "-") + " " + env_or("SHARD_COUNT", "-") +
                 " " + env_or("SHARD_EPOCH", "-") + " " +
                 env_or("SHARD_SLOTS", "-") + "\n");
  int signo = 0;
  sigwait(&stop_signals, &signo);
  append(fd, "stop " + now_seconds() + " " + pid + "\n");
  return 0;
}
