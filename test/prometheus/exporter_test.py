#!/usr/bin/env python3
"""The Prometheus queries file with Debian's prometheus-postgres-exporter.

    scripts/with-pg.sh python3 test/prometheus/exporter_test.py

Runs prometheus-postgres-exporter (Debian 12: 0.11) with
contrib/prometheus/shard_coordinator_queries.yaml against the server the PG*
variables name (scripts/with-pg.sh's throwaway one), connected as a role
that has only the grants of contrib/prometheus/exporter_grants.sql, on a
free port of 127.0.0.1. Members join, acknowledge, are refused, leave, and
the cluster is frozen, all through SQL; after each change the test scrapes
/metrics until the exporter shows the new values, and compares them with
the views. Output is TAP; the exit status is non-zero when a test failed.
Python 3 standard library only.
"""

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
QUERIES = os.path.join(TOP, "contrib", "prometheus",
                       "shard_coordinator_queries.yaml")
GRANTS = os.path.join(TOP, "contrib", "prometheus", "exporter_grants.sql")
EXPORTER = "prometheus-postgres-exporter"
CLUSTER = "ex_jobs"
ROLE = "sc_exporter_test"
TIMEOUT = 20.0  # seconds; generous, for a loaded 2-core machine


class Failure(Exception):
    pass


def psql(sql, check=True):
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True)
    if check and out.returncode != 0:
        raise Failure(f"psql failed: {sql}: {out.stderr.strip()}")
    return out if not check else out.stdout.strip()


def wait_until(what, predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_metrics():
    """{metric name: usage} of every non-label column in the queries file
    (group name + "_" + column), read with a pattern: the file's layout is
    the exporter's documented one."""
    found = {}
    group = None
    column = None
    with open(QUERIES) as f:
        for line in f:
            if m := re.match(r"^([a-z_]+):\s*$", line):
                group = m.group(1)
            elif m := re.match(r"^    - ([a-z_]+):\s*$", line):
                column = m.group(1)
            elif m := re.match(r'^        usage: "([A-Z]+)"', line):
                if m.group(1) != "LABEL":
                    found[f"{group}_{column}"] = m.group(1)
    return found


class Exporter:
    def __init__(self, workdir):
        self.log_path = os.path.join(workdir, "exporter.log")
        self.proc = None
        self.url = None

    def start(self, password):
        host = os.environ.get("PGHOST", "localhost")
        dsn = (f"host={host} port={os.environ['PGPORT']} user={ROLE} "
               f"password={password} dbname={os.environ['PGDATABASE']} "
               "sslmode=disable")
        # Only what the exporter needs: its PostgreSQL driver (lib/pq)
        # refuses some PG* variables that scripts/with-pg.sh sets.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "DATA_SOURCE_NAME": dsn}
        for attempt in range(3):  # another process may take the port first
            port = free_port()
            log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                 f"--extend.query-path={QUERIES}",
                 "--disable-default-metrics", "--disable-settings-metrics"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
            log.close()
            self.url = f"http://127.0.0.1:{port}/metrics"
            try:
                wait_until("the exporter to answer", self.answers, timeout=10)
                return
            except Failure:
                self.stop()
        raise Failure("the exporter did not start:\n" + self.log())

    def answers(self):
        if self.proc.poll() is not None:
            raise Failure("the exporter exited:\n" + self.log())
        try:
            self.scrape()
            return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def scrape(self):
        """({(name, frozenset of labels): value}, {name: TYPE})."""
        with urllib.request.urlopen(self.url, timeout=10) as response:
            text = response.read().decode()
        samples, types = {}, {}
        for line in text.splitlines():
            if m := re.match(r"# TYPE (\S+) (\S+)$", line):
                types[m.group(1)] = m.group(2)
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)",
                             line)
            if not m:
                raise Failure(f"not a sample line: {line!r}")
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                          m.group(2) or ""))
            samples[(m.group(1), labels)] = float(m.group(3))
        return samples, types

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def value(samples, name, **labels):
    """The sample of `name` whose labels include `labels`; None if none."""
    wanted = set(labels.items())
    for (sample_name, sample_labels), v in samples.items():
        if sample_name == name and wanted <= sample_labels:
            return v
    return None


def cluster_value(samples, name):
    return value(samples, name, cluster=CLUSTER)


class Context:
    def __init__(self, exporter):
        self.exporter = exporter
        self.notes = []

    def note(self, text):
        self.notes.append(text)

    def scraped(self, what, predicate):
        """Scrapes until predicate(samples) holds; returns the samples."""
        def check():
            samples, _ = self.exporter.scrape()
            return samples if predicate(samples) else None
        return wait_until(what, check)


def heartbeat(member, incarnation, applied=None):
    """The member's row: (shard, num_shards, epoch, state)."""
    applied_sql = "NULL" if applied is None else str(applied)
    row = psql("SELECT shard, num_shards, epoch, state FROM "
               f"shard_coordinator.heartbeat('{CLUSTER}', '{member}', "
               f"{applied_sql}, {incarnation})")
    shard, num_shards, epoch, state = row.split("|")
    return (int(shard) if shard else None, int(num_shards), int(epoch), state)


