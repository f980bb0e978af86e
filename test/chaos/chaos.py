#!/usr/bin/env python3
"""Chaos test of shard_coordinator 1.1 and its agent, with a checker.

    scripts/with-pg.sh python3 test/chaos/chaos.py --duration 90
    scripts/soak.sh 30m                      # the same, longer

Needs a server with the extension (the PG* variables, as scripts/with-pg.sh
exports them), the agent `shard-coordinator` (this checkout's
client/build/shard-coordinator if it was built, else the one on the PATH,
from make install-client; --agent names another) and psql. Python 3
standard library only.

What it runs
------------
Four clusters (CLUSTER_TEMPLATES), 14 agents each: `shard-coordinator -v
run` with test/chaos/child.sh as the worker:

  chaos_a  plain mode, handover exclusive, reshard_interval 0
  chaos_s  slot mode (40 sparse slot keys), exclusive, reshard_interval 100ms
  chaos_i  plain mode, handover immediate (the old one-step reshard: overlaps
           are expected there; it shows that the checker sees them)
  chaos_b  plain mode, handover barrier, reshard_interval 300ms, max_shards
           agents - 4 (so there are standbys)

The agents reach the server through a proxy in this process that forwards
everything except, during a "lost notices" fault, the agent's NOTIFY
messages (NotificationResponse), which it drops. For --duration seconds it
injects random faults into running agents (at most --max-down of a cluster
down at once):

  SIGKILL   of the agent (its child dies with it: PR_SET_PDEATHSIG);
            restarted 0.2-2 s later, half the time under the same name;
  SIGTERM   the agent stops its child, leaves, exits 0; restarted likewise;
  freeze    SIGSTOP of the agent, then of its child's process group, for
            longer than heartbeat_interval + grace_period (the server
            expires the member and hands its work on meanwhile), then
            SIGCONT of the agent alone: it must kill its frozen child before
            the child runs again (the driver resumes the child only once it
            is dead, or after 5 s: a "thaw-fence" violation);
  lost notices  every notice to four agents of a cluster is dropped for
            0.5-3 s (they learn from their next heartbeat's row);
  freeze, child resumed first   as freeze, but the child is resumed
            0.05-0.5 s before its agent (uncovered: see below);
  freeze of the agent alone     the child runs on, unsupervised (uncovered);
  freeze of the child alone     SIGSTOP of the child's group for 0.3-2 s
            while its agent runs (the agent resumes a stopped child to stop
            it, and counts it until its whole tree is gone: covered).

When the time is up, the frozen are resumed (when due), stopping agents
finish, and one more agent per cluster is killed (so the convergence
includes an expiry); the dead are not restarted. Then every agent gets
SIGTERM.

What it checks (TAP lines; any failure fails the run)
------------------------------------------------------
Work intervals. The agents log (-v) each child's start with its whole grant
and the moment nothing of its process tree is left, on CLOCK_MONOTONIC (the
start read before the fork, the end before the acknowledgement that follows
from it); this process stamps its own faults on the same clock
(time.monotonic()). From these the checker rebuilds, per child, when it may
have worked: [start, end of its tree], where the end of a child whose agent
was SIGKILLed is when this process saw the agent's tree gone, and a child
frozen with its agent worked only until it was frozen (if it never ran
again: its log file did not grow). Each interval carries its keys: slot
mode, the slot keys; plain mode, {x in 0..1023 : jump_hash(x, n) = k} for
shard k of n (jump_hash below, checked against the server's at start).

- overlaps: no key worked on by two children at once, in the exclusive and
  barrier clusters, under SIGKILL, SIGTERM, restarts, lost notices, freezes
  of agent and child resumed agent first, and freezes of the child alone.
  Reported apart, as expected and not failing (counts and the longest): the
  immediate cluster, and freezes the protocol cannot cover: a child resumed
  before its agent, and a child running while its agent is frozen (from the
  freeze on) — only fence() in the worker's transactions covers those
  (README);
- two children of one agent never overlap;
- a frozen child whose agent was resumed first is killed within 5 s and
  never runs again;
- the views, sampled every --sample-interval s: granted keys of different
  members never intersect; in exclusive and barrier clusters no granted key
  is in another member's releasing set; when no handover is pending (the
  cluster row read before and after the members shows the same epoch and
  handover_pending false) plain mode's shards are exactly 0..n-1 and slot
  mode's keys an exact cover of the slot set, counting as held the work
  meant for a member shown leaving or expired before it was granted (its
  own until the reshard that hands it on, as an expired member's grant is;
  the server does not count it as a pending handover); epochs of clusters
  and member names never go back, and no member's is above its cluster's;
- each child got what its agent logged (its log lines), and its epochs, per
  member name, never go back, nor do those an agent reports; in plain mode
  no shard is given to two members at one epoch;
- no agent exits by itself; SIGTERM ends an agent with status 0 within 10 s;
- after the chaos each cluster converges within heartbeat_interval +
  grace_period + reshard_interval + 1 s: members are the surviving agents,
  min(survivors, max_shards) of them active holding shards 0..n-1 (slot
  mode: keys covering the slot set), the rest standby, no handover pending,
  each active agent running one child whose environment matches the view
  (slot mode: its SHARD_SLOTS), standbys none;
- finally every agent leaves on SIGTERM and the clusters are empty;
- floors: the run saw view samples, faults of every covered kind (and
  notices actually dropped), handovers (a key's next holder another member)
  in the exclusive and barrier clusters, children and agent reports.

Output: "# " diagnostics, TAP lines, a summary and, last, "N passed, N
failed" (scripts/run-tests.sh reads it). The exit status is 1 when a check
failed. The work directory (the logs of every agent and child) is removed
on success unless --keep; on failure it is kept and named.
"""

import argparse
import collections
import glob
import os
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CHILD = os.path.join(HERE, "child.sh")

# name, mode, handover, reshard_interval, max_shards (None, or "cap": the
# agents per cluster - 4)
CLUSTER_TEMPLATES = [
    ("chaos_a", "plain", "exclusive", "0", None),
    ("chaos_s", "slots", "exclusive", "100ms", None),
    ("chaos_i", "plain", "immediate", "0", None),
    ("chaos_b", "plain", "barrier", "300ms", "cap"),
]
SLOT_KEYS = [3 + 7 * i for i in range(40)]  # sparse, like island numbers
KEY_UNIVERSE = 1024  # plain mode: the keys 0 .. KEY_UNIVERSE-1

TERM_TIMEOUT = 10.0  # s an agent may take to exit after SIGTERM
KILL_TIMEOUT = 1.0   # s the agents give a child between SIGTERM and SIGKILL
THAW_TIMEOUT = 5.0   # s an agent may take to kill its child after SIGCONT
MAX_EXAMPLES = 10    # violations described in full, per kind

# Fault kinds and their default weights (--faults). "covered" ones must
# never let two children work on one key in an exclusive cluster.
FAULTS = {
    "kill": 3, "term": 3, "freeze": 3, "lose-notices": 2,
    "freeze-child-alone": 1, "freeze-child-first": 1,
    "freeze-agent-alone": 1,
}
FAULT_NAMES = {
    "kill": "SIGKILL", "term": "SIGTERM",
    "freeze": "freeze (agent and child, agent resumed first)",
    "lose-notices": "lost notices",
    "freeze-child-alone": "freeze of the child alone",
    "freeze-child-first": "freeze, child resumed first",
    "freeze-agent-alone": "freeze of the agent alone",
}
COVERED = ("kill", "term", "freeze", "lose-notices", "freeze-child-alone")
# Tags of work the protocol cannot cover (see the docstring).
UNCOVERED_TAGS = {
    "child-first": "a child resumed before its agent",
    "agent-alone": "a child running while its agent is frozen",
    "paused-start": "a child forked by an agent frozen between reading the "
                    "clock for it and the fork",
}

MASK64 = (1 << 64) - 1


def jump_hash(key, buckets):
    """Lamping and Veach's jump consistent hash, exactly as the server's
    (src/core/jump_hash.cpp): the key as an unsigned 64-bit integer, the
    same double arithmetic (Python floats are IEEE doubles) and the same
    truncation."""
    key &= MASK64
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & MASK64
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


_shard_masks = {}


