// The agent's process tree (agent/proctree.hpp): /proc/<pid>/stat lines and
// descendants, without processes; the processes are in child_test.cpp.
#include "proctree.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

namespace shard_coordinator::agent {
namespace {

TEST(ProcStat, Fields) {
  ProcessInfo p;
  ASSERT_TRUE(
      parse_proc_stat("4242 (sleep) S 4200 4242 4100 0 -1 4194304", &p));
  EXPECT_EQ(p.pid, 4242);
  EXPECT_EQ(p.ppid, 4200);
  EXPECT_EQ(p.pgid, 4242);
  EXPECT_EQ(p.state, 'S');
  EXPECT_FALSE(p.zombie());
}

TEST(ProcStat, CommandNamesWithSpacesAndParentheses) {
  ProcessInfo p;
  ASSERT_TRUE(parse_proc_stat("17 (a) b (c)) Z 1 17 17 0", &p));
  EXPECT_EQ(p.pid, 17);
  EXPECT_EQ(p.ppid, 1);
  EXPECT_TRUE(p.zombie());
}

TEST(ProcStat, Garbage) {
  ProcessInfo p;
  EXPECT_FALSE(parse_proc_stat("", &p));
  EXPECT_FALSE(parse_proc_stat("12 (x", &p));
  EXPECT_FALSE(parse_proc_stat("x (y) S 1 1", &p));
  EXPECT_FALSE(parse_proc_stat("12 (y) S", &p));
}

TEST(Descendants, WholeTreeParentsFirst) {
  // 10 -> 11 -> 13 -> 14; 10 -> 12; 20 -> 21 (another tree).
  std::vector<ProcessInfo> all = {
      {14, 13, 14, 'S'}, {11, 10, 11, 'S'}, {12, 10, 11, 'Z'},
      {13, 11, 13, 'S'}, {21, 20, 21, 'S'}, {10, 1, 10, 'S'},
  };
  std::vector<pid_t> pids;
  for (const ProcessInfo &p : descendants(10, all)) pids.push_back(p.pid);
  EXPECT_EQ(pids, (std::vector<pid_t>{11, 12, 13, 14}));
  EXPECT_TRUE(descendants(14, all).empty());
  EXPECT_TRUE(descendants(99, all).empty());
}

TEST(Descendants, ThisProcessIsListed) {
  bool found = false;
  for (const ProcessInfo &p : read_processes())
    if (p.pid == getpid()) found = p.ppid == getppid();
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace shard_coordinator::agent
