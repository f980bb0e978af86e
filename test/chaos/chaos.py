#!/usr/bin/env python3
"""Chaos test of shard_coordinator and its agent, with an invariant checker.

    scripts/with-pg.sh python3 test/chaos/chaos.py --duration 90
    scripts/soak.sh 30m                      # the same, longer

Needs a server with the extension (the PG* variables, as scripts/with-pg.sh
exports them), the agent `shard-coordinator` on the PATH (make install-client) and
psql. Python 3 standard library only.

What it does
------------
Three clusters (settings below), 18 agents each: `shard-coordinator run`
with test/chaos/child.sh as the worker, which appends "acting as shard K of
N epoch E" lines with a wall-clock timestamp to a file of its own every 50 ms
while it runs. For --duration seconds it injects random faults into running
agents:

  kill    SIGKILL of the agent (its child dies with it: PR_SET_PDEATHSIG);
          restarted 0.2-2 s later, half the time under the same member name;
  freeze  SIGSTOP of the agent and of its child's process group (a paused
          machine) for longer than heartbeat_interval + grace_period, so
          the server expires the member and gives its shard away while it
          is frozen; then SIGCONT, by default of the agent first: it must
          see that its lease ran out and kill its (still frozen) child
          before that child runs again (--freeze-mode, see below);
  term    SIGTERM: the agent stops its child, leaves, exits 0; restarted
          0.2-2 s later like a killed one.

When the time is up, frozen agents are resumed, stopping ones finish, and
one more agent per cluster is killed (so the convergence below includes an
expiry); the dead are not restarted.

At most --max-down agents of a cluster are down (killed, frozen, stopping)
at once. Meanwhile a checker samples the `members` and `clusters` views
every --sample-interval seconds over one psql session.

Invariants (each is one TAP line; any violation fails the run)
--------------------------------------------------------------
- view: in every sample, the shards held in a cluster are exactly
  0 .. num_shards-1, each held by one member;
- view: a cluster's epoch never goes back, nor a member's;
- children: no two worker processes act on the same (cluster, shard) at
  overlapping wall-clock times (from the children's own logs: a process
  acts from its first line to its last); a member acting after its lease
  ran out while another has been given its shard shows up here; handovers
  between live members are bounded instead (below);
- agents resumed after a freeze kill their child before it runs again
  (within 5 s), in --freeze-mode agent-first;
- epochs never go back in what an agent reports (its -v log) nor in the
  SHARD_EPOCH its successive children get; no shard is given to two
  members at the same epoch;
- no agent exits by itself; SIGTERM ends an agent with status 0 within 10 s;
- after the chaos stops, each cluster converges within
  heartbeat_interval + grace_period + reshard_interval + 1 s: the members
  are exactly the surviving agents, min(survivors, max_shards) of them
  active with the shards 0..n-1 (the rest standby), each active agent running
  one child whose environment (SHARD_INDEX, SHARD_COUNT, SHARD_EPOCH,
  SHARD_CLUSTER, SHARD_MEMBER) matches the view, no child for standbys;
- finally every agent gets SIGTERM: all exit 0 and the clusters are empty.

Handovers (README, "Guarantees"): the promise is one holder per shard *per
epoch*. Members hear of a reshard at slightly different moments, so across
epochs a live member can still be stopping its old work while another
starts; with jump_hash over num_shards every change of num_shards moves keys
between live members this way. fence() with SHARD_EPOCH is what makes
commits exclusive across epochs. On shard numbers this shows when reshard N
moves member A off shard k and reshard N+1, a few ms later with
reshard_interval = 0, gives k to B while A's child is still stopping. Such
overlaps (the earlier process belonged to a live, unfaulted member whose
agent had asked it to stop) are counted and measured, and are a violation
only when longer than the old holder needs to learn of the move and stop:
heartbeat_interval + the agents' kill timeout (1 s) + 0.5 s.

--freeze-mode agent-first (the default) tests self-fencing after a pause.
`together` resumes the child's group and the agent at once and
`agent-only` never stops the child: both show the limit README documents
(a frozen agent cannot fence its child; only fence() in the worker's
transactions protects against that), so they are expected to report
overlaps; they are there to show that the checker catches them.

Output: "# " diagnostics, TAP lines, a summary, and "N passed, N failed".
The exit status is 1 when a check failed. The work directory (logs of every
agent and child) is removed on success unless --keep; on failure it is kept
and named.
"""

import argparse
import collections
import datetime
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "child.sh")

# name, reshard_interval, max_shards (None: no cap; a number: agents - 4)
CLUSTER_TEMPLATES = [
    ("chaos_a", "0", None),
    ("chaos_b", "300ms", None),
    ("chaos_c", "0", "cap"),
]

TERM_TIMEOUT = 10.0  # s an agent may take to exit after SIGTERM
KILL_TIMEOUT = 1.0   # s the agents give a child between SIGTERM and SIGKILL
HANDOVER_SLACK = 0.5  # s of scheduling delay allowed at a handover
THAW_TIMEOUT = 5.0   # s an agent may take to kill its child after SIGCONT
MAX_EXAMPLES = 10    # violations described in full, per kind


def say(message):
    print(f"# {message}", flush=True)


