// The registrar's options from the agent's (agent/member.hpp), one copy for
// run and watch.
#include "member.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::agent {
namespace {

TEST(RegistrarOptions, FromTheAgentsOptions) {
  MemberOptions options;
  options.dsn = "host=db1,db2 target_session_attrs=read-write";
  options.cluster = "orders";
  options.member = "web-1";
  options.no_leave = true;
  RepeatFilter repeats(std::chrono::seconds(30));
  client::Options reg = registrar_options(options, repeats);
  EXPECT_EQ(reg.conninfo, options.dsn);
  EXPECT_EQ(reg.cluster, "orders");
  EXPECT_EQ(reg.member, "web-1");
  EXPECT_FALSE(reg.leave_on_stop);
  EXPECT_TRUE(reg.on_log);
  EXPECT_TRUE(reg.on_error);
  EXPECT_FALSE(reg.on_assignment);  // the subcommand's own
  // The library's defaults otherwise.
  client::Options defaults;
  EXPECT_EQ(reg.query_timeout, defaults.query_timeout);
  EXPECT_EQ(reg.leave_timeout, defaults.leave_timeout);

  options.no_leave = false;
  options.member.clear();  // the registrar picks one
  reg = registrar_options(options, repeats);
  EXPECT_TRUE(reg.leave_on_stop);
  EXPECT_EQ(reg.member, "");
}

}  // namespace
}  // namespace shard_coordinator::agent