def view(sql):
    return psql(f"SELECT {sql}")


# ----- tests -----

def test_exporter_serves_every_metric(ctx):
    """the exporter, as a role with only exporter_grants.sql's grants, runs
    every query of the file without error: each metric of the file is there
    for the cluster, with the type the file gives it"""
    heartbeat("m1", 1)
    wait_until("m1 active", lambda: heartbeat("m1", 1)[3] == "active")
    expected = file_metrics()
    if len(expected) < 40:
        raise Failure(f"only {len(expected)} metrics read from the file")
    samples = ctx.scraped(
        "the cluster's metrics",
        lambda s: cluster_value(s, "shard_coordinator_cluster_members") == 1)
    _, types = ctx.exporter.scrape()
    if value(samples, "pg_up") != 1:
        raise Failure(f"pg_up is {value(samples, 'pg_up')}")
    if value(samples, "pg_exporter_last_scrape_error") != 0:
        raise Failure("the last scrape had an error:\n" + ctx.exporter.log())
    missing = [n for n in expected if cluster_value(samples, n) is None]
    if missing:
        raise Failure(f"missing metrics: {missing}\n" + ctx.exporter.log())
    wrong = [n for n, usage in expected.items()
             if types.get(n) != usage.lower()]
    if wrong:
        raise Failure(f"metrics of another type than the file's: "
                      f"{[(n, types.get(n)) for n in wrong]}")
    nan = [n for n in expected if math.isnan(cluster_value(samples, n))]
    if nan:
        raise Failure(f"metrics without a value (NaN): {nan}")
    if "level=error" in ctx.exporter.log():
        raise Failure("the exporter logged an error:\n" + ctx.exporter.log())
    ctx.note(f"{len(expected)} metrics from the file, all present, "
             f"at {ctx.exporter.url}")


def test_one_member(ctx):
    """one active member: members 1, num_shards 1, joins_total 1, the
    cluster's epoch as the clusters view has it, and the member's lease
    remaining within heartbeat_interval + grace_period"""
    epoch = int(view(f"epoch FROM shard_coordinator.clusters "
                     f"WHERE cluster = '{CLUSTER}'"))
    samples = ctx.scraped(
        "one member at the view's epoch",
        lambda s: cluster_value(s, "shard_coordinator_cluster_epoch") == epoch)
    for name, expected in (("shard_coordinator_cluster_members", 1),
                           ("shard_coordinator_cluster_active", 1),
                           ("shard_coordinator_cluster_num_shards", 1),
                           ("shard_coordinator_stats_joins_total", 1),
                           ("shard_coordinator_stats_leaves_total", 0),
                           ("shard_coordinator_cluster_frozen", 0),
                           ("shard_coordinator_cluster_heartbeat_interval_seconds", 10),
                           ("shard_coordinator_cluster_grace_period_seconds", 20)):
        got = cluster_value(samples, name)
        if got != expected:
            raise Failure(f"{name} is {got}, expected {expected}")
    lease = value(samples, "shard_coordinator_member_lease_remaining_seconds",
                  cluster=CLUSTER, member="m1")
    if lease is None or not 0 < lease <= 30:
        raise Failure(f"m1's lease_remaining_seconds is {lease}, expected "
                      "in (0, 30]")
    if value(samples, "shard_coordinator_member_granted", cluster=CLUSTER,
             member="m1") != 1:
        raise Failure("m1 is not shown granted")
    ctx.note(f"epoch {epoch}, m1's lease remaining {lease:.1f}s")


def test_join_and_handover(ctx):
    """a second member joins: m1's work is revoked, it acknowledges, m2 is
    granted; the exporter shows members 2, num_shards 2, joins_total 2, a
    revocation and a completed handover, and the new epoch"""
    before, _ = ctx.exporter.scrape()
    heartbeat("m2", 2)

    def handed_over():
        # m1 acknowledges whatever its row shows; m2 heartbeats until
        # granted.
        _, _, epoch, _ = heartbeat("m1", 1)
        heartbeat("m1", 1, applied=epoch)
        return heartbeat("m2", 2)[0] is not None
    wait_until("m2's grant", handed_over)
    epoch = int(view(f"epoch FROM shard_coordinator.clusters "
                     f"WHERE cluster = '{CLUSTER}'"))
    samples = ctx.scraped(
        "two members and the handover",
        lambda s: cluster_value(s, "shard_coordinator_cluster_members") == 2
        and cluster_value(s, "shard_coordinator_stats_handovers_total") >= 1
        and cluster_value(s, "shard_coordinator_cluster_epoch") >= epoch)
    for name, expected in (("shard_coordinator_cluster_num_shards", 2),
                           ("shard_coordinator_cluster_active", 2),
                           ("shard_coordinator_stats_joins_total", 2)):
        got = cluster_value(samples, name)
        if got != expected:
            raise Failure(f"{name} is {got}, expected {expected}")
    revocations = cluster_value(samples, "shard_coordinator_stats_revocations_total")
    if revocations < 1:
        raise Failure(f"revocations_total is {revocations}, expected >= 1")
    steps = "shard_coordinator_stats_steps_total"
    if cluster_value(samples, steps) <= cluster_value(before, steps):
        raise Failure("steps_total did not grow")
    if cluster_value(samples, "shard_coordinator_cluster_epoch") <= \
            cluster_value(before, "shard_coordinator_cluster_epoch"):
        raise Failure("the epoch did not grow")
    ctx.note(f"epoch {cluster_value(before, 'shard_coordinator_cluster_epoch'):.0f}"
             f" -> {cluster_value(samples, 'shard_coordinator_cluster_epoch'):.0f},"
             f" {revocations:.0f} revocation(s), handover took "
             f"{cluster_value(samples, 'shard_coordinator_stats_handover_seconds_total'):.3f}s")


