#!/usr/bin/env python3
"""Integration tests of the shard-coordinator agent against a real server.

Needs a running PostgreSQL with shard_coordinator preloaded and created in
the database the PG* environment variables name; SC_PG_RESTART (a command
that restarts that server) for the restart test. scripts/with-pg.sh provides
all of it:

    scripts/with-pg.sh make -C client integration-test

Each worker is test/integration/child.sh under `shard-coordinator run`: it
writes its pid and SHARD_* values to a file and sleeps, so the test sees which
children are alive, and with which shard, at any moment. Output is TAP; the
exit status is non-zero when a test failed. Waits poll with generous
timeouts; no sleep is used to synchronise.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "child.sh")
# child.sh behind a grandchild that leaves its session and ignores SIGTERM.
DAEMON_CHILD = os.path.join(HERE, "child_daemon.sh")
TIMEOUT = 20.0  # seconds; generous, for a loaded 2-core machine
POLL = 0.01


class Failure(Exception):
    pass


def psql(sql):
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


def configure(cluster, heartbeat="200ms", grace="300ms", reshard="0",
              max_shards=None, slots=None):
    extra = f", max_shards => {max_shards}" if max_shards else ""
    if slots is not None:
        extra += f", slots => '{{{','.join(map(str, slots))}}}'"
    psql(f"SELECT shard_coordinator.configure('{cluster}', "
         f"heartbeat_interval => '{heartbeat}', grace_period => '{grace}', "
         f"reshard_interval => '{reshard}'{extra})")


def alive(pid):
    """True for a running process; False for a gone or zombie one."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_until(what, predicate, timeout=TIMEOUT):
    """Polls predicate() until it returns a true value; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


class Fleet:
    """The agents of one cluster and the children they started."""

    def __init__(self, agent, cluster, workdir):
        self.agent = agent
        self.cluster = cluster
        self.dir = os.path.join(workdir, cluster)
        os.makedirs(self.dir)
        self.agents = {}  # member -> Popen
        self.duplicates = []  # samples that showed one shard twice

    def start(self, member, extra_args=(), command=None, verbosity="-v"):
        log = open(os.path.join(self.dir, f"agent-{member}.log"), "w")
        env = dict(os.environ, SC_TEST_DIR=self.dir)
        args = [self.agent, verbosity, "run", "--cluster", self.cluster,
                "--member", member, "--kill-timeout", "2s", *extra_args,
                "--", *(command or [CHILD])]
        self.agents[member] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self.agents[member]

    def children(self):
        """Live children: list of (pid, member, index, count, epoch, slots)
        where slots is a tuple, or None without SHARD_SLOTS."""
        found = []
        for name in os.listdir(self.dir):
            if not name.startswith("child.") or name.endswith(".tmp"):
                continue
            try:
                with open(os.path.join(self.dir, name)) as f:
                    pid, member, index, count, epoch, slots = f.read().split()
            except (OSError, ValueError):
                continue
            slots = (None if slots == "-"
                     else tuple(int(s) for s in slots.split(",") if s))
            if alive(int(pid)):
                found.append((int(pid), member, int(index), int(count),
                              int(epoch), slots))
        return sorted(found, key=lambda c: c[2])

    def sample(self):
        """The live children, recording any shard held twice."""
        children = self.children()
        indexes = [c[2] for c in children]
        if len(indexes) != len(set(indexes)):
            self.duplicates.append(children)
        return children

    def assignment(self, count):
        """{member: index} once `count` children run shards 0..count-1 of
        count; None before."""
        children = self.sample()
        if (len(children) == count
                and sorted(c[2] for c in children) == list(range(count))
                and all(c[3] == count for c in children)
                and all(self.agents[c[1]].poll() is None for c in children)):
            return {c[1]: c[2] for c in children}
        return None

    def daemons(self):
        """{(member, epoch): pid} of the grandchildren child_daemon.sh
        left, alive or not."""
        found = {}
        for name in os.listdir(self.dir):
            parts = name.split(".")
            if parts[0] != "daemon" or name.endswith(".tmp"):
                continue
            try:
                with open(os.path.join(self.dir, name)) as f:
                    found[(parts[1], int(parts[2]))] = int(f.read())
            except (OSError, ValueError, IndexError):
                continue
        return found

    def kill_daemons(self):
        """SIGKILLs what child_daemon.sh left (an agent killed by SIGKILL
        cannot: its orphans go to init)."""
        for pid in self.daemons().values():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"sleep" not in f.read():
                        continue  # gone, and the pid taken by another
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass

    def child_of(self, member):
        pids = [c[0] for c in self.children() if c[1] == member]
        return pids[0] if pids else None

    def log(self, member):
        with open(os.path.join(self.dir, f"agent-{member}.log")) as f:
            return f.read()

    def stop_all(self):
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.agents.values():
            proc.wait()


class Sampler:
    """Samples a fleet's children in the background, every POLL seconds."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.stop = threading.Event()
        self.samples = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.fleet.sample()
            self.samples += 1
            time.sleep(POLL)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def no_duplicates(fleet):
    if fleet.duplicates:
        raise Failure(f"a shard was held twice: {fleet.duplicates[0]}")


