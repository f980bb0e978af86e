// Fixed slot sets: dividing a cluster's slot keys (microshard numbers,
// island numbers, ...) among its active members. Plain C++ with no
// PostgreSQL headers; unit-tested on its own.
//
// Rules:
//  - cover: every key has exactly one owner, an active member;
//  - balance: the members' counts differ by at most one;
//  - minimal moves: a member keeps the keys it owned, up to its quota; only
//    keys of departed members, new keys and a member's excess move, to the
//    members under quota. The members with the most keys get the larger
//    quota (ceil) first, so no key moves that does not have to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shard_coordinator {

constexpr std::uint64_t kNoOwner = 0;

// keys: the cluster's slot keys, ascending and distinct.
// previous_owner: same length as keys, the owning member's id (join_seq) or
//   kNoOwner (a new key, or its owner left).
// members: ids of the active members (each > 0, distinct), in shard order.
// Returns the new owner of every key (kNoOwner only if members is empty).
std::vector<std::uint64_t> assign_slots(
    const std::vector<std::int32_t> &keys,
    const std::vector<std::uint64_t> &previous_owner,
    const std::vector<std::uint64_t> &members);

}  // namespace shard_coordinator
