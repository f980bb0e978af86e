// The functions behind the views members and clusters (live state from
// shared memory), _is_live(), and the install check run by CREATE
// EXTENSION.

#include "sql/sql.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "core/notify_payload.hpp"
#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

// The views copy what they show under the shared lock and build their rows
// after releasing it: building a tuplestore can spill to disk, and every
// join and reshard needs the lock exclusively.

// A cluster's published slot keys and their owners, copied.
struct SlotsCopy {
  int32 count;
  int32 *keys;
  uint64 *owners;
};

SlotsCopy copy_slots(const ClusterEntry *cluster) {
  SlotsCopy copy{0, nullptr, nullptr};
  if (cluster->slot_set < 0 || slot_sets[cluster->slot_set].count == 0)
    return copy;
  copy.count = slot_sets[cluster->slot_set].count;
  const size_t n = static_cast<size_t>(copy.count);
  copy.keys = static_cast<int32 *>(palloc(sizeof(int32) * n));
  copy.owners = static_cast<uint64 *>(palloc(sizeof(uint64) * n));
  memcpy(copy.keys, slot_keys(cluster->slot_set), sizeof(int32) * n);
  memcpy(copy.owners, slot_owners(cluster->slot_set), sizeof(uint64) * n);
  return copy;
}

// The keys of the member with this join_seq, as an int4[] Datum.
Datum owned_slots_datum(const SlotsCopy &slots, uint64 join_seq) {
  auto *keys = static_cast<int32 *>(
      palloc(sizeof(int32) * static_cast<size_t>(Max(slots.count, 1))));
  int32 n = 0;
  for (int32 i = 0; i < slots.count; ++i) {
    if (slots.owners[i] == join_seq) keys[n++] = slots.keys[i];
  }
  return slots_datum(keys, n);
}

struct MemberRow {
  char *cluster;
  char *member;
  int32 shard;
  int32 num_shards;
  int64 epoch;
  MemberState state;
  const char *shown_state;
  int64 stamp;    // monotonic
  int64 promise;  // monotonic
  TimestampTz joined_at;
  uint64 join_seq;
  const SlotsCopy *slots;  // NULL: no slot set
};

}  // namespace

}  // namespace shard_coordinator::sql

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

