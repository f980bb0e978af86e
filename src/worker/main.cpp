// The background worker's loop and its scheduling: the coordinator, and the
// only writer of the tables.
//
// It sleeps on its latch until the earliest member deadline, reshard gate
// or retry, or a wake-up (join, leave, configure); then it reshards each
// cluster that needs it (reshard.cpp). Between deadlines a pass costs
// O(clusters): a cluster's members are looked at only once the earliest
// deadline it had has come.

#include "worker/worker.hpp"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timeout.h"
#include "utils/wait_event.h"

PGDLLEXPORT void sc_worker_main(Datum main_arg);

// SIGINT: only the worker's own lock_timeout cancels its query (the
// timeout sends SIGINT to its own process). A query cancel from outside
// (pg_cancel_backend) is ignored: PostgreSQL ends a cancelled wait for the
// synchronous standby with a WARNING and goes on as if the commit were
// replicated, so the worker would tell members of a step a promoted standby
// does not know (TAP 025). pg_terminate_backend restarts the worker.
static void sc_worker_cancel(SIGNAL_ARGS) {
  if (get_timeout_indicator(LOCK_TIMEOUT, false))
    StatementCancelHandler(postgres_signal_arg);
}
}

#include "module.hpp"
#include "shmem/shmem.hpp"
#include "worker/stall_meter.hpp"

namespace shard_coordinator::worker {

MemoryContext cycle_context = nullptr;
MemoryContext reshard_context = nullptr;

namespace {

// The worker's writes wait at most this long for a row lock (a session that
// holds a row of our tables FOR UPDATE): then the reshard fails, is logged
// and retried, and other clusters go on meanwhile.
constexpr const char *kLockTimeout = "1s";
// While the extension is not installed, look again this often.
constexpr long kNotInstalledPollMs = 1000;
// Longest sleep when nothing is due (deadlines are recomputed on waking).
constexpr long kMaxSleepMs = 60000;

StallMeter stall_meter;

void detach_worker(int code, Datum arg) { shared->worker_latch = nullptr; }

// Moves every release deadline of the cluster `by` later (lock held).
void extend_release_deadlines(ClusterEntry *cluster, int64 by) {
  HoldEntry *holds = hold_entries();
  for (int32 i = cluster->holds_head; i >= 0; i = holds[i].next)
    holds[i].hold.deadline += by;
  if (cluster->slot_set >= 0) {
    PolicyKey *keys = slot_entries(cluster->slot_set);
    for (int32 k = 0; k < slot_sets[cluster->slot_set].count; ++k)
      if (keys[k].holder != 0) keys[k].hold_deadline += by;
  }
  if (cluster->release_check_at != 0) cluster->release_check_at += by;
  // Members' release_deadline (what rows show) stays: a member's own
  // deadline is its lease, which the stall does not move.
}

// Finds the clusters due for a reshard or a settings store, and the time of
// the next thing that will be due. Returns the names of the due clusters;
// those due for removal go to *gone.
//
// Runs under the shared lock so that heartbeats go on meanwhile. It sets
// reshard_wanted, expiry_check_at and empty_since, which heartbeats under
// the shared lock never touch; other writers of the first two hold the
// lock exclusively, and only the worker touches empty_since.
char **find_due_clusters(int64 now, int64 *next_wake, int *ndue, char ***gone,
                         int *ngone) {
  LWLockAcquire(shared->lock, LW_SHARED);
  int capacity = Max(shared->cluster_count, 1);
  char **due = static_cast<char **>(palloc(sizeof(char *) * capacity));
  *gone = static_cast<char **>(palloc(sizeof(char *) * capacity));
  *ndue = 0;
  *ngone = 0;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cluster_table);
  while (auto *cluster =
             static_cast<ClusterEntry *>(hash_seq_search(&status))) {
    if (cluster->expiry_check_at <= now) {
      int64 earliest = PG_INT64_MAX;
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        if (member->removing) continue;
        const int64 deadline = expiry_deadline(cluster, member);
        if (member->leaving || deadline <= now) {
          cluster->reshard_wanted = true;
          if (!member->leaving) cluster->reasons |= kReasonExpiry;
        } else if (deadline < earliest)
          earliest = deadline;
      }
      cluster->expiry_check_at = earliest;
    }
    note_emptiness(cluster, now);
    const int64 removal = removal_due_at(cluster);
    if (removal <= now && *ngone < capacity) {
      (*gone)[(*ngone)++] = pstrdup(cluster->key.name);
      continue;
    }
    if (removal < *next_wake) *next_wake = removal;
    if (cluster->expiry_check_at < *next_wake)
      *next_wake = cluster->expiry_check_at;
    if (cluster->retry_at > now) {
      // A failed reshard: not before its retry time.
      if (cluster->retry_at < *next_wake) *next_wake = cluster->retry_at;
      continue;
    }
    const bool is_due =
        cluster->stored_generation < cluster->config_generation ||
        step_due(cluster, now);
    // What will be due next: the gate (a handover's end wakes the worker
    // by itself), a release deadline, the end of a hold on grants.
    if (cluster->reshard_wanted) {
      const int64 gate = reshard_gate_opens_at(cluster, now);
      if (gate > now && gate < *next_wake) *next_wake = gate;
    }
    if (cluster->release_check_at > now &&
        cluster->release_check_at < *next_wake)
      *next_wake = cluster->release_check_at;
    if (cluster->handover_pending && cluster->grants_held_until > now &&
        cluster->grants_held_until < *next_wake)
      *next_wake = cluster->grants_held_until;
    if (is_due && *ndue < capacity) due[(*ndue)++] = pstrdup(cluster->key.name);
  }
  LWLockRelease(shared->lock);
  return due;
}

