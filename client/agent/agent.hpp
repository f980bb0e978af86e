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
// What `shard-coordinator --version` prints: "shard-coordinator 1.1.0".
extern const char *const kVersionLine;

struct MemberOptions {
  std::string dsn;
  std::string cluster;
  std::string member;  // empty: host-pid-random
  bool no_leave = false;
};

struct WatchOptions : MemberOptions {
  // Acknowledge each revocation as soon as it is printed (for scripts that
  // apply each line before reading the next).
  bool ack = false;
};

struct RunOptions : MemberOptions {
  std::vector<std::string> command;
  std::chrono::milliseconds kill_timeout{10000};
  // HOST:PORT to serve the agent's metrics on (metrics.hpp); empty: none.
  std::string metrics_address;
};

struct StatusOptions {
  std::string dsn;
  std::string cluster;  // empty: every cluster
  bool json = false;
};

enum class AdminAction { Evict, Freeze, Unfreeze, Drop };

struct AdminOptions {
  std::string dsn;
  AdminAction action = AdminAction::Freeze;
  std::string cluster;
  std::string member;  // evict
  std::string reason;  // evict; empty: none
};

int admin_command(const AdminOptions &options);
int run_command(const RunOptions &options);
int watch_command(const WatchOptions &options);
int status_command(const StatusOptions &options);

// The whole agent: parses the command line, runs the subcommand, and returns
// the exit code. main() passes it to exit_process().
int agent_main(int argc, char **argv);

// How the agent ends: flushes stdout and stderr (C and C++ streams), then
// _exit(code). Never exit(), nor a return from main(): a connection attempt
// may still be running on its detached thread (lib/connect.hpp), inside
// libpq or OpenSSL, and exit() would run atexit handlers (OpenSSL's cleanup)
// and static destructors under it. _exit() ends the process, that thread
// with it, and runs none of them; the agent keeps nothing that needs them
// (its log and watch's lines are written with write(2), status flushes its
// output). Joining the thread instead would hold up the exit for as long as
// the attempt lasts: connect_timeout for every host in the list.
[[noreturn]] void exit_process(int code) noexcept;

}  // namespace shard_coordinator::agent