def shard_mask(shard, count):
    """Plain mode: the keys x of the universe with jump_hash(x, count) =
    shard, as a bit mask."""
    masks = _shard_masks.get(count)
    if masks is None:
        masks = [0] * count
        for x in range(KEY_UNIVERSE):
            masks[jump_hash(x, count)] |= 1 << x
        _shard_masks[count] = masks
    return masks[shard] if 0 <= shard < count else 0


def bits(mask):
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


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


def fault_weights(text):
    weights = dict(FAULTS)
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in FAULTS or not value.isdigit():
            raise argparse.ArgumentTypeError(
                f"not a fault weight: {item!r} (kinds: {', '.join(FAULTS)})")
        weights[name] = int(value)
    return weights


def proc_state(pid):
    """The state letter of /proc/pid/stat, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def stopped(pid):
    return proc_state(pid) in ("T", "t", None, "Z", "X")


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


def descendants_of(pid):
    out, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            out.append(kid)
            todo.append(kid)
    return out


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


def int_array(text):
    """'{1,2,3}' -> [1, 2, 3]; '-' (NULL) -> None."""
    if text == "-":
        return None
    text = text.strip("{}")
    return [int(x) for x in text.split(",")] if text else []


def clock(t):
    return f"{t:.3f}"


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


# ----- the proxy that loses notices -----

class NoticeDropper(threading.Thread):
    """A TCP proxy between the agents and the server that forwards every
    byte, except the NotificationResponse messages ('A') of a connection
    whose application_name (PGAPPNAME, one per agent) is in a drop window.
    The agents connect with sslmode=disable, so the server's stream is
    messages from its first byte."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(512)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.drop_until = {}  # application_name -> monotonic time
        self.dropped = collections.Counter()  # application_name -> notices
        self.forwarded = 0  # notices
        self.connections = 0
        self.errors = collections.Counter()
        self.stop_flag = False
        host = os.environ.get("PGHOST", "localhost").split(",")[0]
        port = int(os.environ.get("PGPORT", "5432").split(",")[0])
        if host.startswith("/"):
            self.upstream = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        else:
            self.upstream = (None, (host, port))

    def drop(self, app, seconds_):
        with self.lock:
            self.drop_until[app] = time.monotonic() + seconds_

    def dropping(self, app):
        with self.lock:
            until = self.drop_until.get(app)
        return until is not None and time.monotonic() < until

    def connect_upstream(self):
        family, address = self.upstream
        if family == socket.AF_UNIX:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(address)
            return s
        return socket.create_connection(address, timeout=5)

    def run(self):
        while not self.stop_flag:
            for key, mask in self.sel.select(timeout=0.2):
                if key.data is None:
                    self.accept()
                else:
                    key.data.on_event(key.fileobj, mask)

    def accept(self):
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        try:
            server = self.connect_upstream()
        except OSError:
            self.errors["upstream connect failed"] += 1
            client.close()
            return
        self.connections += 1
        _ProxyPair(self, client, server)

    def stop(self):
        self.stop_flag = True
        self.join(timeout=5)


class _ProxyPair:
    def __init__(self, proxy, client, server):
        self.proxy = proxy
        self.client = client
        self.server = server
        for s in (client, server):
            s.setblocking(False)
            if s.family != socket.AF_UNIX:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.app = ""
        self.startup = bytearray()  # the client's first message, unparsed
        self.started = False
        self.from_server = bytearray()  # unparsed messages
        self.out = {client: bytearray(), server: bytearray()}
        self.closed = False
        proxy.sel.register(client, selectors.EVENT_READ, self)
        proxy.sel.register(server, selectors.EVENT_READ, self)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.server):
            try:
                self.proxy.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def send(self, sock, data):
        if not data:
            return
        buf = self.out[sock]
        buf += data
        self.flush(sock)

    def flush(self, sock):
        buf = self.out[sock]
        try:
            while buf:
                n = sock.send(buf)
                del buf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.close()
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0)
        try:
            self.proxy.sel.modify(sock, events, self)
        except (KeyError, ValueError):
            pass

    def on_event(self, sock, mask):
        if self.closed:
            return
        if mask & selectors.EVENT_WRITE:
            self.flush(sock)
            if self.closed:
                return
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        if sock is self.client:
            self.from_client(data)
        else:
            self.from_server_bytes(data)

    def from_client(self, data):
        if self.started:
            self.send(self.server, data)
            return
        self.startup += data
        while not self.started and len(self.startup) >= 8:
            length, code = struct.unpack("!ii", self.startup[:8])
            if len(self.startup) < length:
                return
            packet = bytes(self.startup[:length])
            del self.startup[:length]
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                self.send(self.client, b"N")
                continue
            fields = packet[8:].split(b"\0")
            params = dict(zip(fields[0::2], fields[1::2]))
            self.app = params.get(b"application_name", b"").decode(
                errors="replace")
            self.started = True
            self.send(self.server, packet + bytes(self.startup))
            self.startup.clear()

    def from_server_bytes(self, data):
        buf = self.from_server
        buf += data
        out = bytearray()
        drop = None
        pos = 0
        while len(buf) - pos >= 5:
            length = struct.unpack("!i", buf[pos + 1:pos + 5])[0]
            end = pos + 1 + length
            if end > len(buf):
                break
            if buf[pos] == ord("A"):
                if drop is None:
                    drop = self.proxy.dropping(self.app)
                if drop:
                    with self.proxy.lock:
                        self.proxy.dropped[self.app] += 1
                    pos = end
                    continue
                self.proxy.forwarded += 1
            out += buf[pos:end]
            pos = end
        del buf[:pos]
        self.send(self.client, bytes(out))


# ----- the view sampler -----

VIEW_SQL = """
SELECT 'c0', cluster, '', '-', num_shards::text, epoch::text, '',
       coalesce(slots::text, '-'), '-', handover, handover_pending::text,
       grant_count::text, '-', '-'
  FROM shard_coordinator.clusters WHERE cluster LIKE 'chaos%'
UNION ALL
SELECT 'm', cluster, member, coalesce(shard::text, '-'), num_shards::text,
       coalesce(epoch::text, '-'), state, coalesce(slots::text, '-'),
       coalesce(releasing, '-'), '', '', '', coalesce(target_shard::text, '-'),
       coalesce(target_slots::text, '-')
  FROM shard_coordinator.members WHERE cluster LIKE 'chaos%'
UNION ALL
SELECT 'c1', cluster, '', '-', num_shards::text, epoch::text, '',
       coalesce(slots::text, '-'), '-', handover, handover_pending::text,
       grant_count::text, '-', '-'
  FROM shard_coordinator.clusters WHERE cluster LIKE 'chaos%'
"""

Member = collections.namedtuple(
    "Member", "shard num_shards epoch state slots releasing target_shard "
    "target_slots")
Cluster = collections.namedtuple(
    "Cluster", "epoch num_shards slots handover pending grant_count")


def parse_view(rows):
    """-> (members: cluster -> {member: Member}, before: cluster -> Cluster,
    after: cluster -> Cluster); `before` and `after` are the clusters view
    read before and after the members view."""
    members = collections.defaultdict(dict)
    before, after = {}, {}
    for row in rows:
        kind, cluster, member, shard, n, epoch, state, slots, releasing, \
            handover, pending, grant_count, target_shard, target_slots = row
        if kind == "m":
            members[cluster][member] = Member(
                None if shard == "-" else int(shard), int(n),
                None if epoch == "-" else int(epoch), state,
                int_array(slots), None if releasing == "-" else releasing,
                None if target_shard == "-" else int(target_shard),
                int_array(target_slots))
        else:
            keys = int_array(slots)
            (before if kind == "c0" else after)[cluster] = Cluster(
                int(epoch), int(n), keys or None, handover, pending == "true",
                int(grant_count))
    return members, before, after


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


