// The `shard-coordinator` agent: its subcommands and exit codes.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace shard_coordinator::agent {

// Documented in `shard-coordinator --help` (see kExitCodesHelp).
enum ExitCode : int {
  kExitOk = 0,           // status: success
  kExitStopped = 0,      // stopped by SIGTERM/SIGINT/SIGHUP (or watch's
                         // output closed); the member left
  kExitInternal = 1,     // unexpected error (status: cannot connect)
  kExitUsage = 2,        // invalid command line
  kExitRejected = 3,     // the server refused: bad name, no extension,
                         // no privilege
  kExitCannotStart = 4,  // COMMAND could not be started
  kExitChildDone = 5,    // COMMAND exited by itself with status 0
  kExitChildFailed = 6,  // COMMAND exited by itself with another status
                         // or was killed by a signal the agent did not send
};

extern const char *const kExitCodesHelp;

struct MemberOptions {
  std::string dsn;
  std::string cluster;
  std::string member;  // empty: host-pid-random
  bool no_leave = false;
};

struct RunOptions : MemberOptions {
  std::vector<std::string> command;
  std::chrono::milliseconds kill_timeout{10000};
};

struct StatusOptions {
  std::string dsn;
  std::string cluster;  // empty: every cluster
  bool json = false;
};

int run_command(const RunOptions &options);
int watch_command(const MemberOptions &options);
int status_command(const StatusOptions &options);

}  // namespace shard_coordinator::agent
