#include "proctree.hpp"

#include <dirent.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace shard_coordinator::agent {

bool parse_proc_stat(const std::string &line, ProcessInfo *out) {
  size_t open = line.find('(');
  size_t close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return false;
  std::istringstream head(line.substr(0, open));
  long pid = 0;
  if (!(head >> pid) || pid <= 0) return false;
  std::istringstream rest(line.substr(close + 1));
  char state = 0;
  long ppid = 0;
  long pgid = 0;
  if (!(rest >> state >> ppid >> pgid)) return false;
  out->pid = static_cast<pid_t>(pid);
  out->ppid = static_cast<pid_t>(ppid);
  out->pgid = static_cast<pid_t>(pgid);
  out->state = state;
  return true;
}

std::vector<ProcessInfo> read_processes() {
  std::vector<ProcessInfo> out;
  DIR *dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent *entry = readdir(dir)) {
    const char *name = entry->d_name;
    if (name[0] < '1' || name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // gone meanwhile
    ProcessInfo info;
    if (parse_proc_stat(line, &info)) out.push_back(info);
  }
  closedir(dir);
  return out;
}

std::vector<ProcessInfo> descendants(
    pid_t root, const std::vector<ProcessInfo> &processes) {
  std::multimap<pid_t, const ProcessInfo *> children;
  for (const ProcessInfo &p : processes) children.emplace(p.ppid, &p);
  std::vector<ProcessInfo> out;
  std::vector<pid_t> parents = {root};
  for (size_t i = 0; i < parents.size(); ++i) {
    auto range = children.equal_range(parents[i]);
    for (auto it = range.first; it != range.second; ++it) {
      // A pid seen twice (reused between two reads) would loop.
      if (it->second->pid == root) continue;
      out.push_back(*it->second);
      parents.push_back(it->second->pid);
      if (parents.size() > processes.size() + 1) return out;
    }
  }
  return out;
}

std::string become_subreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return std::string("prctl(PR_SET_CHILD_SUBREAPER): ") +
           std::strerror(errno);
  return "";
}

}  // namespace shard_coordinator::agent
