// sc_bench_latency: the latency figures of bench/run.sh, measured against a
// running server with shard_coordinator (libpq, connection from PG* variables).
//
//   sc_bench_latency join  CLUSTER SAMPLES GRACE_MS OUT
//       Figure 3. A new member LISTENs on its channel, sends its first
//       heartbeat and waits for its NOTIFY (state active). One line per
//       sample: "<server_join_to_arrival_ms> <client_send_to_arrival_ms>
//       <join_to_reshard_start_ms> <join_to_reshard_commit_ms>".
//       The server's join time is the member's last-seen stamp
//       (expires_at - heartbeat_interval - grace_period of the heartbeat row).
//       The member then leaves (and waits for "removed") before the next one.
//
//   sc_bench_latency fail  CLUSTER SAMPLES SURVIVORS OUT
//       Figure 4. SURVIVORS members are kept alive by a thread (their own
//       channels and the cluster's are listened on); a victim
//       joins, heartbeats until active, then stops. Its deadline is the
//       expires_at of its last heartbeat row (server clock). One line per
//       sample: "<last_survivor_arrival - deadline ms> <first ... ms>
//       <reshard_start - deadline ms> <reshard_commit - deadline ms>".
//       Reshard start and commit: resharded_at and the commit timestamp of
//       the cluster_state row (-1 if unknown).
//
//   sc_bench_latency leave CLUSTER MEMBERS LISTENERS LEAVES OUT
//       Figure 5. The cluster holds MEMBERS members named worker-1 ..
//       worker-MEMBERS (registered by the caller, all active). LISTENERS
//       connections each LISTEN on the channel of one member, spread over
//       the cluster including the last one queued, and on the cluster's
//       channel (a member that keeps its shard learns the new num_shards
//       there). LEAVES times one member
//       leaves; one line per leave:
//       "<leave_to_all_notified_ms> <leave_to_first_ms> <reshard_txn_ms>
//        <leave_to_commit_ms> <members_rewritten>"
//       reshard_txn = commit timestamp (track_commit_timestamp) of the
//       cluster_state row - its resharded_at (taken when the reshard starts).
//
//   sc_bench_latency mass CLUSTERS MEMBERS ROUNDS OUT
//       Mass event (issue 16, 3). CLUSTERS clusters mass-0 .. of MEMBERS
//       members each (handover immediate, leases of an hour); in each round
//       one member of every cluster leaves in one statement, at the same
//       moment, and the listener waits for every cluster's notice (the
//       count changed: every survivor is told). One line per cluster and
//       round: "<leave statement end → cluster notice ms>
//       <reshard_commit - leave statement end ms>". The members come back
//       between rounds.
//
//   sc_bench_latency joins CLUSTERS MEMBERS SPREAD_MS OUT
//       Mass join (issue 16, 3). CLUSTERS * MEMBERS new members (clusters
//       join-0 ..) send their first heartbeat within SPREAD_MS, from one
//       connection; then the clusters are polled until every member is
//       active or standby. Writes "<heartbeat call ms>" per call to OUT and
//       "all_active_ms <ms from the first heartbeat>" as the last line.
//       Clusters configured with handover immediate and reshard_interval 0,
//       so that the figure is the worker's, not the members'
//       acknowledgements'. Both commands drop their clusters at the end.
//
//   sc_bench_latency churn CLUSTERS MEMBERS SECONDS WORKER_PID OUT
//       Memory over time (issue 16, 4). CLUSTERS clusters churn-0 .. of
//       about MEMBERS members each (exclusive handover, reshard_interval 0);
//       every 100 ms one member joins and the oldest leaves in each cluster,
//       and every member heartbeats acknowledging what it was told. Every
//       5 s writes "<seconds> <worker RssAnon kB> <steps so far>" to OUT.
//
// Timestamps: the client reads CLOCK_REALTIME, the same clock the server's
// GetCurrentTimestamp() reads (one machine), in microseconds since 1970.

#include <libpq-fe.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using i64 = long long;

i64 now_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<i64>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void sleep_ms(int ms) { usleep(static_cast<useconds_t>(ms) * 1000); }

[[noreturn]] void die(const std::string &what) {
  fprintf(stderr, "sc_bench_latency: %s\n", what.c_str());
  exit(1);
}

PGconn *connect_db(const char *app) {
  std::string conninfo = std::string("application_name=") + app;
  PGconn *conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK)
    die(std::string("connection failed: ") + PQerrorMessage(conn));
  return conn;
}