def seconds(text):
    """'200ms', '1.5s', '2min', '0' -> seconds (float)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|min|m|h)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, None: 1, "min": 60, "m": 60,
                    "h": 3600}[m.group(2)]


def proc_state(pid):
    """The state letter of /proc/pid/stat, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def children_of(pid):
    found = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    found.update(int(p) for p in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return sorted(p for p in found if alive(p))


def same_exe(a, b):
    try:
        return os.readlink(f"/proc/{a}/exe") == os.readlink(f"/proc/{b}/exe")
    except OSError:
        return False


def started_up(agent):
    """True once the agent has logged its first line (run_command() logs it
    right after installing its signal handlers)."""
    try:
        return os.path.getsize(agent.log_path) > 0
    except OSError:
        return False


def environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def wait_for(predicate, timeout, poll=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll)


class QueryError(Exception):
    pass


class Psql:
    """One psql session fed through a pipe: no fork and no new backend per
    query."""

    def __init__(self, errlog):
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-F", "\t",
             "-v", "ON_ERROR_STOP=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog,
            text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(sql.strip().rstrip(";")
                              + ";\n\\echo __sc_end__ :ERROR\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise QueryError("psql exited")
            line = line.rstrip("\n")
            if line.startswith("__sc_end__"):
                if line.split()[1:] != ["false"]:
                    raise QueryError(f"query failed (see psql.log): {sql}")
                return rows
            rows.append(line.split("\t"))

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


VIEW_SQL = """
SELECT 'm', cluster, member, coalesce(shard::text, '-'), num_shards,
       coalesce(epoch::text, '-'), state
  FROM shard_coordinator.members WHERE cluster LIKE 'chaos%'
UNION ALL
SELECT 'c', cluster, '', '-', num_shards, epoch::text, ''
  FROM shard_coordinator.clusters WHERE cluster LIKE 'chaos%'
"""


def parse_view(rows):
    """-> (members: cluster -> {member: (shard|None, num_shards, epoch|None,
    state)}, clusters: cluster -> (epoch, num_shards))"""
    members = collections.defaultdict(dict)
    clusters = {}
    for row in rows:
        kind, cluster, member, shard, n, epoch, state = row
        if kind == "m":
            members[cluster][member] = (
                None if shard == "-" else int(shard), int(n),
                None if epoch == "-" else int(epoch), state)
        else:
            clusters[cluster] = (int(epoch), int(n))
    return members, clusters


class Violations:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = collections.Counter()
        self.examples = collections.defaultdict(list)

    def add(self, kind, detail):
        with self.lock:
            self.count[kind] += 1
            if len(self.examples[kind]) < MAX_EXAMPLES:
                self.examples[kind].append(detail)
                say(f"VIOLATION [{kind}] {detail}")


class Sampler(threading.Thread):
    """Samples the views continuously and checks the view invariants."""

    def __init__(self, interval, violations, errlog):
        super().__init__(daemon=True)
        self.interval = interval
        self.violations = violations
        self.psql = Psql(errlog)
        self.stop_event = threading.Event()
        self.samples = 0
        self.errors = 0
        self.cluster_epochs = {}   # cluster -> last epoch
        self.first_epochs = {}
        self.epochs_seen = collections.defaultdict(set)
        self.epoch_steps = collections.Counter()  # samples where it grew
        self.member_epochs = {}    # (cluster, member) -> last epoch
        self.durations = []
        self.last_at = None
        self.max_gap = 0.0  # longest time between two samples

    def run(self):
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                rows = self.psql.query(VIEW_SQL)
            except QueryError:
                self.errors += 1
                if self.psql.proc.poll() is not None:
                    return
                self.stop_event.wait(self.interval)
                continue
            done = time.monotonic()
            self.durations.append(done - started)
            if self.last_at is not None:
                self.max_gap = max(self.max_gap, done - self.last_at)
            self.last_at = done
            self.check(rows, time.time())
            self.stop_event.wait(max(0.0, self.interval -
                                     (time.monotonic() - started)))

    def check(self, rows, at):
        self.samples += 1
        members, clusters = parse_view(rows)
        stamp = time.strftime("%H:%M:%S", time.localtime(at)) + \
            f".{int(at * 1000) % 1000:03d}"
        for cluster, ms in members.items():
            held = sorted((m[0], name) for name, m in ms.items()
                          if m[0] is not None)
            shards = [s for s, _ in held]
            counts = {m[1] for m in ms.values()}
            n = next(iter(counts))
            if shards != list(range(n)):
                dup = [s for s, c in collections.Counter(shards).items()
                       if c > 1]
                self.violations.add(
                    "view-shards",
                    f"{stamp} {cluster}: num_shards {n}, held "
                    f"{[(s, who) for s, who in held]}"
                    + (f" (shard(s) {dup} held twice)" if dup else ""))
            for name, (shard, _, epoch, state) in ms.items():
                if epoch is None:
                    continue
                key = (cluster, name)
                last = self.member_epochs.get(key)
                if last is not None and epoch < last:
                    self.violations.add(
                        "view-epoch",
                        f"{stamp} {cluster}/{name}: epoch {last} -> {epoch}")
                self.member_epochs[key] = epoch
        for cluster, (epoch, n) in clusters.items():
            last = self.cluster_epochs.get(cluster)
            if last is not None and epoch < last:
                self.violations.add(
                    "view-epoch", f"{stamp} {cluster}: epoch {last} -> {epoch}")
            if last is not None and epoch > last:
                self.epoch_steps[cluster] += 1
            self.first_epochs.setdefault(cluster, epoch)
            self.cluster_epochs[cluster] = epoch
            self.epochs_seen[cluster].add(epoch)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=10)
        self.psql.close()


class Agent:
    """One `shard-coordinator run` process."""

    def __init__(self, chaos, cluster, member):
        self.chaos = chaos
        self.cluster = cluster
        self.member = member
        chaos.agent_seq += 1
        self.log_path = os.path.join(chaos.dir, "agents",
                                     f"{member}.{chaos.agent_seq}.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [chaos.agent_bin, "-v", "run", "--cluster", cluster,
                 "--member", member, "--kill-timeout",
                 f"{int(KILL_TIMEOUT * 1000)}ms", "--", CHILD],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=chaos.env, start_new_session=True)
        self.pid = self.proc.pid
        self.state = "running"  # frozen, thawing, terminating, dead
        self.due = None
        self.frozen_children = []
        self.thawed_at = None
        self.restart_name = None

    def running(self):
        return self.state == "running" and self.proc.poll() is None