class KeySpace:
    """A cluster's keys as bit masks: plain mode the universe 0..1023, slot
    mode its slot keys."""

    def __init__(self, slots):
        self.slots = slots
        self.index = {k: i for i, k in enumerate(slots)} if slots else None

    def grant(self, shard, count, slots):
        if self.index is not None:
            mask = 0
            for k in slots or ():
                if k in self.index:
                    mask |= 1 << self.index[k]
            return mask
        if shard is None:
            return 0
        return shard_mask(shard, count)

    def all(self):
        if self.index is not None:
            return (1 << len(self.slots)) - 1
        return (1 << KEY_UNIVERSE) - 1

    def names(self, mask, limit=8):
        keys = bits(mask)
        if self.index is not None:
            keys = [self.slots[i] for i in keys]
        text = ",".join(str(k) for k in keys[:limit])
        return f"{{{text}{',...' if len(keys) > limit else ''}}} " \
               f"({len(keys)} keys)"

    def releasing(self, text):
        """The view's releasing column -> mask: 'shard 2 of 3; shard 0 of
        4' or 'slots {1,2}'."""
        if text is None:
            return 0
        if text.startswith("slots"):
            return self.grant(None, 0, int_array(text[len("slots "):]))
        mask = 0
        for m in re.finditer(r"shard (-?\d+) of (\d+)", text):
            mask |= shard_mask(int(m.group(1)), int(m.group(2)))
        return mask


class Sampler(threading.Thread):
    """Samples the views continuously and checks the view invariants."""

    def __init__(self, chaos, interval, violations, errlog):
        super().__init__(daemon=True)
        self.chaos = chaos
        self.interval = interval
        self.violations = violations
        self.psql = Psql(errlog)
        self.stop_event = threading.Event()
        self.samples = 0
        self.errors = 0
        self.cluster_epochs = {}   # cluster -> last epoch
        self.first_epochs = {}
        self.epochs_seen = collections.defaultdict(set)
        self.pending_samples = collections.Counter()  # handover pending
        self.pending_epochs = collections.defaultdict(set)
        self.settled_samples = collections.Counter()
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
            self.check(rows, started)
            self.stop_event.wait(max(0.0, self.interval -
                                     (time.monotonic() - started)))

    def check(self, rows, at):
        self.samples += 1
        members, before, after = parse_view(rows)
        stamp = clock(at)
        for cluster, c0 in before.items():
            c1 = after.get(cluster, c0)
            space = self.chaos.spaces.get(cluster)
            if space is None:
                continue
            ms = members.get(cluster, {})
            grants = {}
            holds = {}
            for name, m in ms.items():
                if space.index is not None:
                    g = space.grant(None, 0, m.slots) if m.slots else 0
                else:
                    g = space.grant(m.shard, m.num_shards, None)
                if g:
                    grants[name] = g
                holds[name] = space.releasing(m.releasing)
            # Granted keys of different members never intersect.
            names = sorted(grants)
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    both = grants[a] & grants[b]
                    if both:
                        self.violations.add(
                            "view-grants",
                            f"{stamp} {cluster} epoch {c0.epoch}: {a} "
                            f"{ms[a].shard}/{ms[a].num_shards} and {b} "
                            f"{ms[b].shard}/{ms[b].num_shards} both hold "
                            f"{space.names(both)}")
            # Exclusive handover: a granted key is nobody else's to release.
            if c0.handover != "immediate":
                for a, g in grants.items():
                    for b, h in holds.items():
                        if a != b and g & h:
                            self.violations.add(
                                "view-holds",
                                f"{stamp} {cluster} epoch {c0.epoch}: "
                                f"{space.names(g & h)} granted to {a} "
                                f"while {b} still releases them "
                                f"({ms[b].releasing})")
            # Settled: exactly 0..n-1, or an exact cover of the slot set
            # (once someone is active: pending members hold nothing). Work
            # meant for a member that left or expired before it was granted
            # is its own until the reshard that hands it on (as an expired
            # member's grant is): the server counts no handover pending
            # for it (ReshardPolicy::pending()).
            departed = {name: m for name, m in ms.items()
                        if m.state in ("leaving", "expired")}
            if (c0.epoch == c1.epoch and not c0.pending and not c1.pending
                    and any(m.state == "active" for m in ms.values())):
                self.settled_samples[cluster] += 1
                if space.index is not None:
                    union = 0
                    for g in grants.values():
                        union |= g
                    for m in departed.values():
                        union |= space.grant(None, 0, m.target_slots)
                    if union != space.all():
                        self.violations.add(
                            "view-cover",
                            f"{stamp} {cluster} epoch {c0.epoch}, no "
                            f"handover pending: keys not granted: "
                            f"{space.names(space.all() & ~union)}")
                else:
                    held = sorted(
                        [(m.shard, m.num_shards, name)
                         for name, m in ms.items() if m.shard is not None]
                        + [(m.target_shard, m.num_shards, name + " (target)")
                           for name, m in departed.items()
                           if m.shard is None and m.target_shard is not None])
                    shards = [s for s, _, _ in held]
                    counts = {n for _, n, _ in held}
                    n = c0.grant_count
                    if shards != list(range(n)) or counts - {n}:
                        self.violations.add(
                            "view-cover",
                            f"{stamp} {cluster} epoch {c0.epoch}, no "
                            f"handover pending, grant count {n}: held "
                            f"{held}")
            else:
                self.pending_samples[cluster] += 1
                if c0.pending:
                    self.pending_epochs[cluster].add(c0.epoch)
            # Epochs never go back; no member's above its cluster's.
            for name, m in ms.items():
                if m.epoch is None:
                    continue
                key = (cluster, name)
                last = self.member_epochs.get(key)
                if last is not None and m.epoch < last:
                    self.violations.add(
                        "view-epoch",
                        f"{stamp} {cluster}/{name}: epoch {last} -> {m.epoch}")
                self.member_epochs[key] = m.epoch
                if m.epoch > c1.epoch:
                    self.violations.add(
                        "view-epoch",
                        f"{stamp} {cluster}/{name}: epoch {m.epoch} above "
                        f"the cluster's {c1.epoch}")
            for epoch in (c0.epoch, c1.epoch):
                last = self.cluster_epochs.get(cluster)
                if last is not None and epoch < last:
                    self.violations.add(
                        "view-epoch",
                        f"{stamp} {cluster}: epoch {last} -> {epoch}")
                self.first_epochs.setdefault(cluster, epoch)
                self.cluster_epochs[cluster] = epoch
                self.epochs_seen[cluster].add(epoch)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=10)
        self.psql.close()


# ----- agents and faults -----

class Agent:
    """One `shard-coordinator run` process."""

    def __init__(self, chaos, cluster, member):
        self.chaos = chaos
        self.cluster = cluster
        self.member = member
        chaos.agent_seq += 1
        self.log_name = f"{member}.{chaos.agent_seq}.log"
        self.log_path = os.path.join(chaos.dir, "agents", self.log_name)
        self.app = f"chaos:{member}:{chaos.agent_seq}"
        env = dict(chaos.env, PGAPPNAME=self.app)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [chaos.agent_bin, "-v", "run", "--cluster", cluster,
                 "--member", member, "--kill-timeout",
                 f"{int(KILL_TIMEOUT * 1000)}ms", "--", CHILD],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        self.pid = self.proc.pid
        # running, frozen, thawing (resumed, its frozen child not dead yet),
        # child-frozen, terminating, dead
        self.state = "running"
        self.due = None
        self.freeze = None  # the record of the freeze in progress
        self.restart_name = None

    def running(self):
        return self.state == "running" and self.proc.poll() is None


