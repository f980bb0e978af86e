#include "core/grants.hpp"

#include <cstring>
#include <initializer_list>

namespace shard_coordinator {

const char *handover_mode_name(HandoverMode mode) noexcept {
  switch (mode) {
    case HandoverMode::Barrier:
      return "barrier";
    case HandoverMode::Immediate:
      return "immediate";
    case HandoverMode::Exclusive:
      break;
  }
  return "exclusive";
}

bool parse_handover_mode(const char *name, HandoverMode *mode) noexcept {
  for (HandoverMode m : {HandoverMode::Exclusive, HandoverMode::Barrier,
                         HandoverMode::Immediate}) {
    if (std::strcmp(name, handover_mode_name(m)) == 0) {
      *mode = m;
      return true;
    }
  }
  return false;
}

bool grants_disjoint(PlainGrant a, PlainGrant b, HandoverMode mode) noexcept {
  if (a.count == 0 || b.count == 0) return true;
  if (mode == HandoverMode::Barrier)
    return a.count == b.count && a.shard != b.shard;
  // Order them so that a has the smaller count.
  if (a.count > b.count) {
    PlainGrant t = a;
    a = b;
    b = t;
  }
  return b.shard < a.count && a.shard != b.shard;
}

bool grant_inside(PlainGrant inner, PlainGrant outer,
                  HandoverMode mode) noexcept {
  if (inner.count == 0) return true;
  if (outer.count == 0) return false;
  if (mode == HandoverMode::Barrier)
    return inner.shard == outer.shard && inner.count == outer.count;
  if (outer.count == 1) return true;  // every key
  if (inner.count < outer.count) return false;
  return inner.shard < outer.count && inner.shard == outer.shard;
}

}  // namespace shard_coordinator
