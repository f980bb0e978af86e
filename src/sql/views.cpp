// The functions behind the views members and clusters (live state from
// shared memory), _is_live(), and the install check run by CREATE
// EXTENSION.
//
// The views copy what they show under the shared lock and build their rows
// after releasing it: building a tuplestore can spill to disk, and every
// join and reshard needs the lock exclusively. A catalog of version 1.0
// declares fewer columns: the first ones are the same.

#include "sql/sql.hpp"

extern "C" {
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "core/notify_payload.hpp"
#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

// A cluster's slot keys with their grantees, targets and holders, copied.
struct KeysCopy {
  int32 count;
  PolicyKey *keys;
};

KeysCopy copy_keys(const ClusterEntry *cluster) {
  KeysCopy copy{0, nullptr};
  if (cluster->slot_set < 0 || slot_sets[cluster->slot_set].count == 0)
    return copy;
  copy.count = slot_sets[cluster->slot_set].count;
  const size_t bytes = sizeof(PolicyKey) * static_cast<size_t>(copy.count);
  copy.keys = static_cast<PolicyKey *>(palloc(bytes));
  memcpy(copy.keys, slot_entries(cluster->slot_set), bytes);
  return copy;
}

enum class KeyRole { Grantee, Target };

// The keys in which member `id` has this role, as an int4[] Datum; NULL
// Datum (and *isnull) when it has none and `null_if_none`.
Datum keys_datum(const KeysCopy &keys, uint64 id, KeyRole role,
                 bool null_if_none, bool *isnull) {
  auto *out = static_cast<int32 *>(
      palloc(sizeof(int32) * static_cast<size_t>(Max(keys.count, 1))));
  int32 n = 0;
  for (int32 i = 0; i < keys.count; ++i) {
    const PolicyKey &k = keys.keys[i];
    const uint64 who = role == KeyRole::Grantee ? k.grantee : k.target;
    if (who == id) out[n++] = k.key;
  }
  *isnull = n == 0 && null_if_none;
  return *isnull ? static_cast<Datum>(0) : slots_datum(out, n);
}

struct MemberRow {
  char *cluster;
  char *member;
  bool slot_mode;
  int32 shard;  // target
  bool granted;
  int32 count;  // the count it sees
  int64 epoch;
  MemberState state;
  const char *shown_state;
  int64 stamp;    // monotonic
  int64 promise;  // monotonic
  TimestampTz joined_at;
  uint64 join_seq;
  uint64 acked;
  uint64 incarnation;
  int64 hold_epoch;
  int64 release_deadline;
  const KeysCopy *keys;  // slot mode
  char *releasing;       // plain holds, described; NULL: none
};

// The member's plain holds, described ("shard 2 of 3; shard 0 of 4").
char *describe_plain_holds(const ClusterEntry *cluster, uint64 id) {
  const HoldEntry *holds = hold_entries();
  StringInfoData text;
  initStringInfo(&text);
  for (int32 h = cluster->holds_head; h >= 0; h = holds[h].next) {
    const PolicyHold &hold = holds[h].hold;
    if (hold.member != id) continue;
    appendStringInfo(&text, "%sshard %d of %d", text.len > 0 ? "; " : "",
                     hold.grant.shard, hold.grant.count);
  }
  return text.len > 0 ? text.data : nullptr;
}

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
  const int natts = rsinfo->setDesc->natts;

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
      KeysCopy *keys = nullptr;
      if (cluster->slot_set >= 0 && cluster->member_count > 0) {
        keys = static_cast<KeysCopy *>(palloc(sizeof(KeysCopy)));
        *keys = copy_keys(cluster);
      }
      const bool slot_mode = keys != nullptr && keys->count > 0;
      char *cluster_name = pstrdup(cluster->key.name);
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        if (nrows >= shared->member_count) break;  // cannot happen
        MemberRow &row = rows[nrows++];
        row.cluster = cluster_name;
        row.member = pstrdup(member->key.name);
        row.slot_mode = slot_mode;
        row.shard = member->shard;
        row.granted = member->granted;
        row.count = slot_mode ? cluster->num_shards : cluster->grant_count;
        row.epoch = member_epoch(cluster, member);
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
        row.acked = pg_atomic_read_u64(&member->acked);
        row.incarnation = member->incarnation;
        row.hold_epoch = member->hold_epoch;
        row.release_deadline = member->release_deadline;
        row.keys = keys;
        row.releasing = member->hold_epoch != 0
                            ? describe_plain_holds(cluster, member->join_seq)
                            : nullptr;
      }
    }
  }
  LWLockRelease(shared->lock);

  const TimestampTz wall_now = GetCurrentTimestamp();
  for (int32 i = 0; i < nrows; ++i) {
    const MemberRow &row = rows[i];
    Datum values[18];
    bool nulls[18];
    memset(nulls, 0, sizeof(nulls));
    const bool active = row.state == MemberState::Active;
    const bool shows_shard = active && (row.slot_mode || row.granted);
    values[0] = CStringGetTextDatum(row.cluster);
    values[1] = CStringGetTextDatum(row.member);
    values[2] = Int32GetDatum(row.shard);
    nulls[2] = !shows_shard;
    values[3] = Int32GetDatum(row.count);
    values[4] = Int64GetDatum(row.epoch);
    nulls[4] = row.state == MemberState::Pending && row.epoch == 0;
    values[5] = CStringGetTextDatum(row.shown_state);
    values[6] =
        TimestampTzGetDatum(mono_to_timestamp(row.stamp, now, wall_now));
    values[7] =
        TimestampTzGetDatum(mono_to_timestamp(row.promise, now, wall_now));
    values[8] = TimestampTzGetDatum(row.joined_at);
    values[9] = static_cast<Datum>(0);
    nulls[9] = true;
    if (row.slot_mode && active)
      values[9] = keys_datum(*row.keys, row.join_seq, KeyRole::Grantee, false,
                             &nulls[9]);
    if (natts >= 18) {
      values[10] = Int32GetDatum(row.shard);
      nulls[10] = !active;
      values[11] = static_cast<Datum>(0);
      nulls[11] = true;
      if (row.slot_mode && active)
        values[11] = keys_datum(*row.keys, row.join_seq, KeyRole::Target, false,
                                &nulls[11]);
      // Withheld: its target is not (all) granted yet.
      bool withheld = active && !row.slot_mode && !row.granted;
      if (row.slot_mode && active) {
        for (int32 k = 0; k < row.keys->count; ++k) {
          const PolicyKey &key = row.keys->keys[k];
          if (key.target == row.join_seq && key.grantee != row.join_seq)
            withheld = true;
        }
      }
      values[12] = BoolGetDatum(withheld);
      // What it must release: plain holds described, or keys.
      values[13] = static_cast<Datum>(0);
      nulls[13] = true;
      if (row.releasing != nullptr) {
        values[13] = CStringGetTextDatum(row.releasing);
        nulls[13] = false;
      } else if (row.slot_mode && row.hold_epoch != 0) {
        StringInfoData text;
        initStringInfo(&text);
        for (int32 k = 0; k < row.keys->count; ++k) {
          if (row.keys->keys[k].holder != row.join_seq) continue;
          appendStringInfo(&text, "%s%d", text.len > 0 ? "," : "slots {",
                           row.keys->keys[k].key);
        }
        if (text.len > 0) {
          appendStringInfoChar(&text, '}');
          values[13] = CStringGetTextDatum(text.data);
          nulls[13] = false;
        }
      }
      values[14] = Int64GetDatum(row.hold_epoch);
      nulls[14] = row.hold_epoch == 0;
      values[15] = TimestampTzGetDatum(
          mono_to_timestamp(row.release_deadline, now, wall_now));
      nulls[15] = row.release_deadline == 0;
      values[16] = Int64GetDatum(static_cast<int64>(
          Min(row.acked, static_cast<uint64>(Max(row.epoch, 0)))));
      nulls[16] = row.acked == 0;
      values[17] = Int64GetDatum(static_cast<int64>(row.incarnation));
      nulls[17] = row.incarnation == 0;
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
  KeysCopy keys;
  bool fenced;
  HandoverMode handover;
  int32 grant_count;
  bool handover_pending;
  TimestampTz exclusive_since;
  bool frozen;
  NameData member_role;  // empty: none
  NameData admin_role;
  int64 fence_timeout_us;
  bool dropping;
  int64 grants_held_until;  // monotonic
};

// One row per cluster, from shared memory.
Datum sc_live_clusters(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
  const int natts = rsinfo->setDesc->natts;

  ClusterRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  const int64 now = mono_now_us();
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
      row.keys = copy_keys(cluster);
      row.fenced = cluster->reshard_fenced;
      row.handover = cluster->handover;
      row.grant_count = cluster->grant_count;
      row.handover_pending = cluster->handover_pending;
      row.exclusive_since = cluster->exclusive_since;
      row.frozen = cluster->frozen;
      row.member_role = cluster->member_role_name;
      row.admin_role = cluster->admin_role_name;
      row.fence_timeout_us = cluster->fence_timeout_us;
      row.dropping = cluster->dropping;
      row.grants_held_until = cluster->grants_held_until;
    }
  }
  LWLockRelease(shared->lock);

  const TimestampTz wall_now = GetCurrentTimestamp();
  for (int32 i = 0; i < nrows; ++i) {
    const ClusterRow &row = rows[i];
    Datum values[25];
    bool nulls[25];
    memset(nulls, 0, sizeof(nulls));
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
    nulls[12] = row.keys.count == 0;
    if (row.keys.count > 0) {
      auto *keys = static_cast<int32 *>(
          palloc(sizeof(int32) * static_cast<size_t>(row.keys.count)));
      for (int32 k = 0; k < row.keys.count; ++k) keys[k] = row.keys.keys[k].key;
      values[12] = slots_datum(keys, row.keys.count);
    }
    values[13] = BoolGetDatum(row.fenced);
    if (natts >= 20) {
      values[14] = CStringGetTextDatum(handover_mode_name(row.handover));
      values[15] = Int32GetDatum(row.grant_count);
      values[16] = BoolGetDatum(row.handover_pending);
      values[17] = TimestampTzGetDatum(row.exclusive_since);
      nulls[17] = row.exclusive_since == 0;
      values[18] = TimestampTzGetDatum(
          mono_to_timestamp(row.grants_held_until, now, wall_now));
      nulls[18] = row.grants_held_until <= now;
      values[19] = BoolGetDatum(failover_safe());
      values[20] = BoolGetDatum(row.frozen);
      values[21] = CStringGetTextDatum(NameStr(row.member_role));
      nulls[21] = NameStr(row.member_role)[0] == '\0';
      values[22] = CStringGetTextDatum(NameStr(row.admin_role));
      nulls[22] = NameStr(row.admin_role)[0] == '\0';
      values[23] = IntervalPGetDatum(us_to_interval(row.fence_timeout_us));
      values[24] = BoolGetDatum(row.dropping);
    }
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
