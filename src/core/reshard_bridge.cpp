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

BridgeRoom bridge_room(const BridgeInput &input) noexcept {
  BridgeRoom room;
  room.keys = input.nkeys + input.nnext + 1;
  // Each member can lose its grant twice in a step (it moves, and the count
  // changes), and every hold in place can stay.
  room.holds = input.nholds + 2 * input.nmembers + 1;
  return room;
}

bool decide_reshard_into(const BridgeInput &input, BridgeOutput *output,
                         char *error, std::size_t error_len) noexcept {
  try {
    PolicyCluster c;
    c.mode = input.mode;
    c.epoch = input.epoch;
    c.num_shards = input.num_shards;
    c.grant_count = input.grant_count;
    c.max_shards = input.max_shards;
    c.reshard = input.reshard;
    c.grants_allowed = input.grants_allowed;
    c.now = input.now;
    c.keys.assign(input.keys, input.keys + input.nkeys);
    c.keys_pending = input.keys_pending;
    c.next_keys.assign(input.next_keys, input.next_keys + input.nnext);
    c.members.assign(input.members, input.members + input.nmembers);
    c.holds.assign(input.holds, input.holds + input.nholds);
    const ReshardDecision d = decide_reshard(c);
    const char *problem = decision_problem(d, c);
    if (problem[0] != '\0') {
      set_error(error, error_len, problem);
      return false;
    }
    const BridgeRoom room = bridge_room(input);
    if (static_cast<std::int32_t>(d.keys.size()) > room.keys ||
        static_cast<std::int32_t>(d.holds.size()) > room.holds ||
        static_cast<std::int32_t>(d.next_keys.size()) > input.nnext) {
      set_error(error, error_len, "the decision does not fit its room");
      return false;
    }
    output->epoch_moves = d.epoch_moves;
    output->epoch = d.epoch;
    output->num_shards = d.num_shards;
    output->grant_count = d.grant_count;
    output->cluster_notice = d.cluster_notice;
    output->handover_pending = d.handover_pending;
    output->store = d.store;
    output->nkeys = static_cast<std::int32_t>(d.keys.size());
    for (std::size_t k = 0; k < d.keys.size(); ++k) output->keys[k] = d.keys[k];
    output->keys_pending = d.keys_pending;
    output->nnext = static_cast<std::int32_t>(d.next_keys.size());
    for (std::size_t k = 0; k < d.next_keys.size(); ++k)
      output->next_keys[k] = d.next_keys[k];
    output->nholds = static_cast<std::int32_t>(d.holds.size());
    for (std::size_t h = 0; h < d.holds.size(); ++h)
      output->holds[h] = d.holds[h];
    std::int32_t slots = 0;
    std::int32_t targets = 0;
    for (std::size_t i = 0; i < d.members.size(); ++i) {
      const MemberDecision &m = d.members[i];
      BridgeMemberResult &r = output->members[i];
      r.state = m.state;
      r.shard = m.shard;
      r.granted = m.granted;
      r.removed = m.removed;
      r.changed = m.changed;
      r.row = m.row;
      r.notice = m.notice;
      r.epoch = m.epoch;
      r.hold_epoch = m.hold_epoch;
      r.slots_offset = slots;
      r.nslots = static_cast<std::int32_t>(m.slots.size());
      for (std::int32_t key : m.slots) output->slots[slots++] = key;
      r.targets_offset = targets;
      r.ntargets = static_cast<std::int32_t>(m.target_slots.size());
      for (std::int32_t key : m.target_slots)
        output->target_slots[targets++] = key;
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
