// The background worker: the coordinator, and the only writer of the tables.
//
// Loop: sleep on the latch until the earliest member deadline, reshard gate
// or wake-up (join, leave, configure); then, per cluster that needs it:
//   1. snapshot its members under the exclusive lock (marking the dead ones
//      as `removing`),
//   2. compute the new assignment (assignment.cpp, pure C++),
//   3. in one transaction: store the cluster row with the next epoch (and
//      num_shards_epoch when num_shards changed), store the members that
//      moved (state, shard, slots), delete the removed ones, queue one
//      NOTIFY per member that moved or was removed and, if num_shards
//      changed, one on the cluster channel for everybody else; commit,
//   4. publish the committed result to shared memory.
// Shared memory is never ahead of the tables: a worker that dies between 3
// and 4 reloads the tables when it starts again.
//
// C++ at the boundary: the functions here are written in C style (no C++
// objects with destructors), and the pure C++ parts are reached only through
// noexcept wrappers that copy their results into palloc'd arrays.

#include "pg_prelude.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void sc_worker_main(Datum main_arg);
}

#include <algorithm>
#include <new>
#include <unordered_map>

#include "clock.hpp"
#include "fence.hpp"
#include "module.hpp"
#include "names.hpp"
#include "notify_payload.hpp"
#include "shmem.hpp"
#include "slots.hpp"
#include "stall.hpp"

using namespace shard_coordinator;

