#!/usr/bin/env python3
"""Handover benchmark (issue 13, "Measured"), run by bench/run.sh.

    bench/handover.py --agent client/build/shard-coordinator \\
        --child OUT/sc_bench_handover_child --out OUT [--runs 30] ...

Needs a server with the extension (the PG* variables, as scripts/with-pg.sh
exports them) and psql. Python 3 standard library only.

Real agents (`shard-coordinator run`) run sc_bench_handover_child
(bench/handover_child.cpp): it starts at once, appends its CLOCK_MONOTONIC
start time and its grant (SHARD_MEMBER, SHARD_INDEX, SHARD_COUNT,
SHARD_EPOCH, SHARD_SLOTS) to a log, and on SIGTERM appends its exit time and
exits at once. time.monotonic() is the same clock, so the harness's events
and the children's times compare directly.

Scenarios (each run starts from MEMBERS agents, settled):

  slots-join   slot set of KEYS keys; one more agent is started.
               Event: the moment the harness starts the agent process (its
               connection, LISTEN and first heartbeat are inside the figure).
  slots-leave  a random agent gets SIGTERM (graceful: it stops its child,
               leaves). Event: the SIGTERM.
  slots-kill   a random agent gets SIGKILL (its child dies with it:
               PR_SET_PDEATHSIG). Event: the SIGKILL, which is also taken as
               the child's exit. The survivors get its keys only once its
               lease has ended, so this figure is bounded by the lease (a
               cluster with a short one: --short-heartbeat + --short-grace).
  plain-join   plain mode (SHARD_INDEX of SHARD_COUNT), one more agent.
  plain-leave  plain mode, a random agent gets SIGTERM.

After each measured event the harness restores MEMBERS agents (a join is
undone by SIGTERM of the newcomer, a leave or kill by a new agent under a
fresh name) and waits until it is settled again; those events are not
measured.

Settled: the running children's grants cover the work exactly once, one
child per expected member (slot mode: the KEYS keys; plain mode: shards
0..n-1 of n), no child has started or stopped for --quiet seconds, and the
server agrees (clusters.handover_pending is false; the members view lists
exactly the expected members with the children's grants).

Figures per run, in ms from the event:

  all_running  the latest start among the children running at the settled
               state that started after the event: every affected child
               runs with its new grant.
  no_owner     the longest time any key had no running child: for each key,
               the gaps between the exit of the last child that held it and
               the start of the next one. Plain mode: keys 0 ..
               PLAIN_KEYS-1 through shard_coordinator.jump_hash(key, count).
  restarts     children started after the event.
  keys_moved   keys whose member changed (plain mode: of the sample).
  overlaps     keys held by two running children at once (exclusive
               handover: should be 0).
  missing      children that left no exit line and were not SIGKILLed by
               the harness (taken as gone at the event, or at their start if
               later: that can only lengthen the gaps).
  first_exit, last_exit, first_start
               the split: the first and the last exit of a child after the
               event (a SIGKILLed one not counted), the first start.

Output in OUT: handover.tsv (one line per run), handover_settings.tsv (key,
value), handover/ (the children's logs, each agent's -v log, and the server
state when a run failed).
"""

import argparse
import hashlib
import os
import random
import signal
import statistics
import subprocess
import sys
import time

SCENARIOS = ("slots-join", "slots-leave", "slots-kill", "plain-join",
             "plain-leave")