// Runs a query; dies on error. Caller PQclear()s.
PGresult *run(PGconn *conn, const char *sql, std::vector<std::string> args = {}) {
  std::vector<const char *> values;
  for (auto &a : args) values.push_back(a.c_str());
  PGresult *res = PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr,
                               values.empty() ? nullptr : values.data(), nullptr,
                               nullptr, 0);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    die(std::string("query failed: ") + sql + ": " + PQerrorMessage(conn));
  return res;
}

std::string scalar(PGconn *conn, const char *sql, std::vector<std::string> args = {}) {
  PGresult *res = run(conn, sql, std::move(args));
  std::string v = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "";
  PQclear(res);
  return v;
}

std::string channel_of(PGconn *conn, const std::string &cluster, const std::string &member) {
  return scalar(conn, "SELECT shard_coordinator.channel($1, $2)", {cluster, member});
}

// The cluster's channel: a change of num_shards reaches the members that did
// not move through one notice there.
std::string cluster_channel_of(PGconn *conn, const std::string &cluster) {
  return scalar(conn, "SELECT shard_coordinator.channel($1)", {cluster});
}

void listen_on(PGconn *conn, const std::string &channel, bool on = true) {
  std::string sql = std::string(on ? "LISTEN \"" : "UNLISTEN \"") + channel + "\"";
  PQclear(run(conn, sql.c_str()));
}

struct Beat {
  int shard;
  int num_shards;
  i64 epoch;
  std::string state;
  i64 expires_us;   // unix microseconds
  i64 interval_us;  // heartbeat_interval
};

Beat heartbeat(PGconn *conn, const std::string &cluster, const std::string &member) {
  PGresult *res = run(conn,
                      "SELECT coalesce(shard, -1), num_shards, epoch, state, "
                      "(extract(epoch FROM expires_at) * 1000000)::int8, "
                      "(extract(epoch FROM heartbeat_interval) * 1000000)::int8 "
                      "FROM shard_coordinator.heartbeat($1, $2)",
                      {cluster, member});
  Beat b;
  b.shard = atoi(PQgetvalue(res, 0, 0));
  b.num_shards = atoi(PQgetvalue(res, 0, 1));
  b.epoch = atoll(PQgetvalue(res, 0, 2));
  b.state = PQgetvalue(res, 0, 3);
  b.expires_us = atoll(PQgetvalue(res, 0, 4));
  b.interval_us = atoll(PQgetvalue(res, 0, 5));
  PQclear(res);
  return b;
}

// A tiny reader of the flat JSON payload.
std::string json_str(const std::string &payload, const char *key) {
  std::string k = std::string("\"") + key + "\":\"";
  auto p = payload.find(k);
  if (p == std::string::npos) return "";
  p += k.size();
  auto e = payload.find('"', p);
  return payload.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

i64 json_int(const std::string &payload, const char *key) {
  std::string k = std::string("\"") + key + "\":";
  auto p = payload.find(k);
  if (p == std::string::npos) return -1;
  return atoll(payload.c_str() + p + k.size());
}

struct Notice {
  i64 arrival_us;
  std::string payload;
};

// Collects the notifications already read by libpq, stamped with `stamp`.
void drain(PGconn *conn, i64 stamp, std::vector<Notice> *out) {
  while (PGnotify *n = PQnotifies(conn)) {
    if (out) out->push_back(Notice{stamp, n->extra});
    PQfreemem(n);
  }
}

// Waits for notifications on one connection until `done` says so or the
// deadline passes. The arrival time is taken when poll() returns.
template <class Done>
bool wait_notices(PGconn *conn, i64 deadline_us, Done done) {
  std::vector<Notice> got;
  drain(conn, now_us(), &got);
  for (auto &n : got)
    if (done(n)) return true;
  for (;;) {
    i64 left = deadline_us - now_us();
    if (left <= 0) return false;
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(left / 1000 + 1));
    i64 stamp = now_us();
    if (rc < 0) die("poll failed");
    if (rc == 0) continue;
    if (!PQconsumeInput(conn)) die(std::string("connection lost: ") + PQerrorMessage(conn));
    got.clear();
    drain(conn, stamp, &got);
    for (auto &n : got)
      if (done(n)) return true;
  }
}