namespace {

// After a failed transaction, try that cluster again this much later.
constexpr long kRetryMs = 1000;
// The worker's writes wait at most this long for a row lock (a session that
// holds a row of our tables FOR UPDATE): then the reshard fails, is logged
// and retried, and other clusters go on meanwhile.
constexpr const char *kLockTimeout = "1s";
// While the stall meter has not ticked since a possible stall, decide
// nothing that a stall would change; look again this soon.
constexpr long kStallCheckMs = 10;
// While a fence() holds a cluster, look at it again this often.
constexpr long kFenceRetryMs = 10;
// The SQLSTATE of "the stored epoch is ahead of shared memory" (internal:
// only logged): the one failure that needs a reload of the tables.
constexpr int kStaleSharedMemory = MAKE_SQLSTATE('S', 'C', '9', '0', '1');
// While the extension is not installed, look again this often.
constexpr long kNotInstalledPollMs = 1000;
// Longest sleep when nothing is due (deadlines are recomputed on waking).
constexpr long kMaxSleepMs = 60000;

// A member as copied out of shared memory for one reshard.
struct SnapMember {
  char *name;
  uint64 join_seq;
  TimestampTz joined_at;
  MemberState state;
  int32 shard;
  int64 epoch;
  bool alive;
};

// A cluster as copied out of shared memory for one reshard.
struct SnapCluster {
  char name[kClusterNameMax + 1];
  uint64 reset_count;
  int64 heartbeat_interval_us;
  int64 grace_period_us;
  int64 reshard_interval_us;
  int32 max_shards;
  int32 num_shards;
  int64 epoch;
  TimestampTz resharded_at;
  uint64 config_generation;
  bool settings_unstored;
  // The reshard gate is closed (or nothing but settings changed): store the
  // settings, leave members, epoch and slots alone.
  bool settings_only;
  int nmembers;
  SnapMember *members;
  // Slot sets (slot_set < 0: plain index-and-count mode, before and after).
  int32 slot_set = -1;
  int32 old_nkeys = 0;  // 0 if the cluster was not in slot mode
  int32 *old_keys = nullptr;
  uint64 *old_owners = nullptr;
  bool slots_pending = false;  // configure() asked for new_keys
  uint64 pending_serial = 0;
  int32 new_nkeys = 0;  // the key set after this reshard; 0: plain mode
  int32 *new_keys = nullptr;
};

// The plan in plain arrays.
struct PlanArrays {
  int32 num_shards;
  size_t changed;
  size_t removed_assigned;
  // Slot mode after this reshard: new_owners[k] owns snap->new_keys[k];
  // member i's keys are slot_flat[slot_offsets[i] .. slot_offsets[i + 1]).
  uint64 *new_owners;
  int32 *slot_offsets;
  int32 *slot_flat;
  MemberOutcome *outcomes;  // palloc'd, one per snapshot member
};

// noexcept bridge to the pure C++ algorithm. `outcomes` is allocated by the
// caller; nothing here calls PostgreSQL.
bool compute_plan(const SnapCluster *snap, PlanArrays *plan, char *error,
                  size_t error_len) noexcept {
  try {
    std::vector<MemberView> views(static_cast<size_t>(snap->nmembers));
    for (int i = 0; i < snap->nmembers; ++i) {
      const SnapMember &m = snap->members[i];
      views[static_cast<size_t>(i)] =
          MemberView{m.join_seq, m.state, m.shard, m.alive};
    }
    // In slot mode there are at most as many active members as keys.
    const bool slot_mode = snap->new_nkeys > 0;
    int32 cap = snap->max_shards;
    if (slot_mode && (cap <= 0 || cap > snap->new_nkeys)) cap = snap->new_nkeys;
    ReshardPlan result = plan_reshard(views, snap->num_shards, cap);
    if (!plan_is_valid(result)) {
      strlcpy(error, "computed assignment violates the invariant", error_len);
      return false;
    }

    if (slot_mode || snap->old_nkeys > 0) {
      // Old and new key lists per member (by join_seq).
      std::unordered_map<uint64, std::vector<int32>> old_lists;
      for (int32 k = 0; k < snap->old_nkeys; ++k)
        old_lists[snap->old_owners[k]].push_back(snap->old_keys[k]);
      std::vector<int32> new_keys(snap->new_keys,
                                  snap->new_keys + snap->new_nkeys);
      std::vector<uint64> previous(new_keys.size(), kNoOwner);
      const int32 *old_end = snap->old_keys + snap->old_nkeys;
      for (size_t k = 0; k < new_keys.size(); ++k) {
        const int32 *at = std::lower_bound(
            static_cast<const int32 *>(snap->old_keys), old_end, new_keys[k]);
        if (at != old_end && *at == new_keys[k])
          previous[k] = snap->old_owners[at - snap->old_keys];
      }
      std::vector<uint64> active(static_cast<size_t>(result.num_shards));
      for (size_t i = 0; i < result.outcomes.size(); ++i) {
        const MemberOutcome &out = result.outcomes[i];
        if (!out.removed && out.state == MemberState::Active)
          active[static_cast<size_t>(out.shard)] = views[i].join_seq;
      }
      std::vector<uint64> owners = assign_slots(new_keys, previous, active);
      std::unordered_map<uint64, std::vector<int32>> new_lists;
      for (size_t k = 0; k < owners.size(); ++k) {
        plan->new_owners[k] = owners[k];
        new_lists[owners[k]].push_back(new_keys[k]);
      }
      static const std::vector<int32> none;
      int32 offset = 0;
      result.changed = 0;
      for (size_t i = 0; i < result.outcomes.size(); ++i) {
        MemberOutcome &out = result.outcomes[i];
        plan->slot_offsets[i] = offset;
        if (out.removed) continue;
        const uint64 id = views[i].join_seq;
        auto now_it = new_lists.find(id);
        auto was_it = old_lists.find(id);
        const std::vector<int32> &now_keys =
            now_it == new_lists.end() ? none : now_it->second;
        const std::vector<int32> &was_keys =
            was_it == old_lists.end() ? none : was_it->second;
        // Entering or leaving slot mode changes every active member.
        const bool mode_flip = (snap->old_nkeys > 0) != slot_mode &&
                               out.state == MemberState::Active;
        if (now_keys != was_keys || mode_flip) out.changed = true;
        if (out.changed) ++result.changed;
        for (int32 key : now_keys) plan->slot_flat[offset++] = key;
      }
      plan->slot_offsets[result.outcomes.size()] = offset;
    }

    plan->num_shards = result.num_shards;
    plan->changed = result.changed;
    plan->removed_assigned = result.removed_assigned;
    for (size_t i = 0; i < result.outcomes.size(); ++i)
      plan->outcomes[i] = result.outcomes[i];
    return true;
  } catch (const std::exception &e) {
    strlcpy(error, e.what(), error_len);
  } catch (...) {
    strlcpy(error, "unknown C++ exception", error_len);
  }
  return false;
}

// noexcept bridge to the JSON payload builder; writes into buf (size
// kNotifyPayloadMax + 1). Returns false if it failed or did not fit.
bool compute_payload(const char *cluster, const char *member, int32 shard,
                     int32 num_shards, int64 epoch, const char *state,
                     const int32 *slots, int32 nslots, char *buf) noexcept {
  try {
    AssignmentNotice notice;
    notice.cluster = cluster;
    notice.member = member;
    notice.shard = shard;
    notice.num_shards = num_shards;
    notice.epoch = epoch;
    notice.state = state;
    if (slots != nullptr) {
      notice.has_slots = true;
      notice.slots.assign(slots, slots + nslots);
    }
    std::string json = notice_payload(notice);
    if (json.size() > kNotifyPayloadMax) return false;
    memcpy(buf, json.data(), json.size());
    buf[json.size()] = '\0';
    return true;
  } catch (...) {
    return false;
  }
}

// noexcept bridge to the cluster notice builder; same contract.
bool compute_cluster_payload(const char *cluster, int32 num_shards, int64 epoch,
                             char *buf) noexcept {
  try {
    std::string json = cluster_notice_to_json(cluster, num_shards, epoch);
    if (json.size() > kNotifyPayloadMax) return false;
    memcpy(buf, json.data(), json.size());
    buf[json.size()] = '\0';
    return true;
  } catch (...) {
    return false;
  }
}

// Whether a member's own row and notice are needed: it was assigned or moved
// (state or shard), or the cluster has slots (whose lists may have moved).
// A member that changed only because num_shards did is covered by the
// cluster row (num_shards_epoch) and the cluster notice.
bool moved(const SnapCluster *snap, const SnapMember &m,
           const MemberOutcome &out) {
  if (!out.changed) return false;
  if (snap->old_nkeys > 0 || snap->new_nkeys > 0) return true;
  return out.state != m.state ||
         (out.state == MemberState::Active && out.shard != m.shard);
}

MemoryContext cycle_context = nullptr;
// Reset after each cluster's reshard.
MemoryContext reshard_context = nullptr;

// The stall meter (stall.hpp): a thread of this process.
StallMeter stall_meter;

// Takes the stalls the meter measured into shared memory. Returns false
// while the meter may not have measured a stall that has just happened:
// then no deadline may be judged at `now`.
bool stalls_measured(int64 now) {
  if (!stall_meter.caught_up(now)) return false;
  int64 stall_end = 0;
  const int64 stall = stall_meter.take(&stall_end);
  if (stall > 0) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->stalls.add(stall_end, stall);
    // Old stalls cannot extend anybody's deadline any more.
    shared->stalls.forget_before(now - 4 * kMaxIntervalUs);
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status)))
      cluster->expiry_check_at = 0;
    LWLockRelease(shared->lock);
    ereport(LOG, (errmsg("shard_coordinator: the server did not run for "
                         "%lld ms; deadlines are extended by that",
                         static_cast<long long>(stall / 1000))));
  }
  return true;
}

void detach_worker(int code, Datum arg) { shared->worker_latch = nullptr; }

int64 interval_datum_to_us(Datum d) {
  const Interval *value = DatumGetIntervalP(d);
  return value->time + static_cast<int64>(value->day) * USECS_PER_DAY +
         static_cast<int64>(value->month) * 30 * USECS_PER_DAY;
}

Datum us_to_interval_datum(int64 us) {
  auto *value = static_cast<Interval *>(palloc0(sizeof(Interval)));
  value->time = us;
  return IntervalPGetDatum(value);
}

void begin_transaction(const char *activity) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, activity);
}

// Commit and abort leave the process in TopMemoryContext (PostgreSQL 15):
// whatever the rest of the cycle allocated there would never be freed. Both
// go back to the context the transaction was started from.
void commit_transaction(MemoryContext back_to) {
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  MemoryContextSwitchTo(back_to);
  pgstat_report_stat(false);
  pgstat_report_activity(STATE_IDLE, nullptr);
}

