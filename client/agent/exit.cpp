#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "agent.hpp"

namespace shard_coordinator::agent {

// Why _exit() and not exit(): see agent.hpp.
void exit_process(int code) noexcept {
  std::cout.flush();
  std::clog.flush();
  std::cerr.flush();
  std::fflush(nullptr);  // every C stream: stdout and stderr above all
  _exit(code);
}

}  // namespace shard_coordinator::agent