// The cluster's last reshard as stored: its epoch, when it started
// (resharded_at) and when it committed (commit timestamp of the row).
struct Reshard {
  i64 epoch = -1, started_us = 0, committed_us = 0;
};

Reshard last_reshard(PGconn *conn, const std::string &cluster) {
  PGresult *res = run(conn,
                      "SELECT epoch, (extract(epoch FROM resharded_at) * 1000000)::int8, "
                      "(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::int8 "
                      "FROM shard_coordinator.cluster_state WHERE cluster = $1",
                      {cluster});
  Reshard r;
  if (PQntuples(res) == 1) {
    r.epoch = atoll(PQgetvalue(res, 0, 0));
    r.started_us = PQgetisnull(res, 0, 1) ? 0 : atoll(PQgetvalue(res, 0, 1));
    r.committed_us = PQgetisnull(res, 0, 2) ? 0 : atoll(PQgetvalue(res, 0, 2));
  }
  PQclear(res);
  return r;
}

// "a - b" in ms, or -1 when either is unknown.
double ms_since(i64 a, i64 b) { return a && b ? (a - b) / 1000.0 : -1.0; }

FILE *open_out(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) die(std::string("cannot write ") + path);
  return f;
}

// --- Figure 3 ---------------------------------------------------------------

int cmd_join(const std::string &cluster, int samples, i64 grace_ms, const char *out_path) {
  PGconn *conn = connect_db("sc_bench_join");
  FILE *out = open_out(out_path);
  std::string prefix = "joiner-" + std::to_string(getpid()) + "-";
  int failures = 0;
  for (int i = 0; i < samples; ++i) {
    std::string member = prefix + std::to_string(i);
    std::string channel = channel_of(conn, cluster, member);
    listen_on(conn, channel);
    i64 sent = now_us();
    Beat b = heartbeat(conn, cluster, member);
    i64 joined = b.expires_us - b.interval_us - grace_ms * 1000;
    i64 arrival = 0;
    i64 epoch = -1;
    bool ok = wait_notices(conn, sent + 5000000, [&](const Notice &n) {
      if (json_str(n.payload, "member") != member) return false;
      std::string st = json_str(n.payload, "state");
      if (st != "active" && st != "standby") return false;
      arrival = n.arrival_us;
      epoch = json_int(n.payload, "epoch");
      return true;
    });
    if (ok) {
      Reshard r = last_reshard(conn, cluster);
      if (r.epoch != epoch) r = Reshard{};
      fprintf(out, "%.3f %.3f %.3f %.3f\n", (arrival - joined) / 1000.0, (arrival - sent) / 1000.0,
              ms_since(r.started_us, joined), ms_since(r.committed_us, joined));
    } else {
      ++failures;
    }
    PQclear(run(conn, "SELECT shard_coordinator.leave($1, $2)", {cluster, member}));
    wait_notices(conn, now_us() + 5000000, [&](const Notice &n) {
      return json_str(n.payload, "member") == member && json_str(n.payload, "state") == "removed";
    });
    listen_on(conn, channel, false);
    drain(conn, 0, nullptr);
    sleep_ms(10 + i % 7);  // the worker is idle again; vary the phase
  }
  fclose(out);
  PQfinish(conn);
  if (failures) fprintf(stderr, "join: %d samples timed out\n", failures);
  return failures > samples / 10 ? 1 : 0;
}

// --- Figure 4 ---------------------------------------------------------------