def test_freeze(ctx):
    """freeze() shows frozen 1, unfreeze() frozen 0 again"""
    psql(f"SELECT shard_coordinator.freeze('{CLUSTER}')")
    ctx.scraped("frozen 1", lambda s: cluster_value(
        s, "shard_coordinator_cluster_frozen") == 1)
    psql(f"SELECT shard_coordinator.unfreeze('{CLUSTER}')")
    ctx.scraped("frozen 0", lambda s: cluster_value(
        s, "shard_coordinator_cluster_frozen") == 0)


def test_refused_heartbeat(ctx):
    """a heartbeat under a name another process holds is refused (SC002) and
    counted in refused_heartbeats_total"""
    name = "shard_coordinator_stats_refused_heartbeats_total"
    before, _ = ctx.exporter.scrape()
    if cluster_value(before, name) != 0:
        raise Failure(f"{name} is {cluster_value(before, name)} before")
    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "VERBOSITY=verbose", "-c",
         f"SELECT shard_coordinator.heartbeat('{CLUSTER}', 'm1', NULL, 999)"],
        capture_output=True, text=True)
    if done.returncode == 0 or "SC002" not in done.stderr:
        raise Failure("the heartbeat of another incarnation was not refused "
                      f"with SC002: {done.stderr.strip()}")
    ctx.scraped(f"{name} 1", lambda s: cluster_value(s, name) == 1)


def test_leave(ctx):
    """m2 leaves: leaves_total 1, members 1, num_shards 1, and m2's series
    are gone"""
    psql(f"SELECT shard_coordinator.leave('{CLUSTER}', 'm2', 2)")
    samples = ctx.scraped(
        "m2 gone",
        lambda s: cluster_value(s, "shard_coordinator_cluster_members") == 1
        and cluster_value(s, "shard_coordinator_cluster_num_shards") == 1)
    if cluster_value(samples, "shard_coordinator_stats_leaves_total") != 1:
        raise Failure("leaves_total is not 1")
    if value(samples, "shard_coordinator_member_epoch", cluster=CLUSTER,
             member="m2") is not None:
        raise Failure("m2 still has a member series")


TESTS = [
    test_exporter_serves_every_metric,
    test_one_member,
    test_join_and_handover,
    test_freeze,
    test_refused_heartbeat,
    test_leave,
]


def main():
    if shutil.which(EXPORTER) is None:
        print(f"Bail out! {EXPORTER} is not installed "
              "(scripts/install-deps.sh installs it)")
        return 1
    try:
        password = "sc-exporter-test"
        psql(f"DROP ROLE IF EXISTS {ROLE}")
        psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
        grants = subprocess.run(
            ["psql", "-X", "-q", "-v", f"exporter_role={ROLE}", "-f", GRANTS],
            capture_output=True, text=True)
        if grants.returncode != 0:
            raise Failure(grants.stderr)
        # Long leases: nothing expires while the test runs.
        psql(f"SELECT shard_coordinator.configure('{CLUSTER}', "
             "heartbeat_interval => '10s', grace_period => '20s', "
             "reshard_interval => '0')")
    except Failure as e:
        print(f"Bail out! cannot prepare the server: {e}")
        return 1

    workdir = tempfile.mkdtemp(prefix="sc-exporter-")
    exporter = Exporter(workdir)
    print(f"1..{len(TESTS)}")
    failed = 0
    try:
        exporter.start(password)
        for number, test in enumerate(TESTS, 1):
            name = f"{test.__name__}: {' '.join(test.__doc__.split())}"
            ctx = Context(exporter)
            try:
                test(ctx)
                print(f"ok {number} - {name}")
            except Exception as e:  # report it, run the next test
                failed += 1
                print(f"not ok {number} - {name}")
                detail = (str(e) if isinstance(e, Failure)
                          else traceback.format_exc())
                for line in detail.splitlines():
                    print(f"# {line}")
            for text in ctx.notes:
                print(f"# {text}")
            sys.stdout.flush()
    except Failure as e:
        print(f"Bail out! {e}")
        return 1
    finally:
        exporter.stop()
    print(f"# summary: {len(TESTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
