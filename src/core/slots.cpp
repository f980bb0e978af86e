#include "core/slots.hpp"

#include <algorithm>
#include <numeric>
#include <unordered_map>

namespace shard_coordinator {

std::vector<std::uint64_t> assign_slots(
    const std::vector<std::int32_t> &keys,
    const std::vector<std::uint64_t> &previous_owner,
    const std::vector<std::uint64_t> &members) {
  const std::size_t nkeys = keys.size();
  std::vector<std::uint64_t> owner(nkeys, kNoOwner);
  const std::size_t nmembers = members.size();
  if (nmembers == 0 || nkeys == 0) return owner;

  std::unordered_map<std::uint64_t, std::size_t> index_of;
  index_of.reserve(nmembers * 2);
  for (std::size_t m = 0; m < nmembers; ++m) index_of[members[m]] = m;

  // What each member holds now (keys in ascending order).
  std::vector<std::vector<std::size_t>> held(nmembers);
  for (std::size_t k = 0; k < nkeys; ++k) {
    const std::uint64_t prev =
        k < previous_owner.size() ? previous_owner[k] : kNoOwner;
    auto it = index_of.find(prev);
    if (it != index_of.end()) held[it->second].push_back(k);
  }

  // Quotas: the members holding the most get the larger quota first.
  const std::size_t base = nkeys / nmembers;
  const std::size_t extra = nkeys % nmembers;
  std::vector<std::size_t> order(nmembers);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&held](std::size_t a, std::size_t b) {
                     return held[a].size() > held[b].size();
                   });
  std::vector<std::size_t> quota(nmembers, base);
  for (std::size_t i = 0; i < extra; ++i) quota[order[i]] = base + 1;

  // Keep up to the quota (the lowest keys held); the rest go to the pool.
  std::vector<bool> taken(nkeys, false);
  std::vector<std::size_t> count(nmembers, 0);
  for (std::size_t m = 0; m < nmembers; ++m) {
    for (std::size_t k : held[m]) {
      if (count[m] == quota[m]) break;
      owner[k] = members[m];
      taken[k] = true;
      ++count[m];
    }
  }

  // Free keys, lowest first, to the members under quota, in shard order.
  std::size_t m = 0;
  for (std::size_t k = 0; k < nkeys; ++k) {
    if (taken[k]) continue;
    while (count[m] == quota[m]) ++m;
    owner[k] = members[m];
    ++count[m];
  }
  return owner;
}

}  // namespace shard_coordinator