int cmd_fail(const std::string &cluster, int samples, int nsurvivors, const char *out_path) {
  std::string prefix = std::to_string(getpid());
  std::vector<std::string> survivors;
  for (int j = 0; j < nsurvivors; ++j) survivors.push_back("survivor-" + prefix + "-" + std::to_string(j));

  PGconn *victim_conn = connect_db("sc_bench_fail_victim");
  PGconn *listener = connect_db("sc_bench_fail_listener");
  for (auto &s : survivors) listen_on(listener, channel_of(listener, cluster, s));
  listen_on(listener, cluster_channel_of(listener, cluster));

  // The survivors' heartbeat loop, at a quarter of the interval.
  std::atomic<bool> stop{false};
  std::atomic<int> survivor_losses{0};
  std::atomic<i64> interval_us{0};
  PGconn *keeper = connect_db("sc_bench_fail_keeper");
  for (auto &s : survivors) interval_us = heartbeat(keeper, cluster, s).interval_us;
  std::thread keep([&] {
    std::vector<bool> was_assigned(survivors.size(), false);
    while (!stop) {
      for (size_t j = 0; j < survivors.size(); ++j) {
        Beat b = heartbeat(keeper, cluster, survivors[j]);
        // Pending again after having been assigned: it expired meanwhile.
        if (b.state == "pending" && was_assigned[j]) ++survivor_losses;
        was_assigned[j] = b.state != "pending";
      }
      usleep(static_cast<useconds_t>(std::max<i64>(interval_us / 4, 1000)));
    }
  });
  // Let the survivors become active and forget those notifications.
  sleep_ms(500);
  wait_notices(listener, now_us() + 200000, [](const Notice &) { return false; });

  FILE *out = open_out(out_path);
  int failures = 0;
  for (int i = 0; i < samples; ++i) {
    std::string victim = "victim-" + prefix + "-" + std::to_string(i);
    Beat b = heartbeat(victim_conn, cluster, victim);
    i64 give_up = now_us() + 3000000;
    while (b.state != "active" && b.state != "standby" && now_us() < give_up) {
      sleep_ms(2);
      b = heartbeat(victim_conn, cluster, victim);
    }
    if (b.state != "active" && b.state != "standby") die("victim never became active");
    i64 deadline = b.expires_us;  // the last heartbeat of the victim
    i64 join_epoch = b.epoch;
    std::vector<i64> arrivals;
    std::vector<bool> seen(survivors.size(), false);
    bool ok = wait_notices(listener, deadline + 5000000, [&](const Notice &n) {
      if (json_int(n.payload, "epoch") <= join_epoch) return false;
      std::string m = json_str(n.payload, "member");
      // A cluster notice (no "member") tells every survivor that did not move.
      for (size_t j = 0; j < survivors.size(); ++j)
        if ((m.empty() || survivors[j] == m) && !seen[j]) {
          seen[j] = true;
          arrivals.push_back(n.arrival_us);
        }
      return arrivals.size() == survivors.size();
    });
    if (ok) {
      i64 last = *std::max_element(arrivals.begin(), arrivals.end());
      i64 first = *std::min_element(arrivals.begin(), arrivals.end());
      Reshard r = last_reshard(victim_conn, cluster);
      if (r.epoch <= join_epoch) r = Reshard{};
      fprintf(out, "%.3f %.3f %.3f %.3f\n", (last - deadline) / 1000.0, (first - deadline) / 1000.0,
              ms_since(r.started_us, deadline), ms_since(r.committed_us, deadline));
    } else {
      ++failures;
    }
    sleep_ms(20 + i % 11);
  }
  fclose(out);
  stop = true;
  keep.join();
  for (auto &s : survivors) PQclear(run(keeper, "SELECT shard_coordinator.leave($1, $2)", {cluster, s}));
  PQfinish(keeper);
  PQfinish(listener);
  PQfinish(victim_conn);
  if (survivor_losses) fprintf(stderr, "fail: survivors expired %d times (machine too loaded?)\n", survivor_losses.load());
  if (failures) fprintf(stderr, "fail: %d samples timed out\n", failures);
  return failures > samples / 10 ? 1 : 0;
}

// --- Figure 5 ---------------------------------------------------------------

