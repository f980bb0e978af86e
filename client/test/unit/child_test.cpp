// Unit tests of ChildProcess (client/agent/child.hpp) with real processes:
// how a stopped child is stopped. A child past its deadline must not run
// again at all; one stopped gracefully must get to run its SIGTERM handler
// even if it was paused (SIGSTOP).

#include "child.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "proctree.hpp"

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

// ----- the whole process tree (the agent is a child subreaper) -----

// Whether `pid` is a live process (not gone, not a zombie).
bool Alive(pid_t pid) {
  for (const agent::ProcessInfo &p : agent::read_processes())
    if (p.pid == pid) return !p.zombie();
  return false;
}

class TreeTest : public ChildTest {
 protected:
  void SetUp() override {
    ChildTest::SetUp();
    ASSERT_EQ(agent::become_subreaper(), "");
    pid_file_ = file_ + ".pid";
  }
  void TearDown() override {
    std::remove(pid_file_.c_str());
    ChildTest::TearDown();
  }

  // The pid the grandchild wrote.
  pid_t Grandchild() {
    pid_t pid = 0;
    EXPECT_TRUE(WaitFor([&] {
      std::string text = Read(pid_file_);
      if (text.empty() || text.back() != '\n') return false;
      pid = static_cast<pid_t>(std::stol(text));
      return true;
    }));
    return pid;
  }

  // Reaps until the child's whole tree is gone; the child's own exit.
  agent::ChildProcess::Exit ReapTree(agent::ChildProcess *child) {
    std::optional<agent::ChildProcess::Exit> exit;
    EXPECT_TRUE(WaitFor([&] {
      if (auto e = child->reap()) exit = e;
      child->on_timer(agent::ChildProcess::Clock::now());
      return exit.has_value() && !child->running();
    }));
    return exit.value_or(agent::ChildProcess::Exit{-1, false});
  }

  std::string pid_file_;
};

// A grandchild that left the child's session (setsid) and ignores SIGTERM:
// once the child exits, it is found (reparented to the agent) and killed
// when the SIGKILL is due, and the child counts as running until it is
// gone.
TEST_F(TreeTest, AGrandchildThatCallsSetsidIsKilledBeforeTheChildIsGone) {
  agent::ChildProcess child(
      {"/bin/sh", "-c",
       "trap 'exit 0' TERM; "
       "setsid /bin/sh -c 'trap \"\" TERM; echo $$ >\"$1.pid\"; "
       "exec sleep 1000' sh \"$0\" & "
       "echo ready >>\"$0\"; wait",
       file_},
      300ms);
  ASSERT_EQ(child.start({"PATH=/usr/bin:/bin"}), "");
  pid_t grandchild = Grandchild();
  ASSERT_TRUE(WaitFor([&] { return Read(file_) == "ready\n"; }));
  ASSERT_TRUE(Alive(grandchild));
  EXPECT_NE(getpgid(grandchild), child.pid());  // out of the child's group
  auto stopped_at = agent::ChildProcess::Clock::now();
  child.stop(stopped_at);
  std::optional<agent::ChildProcess::Exit> exit;
  ASSERT_TRUE(WaitFor([&] { return (exit = child.reap()).has_value(); }));
  EXPECT_TRUE(WIFEXITED(exit->wait_status)) << exit->wait_status;
  // The child is gone, the grandchild maybe not yet: not running only once
  // it is.
  ASSERT_TRUE(WaitFor([&] {
    bool gone = !Alive(grandchild);
    bool running = child.running();
    child.reap();
    child.on_timer(agent::ChildProcess::Clock::now());
    EXPECT_TRUE(running || gone) << "not running while the grandchild lives";
    return !running;
  }));
  EXPECT_FALSE(Alive(grandchild));
  // It had until the SIGKILL that was due for the child.
  EXPECT_GE(agent::ChildProcess::Clock::now() - stopped_at, 300ms);
  // Reaped by the agent, its subreaper: no zombie left either.
  EXPECT_NE(kill(grandchild, 0), 0);
}

// The same grandchild, when the child exits by itself: still killed.
TEST_F(TreeTest, ADaemonLeftByAChildThatExitedIsKilled) {
  agent::ChildProcess child(
      {"/bin/sh", "-c",
       "setsid /bin/sh -c 'trap \"\" TERM; echo $$ >\"$1.pid\"; "
       "exec sleep 1000' sh \"$0\" & "
       "while [ ! -s \"$0.pid\" ]; do sleep 0.01; done; exit 3",
       file_},
      10s);
  ASSERT_EQ(child.start({"PATH=/usr/bin:/bin"}), "");
  pid_t grandchild = Grandchild();
  agent::ChildProcess::Exit exit = ReapTree(&child);
  EXPECT_TRUE(WIFEXITED(exit.wait_status));
  EXPECT_EQ(WEXITSTATUS(exit.wait_status), 3);
  EXPECT_FALSE(exit.stopped);
  EXPECT_FALSE(Alive(grandchild));
}

// A graceful stop reaches descendants outside the group too (as systemd
// signals a cgroup): a setsid grandchild runs its SIGTERM handler.
TEST_F(TreeTest, AGracefulStopReachesAGrandchildOutsideTheGroup) {
  agent::ChildProcess child(
      {"/bin/sh", "-c",
       "trap 'exit 0' TERM; "
       "setsid /bin/sh -c 'trap \"echo gone >>\\\"$1\\\"; exit 0\" TERM; "
       "sleep 1000 & echo $$ >\"$1.pid\"; wait' sh \"$0\" & "
       "wait",
       file_},
      10s);
  ASSERT_EQ(child.start({"PATH=/usr/bin:/bin"}), "");
  pid_t grandchild = Grandchild();
  child.stop(agent::ChildProcess::Clock::now());
  ReapTree(&child);
  EXPECT_FALSE(Alive(grandchild));
  EXPECT_EQ(Read(file_), "gone\n");
}

// Past the deadline everything in the tree gets SIGKILL, not only the
// group.
TEST_F(TreeTest, PastTheDeadlineTheWholeTreeIsKilled) {
  agent::ChildProcess child(
      {"/bin/sh", "-c",
       "trap '' TERM; "
       "setsid /bin/sh -c 'trap \"\" TERM; echo $$ >\"$1.pid\"; "
       "exec sleep 1000' sh \"$0\" & wait",
       file_},
      10s);
  ASSERT_EQ(child.start({"PATH=/usr/bin:/bin"}), "");
  pid_t grandchild = Grandchild();
  auto now = agent::ChildProcess::Clock::now();
  child.stop(now, now + 50ms);
  agent::ChildProcess::Exit exit = ReapTree(&child);
  ASSERT_TRUE(WIFSIGNALED(exit.wait_status)) << exit.wait_status;
  EXPECT_EQ(WTERMSIG(exit.wait_status), SIGKILL);
  EXPECT_FALSE(Alive(grandchild));
}

}  // namespace
