// The agent's process tree: which processes descend from it, as /proc shows
// them. With PR_SET_CHILD_SUBREAPER (become_subreaper()) a process whose
// parent dies is reparented to the agent rather than to init, so every
// process the child started stays a descendant of the agent, also one that
// left the child's process group or session (setsid, a daemonizing
// fork-and-exit). The agent starts no other processes, so its descendants
// are its child's process tree.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace shard_coordinator::agent {

struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  char state = '?';  // as /proc/<pid>/stat: R, S, D, Z, T, ...

  bool zombie() const { return state == 'Z' || state == 'X'; }
};

// One line of /proc/<pid>/stat; false when it cannot be read (the command
// name may hold spaces and parentheses: the fields follow the last ')').
bool parse_proc_stat(const std::string &line, ProcessInfo *out);

// Every process /proc lists now (those that vanish while it is read are
// left out).
std::vector<ProcessInfo> read_processes();

// The descendants of `root` among `processes` (not `root` itself), parents
// before their children.
std::vector<ProcessInfo> descendants(pid_t root,
                                     const std::vector<ProcessInfo> &processes);

// Makes this process a child subreaper. Returns an empty string, or why it
// could not.
std::string become_subreaper();

}  // namespace shard_coordinator::agent
