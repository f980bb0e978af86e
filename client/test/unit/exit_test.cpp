// How the agent ends (exit_process, agent_main: client/agent/agent.hpp): the
// exit code, output flushed, and no atexit handler or static destructor run,
// even with a connection attempt still inside libpq. Each case runs in a
// forked process, since it ends that process.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent.hpp"
#include "connect.hpp"

namespace agent = shard_coordinator::agent;
namespace client = shard_coordinator::client;

namespace {

int g_report_fd = -1;

// An atexit handler: it must never run.
extern "C" void ReportAtexit() {
  const char text[] = "[atexit ran]";
  ssize_t ignored = write(g_report_fd, text, sizeof text - 1);
  (void)ignored;
}

struct Ended {
  int wait_status = -1;
  std::string out;  // the process's stdout, then anything it reported
  std::string err;  // its stderr
  std::chrono::steady_clock::duration took{};
};

std::string ReadAll(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    text.append(buf, static_cast<size_t>(n));
  return text;
}

// Runs `body` in a forked process whose stdout and stderr are pipes, with
// ReportAtexit registered to write into its stdout pipe. `body` must end the
// process.
Ended InChild(const std::function<void()> &body) {
  Ended ended;
  int out[2];
  int err[2];
  if (pipe(out) != 0 || pipe(err) != 0) return ended;
  std::fflush(nullptr);  // nothing of ours buffered twice
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) return ended;
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    close(out[0]);
    close(err[0]);
    g_report_fd = out[1];
    std::atexit(ReportAtexit);
    body();
    std::_Exit(100);  // body() did not end the process
  }
  close(out[1]);
  close(err[1]);
  // Small outputs: reading one pipe after the other cannot deadlock.
  ended.out = ReadAll(out[0]);
  ended.err = ReadAll(err[0]);
  close(out[0]);
  close(err[0]);
  waitpid(pid, &ended.wait_status, 0);
  ended.took = std::chrono::steady_clock::now() - start;
  return ended;
}

int ExitCode(const Ended &ended) {
  if (!WIFEXITED(ended.wait_status)) return -1;
  return WEXITSTATUS(ended.wait_status);
}

Ended Agent(std::vector<std::string> args) {
  return InChild([&args] {
    std::vector<char *> argv;
    for (auto &arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    agent::exit_process(
        agent::agent_main(static_cast<int>(args.size()), argv.data()));
  });
}

TEST(ExitProcess, FlushesBufferedOutputAndExitsWithTheCode) {
  Ended ended = InChild([] {
    std::cerr << "to stderr";     // first: it would flush cout (tie)
    std::cout << "from cout, ";   // buffered: stdout is a pipe
    std::printf("from stdio, ");  // buffered likewise
    agent::exit_process(6);
  });
  EXPECT_EQ(ExitCode(ended), 6) << ended.wait_status;
  EXPECT_EQ(ended.out, "from cout, from stdio, ");  // no "[atexit ran]"
  EXPECT_EQ(ended.err, "to stderr");
}

TEST(AgentMain, HelpIsPrintedInFullWithStatus0) {
  Ended ended = Agent({"shard-coordinator", "--help"});
  EXPECT_EQ(ExitCode(ended), 0);
  EXPECT_NE(ended.out.find("Exit status:"), std::string::npos) << ended.out;
  EXPECT_EQ(ended.out.find("[atexit ran]"), std::string::npos);
}

TEST(AgentMain, VersionIsPrintedWithStatus0) {
  Ended ended = Agent({"shard-coordinator", "--version"});
  EXPECT_EQ(ExitCode(ended), 0);
  EXPECT_EQ(ended.out, std::string(agent::kVersionLine) + "\n");
  EXPECT_EQ(ended.out.rfind("shard-coordinator 1.", 0), 0u) << ended.out;
  EXPECT_EQ(ended.err, "");
}

TEST(AgentMain, AnInvalidCommandLineExits2) {
  Ended ended = Agent({"shard-coordinator"});
  EXPECT_EQ(ExitCode(ended), agent::kExitUsage);
  EXPECT_NE(ended.err.find("shard-coordinator: "), std::string::npos);
  ended = Agent({"shard-coordinator", "run", "--cluster", "c"});  // no COMMAND
  EXPECT_EQ(ExitCode(ended), agent::kExitUsage);
  EXPECT_EQ(ended.out, "");
}

TEST(AgentMain, StatusWithoutAServerExits1) {
  Ended ended = Agent({"shard-coordinator", "status", "--dsn",
                       "host=/nonexistent/sc_exit_test dbname=x"});
  EXPECT_EQ(ExitCode(ended), agent::kExitInternal);
  EXPECT_NE(ended.err.find("cannot connect to the database"), std::string::npos)
      << ended.err;
  EXPECT_EQ(ended.out, "");
}

// A listening socket that never answers: a connection attempt to it waits
// inside libpq (for the answer to its first packet) until connect_timeout.
TEST(ExitProcess, DoesNotWaitForNorRunCleanupUnderAConnectingThread) {
  Ended ended = InChild([] {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    auto *any = reinterpret_cast<sockaddr *>(&address);
    if (listener < 0 || bind(listener, any, length) != 0 ||
        listen(listener, 1) != 0 || getsockname(listener, any, &length) != 0)
      std::_Exit(101);
    std::string port = std::to_string(ntohs(address.sin_port));
    auto attempt =
        std::make_unique<client::ConnectAttempt>(client::connection_params(
            "host=127.0.0.1 port=" + port + " connect_timeout=30", "test"));
    // Once libpq's connection is accepted, its thread is inside libpq,
    // waiting for an answer that never comes.
    pollfd incoming{listener, POLLIN, 0};
    if (poll(&incoming, 1, 10000) != 1) std::_Exit(102);
    int accepted = accept(listener, nullptr, nullptr);
    if (accepted < 0 || attempt->done()) std::_Exit(103);
    attempt.reset();  // abandoned, as the registrar does when it finishes
    agent::exit_process(7);
  });
  EXPECT_EQ(ExitCode(ended), 7) << ended.wait_status;
  EXPECT_EQ(ended.out, "");  // no "[atexit ran]"
  EXPECT_LT(ended.took, std::chrono::seconds(10));
}

}  // namespace