# ----- tests -----

def test_three_agents_then_sigkill(ctx):
    """three agents get distinct indexes and count 3; SIGKILL of one agent
    kills its child and the survivors get count 2 after expiry"""
    fleet = ctx.fleet("it_kill")
    configure("it_kill", heartbeat="200ms", grace="300ms")
    for m in ("a1", "a2", "a3"):
        fleet.start(m)
    with Sampler(fleet):
        first = wait_until("3 children with shards 0..2 of 3",
                           lambda: fleet.assignment(3))
        ctx.note(f"assignment: {first}")
        victim = "a2"
        child = fleet.child_of(victim)
        if child is None:
            raise Failure(f"{victim} has no child")
        killed_at = time.monotonic()
        fleet.agents[victim].kill()
        wait_until("the child of the killed agent to die",
                   lambda: not alive(child), timeout=5)
        ctx.note(f"child {child} died {time.monotonic() - killed_at:.3f}s "
                 "after its agent was SIGKILLed")
        second = wait_until("2 children with shards 0..1 of 2",
                            lambda: fleet.assignment(2))
        delay = time.monotonic() - killed_at
        ctx.note(f"survivors {second} {delay:.3f}s after the kill "
                 "(expiry: 200ms interval + 300ms grace)")
        if victim in second:
            raise Failure("the killed member still holds a shard")
        # Stickiness: a survivor whose shard is still < 2 kept it.
        for member, index in first.items():
            if member in second and index < 2 and second[member] != index:
                raise Failure(f"{member} moved from {index} to "
                              f"{second[member]} needlessly")
    no_duplicates(fleet)


def test_sigterm_reaches_others_before_expiry(ctx):
    """SIGTERM of one agent stops its child, leaves, and reaches the others
    well before expiry would"""
    fleet = ctx.fleet("it_leave")
    configure("it_leave", heartbeat="200ms", grace="5s")
    for m in ("b1", "b2", "b3"):
        fleet.start(m)
    with Sampler(fleet):
        wait_until("3 children of 3", lambda: fleet.assignment(3))
        child = fleet.child_of("b1")
        stopped_at = time.monotonic()
        fleet.agents["b1"].send_signal(signal.SIGTERM)
        rc = fleet.agents["b1"].wait(timeout=TIMEOUT)
        if rc != 0:
            raise Failure(f"agent exited {rc}, expected 0:\n" + fleet.log("b1"))
        if alive(child):
            raise Failure("the agent exited before its child")
        wait_until("2 children of 2", lambda: fleet.assignment(2))
        delay = time.monotonic() - stopped_at
        expiry = 5.2
        ctx.note(f"survivors resharded {delay:.3f}s after SIGTERM "
                 f"(expiry would take {expiry}s)")
        if delay > expiry / 2:
            raise Failure(f"reshard took {delay:.3f}s: the leave did not work")
    no_duplicates(fleet)