extern "C" {

PG_FUNCTION_INFO_V1(sc_live_members);
PG_FUNCTION_INFO_V1(sc_live_clusters);
PG_FUNCTION_INFO_V1(sc_is_live);
PG_FUNCTION_INFO_V1(sc_install_check);

// One row per member, from shared memory.
Datum sc_live_members(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

  MemberRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  const int64 now = mono_now_us();
  if (shared->loaded) {
    rows = static_cast<MemberRow *>(palloc(
        sizeof(MemberRow) * static_cast<size_t>(Max(shared->member_count, 1))));
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      SlotsCopy *slots = nullptr;
      if (cluster->slot_set >= 0 && cluster->member_count > 0) {
        slots = static_cast<SlotsCopy *>(palloc(sizeof(SlotsCopy)));
        *slots = copy_slots(cluster);
      }
      char *cluster_name = pstrdup(cluster->key.name);
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        if (nrows >= shared->member_count) break;  // cannot happen
        MemberRow &row = rows[nrows++];
        row.cluster = cluster_name;
        row.member = pstrdup(member->key.name);
        row.shard = member->shard;
        row.num_shards = cluster->num_shards;
        row.epoch = member->epoch;
        row.state = member->state;
        row.shown_state = state_name(member->state);
        if (member->leaving || member->removing)
          row.shown_state = "leaving";
        else if (expiry_deadline(cluster, member) <= now)
          row.shown_state = "expired";
        row.stamp = member_stamp(member);
        row.promise = promise_end(cluster, member);
        row.joined_at = member->joined_at;
        row.join_seq = member->join_seq;
        row.slots = slots;
      }
    }
  }
  LWLockRelease(shared->lock);

  const TimestampTz wall_now = GetCurrentTimestamp();
  for (int32 i = 0; i < nrows; ++i) {
    const MemberRow &row = rows[i];
    Datum values[10];
    bool nulls[10] = {false, false, false, false, false,
                      false, false, false, false, false};
    values[0] = CStringGetTextDatum(row.cluster);
    values[1] = CStringGetTextDatum(row.member);
    values[2] = Int32GetDatum(row.shard);
    nulls[2] = row.state != MemberState::Active;
    values[3] = Int32GetDatum(row.num_shards);
    values[4] = Int64GetDatum(row.epoch);
    nulls[4] = row.state == MemberState::Pending;
    values[5] = CStringGetTextDatum(row.shown_state);
    values[6] =
        TimestampTzGetDatum(mono_to_timestamp(row.stamp, now, wall_now));
    values[7] =
        TimestampTzGetDatum(mono_to_timestamp(row.promise, now, wall_now));
    values[8] = TimestampTzGetDatum(row.joined_at);
    values[9] = static_cast<Datum>(0);
    nulls[9] = true;
    if (row.slots != nullptr && row.slots->count > 0 &&
        row.state == MemberState::Active) {
      values[9] = owned_slots_datum(*row.slots, row.join_seq);
      nulls[9] = false;
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

struct ClusterRow {
  char *cluster;
  int64 heartbeat_interval_us;
  int64 grace_period_us;
  int64 reshard_interval_us;
  int32 max_shards;
  int64 epoch;
  int32 num_shards;
  int32 members;
  int32 counts[3];  // indexed by MemberState
  TimestampTz resharded_at;
  SlotsCopy slots;
  bool fenced;
};

// One row per cluster, from shared memory.
Datum sc_live_clusters(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

  ClusterRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  if (shared->loaded) {
    rows = static_cast<ClusterRow *>(
        palloc0(sizeof(ClusterRow) *
                static_cast<size_t>(Max(shared->cluster_count, 1))));
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      if (nrows >= shared->cluster_count) {  // cannot happen
        hash_seq_term(&status);
        break;
      }
      ClusterRow &row = rows[nrows++];
      row.cluster = pstrdup(cluster->key.name);
      row.heartbeat_interval_us = cluster->heartbeat_interval_us;
      row.grace_period_us = cluster->grace_period_us;
      row.reshard_interval_us = cluster->reshard_interval_us;
      row.max_shards = cluster->max_shards;
      row.epoch = cluster->epoch;
      row.num_shards = cluster->num_shards;
      row.members = cluster->member_count;
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        row.counts[static_cast<int>(member->state)]++;
      }
      row.resharded_at = cluster->resharded_at;
      row.slots = copy_slots(cluster);
      row.fenced = cluster->reshard_fenced;
    }
  }
  LWLockRelease(shared->lock);

  for (int32 i = 0; i < nrows; ++i) {
    const ClusterRow &row = rows[i];
    Datum values[14];
    bool nulls[14] = {false, false, false, false, false, false, false,
                      false, false, false, false, false, false, false};
    values[0] = CStringGetTextDatum(row.cluster);
    values[1] = IntervalPGetDatum(us_to_interval(row.heartbeat_interval_us));
    values[2] = IntervalPGetDatum(us_to_interval(row.grace_period_us));
    values[3] = IntervalPGetDatum(us_to_interval(row.reshard_interval_us));
    values[4] = Int32GetDatum(row.max_shards);
    nulls[4] = row.max_shards == 0;
    values[5] = Int64GetDatum(row.epoch);
    values[6] = Int32GetDatum(row.num_shards);
    values[7] = Int32GetDatum(row.members);
    values[8] =
        Int32GetDatum(row.counts[static_cast<int>(MemberState::Active)]);
    values[9] =
        Int32GetDatum(row.counts[static_cast<int>(MemberState::Standby)]);
    values[10] =
        Int32GetDatum(row.counts[static_cast<int>(MemberState::Pending)]);
    values[11] = TimestampTzGetDatum(row.resharded_at);
    nulls[11] = row.resharded_at == 0;
    values[12] = static_cast<Datum>(0);
    nulls[12] = row.slots.count == 0;
    if (row.slots.count > 0)
      values[12] = slots_datum(row.slots.keys, row.slots.count);
    values[13] = BoolGetDatum(row.fenced);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

Datum sc_is_live(PG_FUNCTION_ARGS) {
  PG_RETURN_BOOL(shared != nullptr && shared->loaded);
}

// Run by CREATE EXTENSION: refuse early and clearly, and start from a clean
// shared memory so that nothing of a dropped installation survives.
Datum sc_install_check(PG_FUNCTION_ARGS) {
  require_preloaded();
  require_coordinator_database();
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  reset_all();
  LWLockRelease(shared->lock);
  wake_worker();
  PG_RETURN_VOID();
}

}  // extern "C"
