// Unit tests of ChildProcess (client/agent/child.hpp) with real processes:
// how a stopped child is stopped. A child past its deadline must not run
// again at all; one stopped gracefully must get to run its SIGTERM handler
// even if it was paused (SIGSTOP).

#include "child.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace agent = shard_coordinator::agent;
using namespace std::chrono_literals;

namespace {

// A shell that writes "ready" into `file`, then on SIGTERM "term" and exits
// 0. Everything it does is visible in the file. It forks once, before
// "ready", and then waits: a shell that forks again and again (a loop of
// `sleep`) can be caught by the SIGSTOP in vfork() with its child not yet
// exec'd, which stops the child and leaves the shell waiting for it in the
// kernel, never reported stopped (dash).
std::vector<std::string> Script(const std::string &file) {
  return {"/bin/sh", "-c",
          "trap 'echo term >>\"$0\"; exit 0' TERM; sleep 1000 & "
          "echo ready >>\"$0\"; wait",
          file};
}

std::string Read(const std::string &file) {
  std::string text;
  if (FILE *f = std::fopen(file.c_str(), "r")) {
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

// Waits (bounded, polling) until pred() holds.
template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class ChildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/sc_child_testXXXXXX";
    int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    close(fd);
    file_ = name;
  }
  void TearDown() override { std::remove(file_.c_str()); }

  // Starts the script, waits until it is ready, then stops its group.
  void StartAndPause(agent::ChildProcess *child) {
    ASSERT_EQ(child->start({"PATH=/usr/bin:/bin"}), "");
    ASSERT_TRUE(WaitFor([&] { return Read(file_) == "ready\n"; }));
    ASSERT_EQ(kill(-child->pid(), SIGSTOP), 0);
    int status = 0;
    // The group is stopped once the shell reports it (waitpid WUNTRACED).
    ASSERT_EQ(waitpid(child->pid(), &status, WUNTRACED), child->pid());
    ASSERT_TRUE(WIFSTOPPED(status));
  }

  agent::ChildProcess::Exit Reap(agent::ChildProcess *child) {
    std::optional<agent::ChildProcess::Exit> exit;
    EXPECT_TRUE(WaitFor([&] { return (exit = child->reap()).has_value(); }));
    return exit.value_or(agent::ChildProcess::Exit{-1, false});
  }

  std::string file_;
};

TEST_F(ChildTest, GracefulStopReachesAPausedChild) {
  agent::ChildProcess child(Script(file_), 10s);
  StartAndPause(&child);
  child.stop(agent::ChildProcess::Clock::now());
  agent::ChildProcess::Exit exit = Reap(&child);
  EXPECT_TRUE(WIFEXITED(exit.wait_status)) << exit.wait_status;
  EXPECT_EQ(Read(file_), "ready\nterm\n");
}

TEST_F(ChildTest, PastItsDeadlineAPausedChildNeverRunsAgain) {
  agent::ChildProcess child(Script(file_), 10s);
  StartAndPause(&child);
  auto now = agent::ChildProcess::Clock::now();
  child.stop(now, now - 1ms);
  agent::ChildProcess::Exit exit = Reap(&child);
  ASSERT_TRUE(WIFSIGNALED(exit.wait_status)) << exit.wait_status;
  EXPECT_EQ(WTERMSIG(exit.wait_status), SIGKILL);
  EXPECT_EQ(Read(file_), "ready\n");  // its SIGTERM handler never ran
}

TEST_F(ChildTest, ADeadlineAheadStillStopsGracefully) {
  agent::ChildProcess child(Script(file_), 10s);
  StartAndPause(&child);
  auto now = agent::ChildProcess::Clock::now();
  child.stop(now, now + 5s);
  agent::ChildProcess::Exit exit = Reap(&child);
  EXPECT_TRUE(WIFEXITED(exit.wait_status)) << exit.wait_status;
  EXPECT_EQ(Read(file_), "ready\nterm\n");
}

}  // namespace
