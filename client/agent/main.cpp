// shard-coordinator: the command-line agent (agent_main, in cli.cpp). It ends
// with exit_process(), not a return from main(): see agent.hpp.

#include "agent.hpp"

int main(int argc, char **argv) {
  shard_coordinator::agent::exit_process(
      shard_coordinator::agent::agent_main(argc, argv));
}
