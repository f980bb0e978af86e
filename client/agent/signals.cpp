#include "signals.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace shard_coordinator::agent {

namespace {
int g_read_fd = -1;
int g_write_fd = -1;

extern "C" void on_signal(int signo) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(signo);
  ssize_t ignored = write(g_write_fd, &byte, 1);
  (void)ignored;  // a full pipe means the loop has plenty to wake it
  errno = saved;
}
}  // namespace

SignalPipe::SignalPipe(std::initializer_list<int> signals) : signals_(signals) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  g_read_fd = fds[0];
  g_write_fd = fds[1];
  struct sigaction action {};
  action.sa_handler = on_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  for (int signo : signals_) sigaction(signo, &action, nullptr);
  // Writing to a closed pipe (watch | head) must be an error, not death.
  signal(SIGPIPE, SIG_IGN);
}

SignalPipe::~SignalPipe() {
  for (int signo : signals_) signal(signo, SIG_DFL);
  close(g_read_fd);
  close(g_write_fd);
  g_read_fd = g_write_fd = -1;
}

int SignalPipe::fd() const { return g_read_fd; }

void reset_signals_after_fork() noexcept {
  struct sigaction to_default {};
  to_default.sa_handler = SIG_DFL;
  sigemptyset(&to_default.sa_mask);
  for (int signo = 1; signo < NSIG; ++signo) {
    if (signo == SIGKILL || signo == SIGSTOP) continue;
    struct sigaction current {};
    // Fails for the signals the C library keeps for itself: nothing to do.
    if (sigaction(signo, nullptr, &current) != 0) continue;
    // sa_handler and sa_sigaction share their storage: SIG_DFL or SIG_IGN
    // read the same either way, and anything else is a handler.
    bool caught =
        current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
    if (caught || signo == SIGPIPE) sigaction(signo, &to_default, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

std::vector<int> SignalPipe::drain() {
  std::vector<int> received;
  unsigned char buf[64];
  ssize_t n;
  while ((n = read(g_read_fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; ++i) received.push_back(buf[i]);
  return received;
}

}  // namespace shard_coordinator::agent