def test_lost_lease_stops_child_before_reassignment(ctx):
    """when heartbeats stop getting answers, the agent stops its child
    before the server expires the member and gives the shard away; its
    metrics show the lease lost"""
    fleet = ctx.fleet("it_fence")
    configure("it_fence", heartbeat="200ms", grace="800ms")
    app = "sc_it_fence_victim"
    fleet.start("f1")
    fleet.start("f2", extra_args=["--dsn", f"application_name={app}",
                                  "--metrics-addr", "127.0.0.1:0"])
    fleet.start("f3")
    with Sampler(fleet):
        before = wait_until("3 children of 3", lambda: fleet.assignment(3))
        child = fleet.child_of("f2")
        # The victim's server backend, caught between two heartbeats (idle,
        # so it holds no lock while frozen).
        backend = int(wait_until("the victim's backend to be idle", lambda: psql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = "
            f"'{app}' AND state = 'idle'")))
        os.kill(backend, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            wait_until("the victim's child to stop", lambda: not alive(child))
            died = time.monotonic() - frozen_at
            lost = metrics_of(fleet, "f2")
            # Others learn of the expiry when the server reshards.
            def resharded():
                return any(c[3] == 2 for c in fleet.sample())
            wait_until("the survivors' reshard", resharded)
            reshard = time.monotonic() - frozen_at
        finally:
            os.kill(backend, signal.SIGCONT)
        ctx.note(f"backend frozen: child stopped after {died:.3f}s, "
                 f"survivors resharded after {reshard:.3f}s "
                 "(lease: 200ms interval + 800ms grace)")
        if died >= reshard:
            raise Failure("the child outlived the lease")
        def lost_metric(name, **labels):
            return agent_metric(lost, "it_fence", "f2", name, **labels)
        for name, labels, expected in (
                ("state", {"state": "lost"}, 1),
                ("lease_losses_total", {}, 1),
                ("revocations_total", {"reason": "lost"}, 1),
                ("granted", {}, 0)):
            if lost_metric(name, **labels) != expected:
                raise Failure(f"the lost agent's {name} {labels} is "
                              f"{lost_metric(name, **labels)}, expected "
                              f"{expected}")
        # Lost a safety margin (here 200ms) before the lease's end.
        remaining = lost_metric("lease_remaining_seconds")
        if not 0 <= remaining <= 0.2:
            raise Failure(f"the lost agent's lease_remaining_seconds is "
                          f"{remaining}, expected at most 0.2")
        # The victim's heartbeat in flight is answered once its backend runs
        # again (well within the query timeout), and it rejoins.
        after = wait_until("3 children of 3 again", lambda: fleet.assignment(3))
        ctx.note(f"before {before}, after rejoining {after}")
    no_duplicates(fleet)


def test_server_restart(ctx):
    """a server restart under running agents ends with the same assignments
    and no duplicate indexes at any moment observed"""
    restart = os.environ.get("SC_PG_RESTART")
    if not restart:
        return "SKIP SC_PG_RESTART is not set (run under scripts/with-pg.sh)"
    fleet = ctx.fleet("it_restart")
    configure("it_restart", heartbeat="200ms", grace="1s")
    for m in ("r1", "r2", "r3"):
        fleet.start(m)
    with Sampler(fleet) as sampler:
        before = wait_until("3 children of 3", lambda: fleet.assignment(3))
        pids_before = {c[0] for c in fleet.children()}
        boot = psql("SELECT pg_postmaster_start_time()")
        started = time.monotonic()
        done = subprocess.run(restart, shell=True, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise Failure(f"the harness could not restart the server: "
                          f"{restart} exited {done.returncode}: "
                          f"{done.stdout.strip()} {done.stderr.strip()}")
        def boot_time():
            try:
                return psql("SELECT pg_postmaster_start_time()")
            except subprocess.CalledProcessError:
                return None  # still starting
        if wait_until("the server to accept connections", boot_time) == boot:
            raise Failure(f"{restart} did not restart the server")
        ctx.note(f"server restarted in {time.monotonic() - started:.3f}s")
        # Settled: the same assignment, held for a full second.
        def settled():
            now = fleet.assignment(3)
            if now is None:
                settled.since = None
                return False
            if settled.since is None or now != settled.last:
                settled.since, settled.last = time.monotonic(), now
            return time.monotonic() - settled.since >= 1.0
        settled.since, settled.last = None, None
        wait_until("the assignment to settle after the restart", settled)
        after = settled.last
        restarted = pids_before != {c[0] for c in fleet.children()}
        ctx.note(f"before {before}, after {after}, "
                 f"{time.monotonic() - started:.3f}s after the restart, "
                 f"{sampler.samples} samples; children "
                 + ("were stopped (lease ran out) and restarted"
                    if restarted else "kept running"))
        if before != after:
            raise Failure(f"assignment changed: {before} -> {after}")
    no_duplicates(fleet)
    for m in ("r1", "r2", "r3"):
        if fleet.agents[m].poll() is not None:
            raise Failure(f"agent {m} exited:\n" + fleet.log(m))


# The keys every line of `watch` has, by event.
WATCH_KEYS = {
    "assignment": {"shard", "num_shards", "epoch", "state"},
    "granted": {"shard", "num_shards", "epoch"},
    "revoked": {"epoch", "reason", "revoked", "grant", "deadline_ms",
                "deadline"},
    "acknowledged": {"epoch"},
}


def test_watch_prints_json_lines(ctx):
    """`watch --ack` prints valid JSON lines: assignments, grants, a
    revocation with its deadline when a second member joins, and the
    server's acknowledgement of it"""
    # A grace period of 5 s: without the acknowledgement w2 would wait that
    # long for its grant.
    configure("it_watch", heartbeat="200ms", grace="5s")
    args = [ctx.agent, "watch", "--cluster", "it_watch", "--ack"]
    w1 = subprocess.Popen(args + ["--member", "w1"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    ctx.cleanup.append(w1)
    lines = []

    def read_until(predicate):
        while True:
            line = w1.stdout.readline()
            if not line:
                raise Failure("watch ended early: " + w1.stderr.read())
            record = json.loads(line)  # raises on invalid JSON
            event = record.get("event")
            if event not in WATCH_KEYS:
                raise Failure(f"line of an unknown event: {line!r}")
            missing = ({"cluster", "member"} | WATCH_KEYS[event]) \
                - record.keys()
            if missing:
                raise Failure(f"line without {missing}: {line!r}")
            lines.append(record)
            if predicate(record):
                return record

    def reader(result):
        try:
            result.append(read_until(lambda r: r["event"] == "granted"))
            revoked = read_until(lambda r: r["event"] == "revoked")
            result.append(revoked)
            result.append(read_until(
                lambda r: r["event"] == "acknowledged"
                and r["epoch"] >= revoked["epoch"]))
        except Exception as e:  # surfaces in the main thread below
            result.append(e)

    result = []
    thread = threading.Thread(target=reader, args=(result,), daemon=True)
    thread.start()
    wait_until("w1 granted", lambda: len(result) >= 1)
    if isinstance(result[0], Exception):
        raise result[0]
    joined_at = time.monotonic()
    w2 = subprocess.Popen(args + ["--member", "w2"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    ctx.cleanup.append(w2)
    wait_until("w1 to print the revocation and its acknowledgement",
               lambda: len(result) >= 3)
    thread.join()
    for r in result:
        if isinstance(r, Exception):
            raise r
    revoked = result[1]
    if revoked["revoked"] != {"shard": 0, "num_shards": 1} \
            or revoked["grant"]["num_shards"] != 2 \
            or not 0 < revoked["deadline_ms"] <= 5200:
        raise Failure(f"unexpected revocation: {revoked}")

    def w2_granted():
        return psql("SELECT shard FROM shard_coordinator.members "
                    "WHERE cluster = 'it_watch' AND member = 'w2'") == "1"
    wait_until("w2's grant", w2_granted)
    handover = time.monotonic() - joined_at
    epochs = [r["epoch"] for r in lines if r["event"] == "assignment"]
    if epochs != sorted(epochs):
        raise Failure(f"epochs went backwards: {epochs}")
    ctx.note("lines: " + "; ".join(json.dumps(r) for r in lines))
    ctx.note(f"w2 granted {handover:.3f}s after it started (grace 5s)")
    if handover > 2.5:
        raise Failure(f"the handover took {handover:.3f}s: the "
                      "acknowledgement did not work")
    for proc in (w1, w2):
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=TIMEOUT)
        if rc != 0:
            raise Failure(f"watch exited {rc} on SIGTERM, expected 0")


def test_count_change_from_the_cluster_notice(ctx):
    """a change of num_shards alone reaches the agents by the cluster
    notification, long before their next heartbeat; they stop their
    children, acknowledge at once, and the joining member gets its shard
    long before their leases end"""
    fleet = ctx.fleet("it_count")
    # Heartbeats a minute apart: within the test only a notification can tell
    # the agents anything after their first heartbeat.
    configure("it_count", heartbeat="60s", grace="60s")
    ctx.on_close(lambda: psql(
        "SELECT shard_coordinator.leave('it_count', 'n3')"))
    for m in ("n1", "n2"):
        fleet.start(m, verbosity="-vv")
    before = wait_until("2 children of 2", lambda: fleet.assignment(2))
    # A third member joins from SQL: the server keeps n1 and n2 where they
    # are (sticky) and gives n3 shard 2, so n1 and n2 get no notice of their
    # own, only the cluster's.
    joined_at = time.monotonic()
    psql("SELECT shard_coordinator.heartbeat('it_count', 'n3')")

    def counted_three():
        children = {c[1]: c for c in fleet.sample()}
        if all(m in children and children[m][3] == 3 for m in before):
            return children
        return None
    children = wait_until("n1 and n2 to run with SHARD_COUNT=3", counted_three)
    delay = time.monotonic() - joined_at
    shards = {m: children[m][2] for m in before}
    # The count grew: each of n1 and n2 lost keys to shard 2 (a revocation);
    # n3 gets shard 2 once both acknowledged, not when their leases (2 min)
    # end.
    def n3_granted():
        return psql("SELECT shard FROM shard_coordinator.members "
                    "WHERE cluster = 'it_count' AND member = 'n3'") == "2"
    wait_until("n3's grant of shard 2", n3_granted, timeout=10)
    granted = time.monotonic() - joined_at
    epochs = {m: int(psql("SELECT epoch FROM shard_coordinator.members "
                          f"WHERE cluster = 'it_count' AND member = '{m}'"))
              for m in before}
    ctx.note(f"before {before}; after the join {shards} of 3 at epochs "
             f"{epochs}, {delay:.3f}s after it (heartbeat interval 60s); "
             f"n3 granted shard 2 after {granted:.3f}s")
    if shards != before:
        raise Failure(f"n1 or n2 moved: {before} -> {shards}")
    for m in before:
        # SHARD_EPOCH is the epoch of the child's grant: the count's.
        if children[m][4] != epochs[m]:
            raise Failure(f"{m}'s child has SHARD_EPOCH={children[m][4]}, "
                          f"the member's epoch is {epochs[m]}")
        if "cluster notification: 3 shards" not in fleet.log(m):
            raise Failure(f"{m} did not log the cluster notification:\n"
                          + fleet.log(m))
        if "acknowledging epoch" not in fleet.log(m):
            raise Failure(f"{m} did not acknowledge:\n" + fleet.log(m))
    no_duplicates(fleet)


def test_revocation_waits_for_the_whole_process_tree(ctx):
    """on a revocation the agent stops its child and a grandchild that left
    the child's session (setsid) and ignores SIGTERM, and acknowledges only
    once both are gone: the joining member gets its shard after that, and
    long before the lease would have ended"""
    fleet = ctx.fleet("it_tree")
    configure("it_tree", heartbeat="200ms", grace="10s")
    ctx.on_close(fleet.kill_daemons)
    fleet.start("d1", command=[DAEMON_CHILD])
    wait_until("d1 active", lambda: fleet.assignment(1))
    first = wait_until("d1's grandchild", fleet.daemons)
    (daemon,) = first.values()
    if not alive(daemon):
        raise Failure("the grandchild did not start")
    joined_at = time.monotonic()
    fleet.start("d2")
    # d1's grant shrinks (count 2): it stops its tree, then acknowledges;
    # only then is shard 1 granted to d2, whose child starts.
    wait_until("d2's child", lambda: fleet.child_of("d2"))
    still_there = alive(daemon)
    handover = time.monotonic() - joined_at
    after = wait_until("2 children of 2", lambda: fleet.assignment(2))
    ctx.note(f"d2 got its shard {handover:.3f}s after it started "
             f"(grace 10s); {after}; d1's first grandchild (pid {daemon}) "
             + ("was still alive" if still_there else "was gone"))
    if still_there:
        raise Failure("d2 got its shard while d1's grandchild still ran:\n"
                      + fleet.log("d1"))
    if handover > 5:
        raise Failure(f"the handover took {handover:.3f}s: the "
                      "acknowledgement did not work")
    no_duplicates(fleet)


def test_standby_promoted_when_slot_frees(ctx):
    """beyond max_shards a member is standby with no child, and is promoted
    when an active member leaves"""
    fleet = ctx.fleet("it_standby")
    configure("it_standby", heartbeat="200ms", grace="5s", max_shards=1)
    fleet.start("s1")
    wait_until("s1 active", lambda: fleet.assignment(1))
    fleet.start("s2")
    wait_until("s2 standby", lambda: "standby" in fleet.log("s2"))
    if fleet.child_of("s2") is not None:
        raise Failure("a standby member runs a child")
    fleet.agents["s1"].send_signal(signal.SIGTERM)
    wait_until("s2 promoted to shard 0 of 1",
               lambda: fleet.assignment(1) == {"s2": 0})
    no_duplicates(fleet)


def test_slots_reach_the_child(ctx):
    """in slot mode each child gets its keys in SHARD_SLOTS: together they
    cover the cluster's keys once, balanced, also after a join"""
    fleet = ctx.fleet("it_slots")
    keys = [10, 20, 30, 40, 50, 60, 70]
    configure("it_slots", heartbeat="200ms", grace="300ms", slots=keys)

    def covered(count):
        children = fleet.assignment(count) and fleet.children()
        if not children or any(c[5] is None for c in children):
            return None
        owned = [k for c in children for k in c[5]]
        sizes = [len(c[5]) for c in children]
        if sorted(owned) == keys and max(sizes) - min(sizes) <= 1:
            return {c[1]: c[5] for c in children}
        return None

    fleet.start("k1")
    fleet.start("k2")
    two = wait_until("2 children covering the keys", lambda: covered(2))
    fleet.start("k3")
    three = wait_until("3 children covering the keys", lambda: covered(3))
    ctx.note(f"2 members: {two}; 3 members: {three}")
    # Minimal moves: k1 and k2 keep keys they had.
    for member in ("k1", "k2"):
        if not set(three[member]) <= set(two[member]):
            raise Failure(f"{member} gained keys on a join: {two} -> {three}")
    no_duplicates(fleet)


def test_exit_codes(ctx):
    """exit status: 3 for a name the server refuses, 4 for a command that
    cannot start, 5 and 6 for a command that exits by itself"""
    configure("it_exit", heartbeat="200ms", grace="300ms")
    base = [ctx.agent, "run", "--cluster", "it_exit"]
    cases = [
        (3, base[:3] + ["bad\x01cluster", "--", "true"]),
        (4, base + ["--member", "e4", "--", "/nonexistent/command"]),
        (5, base + ["--member", "e5", "--", "true"]),
        (6, base + ["--member", "e6", "--", "sh", "-c", "exit 7"]),
        (2, [ctx.agent, "run", "--", "true"]),
    ]
    for expected, args in cases:
        proc = subprocess.run(args, capture_output=True, text=True,
                              timeout=TIMEOUT)
        if proc.returncode != expected:
            raise Failure(f"{args[2:]} exited {proc.returncode}, expected "
                          f"{expected}: {proc.stderr.strip()}")
        lines = proc.stderr.strip().splitlines()
        if expected in (2, 3, 4) and not lines:
            raise Failure(f"no error message for exit {expected}")
        ctx.note(f"exit {expected}: {lines[-1] if lines else ''}")


def test_status(ctx):
    """`status` shows clusters and members with the epoch each acknowledged;
    --json is valid JSON; a member that never acknowledges is warned
    about"""
    configure("it_status", heartbeat="200ms", grace="300ms")
    fleet = ctx.fleet("it_status")
    fleet.start("t1")
    wait_until("t1 active", lambda: fleet.assignment(1))

    def acknowledged():
        return psql("SELECT acknowledged_epoch FROM shard_coordinator.members"
                    " WHERE cluster = 'it_status' AND member = 't1'")
    epoch = wait_until("t1's acknowledgement", acknowledged)
    done = subprocess.run([ctx.agent, "status", "--cluster", "it_status"],
                          capture_output=True, text=True, check=True)
    out = done.stdout
    header = out.splitlines()[3].split() if len(out.splitlines()) > 3 else []
    if "CLUSTER" not in out or "t1" not in out or "active" not in out \
            or "ACKED" not in header or "RELEASING" not in header:
        raise Failure("unexpected status output:\n" + out)
    if "never acknowledged" in done.stderr:
        raise Failure("a warning about t1: " + done.stderr)
    doc = json.loads(subprocess.run(
        [ctx.agent, "status", "--json", "--cluster", "it_status"],
        capture_output=True, text=True, check=True).stdout)
    if [m["member"] for m in doc["members"]] != ["t1"]:
        raise Failure(f"unexpected members: {doc['members']}")
    if str(doc["members"][0]["acknowledged_epoch"]) != epoch:
        raise Failure(f"unexpected acknowledged_epoch: {doc['members']}")
    ctx.note(out)
    # A member that heartbeats as clients before 1.1 did: no applied epoch,
    # no incarnation.
    configure("it_status_old", heartbeat="60s", grace="60s")
    ctx.on_close(lambda: psql(
        "SELECT shard_coordinator.leave('it_status_old', 'old')"))
    psql("SELECT shard_coordinator.heartbeat('it_status_old', 'old')")
    done = subprocess.run([ctx.agent, "status", "--cluster", "it_status_old"],
                          capture_output=True, text=True, check=True)
    if "member old of cluster it_status_old has never acknowledged" \
            not in done.stderr:
        raise Failure("no warning about a member that never acknowledges: "
                      + done.stderr)
    ctx.note(done.stderr.strip())


def test_a_second_process_with_the_same_name_waits(ctx):
    """a second agent under a member name in use is refused (SC002) and runs
    no child while the first holds it; it takes over once the first left"""
    configure("it_name", heartbeat="200ms", grace="300ms")
    fleet = ctx.fleet("it_name")
    first = fleet.start("n1")
    wait_until("n1 active", lambda: fleet.assignment(1))
    child = fleet.child_of("n1")
    log_path = os.path.join(fleet.dir, "agent-n1-second.log")
    with open(log_path, "w") as log:
        second = subprocess.Popen(
            [ctx.agent, "-v", "run", "--cluster", "it_name", "--member", "n1",
             "--kill-timeout", "2s", "--", CHILD],
            stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, SC_TEST_DIR=fleet.dir))
    ctx.cleanup.append(second)

    def second_log():
        with open(log_path) as f:
            return f.read()
    wait_until("the second agent to be refused with SC002",
               lambda: second_log().count("SC002") >= 2)
    if fleet.child_of("n1") != child or len(fleet.children()) != 1 \
            or second.poll() is not None:
        raise Failure(f"the name changed hands: {fleet.children()}")
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=TIMEOUT)
    wait_until("the second agent's child",
               lambda: fleet.child_of("n1") not in (None, child))
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=TIMEOUT)
    ctx.note([line for line in second_log().splitlines()
              if "SC002" in line][0])


def test_admin_freeze_and_evict(ctx):
    """admin freeze keeps a joining agent's child from starting until
    unfreeze; admin evict stops the evicted agent (exit 3) and its child"""
    configure("it_admin", heartbeat="200ms", grace="300ms")
    fleet = ctx.fleet("it_admin")
    fleet.start("a1")
    wait_until("a1 active", lambda: fleet.assignment(1))
    admin = [ctx.agent, "admin"]
    subprocess.run(admin + ["freeze", "it_admin"], check=True, timeout=TIMEOUT)
    if psql("SELECT frozen FROM shard_coordinator.clusters "
            "WHERE cluster = 'it_admin'") != "t":
        raise Failure("admin freeze did not freeze the cluster")
    fleet.start("a2")
    wait_until("a2 pending", lambda: psql(
        "SELECT state FROM shard_coordinator.members "
        "WHERE cluster = 'it_admin' AND member = 'a2'") == "pending")
    # A few heartbeats later a2 still has no child.
    time.sleep(1.0)
    if fleet.child_of("a2") is not None:
        raise Failure("a2 started a child in a frozen cluster")
    subprocess.run(admin + ["unfreeze", "it_admin"], check=True,
                   timeout=TIMEOUT)
    wait_until("a1 and a2 active", lambda: fleet.assignment(2))
    evicted_child = fleet.child_of("a1")
    done = subprocess.run(admin + ["evict", "it_admin", "a1", "--reason",
                                   "integration test"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise Failure("admin evict failed: " + done.stderr)
    code = fleet.agents["a1"].wait(timeout=TIMEOUT)
    if code != 3:
        raise Failure(f"the evicted agent exited {code}, expected 3")
    if alive(evicted_child):
        raise Failure("the evicted agent's child is still running")
    wait_until("a2 alone", lambda: fleet.assignment(1))
    missing = subprocess.run(admin + ["evict", "it_admin", "nobody"],
                             capture_output=True, text=True, timeout=TIMEOUT)
    if missing.returncode != 3:
        raise Failure(f"evicting nobody exited {missing.returncode}")
    ctx.note("evict of an unknown member: " + missing.stderr.strip())


def test_admin_drop(ctx):
    """admin drop: the agent is told it was removed, stops its child and
    gives up (exit 3, SC004); the cluster goes once its promise ended"""
    configure("it_drop", heartbeat="200ms", grace="300ms")
    fleet = ctx.fleet("it_drop")
    fleet.start("d1")
    wait_until("d1 active", lambda: fleet.assignment(1))
    child = fleet.child_of("d1")
    admin = [ctx.agent, "admin"]
    done = subprocess.run(admin + ["drop", "it_drop"], capture_output=True,
                          text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise Failure("admin drop failed: " + done.stderr)
    code = fleet.agents["d1"].wait(timeout=TIMEOUT)
    if code != 3:
        raise Failure(f"the agent of a dropped cluster exited {code}, "
                      "expected 3")
    if alive(child):
        raise Failure("the dropped agent's child is still running")
    wait_until("the cluster gone", lambda: psql(
        "SELECT count(*) FROM shard_coordinator.cluster_state "
        "WHERE cluster = 'it_drop'") == "0")
    missing = subprocess.run(admin + ["drop", "it_drop"],
                             capture_output=True, text=True, timeout=TIMEOUT)
    if missing.returncode != 3:
        raise Failure(f"dropping it again exited {missing.returncode}")
    ctx.note("drop of an unknown cluster: " + missing.stderr.strip())


def scrape(url):
    """{(name, frozenset of (label, value)): value} from a Prometheus text
    page."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        if not m:
            raise Failure(f"not a sample line: {line!r}")
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def agent_metric(samples, cluster, member, name, **labels):
    """shard_coordinator_agent_<name> of a member in scraped samples."""
    key = (f"shard_coordinator_agent_{name}",
           frozenset({("cluster", cluster), ("member", member),
                      *labels.items()}))
    return samples.get(key)


def metrics_url(fleet, member):
    """Where an agent started with --metrics-addr 127.0.0.1:0 serves."""
    return wait_until(f"{member} to say where it serves metrics",
                      lambda: re.search(
                          r"serving metrics on (http://127\.0\.0\.1:\d+"
                          r"/metrics)", fleet.log(member))).group(1)


def metrics_of(fleet, member):
    return scrape(metrics_url(fleet, member))


def listening_inodes():
    """The socket inodes of every listening TCP socket on the machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def listens(pid):
    """True if process `pid` holds a listening TCP socket."""
    mine = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[len("socket:["):-1])
    return bool(mine & listening_inodes())


def test_metrics_endpoint(ctx):
    """`run --metrics-addr` serves the agent's state in the Prometheus text
    format: its grant (shard 0 of 1, then of 2 when a second agent joins,
    and of 1 again when it leaves), the revocation and acknowledgement of
    the join, the command's restarts, the lease remaining and heartbeats;
    an agent without the option listens on nothing; a taken port or a bad
    address stops the agent before it joins"""
    configure("it_metrics", heartbeat="200ms", grace="2s")
    fleet = ctx.fleet("it_metrics")
    first = fleet.start("p1", extra_args=["--metrics-addr", "127.0.0.1:0"])
    url = metrics_url(fleet, "p1")

    def value(samples, name, **labels):
        return agent_metric(samples, "it_metrics", "p1", name, **labels)

    def scraped(what, predicate):
        def check():
            samples = scrape(url)
            return samples if predicate(samples) else None
        return wait_until(what, check)

    one = scraped("p1 granted shard 0 of 1 with its child running",
                  lambda s: value(s, "grant_num_shards") == 1
                  and value(s, "grant_shard") == 0
                  and value(s, "child_running") == 1
                  and value(s, "state", state="active") == 1)
    lease = value(one, "lease_remaining_seconds")
    if not 0 < lease <= 2.2:
        raise Failure(f"lease_remaining_seconds {lease}, expected in "
                      "(0, 2.2] (200ms interval + 2s grace)")
    for name in ("connected", "granted", "child_starts_total",
                 "connections_total"):
        if value(one, name) != 1:
            raise Failure(f"{name} is {value(one, name)}, expected 1")
    if value(one, "revocations_total", reason="server") != 0:
        raise Failure("a revocation before anybody joined")
    ctx.note(f"{url}: shard 0 of 1, lease remaining {lease:.3f}s, "
             f"{value(one, 'heartbeats_total'):.0f} heartbeats")

    fleet.start("p2")
    two = scraped("p1's grant to become shard 0 of 2, acknowledged, with "
                  "more heartbeats",
                  lambda s: value(s, "grant_num_shards") == 2
                  and value(s, "acknowledgements_total") >= 1
                  and value(s, "heartbeats_total")
                  > value(one, "heartbeats_total"))
    if value(two, "revocations_total", reason="server") < 1:
        raise Failure("the join's revocation was not counted")
    if value(two, "child_starts_total") != 2:
        raise Failure(f"child_starts_total {value(two, 'child_starts_total')}"
                      ", expected 2 (the first, and one for shard 0 of 2)")
    # The check can see a listening agent: p1.
    if not listens(first.pid):
        raise Failure("p1's listening socket is not in /proc/net/tcp")
    if listens(fleet.agents["p2"].pid):
        raise Failure("p2, without --metrics-addr, listens on a TCP port")

    fleet.agents["p2"].send_signal(signal.SIGTERM)
    back = scraped("p1's grant to become shard 0 of 1 again",
                   lambda s: value(s, "grant_num_shards") == 1
                   and value(s, "grant_shard") == 0)
    ctx.note(f"after p2 joined: shard 0 of 2, "
             f"{value(two, 'revocations_total', reason='server'):.0f} "
             f"revocation, {value(two, 'child_starts_total'):.0f} starts; "
             f"after it left: shard 0 of 1 at epoch "
             f"{value(back, 'grant_epoch'):.0f}")

    port = url.split(":")[2].split("/")[0]
    for expected, address in ((1, f"127.0.0.1:{port}"), (2, "db.invalid:1")):
        done = subprocess.run(
            [ctx.agent, "run", "--cluster", "it_metrics", "--member", "p3",
             "--metrics-addr", address, "--", "true"],
            capture_output=True, text=True, timeout=TIMEOUT)
        if done.returncode != expected or "--metrics-addr" not in done.stderr:
            raise Failure(f"--metrics-addr {address}: exit "
                          f"{done.returncode}, expected {expected}: "
                          f"{done.stderr.strip()}")
        ctx.note(done.stderr.strip().splitlines()[-1])
    if psql("SELECT count(*) FROM shard_coordinator.members "
            "WHERE cluster = 'it_metrics' AND member = 'p3'") != "0":
        raise Failure("an agent that could not listen joined the cluster")
    if first.poll() is not None:
        raise Failure("p1 exited:\n" + fleet.log("p1"))


class Context:
    def __init__(self, agent, workdir):
        self.agent = agent
        self.workdir = workdir
        self.fleets = []
        self.cleanup = []
        self.closers = []
        self.notes = []

    def fleet(self, cluster):
        f = Fleet(self.agent, cluster, self.workdir)
        self.fleets.append(f)
        return f

    def note(self, text):
        self.notes.append(text)

    def on_close(self, function):
        """Calls function() when the test ends, whatever its outcome."""
        self.closers.append(function)

    def close(self):
        for f in self.fleets:
            f.stop_all()
        for proc in self.cleanup:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for function in self.closers:
            try:
                function()
            except Exception as e:  # tidying up; the result stands
                self.note(f"cleanup failed: {e}")


TESTS = [
    test_three_agents_then_sigkill,
    test_sigterm_reaches_others_before_expiry,
    test_lost_lease_stops_child_before_reassignment,
    test_server_restart,
    test_watch_prints_json_lines,
    test_count_change_from_the_cluster_notice,
    test_revocation_waits_for_the_whole_process_tree,
    test_standby_promoted_when_slot_frees,
    test_slots_reach_the_child,
    test_exit_codes,
    test_status,
    test_a_second_process_with_the_same_name_waits,
    test_admin_freeze_and_evict,
    test_admin_drop,
    test_metrics_endpoint,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", required=True,
                        help="path of the shard-coordinator binary")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (agent logs)")
    parser.add_argument("tests", nargs="*", help="run only these tests")
    args = parser.parse_args()
    agent = os.path.abspath(args.agent)
    tests = [t for t in TESTS
             if not args.tests or any(name in t.__name__ for name in args.tests)]

    try:
        psql("SELECT 1 FROM pg_extension WHERE extname = 'shard_coordinator'")
    except subprocess.CalledProcessError as e:
        print(f"Bail out! cannot reach the server ({e.stderr.strip()}); "
              "run under scripts/with-pg.sh or set PGHOST, PGPORT, ...")
        return 1

    workdir = tempfile.mkdtemp(prefix="sc-client-it-")
    print(f"1..{len(tests)}")
    failed = 0
    for number, test in enumerate(tests, 1):
        name = f"{test.__name__}: {' '.join(test.__doc__.split())}"
        ctx = Context(agent, workdir)
        started = time.monotonic()
        try:
            result = test(ctx)
            elapsed = time.monotonic() - started
            if isinstance(result, str) and result.startswith("SKIP"):
                print(f"ok {number} - {test.__name__} # {result}")
            else:
                print(f"ok {number} - {name} ({elapsed:.1f}s)")
        except Exception as e:  # report every failure, run the next test
            failed += 1
            print(f"not ok {number} - {name}")
            detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
            for line in detail.splitlines():
                print(f"# {line}")
            for f in ctx.fleets:
                for member in f.agents:
                    print(f"# --- log of {f.cluster}/{member}:")
                    for line in f.log(member).splitlines()[-15:]:
                        print(f"#   {line}")
        finally:
            ctx.close()
        for text in ctx.notes:
            for line in text.splitlines():
                print(f"# {line}")
        sys.stdout.flush()
    if args.keep:
        print(f"# work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"# summary: {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
