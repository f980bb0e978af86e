// Key -> shard helpers: Lamping and Veach's jump consistent hash. Plain C++
// with no PostgreSQL headers; unit-tested on its own.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shard_coordinator {

// "A Fast, Minimal Memory, Consistent Hash Algorithm" (Lamping, Veach, 2014),
// as published: maps a 64-bit key to a bucket in [0, buckets). When buckets
// grows from n to n + 1, only 1/(n + 1) of the keys move. buckets must be >= 1.
std::int32_t jump_consistent_hash(std::uint64_t key,
                                  std::int32_t buckets) noexcept;

// The text variant hashes the bytes with 64-bit FNV-1a first (names.hpp):
// stable across PostgreSQL versions and platforms, unlike hashtext().
std::int32_t jump_consistent_hash_bytes(const char *data, std::size_t len,
                                        std::int32_t buckets) noexcept;

}  // namespace shard_coordinator
