#!/usr/bin/env python3
"""Turns the raw results of bench/inner.sh and bench/handover.py into
RESULTS.md and results.png (gnuplot). Standard library only.

    python3 bench/report.py OUT_DIR BENCH_DIR [REPORT_DIR]

REPORT_DIR (default BENCH_DIR) receives RESULTS.md and results.png; run.sh
names the output directory there for a partial run (SC_BENCH_ONLY).
"""
import math
import os
import re
import statistics
import subprocess
import sys

out, bench = sys.argv[1], sys.argv[2]
report_dir = sys.argv[3] if len(sys.argv) > 3 else bench


def read(name, default=""):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read()
    except OSError:
        return default


values = {}
for line in read("values.tsv").splitlines():
    if "\t" in line:
        k, v = line.split("\t", 1)
        values[k] = v


def num(key, default=None):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return default


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    """Nearest-rank percentile."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "**met**" if ok else "**MISSED**"


# --- Figures 1 and 2 -----------------------------------------------------------
tput = {}  # (members, clients, kind) -> {round: tps}
for line in read("tput.tsv").splitlines()[1:]:
    f = line.split("\t")
    if len(f) < 5:
        continue
    m, c, kind, r, tps = int(f[0]), int(f[1]), f[2], int(f[3]), float(f[4])
    tput.setdefault((m, c, kind), {})[r] = tps

member_counts = sorted({k[0] for k in tput})
client_counts = sorted({k[1] for k in tput})


def med_tps(m, c, kind):
    return median(list(tput.get((m, c, kind), {}).values()))


def paired_ratio(m, c, a, b):
    """Median over rounds of a/b, both measured in the same round."""
    ra, rb = tput.get((m, c, a), {}), tput.get((m, c, b), {})
    return median([ra[r] / rb[r] for r in ra if r in rb and rb[r] > 0])


rows = []  # figure, target, measured, met
for m in member_counts:
    for c in client_counts:
        ratio = paired_ratio(m, c, "heartbeat", "select1")
        rows.append((f"1. heartbeat ÷ SELECT 1, {m:,} members, {c} clients, a random member per transaction (a pool)",
                     "≥ 0.85",
                     f"{fmt(ratio, 2)} ({fmt(med_tps(m, c, 'heartbeat'), 0)} vs {fmt(med_tps(m, c, 'select1'), 0)} tps)",
                     verdict(ratio >= 0.85) if not math.isnan(ratio) else "n/a"))
if len(member_counts) == 2:
    lo, hi = member_counts
    for c in client_counts:
        raw = med_tps(hi, c, "heartbeat") / med_tps(lo, c, "heartbeat")
        norm = paired_ratio(hi, c, "heartbeat", "select1") / paired_ratio(lo, c, "heartbeat", "select1")
        rows.append((f"1. heartbeat at {hi:,} ÷ at {lo:,} members, {c} clients",
                     "≥ 0.90",
                     f"{fmt(norm, 2)} relative to SELECT 1 (raw tps {fmt(raw, 2)})",
                     verdict(norm >= 0.9)))
# The other kinds against SELECT 1: (kind, what the row says, target or None).
OTHER_KINDS = (
    ("own", "heartbeat ÷ SELECT 1, {m:,} members, {c} clients, one member per connection as the agent "
            "heartbeats (acknowledging, with its incarnation)", 0.85),
    ("narrow", "(diagnostic) the same random-member heartbeat returning 3 of its 11 columns "
               "(shard, num_shards, epoch) ÷ SELECT 1, {m:,} members, {c} clients", None),
)
for kind, what, target in OTHER_KINDS:
    for m in member_counts:
        for c in client_counts:
            if not tput.get((m, c, kind)):
                continue
            ratio = paired_ratio(m, c, kind, "select1")
            met = "—"
            if target is not None:
                met = verdict(ratio >= target) if not math.isnan(ratio) else "n/a"
            rows.append(("1. " + what.format(m=m, c=c),
                         f"≥ {target:.2f}" if target is not None else "—",
                         f"{fmt(ratio, 2)} ({fmt(med_tps(m, c, kind), 0)} vs {fmt(med_tps(m, c, 'select1'), 0)} tps)",
                         met))
for label, members in (("1k", "1,000"), ("100k", "100,000")):
    if num(f"percall.{label}.heartbeat_warm_us") is not None:
        rows.append((f"1. (diagnostic) server time per call in one backend, {members} members, no network",
                     "close to a plain function call",
                     f"heartbeat {fmt(num(f'percall.{label}.heartbeat_warm_us'), 2)} µs warm, "
                     f"{fmt(num(f'percall.{label}.heartbeat_first_us'), 2)} µs on the backend's first pass; "
                     f"channel() {fmt(num(f'percall.{label}.channel_us'), 2)} µs; "
                     f"loop and arguments alone {fmt(num(f'percall.{label}.floor_us'), 2)} µs",
                     "—"))
if num("percall.access.with_role_us") is not None:
    with_role = num("percall.access.with_role_us")
    without = num("percall.access.without_us")
    rows.append(("1. access check on the heartbeat path: server time per call in a cluster with a member_role "
                 "vs one without (1,000 members, one backend)",
                 "negligible (≤ 5 % more)",
                 f"{fmt(with_role, 3)} vs {fmt(without, 3)} µs ({fmt((with_role / without - 1) * 100, 1)} %)",
                 verdict(with_role <= without * 1.05)))
for m in member_counts:
    for c in client_counts:
        ratio = paired_ratio(m, c, "heartbeat", "naive")
        rows.append((f"2. heartbeat ÷ naive UPDATE heartbeat, {m:,} members, {c} clients",
                     "expected: tens of times",
                     f"{fmt(ratio, 1)}× ({fmt(med_tps(m, c, 'naive'), 0)} tps naive)",
                     ("as expected" if ratio >= 10 else "**below expectation**")
                     if not math.isnan(ratio) else "n/a"))


# --- Figures 3 and 4 ---------------------------------------------------------------
def columns(name):
    cols = []
    for line in read(name).splitlines():
        parts = line.split()
        if parts:
            cols.append([float(x) for x in parts])
    return cols


lat = {}
for label in ("1k", "100k"):
    j = columns(f"join_{label}.txt")
    fl = columns(f"fail_{label}.txt")
    lat[label] = (j, fl)
    if j:
        xs = [r[0] for r in j]
        rows.append((f"3. join → its NOTIFY, p99 ({label} members registered)",
                     "≤ 10 ms",
                     f"p99 {fmt(pct(xs, 99), 2)} ms, p50 {fmt(pct(xs, 50), 2)} ms, max {fmt(max(xs), 2)} ms (n={len(xs)})",
                     verdict(pct(xs, 99) <= 10)))
    if fl:
        xs = [r[0] for r in fl]
        rows.append((f"4. expiry deadline → all survivors' NOTIFYs, p99 ({label} members)",
                     "≤ 20 ms",
                     f"p99 {fmt(pct(xs, 99), 2)} ms, p50 {fmt(pct(xs, 50), 2)} ms, max {fmt(max(xs), 2)} ms (n={len(xs)})",
                     verdict(pct(xs, 99) <= 20)))

# --- Figure 5 --------------------------------------------------------------------
leave = columns("leave.txt")
big = int(num("big_members", 0) or 0)
listeners = int(num("leave_listeners", 0) or 0)
if leave:
    alln = [r[0] for r in leave]
    txn = [r[2] for r in leave if r[2] >= 0]
    commit = [r[3] for r in leave if r[3] >= 0]
    rewritten = [r[4] for r in leave]
    rows.append((f"5. leave in a {big:,}-member cluster → all changed members notified (median of {len(leave)})",
                 "≤ 100 ms",
                 f"{fmt(median(alln), 1)} ms (max {fmt(max(alln), 1)}; {listeners} listening members)",
                 verdict(median(alln) <= 100)))
    rows.append(("5. reshard transaction (start → commit timestamp), median",
                 "≤ 100 ms",
                 f"{fmt(median(txn), 1)} ms; leave → commit {fmt(median(commit), 1)} ms; "
                 f"{fmt(median(rewritten), 0)} member rows rewritten and notified per leave",
                 verdict(median(txn) <= 100) if txn else "n/a"))

# --- Figure 6 --------------------------------------------------------------------
small_total = None
for line in read("shmem_small.txt").splitlines():
    if re.fullmatch(r"\d+", line.strip()):
        small_total = int(line.strip())
big_total = num("shmem_total")
per_slot = None
if small_total and big_total:
    per_slot = (big_total - small_total) / (200000 - 1000)
    parts = ""
    if num("shmem_holds") is not None:
        holds = num("shmem_holds") / 200000
        parts = (f" = hold pool {fmt(holds, 0)} B (two 40-byte plain holds per slot) + member table "
                 f"{fmt(per_slot - holds, 0)} B (a 232-byte entry, 132 of them its key with the 128-byte "
                 f"name, dynahash's 16-byte element header, the bucket array)")
    rows.append(("6. shared memory per member slot (Δ pg_shmem_allocations, 200,000 vs 1,000 slots)",
                 "≤ 256 B", f"{fmt(per_slot, 0)} B{parts}", verdict(per_slot <= 256)))
rss = num("worker.100k.VmRSS")
if rss is not None:
    rows.append(("6. background worker resident memory, 100,000 members",
                 "(reported)",
                 f"{fmt(rss / 1024, 1)} MiB RSS = {fmt(num('worker.100k.RssAnon', 0) / 1024, 1)} MiB private + "
                 f"{fmt(num('worker.100k.RssShmem', 0) / 1024, 1)} MiB shared memory touched + "
                 f"{fmt(num('worker.100k.RssFile', 0) / 1024, 1)} MiB files; after the {big:,}-member reshards "
                 f"{fmt(num('worker.end.RssAnon', 0) / 1024, 1)} MiB private",
                 "—"))

churn = columns("churn.txt")
if len(churn) >= 4:
    warm = [r for r in churn if r[0] >= 60] or churn
    xs = [r[0] / 60 for r in warm]
    ys = [r[1] for r in warm]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")
    steps = churn[-1][2] - churn[0][2]
    rows.append((f"6. background worker private memory over {fmt(churn[-1][0] / 60, 0)} minutes of churn "
                 f"(5 clusters, a join and a leave in each every 100 ms; {fmt(steps, 0)} steps)",
                 "flat after warm-up",
                 f"RssAnon {fmt(warm[0][1] / 1024, 1)} MiB after the first minute, {fmt(churn[-1][1] / 1024, 1)} MiB "
                 f"at the end; slope {fmt(slope, 1)} KiB/min (least squares after the first minute)",
                 verdict(abs(slope) * (churn[-1][0] / 60) <= 1024)))

# --- Mass events (issue 16, 3) ---------------------------------------------------
mass = columns("mass.txt")
if mass:
    told = [r[0] for r in mass]
    commit = [r[1] for r in mass if r[1] >= 0]
    rows.append(("3. mass event: 1,000 clusters of 10 members each lose one member at once → "
                 "each cluster's survivors told (cluster notice), p99 over clusters and rounds",
                 "≤ 200 ms",
                 f"p99 {fmt(pct(told, 99), 1)} ms, p50 {fmt(pct(told, 50), 1)} ms, max {fmt(max(told), 1)} ms; "
                 f"last commit p50 {fmt(pct(commit, 50), 1)} ms (n={len(told)})",
                 verdict(pct(told, 99) <= 200)))
joins = read("joins.txt").splitlines()
if joins:
    calls = [float(x) for x in joins if re.fullmatch(r"[0-9.]+", x.strip())]
    done = [float(x.split()[1]) for x in joins if x.startswith("all_active_ms")]
    if calls and done:
        rows.append(("3. mass join: 10,000 members over 100 clusters send their first heartbeat within 1 s → "
                     "all active; the heartbeat calls meanwhile",
                     "no heartbeat waits on the worker (p99 ≤ 10 ms)",
                     f"all active {fmt(done[0], 0)} ms after the first; heartbeat call p50 {fmt(pct(calls, 50), 2)} ms, "
                     f"p99 {fmt(pct(calls, 99), 2)} ms, max {fmt(max(calls), 1)} ms",
                     verdict(pct(calls, 99) <= 10)))


# --- Figure 7 --------------------------------------------------------------------
BACKGROUND = ("Standby/RUNNING_XACTS",)


def wal_records(label):
    """(total bytes, background bytes, [(type, n, bytes)]) from pg_waldump --stats=record."""
    recs = []
    for line in read(f"wal_{label}_records.txt").splitlines():
        m = re.match(r"^(\S+/\S+)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)", line)
        if m and m.group(1) != "Total":
            recs.append((m.group(1), int(m.group(2)), int(m.group(5))))
    bg = sum(b for t, n, b in recs if t in BACKGROUND)
    return sum(b for t, n, b in recs), bg, recs


wal_rows_detail = []
if num("wal.heartbeat.calls"):
    calls = num("wal.heartbeat.calls")
    total = num("wal.heartbeat.wal_bytes")
    lsn = num("wal.heartbeat.lsn_bytes")
    _, bg, recs = wal_records("heartbeat")
    # With pg_waldump's list, the heartbeats' share is every record but the
    # background ones; without it (no WAL at all, or no list), the LSN delta.
    own = float(sum(b for t, n, b in recs if t not in BACKGROUND)) if recs else lsn
    desc = ", ".join(f"{n} × {t} ({b} B)" for t, n, b in recs) or "no WAL record"
    rows.append(("7. WAL per 1,000 steady-state heartbeats (pg_stat_wal; records by pg_waldump)",
                 "0 B",
                 f"{fmt(own / calls * 1000, 1)} B from heartbeats (window of {int(calls):,} calls: "
                 f"{int(total)} B in pg_stat_wal, {int(lsn)} B of LSN: {desc})",
                 verdict(own == 0)))
    rows.append(("7. dead tuples / transaction IDs per 1,000 heartbeats",
                 "0 / 0",
                 f"{fmt(num('wal.heartbeat.dead_tuples') / calls * 1000, 1)} dead tuples, "
                 f"{fmt(num('wal.heartbeat.tuple_writes') / calls * 1000, 1)} tuple writes, "
                 f"{fmt(num('wal.heartbeat.xids') / calls * 1000, 1)} xids",
                 verdict(num('wal.heartbeat.dead_tuples') == 0 and num('wal.heartbeat.xids') == 0)))
    if num("wal.naive.calls"):
        nc = num("wal.naive.calls")
        rows.append(("7. (for contrast) naive UPDATE heartbeat, per 1,000 calls",
                     "—",
                     f"{fmt(num('wal.naive.wal_bytes') / nc * 1000, 0)} B WAL, "
                     f"{fmt(num('wal.naive.tuple_writes') / nc * 1000, 0)} tuple writes, "
                     f"{fmt(num('wal.naive.dead_tuples') / nc * 1000, 0)} dead tuples left, "
                     f"{fmt(num('wal.naive.xids') / nc * 1000, 0)} xids",
                     "—"))

# --- Handovers (issue 13) --------------------------------------------------------------
ho_settings = {}
for line in read("handover_settings.tsv").splitlines():
    if "\t" in line:
        k, v = line.split("\t", 1)
        ho_settings[k] = v
ho = {}      # scenario -> list of dicts (runs that settled)
ho_failed = {}  # scenario -> runs that did not
ho_lines = read("handover.tsv").splitlines()
for line in ho_lines[1:]:
    f = dict(zip(ho_lines[0].split("\t"), line.split("\t")))
    if f.get("status") != "ok":
        ho_failed[f["scenario"]] = ho_failed.get(f["scenario"], 0) + 1
        continue
    ho.setdefault(f["scenario"], []).append(
        {k: (float(v) if v != "" else None) for k, v in f.items()
         if k not in ("scenario", "status")})


def duration_ms(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|min)?\s*", text or "")
    if not m:
        return None
    return float(m.group(1)) * {"ms": 1, "s": 1000, None: 1000, "min": 60000}[m.group(2)]


ho_members = int(ho_settings.get("members", "10"))
ho_keys = int(ho_settings.get("slot_keys", "900"))
short_lease = None
if duration_ms(ho_settings.get("short_heartbeat_interval")) is not None:
    short_lease = (duration_ms(ho_settings["short_heartbeat_interval"])
                   + duration_ms(ho_settings.get("short_grace_period")))
HO_SCENARIOS = [  # name, what, event
    ("slots-join", f"{ho_keys} slot keys, {ho_members} agents: one joins",
     "the new agent process is started"),
    ("slots-leave", f"{ho_keys} slot keys, {ho_members} agents: one leaves",
     "SIGTERM to an agent (graceful: it stops its child, leaves)"),
    ("slots-kill", f"{ho_keys} slot keys, {ho_members} agents: one is SIGKILLed",
     f"SIGKILL of an agent (its child dies with it); lease "
     f"{fmt(short_lease, 0)} ms"),
    ("plain-join", f"plain mode, {ho_members} agents: one joins",
     "the new agent process is started"),
    ("plain-leave", f"plain mode, {ho_members} agents: one leaves",
     "SIGTERM to an agent"),
]
HO_TARGET_MS = 100
for name, what, _ in HO_SCENARIOS:
    runs = ho.get(name, [])
    if not runs and not ho_failed.get(name):
        continue
    allr = [r["all_running_ms"] for r in runs]
    gap = [r["no_owner_ms"] for r in runs]
    failed = ho_failed.get(name, 0)
    measured = (f"median {fmt(median(allr), 1)} ms, p99 {fmt(pct(allr, 99), 1)} ms; "
                f"longest time a key had no owner: median {fmt(median(gap), 1)} ms, "
                f"p99 {fmt(pct(gap, 99), 1)} ms (n={len(runs)}"
                + (f", {failed} run(s) did not settle" if failed else "") + ")")
    if name.endswith("kill"):
        rows.append((f"H. {what} → every affected child running with its new grant",
                     f"bounded by the lease ({fmt(short_lease, 0)} ms); reported",
                     measured, "—"))
    else:
        ok = (median(allr) <= HO_TARGET_MS and not failed) if runs else False
        rows.append((f"H. {what} → every affected child running with its new grant, median",
                     f"≤ {HO_TARGET_MS} ms (KIP-848: 5 s)", measured, verdict(ok)))

# --- Plot ----------------------------------------------------------------------------
png = os.path.join(report_dir, "results.png")
with open(os.path.join(out, "plot_tput.dat"), "w") as f:
    for m in member_counts:
        for c in client_counts:
            label = f"{m // 1000}k/{c}c" if m >= 1000 else f"{m}/{c}c"
            f.write(f"{label} {med_tps(m, c, 'select1'):.0f} {med_tps(m, c, 'heartbeat'):.0f} {med_tps(m, c, 'naive'):.0f}\n")
    if not member_counts:  # a run without figures 1-2: an empty panel
        f.write("none 0 0 0\n")


def write_cdf(name, xs):
    s = sorted(xs)
    with open(os.path.join(out, name), "w") as f:
        for i, x in enumerate(s):
            f.write(f"{x} {(i + 1) / len(s)}\n")
        if not s:
            f.write("0 0\n")


for label in ("1k", "100k"):
    j, fl = lat[label]
    write_cdf(f"plot_join_{label}.dat", [r[0] for r in j])
    write_cdf(f"plot_fail_{label}.dat", [r[0] for r in fl])
for name, _, _ in HO_SCENARIOS:
    write_cdf(f"plot_ho_{name}.dat", [r["all_running_ms"] for r in ho.get(name, [])])
    write_cdf(f"plot_ho_gap_{name}.dat", [r["no_owner_ms"] for r in ho.get(name, [])])
ho_plot = ", ".join(f"'{out}/plot_ho_{name}.dat' using 1:2 with steps lw 2 title '{name}'"
                    for name, _, _ in HO_SCENARIOS)
ho_gap_plot = ", ".join(f"'{out}/plot_ho_gap_{name}.dat' using 1:2 with steps lw 2 title '{name}'"
                        for name, _, _ in HO_SCENARIOS)
with open(os.path.join(out, "plot_leave.dat"), "w") as f:
    for i, r in enumerate(leave or [[0, 0, 0, 0, 0]]):
        f.write(f"{i + 1} {r[2]} {r[3]} {r[0]}\n")

gp = f"""
set terminal pngcairo size 1400,1500 font ',10' noenhanced
set output '{png}'
set multiplot layout 3,2 title "shard\\_coordinator benchmarks (bench/RESULTS.md)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set ylabel 'transactions/s (median, steady state)'
set title '1-2. Heartbeat throughput: members/clients'
set yrange [0:*]
plot '{out}/plot_tput.dat' using 2:xtic(1) title 'SELECT 1', '' using 3 title 'heartbeat', '' using 4 title 'naive UPDATE'
set style data lines
unset style
set key bottom right
set xlabel 'ms'
set ylabel 'fraction of samples'
set yrange [0:1.02]
set title '3. Join: first heartbeat -> its NOTIFY (target p99 <= 10 ms)'
set arrow 1 from 10, graph 0 to 10, graph 1 nohead dt 2 lc 'red'
set xrange [0:*]
plot '{out}/plot_join_1k.dat' using 1:2 with steps lw 2 title '1,000 members', '{out}/plot_join_100k.dat' using 1:2 with steps lw 2 title '100,000 members'
set title '4. Expiry deadline -> all survivors notified (target p99 <= 20 ms)'
set arrow 1 from 20, graph 0 to 20, graph 1 nohead dt 2 lc 'red'
plot '{out}/plot_fail_1k.dat' using 1:2 with steps lw 2 title '1,000 members', '{out}/plot_fail_100k.dat' using 1:2 with steps lw 2 title '100,000 members'
unset arrow 1
set title '5. One member leaves a cluster of {big:,} (target 100 ms)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside bottom center horizontal
set xlabel 'leave #'
set ylabel 'ms'
set yrange [0:*]
set xrange [*:*]
set arrow 2 from graph 0, first 100 to graph 1, first 100 nohead dt 2 lc 'red'
plot '{out}/plot_leave.dat' using 2:xtic(1) title 'reshard transaction', '' using 3 title 'leave -> commit', '' using 4 title 'leave -> all notified'
unset arrow 2
set style data lines
unset style
set key inside bottom right vertical
set xlabel 'ms'
set ylabel 'fraction of runs'
set yrange [0:1.02]
set xrange [0:*]
set arrow 3 from {HO_TARGET_MS}, graph 0 to {HO_TARGET_MS}, graph 1 nohead dt 2 lc 'red'
set title 'Handovers: event -> every affected child running (target median <= {HO_TARGET_MS} ms)'
plot {ho_plot}
unset arrow 3
set title 'Handovers: longest time any key had no running child'
plot {ho_gap_plot}
unset multiplot
"""
with open(os.path.join(out, "results.gp"), "w") as f:
    f.write(gp)
plot_ok = subprocess.run(["gnuplot", os.path.join(out, "results.gp")]).returncode == 0

# --- RESULTS.md -------------------------------------------------------------------------
md = []
md.append("# shard_coordinator benchmark results\n")
md.append("Generated by `bench/run.sh` (`make bench`) from one run; do not edit by hand "
          "(the analysis at the end comes from `bench/FINDINGS.md`). How each figure is "
          "measured: `bench/README.md`.\n")
if os.path.abspath(report_dir) != os.path.abspath(bench):
    md.append("**Partial run** (`SC_BENCH_ONLY`): only the parts that ran have figures; "
              "this file is not `bench/RESULTS.md`.\n")
if plot_ok:
    md.append("![results](results.png)\n")
md.append("## Figures\n")
md.append("| figure | target | measured | met? |")
md.append("| --- | --- | --- | --- |")
for r in rows:
    md.append("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
md.append("")
missed = [r[0] for r in rows if "MISSED" in r[3] or "below" in r[3]]
md.append(f"{len(rows) - len(missed)} of {len(rows)} rows met or reported; "
          f"missed: {', '.join(missed) if missed else 'none'}.\n")

md.append("## Machine and server\n")
md.append("```")
md.append(read("machine.txt").strip())
tree_md5 = read("tree_library_md5.txt").strip()


def library_line(md5, server):
    return (f"library under test ({server}): md5 {md5} "
            + ("(this tree's build)" if md5 == tree_md5 else
               f"(NOT this tree's build {tree_md5}: another install replaced it, or "
               "SC_BENCH_INSTALL=0 measured the one installed)"))


if values:
    if values.get("library_md5"):
        md.append(library_line(values["library_md5"], "figures 1-7"))
    md.append(f"PostgreSQL {values.get('server_version', '?')}; "
              + ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in values.items() if k.startswith("setting.")))
    md.append(f"pgbench: -M prepared -j 2, {values.get('pgbench_rounds', '?')} alternating rounds, "
              f"{values.get('pgbench_seconds', '?')} s measured per run after a warm-up; connections over {values.get('pg_host', '?')} (TCP)")
if ho_settings:
    if ho_settings.get("library_md5"):
        md.append(library_line(ho_settings["library_md5"], "handovers"))
    md.append(f"handovers: a server of their own, PostgreSQL {ho_settings.get('server_version', '?')}; "
              + ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in ho_settings.items()
                          if k.startswith("setting.")))
md.append("```\n")

if tput:
    md.append("## Throughput runs (steady-state tps per round)\n")
    md.append("| members | clients | round | SELECT 1 | heartbeat | naive UPDATE | heartbeat ÷ SELECT 1 "
              "| one member per connection | ÷ SELECT 1 |")
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in member_counts:
        for c in client_counts:
            rounds = sorted(tput.get((m, c, "select1"), {}))
            for r in rounds:
                s1 = tput.get((m, c, "select1"), {}).get(r)
                hb = tput.get((m, c, "heartbeat"), {}).get(r)
                nv = tput.get((m, c, "naive"), {}).get(r)
                ow = tput.get((m, c, "own"), {}).get(r)
                md.append(f"| {m:,} | {c} | {r} | {fmt(s1, 0)} | {fmt(hb, 0)} | {fmt(nv, 0)} | "
                          f"{fmt(hb / s1, 2) if hb and s1 else 'n/a'} | {fmt(ow, 0) if ow else 'n/a'} | "
                          f"{fmt(ow / s1, 2) if ow and s1 else 'n/a'} |")
    md.append("")
whole = {}
for line in read("tput.tsv").splitlines()[1:]:
    f = line.split("\t")
    if len(f) >= 6:
        whole.setdefault((int(f[0]), int(f[1]), f[2]), []).append(float(f[5]))
if whole:
    md.append("Including the warm-up (pgbench's own tps over the whole run, medians): " + "; ".join(
        f"{m:,}/{c}c heartbeat {fmt(median(whole.get((m, c, 'heartbeat'), [])), 0)} vs SELECT 1 "
        f"{fmt(median(whole.get((m, c, 'select1'), [])), 0)}"
        for m in member_counts for c in client_counts) + ".\n")

for label in ("1k", "100k"):
    j, fl = lat[label]
    def split(rows_, what):
        start = [r[2] for r in rows_ if len(r) > 3 and r[2] >= 0]
        commit = [r[3] for r in rows_ if len(r) > 3 and r[3] >= 0]
        deliver = [r[0] - r[3] for r in rows_ if len(r) > 3 and r[3] >= 0]
        if not commit:
            return ""
        return (f" Split (p50 / p99): {what} → reshard start {fmt(pct(start, 50), 2)} / {fmt(pct(start, 99), 2)} ms, "
                f"→ reshard commit {fmt(pct(commit, 50), 2)} / {fmt(pct(commit, 99), 2)} ms, "
                f"commit → NOTIFY arrival {fmt(pct(deliver, 50), 2)} / {fmt(pct(deliver, 99), 2)} ms.")
    if j:
        cl = [r[1] for r in j]
        md.append(f"- Join ({label}): client send → NOTIFY p50 {fmt(pct(cl, 50), 2)} ms, p99 {fmt(pct(cl, 99), 2)} ms "
                  f"(the table uses the server's registration stamp)." + split(j, "registration"))
    if fl:
        first = [r[1] for r in fl]
        md.append(f"- Expiry ({label}): first survivor p50 {fmt(pct(first, 50), 2)} ms after the deadline."
                  + split(fl, "deadline"))
    cpu = values.get(f"worker_cpu.{label}")
    if cpu:
        md.append(f"- Background worker CPU during the {label} latency runs: {cpu} % of one core.")
    md.append("")
if leave:
    md.append("Leaves (ms): " + "; ".join(
        f"all notified {r[0]:.1f}, first {r[1]:.1f}, transaction {r[2]:.1f}, leave→commit {r[3]:.1f}, rows {int(r[4])}"
        for r in leave) + ".\n")


def section(title, name, limit=40):
    text = read(name).strip()
    if not text:
        return
    md.append(f"### {title}\n")
    md.append("```")
    md.extend(text.splitlines()[:limit])
    md.append("```\n")


if ho or ho_failed:
    md.append("## Handovers (issue 13)\n")
    hb, grace = ho_settings.get("heartbeat_interval", "?"), ho_settings.get("grace_period", "?")
    runs = ho_settings.get("runs", "?")
    md.append(
        f"Real agents (`shard-coordinator run`, this tree's `client/build`), {ho_members} per "
        f"cluster, each supervising a child that starts at once, records its grant and its "
        f"`CLOCK_MONOTONIC` start, and exits at once on SIGTERM recording the moment. "
        f"{runs} measured events per scenario, each from a settled cluster of {ho_members} "
        f"agents (restored after each event, unmeasured). Per event: the time from the event "
        f"to every affected child running with its new grant (the latest start among the "
        f"children whose grant changed), and the longest time any key had no running child "
        f"(over keys: its old child's exit → the start of the next child holding it; plain "
        f"mode: keys 0..{int(ho_settings.get('plain_keys', '10000')) - 1:,} through "
        f"`jump_hash`). Median and p99 (nearest rank: with {runs} runs the p99 is the "
        f"largest). How it is measured: `bench/README.md`.\n")
    md.append(
        f"**Anchor:** Kafka's KIP-848 (the new consumer rebalance protocol) gives 5 s for a "
        f"rebalance of 10 consumers over 900 partitions. **Target:** median ≤ {HO_TARGET_MS} ms "
        f"from a join or a leave to every affected child running, with children that exit "
        f"on SIGTERM at once.\n")
    md.append("| scenario | event | runs | event → every affected child running: median / p99 (ms) "
              "| longest time a key had no owner: median / p99 (ms) | children started (median) "
              "| keys moved (median) | keys held by two children at once |")
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, what, event in HO_SCENARIOS:
        rs = ho.get(name, [])
        if not rs and not ho_failed.get(name):
            continue
        allr = [r["all_running_ms"] for r in rs]
        gap = [r["no_owner_ms"] for r in rs]
        failed = ho_failed.get(name, 0)
        moved = median([r["keys_moved"] for r in rs])
        md.append(f"| {what} | {event} | {len(rs)}" + (f" ({failed} did not settle)" if failed else "")
                  + f" | {fmt(median(allr), 1)} / {fmt(pct(allr, 99), 1)} "
                  f"| {fmt(median(gap), 1)} / {fmt(pct(gap, 99), 1)} "
                  f"| {fmt(median([r['restarts'] for r in rs]), 0)} "
                  f"| {fmt(moved, 0)}{' of the 10,000 sampled' if name.startswith('plain') else ''} "
                  f"| {int(sum(r['overlaps'] for r in rs))} |")
    md.append("")
    split = []
    for name, what, _ in HO_SCENARIOS:
        rs = ho.get(name, [])

        def med(key):
            return median([r[key] for r in rs if r.get(key) is not None])
        if rs and "first_start_ms" in rs[0]:
            split.append(f"{name}: first old child exits {fmt(med('first_exit_ms'), 1)}, "
                         f"last {fmt(med('last_exit_ms'), 1)}, first new child "
                         f"{fmt(med('first_start_ms'), 1)}, all running "
                         f"{fmt(med('all_running_ms'), 1)}")
    if split:
        md.append("Split (medians, ms after the event): " + "; ".join(split) + ".\n")
    missing = sum(r["missing"] for rs in ho.values() for r in rs)
    md.append(
        f"Settings: joins and leaves in clusters with heartbeat_interval {hb}, grace_period "
        f"{grace}, reshard_interval {ho_settings.get('reshard_interval', '?')} (the gate is "
        f"open, as for figures 3-5), handover exclusive (the default), agents with "
        f"--kill-timeout {ho_settings.get('kill_timeout', '?')}; the SIGKILL scenario in a "
        f"cluster with heartbeat_interval {ho_settings.get('short_heartbeat_interval', '?')} and "
        f"grace_period {ho_settings.get('short_grace_period', '?')} (lease {fmt(short_lease, 0)} ms: "
        f"the survivors may take the keys only once the killed member's lease has ended, "
        f"so that figure is bounded by the lease, not by the reaction), --kill-timeout "
        f"{ho_settings.get('short_kill_timeout', '?')}. The event of a join is the start of "
        f"the new agent's process (its connection, LISTEN and first heartbeat are inside "
        f"the figure). Every run settled with the children's grants equal to the server's "
        f"(`members` view) and no handover pending."
        + (f" {int(missing)} children left no exit line (taken as gone at the event)." if missing else "")
        + (f" Anomalies: {ho_settings['anomalies']}." if ho_settings.get("anomalies", "none") != "none" else "")
        + "\n")

md.append("## Profiles (perf, cpu-clock sampling)\n")
section("Heartbeat backends, 16 clients, 100,000 members: by shared object", "perf_heartbeat_dso.txt", 12)
section("SELECT 1 backends, same conditions: by shared object", "perf_select1_dso.txt", 12)
section("Heartbeat backends: hottest symbols (self)", "perf_heartbeat.txt", 30)
section("Heartbeat backends: inclusive shares (children) of the statement's parts", "perf_heartbeat_children.txt", 20)
section("SELECT 1 backends: the same", "perf_select1_children.txt", 20)
section("Background worker during the 100,000-member expiry runs: self time by source line", "perf_worker_fail.txt.self", 12)
section("Background worker during the 100,000-member expiry runs (inclusive)", "perf_worker_fail.txt", 30)
section(f"Background worker during the {big:,}-member leaves (inclusive)", "perf_worker_leave.txt", 40)

findings = os.path.join(bench, "FINDINGS.md")
if os.path.exists(findings):
    with open(findings) as f:
        md.append(f.read().strip() + "\n")

with open(os.path.join(report_dir, "RESULTS.md"), "w") as f:
    f.write("\n".join(md))
print(f"report: {len(rows)} rows, missed: {len(missed)}")
