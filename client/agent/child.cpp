#include "child.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proctree.hpp"
#include "signals.hpp"

namespace shard_coordinator::agent {

namespace {

// How often leftovers (and a child past its SIGKILL) are looked for again:
// SIGCHLD tells of the agent's own children only.
constexpr std::chrono::milliseconds kRecheck{20};

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           std::chrono::milliseconds kill_timeout)
    : argv_(std::move(argv)), kill_timeout_(kill_timeout) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    signal_tree(SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  kill_at_.reset();  // now
  check_leftovers(Clock::now());
}

std::string ChildProcess::start(const std::vector<std::string> &env) {
  // Everything the child needs is built before fork(): between fork() and
  // exec() only async-signal-safe calls are allowed (the library may run a
  // connecting thread that holds a malloc lock at that moment).
  std::vector<char *> args;
  for (const auto &arg : argv_) args.push_back(const_cast<char *>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char *> envp;
  for (const auto &entry : env)
    envp.push_back(const_cast<char *>(entry.c_str()));
  envp.push_back(nullptr);
  // exec() failures come back through a close-on-exec pipe: EOF means exec
  // succeeded, an int means errno.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0)
    return std::string("cannot create a pipe: ") + std::strerror(errno);
  pid_t parent = getpid();
  // The child has its own process group, so it is never the terminal's
  // foreground group: reading a terminal would stop it (SIGTTIN). Workers
  // get /dev/null instead; a redirected stdin (file, pipe) is kept.
  bool stdin_is_terminal = isatty(STDIN_FILENO) == 1;
  // Every signal blocked across fork(), so that the child runs none of the
  // agent's handlers (which would write into the agent's signal pipe) before
  // reset_signals_after_fork(). A signal sent meanwhile stays pending: the
  // child's gets its default action once the child unblocks it, the agent's
  // is handled once the mask is restored here.
  sigset_t all;
  sigset_t saved_mask;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved_mask);
  pid_t pid = fork();
  int fork_errno = errno;
  if (pid != 0) pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) {
    close(report[0]);
    close(report[1]);
    return std::string("cannot fork: ") + std::strerror(fork_errno);
  }
  if (pid == 0) {
    reset_signals_after_fork();
    close(report[0]);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The agent may have died between fork() and prctl().
    if (getppid() != parent) _exit(127);
    if (stdin_is_terminal) {
      int null_fd = open("/dev/null", O_RDONLY);
      if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        if (null_fd != STDIN_FILENO) close(null_fd);
      }
    }
    execvpe(args[0], args.data(), envp.data());
    int err = errno;
    ssize_t ignored = write(report[1], &err, sizeof err);
    (void)ignored;
    _exit(127);
  }
  close(report[1]);
  // Also set the group from the parent, so signal_group() works even before
  // the child has run.
  setpgid(pid, pid);
  int err = 0;
  ssize_t n;
  while ((n = read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return "cannot run " + argv_[0] + ": " + std::strerror(err);
  }
  pid_ = pid;
  group_ = pid;
  stopping_ = false;
  killed_ = false;
  leftovers_ = false;
  kill_at_.reset();
  return "";
}

void ChildProcess::signal_tree(int signo) {
  if (pid_ > 0 && kill(-pid_, signo) != 0) kill(pid_, signo);
  for (const ProcessInfo &p : descendants(getpid(), read_processes()))
    if (!p.zombie()) kill(p.pid, signo);
}

