#include "core/reshard_bridge.hpp"

#include <cstring>
#include <exception>

namespace shard_coordinator {

namespace {

void set_error(char *error, std::size_t len, const char *text) noexcept {
  if (len == 0) return;
  std::strncpy(error, text, len - 1);
  error[len - 1] = '\0';
}

}  // namespace

bool decide_reshard_into(const BridgeInput &input, BridgeOutput *output,
                         char *error, std::size_t error_len) noexcept {
  try {
    PolicyCluster cluster;
    cluster.epoch = input.epoch;
    cluster.num_shards = input.num_shards;
    cluster.max_shards = input.max_shards;
    cluster.old_keys.assign(input.old_keys, input.old_keys + input.old_nkeys);
    cluster.old_owners.assign(input.old_owners,
                              input.old_owners + input.old_nkeys);
    cluster.new_keys.assign(input.new_keys, input.new_keys + input.new_nkeys);
    cluster.members.assign(input.members, input.members + input.nmembers);
    const ReshardDecision decision = decide_reshard(cluster);
    if (!decision_is_valid(decision, cluster)) {
      set_error(error, error_len,
                "the computed assignment violates the invariant");
      return false;
    }
    output->epoch_moves = decision.epoch_moves;
    output->epoch = decision.epoch;
    output->num_shards = decision.num_shards;
    output->cluster_notice = decision.cluster_notice;
    for (std::size_t k = 0; k < decision.new_owners.size(); ++k)
      output->new_owners[k] = decision.new_owners[k];
    std::int32_t offset = 0;
    for (std::size_t i = 0; i < decision.members.size(); ++i) {
      const MemberDecision &d = decision.members[i];
      BridgeMemberResult &r = output->members[i];
      r.state = d.state;
      r.shard = d.shard;
      r.removed = d.removed;
      r.changed = d.changed;
      r.row = d.row;
      r.notice = d.notice;
      r.epoch = d.epoch;
      r.slots_offset = offset;
      r.nslots = static_cast<std::int32_t>(d.slots.size());
      for (std::int32_t key : d.slots) output->slots[offset++] = key;
    }
    return true;
  } catch (const std::exception &e) {
    set_error(error, error_len, e.what());
  } catch (...) {
    set_error(error, error_len, "unknown C++ exception");
  }
  return false;
}

}  // namespace shard_coordinator
