// Grants in plain mode, and when two of them can share no key.
//
// A plain-mode grant (shard s, count n) is the set of keys x with
// jump_hash(x, n) = s. Jump hash nests: jump_hash(x, m) for m >= n is either
// jump_hash(x, n) or >= n. Hence, for n <= m:
//   - (a, n) and (b, m) share no key exactly when b < n and a != b;
//   - (b, m) is inside (a, n) exactly when b < n and a == b (the keys of a
//     shard only shrink when the count grows), or n == 1 (every key);
//   - (a, n) is never inside (b, m) when n < m (its keys spread over the
//     new shards).
// Barrier mode is for key mappings other than jump hash: two grants are
// disjoint only at the same count with different shards, and one is inside
// another only when they are equal.
//
// Plain C++ with no PostgreSQL headers; unit-tested on its own.
#pragma once

#include <cstdint>

namespace shard_coordinator {

enum class HandoverMode : std::uint8_t {
  Exclusive = 0,  // a key goes to a member only after its holder released it
  Barrier = 1,    // the same, for key mappings that do not nest
  Immediate = 2,  // the old one-step reshard: grant at once
};

// "exclusive", "barrier", "immediate".
const char *handover_mode_name(HandoverMode mode) noexcept;
// false if `name` is none of them.
bool parse_handover_mode(const char *name, HandoverMode *mode) noexcept;

struct PlainGrant {
  std::int32_t shard = 0;
  std::int32_t count = 0;  // 0: no keys at all
};

// No key in both.
bool grants_disjoint(PlainGrant a, PlainGrant b, HandoverMode mode) noexcept;
// Every key of `inner` is in `outer`.
bool grant_inside(PlainGrant inner, PlainGrant outer,
                  HandoverMode mode) noexcept;

}  // namespace shard_coordinator
