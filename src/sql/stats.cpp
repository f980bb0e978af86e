// The functions behind the stats and history views: cumulative counters of
// each cluster since it was created or the server started, and its last
// kHistoryEntries published steps (README, "Operations"). Shared memory
// only: empty on a standby server, reset by a restart.

#include "sql/sql.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

struct StatsRow {
  char *cluster;
  ClusterStats stats;  // copied; refused read atomically
  uint64 refused;
  int64 handover_running_us;  // a handover pending now: for how long
};

struct HistoryRow {
  char *cluster;
  HistoryEntry entry;
};

Datum us_datum(int64 us) { return IntervalPGetDatum(us_to_interval(us)); }

// The reasons of a step as text[], in a fixed order.
Datum reasons_datum(uint32 reasons) {
  static const struct {
    uint32 bit;
    const char *name;
  } names[] = {{kReasonJoin, "join"},      {kReasonLeave, "leave"},
               {kReasonExpiry, "expiry"},  {kReasonConfigure, "configure"},
               {kReasonAdmin, "admin"},    {kReasonRelease, "release"},
               {kReasonRestart, "restart"}};
  Datum items[7];
  int n = 0;
  for (const auto &name : names)
    if ((reasons & name.bit) != 0) items[n++] = CStringGetTextDatum(name.name);
  return PointerGetDatum(
      construct_array(items, n, TEXTOID, -1, false, TYPALIGN_INT));
}

}  // namespace

}  // namespace shard_coordinator::sql

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

extern "C" {

PG_FUNCTION_INFO_V1(sc_live_stats);
PG_FUNCTION_INFO_V1(sc_live_history);

Datum sc_live_stats(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
  StatsRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  const int64 now = mono_now_us();
  if (shared->loaded) {
    rows = static_cast<StatsRow *>(palloc0(
        sizeof(StatsRow) * static_cast<size_t>(Max(shared->cluster_count, 1))));
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      if (nrows >= shared->cluster_count) {  // cannot happen
        hash_seq_term(&status);
        break;
      }
      StatsRow &row = rows[nrows++];
      row.cluster = pstrdup(cluster->key.name);
      memcpy(&row.stats, &cluster->stats, sizeof(ClusterStats));
      row.refused = pg_atomic_read_u64(&cluster->stats.refused);
      row.handover_running_us = cluster->stats.handover_started != 0
                                    ? now - cluster->stats.handover_started
                                    : -1;
    }
  }
  LWLockRelease(shared->lock);
  for (int32 i = 0; i < nrows; ++i) {
    const StatsRow &row = rows[i];
    const ClusterStats &s = row.stats;
    Datum values[18];
    bool nulls[18];
    memset(nulls, 0, sizeof(nulls));
    values[0] = CStringGetTextDatum(row.cluster);
    values[1] = TimestampTzGetDatum(s.since);
    values[2] = Int64GetDatum(static_cast<int64>(s.steps));
    values[3] = Int64GetDatum(static_cast<int64>(s.reshards));
    values[4] = Int64GetDatum(static_cast<int64>(s.joins));
    values[5] = Int64GetDatum(static_cast<int64>(s.leaves));
    values[6] = Int64GetDatum(static_cast<int64>(s.expiries));
    values[7] = Int64GetDatum(static_cast<int64>(s.evictions));
    values[8] = Int64GetDatum(static_cast<int64>(s.revocations));
    values[9] = Int64GetDatum(static_cast<int64>(s.handovers));
    values[10] = us_datum(s.handovers > 0 ? s.handover_us_total /
                                                static_cast<int64>(s.handovers)
                                          : 0);
    nulls[10] = s.handovers == 0;
    values[11] = us_datum(s.handover_us_max);
    nulls[11] = s.handovers == 0;
    values[12] = us_datum(Max(row.handover_running_us, 0));
    nulls[12] = row.handover_running_us < 0;
    values[13] = Int64GetDatum(static_cast<int64>(s.notices));
    values[14] = Int64GetDatum(static_cast<int64>(s.fence_waits));
    values[15] = Int64GetDatum(static_cast<int64>(row.refused));
    values[16] = us_datum(s.last_step_us);
    nulls[16] = s.last_step_us == 0;
    values[17] = us_datum(s.longest_step_us);
    nulls[17] = s.longest_step_us == 0;
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

Datum sc_live_history(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
  HistoryRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  if (shared->loaded) {
    rows = static_cast<HistoryRow *>(
        palloc0(sizeof(HistoryRow) * kHistoryEntries *
                static_cast<size_t>(Max(shared->cluster_count, 1))));
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    int32 clusters = 0;
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      if (clusters++ >= shared->cluster_count) {  // cannot happen
        hash_seq_term(&status);
        break;
      }
      char *name = pstrdup(cluster->key.name);
      // Oldest first.
      for (int32 k = 0; k < cluster->history_count; ++k) {
        const int32 at = (cluster->history_next - cluster->history_count + k +
                          kHistoryEntries) %
                         kHistoryEntries;
        rows[nrows].cluster = name;
        rows[nrows].entry = cluster->history[at];
        nrows++;
      }
    }
  }
  LWLockRelease(shared->lock);
  for (int32 i = 0; i < nrows; ++i) {
    const HistoryEntry &e = rows[i].entry;
    Datum values[7];
    bool nulls[7];
    memset(nulls, 0, sizeof(nulls));
    values[0] = CStringGetTextDatum(rows[i].cluster);
    values[1] = Int64GetDatum(e.epoch);
    values[2] = TimestampTzGetDatum(e.at);
    values[3] = reasons_datum(e.reasons);
    values[4] = Int32GetDatum(e.told);
    values[5] = Int32GetDatum(e.removed);
    values[6] = us_datum(e.duration_us);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

}  // extern "C"
