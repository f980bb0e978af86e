// shard-coordinator: the command-line agent. Parses the command line (CLI11)
// and hands over to run_command, watch_command or status_command. main()
// (main.cpp) passes the result to exit_process(). `admin` goes to
// admin_command.

#include <CLI/CLI.hpp>
#include <cmath>
#include <exception>
#include <iostream>

#include "agent.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace sca = shard_coordinator::agent;

namespace shard_coordinator::agent {

// SC_VERSION is the release's version, from CMakeLists.txt's project().
const char *const kVersionLine = "shard-coordinator " SC_VERSION;

const char *const kExitCodesHelp =
    "Exit status:\n"
    "  0  stopped by SIGTERM, SIGINT or SIGHUP (run: the command was stopped\n"
    "     first); the member left the cluster. status: success\n"
    "  1  unexpected error; status: cannot connect or read the views; run:\n"
    "     cannot listen on --metrics-addr\n"
    "  2  invalid command line\n"
    "  3  the server refused: invalid cluster or member name, extension not\n"
    "     installed in this database, or no privilege\n"
    "  4  run: COMMAND could not be started\n"
    "  5  run: COMMAND exited by itself with status 0 (the member left)\n"
    "  6  run: COMMAND exited by itself with another status or was killed by\n"
    "     a signal the agent did not send (the member left)\n"
    "\n"
    "Connection defaults follow libpq: PGHOST, PGPORT, PGUSER, PGDATABASE,\n"
    "PGPASSWORD, ~/.pgpass and service files. For high availability list\n"
    "every host: --dsn 'host=db1,db2 target_session_attrs=read-write'.";

}  // namespace shard_coordinator::agent

namespace {

void add_member_options(CLI::App *cmd, sca::MemberOptions *options) {
  cmd->add_option("--cluster,-c", options->cluster, "Cluster to join")
      ->required()
      ->envname("SHARD_COORDINATOR_CLUSTER");
  cmd->add_option("--member,-m", options->member,
                  "Member name, unique in the cluster (default: short host "
                  "name, process id and a random suffix)")
      ->envname("SHARD_COORDINATOR_MEMBER");
  cmd->add_option("--dsn,-d", options->dsn,
                  "libpq connection string or URI (default: PG* environment "
                  "variables)")
      ->envname("SHARD_COORDINATOR_DSN");
  cmd->add_flag("--no-leave", options->no_leave,
                "On exit, do not leave the cluster: the server expires the "
                "member after its grace period instead");
}

}  // namespace

