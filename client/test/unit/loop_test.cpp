// The agent's event loop (agent/loop.hpp) with a real registrar that cannot
// reach any server (a Unix socket in a directory that does not exist, so each
// attempt fails at once). A SignalPipe changes the dispositions of the whole
// process, so each test runs in a forked process of its own, which ends with
// _exit(): the registrar's connection attempts run on detached threads.

#include "loop.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace shard_coordinator::agent {
namespace {

using namespace std::chrono_literals;
using client::Clock;

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

client::Options Unreachable() {
  client::Options options;
  options.conninfo = "host=/nonexistent/sc-loop-test connect_timeout=1";
  options.cluster = "loop";
  options.member = "m";
  options.min_backoff = 10s;  // no retry during a test
  return options;
}

// Records what the loop calls, in order, and ends it after `rounds`.
class Recorder : public LoopHandler {
 public:
  explicit Recorder(int rounds) : rounds_(rounds) {}
  std::vector<std::string> calls;
  std::optional<Clock::time_point> own_deadline;
  std::function<void()> on_first_round;

  bool before_wait() override {
    calls.push_back("before_wait");
    if (calls.size() == 1 && on_first_round) on_first_round();
    return rounds_-- > 0;
  }
  std::optional<Clock::time_point> deadline() const override {
    return own_deadline;
  }
  bool on_poll_error(int) override {
    calls.push_back("poll_error");
    return false;
  }
  void on_signal(int signo) override {
    calls.push_back("signal " + std::to_string(signo));
  }
  void after_wake() override { calls.push_back("after_wake"); }

 private:
  int rounds_;
};

std::string Join(const std::vector<std::string> &calls) {
  std::string text;
  for (const auto &call : calls) text += (text.empty() ? "" : ", ") + call;
  return text;
}

std::string SignalsInOrder() {
  SignalPipe signals({SIGUSR1, SIGUSR2});
  client::Registrar registrar(Unreachable());
  Recorder recorder(1);
  recorder.on_first_round = [] {
    raise(SIGUSR2);
    raise(SIGUSR1);
  };
  run_event_loop(registrar, signals, recorder);
  std::string expected = "before_wait, signal " + std::to_string(SIGUSR2) +
                         ", signal " + std::to_string(SIGUSR1) +
                         ", after_wake, before_wait";
  std::string got = Join(recorder.calls);
  return got == expected ? "" : "calls: " + got;
}

TEST(EventLoop, SignalsInOrderBeforeTheHandlersWork) {
  EXPECT_EQ(InChild(SignalsInOrder), "");
}

std::string WakesAtTheDeadline() {
  SignalPipe signals({SIGUSR1});
  client::Registrar registrar(Unreachable());
  // Let the registrar fail its first attempt and back off (10 s), so that
  // only the handler's deadline can wake the loop.
  auto backing_off = [&registrar] {
    auto wait = registrar.next_wait();
    return wait.deadline && *wait.deadline > Clock::now() + 5s;
  };
  for (int i = 0; i < 400 && !backing_off(); ++i) {
    registrar.step(0);
    usleep(5000);
  }
  if (!backing_off()) return "the registrar did not back off";
  Recorder recorder(1);
  Clock::time_point start = Clock::now();
  recorder.own_deadline = start + 50ms;
  run_event_loop(registrar, signals, recorder);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - start);
  if (took < 50ms || took > 5s)
    return "woke after " + std::to_string(took.count()) + " ms";
  std::string got = Join(recorder.calls);
  return got == "before_wait, after_wake, before_wait" ? "" : "calls: " + got;
}

TEST(EventLoop, WakesAtTheHandlersDeadline) {
  EXPECT_EQ(InChild(WakesAtTheDeadline), "");
}

}  // namespace
}  // namespace shard_coordinator::agent
