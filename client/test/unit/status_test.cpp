// `status`'s members table and warnings (agent/status.hpp), from rows as
// the members view gives them.
#include "status.hpp"

#include <gtest/gtest.h>

namespace shard_coordinator::agent {
namespace {

using json = nlohmann::ordered_json;

json member(const char *name, json shard, json acked, json incarnation) {
  return json{{"cluster", "orders"},
              {"member", name},
              {"state", "active"},
              {"shard", shard},
              {"epoch", 7},
              {"last_heartbeat", "2026-12-06T20:00:00+00:00"},
              {"slots", nullptr},
              {"target_shard", shard.is_null() ? json(2) : shard},
              {"withheld", shard.is_null()},
              {"releasing", nullptr},
              {"release_epoch", nullptr},
              {"release_until", nullptr},
              {"acknowledged_epoch", acked},
              {"incarnation", incarnation},
              {"last_heartbeat_ago_s", 0.1},
              {"expires_in_s", 1.4},
              {"age_s", 3.0},
              {"release_in_s", nullptr}};
}

TEST(MembersTable, AcknowledgedEpochAndWhatIsReleasing) {
  json releasing = member("web-1", 0, 6, 42);
  releasing["releasing"] = "shard 0 of 2";
  releasing["release_epoch"] = 7;
  releasing["release_in_s"] = 1.25;
  json waiting = member("web-2", nullptr, 7, 43);
  std::string table = members_table(json::array({releasing, waiting}));
  EXPECT_EQ(table,
            "CLUSTER  MEMBER  STATE   SHARD            EPOCH  ACKED  "
            "LAST-HEARTBEAT  EXPIRES-IN  AGE  RELEASING\n"
            "orders   web-1   active  0                7      6      100ms ago"
            "       1.4s        3s   shard 0 of 2 (epoch 7), 1.2s left\n"
            "orders   web-2   active  - (waits for 2)  7      7      100ms ago"
            "       1.4s        3s   -\n");
}

TEST(MembersTable, ReleaseDue) {
  json m = member("web-1", 0, 6, 42);
  m["releasing"] = "slots {1,2}";
  m["release_in_s"] = -0.5;
  EXPECT_EQ(releasing_cell(m), "slots {1,2}, due");
}

TEST(AcknowledgementWarnings, OlderClientsAndHoldersThatNeverAcknowledged) {
  json fine = member("new", 0, 7, 42);
  json first = member("first", 0, nullptr, 42);  // its first heartbeat
  json old = member("old", 1, nullptr, nullptr);
  json holder = member("holder", 2, nullptr, 44);
  holder["releasing"] = "shard 2 of 3";
  json standby_server = member("replica", 0, nullptr, nullptr);
  standby_server["last_heartbeat"] = nullptr;
  auto warnings = acknowledgement_warnings(
      json::array({fine, first, old, holder, standby_server}));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].rfind("member old of cluster orders has never "
                              "acknowledged an epoch (an older client",
                              0),
            0u)
      << warnings[0];
  EXPECT_EQ(warnings[1].rfind("member holder of cluster orders has never "
                              "acknowledged an epoch: each handover",
                              0),
            0u)
      << warnings[1];
}

}  // namespace
}  // namespace shard_coordinator::agent