int cmd_leave(const std::string &cluster, int members, int nlisteners, int leaves, const char *out_path) {
  PGconn *ctl = connect_db("sc_bench_leave");
  std::vector<int> listen_idx;
  for (int j = 0; j < nlisteners; ++j) {
    int g = 1 + static_cast<int>(static_cast<i64>(j) * (members - 1) / std::max(nlisteners - 1, 1));
    listen_idx.push_back(g);
  }
  std::vector<PGconn *> conns;
  for (int g : listen_idx) {
    PGconn *c = connect_db("sc_bench_leave_listener");
    listen_on(c, channel_of(c, cluster, "worker-" + std::to_string(g)));
    listen_on(c, cluster_channel_of(c, cluster));
    conns.push_back(c);
  }
  FILE *out = open_out(out_path);
  int failures = 0;
  int next_leaver = members / 2;
  for (int i = 0; i < leaves; ++i) {
    while (std::find(listen_idx.begin(), listen_idx.end(), next_leaver) != listen_idx.end()) ++next_leaver;
    std::string leaver = "worker-" + std::to_string(next_leaver);
    next_leaver += 3;
    i64 epoch = atoll(scalar(ctl, "SELECT epoch FROM shard_coordinator.cluster_state WHERE cluster = $1", {cluster}).c_str());
    for (PGconn *c : conns) {
      PQconsumeInput(c);
      drain(c, 0, nullptr);
    }
    i64 sent = now_us();
    if (scalar(ctl, "SELECT shard_coordinator.leave($1, $2)", {cluster, leaver}) != "t") die("leaver unknown: " + leaver);
    // Wait on every listener at once.
    std::vector<i64> arrival(conns.size(), 0);
    size_t pending = conns.size();
    i64 give_up = sent + 30000000;
    while (pending > 0 && now_us() < give_up) {
      std::vector<pollfd> pfds;
      std::vector<size_t> which;
      for (size_t k = 0; k < conns.size(); ++k)
        if (!arrival[k]) {
          pfds.push_back(pollfd{PQsocket(conns[k]), POLLIN, 0});
          which.push_back(k);
        }
      int rc = poll(pfds.data(), pfds.size(), 100);
      i64 stamp = now_us();
      if (rc <= 0) continue;
      for (size_t p = 0; p < pfds.size(); ++p) {
        if (!(pfds[p].revents & (POLLIN | POLLERR | POLLHUP))) continue;
        size_t k = which[p];
        if (!PQconsumeInput(conns[k])) die("listener lost");
        std::vector<Notice> got;
        drain(conns[k], stamp, &got);
        for (auto &n : got)
          if (!arrival[k] && json_int(n.payload, "epoch") > epoch) {
            arrival[k] = n.arrival_us;
            --pending;
          }
      }
    }
    if (pending > 0) {
      ++failures;
      continue;
    }
    i64 last = *std::max_element(arrival.begin(), arrival.end());
    i64 first = *std::min_element(arrival.begin(), arrival.end());
    PGresult *res = run(ctl,
                        "SELECT epoch, (extract(epoch FROM resharded_at) * 1000000)::int8, "
                        "(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::int8 "
                        "FROM shard_coordinator.cluster_state WHERE cluster = $1",
                        {cluster});
    i64 new_epoch = atoll(PQgetvalue(res, 0, 0));
    i64 started = atoll(PQgetvalue(res, 0, 1));
    i64 committed = PQgetisnull(res, 0, 2) ? 0 : atoll(PQgetvalue(res, 0, 2));
    PQclear(res);
    std::string rewritten = scalar(ctl,
                                   "SELECT count(*) FROM shard_coordinator.member_state "
                                   "WHERE cluster = $1 AND epoch = $2",
                                   {cluster, std::to_string(new_epoch)});
    fprintf(out, "%.3f %.3f %.3f %.3f %s\n", (last - sent) / 1000.0, (first - sent) / 1000.0,
            committed ? (committed - started) / 1000.0 : -1.0, committed ? (committed - sent) / 1000.0 : -1.0,
            rewritten.c_str());
    fflush(out);
    sleep_ms(300);
  }
  fclose(out);
  for (PGconn *c : conns) PQfinish(c);
  PQfinish(ctl);
  if (failures) fprintf(stderr, "leave: %d leaves not fully notified within 30 s\n", failures);
  return failures ? 1 : 0;
}

}  // namespace

// --- Mass events -------------------------------------------------------------