// Logs the current error and cleans up the failed transaction. Returns the
// SQLSTATE of the error.
int recover_from_error(MemoryContext back_to, const char *what) {
  MemoryContextSwitchTo(back_to);
  ErrorData *edata = CopyErrorData();
  FlushErrorState();
  AbortCurrentTransaction();
  MemoryContextSwitchTo(back_to);
  ereport(LOG,
          (errmsg("shard_coordinator: %s failed: %s", what, edata->message)));
  const int sqlerrcode = edata->sqlerrcode;
  FreeErrorData(edata);
  pgstat_report_activity(STATE_IDLE, nullptr);
  return sqlerrcode;
}

// --- Loading the tables ----------------------------------------------------

// Stored members that shared memory has no room for: the load deletes their
// rows, so that the tables agree with what is coordinated.
struct DroppedMembers {
  int count;
  Datum *clusters;  // text
  Datum *members;   // text
};

// Merges the tables into shared memory (exclusive lock held): the stored
// assignments win, every stored member gets a full expiry period from now,
// and a member that shared memory shows assigned but the tables do not is
// made pending again. A new worker owns no reshard in flight: every
// `removing` mark of a dead predecessor is cleared, and every cluster gets a
// reshard (which changes nothing where nothing is due).
void merge_loaded_state(SPITupleTable *clusters, uint64 nclusters,
                        SPITupleTable *members, uint64 nmembers, int64 now,
                        DroppedMembers *dropped) {
  dropped->count = 0;
  dropped->clusters =
      static_cast<Datum *>(palloc(sizeof(Datum) * Max(nmembers, 1)));
  dropped->members =
      static_cast<Datum *>(palloc(sizeof(Datum) * Max(nmembers, 1)));
  TupleDesc cdesc = clusters->tupdesc;
  for (uint64 i = 0; i < nclusters; ++i) {
    HeapTuple tuple = clusters->vals[i];
    bool isnull = false;
    char *name = TextDatumGetCString(SPI_getbinval(tuple, cdesc, 1, &isnull));
    size_t len = strlen(name);
    if (check_name(name, len, kClusterNameMax) != NameProblem::None) {
      ereport(WARNING, (errmsg("shard_coordinator: ignoring stored cluster "
                               "with an invalid name \"%s\"",
                               name)));
      continue;
    }
    ClusterEntry *cluster = find_cluster(name, len);
    if (cluster == nullptr) cluster = create_cluster(name, len);
    if (cluster == nullptr) {
      ereport(
          WARNING,
          (errmsg("shard_coordinator: no room for stored cluster \"%s\"", name),
           errhint("Raise shard_coordinator.max_clusters.")));
      continue;
    }
    if (cluster->stored_generation >= cluster->config_generation ||
        cluster->stored_generation == 0) {
      // Nothing newer from configure() is waiting to be stored.
      cluster->heartbeat_interval_us =
          interval_datum_to_us(SPI_getbinval(tuple, cdesc, 2, &isnull));
      cluster->grace_period_us =
          interval_datum_to_us(SPI_getbinval(tuple, cdesc, 3, &isnull));
      cluster->reshard_interval_us =
          interval_datum_to_us(SPI_getbinval(tuple, cdesc, 4, &isnull));
      Datum max_shards = SPI_getbinval(tuple, cdesc, 5, &isnull);
      cluster->max_shards = isnull ? 0 : DatumGetInt32(max_shards);
      cluster->stored_generation = cluster->config_generation;
    }
    cluster->epoch = DatumGetInt64(SPI_getbinval(tuple, cdesc, 6, &isnull));
    cluster->num_shards =
        DatumGetInt32(SPI_getbinval(tuple, cdesc, 7, &isnull));
    Datum resharded = SPI_getbinval(tuple, cdesc, 8, &isnull);
    cluster->resharded_at = isnull ? 0 : DatumGetTimestampTz(resharded);
    // The gate counts from the last reshard; on the monotonic clock that is
    // as long ago as the wall clock says (never in the future).
    cluster->gate_from = 0;
    if (cluster->num_shards > 0 && cluster->resharded_at != 0)
      cluster->gate_from =
          now - Max(0, GetCurrentTimestamp() - cluster->resharded_at);

    Datum slots = SPI_getbinval(tuple, cdesc, 9, &isnull);
    if (!isnull) {
      Datum *elems = nullptr;
      bool *elem_nulls = nullptr;
      int nelems = 0;
      deconstruct_array(DatumGetArrayTypeP(slots), INT4OID, 4, true,
                        TYPALIGN_INT, &elems, &elem_nulls, &nelems);
      if (cluster->slot_set < 0)
        cluster->slot_set = allocate_slot_set(cluster->id);
      if (cluster->slot_set < 0 || nelems > guc_max_slots) {
        ereport(WARNING,
                (errmsg("shard_coordinator: no room for the slot set of "
                        "cluster \"%s\"",
                        name),
                 errhint("Raise shard_coordinator.max_slot_clusters or "
                         "shard_coordinator.max_slots.")));
        if (cluster->slot_set >= 0) free_slot_set(cluster->slot_set);
        cluster->slot_set = -1;
      } else {
        int32 *keys = slot_keys(cluster->slot_set);
        uint64 *owners = slot_owners(cluster->slot_set);
        for (int k = 0; k < nelems; ++k) {
          keys[k] = DatumGetInt32(elems[k]);
          owners[k] = kNoOwner;
        }
        slot_sets[cluster->slot_set].count = nelems;
      }
    } else if (cluster->slot_set >= 0 &&
               slot_sets[cluster->slot_set].pending_count < 0) {
      free_slot_set(cluster->slot_set);
      cluster->slot_set = -1;
    }
  }

  TupleDesc mdesc = members->tupdesc;
  for (uint64 i = 0; i < nmembers; ++i) {
    HeapTuple tuple = members->vals[i];
    bool isnull = false;
    char *cname = TextDatumGetCString(SPI_getbinval(tuple, mdesc, 1, &isnull));
    char *mname = TextDatumGetCString(SPI_getbinval(tuple, mdesc, 2, &isnull));
    size_t mlen = strlen(mname);
    ClusterEntry *cluster = find_cluster(cname, strlen(cname));
    if (cluster == nullptr ||
        check_name(mname, mlen, kMemberNameMax) != NameProblem::None)
      continue;
    MemberEntry *member = find_member(cluster, mname, mlen);
    if (member == nullptr)
      member = create_member(cluster, mname, mlen, now, GetCurrentTimestamp());
    if (member == nullptr) {
      ereport(WARNING,
              (errmsg("shard_coordinator: no room for stored member \"%s\" "
                      "of cluster \"%s\"; it is dropped",
                      mname, cname),
               errdetail("Shared memory holds %d members "
                         "(shard_coordinator.max_members).",
                         guc_max_members),
               errhint("Raise shard_coordinator.max_members.")));
      dropped->clusters[dropped->count] = CStringGetTextDatum(cname);
      dropped->members[dropped->count] = CStringGetTextDatum(mname);
      dropped->count++;
      cluster->reshard_wanted = true;
      continue;
    }
    char *state = TextDatumGetCString(SPI_getbinval(tuple, mdesc, 3, &isnull));
    Datum shard = SPI_getbinval(tuple, mdesc, 4, &isnull);
    bool active = strcmp(state, "active") == 0 && !isnull;
    member->state = active ? MemberState::Active : MemberState::Standby;
    member->shard = active ? DatumGetInt32(shard) : kNoShard;
    member->epoch = DatumGetInt64(SPI_getbinval(tuple, mdesc, 5, &isnull));
    member->join_seq = static_cast<uint64>(
        DatumGetInt64(SPI_getbinval(tuple, mdesc, 6, &isnull)));
    member->joined_at =
        DatumGetTimestampTz(SPI_getbinval(tuple, mdesc, 7, &isnull));
    if (member->join_seq >= shared->next_join_seq)
      shared->next_join_seq = member->join_seq + 1;
    if (member_stamp(member) < now)
      pg_atomic_write_u64(&member->last_seen, static_cast<uint64>(now));
    member->load_mark = true;

    Datum slots = SPI_getbinval(tuple, mdesc, 8, &isnull);
    if (!isnull && cluster->slot_set >= 0) {
      Datum *elems = nullptr;
      bool *elem_nulls = nullptr;
      int nelems = 0;
      deconstruct_array(DatumGetArrayTypeP(slots), INT4OID, 4, true,
                        TYPALIGN_INT, &elems, &elem_nulls, &nelems);
      const SlotSet &set = slot_sets[cluster->slot_set];
      int32 *keys = slot_keys(cluster->slot_set);
      uint64 *owners = slot_owners(cluster->slot_set);
      for (int e = 0; e < nelems; ++e) {
        int32 key = DatumGetInt32(elems[e]);
        int32 *at = std::lower_bound(keys, keys + set.count, key);
        if (at != keys + set.count && *at == key)
          owners[at - keys] = member->join_seq;
      }
    }
  }

  // Assigned in shared memory but not in the tables: pending again.
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cluster_table);
  while (auto *cluster =
             static_cast<ClusterEntry *>(hash_seq_search(&status))) {
    dlist_iter iter;
    dlist_foreach(iter, &cluster->members) {
      auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
      if (!member->load_mark && member->state != MemberState::Pending) {
        member->state = MemberState::Pending;
        member->shard = kNoShard;
      }
      member->load_mark = false;
      member->removing = false;
    }
    cluster->reshard_wanted = true;
    cluster->reshard_fenced = false;
    cluster->expiry_check_at = 0;
    cluster->retry_at = 0;
  }
}