int sca::agent_main(int argc, char **argv) {
  CLI::App app{
      "Runs a worker as a member of a shard_coordinator cluster: PostgreSQL "
      "tells each member which shard of how many it holds.",
      "shard-coordinator"};
  app.require_subcommand(1);
  app.footer(sca::kExitCodesHelp);
  app.set_version_flag("--version", kVersionLine, "Print the version and exit");
  app.failure_message([](const CLI::App *, const CLI::Error &e) {
    return std::string("shard-coordinator: ") + e.what() +
           " (see shard-coordinator --help)\n";
  });
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity,
               "Log progress to stderr (-vv: every heartbeat and "
               "notification)");

  sca::RunOptions run_options;
  double kill_timeout_s = 10;
  CLI::App *run = app.add_subcommand(
      "run",
      "Run COMMAND while this member holds a grant, with SHARD_INDEX, "
      "SHARD_COUNT, SHARD_EPOCH (the grant's), SHARD_CLUSTER, SHARD_MEMBER "
      "(and SHARD_SLOTS, comma-separated, in slot mode) in its environment; "
      "restart it only when its grant changes; on a revocation stop it (its "
      "whole process tree) by the revocation's deadline, then acknowledge; "
      "no COMMAND runs while pending, standby or waiting for a grant");
  add_member_options(run, &run_options);
  run->add_option("--kill-timeout", kill_timeout_s,
                  "How long COMMAND gets to exit after SIGTERM before "
                  "SIGKILL, e.g. 10s, 500ms (shorter when a revocation's "
                  "deadline or the lease requires it)")
      ->transform(
          CLI::AsNumberWithUnit(
              std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}},
              CLI::AsNumberWithUnit::CASE_SENSITIVE)
              .description(""))
      ->check(CLI::Range(0.0, 86400.0).description(""))
      ->type_name("DURATION")
      ->default_str("10s");
  run->add_option("--metrics-addr", run_options.metrics_address,
                  "Serve the agent's state in the Prometheus text format at "
                  "http://HOST:PORT/metrics (lease remaining, grant, "
                  "revocations, lease losses, command starts, connection "
                  "failures; README, Operations). HOST: an IPv4 address, "
                  "localhost, or empty for every IPv4 interface; "
                  "port 0 picks a free one (logged with -v). Default: none")
      ->type_name("HOST:PORT")
      ->check(CLI::Validator(
          [](std::string &text) {
            std::string error;
            return sca::parse_metrics_address(text, &error) ? std::string()
                                                            : error;
          },
          "", "HOST:PORT"))
      ->envname("SHARD_COORDINATOR_METRICS_ADDR");
  run->add_option("COMMAND", run_options.command,
                  "The worker command and its arguments, after --")
      ->required();
  run->footer(sca::kExitCodesHelp);
  run->fallthrough();

  sca::WatchOptions watch_options;
  CLI::App *watch = app.add_subcommand(
      "watch",
      "Join the cluster and print one JSON line per event: \"assignment\" "
      "(shard, num_shards, epoch, state: pending, active, standby, removed, "
      "or lost when the lease ran out; slots when present), \"granted\" "
      "(the grant gained work), \"revoked\" (work to stop within "
      "deadline_ms, then acknowledge), \"acknowledged\" (the server counts "
      "the epoch as acknowledged)");
  add_member_options(watch, &watch_options);
  watch->add_flag("--ack", watch_options.ack,
                  "Acknowledge each revocation as soon as it is printed, for "
                  "scripts that apply each line before reading the next "
                  "(without it, handovers from this member wait for the "
                  "server's deadline, and on exit it leaves only if it held "
                  "nothing)");
  watch->footer(sca::kExitCodesHelp);
  watch->fallthrough();

  sca::StatusOptions status_options;
  CLI::App *status = app.add_subcommand(
      "status",
      "Show clusters and members as tables (from the server's views): per "
      "member its grant, the epoch it last acknowledged and any work it "
      "must still release; warn about members that never acknowledge");
  status->add_option("--cluster,-c", status_options.cluster,
                     "Show only this cluster");
  status
      ->add_option("--dsn,-d", status_options.dsn,
                   "libpq connection string or URI (default: PG* "
                   "environment variables)")
      ->envname("SHARD_COORDINATOR_DSN");
  status->add_flag("--json", status_options.json,
                   "Print one JSON document instead of tables");
  status->footer(sca::kExitCodesHelp);
  status->fallthrough();

  sca::AdminOptions admin_options;
  CLI::App *admin = app.add_subcommand(
      "admin",
      "Operator controls (the role needs EXECUTE on them): evict a member "
      "(its incarnation is banned, its work moves when its promise ends), "
      "freeze a cluster (no work moves) or unfreeze it, drop a cluster");
  admin->require_subcommand(1);
  admin
      ->add_option("--dsn,-d", admin_options.dsn,
                   "libpq connection string or URI (default: PG* "
                   "environment variables)")
      ->envname("SHARD_COORDINATOR_DSN");
  CLI::App *evict = admin->add_subcommand(
      "evict", "Remove a member that will not go, and ban its process");
  evict->add_option("CLUSTER", admin_options.cluster, "The cluster")
      ->required();
  evict->add_option("MEMBER", admin_options.member, "The member")->required();
  evict->add_option("--reason,-r", admin_options.reason,
                    "Why (recorded in the server log)");
  CLI::App *freeze = admin->add_subcommand(
      "freeze", "Stop all movement of work in a cluster until unfreeze");
  freeze->add_option("CLUSTER", admin_options.cluster, "The cluster")
      ->required();
  CLI::App *unfreeze =
      admin->add_subcommand("unfreeze", "Let a frozen cluster move work again");
  unfreeze->add_option("CLUSTER", admin_options.cluster, "The cluster")
      ->required();
  CLI::App *drop = admin->add_subcommand(
      "drop",
      "Remove a cluster: its members are told they are removed; its name, "
      "shared memory and rows are freed once their work is released (at the "
      "latest when their promises end)");
  drop->add_option("CLUSTER", admin_options.cluster, "The cluster")->required();
  admin->footer(sca::kExitCodesHelp);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    int code = app.exit(e);
    return code == 0 ? 0 : sca::kExitUsage;
  }
  sca::set_verbosity(verbosity);

  try {
    if (run->parsed()) {
      run_options.kill_timeout = std::chrono::milliseconds(
          static_cast<long long>(std::llround(kill_timeout_s * 1000)));
      return sca::run_command(run_options);
    }
    if (watch->parsed()) return sca::watch_command(watch_options);
    if (admin->parsed()) {
      admin_options.action = evict->parsed()    ? sca::AdminAction::Evict
                             : freeze->parsed() ? sca::AdminAction::Freeze
                             : drop->parsed()   ? sca::AdminAction::Drop
                                                : sca::AdminAction::Unfreeze;
      return sca::admin_command(admin_options);
    }
    return sca::status_command(status_options);
  } catch (const std::exception &e) {
    sca::log(sca::Level::Error, std::string("unexpected error: ") + e.what());
    return sca::kExitInternal;
  }
}