void ChildProcess::reap_orphans() {
  // Looks without reaping (WNOWAIT), so that the child itself is left for
  // reap(), which reports its exit.
  for (;;) {
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid == 0 || info.si_pid == pid_)
      return;
    int status;
    while (waitpid(info.si_pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void ChildProcess::check_leftovers(Clock::time_point now) {
  const pid_t self = getpid();
  const bool due = !kill_at_ || now >= *kill_at_;
  std::vector<ProcessInfo> all = read_processes();
  std::vector<ProcessInfo> left = descendants(self, all);
  // Members of the child's group that are no descendants: reparented to
  // init (the agent could not become a subreaper).
  for (const ProcessInfo &p : all)
    if (group_ > 0 && p.pgid == group_ && p.pid != self) {
      bool listed = false;
      for (const ProcessInfo &d : left) listed = listed || d.pid == p.pid;
      if (!listed) left.push_back(p);
    }
  leftovers_ = false;
  for (const ProcessInfo &p : left) {
    if (p.zombie()) {
      // Ended: the agent reaps its own; a live parent in the tree counts.
      int status;
      if (p.ppid == self && p.pid != pid_) waitpid(p.pid, &status, WNOHANG);
      continue;
    }
    if (due) kill(p.pid, SIGKILL);
    leftovers_ = true;
  }
  reap_orphans();
  if (!leftovers_) {
    kill_at_.reset();
    group_ = -1;
  }
}

void ChildProcess::stop(Clock::time_point now,
                        std::optional<Clock::time_point> kill_by_at) {
  if (pid_ <= 0 || stopping_) {
    if (kill_by_at) kill_by(*kill_by_at);
    return;
  }
  stopping_ = true;
  if (kill_by_at && *kill_by_at <= now) {
    // Past its deadline the child must not run again, not even its SIGTERM
    // handler: if it is stopped (a paused agent and child), a SIGCONT would
    // let it, and a woken child can run before the SIGKILL that follows.
    kill_by(*kill_by_at);
    return;
  }
  signal_tree(SIGTERM);
  // A stopped child (SIGSTOP, a debugger, a paused container) would act on
  // the SIGTERM only once continued; continue it now, as systemd does.
  signal_tree(SIGCONT);
  kill_at_ = now + kill_timeout_;
  if (kill_by_at) kill_by(*kill_by_at);
  on_timer(now);
}

void ChildProcess::kill_by(Clock::time_point at) {
  if (leftovers_) {
    if (!kill_at_ || at < *kill_at_) kill_at_ = at;
    check_leftovers(Clock::now());
    return;
  }
  if (pid_ <= 0 || killed_) return;
  stopping_ = true;
  if (!kill_at_ || at < *kill_at_) kill_at_ = at;
  on_timer(Clock::now());
}

void ChildProcess::on_timer(Clock::time_point now) {
  if (leftovers_) {
    check_leftovers(now);
    return;
  }
  if (pid_ <= 0 || !kill_at_ || now < *kill_at_) return;
  // Past the deadline: SIGKILL, and again a moment later to what forked
  // meanwhile, until the child is reaped.
  signal_tree(SIGKILL);
  killed_ = true;
  kill_at_ = now + kRecheck;
}

std::optional<ChildProcess::Clock::time_point> ChildProcess::next_deadline()
    const {
  if (leftovers_) return Clock::now() + kRecheck;
  if (pid_ <= 0) return std::nullopt;
  return kill_at_;
}

std::optional<ChildProcess::Exit> ChildProcess::reap() {
  Clock::time_point now = Clock::now();
  if (pid_ <= 0) {
    if (leftovers_) {
      check_leftovers(now);
    } else {
      reap_orphans();
    }
    return std::nullopt;
  }
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done != pid_) {
    reap_orphans();
    return std::nullopt;
  }
  // Descendants left (in the group or out of it) would otherwise keep
  // working on work this member may no longer hold. Asked to stop, they got
  // the SIGTERM too and have until the SIGKILL that was due for the child;
  // otherwise they are killed at once.
  bool graceful = stopping_ && !killed_ && kill_at_ && now < *kill_at_;
  if (!graceful) {
    kill(-pid_, SIGKILL);
    kill_at_.reset();  // now
  }
  Exit exit{status, stopping_};
  pid_ = -1;
  stopping_ = false;
  killed_ = false;
  check_leftovers(now);
  return exit;
}

std::string describe_wait_status(int wait_status) {
  if (WIFEXITED(wait_status))
    return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const char *name = sigabbrev_np(WTERMSIG(wait_status));
    return std::string("was killed by ") +
           (name ? std::string("SIG") + name
                 : "signal " + std::to_string(WTERMSIG(wait_status)));
  }
  return "ended (wait status " + std::to_string(wait_status) + ")";
}

}  // namespace shard_coordinator::agent