// How many members the cluster has (0 if it is gone).
int cluster_members(const char *name) {
  LWLockAcquire(shared->lock, LW_SHARED);
  const ClusterEntry *cluster = find_cluster(name, strlen(name));
  const int members = cluster != nullptr ? cluster->member_count : 0;
  LWLockRelease(shared->lock);
  return members;
}

// One pass; returns how long to sleep (ms).
long run_cycle(bool *need_reload) {
  const int64 now = mono_now_us();
  // No deadline is judged before every stall up to now is measured.
  if (!stalls_measured(now)) return kStallCheckMs;
  int64 next_wake = now + kMaxSleepMs * 1000;
  int ndue = 0;
  int ngone = 0;
  char **gone = nullptr;
  bool any_waiting = false;
  char **due = find_due_clusters(now, &next_wake, &ndue, &gone, &ngone);
  for (int i = 0; i < ngone; ++i) {
    CHECK_FOR_INTERRUPTS();
    remove_cluster_if_due(gone[i]);
  }
  // In batches: their stores share one transaction (one commit and one
  // synchronous flush for many clusters when many are due at once).
  for (int first = 0; first < ndue;) {
    int n = 0;
    int members = 0;
    while (first + n < ndue && n < kBatchClusters &&
           (n == 0 || members < kBatchMembers)) {
      members += cluster_members(due[first + n]);
      ++n;
    }
    auto *results = static_cast<ReshardResult *>(
        palloc(sizeof(ReshardResult) * static_cast<size_t>(n)));
    CHECK_FOR_INTERRUPTS();
    reshard_clusters(due + first, n, results);
    first += n;
    for (int i = 0; i < n; ++i) {
      if (results[i] == ReshardResult::Reload) *need_reload = true;
      long retry_ms = 0;
      if (results[i] == ReshardResult::Failed) retry_ms = kRetryMs;
      if (results[i] == ReshardResult::Fenced) retry_ms = kFenceRetryMs;
      if (results[i] == ReshardResult::NotYet) retry_ms = kStallCheckMs;
      if (retry_ms > 0) {
        any_waiting = true;
        next_wake = Min(next_wake, now + retry_ms * 1000);
      }
    }
    if (*need_reload) return kRetryMs;
  }
  // Look again at once after work (deadlines may have moved), unless a
  // cluster failed or is held up: then wait for its retry time.
  if (ndue > 0 && !any_waiting) return 0;
  const int64 current = mono_now_us();
  if (next_wake <= current) return 0;
  // Round up so that we never wake just before a deadline.
  return static_cast<long>((next_wake - current + 999) / 1000);
}

}  // namespace

bool stalls_measured(int64 now) {
  if (!stall_meter.caught_up(now)) return false;
  int64 stall_end = 0;
  const int64 stall = stall_meter.take(&stall_end);
  if (stall > 0) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->stalls.add(stall_end, stall);
    // Old stalls cannot extend anybody's deadline any more.
    shared->stalls.forget_before(now - 4 * kMaxIntervalUs);
    // Release deadlines are the server's own waits too: they move by the
    // stall (a member that was frozen with the server stops its revoked
    // work by its own lease, which did not count the stall either).
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      cluster->expiry_check_at = 0;
      extend_release_deadlines(cluster, stall);
    }
    LWLockRelease(shared->lock);
    ereport(LOG, (errmsg("shard_coordinator: the server did not run for "
                         "%lld ms; deadlines are extended by that",
                         static_cast<long long>(stall / 1000))));
  }
  return true;
}

}  // namespace shard_coordinator::worker

using namespace shard_coordinator;
using namespace shard_coordinator::worker;

void sc_worker_main(Datum main_arg) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  pqsignal(SIGINT, sc_worker_cancel);
  BackgroundWorkerUnblockSignals();

  BackgroundWorkerInitializeConnection(guc_database, nullptr, 0);
  // Every query of ours is schema-qualified; pin the path all the same.
  SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
  // A reshard is published and notified once committed: that commit must be
  // durable whatever the server's synchronous_commit says, or a crash could
  // take back an epoch members were already told about. ("on" also waits for
  // synchronous standbys, where configured; see README, "Failover".)
  SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
  // A write blocked on a row lock fails after this, is logged and retried.
  SetConfigOption("lock_timeout", kLockTimeout, PGC_SUSET, PGC_S_OVERRIDE);
  pgstat_report_appname("shard_coordinator");

  cycle_context = AllocSetContextCreate(
      TopMemoryContext, "shard_coordinator cycle", ALLOCSET_DEFAULT_SIZES);
  reshard_context = AllocSetContextCreate(
      TopMemoryContext, "shard_coordinator reshard", ALLOCSET_DEFAULT_SIZES);
  before_shmem_exit(detach_worker, static_cast<Datum>(0));
  if (!stall_meter.start())
    ereport(ERROR, (errmsg("shard_coordinator: could not start the stall "
                           "meter thread")));
  shared->worker_latch = MyLatch;
  ereport(LOG, (errmsg("shard_coordinator: background worker started in "
                       "database \"%s\"",
                       guc_database)));

  // Always reload on start: a previous worker may have died between a
  // commit and its publication to shared memory.
  bool need_reload = true;
  for (;;) {
    long sleep_ms = kNotInstalledPollMs;
    MemoryContextReset(cycle_context);
    MemoryContext old = MemoryContextSwitchTo(cycle_context);
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    if (need_reload || !shared->loaded) need_reload = !load_state();
    if (!need_reload) sleep_ms = run_cycle(&need_reload);
    MemoryContextSwitchTo(old);

    if (sleep_ms > 0) {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                      sleep_ms, PG_WAIT_EXTENSION);
    }
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
}