def say(message):
    print(f"[handover {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


class Failure(Exception):
    pass


class Psql:
    """One psql session over pipes: no new process or backend per query."""

    END = "__sc_bench_end__"

    def __init__(self, errlog):
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog,
            text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(sql.strip().rstrip(";") + f";\n\\echo {self.END} :ERROR\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise Failure("psql exited")
            line = line.rstrip("\n")
            if line.startswith(self.END):
                if line.split()[1:] != ["false"]:
                    raise Failure(f"query failed (see psql.log): {sql.strip()[:200]}")
                return rows
            rows.append(line.split("\t"))

    def value(self, sql):
        rows = self.query(sql)
        return rows[0][0] if rows and rows[0] else None

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class Child:
    __slots__ = ("pid", "start", "stop", "member", "index", "count", "epoch",
                 "slots", "killed")

    def __init__(self, fields):
        # start <t> <pid> <member> <index> <count> <epoch> <slots>
        self.start = float(fields[1])
        self.pid = int(fields[2])
        self.member = fields[3]
        self.index = int(fields[4]) if fields[4] != "-" else None
        self.count = int(fields[5]) if fields[5] != "-" else None
        self.epoch = fields[6]
        self.slots = (frozenset(int(x) for x in fields[7].split(","))
                      if len(fields) > 7 and fields[7] != "-" else None)
        self.stop = None
        self.killed = False  # its exit is the harness's SIGKILL of the agent


class ChildLog:
    """The children's log, read as it grows."""

    def __init__(self, path):
        self.path = path
        open(path, "a").close()
        self.f = open(path)
        self.partial = ""
        self.children = {}  # pid -> Child
        self.last_change = 0.0  # the latest start or stop seen

    def poll(self):
        data = self.f.read()
        if not data:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            fields = line.split(" ")
            if fields[0] == "start" and len(fields) >= 7:
                child = Child(fields)
                self.children[child.pid] = child
                self.last_change = max(self.last_change, child.start)
            elif fields[0] == "stop" and len(fields) >= 3:
                child = self.children.get(int(fields[2]))
                if child is not None and child.stop is None:
                    child.stop = float(fields[1])
                    self.last_change = max(self.last_change, child.stop)

    def running(self, at=None):
        """Children running now (at=None) or at monotonic time `at`."""
        if at is None:
            return [c for c in self.children.values() if c.stop is None]
        return [c for c in self.children.values()
                if c.start <= at and (c.stop is None or c.stop > at)]

    def close(self):
        self.f.close()


class Agent:
    def __init__(self, name, proc, log):
        self.name = name
        self.proc = proc
        self.log = log


class Group:
    """One cluster and its agents."""

    def __init__(self, bench, cluster, mode, kill_timeout=None):
        self.b = bench
        self.cluster = cluster
        self.mode = mode  # "slots" or "plain"
        self.kill_timeout = kill_timeout
        self.dir = os.path.join(bench.workdir, cluster)
        os.makedirs(self.dir, exist_ok=True)
        self.log = ChildLog(os.path.join(self.dir, "children.log"))
        self.agents = {}  # name -> Agent (those that should be members)
        self.exited = []  # agents told to stop, to be reaped
        self.seq = 0

    # --- agents ---------------------------------------------------------------

    def new_name(self):
        self.seq += 1
        return f"{self.cluster}-{self.seq:04d}"

    def start_agent(self):
        name = self.new_name()
        log = open(os.path.join(self.dir, f"agent.{name}.log"), "w")
        cmd = [self.b.args.agent, "-v", "run", "--cluster", self.cluster,
               "--member", name]
        if self.kill_timeout:
            cmd += ["--kill-timeout", self.kill_timeout]
        cmd += ["--", self.b.args.child, self.log.path]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log)
        self.agents[name] = Agent(name, proc, log)
        return name, t0

    def signal_agent(self, name, signo):
        agent = self.agents.pop(name)
        t0 = time.monotonic()
        agent.proc.send_signal(signo)
        self.exited.append((agent, signo))
        return t0

    def reap(self, timeout=0.0):
        """Waits for the agents told to stop; True if all are gone."""
        deadline = time.monotonic() + timeout
        left = []
        for agent, signo in self.exited:
            try:
                rc = agent.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                left.append((agent, signo))
                continue
            agent.log.close()
            if signo == signal.SIGTERM and rc != 0:
                self.b.anomalies.append(f"{agent.name}: exit status {rc} after SIGTERM")
        self.exited = left
        return not left

    def stop_all(self, signo=signal.SIGTERM, timeout=20.0):
        for name in list(self.agents):
            self.signal_agent(name, signo)
        if not self.reap(timeout):
            for agent, _ in self.exited:
                agent.proc.kill()
            self.reap(5.0)
        self.log.close()

    # --- state ------------------------------------------------------------------

    def keys_of(self, child):
        if self.mode == "slots":
            return child.slots or frozenset()
        if child.index is None or child.count is None:
            return frozenset()
        return self.b.plain_keys(child.count, child.index)

    def covered(self, expected):
        """The running children cover the work exactly once, one per expected
        member; returns {member: child} or None."""
        running = self.log.running()
        by_member = {}
        for c in running:
            if c.member in by_member:
                return None
            by_member[c.member] = c
        if set(by_member) != expected:
            return None
        if self.mode == "slots":
            total = sum(len(c.slots or ()) for c in running)
            keys = frozenset().union(*(c.slots or frozenset() for c in running))
            if total != len(self.b.slot_keys) or keys != self.b.slot_keys:
                return None
        else:
            n = len(expected)
            if any(c.count != n for c in running):
                return None
            if sorted(c.index for c in running) != list(range(n)):
                return None
        return by_member

    def server_agrees(self, expected, by_member):
        pending = self.b.psql.value(
            "SELECT handover_pending FROM shard_coordinator.clusters "
            f"WHERE cluster = '{self.cluster}'")
        if pending != "f":
            return False
        rows = self.b.psql.query(
            "SELECT member, coalesce(shard::text, '-'), coalesce(num_shards::text, '-'), "
            "coalesce(array_to_string(slots, ','), '-') FROM shard_coordinator.members "
            f"WHERE cluster = '{self.cluster}'")
        if {r[0] for r in rows} != expected:
            return False
        for member, shard, count, slots in rows:
            c = by_member[member]
            if self.mode == "slots":
                if slots == "-" or frozenset(int(x) for x in slots.split(",")) != c.slots:
                    return False
            elif shard != str(c.index) or count != str(c.count):
                return False
        return True

    def wait_settled(self, t0, timeout):
        """Polls until settled; returns the settled moment (monotonic)."""
        expected = set(self.agents)
        deadline = t0 + timeout
        while True:
            self.reap()
            self.log.poll()
            now = time.monotonic()
            by_member = self.covered(expected)
            if (by_member is not None and now - self.log.last_change >= self.b.args.quiet
                    and self.server_agrees(expected, by_member)):
                self.log.poll()
                if self.covered(expected) == by_member:
                    return now
            if now > deadline:
                raise Failure(f"{self.cluster}: not settled {timeout:.0f} s after the event "
                              f"(expected {len(expected)} members)")
            time.sleep(0.01)

    # --- measurement ------------------------------------------------------------------

    def measure(self, t0, settled):
        """The figures of one run, from the children's log."""
        children = [c for c in self.log.children.values() if c.start <= settled]
        missing = 0
        for c in children:
            if c.stop is None and not c.killed and not self.alive(c):
                # Gone without an exit line (not the harness's SIGKILL): take
                # it as gone when the event came or it started, whichever is
                # later, which can only lengthen the gaps.
                c.stop = max(t0, c.start)
                missing += 1
        # At the event: the children running then, the killed one included
        # (its exit is the event itself).
        at_event = [c for c in children if c.start <= t0
                    and (c.stop is None or c.stop > t0 or c.killed)]
        owners = {}  # key -> running children holding it
        owner_before = {}
        for c in at_event:
            for k in self.keys_of(c):
                owners[k] = owners.get(k, 0) + 1
                owner_before[k] = c.member
        events = []  # (time, 0: stop / 1: start, child)
        for c in children:
            if c.start > t0:
                events.append((c.start, 1, c))
            if c.killed and c in at_event:
                events.append((t0, 0, c))
            elif c.stop is not None and t0 < c.stop <= settled:
                events.append((c.stop, 0, c))
        events.sort(key=lambda e: (e[0], e[1]))
        since = {}  # key -> when its last holder exited
        longest = 0.0
        overlaps = set()
        starts = 0
        for t, kind, c in events:
            keys = self.keys_of(c)
            if kind == 0:
                for k in keys:
                    owners[k] -= 1
                    if owners[k] == 0:
                        since[k] = t
            else:
                starts += 1
                for k in keys:
                    if owners.get(k, 0) == 0 and k in since:
                        longest = max(longest, t - since.pop(k))
                    owners[k] = owners.get(k, 0) + 1
                    if owners[k] > 1:
                        overlaps.add(k)
        if since:
            raise Failure(f"{self.cluster}: {len(since)} keys without a child at the settled state")
        final = [c for c in children if c.stop is None or c.stop > settled]
        new = [c.start for c in final if c.start > t0]
        all_running = (max(new) - t0) if new else 0.0
        moved = 0
        for c in final:
            moved += sum(1 for k in self.keys_of(c) if owner_before.get(k) != c.member)
        # The split: when the first and the last old child exited (the
        # revocations reaching the agents, and the slowest of them), and when
        # the first new child started.
        exits = [t for t, kind, c in events if kind == 0 and not c.killed]
        firsts = [t for t, kind, c in events if kind == 1]

        def ms(ts, pick):
            return (pick(ts) - t0) * 1000 if ts else None

        return {"all_running_ms": all_running * 1000, "no_owner_ms": longest * 1000,
                "restarts": starts, "keys_moved": moved, "overlaps": len(overlaps),
                "missing": missing, "first_exit_ms": ms(exits, min),
                "last_exit_ms": ms(exits, max), "first_start_ms": ms(firsts, min)}

    @staticmethod
    def alive(child):
        try:
            with open(f"/proc/{child.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False

    def mark_killed(self, name, t0):
        for c in self.log.running():
            if c.member == name:
                c.killed = True
                c.stop = t0


class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.join(args.out, "handover")
        os.makedirs(self.workdir, exist_ok=True)
        self.errlog = open(os.path.join(self.workdir, "psql.log"), "w")
        self.psql = Psql(self.errlog)
        self.rng = random.Random(args.seed)
        self.slot_keys = frozenset(range(1, args.keys + 1))
        self.anomalies = []
        self.groups = []
        self.jump = {}  # count -> list of shards of keys 0..plain_keys-1
        self.plain_cache = {}
        self.results = open(os.path.join(args.out, "handover.tsv"), "w")
        self.results.write("scenario\trun\tstatus\tall_running_ms\tno_owner_ms\trestarts"
                           "\tkeys_moved\toverlaps\tmissing\tfirst_exit_ms\tlast_exit_ms"
                           "\tfirst_start_ms\n")
        self.settings = open(os.path.join(args.out, "handover_settings.tsv"), "w")

    def setting(self, key, value):
        self.settings.write(f"{key}\t{value}\n")
        self.settings.flush()

    def plain_keys(self, count, index):
        key = (count, index)
        if key not in self.plain_cache:
            if count not in self.jump:
                row = self.psql.value(
                    f"SELECT string_agg(shard_coordinator.jump_hash(k, {count})::text, ',' "
                    f"ORDER BY k) FROM generate_series(0, {self.args.plain_keys - 1}) k")
                self.jump[count] = [int(x) for x in row.split(",")]
            self.plain_cache[key] = frozenset(
                k for k, s in enumerate(self.jump[count]) if s == index)
        return self.plain_cache[key]

    def record(self, scenario, run, status, figures=None):
        f = figures or {}
        cols = [scenario, str(run), status]
        for k in ("all_running_ms", "no_owner_ms"):
            cols.append(f"{f[k]:.3f}" if k in f else "")
        for k in ("restarts", "keys_moved", "overlaps", "missing"):
            cols.append(str(f[k]) if k in f else "")
        for k in ("first_exit_ms", "last_exit_ms", "first_start_ms"):
            cols.append(f"{f[k]:.3f}" if f.get(k) is not None else "")
        self.results.write("\t".join(cols) + "\n")
        self.results.flush()

    def configure(self, cluster, heartbeat, grace, slots):
        self.psql.query(
            f"SELECT shard_coordinator.configure('{cluster}', heartbeat_interval => '{heartbeat}', "
            f"grace_period => '{grace}', reshard_interval => '0', "
            + (f"slots => ARRAY(SELECT generate_series(1, {self.args.keys}))" if slots
               else "slots => '{}'") + ")")

    def settle_timeout(self, heartbeat, grace):
        return self.args.timeout + seconds(heartbeat) + seconds(grace)

    def settle_group(self, g, heartbeat, grace):
        t0 = time.monotonic()
        for _ in range(self.args.members):
            g.start_agent()
        g.wait_settled(t0, self.settle_timeout(heartbeat, grace) + 30)
        say(f"{g.cluster}: {self.args.members} agents settled in {time.monotonic() - t0:.1f} s")

    def dump_state(self, g, scenario, run):
        path = os.path.join(g.dir, f"failed.{scenario}.{run}.txt")
        with open(path, "w") as f:
            try:
                for r in self.psql.query(
                        "SELECT * FROM shard_coordinator.members "
                        f"WHERE cluster = '{g.cluster}' ORDER BY member"):
                    f.write("\t".join(r) + "\n")
                for r in self.psql.query(
                        "SELECT * FROM shard_coordinator.clusters "
                        f"WHERE cluster = '{g.cluster}'"):
                    f.write("\t".join(r) + "\n")
            except Failure as e:
                f.write(f"{e}\n")
        say(f"{scenario} run {run}: {path}")

    def run_group(self, mode, scenarios, heartbeat, grace, kill_timeout):
        cluster = f"ho_{mode}" + ("_kill" if "slots-kill" in scenarios else "")
        self.configure(cluster, heartbeat, grace, mode == "slots")
        g = Group(self, cluster, mode, kill_timeout)
        self.groups.append(g)
        timeout = self.settle_timeout(heartbeat, grace)
        try:
            self.settle_group(g, heartbeat, grace)
            for run in range(1, self.args.runs + 1):
                for scenario in scenarios:
                    self.one_run(g, scenario, run, timeout)
                if run % 10 == 0 or run == self.args.runs:
                    say(f"{cluster}: {run} of {self.args.runs} runs")
        finally:
            g.stop_all()
            self.groups.remove(g)

    def one_run(self, g, scenario, run, timeout):
        """One measured event, then back to MEMBERS agents, settled."""
        event = scenario.split("-")[1]
        phase = "event"
        try:
            if event == "join":
                name, t0 = g.start_agent()
            else:
                name = self.rng.choice(sorted(g.agents))
                if event == "kill":
                    t0 = g.signal_agent(name, signal.SIGKILL)
                    g.log.poll()
                    g.mark_killed(name, t0)
                else:
                    t0 = g.signal_agent(name, signal.SIGTERM)
            settled = g.wait_settled(t0, timeout)
            self.record(scenario, run, "ok", g.measure(t0, settled))
            phase = "restore"
            if event == "join":
                t1 = g.signal_agent(name, signal.SIGTERM)
            else:
                _, t1 = g.start_agent()
            g.wait_settled(t1, timeout)
        except Failure as e:
            say(f"{scenario} run {run} ({phase}): {e}")
            if phase == "event":
                self.record(scenario, run, "failed")
            self.dump_state(g, scenario, run)
            raise

    def cleanup(self):
        for g in list(self.groups):
            g.stop_all(signal.SIGKILL, 5.0)
        self.psql.close()
        self.results.close()
        self.settings.close()


def library_md5(psql):
    """The md5 of the shard_coordinator.so the server mapped (another `make
    install` may have replaced the file on disk), or None."""
    try:
        datadir = psql.value("SHOW data_directory")
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            pid = f.readline().strip()
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if "shard_coordinator.so" in line:
                    with open(f"/proc/{pid}/map_files/{line.split()[0]}", "rb") as lib:
                        return hashlib.md5(lib.read()).hexdigest()
    except (OSError, Failure):
        pass
    return None


def seconds(text):
    text = text.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("min", 60.0)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * factor
    return float(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agent", required=True, help="the shard-coordinator binary")
    p.add_argument("--child", required=True, help="sc_bench_handover_child")
    p.add_argument("--out", required=True)
    p.add_argument("--runs", type=int, default=30, help="measured events per scenario")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--keys", type=int, default=900, help="slot keys")
    p.add_argument("--plain-keys", type=int, default=10000,
                   help="plain mode: keys 0..N-1 followed for the no-owner figure")
    p.add_argument("--heartbeat", default="5s", help="clusters of the joins and leaves")
    p.add_argument("--grace", default="10s", help="clusters of the joins and leaves")
    p.add_argument("--kill-timeout", default="5s",
                   help="the agents' --kill-timeout in the clusters of the joins and leaves")
    p.add_argument("--short-heartbeat", default="200ms",
                   help="the cluster of the SIGKILL scenario (short lease)")
    p.add_argument("--short-grace", default="300ms")
    p.add_argument("--short-kill-timeout", default="200ms")
    p.add_argument("--quiet", type=float, default=0.3,
                   help="s without a child starting or stopping before a state counts as settled")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="s (plus the lease) for one event to settle")
    p.add_argument("--scenarios", default=" ".join(SCENARIOS))
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args()
    scenarios = args.scenarios.split()
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenarios: {' '.join(unknown)} (known: {' '.join(SCENARIOS)})")

    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    failed = False
    try:
        s = bench.setting
        s("runs", args.runs)
        s("members", args.members)
        s("slot_keys", args.keys)
        s("plain_keys", args.plain_keys)
        s("heartbeat_interval", args.heartbeat)
        s("grace_period", args.grace)
        s("kill_timeout", args.kill_timeout)
        s("short_heartbeat_interval", args.short_heartbeat)
        s("short_grace_period", args.short_grace)
        s("short_kill_timeout", args.short_kill_timeout)
        s("reshard_interval", "0")
        s("quiet", args.quiet)
        s("scenarios", " ".join(scenarios))
        s("server_version", bench.psql.value("SHOW server_version"))
        for guc in ("fsync", "synchronous_commit", "shared_buffers", "max_connections",
                    "shard_coordinator.max_members"):
            s(f"setting.{guc}", bench.psql.value(f"SHOW {guc}"))
        md5 = library_md5(bench.psql)
        if md5:
            s("library_md5", md5)
        groups = [
            ("slots", [x for x in scenarios if x in ("slots-join", "slots-leave")],
             args.heartbeat, args.grace, args.kill_timeout),
            ("slots", [x for x in scenarios if x == "slots-kill"],
             args.short_heartbeat, args.short_grace, args.short_kill_timeout),
            ("plain", [x for x in scenarios if x in ("plain-join", "plain-leave")],
             args.heartbeat, args.grace, args.kill_timeout),
        ]
        for mode, scen, hb, grace, kt in groups:
            if not scen:
                continue
            try:
                bench.run_group(mode, scen, hb, grace, kt)
            except Failure as e:
                failed = True
                say(f"{' '.join(scen)}: stopped: {e}")
        bench.setting("anomalies", "; ".join(bench.anomalies) or "none")
    finally:
        bench.cleanup()
    for a in bench.anomalies:
        say(f"anomaly: {a}")
    # Summary for the log (report.py makes the table).
    rows = {}
    with open(os.path.join(args.out, "handover.tsv")) as f:
        for line in f.read().splitlines()[1:]:
            c = line.split("\t")
            if c[2] == "ok":
                rows.setdefault(c[0], []).append((float(c[3]), float(c[4])))
    for sc, xs in rows.items():
        say(f"{sc}: n={len(xs)} all running median {statistics.median(x[0] for x in xs):.1f} ms, "
            f"no owner median {statistics.median(x[1] for x in xs):.1f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
