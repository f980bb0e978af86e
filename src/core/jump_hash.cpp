#include "core/jump_hash.hpp"

#include "core/names.hpp"

namespace shard_coordinator {

std::int32_t jump_consistent_hash(std::uint64_t key,
                                  std::int32_t buckets) noexcept {
  std::int64_t b = -1;
  std::int64_t j = 0;
  while (j < buckets) {
    b = j;
    key = key * 2862933555777941757ULL + 1;
    j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                  (static_cast<double>(std::int64_t{1} << 31) /
                                   static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<std::int32_t>(b);
}

std::int32_t jump_consistent_hash_bytes(const char *data, std::size_t len,
                                        std::int32_t buckets) noexcept {
  return jump_consistent_hash(fnv1a64(data, len), buckets);
}

}  // namespace shard_coordinator