// Deletes the rows of stored members the load had no room for (inside the
// load's transaction).
void delete_dropped_members(const DroppedMembers *dropped) {
  Oid types[2] = {TEXTARRAYOID, TEXTARRAYOID};
  Datum values[2] = {
      PointerGetDatum(construct_array(dropped->clusters, dropped->count,
                                      TEXTOID, -1, false, TYPALIGN_INT)),
      PointerGetDatum(construct_array(dropped->members, dropped->count, TEXTOID,
                                      -1, false, TYPALIGN_INT))};
  if (SPI_execute_with_args(
          "DELETE FROM shard_coordinator.member_state m "
          "USING unnest($1, $2) AS d(cluster, member) "
          "WHERE m.cluster = d.cluster AND m.member = d.member",
          2, types, values, nullptr, false, 0) != SPI_OK_DELETE)
    elog(ERROR, "could not delete the dropped members");
}

// Loads the tables into shared memory. Returns false if the extension is not
// installed (yet) or the load failed.
bool load_state() {
  volatile bool loaded = false;
  PG_TRY();
  {
    begin_transaction("shard_coordinator: loading state");
    if (OidIsValid(get_extension_oid("shard_coordinator", true))) {
      if (SPI_execute(
              "SELECT cluster, heartbeat_interval, grace_period, "
              "reshard_interval, max_shards, epoch, num_shards, "
              "resharded_at, slots FROM shard_coordinator.cluster_state "
              "ORDER BY cluster",
              true, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read shard_coordinator.cluster_state");
      SPITupleTable *clusters = SPI_tuptable;
      uint64 nclusters = SPI_processed;
      // A member's epoch: its own row's, or the cluster's last change of
      // num_shards if later (rows are written only for moved members).
      if (SPI_execute("SELECT m.cluster, m.member, m.state, m.shard, "
                      "GREATEST(m.epoch, c.num_shards_epoch), m.join_seq, "
                      "m.joined_at, m.slots "
                      "FROM shard_coordinator.member_state m "
                      "JOIN shard_coordinator.cluster_state c USING (cluster) "
                      "ORDER BY m.join_seq",
                      true, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read shard_coordinator.member_state");
      SPITupleTable *members = SPI_tuptable;
      uint64 nmembers = SPI_processed;

      DroppedMembers dropped;
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
      merge_loaded_state(clusters, nclusters, members, nmembers, mono_now_us(),
                         &dropped);
      shared->loaded = true;
      LWLockRelease(shared->lock);
      if (dropped.count > 0) delete_dropped_members(&dropped);
      loaded = true;
      ereport(LOG, (errmsg("shard_coordinator: loaded %llu clusters and "
                           "%llu members",
                           static_cast<unsigned long long>(nclusters),
                           static_cast<unsigned long long>(nmembers))));
    } else {
      // Not installed (or dropped): nothing of an old installation stays.
      LWLockAcquire(shared->lock, LW_EXCLUSIVE);
      if (shared->loaded || shared->cluster_count > 0) reset_all();
      LWLockRelease(shared->lock);
    }
    commit_transaction(cycle_context);
  }
  PG_CATCH();
  {
    recover_from_error(cycle_context, "loading state");
    loaded = false;
  }
  PG_END_TRY();
  if (loaded) ConditionVariableBroadcast(&shared->changed_cv);
  return loaded;
}

// --- Resharding one cluster --------------------------------------------------

// Copies the cluster out of shared memory and marks its dead members as
// removing. Returns false if the cluster is gone.
bool snapshot_cluster(const char *name, int64 now, bool settings_only,
                      SnapCluster *snap) {
  size_t len = strlen(name);
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name, len);
  if (cluster == nullptr) {
    LWLockRelease(shared->lock);
    return false;
  }
  strlcpy(snap->name, name, sizeof(snap->name));
  snap->reset_count = shared->reset_count;
  snap->heartbeat_interval_us = cluster->heartbeat_interval_us;
  snap->grace_period_us = cluster->grace_period_us;
  snap->reshard_interval_us = cluster->reshard_interval_us;
  snap->max_shards = cluster->max_shards;
  snap->num_shards = cluster->num_shards;
  snap->epoch = cluster->epoch;
  snap->resharded_at = cluster->resharded_at;
  snap->config_generation = cluster->config_generation;
  snap->settings_unstored =
      cluster->stored_generation < cluster->config_generation;
  snap->settings_only = settings_only || !(cluster->reshard_wanted &&
                                           reshard_gate_open(cluster, now));
  snap->nmembers = snap->settings_only ? 0 : cluster->member_count;
  snap->members = static_cast<SnapMember *>(palloc0(
      sizeof(SnapMember) * static_cast<size_t>(Max(snap->nmembers, 1))));
  int i = 0;
  dlist_iter iter;
  dlist_foreach(iter, &cluster->members) {
    if (snap->settings_only) break;
    auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
    SnapMember *m = &snap->members[i++];
    m->name = pstrdup(member->key.name);
    m->join_seq = member->join_seq;
    m->joined_at = member->joined_at;
    m->state = member->state;
    m->shard = member->shard;
    m->epoch = member->epoch;
    m->alive = !member->leaving && expiry_deadline(cluster, member) > now;
    if (!m->alive) member->removing = true;
  }
  snap->slot_set = cluster->slot_set;
  snap->old_nkeys = 0;
  snap->new_nkeys = 0;
  snap->slots_pending = false;
  snap->pending_serial = 0;
  if (cluster->slot_set >= 0) {
    const SlotSet &set = slot_sets[cluster->slot_set];
    size_t room = static_cast<size_t>(Max(set.count, 1));
    snap->old_nkeys = set.count;
    snap->old_keys = static_cast<int32 *>(palloc(sizeof(int32) * room));
    snap->old_owners = static_cast<uint64 *>(palloc(sizeof(uint64) * room));
    memcpy(snap->old_keys, slot_keys(cluster->slot_set),
           sizeof(int32) * static_cast<size_t>(set.count));
    memcpy(snap->old_owners, slot_owners(cluster->slot_set),
           sizeof(uint64) * static_cast<size_t>(set.count));
    snap->new_nkeys = set.count;
    snap->new_keys = snap->old_keys;
    if (set.pending_count >= 0 && !snap->settings_only) {
      snap->slots_pending = true;
      snap->pending_serial = set.pending_serial;
      snap->new_nkeys = set.pending_count;
      snap->new_keys = static_cast<int32 *>(palloc(
          sizeof(int32) * static_cast<size_t>(Max(set.pending_count, 1))));
      memcpy(snap->new_keys, slot_pending_keys(cluster->slot_set),
             sizeof(int32) * static_cast<size_t>(set.pending_count));
    }
  }
  if (!snap->settings_only) cluster->reshard_wanted = false;
  LWLockRelease(shared->lock);
  return true;
}

// The transaction that stores one reshard and queues its notifications.
void store_reshard(const SnapCluster *snap, const PlanArrays *plan,
                   int64 new_epoch, bool bump, TimestampTz wall_now) {
  begin_transaction("shard_coordinator: resharding");

  // The cluster row. The WHERE clause refuses to move a stored epoch back,
  // which can only happen if shared memory is stale: then we reload.
  Oid cluster_types[9] = {TEXTOID,     INTERVALOID,    INTERVALOID,
                          INTERVALOID, INT4OID,        INT8OID,
                          INT4OID,     TIMESTAMPTZOID, INT4ARRAYOID};
  Datum cluster_values[9];
  char cluster_nulls[10] = "         ";
  cluster_values[0] = CStringGetTextDatum(snap->name);
  cluster_values[1] = us_to_interval_datum(snap->heartbeat_interval_us);
  cluster_values[2] = us_to_interval_datum(snap->grace_period_us);
  cluster_values[3] = us_to_interval_datum(snap->reshard_interval_us);
  cluster_values[4] = Int32GetDatum(snap->max_shards);
  if (snap->max_shards == 0) cluster_nulls[4] = 'n';
  cluster_values[5] = Int64GetDatum(new_epoch);
  cluster_values[6] = Int32GetDatum(plan->num_shards);
  TimestampTz resharded_at = bump ? wall_now : snap->resharded_at;
  cluster_values[7] = TimestampTzGetDatum(resharded_at);
  if (resharded_at == 0) cluster_nulls[7] = 'n';
  if (snap->new_nkeys > 0) {
    Datum *keys = static_cast<Datum *>(
        palloc(sizeof(Datum) * static_cast<size_t>(snap->new_nkeys)));
    for (int32 k = 0; k < snap->new_nkeys; ++k)
      keys[k] = Int32GetDatum(snap->new_keys[k]);
    cluster_values[8] = PointerGetDatum(
        construct_array(keys, snap->new_nkeys, INT4OID, 4, true, TYPALIGN_INT));
  } else {
    cluster_values[8] = static_cast<Datum>(0);
    cluster_nulls[8] = 'n';
  }
  int rc = SPI_execute_with_args(
      "INSERT INTO shard_coordinator.cluster_state AS c (cluster, "
      "heartbeat_interval, grace_period, reshard_interval, max_shards, epoch, "
      "num_shards, num_shards_epoch, resharded_at, slots) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, "
      "CASE WHEN $7 > 0 THEN $6 ELSE 0 END, $8, $9) "
      "ON CONFLICT (cluster) DO UPDATE SET "
      "heartbeat_interval = EXCLUDED.heartbeat_interval, "
      "grace_period = EXCLUDED.grace_period, "
      "reshard_interval = EXCLUDED.reshard_interval, "
      "max_shards = EXCLUDED.max_shards, epoch = EXCLUDED.epoch, "
      "num_shards = EXCLUDED.num_shards, "
      "num_shards_epoch = CASE WHEN c.num_shards <> EXCLUDED.num_shards "
      "THEN EXCLUDED.epoch ELSE c.num_shards_epoch END, "
      "resharded_at = EXCLUDED.resharded_at, slots = EXCLUDED.slots "
      "WHERE c.epoch <= EXCLUDED.epoch",
      9, cluster_types, cluster_values, cluster_nulls, false, 0);
  if (rc != SPI_OK_INSERT || SPI_processed != 1)
    ereport(ERROR, (errcode(kStaleSharedMemory),
                    errmsg("stored epoch of cluster \"%s\" is ahead of "
                           "shared memory",
                           snap->name)));

  int n = snap->nmembers;
  Datum *removed_names =
      static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  int nremoved = 0;
  Datum *names = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  Datum *states = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  Datum *shards = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  bool *shard_nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(n, 1)));
  Datum *join_seqs = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  Datum *joined_ats = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  // A member's keys as an array literal ('{1,2,3}'), NULL outside slot mode.
  Datum *slot_lists = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  bool *slot_nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(n, 1)));
  int nchanged = 0;
  for (int i = 0; i < n; ++i) {
    const SnapMember &m = snap->members[i];
    const MemberOutcome &out = plan->outcomes[i];
    if (out.removed) {
      if (m.state != MemberState::Pending)
        removed_names[nremoved++] = CStringGetTextDatum(m.name);
    } else if (moved(snap, m, out)) {
      names[nchanged] = CStringGetTextDatum(m.name);
      states[nchanged] = CStringGetTextDatum(state_name(out.state));
      shards[nchanged] = Int32GetDatum(out.shard);
      shard_nulls[nchanged] = out.state != MemberState::Active;
      join_seqs[nchanged] = Int64GetDatum(static_cast<int64>(m.join_seq));
      joined_ats[nchanged] = TimestampTzGetDatum(m.joined_at);
      slot_nulls[nchanged] =
          snap->new_nkeys == 0 || out.state != MemberState::Active;
      slot_lists[nchanged] = static_cast<Datum>(0);
      if (!slot_nulls[nchanged]) {
        StringInfoData list;
        initStringInfo(&list);
        appendStringInfoChar(&list, '{');
        for (int32 k = plan->slot_offsets[i]; k < plan->slot_offsets[i + 1];
             ++k)
          appendStringInfo(&list, "%s%d", k > plan->slot_offsets[i] ? "," : "",
                           plan->slot_flat[k]);
        appendStringInfoChar(&list, '}');
        slot_lists[nchanged] = CStringGetTextDatum(list.data);
      }
      nchanged++;
    }
  }

  if (nremoved > 0) {
    Oid types[2] = {TEXTOID, TEXTARRAYOID};
    Datum values[2] = {
        CStringGetTextDatum(snap->name),
        PointerGetDatum(construct_array(removed_names, nremoved, TEXTOID, -1,
                                        false, TYPALIGN_INT))};
    rc = SPI_execute_with_args(
        "DELETE FROM shard_coordinator.member_state "
        "WHERE cluster = $1 AND member = ANY ($2)",
        2, types, values, nullptr, false, 0);
    if (rc != SPI_OK_DELETE) elog(ERROR, "could not delete members");
  }

  if (nchanged > 0) {
    int dims[1] = {nchanged};
    int lbs[1] = {1};
    Oid types[8] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID,        INT4ARRAYOID,
                    INT8OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
    Datum values[8];
    values[0] = CStringGetTextDatum(snap->name);
    values[1] = PointerGetDatum(
        construct_array(names, nchanged, TEXTOID, -1, false, TYPALIGN_INT));
    values[2] = PointerGetDatum(
        construct_array(states, nchanged, TEXTOID, -1, false, TYPALIGN_INT));
    values[3] = PointerGetDatum(construct_md_array(
        shards, shard_nulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
    values[4] = Int64GetDatum(new_epoch);
    values[5] = PointerGetDatum(construct_array(
        join_seqs, nchanged, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
    values[6] =
        PointerGetDatum(construct_array(joined_ats, nchanged, TIMESTAMPTZOID, 8,
                                        FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
    values[7] =
        PointerGetDatum(construct_md_array(slot_lists, slot_nulls, 1, dims, lbs,
                                           TEXTOID, -1, false, TYPALIGN_INT));
    rc = SPI_execute_with_args(
        "INSERT INTO shard_coordinator.member_state AS m (cluster, member, "
        "state, shard, epoch, join_seq, joined_at, slots) "
        "SELECT $1, u.member, u.state, u.shard, $5, u.join_seq, u.joined_at, "
        "u.slots::pg_catalog.int4[] "
        "FROM unnest($2, $3, $4, $6, $7, $8) "
        "AS u(member, state, shard, join_seq, joined_at, slots) "
        "ON CONFLICT (cluster, member) DO UPDATE SET state = EXCLUDED.state, "
        "shard = EXCLUDED.shard, epoch = EXCLUDED.epoch, slots = "
        "EXCLUDED.slots",
        8, types, values, nullptr, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "could not store members");
  }

  // One NOTIFY per member that was removed, assigned or moved, then one on
  // the cluster channel if num_shards changed (for everybody else), all sent
  // at commit in this order: a moved member hears of its own change first.
  char channel[kChannelNameMax + 1];
  char *payload = static_cast<char *>(palloc(kNotifyPayloadMax + 1));
  size_t cluster_len = strlen(snap->name);
  for (int i = 0; i < n; ++i) {
    const SnapMember &m = snap->members[i];
    const MemberOutcome &out = plan->outcomes[i];
    bool notify =
        out.removed ? m.state != MemberState::Pending : moved(snap, m, out);
    if (!notify) continue;
    channel_name(snap->name, cluster_len, m.name, strlen(m.name), channel);
    const bool with_slots =
        snap->new_nkeys > 0 && !out.removed && out.state == MemberState::Active;
    if (!compute_payload(
            snap->name, m.name,
            out.removed                        ? kNoShard
            : out.state == MemberState::Active ? out.shard
                                               : kNoShard,
            plan->num_shards, new_epoch,
            out.removed ? "removed" : state_name(out.state),
            with_slots ? plan->slot_flat + plan->slot_offsets[i] : nullptr,
            with_slots ? plan->slot_offsets[i + 1] - plan->slot_offsets[i] : 0,
            payload))
      elog(ERROR, "could not build the notification payload of \"%s\"", m.name);
    Async_Notify(channel, payload);
  }
  if (bump && plan->num_shards != snap->num_shards) {
    cluster_channel_name(snap->name, cluster_len, channel);
    if (!compute_cluster_payload(snap->name, plan->num_shards, new_epoch,
                                 payload))
      elog(ERROR, "could not build the cluster notification payload");
    Async_Notify(channel, payload);
  }

  commit_transaction(reshard_context);
}

// Applies a committed reshard to shared memory.
void publish_reshard(const SnapCluster *snap, const PlanArrays *plan,
                     int64 new_epoch, bool bump, int64 now,
                     TimestampTz wall_now) {
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = nullptr;
  if (shared->reset_count == snap->reset_count)
    cluster = find_cluster(snap->name, strlen(snap->name));
  if (cluster != nullptr) {
    for (int i = 0; i < snap->nmembers; ++i) {
      const SnapMember &m = snap->members[i];
      const MemberOutcome &out = plan->outcomes[i];
      MemberEntry *member = find_member(cluster, m.name, strlen(m.name));
      if (member == nullptr) continue;
      if (out.removed) {
        remove_member(cluster, member);
      } else if (out.changed) {
        member->state = out.state;
        member->shard = out.state == MemberState::Active ? out.shard : kNoShard;
        member->epoch = new_epoch;
      }
    }
    if (!snap->settings_only && cluster->slot_set >= 0 &&
        cluster->slot_set == snap->slot_set) {
      SlotSet &set = slot_sets[cluster->slot_set];
      memcpy(slot_keys(cluster->slot_set), snap->new_keys,
             sizeof(int32) * static_cast<size_t>(snap->new_nkeys));
      memcpy(slot_owners(cluster->slot_set), plan->new_owners,
             sizeof(uint64) * static_cast<size_t>(snap->new_nkeys));
      set.count = snap->new_nkeys;
      // A configure() that came during this reshard stays pending.
      if (snap->slots_pending && set.pending_serial == snap->pending_serial)
        set.pending_count = -1;
      if (set.count == 0 && set.pending_count < 0) {
        free_slot_set(cluster->slot_set);
        cluster->slot_set = -1;
      }
    }
    cluster->epoch = new_epoch;
    cluster->num_shards = plan->num_shards;
    cluster->expiry_check_at = 0;
    cluster->retry_at = 0;
    if (bump) {
      cluster->resharded_at = wall_now;
      // When the last member is gone the gate resets: the next join is
      // served at once.
      cluster->gate_from = plan->num_shards > 0 ? now : 0;
    }
    if (cluster->stored_generation < snap->config_generation)
      cluster->stored_generation = snap->config_generation;
  }
  LWLockRelease(shared->lock);
  ConditionVariableBroadcast(&shared->changed_cv);
}

// Takes back the `removing` marks of a reshard that failed; the cluster is
// tried again after `retry_at` (others go on meanwhile).
void unmark_removing(const SnapCluster *snap, int64 retry_at) {
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = nullptr;
  if (shared->reset_count == snap->reset_count)
    cluster = find_cluster(snap->name, strlen(snap->name));
  if (cluster != nullptr) {
    for (int i = 0; i < snap->nmembers; ++i) {
      MemberEntry *member = find_member(cluster, snap->members[i].name,
                                        strlen(snap->members[i].name));
      if (member != nullptr) member->removing = false;
    }
    cluster->reshard_wanted = true;
    cluster->expiry_check_at = 0;
    cluster->retry_at = retry_at;
  }
  LWLockRelease(shared->lock);
  ConditionVariableBroadcast(&shared->changed_cv);
}

// Done; Failed (retried later, others go on); Reload (shared memory is
// stale); Fenced (held up by fence(), retried soon); NotYet (a stall may
// just have happened, retried soon).
enum class ReshardResult { Done, Failed, Reload, Fenced, NotYet };

ReshardResult reshard_locked(const char *name, bool settings_only);

// Marks (or clears) a cluster whose membership reshard a fence() holds up.
// Marks it only if such a reshard is due now; returns whether it did.
bool set_reshard_fenced(const char *name, bool fenced) {
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name, strlen(name));
  if (cluster != nullptr && fenced)
    fenced =
        cluster->reshard_wanted && reshard_gate_open(cluster, mono_now_us());
  if (cluster != nullptr) cluster->reshard_fenced = fenced;
  LWLockRelease(shared->lock);
  if (!fenced) ConditionVariableBroadcast(&shared->changed_cv);
  return fenced;
}

// Reshards one cluster unless a fence() holds it: then it only stores
// settings (which move nobody), marks the cluster so that new fences wait,
// and returns Fenced so that the caller comes back soon.
ReshardResult reshard_cluster(const char *name) {
  size_t len = strlen(name);
  MemoryContext old = MemoryContextSwitchTo(reshard_context);
  ReshardResult result;
  if (!try_lock_cluster_for_reshard(name, len)) {
    result = reshard_locked(name, true);
    if (result == ReshardResult::Done && set_reshard_fenced(name, true))
      result = ReshardResult::Fenced;
  } else {
    result = reshard_locked(name, false);
    unlock_cluster_after_reshard(name, len);
    set_reshard_fenced(name, false);
  }
  MemoryContextSwitchTo(old);
  MemoryContextReset(reshard_context);
  return result;
}

ReshardResult reshard_locked(const char *name, bool settings_only) {
  const int64 now = mono_now_us();
  // Nobody's deadline is judged before every stall up to now is measured.
  if (!stalls_measured(now)) return ReshardResult::NotYet;
  SnapCluster snap;
  if (!snapshot_cluster(name, now, settings_only, &snap))
    return ReshardResult::Done;

  PlanArrays plan;
  plan.outcomes = static_cast<MemberOutcome *>(palloc0(
      sizeof(MemberOutcome) * static_cast<size_t>(Max(snap.nmembers, 1))));
  plan.new_owners = static_cast<uint64 *>(
      palloc0(sizeof(uint64) * static_cast<size_t>(Max(snap.new_nkeys, 1))));
  plan.slot_offsets = static_cast<int32 *>(
      palloc0(sizeof(int32) * static_cast<size_t>(snap.nmembers + 1)));
  plan.slot_flat = static_cast<int32 *>(
      palloc0(sizeof(int32) * static_cast<size_t>(Max(snap.new_nkeys, 1))));
  char error[256];
  if (snap.settings_only) {
    plan.num_shards = snap.num_shards;
    plan.changed = 0;
    plan.removed_assigned = 0;
  } else if (!compute_plan(&snap, &plan, error, sizeof(error))) {
    ereport(LOG, (errmsg("shard_coordinator: reshard of cluster \"%s\" "
                         "failed: %s",
                         name, error)));
    unmark_removing(&snap, now + kRetryMs * 1000);
    return ReshardResult::Failed;
  }

  bool bump = plan.changed > 0 || plan.removed_assigned > 0;
  int64 new_epoch = bump ? snap.epoch + 1 : snap.epoch;
  const TimestampTz wall_now = GetCurrentTimestamp();
  if (bump || snap.settings_unstored) {
    volatile int failure = 0;
    char *what = psprintf("reshard of cluster \"%s\"", name);
    PG_TRY();
    { store_reshard(&snap, &plan, new_epoch, bump, wall_now); }
    PG_CATCH();
    { failure = recover_from_error(reshard_context, what); }
    PG_END_TRY();
    if (failure != 0) {
      unmark_removing(&snap, now + kRetryMs * 1000);
      // Only a stale shared memory needs a reload; any other failure (a
      // lock timeout, a write or NOTIFY that failed) is this cluster's
      // alone and is retried later.
      return failure == kStaleSharedMemory ? ReshardResult::Reload
                                           : ReshardResult::Failed;
    }
  }
  publish_reshard(&snap, &plan, new_epoch, bump, now, wall_now);
  return ReshardResult::Done;
}

// --- The cycle
// -----------------------------------------------------------------

// Finds the clusters due for a reshard or a settings store, and the time of
// the next thing that will be due. Returns the names of the due clusters.
//
// Runs under the shared lock so that heartbeats go on meanwhile. It sets
// reshard_wanted and expiry_check_at, which heartbeats under the shared lock
// never touch; other writers of them hold the lock exclusively.
//
// A cluster's members are looked at only once its expiry_check_at has come:
// between deadlines a pass costs O(clusters), not O(members). (leave() and
// joins set reshard_wanted themselves.)
char **find_due_clusters(int64 now, int64 *next_wake, int *ndue) {
  LWLockAcquire(shared->lock, LW_SHARED);
  int capacity = Max(shared->cluster_count, 1);
  char **due = static_cast<char **>(palloc(sizeof(char *) * capacity));
  *ndue = 0;
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
        if (member->leaving || deadline <= now)
          cluster->reshard_wanted = true;
        else if (deadline < earliest)
          earliest = deadline;
      }
      cluster->expiry_check_at = earliest;
    }
    if (cluster->expiry_check_at < *next_wake)
      *next_wake = cluster->expiry_check_at;
    if (cluster->retry_at > now) {
      // A failed reshard: not before its retry time.
      if (cluster->retry_at < *next_wake) *next_wake = cluster->retry_at;
      continue;
    }
    bool is_due = cluster->stored_generation < cluster->config_generation;
    if (cluster->reshard_wanted) {
      if (reshard_gate_open(cluster, now)) {
        is_due = true;
      } else {
        const int64 gate = reshard_gate_opens_at(cluster, now);
        if (gate < *next_wake) *next_wake = gate;
      }
    }
    if (is_due && *ndue < capacity) due[(*ndue)++] = pstrdup(cluster->key.name);
  }
  LWLockRelease(shared->lock);
  return due;
}

// One pass; returns how long to sleep (ms).
long run_cycle(bool *need_reload) {
  const int64 now = mono_now_us();
  // No deadline is judged before every stall up to now is measured.
  if (!stalls_measured(now)) return kStallCheckMs;
  int64 next_wake = now + kMaxSleepMs * 1000;
  int ndue = 0;
  bool any_waiting = false;
  char **due = find_due_clusters(now, &next_wake, &ndue);
  for (int i = 0; i < ndue; ++i) {
    CHECK_FOR_INTERRUPTS();
    ReshardResult result = reshard_cluster(due[i]);
    if (result == ReshardResult::Reload) {
      *need_reload = true;
      return kRetryMs;
    }
    long retry_ms = 0;
    if (result == ReshardResult::Failed) retry_ms = kRetryMs;
    if (result == ReshardResult::Fenced) retry_ms = kFenceRetryMs;
    if (result == ReshardResult::NotYet) retry_ms = kStallCheckMs;
    if (retry_ms > 0) {
      any_waiting = true;
      next_wake = Min(next_wake, now + retry_ms * 1000);
    }
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

void sc_worker_main(Datum main_arg) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
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
