// The libpq notice processor (lib/notice.hpp). libpq calls it from C code, so
// nothing may be thrown out of it, whatever the application's on_log does.
#include "notice.hpp"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

namespace shard_coordinator::client {
namespace {

// A throw would terminate the process rather than unwind through libpq.
static_assert(noexcept(log_notice(nullptr, "")));

TEST(LogNotice, PassesTheMessageOnOneLine) {
  std::vector<std::pair<LogLevel, std::string>> logged;
  LogFunction on_log = [&logged](LogLevel level, const std::string &message) {
    logged.emplace_back(level, message);
  };
  log_notice(&on_log, "WARNING:  something\nDETAIL:  more\n");
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0].first, LogLevel::Info);
  EXPECT_EQ(logged[0].second, "server: WARNING: something DETAIL: more");
}

TEST(LogNotice, WithoutACallbackDoesNothing) {
  LogFunction on_log;
  EXPECT_NO_THROW(log_notice(&on_log, "NOTICE:  x\n"));
}

TEST(LogNotice, NothingThrownEscapes) {
  LogFunction throws_runtime_error = [](LogLevel, const std::string &) {
    throw std::runtime_error("from on_log");
  };
  LogFunction throws_bad_alloc = [](LogLevel, const std::string &) {
    throw std::bad_alloc();
  };
  LogFunction throws_int = [](LogLevel, const std::string &) { throw 42; };
  EXPECT_NO_THROW(log_notice(&throws_runtime_error, "NOTICE:  a\n"));
  EXPECT_NO_THROW(log_notice(&throws_bad_alloc, "NOTICE:  b\n"));
  EXPECT_NO_THROW(log_notice(&throws_int, "NOTICE:  c\n"));
}

}  // namespace
}  // namespace shard_coordinator::client
