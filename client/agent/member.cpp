#include "member.hpp"

namespace shard_coordinator::agent {

client::Options registrar_options(const MemberOptions &options,
                                  RepeatFilter &repeats) {
  client::Options reg_options;
  reg_options.conninfo = options.dsn;
  reg_options.cluster = options.cluster;
  reg_options.member = options.member;
  reg_options.leave_on_stop = !options.no_leave;
  reg_options.on_log = log_library;
  reg_options.on_error = [&repeats](const client::Error &e) {
    if (e.fatal) {
      log(Level::Error, e.message);
    } else {
      repeats.warn(e.message);
    }
  };
  return reg_options;
}

}  // namespace shard_coordinator::agent