int cmd_mass(int nclusters, int nmembers, int rounds, const char *out_path) {
  PGconn *ctl = connect_db("sc_bench_mass");
  PGconn *listener = connect_db("sc_bench_mass_listener");
  const std::string n = std::to_string(nclusters);
  const std::string m = std::to_string(nmembers);
  PQclear(run(ctl,
              "SELECT shard_coordinator.configure('mass-' || c, "
              "heartbeat_interval => '1 hour', grace_period => '1 hour', "
              "reshard_interval => '0', handover => 'immediate') "
              "FROM generate_series(0, $1::int - 1) c",
              {n}));
  const char *join_all =
      "SELECT count(*) FROM generate_series(0, $1::int - 1) c, "
      "generate_series(1, $2::int) k, "
      "LATERAL shard_coordinator.heartbeat('mass-' || c, 'm' || k) h";
  PQclear(run(ctl, join_all, {n, m}));
  for (int c = 0; c < nclusters; ++c)
    listen_on(listener, cluster_channel_of(listener, "mass-" + std::to_string(c)));
  const char *settled =
      "SELECT count(*) FILTER (WHERE pending = 0 AND active + standby = $2::int "
      "AND NOT handover_pending) = $1::int FROM shard_coordinator.clusters "
      "WHERE cluster LIKE 'mass-%'";
  auto wait_settled = [&] {
    for (int i = 0; i < 3000 && scalar(ctl, settled, {n, m}) != "t"; ++i) sleep_ms(20);
    if (scalar(ctl, settled, {n, m}) != "t") die("mass: the clusters did not settle");
  };
  wait_settled();
  FILE *out = open_out(out_path);
  int failures = 0;
  for (int r = 0; r < rounds; ++r) {
    wait_notices(listener, now_us() + 300000, [](const Notice &) { return false; });
    PQclear(run(ctl, "SELECT count(*) FROM generate_series(0, $1::int - 1) c, "
                     "LATERAL shard_coordinator.leave('mass-' || c, 'm1')",
                {n}));
    const i64 t0 = now_us();
    std::vector<i64> arrival(static_cast<size_t>(nclusters), 0);
    int told = 0;
    const std::string expect = std::to_string(nmembers - 1);
    bool ok = wait_notices(listener, t0 + 30000000, [&](const Notice &note) {
      const std::string cluster = json_str(note.payload, "cluster");
      if (cluster.rfind("mass-", 0) != 0) return false;
      if (json_int(note.payload, "num_shards") != nmembers - 1) return false;
      const size_t c = static_cast<size_t>(atoi(cluster.c_str() + 5));
      if (c < arrival.size() && arrival[c] == 0) {
        arrival[c] = note.arrival_us;
        ++told;
      }
      return told == nclusters;
    });
    if (!ok) ++failures;
    PGresult *res = run(ctl,
                        "SELECT substr(cluster, 6)::int, "
                        "(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::int8 "
                        "FROM shard_coordinator.cluster_state WHERE cluster LIKE 'mass-%'");
    std::vector<i64> committed(static_cast<size_t>(nclusters), 0);
    for (int i = 0; i < PQntuples(res); ++i) {
      const int c = atoi(PQgetvalue(res, i, 0));
      if (c >= 0 && c < nclusters && !PQgetisnull(res, i, 1))
        committed[static_cast<size_t>(c)] = atoll(PQgetvalue(res, i, 1));
    }
    PQclear(res);
    for (size_t c = 0; c < arrival.size(); ++c)
      if (arrival[c] != 0)
        fprintf(out, "%.3f %.3f\n", (arrival[c] - t0) / 1000.0, ms_since(committed[c], t0));
    // Everybody back for the next round.
    PQclear(run(ctl, join_all, {n, m}));
    wait_settled();
  }
  fclose(out);
  PQclear(run(ctl, "SELECT count(*) FROM generate_series(0, $1::int - 1) c, "
                   "LATERAL shard_coordinator.drop_cluster('mass-' || c)",
              {n}));
  PQfinish(listener);
  PQfinish(ctl);
  if (failures) fprintf(stderr, "mass: %d rounds timed out\n", failures);
  return failures ? 1 : 0;
}

int cmd_joins(int nclusters, int nmembers, int spread_ms, const char *out_path) {
  PGconn *conn = connect_db("sc_bench_joins");
  const int total = nclusters * nmembers;
  PQclear(run(conn,
              "SELECT shard_coordinator.configure('join-' || c, "
              "heartbeat_interval => '1 hour', grace_period => '1 hour', "
              "reshard_interval => '0', handover => 'immediate') "
              "FROM generate_series(0, $1::int - 1) c",
              {std::to_string(nclusters)}));
  FILE *out = open_out(out_path);
  const i64 t0 = now_us();
  for (int i = 0; i < total; ++i) {
    // Paced over SPREAD_MS (as fast as the server answers if it is slower).
    const i64 due = t0 + static_cast<i64>(spread_ms) * 1000 * i / total;
    while (now_us() < due) usleep(50);
    const i64 before = now_us();
    heartbeat(conn, "join-" + std::to_string(i % nclusters),
              "m" + std::to_string(i / nclusters));
    fprintf(out, "%.3f\n", (now_us() - before) / 1000.0);
  }
  const std::string expect = std::to_string(total);
  i64 done = 0;
  for (int i = 0; i < 6000; ++i) {
    if (scalar(conn,
               "SELECT coalesce(sum(active + standby), 0) FROM shard_coordinator.clusters "
               "WHERE cluster LIKE 'join-%'") == expect) {
      done = now_us();
      break;
    }
    sleep_ms(5);
  }
  fprintf(out, "all_active_ms %.3f\n", done ? (done - t0) / 1000.0 : -1.0);
  fclose(out);
  PQclear(run(conn, "SELECT count(*) FROM shard_coordinator.clusters c, "
                    "LATERAL shard_coordinator.drop_cluster(c.cluster) "
                    "WHERE c.cluster LIKE 'join-%'"));
  PQfinish(conn);
  return done ? 0 : 1;
}

