#include <gtest/gtest.h>
#include <unistd.h>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {
namespace {

TEST(DefaultMemberName, HostPidRandom) {
  std::string name = default_member_name();
  EXPECT_LE(name.size(), 127u);
  EXPECT_NE(name.find("-" + std::to_string(getpid()) + "-"), std::string::npos)
      << name;
  EXPECT_EQ(name.find('.'), std::string::npos) << "short host name: " << name;
  for (char c : name) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
}

TEST(DefaultMemberName, DiffersBetweenRegistrarsOfOneProcess) {
  EXPECT_NE(default_member_name(), default_member_name());
}

}  // namespace
}  // namespace shard_coordinator::client
