#include "sqlstate.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::client {
namespace {

TEST(Diagnose, StandbyServerReconnectsAndAdvisesReadWrite) {
  Diagnosis d = diagnose("25006");
  EXPECT_EQ(d.recovery, Recovery::Reconnect);
  EXPECT_NE(d.advice.find("target_session_attrs=read-write"),
            std::string::npos);
}

TEST(Diagnose, FullOrNotReadyRetriesOnTheSameConnection) {
  EXPECT_EQ(diagnose("53400").recovery, Recovery::RetrySameConnection);
  EXPECT_NE(diagnose("53400").advice.find("max_members"), std::string::npos);
  EXPECT_EQ(diagnose("55000").recovery, Recovery::RetrySameConnection);
}

TEST(Diagnose, ANameInUseRetriesAnEvictionGivesUp) {
  EXPECT_EQ(diagnose("SC002").recovery, Recovery::RetrySameConnection);
  EXPECT_NE(diagnose("SC002").advice.find("--member"), std::string::npos);
  EXPECT_EQ(diagnose("SC003").recovery, Recovery::GiveUp);
  EXPECT_NE(diagnose("SC003").advice.find("evict"), std::string::npos);
  EXPECT_EQ(diagnose("SC004").recovery, Recovery::GiveUp);
  EXPECT_NE(diagnose("SC004").advice.find("drop_cluster"), std::string::npos);
}

TEST(Diagnose, BadInputAndMissingExtensionGiveUp) {
  for (const char *state :
       {"22023", "22004", "42883", "3F000", "42501", "42704"})
    EXPECT_EQ(diagnose(state).recovery, Recovery::GiveUp) << state;
  EXPECT_NE(diagnose("3F000").advice.find("CREATE EXTENSION"),
            std::string::npos);
  EXPECT_NE(diagnose("42501").advice.find("member_role"), std::string::npos);
  EXPECT_NE(diagnose("42704").advice.find("configure()"), std::string::npos);
}

TEST(Diagnose, EverythingElseReconnects) {
  for (const char *state : {"57P01", "57P03", "08006", "53200", "XX000", ""})
    EXPECT_EQ(diagnose(state).recovery, Recovery::Reconnect) << state;
}

}  // namespace
}  // namespace shard_coordinator::client
