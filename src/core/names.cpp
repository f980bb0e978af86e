#include "core/names.hpp"

namespace shard_coordinator {

NameProblem check_name(const char *name, std::size_t len,
                       std::size_t max) noexcept {
  if (len == 0) return NameProblem::Empty;
  if (len > max) return NameProblem::TooLong;
  for (std::size_t i = 0; i < len; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) return NameProblem::ControlCharacter;
  }
  return NameProblem::None;
}

std::uint64_t fnv1a64(const char *data, std::size_t len,
                      std::uint64_t seed) noexcept {
  std::uint64_t h = seed;
  for (std::size_t i = 0; i < len; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

namespace {

// Appends up to max readable characters of name to out at pos.
std::size_t append_readable(const char *name, std::size_t len, std::size_t max,
                            char *out, std::size_t pos) {
  std::size_t written = 0;
  for (std::size_t i = 0; i < len && written < max; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out[pos + written] = static_cast<char>(c);
      ++written;
    }
  }
  return pos + written;
}

// Appends 16 hex digits of h and the NUL; returns the length.
std::size_t append_hash(std::uint64_t h, char *out, std::size_t pos) {
  static const char hex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) {
    out[pos++] = hex[(h >> shift) & 0xf];
  }
  out[pos] = '\0';
  return pos;
}

}  // namespace

std::size_t channel_name(const char *cluster, std::size_t cluster_len,
                         const char *member, std::size_t member_len,
                         char (&out)[kChannelNameMax + 1]) noexcept {
  // The hash covers both names with a separator byte that text cannot hold
  // (NUL), so ("ab", "c") and ("a", "bc") differ.
  std::uint64_t h = fnv1a64(cluster, cluster_len);
  h = fnv1a64("\0", 1, h);
  h = fnv1a64(member, member_len, h);

  // "sc_" (3) + cluster (<= 20) + "_" + member (<= 22) + "_" + hash (16) = 63
  std::size_t pos = 0;
  out[pos++] = 's';
  out[pos++] = 'c';
  out[pos++] = '_';
  pos = append_readable(cluster, cluster_len, 20, out, pos);
  out[pos++] = '_';
  pos = append_readable(member, member_len, 22, out, pos);
  out[pos++] = '_';
  return append_hash(h, out, pos);
}

std::size_t cluster_channel_name(const char *cluster, std::size_t cluster_len,
                                 char (&out)[kChannelNameMax + 1]) noexcept {
  // "scc_" (4) + cluster (<= 42) + "_" + hash (16) = 63
  std::size_t pos = 0;
  out[pos++] = 's';
  out[pos++] = 'c';
  out[pos++] = 'c';
  out[pos++] = '_';
  pos = append_readable(cluster, cluster_len, 42, out, pos);
  out[pos++] = '_';
  return append_hash(fnv1a64(cluster, cluster_len), out, pos);
}

}  // namespace shard_coordinator
