// Cluster and member names: their limits, their validation, and the LISTEN
// channel derived from them. Plain C++ with no PostgreSQL headers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shard_coordinator {

// Limits in bytes (of the database encoding), documented in README.md.
constexpr std::size_t kClusterNameMax = 63;
constexpr std::size_t kMemberNameMax = 127;

// A LISTEN channel name is at most NAMEDATALEN - 1 = 63 bytes.
constexpr std::size_t kChannelNameMax = 63;

enum class NameProblem { None, Empty, TooLong, ControlCharacter };

// Names are any text of 1..max bytes without ASCII control characters
// (they would garble logs and `status` tables).
NameProblem check_name(const char *name, std::size_t len,
                       std::size_t max) noexcept;

// 64-bit FNV-1a over bytes: stable across versions and platforms, documented.
std::uint64_t fnv1a64(const char *data, std::size_t len,
                      std::uint64_t seed = 0xcbf29ce484222325ULL) noexcept;

// The channel of (cluster, member): "sc_" + readable prefixes of both names
// (lower-case ASCII letters and digits only) + "_" + 16 hex digits of a hash
// of both names. Always a valid unquoted identifier of at most 63 bytes.
// Writes a NUL-terminated string into out and returns its length.
std::size_t channel_name(const char *cluster, std::size_t cluster_len,
                         const char *member, std::size_t member_len,
                         char (&out)[kChannelNameMax + 1]) noexcept;

// The channel of a whole cluster, on which a reshard that changes num_shards
// sends one notice for every member whose own assignment did not change:
// "scc_" + readable prefix of the name (<= 42) + "_" + 16 hex digits of a hash
// of the name. Never equal to a member channel ("scc_" vs "sc_"). Same
// contract as channel_name().
std::size_t cluster_channel_name(const char *cluster, std::size_t cluster_len,
                                 char (&out)[kChannelNameMax + 1]) noexcept;

}  // namespace shard_coordinator
