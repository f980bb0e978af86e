// What the registrar does about a failed query, by SQLSTATE, and the one-line
// advice it gives the operator.
#pragma once

#include <string>
#include <string_view>

namespace shard_coordinator::client {

enum class Recovery {
  RetrySameConnection,  // the server is fine but not ready: back off, retry
  Reconnect,            // drop the connection, back off, connect again
  GiveUp,               // a configuration problem that retrying cannot fix
};

struct Diagnosis {
  Recovery recovery;
  std::string advice;  // what to do; empty when the server message suffices
};

Diagnosis diagnose(std::string_view sqlstate);

}  // namespace shard_coordinator::client
