#include <unistd.h>

#include <climits>
#include <cstdio>
#include <random>
#include <string>

#include "shard_coordinator/client.hpp"

namespace shard_coordinator::client {

std::string default_member_name() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    snprintf(host, sizeof host, "host");
  std::string name(host);
  // The short host name: "web-1", not "web-1.prod.example.com".
  name = name.substr(0, name.find('.'));
  // Member names may not hold control characters; host names should not.
  for (char &c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  // Host names are at most 64 bytes, so this stays far below the 127-byte
  // limit; the cut only guards against an unusual HOST_NAME_MAX.
  if (name.size() > 100) name.resize(100);
  std::random_device random;
  char suffix[48];
  snprintf(suffix, sizeof suffix, "-%ld-%06x", static_cast<long>(getpid()),
           static_cast<unsigned>(random() & 0xffffffu));
  return name + suffix;
}

}  // namespace shard_coordinator::client