class Chaos:
    def __init__(self, args, workdir):
        self.args = args
        self.dir = workdir
        self.rng = random.Random(args.seed)
        self.agent_bin = args.agent
        self.proxy = NoticeDropper()
        self.env = dict(os.environ, CHAOS_DIR=workdir,
                        CHAOS_TICK=f"{args.tick:.3f}",
                        PGHOST="127.0.0.1", PGPORT=str(self.proxy.port),
                        PGSSLMODE="disable", PGGSSENCMODE="disable")
        self.keep = args.keep  # the work directory (else removed on success)
        self.agent_seq = 0
        self.agents = []
        self.agent_info = {}  # log name -> (cluster, member)
        self.faults = collections.Counter()  # by FAULTS kind and restarts
        self.events = []  # (monotonic, what, cluster, member, agent log)
        self.kills = []   # dicts: log, t_kill, t_gone, pids
        self.freezes = []  # dicts, see fault_freeze()
        self.drops = []   # (t_from, t_to, log)
        self.violations = Violations()
        self.anomalies = collections.Counter()
        self.fence_delays = []
        self.name_seq = collections.Counter()
        self.errlog = open(os.path.join(workdir, "psql.log"), "w")
        self.psql = Psql(self.errlog)
        self.hb = args.heartbeat
        self.grace = args.grace
        # name -> dict(mode, handover, reshard (s), reshard_text, cap, slots)
        self.clusters = {}
        self.spaces = {}
        for i in range(args.clusters):
            name, mode, handover, reshard, cap = \
                CLUSTER_TEMPLATES[i % len(CLUSTER_TEMPLATES)]
            if i >= len(CLUSTER_TEMPLATES):
                name += str(i // len(CLUSTER_TEMPLATES))
            cap = max(1, args.agents_per_cluster - 4) if cap else None
            slots = list(SLOT_KEYS) if mode == "slots" else None
            self.clusters[name] = dict(mode=mode, handover=handover,
                                       reshard=seconds(reshard),
                                       reshard_text=reshard, cap=cap,
                                       slots=slots)
            self.spaces[name] = KeySpace(slots)
        os.makedirs(os.path.join(workdir, "agents"))
        for name in self.clusters:
            os.makedirs(os.path.join(workdir, name))

    # ----- setup -----

    def check_jump_hash(self):
        """Python's jump_hash against the server's: -> list of mismatches."""
        keys = list(range(0, KEY_UNIVERSE, 7)) + [
            -1, -2, -(1 << 63), (1 << 63) - 1, 123456789012345, 1 << 40]
        buckets = [1, 2, 3, 5, 7, 13, 14, 56, 1000, 65536, (1 << 31) - 1]
        rows = self.psql.query(
            "SELECT k, b, shard_coordinator.jump_hash(k, b) FROM "
            f"unnest(ARRAY{keys}::bigint[]) k, unnest(ARRAY{buckets}) b")
        bad = [(int(k), int(b), int(s), jump_hash(int(k), int(b)))
               for k, b, s in rows if jump_hash(int(k), int(b)) != int(s)]
        if len(rows) != len(keys) * len(buckets):
            bad.append(("rows", len(rows)))
        return bad, len(rows)

    def configure(self):
        for name, c in self.clusters.items():
            extra = (f", max_shards => {c['cap']}" if c["cap"]
                     else ", clear_max_shards => true")
            slots = (f"ARRAY{c['slots']}" if c["slots"] else "'{}'")
            self.psql.query(
                f"SELECT shard_coordinator.configure('{name}', "
                f"heartbeat_interval => '{int(self.hb * 1000)}ms', "
                f"grace_period => '{int(self.grace * 1000)}ms', "
                f"reshard_interval => '{c['reshard_text']}'{extra}, "
                f"slots => {slots}::integer[], "
                f"handover => '{c['handover']}')")

    def event(self, what, agent):
        self.events.append((time.monotonic(), what, agent.cluster,
                            agent.member, agent.log_name))

    def start_agent(self, cluster, member):
        agent = Agent(self, cluster, member)
        self.agents.append(agent)
        self.agent_info[agent.log_name] = (cluster, member)
        self.event("start", agent)
        return agent

    def new_member_name(self, cluster):
        self.name_seq[cluster] += 1
        return f"{cluster}-m{self.name_seq[cluster]:03d}"

    def child_files(self, agent, pid):
        return glob.glob(os.path.join(self.dir, agent.cluster,
                                      f"child.{agent.member}.{pid}.*"))

    def child_size(self, agent, pid):
        return sum(os.path.getsize(f) for f in self.child_files(agent, pid))

    # ----- faults -----

    def down_count(self, cluster):
        return sum(1 for a in self.agents if a.cluster == cluster
                   and a.state in ("frozen", "thawing", "terminating",
                                   "dead", "child-frozen")
                   and not (a.state == "dead" and a.due is None))

    def inject(self):
        candidates = [a for a in self.agents if a.running()
                      and self.down_count(a.cluster) < self.args.max_down]
        if not candidates:
            return
        agent = self.rng.choice(candidates)
        kinds = [k for k, w in self.args.faults.items() if w > 0]
        kind = self.rng.choices(kinds,
                                weights=[self.args.faults[k] for k in kinds])[0]
        if kind == "kill":
            self.fault_kill(agent)
        elif kind == "term":
            self.fault_term(agent)
        elif kind == "lose-notices":
            self.fault_lose_notices(agent)
        else:
            self.fault_freeze(agent, kind)

    def restart_later(self, agent):
        agent.state = "dead"
        agent.due = time.monotonic() + self.rng.uniform(0.2, 2.0)
        agent.restart_name = (agent.member if self.rng.random() < 0.5
                              else self.new_member_name(agent.cluster))

    def fault_kill(self, agent, count=True):
        """SIGKILL of the agent; its child dies of PR_SET_PDEATHSIG. The
        end of the tree is when this process saw every descendant gone."""
        if count:
            self.faults["kill"] += 1
        pids = descendants_of(agent.pid)
        self.event("SIGKILL", agent)
        t_kill = time.monotonic()
        os.kill(agent.pid, signal.SIGCONT)  # it may be frozen (the end)
        os.kill(agent.pid, signal.SIGKILL)
        agent.proc.wait()
        if not wait_for(lambda: not any(alive(p) for p in pids), 5.0, 0.005):
            self.anomalies["a killed agent's tree outlived it by 5 s"] += 1
        self.kills.append(dict(log=agent.log_name, t_kill=t_kill,
                               t_gone=time.monotonic(), pids=pids))
        self.restart_later(agent)

    def fault_term(self, agent):
        self.faults["term"] += 1
        self.event("SIGTERM", agent)
        os.kill(agent.pid, signal.SIGTERM)
        agent.state = "terminating"
        agent.due = time.monotonic() + TERM_TIMEOUT

    def fault_lose_notices(self, agent):
        """Every notice to the agent, and to up to three others of its
        cluster, is dropped for 0.5-3 s."""
        self.faults["lose-notices"] += 1
        others = [a for a in self.agents if a.cluster == agent.cluster
                  and a is not agent and a.proc.poll() is None]
        length = self.rng.uniform(0.5, 3.0)
        now = time.monotonic()
        for a in [agent] + self.rng.sample(others, min(3, len(others))):
            self.event("lose notices", a)
            self.proxy.drop(a.app, length)
            self.drops.append((now, now + length, a.log_name))

    def stop_groups(self, kids):
        for kid in kids:
            try:
                os.killpg(kid, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(kid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
        if not wait_for(lambda: all(stopped(k) for k in kids), 5):
            self.anomalies["a child did not stop on SIGSTOP"] += 1

    def cont_groups(self, kids):
        for kid in kids:
            try:
                os.killpg(kid, signal.SIGCONT)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(kid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def fault_freeze(self, agent, kind):
        """Freezes (SIGSTOP) the agent and/or its child's process group.
        The record: kind, log, kids (alive children then), t_agent (the
        agent confirmed stopped), t_stop (everything frozen confirmed
        stopped), sizes (the kids' log sizes then), t_cont_child,
        t_cont_agent (stamped before the SIGCONT)."""
        record = dict(kind=kind, log=agent.log_name, kids=[], t_agent=None,
                      t_stop=None, sizes={}, started=set(), t_cont_child=None,
                      t_cont_agent=None, dead_at_thaw=None)
        if kind != "freeze-child-alone":
            os.kill(agent.pid, signal.SIGSTOP)
            if not wait_for(lambda: stopped(agent.pid), 5):
                self.anomalies["agent did not stop on SIGSTOP"] += 1
            record["t_agent"] = time.monotonic()
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
        if kind == "freeze-child-alone" and not kids:
            return
        if kind != "freeze-agent-alone":
            self.stop_groups(kids)
        record["t_stop"] = time.monotonic()
        record["kids"] = kids
        record["sizes"] = {k: self.child_size(agent, k) for k in kids}
        # The children that had begun (each writes its file first thing):
        # one of them not alive now ended before the freeze.
        record["started"] = {
            int(os.path.basename(f).rsplit(".", 2)[1])
            for f in glob.glob(os.path.join(self.dir, agent.cluster,
                                            f"child.{agent.member}.*"))}
        self.faults[kind] += 1
        self.event(f"SIGSTOP ({kind})", agent)
        self.freezes.append(record)
        agent.freeze = record
        if kind == "freeze-child-alone":
            agent.state = "child-frozen"
            agent.due = time.monotonic() + self.rng.uniform(0.3, 2.0)
            return
        agent.state = "frozen"
        lease = self.hb + self.grace
        agent.due = time.monotonic() + self.rng.uniform(lease + 0.3,
                                                        lease + 2.0)

    def thaw(self, agent):
        """The end of a freeze, in the order of its kind."""
        record = agent.freeze
        kind = record["kind"]
        now = time.monotonic()
        if kind == "freeze-child-alone":
            self.event("SIGCONT child", agent)
            record["t_cont_child"] = now
            self.cont_groups(record["kids"])
            agent.state, agent.freeze = "running", None
        elif kind == "freeze-child-first" and record["t_cont_child"] is None:
            self.event("SIGCONT child", agent)
            record["t_cont_child"] = now
            self.cont_groups(record["kids"])
            agent.due = now + self.rng.uniform(0.05, 0.5)  # then the agent
        else:
            self.event("SIGCONT agent", agent)
            record["t_cont_agent"] = now
            os.kill(agent.pid, signal.SIGCONT)
            if kind == "freeze":
                agent.state = "thawing"
                agent.due = now + THAW_TIMEOUT
            else:
                agent.state, agent.freeze = "running", None

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
            elif agent.state in ("frozen", "child-frozen") and now >= agent.due:
                self.thaw(agent)
            elif agent.state == "thawing":
                record = agent.freeze
                if not any(alive(k) for k in record["kids"]):
                    self.fence_delays.append(now - record["t_cont_agent"])
                    record["dead_at_thaw"] = True
                    self.cont_groups(record["kids"])
                    agent.state, agent.freeze = "running", None
                elif now >= agent.due:
                    record["dead_at_thaw"] = False
                    self.violations.add(
                        "thaw-fence",
                        f"{agent.cluster}/{agent.member} pid {agent.pid}: "
                        f"child(ren) {record['kids']} still there "
                        f"{THAW_TIMEOUT:.0f}s after the agent was resumed "
                        f"past its lease (log {agent.log_path})")
                    self.cont_groups(record["kids"])
                    agent.state, agent.freeze = "running", None
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
                    self.fault_kill(agent, count=False)
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

    def converged(self, cluster, view):
        """None if the cluster has converged, else the reason it has not."""
        members, before, after = view
        survivors = self.survivors(cluster)
        ms = members.get(cluster, {})
        if set(ms) != set(survivors):
            extra = sorted(set(ms) - set(survivors))
            missing = sorted(set(survivors) - set(ms))
            return f"members: extra {extra}, missing {missing}"
        bad = sorted(f"{m}={v.state}" for m, v in ms.items()
                     if v.state not in ("active", "standby"))
        if bad:
            return f"not settled: {bad}"
        c0, c1 = before.get(cluster), after.get(cluster)
        if c0 is None or c1 is None or c0.pending or c1.pending:
            return "handover pending"
        conf = self.clusters[cluster]
        cap = conf["cap"]
        n = min(len(survivors), cap) if cap else len(survivors)
        space = self.spaces[cluster]
        active = {m: v for m, v in ms.items() if v.state == "active"}
        if conf["slots"]:
            n = min(n, len(conf["slots"]))
            if len(active) != n:
                return f"{len(active)} active, expected {n}"
            union = 0
            for m, v in active.items():
                g = space.grant(None, 0, v.slots)
                if not g or union & g:
                    return f"{m} holds {v.slots}"
                union |= g
            if union != space.all():
                return f"keys not granted: {space.names(space.all() & ~union)}"
        else:
            shards = sorted(v.shard for v in active.values()
                            if v.shard is not None)
            if shards != list(range(n)) or len(active) != n:
                return f"shards {shards}, expected 0..{n - 1}"
            if any(v.num_shards != n for v in active.values()):
                return f"counts {sorted({v.num_shards for v in ms.values()})}"
        for member, v in sorted(ms.items()):
            kids = children_of(survivors[member].pid)
            if v.state == "standby":
                if kids:
                    return f"standby {member} runs {kids}"
                continue
            if len(kids) != 1:
                return f"{member} (shard {v.shard}) runs {kids}"
            env = environ_of(kids[0]) or {}
            want = {"SHARD_CLUSTER": cluster, "SHARD_MEMBER": member}
            if conf["slots"]:
                # Slot mode restarts a child only when its keys change: a
                # new count alone leaves its index, count and epoch.
                want["SHARD_SLOTS"] = ",".join(str(k) for k in v.slots)
                if int(env.get("SHARD_EPOCH") or 1 << 62) > v.epoch:
                    return (f"{member}: child {kids[0]} has SHARD_EPOCH "
                            f"{env.get('SHARD_EPOCH')} > {v.epoch}")
            else:
                want.update(SHARD_INDEX=str(v.shard), SHARD_COUNT=str(n),
                            SHARD_EPOCH=str(v.epoch))
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
            try:
                view = parse_view(self.psql.query(VIEW_SQL))
            except QueryError as e:
                view = ({}, {}, {})
                say(f"convergence query failed: {e}")
            now = time.monotonic()
            pending = False
            for cluster, deadline in deadlines.items():
                if result[cluster][0] is not None:
                    continue
                reason = self.converged(cluster, view)
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
        tap = []
        bad, checked = self.check_jump_hash()
        tap.append((not bad, f"jump_hash here equals the server's "
                    f"({checked} key/count pairs"
                    + (f"; differ: {bad[:5]})" if bad else ")")))
        if bad:
            return self.finish_early(tap)
        self.configure()
        self.proxy.start()
        sampler = Sampler(self, args.sample_interval, self.violations,
                          self.errlog)
        # Epochs before any agent runs: every reshard after this is counted.
        for cluster, c in parse_view(self.psql.query(VIEW_SQL))[1].items():
            sampler.first_epochs[cluster] = c.epoch
            sampler.cluster_epochs[cluster] = c.epoch
        sampler.start()
        for cluster in self.clusters:
            for _ in range(args.agents_per_cluster):
                self.start_agent(cluster, self.new_member_name(cluster))
        say(f"started {len(self.agents)} agents ({self.agent_bin}) in "
            f"{len(self.clusters)} clusters: " + ", ".join(
                f"{n} ({c['mode']}, {c['handover']})"
                for n, c in self.clusters.items())
            + f"; heartbeat {self.hb * 1000:.0f}ms, grace "
            f"{self.grace * 1000:.0f}ms; work directory {self.dir}")
        t0 = time.monotonic()
        initial = self.wait_converged(
            {c: t0 + args.settle_timeout for c in self.clusters}, t0)
        bad = {c: r for c, (t, r) in initial.items() if t is None}
        tap.append((not bad, "initial convergence of "
                    f"{len(self.agents)} agents"
                    + (f": {bad}" if bad else
                       f" in {max(t for t, _ in initial.values()):.1f}s")))

        say(f"chaos for {args.duration:.0f}s, seed {args.seed}, faults "
            + ", ".join(f"{k}={w}" for k, w in args.faults.items()))
        chaos_start = time.monotonic()
        end = chaos_start + args.duration
        while time.monotonic() < end:
            self.handle_due()
            if self.rng.random() < 0.5:
                self.inject()
            # Pacing of the faults, not synchronisation.
            time.sleep(self.rng.uniform(0.5, 1.5) * args.fault_interval / 2)

        # Stop the chaos: the frozen are resumed when due (not earlier: an
        # agent resumed before its lease ran out rightly keeps its frozen
        # child), the stopping finish; the dead stay dead.
        def calm():
            self.handle_due(restarts=False)
            return not any(a.state in ("frozen", "child-frozen", "thawing",
                                       "terminating") for a in self.agents)
        wait_for(calm, THAW_TIMEOUT + TERM_TIMEOUT + 2, poll=0.05)
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
        for cluster, c in self.clusters.items():
            bounds[cluster] = self.hb + self.grace + c["reshard"] + 1.0
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
        if late:
            # How long it did take, for the diagnosis.
            more = self.wait_converged(
                {c: time.monotonic() + 10 for c in late}, t_stop)
            say("convergence of the late clusters: " + ", ".join(
                f"{c} {t:.2f}s" if t is not None else f"{c} NOT ({r})"
                for c, (t, r) in more.items()))

        # Everyone leaves.
        stopping = [a for a in self.agents if a.running()]
        for agent in stopping:
            os.kill(agent.pid, signal.SIGTERM)
        for agent in stopping:
            try:
                rc = agent.proc.wait(timeout=TERM_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = None
                self.fault_kill(agent, count=False)
            if rc != 0:
                self.violations.add(
                    "agent-exit", f"{agent.cluster}/{agent.member} pid "
                    f"{agent.pid}: status {rc} after the final SIGTERM")
            agent.state = "dead"
            agent.due = None
        empty = wait_for(lambda: not parse_view(
            self.psql.query(VIEW_SQL))[0], 5.0, poll=0.05)
        sampler.stop()
        self.proxy.stop()
        left = parse_view(self.psql.query(VIEW_SQL))[0]
        tap.append((bool(empty), "every agent left on SIGTERM: clusters empty"
                    + ("" if empty else f": {dict(left)}")))

        report = Report(self, sampler)
        report.analyse()
        return report.finish(tap, chaos_start, t_stop)

    def finish_early(self, tap):
        self.keep = True
        say(f"logs kept in {self.dir}")
        print(f"1..{len(tap)}")
        for i, (ok, text) in enumerate(tap, 1):
            print(f"{'ok' if ok else 'not ok'} {i} - {text}")
        passed = sum(1 for ok, _ in tap if ok)
        print(f"{passed} passed, {len(tap) - passed} failed", flush=True)
        return False

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
            if agent.freeze:
                for kid in agent.freeze["kids"]:
                    if alive(kid):
                        try:
                            os.killpg(kid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        self.proxy.stop_flag = True
        self.psql.close()


# ----- the analysis -----

CHILD_LINE = re.compile(r"^(\d+\.\d+) (start|act|stop) acting as shard (-?\d+) "
                        r"of (\d+) epoch (\d+) slots (\S+)")
AGENT_PREFIX = r"^(\S+) shard-coordinator\[\d+\] \w+: "
ASSIGNMENT_LINE = re.compile(AGENT_PREFIX + r"assignment: (\w+)"
                             r"(?: shard (\d+) of (\d+))?.*epoch (\d+)")
START_LINE = re.compile(AGENT_PREFIX + r"started pid (\d+) \(CLOCK_MONOTONIC "
                        r"(\d+\.\d+)\): (?:shard (-?\d+) of (\d+)|slots "
                        r"\[([-\d,]*)\]), epoch (\d+)")
GONE_LINE = re.compile(AGENT_PREFIX + r"pid (\d+) and its process tree are "
                       r"gone \(CLOCK_MONOTONIC (\d+\.\d+)\)")
ACK_LINE = re.compile(AGENT_PREFIX + r"acknowledging epoch (\d+)")


class Child:
    """One child process, from its agent's log."""

    def __init__(self, log, cluster, member, pid, start, shard, count, slots,
                 epoch):
        self.log, self.cluster, self.member, self.pid = log, cluster, member, pid
        self.start, self.end, self.end_from = start, None, None
        self.shard, self.count, self.slots, self.epoch = (shard, count, slots,
                                                          epoch)
        self.mask = 0
        self.segments = []  # (start, end, tag or None)
        self.notes = []

    def __str__(self):
        work = (f"slots {self.slots}" if self.slots is not None
                else f"shard {self.shard} of {self.count}")
        end = f"{self.end:.3f}" if self.end is not None else "?"
        return (f"{self.member} pid {self.pid} ({work}, epoch {self.epoch}; "
                f"{self.start:.3f}..{end} {self.end_from}"
                + (f"; {'; '.join(self.notes)}" if self.notes else "") + ")")


class Report:
    def __init__(self, chaos, sampler):
        self.chaos = chaos
        self.sampler = sampler
        self.violations = chaos.violations
        self.children = {}  # (log, pid) -> Child
        self.lines = 0      # children's log lines
        self.agent_reports = 0
        self.report_states = collections.Counter()
        self.acks = collections.Counter()  # cluster -> acknowledgements
        self.overlaps = collections.defaultdict(list)  # category -> [s]
        self.handovers = collections.Counter()  # cluster -> count
        self.handover_gaps = collections.defaultdict(list)

    # -- reading --

    def read_agent_logs(self):
        folder = os.path.join(self.chaos.dir, "agents")
        self.reports = []  # (cluster, member, log, [(state, shard, epoch, line)])
        for log in sorted(os.listdir(folder)):
            cluster, member = self.chaos.agent_info[log]
            slot_mode = self.chaos.clusters[cluster]["slots"] is not None
            seen = []
            with open(os.path.join(folder, log), errors="replace") as f:
                for line in f:
                    m = START_LINE.match(line)
                    if m:
                        pid = int(m.group(2))
                        slots = (int_array("{" + m.group(6) + "}")
                                 if m.group(6) is not None else None)
                        child = Child(
                            log, cluster, member, pid, float(m.group(3)),
                            int(m.group(4)) if m.group(4) else None,
                            int(m.group(5)) if m.group(5) else None,
                            slots, int(m.group(7)))
                        if (slots is not None) != slot_mode:
                            self.violations.add(
                                "child-env", f"{log}: {line.strip()} in a "
                                f"{'slot' if slot_mode else 'plain'} cluster")
                        child.mask = self.chaos.spaces[cluster].grant(
                            child.shard, child.count, slots)
                        self.children[(log, pid)] = child
                        continue
                    m = GONE_LINE.match(line)
                    if m:
                        child = self.children.get((log, int(m.group(2))))
                        if child is None:
                            self.violations.add(
                                "agent-log", f"{log}: gone without a start: "
                                f"{line.strip()}")
                        else:
                            child.end = float(m.group(3))
                            child.end_from = "gone (agent)"
                        continue
                    m = ACK_LINE.match(line)
                    if m:
                        self.acks[cluster] += 1
                        continue
                    m = ASSIGNMENT_LINE.match(line)
                    if m:
                        self.agent_reports += 1
                        self.report_states[m.group(2)] += 1
                        seen.append((m.group(2),
                                     int(m.group(3)) if m.group(3) else None,
                                     int(m.group(5)), line.strip()))
            self.reports.append((cluster, member, log, seen))

    def read_children(self):
        """The children's own lines: what each was given, compared with what
        its agent logged."""
        by_member_pid = collections.defaultdict(list)
        for child in self.children.values():
            by_member_pid[(child.cluster, child.member, child.pid,
                           child.epoch)].append(child)
        for cluster in self.chaos.clusters:
            folder = os.path.join(self.chaos.dir, cluster)
            for name in os.listdir(folder):
                if not name.startswith("child."):
                    continue
                member, pid, epoch = name[len("child."):].rsplit(".", 2)
                what = set()
                with open(os.path.join(folder, name)) as f:
                    for line in f:
                        m = CHILD_LINE.match(line)
                        if not m:
                            continue  # a line cut short by SIGKILL
                        self.lines += 1
                        what.add((int(m.group(3)), int(m.group(4)),
                                  int(m.group(5)), m.group(6)))
                if not what:
                    continue
                logged = by_member_pid.get((cluster, member, int(pid),
                                            int(epoch)))
                if not logged:
                    self.violations.add(
                        "child-env", f"{cluster}/{name}: a child its agent "
                        "did not log (an agent without the CLOCK_MONOTONIC "
                        "log lines? rebuild it)")
                    continue
                c = logged[0]
                want = (c.shard if c.shard is not None else None, c.count,
                        c.epoch,
                        ",".join(map(str, c.slots)) if c.slots is not None
                        else "-")
                got = sorted(what)
                if len(got) != 1 or (c.slots is None and got[0] != want) or (
                        c.slots is not None
                        and (got[0][2], got[0][3]) != (want[2], want[3])):
                    self.violations.add(
                        "child-env", f"{cluster}/{name}: acted as {got}, "
                        f"its agent logged {want}")

    # -- work intervals --

    def build_segments(self):
        kills = collections.defaultdict(list)
        for k in self.chaos.kills:
            kills[k["log"]].append(k)
        freezes = collections.defaultdict(list)
        for f in self.chaos.freezes:
            freezes[f["log"]].append(f)
        analysed_at = time.monotonic()
        for child in self.children.values():
            if child.end is None:
                # Its agent was SIGKILLed: gone when the driver saw the
                # agent's tree gone.
                for k in kills.get(child.log, ()):
                    if k["t_kill"] >= child.start:
                        child.end, child.end_from = k["t_gone"], "agent killed"
                        break
            if child.end is None:
                self.violations.add(
                    "agent-log", f"{child}: no end of its tree logged and its "
                    "agent was not killed")
                child.end, child.end_from = analysed_at, "unknown"
            segments = [(child.start, child.end, None)]
            for f in freezes.get(child.log, ()):
                if f["t_stop"] is None or f["t_stop"] < child.start:
                    continue  # began after the freeze
                if child.end < (f["t_agent"] or f["t_stop"]):
                    continue  # its end was logged before the freeze began
                segments = self.apply_freeze(child, f, segments)
            child.segments = [s for s in segments if s[1] > s[0]]

    def apply_freeze(self, child, f, segments):
        kind = f["kind"]
        t_stop = f["t_stop"]
        if kind == "freeze-child-alone":
            return segments  # its agent watched it all along
        if child.pid not in f["kids"]:
            if child.pid in f["started"]:
                # Dead (a zombie not reaped yet, or reaped but not logged)
                # when its agent was frozen: its agent logged the end only
                # once resumed.
                child.notes.append(f"ended before its agent was frozen at "
                                   f"{t_stop:.3f}")
                return cut(segments, t_stop)
            # Its agent read the clock for it, then was frozen before the
            # fork: it starts once the agent runs again, its lease possibly
            # over (README: no pause between a lease check and its effect).
            child.notes.append(f"forked after its agent's freeze at "
                               f"{f['t_agent']:.3f}")
            return tag_after(segments, f["t_agent"], "paused-start")
        ran_again = self.chaos_child_size(child) > f["sizes"].get(child.pid, 0)
        if kind == "freeze":
            if ran_again:
                self.violations.add(
                    "thaw-ran", f"{child}: frozen with its agent at "
                    f"{t_stop:.3f}, resumed agent first, and it ran again "
                    "(its log grew)")
                return segments
            child.notes.append(f"frozen at {t_stop:.3f}, killed frozen")
            return cut(segments, t_stop)
        if kind == "freeze-child-first":
            if f["t_cont_child"] is None:
                return cut(segments, t_stop)
            child.notes.append(f"frozen at {t_stop:.3f}, resumed before its "
                               f"agent at {f['t_cont_child']:.3f}")
            return tag_after(cut_out(segments, t_stop, f["t_cont_child"]),
                             f["t_cont_child"], "child-first")
        if kind == "freeze-agent-alone":
            child.notes.append(f"running while its agent was frozen from "
                               f"{f['t_agent']:.3f}")
            return tag_after(segments, f["t_agent"], "agent-alone")
        return segments

    def chaos_child_size(self, child):
        return sum(os.path.getsize(p) for p in glob.glob(os.path.join(
            self.chaos.dir, child.cluster,
            f"child.{child.member}.{child.pid}.*")))

    def check_overlaps(self):
        """Per cluster, a sweep over the work segments in start order: two
        children's segments that overlap in time and whose keys intersect
        are an overlap, classified by the cluster's handover mode and the
        segments' tags."""
        self.examples = collections.defaultdict(list)
        for cluster, conf in self.chaos.clusters.items():
            space = self.chaos.spaces[cluster]
            segs = sorted(
                ((s, e, tag, c) for c in self.children.values()
                 if c.cluster == cluster for s, e, tag in c.segments),
                key=lambda x: x[0])
            active = []
            worst = {}  # (child a, child b) -> (overlap, category, detail)
            last = {}   # key bit -> (end, child) of its latest holder
            for s, e, tag, c in segs:
                active = [a for a in active if a[1] > s]
                for a_s, a_e, a_tag, a in active:
                    if a is c:
                        continue
                    both = a.mask & c.mask
                    if not both:
                        continue
                    overlap = min(a_e, e) - s
                    if conf["handover"] == "immediate":
                        category = "immediate"
                    elif a_tag or tag:
                        category = a_tag or tag
                    else:
                        category = "violation"
                    pair = (id(a), id(c), category)
                    if pair not in worst or overlap > worst[pair][0]:
                        worst[pair] = (overlap, category,
                                       f"{cluster}: {overlap * 1000:.0f} ms "
                                       f"on {space.names(both)}: [{a}] and "
                                       f"[{c}]")
                active.append((s, e, tag, c))
                # Handovers: the key's previous holder another member.
                seen_pairs = set()
                for k in bits(c.mask):
                    prev = last.get(k)
                    if prev is not None and prev[1].member != c.member \
                            and prev[1] is not c and prev[0] <= s:
                        if id(prev[1]) not in seen_pairs:
                            seen_pairs.add(id(prev[1]))
                            self.handovers[cluster] += 1
                            self.handover_gaps[conf["handover"]].append(
                                s - prev[0])
                    if prev is None or e >= prev[0]:
                        last[k] = (e, c)
            for overlap, category, detail in worst.values():
                self.overlaps[category].append(overlap)
                if category == "violation":
                    self.violations.add("overlap", detail)
                elif len(self.examples[category]) < 3:
                    self.examples[category].append(detail)

    def check_agent_children(self):
        """Two children of one agent never overlap."""
        per_agent = collections.defaultdict(list)
        for c in self.children.values():
            per_agent[c.log].append(c)
        for log, cs in per_agent.items():
            cs.sort(key=lambda c: c.start)
            for a, b in zip(cs, cs[1:]):
                if b.start < a.end:
                    self.violations.add(
                        "agent-children", f"{log}: [{a}] and [{b}] overlap")

    def check_epochs(self):
        # Children of one member name, in start order.
        per_member = collections.defaultdict(list)
        for c in self.children.values():
            per_member[(c.cluster, c.member)].append(c)
        for (cluster, member), cs in per_member.items():
            cs.sort(key=lambda c: c.start)
            for a, b in zip(cs, cs[1:]):
                if b.epoch < a.epoch:
                    self.violations.add(
                        "epoch-back", f"{cluster}/{member}: child pid "
                        f"{a.pid} had epoch {a.epoch}, the next "
                        f"(pid {b.pid}) {b.epoch}")
        # Plain mode: one shard to two members at one epoch (children and
        # agent reports). Slot mode's index is not work: skipped.
        owners = collections.defaultdict(set)
        for c in self.children.values():
            if c.slots is None:
                owners[(c.cluster, c.epoch, c.shard)].add(c.member)
        for cluster, member, log, seen in self.reports:
            last = None
            for state, shard, epoch, line in seen:
                if last is not None and epoch < last:
                    self.violations.add(
                        "epoch-back", f"agent log {log}: epoch "
                        f"{last} then {epoch}: {line}")
                last = epoch
                if (state == "active" and shard is not None
                        and self.chaos.clusters[cluster]["slots"] is None):
                    owners[(cluster, epoch, shard)].add(member)
        for (cluster, epoch, shard), who in sorted(owners.items()):
            if len(who) > 1:
                self.violations.add(
                    "same-epoch-shard", f"{cluster} epoch {epoch} shard "
                    f"{shard} given to {sorted(who)}")

    def analyse(self):
        self.read_agent_logs()
        self.read_children()
        self.build_segments()
        self.check_overlaps()
        self.check_agent_children()
        self.check_epochs()

    # -- the summary --

    def finish(self, tap, chaos_start, t_stop):
        chaos, s, v = self.chaos, self.sampler, self.violations.count
        reshards = sum(s.cluster_epochs.get(c, 0) - s.first_epochs.get(c, 0)
                       for c in chaos.clusters)
        exclusive = [c for c, conf in chaos.clusters.items()
                     if conf["handover"] != "immediate"]
        handovers = sum(self.handovers[c] for c in exclusive)
        dropped = sum(chaos.proxy.dropped.values())
        segments = sum(len(c.segments) for c in self.children.values())
        wanted = [k for k in COVERED if chaos.args.faults.get(k)]
        missing = [FAULT_NAMES[k] for k in wanted if chaos.faults[k] == 0]
        if "lose-notices" in wanted and dropped == 0:
            missing.append("notices actually dropped")
        restarts = (chaos.faults["restart (same name)"]
                    + chaos.faults["restart (new name)"])
        if not restarts:
            missing.append("restarts")
        uncovered = {k: self.overlaps.get(k, []) for k in UNCOVERED_TAGS}
        checks = [
            (s.samples > 0 and reshards > 0 and len(self.children) > 0
             and self.lines > 0 and self.agent_reports > 0 and handovers > 0,
             f"the run saw something to check ({s.samples} view samples, "
             f"{reshards} reshards, {handovers} handovers in exclusive and "
             f"barrier clusters, {len(self.children)} children, "
             f"{self.lines} child log lines, {self.agent_reports} agent "
             "reports; none may be 0)"),
            (not missing, "faults of every covered kind were injected"
             + (f" (none of: {', '.join(missing)})" if missing else
                f" ({sum(chaos.faults[k] for k in FAULTS)} faults, "
                f"{restarts} restarts, {dropped} notices dropped)")),
            (v["overlap"] == 0,
             "no key worked on by two children at once in exclusive and "
             f"barrier clusters ({', '.join(exclusive)}; {segments} work "
             f"intervals of {len(self.children)} children; "
             f"{v['overlap']} overlaps)"),
            (v["agent-children"] == 0 and v["agent-log"] == 0,
             "two children of one agent never overlap; every child's end is "
             f"known ({v['agent-children']} + {v['agent-log']} violations)"),
            (v["thaw-fence"] == 0 and v["thaw-ran"] == 0
             and (chaos.faults["freeze"] == 0 or len(chaos.fence_delays) > 0),
             "agents resumed past their lease kill their frozen child first, "
             f"and it never runs again ({len(chaos.fence_delays)} resumed; "
             f"{v['thaw-fence']} + {v['thaw-ran']} violations)"),
            (v["view-grants"] == 0 and v["view-holds"] == 0,
             "view: granted keys never intersect; in exclusive and barrier "
             "clusters no granted key is another member's to release "
             f"({s.samples} samples; {v['view-grants']} + "
             f"{v['view-holds']} violations)"),
            (v["view-cover"] == 0,
             "view: with no handover pending, shards exactly 0..n-1 (slot "
             f"mode: the keys covered) ({sum(s.settled_samples.values())} "
             f"settled cluster samples; {v['view-cover']} violations)"),
            (v["view-epoch"] == 0, "view: epochs of clusters and members "
             f"never go back ({v['view-epoch']} violations)"),
            (v["epoch-back"] == 0 and v["child-env"] == 0,
             "children got what their agents logged; epochs never go back "
             f"in agent reports or children ({self.agent_reports} agent "
             f"reports; {v['epoch-back']} + {v['child-env']} violations)"),
            (v["same-epoch-shard"] == 0, "no shard given to two members at "
             f"one epoch ({v['same-epoch-shard']} violations)"),
            (v["agent-exit"] == 0, "no agent exited by itself; SIGTERM ends "
             f"agents with status 0 ({v['agent-exit']} violations)"),
        ]
        tap = tap[:2] + checks + tap[2:]
        print("\n# ---- summary ----")
        say(f"chaos: {t_stop - chaos_start:.1f}s, seed {chaos.args.seed}, "
            f"{chaos.agent_seq} agent processes started")
        say("faults injected: " + ", ".join(
            f"{FAULT_NAMES.get(k, k)} {n}"
            for k, n in sorted(chaos.faults.items()))
            + f" (total {sum(chaos.faults[k] for k in FAULTS)}); notices "
            f"dropped {dropped}, forwarded {chaos.proxy.forwarded}; "
            f"{chaos.proxy.connections} agent connections")
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
            gaps = self.handover_gaps
            say(f"{cluster} ({chaos.clusters[cluster]['mode']}, "
                f"{chaos.clusters[cluster]['handover']}): epoch {first} -> "
                f"{last} ({len(s.epochs_seen[cluster])} distinct epochs "
                f"sampled, {len(s.pending_epochs[cluster])} with a handover "
                f"pending); {self.handovers[cluster]} handovers, "
                f"{self.acks[cluster]} acknowledgements")
        for mode, gaps in sorted(self.handover_gaps.items()):
            if gaps:
                g = sorted(gaps)
                say(f"handover gaps ({mode}): one holder's tree gone -> the "
                    f"next child started: min {g[0] * 1000:.1f} ms, median "
                    f"{statistics.median(g) * 1000:.1f} ms (negative: an "
                    "overlap)")
        say(f"reshards seen: {reshards}")
        if s.durations:
            say(f"view samples: {s.samples} ({s.errors} failed), query "
                f"median {statistics.median(s.durations) * 1000:.1f} ms, "
                f"max {max(s.durations) * 1000:.0f} ms, longest gap between "
                f"samples {s.max_gap * 1000:.0f} ms")
        say(f"children: {len(self.children)} processes, {segments} work "
            f"intervals, {self.lines} child log lines")
        say("assignments reported by agents: " + ", ".join(
            f"{k} {n}" for k, n in sorted(self.report_states.items()))
            + " (lost: self-fenced, the lease ran out before a heartbeat "
            "answer; removed: told by the server)")
        say(f"overlaps in exclusive and barrier clusters (failures): "
            f"{len(self.overlaps['violation'])}")
        for category, text in [("immediate", "the immediate cluster")] + [
                (k, f"uncovered: {t}") for k, t in UNCOVERED_TAGS.items()]:
            o = self.overlaps.get(category, [])
            say(f"overlaps expected, {text}: {len(o)}"
                + (f", longest {max(o) * 1000:.0f} ms" if o else ""))
            for example in self.examples.get(category, [])[:1]:
                say(f"  e.g. {example}")
        for what, n in sorted(chaos.anomalies.items()):
            say(f"anomaly: {what}: {n}")
        say(f"violations: {sum(v.values())}"
            + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(v.items()))
               + ")" if v else ""))
        chaos.keep = chaos.keep or not all(ok for ok, _ in tap)
        if chaos.keep:
            say(f"logs kept in {chaos.dir}")
        print(f"1..{len(tap)}")
        for i, (ok, text) in enumerate(tap, 1):
            print(f"{'ok' if ok else 'not ok'} {i} - {text}")
        passed = sum(1 for ok, _ in tap if ok)
        print(f"{passed} passed, {len(tap) - passed} failed", flush=True)
        return passed == len(tap)


def cut(segments, t):
    """Only what was before t."""
    return [(s, min(e, t), tag) for s, e, tag in segments if s < t]


def cut_out(segments, t0, t1):
    """Without (t0, t1)."""
    out = []
    for s, e, tag in segments:
        if e <= t0 or s >= t1:
            out.append((s, e, tag))
            continue
        if s < t0:
            out.append((s, t0, tag))
        if e > t1:
            out.append((t1, e, tag))
    return out


def tag_after(segments, t, tag):
    out = []
    for s, e, old in segments:
        if e <= t:
            out.append((s, e, old))
        elif s >= t:
            out.append((s, e, old or tag))
        else:
            out.append((s, t, old))
            out.append((t, e, old or tag))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=seconds, default=90.0,
                        help="seconds of chaos (also 10m, 1h)")
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--agents-per-cluster", type=int, default=14)
    parser.add_argument("--heartbeat", type=seconds, default=0.2)
    parser.add_argument("--grace", type=seconds, default=0.4)
    parser.add_argument("--fault-interval", type=seconds, default=0.5,
                        help="mean time between faults")
    parser.add_argument("--faults", type=fault_weights, default=dict(FAULTS),
                        help="weights of the fault kinds, e.g. "
                        "'kill=3,freeze-agent-alone=0' (kinds: "
                        + ", ".join(f"{k}={w}" for k, w in FAULTS.items())
                        + ")")
    parser.add_argument("--max-down", type=int, default=4,
                        help="agents of a cluster down at once, at most")
    parser.add_argument("--tick", type=seconds, default=0.05,
                        help="how often a child logs that it acts")
    parser.add_argument("--sample-interval", type=seconds, default=0.05)
    parser.add_argument("--settle-timeout", type=seconds, default=60.0,
                        help="for the first convergence")
    parser.add_argument("--seed", type=int, default=None)
    built = os.path.join(TOP, "client", "build", "shard-coordinator")
    parser.add_argument("--agent", default=built if os.access(built, os.X_OK)
                        else shutil.which("shard-coordinator"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    if not args.agent:
        print("shard-coordinator is not built nor on the PATH: make client",
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
        if ok and not chaos.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif ok is False and not chaos.keep:
            # Interrupted before the summary (which names the directory,
            # so that "N passed, N failed" stays the last line).
            say(f"logs kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
