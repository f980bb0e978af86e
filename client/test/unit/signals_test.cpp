// SignalPipe and reset_signals_after_fork (client/agent/signals.hpp), and the
// signal state ChildProcess gives its child. A SignalPipe changes the signal
// dispositions of its whole process, so each test that makes one runs in a
// forked process of its own and reports back through a pipe.

#include "signals.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include "child.hpp"

namespace agent = shard_coordinator::agent;

namespace {

// Runs `body` in a forked process; returns what it returned (empty: all is
// well), or why the process did not report.
std::string InChild(const std::function<std::string()> &body) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(fds[0]);
    std::string result = body();
    if (result.empty()) result = "ok";
    ssize_t ignored = write(fds[1], result.data(), result.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string result;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    result.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "the test process ended with wait status " + std::to_string(status);
  return result == "ok" ? "" : result.empty() ? "no report" : result;
}

std::string Disposition(int signo) {
  struct sigaction current {};
  if (sigaction(signo, nullptr, &current) != 0) return "(invalid)";
  if (current.sa_handler == SIG_DFL) return "default";
  if (current.sa_handler == SIG_IGN) return "ignored";
  return "caught";
}

std::string Name(int signo) {
  const char *name = sigabbrev_np(signo);
  return name ? std::string("SIG") + name : "signal " + std::to_string(signo);
}

extern "C" void IgnoreSigaction(int, siginfo_t *, void *) {}

std::set<int> OpenFds() {
  std::set<int> listed;
  if (DIR *dir = opendir("/proc/self/fd")) {
    while (dirent *entry = readdir(dir))
      if (entry->d_name[0] != '.') listed.insert(std::atoi(entry->d_name));
    closedir(dir);
  }
  std::set<int> fds;  // without the directory's own, closed by now
  for (int fd : listed)
    if (fcntl(fd, F_GETFD) >= 0) fds.insert(fd);
  return fds;
}

TEST(ResetSignalsAfterFork, EveryCaughtSignalGoesBackToItsDefault) {
  std::string report = InChild([] {
    agent::SignalPipe pipe({SIGTERM, SIGINT, SIGHUP, SIGCHLD});
    // A handler of the application's own, with SA_SIGINFO.
    struct sigaction action {};
    action.sa_sigaction = IgnoreSigaction;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, nullptr);
    // Ignored on purpose (nohup, say): exec keeps that, and so do we.
    signal(SIGQUIT, SIG_IGN);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR2);
    sigaddset(&blocked, SIGTERM);
    sigprocmask(SIG_BLOCK, &blocked, nullptr);

    agent::reset_signals_after_fork();

    std::string failures;
    const std::set<int> to_default = {SIGTERM, SIGINT,  SIGHUP,
                                      SIGCHLD, SIGUSR1, SIGPIPE};
    for (int signo = 1; signo < NSIG; ++signo) {
      std::string now = Disposition(signo);
      bool wrong = signo == SIGQUIT               ? now != "ignored"
                   : to_default.count(signo) != 0 ? now != "default"
                                                  : now == "caught";
      if (wrong) failures += Name(signo) + " " + now + "; ";
    }
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    for (int signo = 1; signo < NSIG; ++signo)
      if (sigismember(&mask, signo) == 1)
        failures += Name(signo) + " blocked; ";
    return failures;
  });
  EXPECT_EQ(report, "");
}

TEST(SignalPipe, ItsFdsAreCloseOnExec) {
  std::string report = InChild([] {
    std::set<int> before = OpenFds();
    agent::SignalPipe pipe({SIGTERM});
    std::string failures;
    int made = 0;
    for (int fd : OpenFds()) {
      if (before.count(fd) != 0) continue;
      ++made;
      if ((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0)
        failures += "fd " + std::to_string(fd) + " is inherited by exec; ";
    }
    if (made != 2) failures += std::to_string(made) + " new fds, not 2; ";
    return failures;
  });
  EXPECT_EQ(report, "");
}

// "SigBlk:\t0000000000000000" and such, of a process's /proc status.
std::string StatusField(pid_t pid, const std::string &field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  return "";
}

// What the exec'd command starts with, whatever the agent's own mask and
// dispositions; the agent's mask is as it was.
TEST(SignalPipe, TheCommandStartsWithNothingBlockedAndSigpipeDefault) {
  std::string report = InChild([] {
    agent::SignalPipe pipe({SIGTERM, SIGINT, SIGHUP, SIGCHLD});
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR2);
    sigprocmask(SIG_BLOCK, &blocked, nullptr);
    sigset_t before;
    sigprocmask(SIG_SETMASK, nullptr, &before);

    agent::ChildProcess child({"/bin/sleep", "10"}, std::chrono::seconds(1));
    std::string error = child.start({"PATH=/usr/bin:/bin"});
    if (!error.empty()) return error;
    std::string failures;
    sigset_t after;
    sigprocmask(SIG_SETMASK, nullptr, &after);
    for (int signo = 1; signo < NSIG; ++signo)
      if (sigismember(&before, signo) != sigismember(&after, signo))
        failures += "the agent's mask changed at " + Name(signo) + "; ";
    // Once sleep runs, its /proc status shows it (the name changes at exec).
    for (int i = 0; i < 1000 && StatusField(child.pid(), "Name") != "\tsleep";
         ++i)
      usleep(10000);
    std::string blk = StatusField(child.pid(), "SigBlk");
    std::string ign = StatusField(child.pid(), "SigIgn");
    if (blk.find_first_not_of("\t0") != std::string::npos)
      failures += "blocked in the command: " + blk + "; ";
    unsigned long long ignored = std::strtoull(ign.c_str(), nullptr, 16);
    if (ign.empty() || (ignored >> (SIGPIPE - 1) & 1) != 0)
      failures += "SIGPIPE ignored in the command: " + ign + "; ";
    return failures;  // ~ChildProcess kills and reaps sleep
  });
  EXPECT_EQ(report, "");
}

}  // namespace