class Chaos:
    def __init__(self, args, workdir):
        self.args = args
        self.dir = workdir
        self.rng = random.Random(args.seed)
        self.agent_bin = args.agent
        self.env = dict(os.environ, CHAOS_DIR=workdir,
                        CHAOS_TICK=f"{args.tick:.3f}")
        self.agent_seq = 0
        self.agents = []
        self.faults = collections.Counter()
        self.events = []  # (wall time, what, cluster, member, pid)
        self.violations = Violations()
        self.anomalies = collections.Counter()
        self.fence_delays = []
        self.name_seq = collections.Counter()
        self.errlog = open(os.path.join(workdir, "psql.log"), "w")
        self.psql = Psql(self.errlog)
        self.hb = args.heartbeat
        self.grace = args.grace
        self.clusters = {}  # name -> (reshard seconds, max_shards or None)
        for i in range(args.clusters):
            name, reshard, cap = CLUSTER_TEMPLATES[i % len(CLUSTER_TEMPLATES)]
            if i >= len(CLUSTER_TEMPLATES):
                name += str(i // len(CLUSTER_TEMPLATES))
            cap = max(1, args.agents_per_cluster - 4) if cap else None
            self.clusters[name] = (seconds(reshard), cap, reshard)
        os.makedirs(os.path.join(workdir, "agents"))
        for name in self.clusters:
            os.makedirs(os.path.join(workdir, name))

    # ----- setup -----

    def configure(self):
        for name, (_, cap, reshard) in self.clusters.items():
            extra = (f", max_shards => {cap}" if cap
                     else ", clear_max_shards => true")
            self.psql.query(
                f"SELECT shard_coordinator.configure('{name}', "
                f"heartbeat_interval => '{int(self.hb * 1000)}ms', "
                f"grace_period => '{int(self.grace * 1000)}ms', "
                f"reshard_interval => '{reshard}'{extra})")

    def event(self, what, agent):
        self.events.append((time.time(), what, agent.cluster, agent.member,
                            agent.pid))

    def start_agent(self, cluster, member):
        agent = Agent(self, cluster, member)
        self.agents.append(agent)
        self.event("start", agent)
        return agent

    def new_member_name(self, cluster):
        self.name_seq[cluster] += 1
        return f"{cluster}-m{self.name_seq[cluster]:03d}"

    # ----- faults -----

    def down_count(self, cluster):
        return sum(1 for a in self.agents if a.cluster == cluster
                   and a.state in ("frozen", "thawing", "terminating", "dead")
                   and not (a.state == "dead" and a.due is None))

    def inject(self):
        candidates = [a for a in self.agents if a.running()
                      and self.down_count(a.cluster) < self.args.max_down]
        if not candidates:
            return
        agent = self.rng.choice(candidates)
        kind = self.rng.choices(["kill", "freeze", "term"],
                                weights=[3, 3, 3])[0]
        getattr(self, "fault_" + kind)(agent)

    def restart_later(self, agent):
        agent.state = "dead"
        agent.due = time.monotonic() + self.rng.uniform(0.2, 2.0)
        agent.restart_name = (agent.member if self.rng.random() < 0.5
                              else self.new_member_name(agent.cluster))

    def fault_kill(self, agent):
        self.faults["SIGKILL"] += 1
        self.event("SIGKILL", agent)
        os.kill(agent.pid, signal.SIGKILL)
        agent.proc.wait()
        self.restart_later(agent)

    def fault_term(self, agent):
        self.faults["SIGTERM"] += 1
        self.event("SIGTERM", agent)
        os.kill(agent.pid, signal.SIGTERM)
        agent.state = "terminating"
        agent.due = time.monotonic() + TERM_TIMEOUT

    def fault_freeze(self, agent):
        os.kill(agent.pid, signal.SIGSTOP)
        if not wait_for(lambda: proc_state(agent.pid) in ("T", "t", None), 5):
            self.anomalies["agent did not stop on SIGSTOP"] += 1
        kids = children_of(agent.pid)
        if any(same_exe(kid, agent.pid) for kid in kids):
            # Between fork() and exec() of a child the agent waits for the
            # exec (ChildProcess::start reads a close-on-exec pipe): with
            # that child frozen and the agent resumed first, the agent would
            # wait for it. Not a moment a freeze can be judged fairly.
            os.kill(agent.pid, signal.SIGCONT)
            self.anomalies["freeze skipped: the agent was between fork() "
                           "and exec() of a child"] += 1
            return
        if self.args.freeze_mode != "agent-only":
            for kid in kids:
                try:
                    os.killpg(kid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
        self.faults["SIGSTOP"] += 1
        self.event("SIGSTOP", agent)
        agent.state = "frozen"
        agent.frozen_children = kids
        lease = self.hb + self.grace
        agent.due = time.monotonic() + self.rng.uniform(lease + 0.3,
                                                        lease + 2.0)

    def thaw(self, agent):
        self.event("SIGCONT", agent)
        mode = self.args.freeze_mode
        if mode == "together":
            self.cont_children(agent)
        os.kill(agent.pid, signal.SIGCONT)
        agent.thawed_at = time.monotonic()
        if mode == "agent-first":
            agent.state = "thawing"
            agent.due = agent.thawed_at + THAW_TIMEOUT
        else:
            agent.frozen_children = []
            agent.state = "running"

    def cont_children(self, agent):
        for kid in agent.frozen_children:
            try:
                os.killpg(kid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def handle_due(self, restarts=True):
        now = time.monotonic()
        for agent in list(self.agents):
            if agent.state == "running" and agent.proc.poll() is not None:
                self.violations.add(
                    "agent-exit",
                    f"{agent.cluster}/{agent.member} pid {agent.pid} exited by "
                    f"itself with status {agent.proc.returncode} "
                    f"(log {agent.log_path})")
                agent.state = "dead"
                agent.due = None
            elif agent.state == "frozen" and now >= agent.due:
                self.thaw(agent)
            elif agent.state == "thawing":
                if not any(alive(k) for k in agent.frozen_children):
                    self.fence_delays.append(now - agent.thawed_at)
                    self.cont_children(agent)
                    agent.frozen_children = []
                    agent.state = "running"
                elif now >= agent.due:
                    self.violations.add(
                        "thaw-fence",
                        f"{agent.cluster}/{agent.member} pid {agent.pid}: "
                        f"child(ren) {agent.frozen_children} still there "
                        f"{THAW_TIMEOUT:.0f}s after the agent was resumed "
                        f"past its lease (log {agent.log_path})")
                    self.cont_children(agent)
                    agent.frozen_children = []
                    agent.state = "running"
            elif agent.state == "terminating":
                rc = agent.proc.poll()
                if rc is not None:
                    self.event("exited", agent)
                    if rc == -signal.SIGTERM and not started_up(agent):
                        # Killed by the default action: the signal came
                        # before run_command() installed its handlers, so
                        # nothing was registered yet. Harmless.
                        self.anomalies["SIGTERM before the agent installed "
                                       "its signal handlers"] += 1
                    elif rc != 0:
                        self.violations.add(
                            "agent-exit",
                            f"{agent.cluster}/{agent.member} pid {agent.pid} "
                            f"exited with status {rc} after SIGTERM "
                            f"(log {agent.log_path})")
                    self.restart_later(agent)
                elif now >= agent.due:
                    self.violations.add(
                        "agent-exit",
                        f"{agent.cluster}/{agent.member} pid {agent.pid} "
                        f"still running {TERM_TIMEOUT:.0f}s after SIGTERM "
                        f"(log {agent.log_path})")
                    os.kill(agent.pid, signal.SIGKILL)
                    agent.proc.wait()
                    self.restart_later(agent)
            elif (agent.state == "dead" and restarts and agent.due is not None
                  and now >= agent.due):
                agent.due = None
                name = agent.restart_name
                if any(a.member == name and a.state != "dead"
                       for a in self.agents):
                    name = self.new_member_name(agent.cluster)
                self.faults["restart (same name)" if name == agent.member
                            else "restart (new name)"] += 1
                self.agents.remove(agent)
                self.start_agent(agent.cluster, name)

    # ----- convergence -----

    def survivors(self, cluster):
        return {a.member: a for a in self.agents
                if a.cluster == cluster and a.running()}

    def converged(self, cluster, members):
        """None if the cluster has converged, else the reason it has not."""
        survivors = self.survivors(cluster)
        view = members.get(cluster, {})
        if set(view) != set(survivors):
            extra = sorted(set(view) - set(survivors))
            missing = sorted(set(survivors) - set(view))
            return f"members: extra {extra}, missing {missing}"
        bad = sorted(f"{m}={v[3]}" for m, v in view.items()
                     if v[3] not in ("active", "standby"))
        if bad:
            return f"not settled: {bad}"
        cap = self.clusters[cluster][1]
        n = min(len(survivors), cap) if cap else len(survivors)
        shards = sorted(v[0] for v in view.values() if v[0] is not None)
        if shards != list(range(n)):
            return f"shards {shards}, expected 0..{n - 1}"
        for member, (shard, count, epoch, state) in sorted(view.items()):
            kids = children_of(survivors[member].pid)
            if state == "standby":
                if kids:
                    return f"standby {member} runs {kids}"
                continue
            if len(kids) != 1:
                return f"{member} (shard {shard}) runs {kids}"
            env = environ_of(kids[0]) or {}
            want = {"SHARD_INDEX": str(shard), "SHARD_COUNT": str(n),
                    "SHARD_EPOCH": str(epoch), "SHARD_CLUSTER": cluster,
                    "SHARD_MEMBER": member}
            got = {k: env.get(k) for k in want}
            if got != want:
                return f"{member}: child {kids[0]} has {got}, want {want}"
        return None

    def wait_converged(self, deadlines, t0):
        """Polls until every cluster has converged or passed its deadline;
        -> {cluster: (seconds after t0 or None, last reason)}"""
        result = {c: (None, "not checked") for c in deadlines}
        self.last_reason = {}
        while True:
            now = time.monotonic()
            try:
                members, _ = parse_view(self.psql.query(VIEW_SQL))
            except QueryError as e:
                members = {}
                say(f"convergence query failed: {e}")
            now = time.monotonic()
            pending = False
            for cluster, deadline in deadlines.items():
                if result[cluster][0] is not None:
                    continue
                reason = self.converged(cluster, members)
                if reason is None:
                    result[cluster] = (now - t0, None)
                    last = self.last_reason.get(cluster)
                    if last:
                        say(f"{cluster} converged at +{now - t0:.2f}s; at "
                            f"+{last[0]:.2f}s still: {last[1]}")
                else:
                    self.last_reason[cluster] = (now - t0, reason)
                    result[cluster] = (None, reason)
                    if now < deadline:
                        pending = True
            if not pending:
                return result
            time.sleep(0.05)

    # ----- the run -----

    def run(self):
        args = self.args
        self.configure()
        sampler = Sampler(args.sample_interval, self.violations, self.errlog)
        # Epochs before any agent runs: every reshard after this is counted.
        for cluster, (epoch, _) in parse_view(
                self.psql.query(VIEW_SQL))[1].items():
            sampler.first_epochs[cluster] = epoch
            sampler.cluster_epochs[cluster] = epoch
        sampler.start()
        for cluster in self.clusters:
            for _ in range(args.agents_per_cluster):
                self.start_agent(cluster, self.new_member_name(cluster))
        say(f"started {len(self.agents)} agents in {len(self.clusters)} "
            f"clusters; heartbeat {self.hb * 1000:.0f}ms, grace "
            f"{self.grace * 1000:.0f}ms; work directory {self.dir}")
        t0 = time.monotonic()
        initial = self.wait_converged(
            {c: t0 + args.settle_timeout for c in self.clusters}, t0)
        tap = []
        bad = {c: r for c, (t, r) in initial.items() if t is None}
        tap.append((not bad, "initial convergence of "
                    f"{len(self.agents)} agents"
                    + (f": {bad}" if bad else
                       f" in {max(t for t, _ in initial.values()):.1f}s")))

        say(f"chaos for {args.duration:.0f}s, freeze mode {args.freeze_mode}")
        chaos_start = time.monotonic()
        end = chaos_start + args.duration
        while time.monotonic() < end:
            self.handle_due()
            if self.rng.random() < 0.5:
                self.inject()
            # Pacing of the faults, not synchronisation.
            time.sleep(self.rng.uniform(0.5, 1.5) * args.fault_interval / 2)

        # Stop the chaos: resume the frozen, let the stopping finish; the
        # dead stay dead.
        for agent in self.agents:
            if agent.state == "frozen":
                self.thaw(agent)
        wait_for(lambda: (self.handle_due(restarts=False) or True) and not any(
            a.state in ("thawing", "terminating") for a in self.agents),
            THAW_TIMEOUT + TERM_TIMEOUT + 1)
        for agent in self.agents:
            if agent.state == "dead" and agent.due is not None:
                agent.due = None
        # The last faults: one SIGKILL per cluster, so that convergence
        # includes an expiry (heartbeat_interval + grace_period).
        for cluster in self.clusters:
            running = [a for a in self.agents
                       if a.cluster == cluster and a.running()]
            if len(running) > 1:
                self.fault_kill(self.rng.choice(running))
        for agent in self.agents:
            agent.due = None if agent.state == "dead" else agent.due
        t_stop = time.monotonic()
        say(f"chaos stopped after {t_stop - chaos_start:.1f}s; "
            f"{sum(1 for a in self.agents if a.running())} agents survive")
        deadlines = {}
        bounds = {}
        for cluster, (reshard, _, _) in self.clusters.items():
            bounds[cluster] = self.hb + self.grace + reshard + 1.0
            deadlines[cluster] = t_stop + bounds[cluster]
        final = self.wait_converged(deadlines, t_stop)
        late = {}
        for cluster, (took, reason) in final.items():
            if took is None or took > bounds[cluster]:
                late[cluster] = reason or f"took {took:.2f}s"
        tap.append((not late, "converged after the chaos within "
                    "heartbeat_interval + grace_period + reshard_interval "
                    "+ 1s: " + ", ".join(
                        f"{c} {t:.2f}s (bound {bounds[c]:.2f}s)" if t is not None
                        else f"{c} NOT ({r})" for c, (t, r) in final.items())))
        # Did it stay converged? (Informational: a late fence on a loaded
        # machine is not a violation.)
        if not late:
            wait_for(lambda: False, 1.0, poll=0.2)
            members, _ = parse_view(self.psql.query(VIEW_SQL))
            for cluster in self.clusters:
                reason = self.converged(cluster, members)
                if reason:
                    say(f"note: {cluster} no longer converged 1s later: "
                        f"{reason}")

        # Everyone leaves.
        stopping = [a for a in self.agents if a.running()]
        for agent in stopping:
            os.kill(agent.pid, signal.SIGTERM)
        for agent in stopping:
            try:
                rc = agent.proc.wait(timeout=TERM_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = None
                os.kill(agent.pid, signal.SIGKILL)
                agent.proc.wait()
            if rc != 0:
                self.violations.add(
                    "agent-exit", f"{agent.cluster}/{agent.member} pid "
                    f"{agent.pid}: status {rc} after the final SIGTERM")
            agent.state = "dead"
            agent.due = None
        empty = wait_for(lambda: not parse_view(
            self.psql.query(VIEW_SQL))[0], 5.0, poll=0.05)
        sampler.stop()
        left = parse_view(self.psql.query(VIEW_SQL))[0]
        tap.append((bool(empty), "every agent left on SIGTERM: clusters empty"
                    + ("" if empty else f": {dict(left)}")))

        report = Report(self, sampler)
        report.analyse()
        return report.finish(tap, chaos_start, t_stop)

    def cleanup(self):
        for agent in self.agents:
            if agent.proc.poll() is None:
                try:
                    os.kill(agent.pid, signal.SIGCONT)
                    os.kill(agent.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                agent.proc.wait()
            # Children still frozen (an interrupted run): their groups.
            for kid in agent.frozen_children:
                if alive(kid):
                    try:
                        os.killpg(kid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        self.psql.close()


LINE = re.compile(r"^(\d+\.\d+) (start|act|stop) acting as shard (\d+) of "
                  r"(\d+) epoch (\d+)")
AGENT_LINE = re.compile(r"^(\S+) shard-coordinator\[\d+\] \w+: assignment: "
                        r"(\w+)(?: shard (\d+) of (\d+))?.*epoch (\d+)")
STOP_LINE = re.compile(r"^(\S+) shard-coordinator\[\d+\] \w+: stopping pid "
                       r"(\d+) \(.*\): now (.*)$")


def log_time(stamp):
    """'2026-11-25T05:13:17.875Z' (the agent's log, UTC) -> epoch seconds"""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def clock(t):
    return (time.strftime("%H:%M:%S", time.localtime(t))
            + f".{int(t * 1000) % 1000:03d}")


class Report:
    def __init__(self, chaos, sampler):
        self.chaos = chaos
        self.sampler = sampler
        self.violations = chaos.violations
        self.intervals = []  # dicts
        self.lines = 0
        self.handovers = []  # durations (s) of overlaps at a handover

    def read_children(self):
        for cluster in self.chaos.clusters:
            folder = os.path.join(self.chaos.dir, cluster)
            for name in os.listdir(folder):
                if not name.startswith("child."):
                    continue
                member, pid = name[len("child."):].rsplit(".", 1)
                first = last = None
                ended = "killed"
                what = set()
                with open(os.path.join(folder, name)) as f:
                    for line in f:
                        m = LINE.match(line)
                        if not m:
                            continue  # a line cut short by SIGKILL
                        self.lines += 1
                        ts = float(m.group(1))
                        first = ts if first is None else first
                        last = ts
                        what.add((int(m.group(3)), int(m.group(4)),
                                  int(m.group(5))))
                        if m.group(2) == "stop":
                            ended = "stopped"
                if first is None:
                    continue
                if len(what) != 1:
                    self.violations.add(
                        "child-env", f"{cluster}/{member} pid {pid} changed "
                        f"assignment while running: {sorted(what)}")
                shard, count, epoch = min(what)
                if not 0 <= shard < count:
                    self.violations.add(
                        "child-env", f"{cluster}/{member} pid {pid}: shard "
                        f"{shard} of {count}")
                self.intervals.append(dict(
                    cluster=cluster, member=member, pid=int(pid), shard=shard,
                    count=count, epoch=epoch, start=first, end=last,
                    ended=ended))

    def faults_near(self, member, start, end):
        return [f"{time.strftime('%H:%M:%S', time.localtime(t))}"
                f".{int(t * 1000) % 1000:03d} {what} pid {pid}"
                for t, what, _, m, pid in self.chaos.events
                if m == member and start - 3 <= t <= end + 1]

    def faulted(self, member, start, end):
        return any(m == member and start <= t <= end and what != "start"
                   for t, what, _, m, _ in self.chaos.events)

    def describe(self, iv):
        return (f"{iv['member']} pid {iv['pid']} (shard {iv['shard']} of "
                f"{iv['count']}, epoch {iv['epoch']}) acted "
                f"{clock(iv['start'])}..{clock(iv['end'])}, {iv['ended']}; "
                f"faults: {self.faults_near(iv['member'], iv['start'], iv['end'])}")

    def read_agent_logs(self):
        """Per agent process: its assignment reports (-v log), and when it
        asked each child to stop."""
        self.agent_reports = 0
        self.report_states = collections.Counter()
        self.reports = []      # (cluster, member, log name, [(state, shard, epoch, line)])
        self.stop_asked = {}   # child pid -> (wall time, what the agent logged)
        folder = os.path.join(self.chaos.dir, "agents")
        for agent_log in sorted(os.listdir(folder)):
            member = agent_log.rsplit(".", 2)[0]
            cluster = next((c for c in self.chaos.clusters
                            if member.startswith(c + "-")), None)
            seen = []
            with open(os.path.join(folder, agent_log)) as f:
                for line in f:
                    m = AGENT_LINE.match(line)
                    if m:
                        self.agent_reports += 1
                        self.report_states[m.group(2)] += 1
                        seen.append((m.group(2), m.group(3), int(m.group(5)),
                                     line.strip()))
                        continue
                    m = STOP_LINE.match(line)
                    if m:
                        self.stop_asked[int(m.group(2))] = (
                            log_time(m.group(1)), m.group(3))
            self.reports.append((cluster, member, agent_log, seen))

    def check_overlaps(self):
        """Two processes acting on one (cluster, shard) at once. Classified:
        a handover when the earlier one belonged to a live member that no
        fault touched and whose agent asked it to stop (a reshard moved the
        member to another shard; the next one gave the shard away while that
        child was still stopping): expected without fence() and measured,
        but a violation ('overlap-handover-late') if it lasts longer than
        the old holder needs to hear of the move and stop (one heartbeat
        interval, the kill timeout and some slack); 'overlap' otherwise (a
        child acting after its member's lease ran out, or anything
        unexplained)."""
        bound = self.chaos.hb + KILL_TIMEOUT + HANDOVER_SLACK
        by_shard = collections.defaultdict(list)
        for iv in self.intervals:
            by_shard[(iv["cluster"], iv["shard"])].append(iv)
        for (cluster, shard), ivs in sorted(by_shard.items()):
            ivs.sort(key=lambda iv: iv["start"])
            for i, a in enumerate(ivs):
                for b in ivs[i + 1:]:
                    if b["start"] >= a["end"]:
                        break
                    overlap = min(a["end"], b["end"]) - b["start"]
                    if a["member"] == b["member"]:
                        kind = "overlap-same-member"
                    elif (a["ended"] == "stopped"
                          and not self.faulted(a["member"], a["start"],
                                               a["end"])
                          and a["pid"] in self.stop_asked):
                        if overlap <= bound:
                            self.handovers.append(overlap)
                            continue
                        kind = "overlap-handover-late"
                    else:
                        kind = "overlap"
                    asked = self.stop_asked.get(a["pid"])
                    told = (f"; its agent asked pid {a['pid']} to stop at "
                            f"{clock(asked[0])} ({asked[1]})" if asked else "")
                    self.violations.add(
                        kind, f"{cluster} shard {shard}: {overlap * 1000:.0f}"
                        f" ms overlap: [{self.describe(a)}] and "
                        f"[{self.describe(b)}]{told}")

    def check_epochs(self):
        # Children of one member, in start order.
        per_member = collections.defaultdict(list)
        for iv in self.intervals:
            per_member[(iv["cluster"], iv["member"])].append(iv)
        for (cluster, member), ivs in per_member.items():
            ivs.sort(key=lambda iv: iv["start"])
            for a, b in zip(ivs, ivs[1:]):
                if b["epoch"] < a["epoch"]:
                    self.violations.add(
                        "epoch-back", f"{cluster}/{member}: child pid "
                        f"{a['pid']} had epoch {a['epoch']}, the next "
                        f"(pid {b['pid']}) {b['epoch']}")
        # One shard to two members at one epoch (children and agent logs).
        owners = collections.defaultdict(set)
        for iv in self.intervals:
            owners[(iv["cluster"], iv["epoch"], iv["shard"])].add(iv["member"])
        for cluster, member, agent_log, seen in self.reports:
            last = None
            for state, shard, epoch, line in seen:
                if last is not None and epoch < last:
                    self.violations.add(
                        "epoch-back", f"agent log {agent_log}: epoch "
                        f"{last} then {epoch}: {line}")
                last = epoch
                if state == "active":
                    owners[(cluster, epoch, int(shard))].add(member)
        for (cluster, epoch, shard), who in sorted(owners.items()):
            if len(who) > 1:
                self.violations.add(
                    "same-epoch-shard", f"{cluster} epoch {epoch} shard "
                    f"{shard} given to {sorted(who)}")

    def analyse(self):
        self.read_children()
        self.read_agent_logs()
        self.check_overlaps()
        self.check_epochs()

    def finish(self, tap, chaos_start, t_stop):
        chaos, s, v = self.chaos, self.sampler, self.violations.count
        reshards = sum(s.cluster_epochs.get(c, 0) - s.first_epochs.get(c, 0)
                       for c in chaos.clusters)
        # Every check below must also have had something to check: a run
        # that sampled nothing, started no child or saw no reshard fails.
        checks = [
            (s.samples > 0 and reshards > 0 and len(self.intervals) > 0
             and self.lines > 0 and self.agent_reports > 0,
             f"the run saw something to check ({s.samples} view samples, "
             f"{reshards} reshards, {len(self.intervals)} children, "
             f"{self.lines} child log lines, {self.agent_reports} agent "
             "reports; none may be 0)"),
            (v["view-shards"] == 0, "view: in every sample the held shards "
             f"are exactly 0..n-1, once each ({s.samples} samples, "
             f"{v['view-shards']} violations)"),
            (v["view-epoch"] == 0, "view: epochs of clusters and members "
             f"never go back ({v['view-epoch']} violations)"),
            (v["overlap"] == 0 and v["overlap-same-member"] == 0,
             "children: no shard acted on by two processes at once, no "
             "child acting after its lease "
             f"({len(self.intervals)} children, {self.lines} log lines; "
             f"{v['overlap']} overlaps between members, "
             f"{v['overlap-same-member']} within a member)"),
            (v["overlap-handover-late"] == 0,
             "children: at a handover between live members (a member moved "
             "off a shard by one reshard still stopping its child when the "
             "next reshard gives that shard away; expected without fence(), "
             "README) the old child stops within heartbeat_interval + kill "
             f"timeout + {HANDOVER_SLACK:.1f}s "
             f"({len(self.handovers)} handover overlaps"
             + (f", max {max(self.handovers) * 1000:.0f} ms"
                if self.handovers else "")
             + f"; {v['overlap-handover-late']} late)"),
            (v["thaw-fence"] == 0
             and (chaos.faults["SIGSTOP"] == 0 or len(chaos.fence_delays) > 0),
             "agents resumed past their lease kill "
             f"their frozen child first ({len(chaos.fence_delays)} resumed in "
             f"mode {chaos.args.freeze_mode}, {v['thaw-fence']} violations)"),
            (v["epoch-back"] == 0 and v["child-env"] == 0,
             "epochs never go back in agent reports or children "
             f"({self.agent_reports} agent reports; {v['epoch-back']} + "
             f"{v['child-env']} violations)"),
            (v["same-epoch-shard"] == 0, "no shard given to two members at "
             f"one epoch ({v['same-epoch-shard']} violations)"),
            (v["agent-exit"] == 0, "no agent exited by itself; SIGTERM ends "
             f"agents with status 0 ({v['agent-exit']} violations)"),
            (all(chaos.faults[k] > 0 for k in ("SIGKILL", "SIGSTOP",
                                                "SIGTERM")),
             "faults of every kind were injected"),
        ]
        tap = tap[:2] + checks + tap[2:]
        print("\n# ---- summary ----")
        say(f"chaos: {t_stop - chaos_start:.1f}s, seed {chaos.args.seed}, "
            f"{chaos.agent_seq} agent processes started")
        say("faults injected: " + ", ".join(
            f"{k} {n}" for k, n in sorted(chaos.faults.items()))
            + f" (total {sum(chaos.faults[k] for k in ('SIGKILL', 'SIGSTOP', 'SIGTERM'))})")
        if chaos.fence_delays:
            d = sorted(chaos.fence_delays)
            say(f"resumed agents killed their frozen child after: median "
                f"{statistics.median(d) * 1000:.0f} ms, max "
                f"{d[-1] * 1000:.0f} ms")
        for cluster in chaos.clusters:
            first = s.first_epochs.get(cluster)
            last = s.cluster_epochs.get(cluster)
            if first is None:
                continue
            say(f"reshards seen in {cluster}: epoch {first} -> {last} "
                f"({last - first} reshards; {len(s.epochs_seen[cluster])} "
                f"distinct epochs sampled)")
        say(f"reshards seen: {reshards}")
        if s.durations:
            say(f"view samples: {s.samples} ({s.errors} failed), query "
                f"median {statistics.median(s.durations) * 1000:.1f} ms, "
                f"max {max(s.durations) * 1000:.0f} ms, longest gap between samples "
                f"{s.max_gap * 1000:.0f} ms")
        say(f"children: {len(self.intervals)} processes, {self.lines} lines")
        say("assignments reported by agents: " + ", ".join(
            f"{k} {n}" for k, n in sorted(self.report_states.items()))
            + " (lost: self-fenced, the lease ran out before a heartbeat "
            "answer; removed: told by the server)")
        for what, n in sorted(chaos.anomalies.items()):
            say(f"anomaly: {what}: {n}")
        say(f"violations: {sum(v.values())}"
            + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(v.items()))
               + ")" if v else ""))
        print(f"1..{len(tap)}")
        for i, (ok, text) in enumerate(tap, 1):
            print(f"{'ok' if ok else 'not ok'} {i} - {text}")
        passed = sum(1 for ok, _ in tap if ok)
        print(f"{passed} passed, {len(tap) - passed} failed", flush=True)
        return passed == len(tap)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=seconds, default=90.0,
                        help="seconds of chaos (also 10m, 1h)")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--agents-per-cluster", type=int, default=18)
    parser.add_argument("--heartbeat", type=seconds, default=0.2)
    parser.add_argument("--grace", type=seconds, default=0.4)
    parser.add_argument("--fault-interval", type=seconds, default=0.5,
                        help="mean time between faults")
    parser.add_argument("--max-down", type=int, default=5,
                        help="agents of a cluster down at once, at most")
    parser.add_argument("--tick", type=seconds, default=0.05,
                        help="how often a child logs that it acts")
    parser.add_argument("--sample-interval", type=seconds, default=0.05)
    parser.add_argument("--settle-timeout", type=seconds, default=60.0,
                        help="for the first convergence")
    parser.add_argument("--freeze-mode", default="agent-first",
                        choices=["agent-first", "together", "agent-only"])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--agent", default=shutil.which("shard-coordinator"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    if not args.agent:
        print("shard-coordinator is not on the PATH: make install-client",
              file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="sc_chaos.")
    os.chmod(workdir, 0o755)
    chaos = Chaos(args, workdir)
    ok = False
    try:
        ok = chaos.run()
    finally:
        chaos.cleanup()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"logs kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
