// Connection settings (lib/connect.hpp): our defaults, and that libpq lets the
// connection string override them. libpq is asked to start connecting to a
// Unix socket in a directory that does not exist: it fails at once, with no
// server and no network, but has settled every option by then.
#include "connect.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace shard_coordinator::client {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// The last value of `key`, as libpq would take it; "(absent)" if none.
std::string Find(const Params &params, const std::string &key) {
  std::string value = "(absent)";
  for (const auto &[k, v] : params)
    if (k == key) value = v;
  return value;
}

// The options libpq settles on for `params` (expand_dbname = 1, as
// ConnectAttempt passes them).
std::map<std::string, std::string> Settled(const Params &params) {
  std::vector<const char *> keywords;
  std::vector<const char *> values;
  for (const auto &[key, value] : params) {
    keywords.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PgConn conn(PQconnectStartParams(keywords.data(), values.data(), 1));
  std::map<std::string, std::string> settled;
  if (!conn) return settled;
  PQconninfoOption *options = PQconninfo(conn.get());
  for (PQconninfoOption *o = options; o && o->keyword; ++o)
    if (o->val) settled[o->keyword] = o->val;
  PQconninfoFree(options);
  return settled;
}

const char kNoServer[] = "host=/nonexistent/sc_connect_test dbname=x";

TEST(ConnectionParams, DefaultsFirstThenTheConnectionString) {
  Params params = connection_params(kNoServer, "app");
  ASSERT_FALSE(params.empty());
  EXPECT_EQ(params.back().first, "dbname");
  EXPECT_EQ(params.back().second, kNoServer);
  EXPECT_EQ(Find(params, "fallback_application_name"), "app");
  EXPECT_EQ(Find(params, "keepalives"), "1");
  EXPECT_EQ(Find(params, "keepalives_idle"), "10");
  EXPECT_EQ(Find(params, "keepalives_interval"), "5");
  EXPECT_EQ(Find(params, "keepalives_count"), "3");
}

TEST(ConnectionParams, LibpqTakesTheDefaults) {
  auto settled = Settled(connection_params(kNoServer, "app"));
  EXPECT_EQ(settled["host"], "/nonexistent/sc_connect_test");
  EXPECT_EQ(settled["fallback_application_name"], "app");
  EXPECT_EQ(settled["keepalives"], "1");
  EXPECT_EQ(settled["keepalives_idle"], "10");
  EXPECT_EQ(settled["keepalives_interval"], "5");
  EXPECT_EQ(settled["keepalives_count"], "3");
}

TEST(ConnectionParams, TheConnectionStringWins) {
  auto settled = Settled(connection_params(
      std::string(kNoServer) + " keepalives=0 keepalives_idle=60", "app"));
  EXPECT_EQ(settled["keepalives"], "0");
  EXPECT_EQ(settled["keepalives_idle"], "60");
  EXPECT_EQ(settled["keepalives_interval"], "5");  // not overridden
  EXPECT_EQ(settled["dbname"], "x");
}

TEST(ConnectionParams, AUriWinsToo) {
  auto settled = Settled(connection_params(
      "postgresql:///x?host=/nonexistent/sc_connect_test&keepalives=0&"
      "keepalives_count=9&connect_timeout=7",
      "app"));
  EXPECT_EQ(settled["keepalives"], "0");
  EXPECT_EQ(settled["keepalives_count"], "9");
  EXPECT_EQ(settled["connect_timeout"], "7");
  EXPECT_EQ(settled["keepalives_idle"], "10");
}

}  // namespace
}  // namespace shard_coordinator::client
