// Removing clusters: those drop_cluster() was called for, once nothing is
// held; and those a first heartbeat made, once they have been empty for
// shard_coordinator.empty_cluster_timeout (README, "Operations").
//
// Shared memory first, then the row: after the entry is gone a heartbeat
// may make the cluster anew (it starts above the removed epochs), and its
// row is written by this worker's next step, after the deletion below. A
// deletion that fails leaves a row without an entry: it is logged, and
// the next load brings the cluster back, to be removed again.

#include "worker/worker.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "storage/condition_variable.h"
#include "utils/builtins.h"
}

#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::worker {

int64 removal_due_at(const ClusterEntry *cluster) {
  if (cluster->empty_since == 0) return PG_INT64_MAX;
  if (cluster->dropping) return cluster->empty_since;
  if (cluster->configured || cluster->frozen ||
      guc_empty_cluster_timeout_ms <= 0)
    return PG_INT64_MAX;
  return cluster->empty_since +
         static_cast<int64>(guc_empty_cluster_timeout_ms) * 1000;
}

void note_emptiness(ClusterEntry *cluster, int64 now) {
  const bool empty = cluster_is_empty(cluster) && !cluster->reshard_wanted &&
                     cluster->epoch_in_flight == 0 &&
                     pg_atomic_read_u32(&cluster->grant_check_wanted) == 0;
  if (!empty)
    cluster->empty_since = 0;
  else if (cluster->empty_since == 0)
    cluster->empty_since = now;
}

namespace {

void delete_cluster_row(const char *name, int64 epoch) {
  begin_transaction("shard_coordinator: removing a cluster");
  Oid types[2] = {TEXTOID, INT8OID};
  Datum values[2] = {CStringGetTextDatum(name), Int64GetDatum(epoch)};
  // Its member and release rows go with it (ON DELETE CASCADE).
  if (SPI_execute_with_args("DELETE FROM shard_coordinator.cluster_state "
                            "WHERE cluster = $1 AND epoch <= $2",
                            2, types, values, nullptr, false,
                            0) != SPI_OK_DELETE)
    elog(ERROR, "could not delete the row of cluster \"%s\"", name);
  commit_transaction(reshard_context);
}

}  // namespace

void remove_cluster_if_due(const char *name) {
  MemoryContext old = MemoryContextSwitchTo(reshard_context);
  const int64 now = mono_now_us();
  bool removed = false;
  bool dropped = false;
  int64 epoch = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name, strlen(name));
  if (cluster != nullptr) {
    // Heartbeats may have come since the look under the shared lock.
    note_emptiness(cluster, now);
    if (removal_due_at(cluster) <= now) {
      dropped = cluster->dropping;
      epoch = cluster->epoch;
      remove_cluster(cluster);
      removed = true;
    }
  }
  LWLockRelease(shared->lock);
  if (removed) {
    ConditionVariableBroadcast(&shared->changed_cv);
    char *what = psprintf("removal of cluster \"%s\"", name);
    volatile int failure = 0;
    PG_TRY();
    { delete_cluster_row(name, epoch); }
    PG_CATCH();
    { failure = recover_from_error(reshard_context, what); }
    PG_END_TRY();
    if (failure == 0)
      ereport(LOG, (errmsg("shard_coordinator: cluster \"%s\" removed (%s)",
                           name, dropped ? "dropped" : "empty")));
  }
  MemoryContextSwitchTo(old);
  MemoryContextReset(reshard_context);
}

}  // namespace shard_coordinator::worker
