// Unit tests of name validation, the FNV-1a hash and LISTEN channel names
// (src/names.hpp).

#include "core/names.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <utility>

namespace sc = shard_coordinator;
using sc::NameProblem;

namespace {

NameProblem Check(const std::string &s, std::size_t max) {
  return sc::check_name(s.data(), s.size(), max);
}

std::uint64_t Fnv(const std::string &s) {
  return sc::fnv1a64(s.data(), s.size());
}

std::string Channel(const std::string &cluster, const std::string &member) {
  char out[sc::kChannelNameMax + 1];
  std::memset(out, 'X', sizeof out);
  const std::size_t len = sc::channel_name(cluster.data(), cluster.size(),
                                           member.data(), member.size(), out);
  // The returned length is that of the NUL-terminated string written.
  EXPECT_LE(len, sc::kChannelNameMax);
  EXPECT_EQ(out[len], '\0');
  EXPECT_EQ(std::strlen(out), len);
  return std::string(out, len);
}

// A valid unquoted, lower-case PostgreSQL identifier of at most 63 bytes,
// usable verbatim in LISTEN.
::testing::AssertionResult IsValidChannel(const std::string &ch) {
  if (ch.empty()) return ::testing::AssertionFailure() << "empty";
  if (ch.size() > 63) {
    return ::testing::AssertionFailure()
           << "'" << ch << "' is " << ch.size() << " bytes";
  }
  if (!(ch[0] >= 'a' && ch[0] <= 'z')) {
    return ::testing::AssertionFailure()
           << "'" << ch << "' does not start with a letter";
  }
  for (char c : ch) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return ::testing::AssertionFailure()
             << "'" << ch << "' holds byte " << static_cast<int>(c);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// check_name

TEST(CheckName, EmptyIsRejected) {
  EXPECT_EQ(sc::check_name("", 0, sc::kClusterNameMax), NameProblem::Empty);
  EXPECT_EQ(sc::check_name("abc", 0, sc::kMemberNameMax), NameProblem::Empty);
}

TEST(CheckName, LengthLimitIsInclusive) {
  for (std::size_t max : {sc::kClusterNameMax, sc::kMemberNameMax}) {
    SCOPED_TRACE("max=" + std::to_string(max));
    EXPECT_EQ(Check(std::string(max, 'a'), max), NameProblem::None);
    EXPECT_EQ(Check(std::string(max + 1, 'a'), max), NameProblem::TooLong);
    EXPECT_EQ(Check(std::string(max + 1000, 'a'), max), NameProblem::TooLong);
    EXPECT_EQ(Check("a", max), NameProblem::None);
  }
  EXPECT_EQ(sc::kClusterNameMax, 63u);
  EXPECT_EQ(sc::kMemberNameMax, 127u);
}

TEST(CheckName, LimitCountsBytesNotCharacters) {
  // "é" is two bytes in UTF-8.
  std::string two_byte;
  for (int i = 0; i < 31; ++i) two_byte += "\xC3\xA9";
  two_byte += "x";  // 63 bytes
  EXPECT_EQ(Check(two_byte, sc::kClusterNameMax), NameProblem::None);
  EXPECT_EQ(Check(two_byte + "y", sc::kClusterNameMax), NameProblem::TooLong);
  EXPECT_EQ(Check(two_byte + "\xC3\xA9", sc::kClusterNameMax),
            NameProblem::TooLong);
}

TEST(CheckName, ControlCharactersAreRejected) {
  for (int c : {0x00, 0x01, 0x07, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f}) {
    SCOPED_TRACE("byte=" + std::to_string(c));
    std::string s = "ab";
    s += static_cast<char>(c);
    s += "cd";
    EXPECT_EQ(Check(s, sc::kMemberNameMax), NameProblem::ControlCharacter);
    EXPECT_EQ(Check(std::string(1, static_cast<char>(c)), 10),
              NameProblem::ControlCharacter);
    // At either end too.
    EXPECT_EQ(Check(static_cast<char>(c) + std::string("abc"), 10),
              NameProblem::ControlCharacter);
    EXPECT_EQ(Check(std::string("abc") + static_cast<char>(c), 10),
              NameProblem::ControlCharacter);
  }
}

TEST(CheckName, EveryAsciiControlByteIsRejectedAndEveryOtherAccepted) {
  for (int c = 0; c < 256; ++c) {
    const std::string s = std::string("x") + static_cast<char>(c);
    const bool control = c < 0x20 || c == 0x7f;
    EXPECT_EQ(Check(s, 10),
              control ? NameProblem::ControlCharacter : NameProblem::None)
        << "byte " << c;
  }
}

TEST(CheckName, MultiByteUtf8IsAccepted) {
  EXPECT_EQ(Check("caf\xC3\xA9", 63), NameProblem::None);               // café
  EXPECT_EQ(Check("\xE6\x97\xA5\xE6\x9C\xAC", 63), NameProblem::None);  // 日本
  EXPECT_EQ(Check("\xF0\x9F\x98\x80", 63), NameProblem::None);          // emoji
  EXPECT_EQ(Check("\xE2\x80\xA8", 63), NameProblem::None);  // U+2028
}

TEST(CheckName, QuotesSpacesAndPunctuationAreAccepted) {
  EXPECT_EQ(Check("it's \"quoted\"", 63), NameProblem::None);
  EXPECT_EQ(Check(" leading and trailing ", 63), NameProblem::None);
  EXPECT_EQ(Check("a\\b;DROP TABLE x;--", 63), NameProblem::None);
  EXPECT_EQ(Check("worker-1.eu-west:5432/%s", 63), NameProblem::None);
  EXPECT_EQ(Check(" ", 63), NameProblem::None);
  EXPECT_EQ(Check("~", 63), NameProblem::None);
}

// ---------------------------------------------------------------------------
// fnv1a64: known answers from the published FNV test vectors
// (http://www.isthe.com/chongo/src/fnv/test_fnv.c, FNV-1a 64-bit).

TEST(Fnv1a64, PublishedTestVectors) {
  EXPECT_EQ(Fnv(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv("b"), 0xaf63df4c8601f1a5ULL);
  EXPECT_EQ(Fnv("c"), 0xaf63de4c8601eff2ULL);
  EXPECT_EQ(Fnv("d"), 0xaf63d94c8601e773ULL);
  EXPECT_EQ(Fnv("e"), 0xaf63d84c8601e5c0ULL);
  EXPECT_EQ(Fnv("f"), 0xaf63db4c8601ead9ULL);
  EXPECT_EQ(Fnv("fo"), 0x08985907b541d342ULL);
  EXPECT_EQ(Fnv("foo"), 0xdcb27518fed9d577ULL);
  EXPECT_EQ(Fnv("foob"), 0xdd120e790c2512afULL);
  EXPECT_EQ(Fnv("fooba"), 0xcac165afa2fef40aULL);
  EXPECT_EQ(Fnv("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(Fnv(std::string("\0", 1)), 0xaf63bd4c8601b7dfULL);
  EXPECT_EQ(Fnv(std::string("a\0", 2)), 0x089be207b544f1e4ULL);
  EXPECT_EQ(Fnv(std::string("foobar\0", 7)), 0x34531ca7168b8f38ULL);
  EXPECT_EQ(Fnv("chongo was here!\n"), 0x46810940eff5f915ULL);
}

TEST(Fnv1a64, HighBytesAreTreatedAsUnsigned) {
  // Independent reference: FNV-1a over unsigned bytes.
  auto reference = [](const std::string &s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    return h;
  };
  const std::string s = "\xff\x80\xC3\xA9\x7f\x01 z";
  EXPECT_EQ(Fnv(s), reference(s));
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(Fnv(all), reference(all));
}

TEST(Fnv1a64, SeedContinuesAHash) {
  const std::uint64_t h = Fnv("foo");
  EXPECT_EQ(sc::fnv1a64("bar", 3, h), Fnv("foobar"));
  EXPECT_EQ(sc::fnv1a64("", 0, 12345), 12345u);
}

// ---------------------------------------------------------------------------
// channel_name

TEST(ChannelName, IsDeterministic) {
  EXPECT_EQ(Channel("orders", "worker-1"), Channel("orders", "worker-1"));
  EXPECT_EQ(Channel("", ""), Channel("", ""));
}

TEST(ChannelName, IsAValidIdentifierForOrdinaryNames) {
  for (const auto &p :
       std::initializer_list<std::pair<std::string, std::string>>{
           {"orders", "worker-1"},
           {"Orders", "Worker_1"},
           {"1cluster", "2member"},
           {"", ""},
           {"---", "..."},
           {"caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC"},
           {"it's \"q\"", "a\\b c"},
           {"_", "_"}}) {
    EXPECT_TRUE(IsValidChannel(Channel(p.first, p.second)))
        << p.first << " / " << p.second;
  }
}

TEST(ChannelName, StaysWithin63BytesForHugeNames) {
  const std::string big_a(1000, 'a');
  const std::string big_z(1000, 'Z');
  std::string mixed;
  for (int i = 0; i < 1000; ++i) mixed += static_cast<char>("aZ9_-\xC3"[i % 6]);
  const std::string *all[] = {&big_a, &big_z, &mixed};
  for (const std::string *c : all) {
    for (const std::string *m : all) {
      EXPECT_TRUE(IsValidChannel(Channel(*c, *m)));
    }
  }
  // Long names that share a long prefix still get distinct channels.
  EXPECT_NE(Channel(big_a, big_a + "1"), Channel(big_a, big_a + "2"));
  EXPECT_NE(Channel(big_a + "1", big_a), Channel(big_a + "2", big_a));
}

TEST(ChannelName, ReadablePartsAppear) {
  const std::string ch = Channel("Orders", "Worker-7");
  EXPECT_EQ(ch.rfind("sc_", 0), 0u) << ch;
  EXPECT_NE(ch.find("orders"), std::string::npos) << ch;
  EXPECT_NE(ch.find("worker7"), std::string::npos) << ch;
  // Ends with "_" and 16 hex digits.
  ASSERT_GE(ch.size(), 17u);
  EXPECT_EQ(ch[ch.size() - 17], '_') << ch;
  for (std::size_t i = ch.size() - 16; i < ch.size(); ++i) {
    EXPECT_TRUE((ch[i] >= '0' && ch[i] <= '9') ||
                (ch[i] >= 'a' && ch[i] <= 'f'))
        << ch;
  }
}

TEST(ChannelName, BoundaryBetweenNamesMatters) {
  EXPECT_NE(Channel("ab", "c"), Channel("a", "bc"));
  EXPECT_NE(Channel("", "abc"), Channel("abc", ""));
  EXPECT_NE(Channel("a", "b"), Channel("b", "a"));
  // Same readable parts, boundary only visible in the hash.
  EXPECT_NE(Channel("x-", "y"), Channel("x", "-y"));
  EXPECT_NE(Channel("x\xC3\xA9", "y"), Channel("x", "\xC3\xA9y"));
  EXPECT_NE(Channel("--", ""), Channel("", "--"));
}

TEST(ChannelName, DifferentClustersWithSameMemberDiffer) {
  EXPECT_NE(Channel("orders", "w1"), Channel("billing", "w1"));
  // Names that read the same after dropping case and punctuation still differ.
  EXPECT_NE(Channel("Orders", "w1"), Channel("orders", "w1"));
  EXPECT_NE(Channel("or-ders", "w1"), Channel("orders", "w1"));
  EXPECT_NE(Channel("orders", "w-1"), Channel("orders", "w1"));
  EXPECT_NE(Channel("caf\xC3\xA9", "w1"), Channel("caf\xC3\xA8", "w1"));
}

TEST(ChannelName, NoCollisionsAmongManyPairs) {
  std::mt19937_64 rng(42);
  std::set<std::pair<std::string, std::string>> pairs;
  std::set<std::string> channels;
  const std::string alphabet = "abAB01-_ .\"\xC3\xA9";
  while (pairs.size() < 20000) {
    std::string c, m;
    const std::size_t lc = rng() % 6, lm = rng() % 6;
    for (std::size_t i = 0; i < lc; ++i) c += alphabet[rng() % alphabet.size()];
    for (std::size_t i = 0; i < lm; ++i) m += alphabet[rng() % alphabet.size()];
    if (!pairs.insert({c, m}).second) continue;
    const std::string ch = Channel(c, m);
    ASSERT_TRUE(IsValidChannel(ch));
    ASSERT_TRUE(channels.insert(ch).second)
        << "collision for (" << c << ", " << m << "): " << ch;
  }
}

std::string ClusterChannel(const std::string &cluster) {
  char out[sc::kChannelNameMax + 1];
  std::memset(out, 'X', sizeof out);
  const std::size_t len =
      sc::cluster_channel_name(cluster.data(), cluster.size(), out);
  EXPECT_LE(len, sc::kChannelNameMax);
  EXPECT_EQ(out[len], '\0');
  EXPECT_EQ(std::strlen(out), len);
  return std::string(out, len);
}

TEST(ClusterChannelName, IsAValidIdentifierWithReadablePrefix) {
  for (const std::string &c : std::initializer_list<std::string>{
           "orders", "Orders", "", "---", "caf\xC3\xA9", "it's \"q\"",
           std::string(1000, 'a'), std::string(1000, 'Z')}) {
    const std::string ch = ClusterChannel(c);
    EXPECT_TRUE(IsValidChannel(ch)) << c;
    EXPECT_EQ(ch.rfind("scc_", 0), 0u) << ch;
    EXPECT_EQ(ch[ch.size() - 17], '_') << ch;
  }
  EXPECT_NE(ClusterChannel("Orders").find("orders"), std::string::npos);
  EXPECT_EQ(ClusterChannel("orders"), ClusterChannel("orders"));
}

TEST(ClusterChannelName, DistinctPerClusterAndFromEveryMemberChannel) {
  std::mt19937_64 rng(7);
  std::set<std::string> clusters;
  std::set<std::string> channels;
  const std::string alphabet = "abAB01-_ .\"\xC3\xA9";
  while (clusters.size() < 5000) {
    std::string c;
    const std::size_t lc = rng() % 8;
    for (std::size_t i = 0; i < lc; ++i) c += alphabet[rng() % alphabet.size()];
    if (!clusters.insert(c).second) continue;
    const std::string ch = ClusterChannel(c);
    ASSERT_TRUE(channels.insert(ch).second) << "collision for " << c;
    // A member channel starts with "sc_", never "scc_"; even a member whose
    // readable parts spell the cluster channel does not get it.
    EXPECT_NE(Channel(c, ""), ch);
    EXPECT_NE(Channel("c", c), ch);
  }
}

}  // namespace