long rss_anon_kb(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  FILE *f = fopen(path.c_str(), "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, "RssAnon:", 8) == 0) kb = atol(line + 8);
  fclose(f);
  return kb;
}

int cmd_churn(int nclusters, int nmembers, int seconds, int worker_pid, const char *out_path) {
  PGconn *conn = connect_db("sc_bench_churn");
  PQclear(run(conn,
              "SELECT shard_coordinator.configure('churn-' || c, "
              "heartbeat_interval => '1 hour', grace_period => '1 hour', "
              "reshard_interval => '0') FROM generate_series(0, $1::int - 1) c",
              {std::to_string(nclusters)}));
  // Per cluster: its members (oldest first) and the epoch each was told.
  std::vector<std::vector<std::pair<long, i64>>> members(static_cast<size_t>(nclusters));
  long next = 0;
  auto beat = [&](int c, std::pair<long, i64> &m) {
    const std::string ack = m.second > 0 ? std::to_string(m.second) : "";
    PGresult *res = PQexecParams(
        conn, "SELECT epoch FROM shard_coordinator.heartbeat($1, $2, $3::bigint)", 3, nullptr,
        std::vector<const char *>{("churn-" + std::to_string(c)).c_str(),
                                  ("m" + std::to_string(m.first)).c_str(),
                                  ack.empty() ? nullptr : ack.c_str()}
            .data(),
        nullptr, nullptr, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
      m.second = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
  };
  for (int c = 0; c < nclusters; ++c)
    for (int k = 0; k < nmembers; ++k) members[static_cast<size_t>(c)].push_back({next++, 0});
  FILE *out = open_out(out_path);
  const i64 t0 = now_us();
  i64 next_sample = t0;
  while (now_us() < t0 + static_cast<i64>(seconds) * 1000000) {
    for (int c = 0; c < nclusters; ++c) {
      auto &ms = members[static_cast<size_t>(c)];
      for (auto &m : ms) beat(c, m);
      PQclear(run(conn, "SELECT shard_coordinator.leave($1, $2)",
                  {"churn-" + std::to_string(c), "m" + std::to_string(ms.front().first)}));
      ms.erase(ms.begin());
      ms.push_back({next++, 0});
      beat(c, ms.back());
    }
    if (now_us() >= next_sample) {
      const std::string steps = scalar(conn,
          "SELECT coalesce(sum(steps), 0) FROM shard_coordinator.stats WHERE cluster LIKE 'churn-%'");
      fprintf(out, "%.1f %ld %s\n", (now_us() - t0) / 1e6, rss_anon_kb(worker_pid), steps.c_str());
      fflush(out);
      next_sample += 5000000;
    }
    sleep_ms(100);
  }
  fclose(out);
  PQclear(run(conn, "SELECT count(*) FROM generate_series(0, $1::int - 1) c, "
                    "LATERAL shard_coordinator.drop_cluster('churn-' || c)",
              {std::to_string(nclusters)}));
  PQfinish(conn);
  return 0;
}

int main(int argc, char **argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "join" && argc == 6) return cmd_join(argv[2], atoi(argv[3]), atoll(argv[4]), argv[5]);
  if (cmd == "churn" && argc == 7)
    return cmd_churn(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[6]);
  if (cmd == "mass" && argc == 6) return cmd_mass(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
  if (cmd == "joins" && argc == 6) return cmd_joins(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
  if (cmd == "fail" && argc == 6) return cmd_fail(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
  if (cmd == "leave" && argc == 7)
    return cmd_leave(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[6]);
  fprintf(stderr,
          "usage: %s join CLUSTER SAMPLES GRACE_MS OUT\n"
          "       %s fail CLUSTER SAMPLES SURVIVORS OUT\n"
          "       %s leave CLUSTER MEMBERS LISTENERS LEAVES OUT\n",
          argv[0], argv[0], argv[0]);
  return 2;
}
