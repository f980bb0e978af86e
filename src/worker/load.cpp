// Loading the tables into shared memory: on every start of the worker (a
// predecessor may have died between a commit and its publication), after a
// crash or a promotion, and whenever shared memory turned out stale.
//
// The stored assignments win; every stored member gets a full lease from
// the load; a member shared memory shows assigned but the tables do not is
// pending again. A new worker owns no reshard in flight: every `removing`
// mark of a dead predecessor is cleared and every cluster gets a reshard
// (which changes nothing where nothing is due). What shared memory has no
// room for is named in the log: clusters stay stored, unserved; members are
// dropped (their rows deleted) and their clusters resharded.

#include "worker/worker.hpp"

extern "C" {
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

#include <algorithm>

#include "core/interval.hpp"
#include "core/slots.hpp"
#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::worker {

namespace {

// Stored members that shared memory has no room for.
struct DroppedMembers {
  int count;
  Datum *clusters;  // text
  Datum *members;   // text
};

// A stored interval setting in microseconds; an out-of-range one (written
// by hand) is clamped to the longest a setting may be.
int64 stored_interval_us(Datum d, const char *cluster, const char *what) {
  const Interval *value = DatumGetIntervalP(d);
  int64 us = 0;
  if (!interval_to_us(value->month, value->day, value->time, &us) || us < 0 ||
      us > kMaxIntervalUs) {
    ereport(WARNING,
            (errmsg("shard_coordinator: the stored %s of cluster \"%s\" is "
                    "out of range; using 1 day",
                    what, cluster)));
    return kMaxIntervalUs;
  }
  return us;
}

int32 *int4_array(Datum d, int *n) {
  Datum *elems = nullptr;
  bool *elem_nulls = nullptr;
  deconstruct_array(DatumGetArrayTypeP(d), INT4OID, 4, true, TYPALIGN_INT,
                    &elems, &elem_nulls, n);
  auto *keys =
      static_cast<int32 *>(palloc(sizeof(int32) * static_cast<size_t>(*n + 1)));
  for (int i = 0; i < *n; ++i) keys[i] = DatumGetInt32(elems[i]);
  return keys;
}

// The slot set of a loaded cluster (columns `slots` and `pending_slots`,
// NULL in plain mode and when nothing is pending). Targets, grantees and
// holders come with the members' rows and the pending releases.
void load_cluster_slots(ClusterEntry *cluster, const char *name, Datum slots,
                        bool slots_null, Datum pending, bool pending_null) {
  if (slots_null && pending_null) {
    // Plain mode, unless a configure() waits to give it a slot set.
    if (cluster->slot_set >= 0 &&
        slot_sets[cluster->slot_set].pending_count < 0) {
      free_slot_set(cluster->slot_set);
      cluster->slot_set = -1;
    }
    return;
  }
  int nkeys = 0;
  int32 *keys = slots_null ? nullptr : int4_array(slots, &nkeys);
  int npending = 0;
  int32 *next = pending_null ? nullptr : int4_array(pending, &npending);
  if (cluster->slot_set < 0) cluster->slot_set = allocate_slot_set(cluster->id);
  if (cluster->slot_set < 0 || nkeys > guc_max_slots ||
      npending > guc_max_slots) {
    ereport(WARNING, (errmsg("shard_coordinator: no room for the slot set of "
                             "cluster \"%s\"",
                             name),
                      errhint("Raise shard_coordinator.max_slot_clusters or "
                              "shard_coordinator.max_slots.")));
    if (cluster->slot_set >= 0) free_slot_set(cluster->slot_set);
    cluster->slot_set = -1;
    return;
  }
  SlotSet &set = slot_sets[cluster->slot_set];
  PolicyKey *entries = slot_entries(cluster->slot_set);
  for (int k = 0; k < nkeys; ++k) {
    entries[k] = PolicyKey();
    entries[k].key = keys[k];
  }
  set.count = nkeys;
  // A configure() that came after the stored one stays pending.
  if (set.pending_count < 0 && !pending_null) {
    memcpy(slot_pending_keys(cluster->slot_set), next,
           sizeof(int32) * static_cast<size_t>(npending));
    set.pending_count = npending;
    set.pending_serial++;
  }
}

// Epochs carry the timeline: a server promoted to timeline t publishes
// epochs from (t - 1) << 32 on, above anything the old primary (timeline
// t - 1) could have published. If the last store was not synchronously
// replicated, the old primary may have granted work this server never heard
// of: no new grants for one full lease (the longest ever promised).
void load_timeline(ClusterEntry *cluster, const char *name, int32 stored,
                   bool synchronous, int64 now) {
  const uint32 current = shared->timeline;
  if (stored < 1 || static_cast<uint32>(stored) >= current) return;
  const int64 floor = static_cast<int64>(current - 1) << 32;
  if (cluster->epoch < floor - 1) cluster->epoch = floor - 1;
  if (!synchronous) {
    cluster->grants_held_until = now + cluster->max_lease_us;
    ereport(LOG,
            (errmsg("shard_coordinator: cluster \"%s\" was last stored on "
                    "timeline %d without synchronous replication; no new "
                    "grants for %lld ms",
                    name, stored,
                    static_cast<long long>(cluster->max_lease_us / 1000))));
  }
}

// A stored role name: its role, or (the role is gone) the bootstrap
// superuser, so that only superusers pass: a dropped role opens nothing.
void load_role(Datum value, bool isnull, const char *cluster, const char *what,
               Oid *oid, NameData *name) {
  *oid = InvalidOid;
  memset(name, 0, sizeof(NameData));
  if (isnull) return;
  char *role = TextDatumGetCString(value);
  if (role[0] == '\0' || strlen(role) >= NAMEDATALEN) return;
  namestrcpy(name, role);
  *oid = get_role_oid(role, true);
  if (!OidIsValid(*oid)) {
    *oid = BOOTSTRAP_SUPERUSERID;
    ereport(WARNING,
            (errmsg("shard_coordinator: the %s \"%s\" of cluster \"%s\" "
                    "does not exist; only superusers pass until it is set "
                    "again",
                    what, role, cluster)));
  }
}

// One row of cluster_state: cluster, heartbeat_interval, grace_period,
// reshard_interval, max_shards, epoch, num_shards, resharded_at, slots,
// num_shards_epoch, pending_slots, handover, grant_count, max_lease,
// timeline, synchronous.
void load_cluster_row(HeapTuple tuple, TupleDesc desc, int64 now) {
  bool isnull = false;
  char *name = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
  size_t len = strlen(name);
  if (check_name(name, len, kClusterNameMax) != NameProblem::None) {
    ereport(WARNING, (errmsg("shard_coordinator: ignoring stored cluster "
                             "with an invalid name \"%s\"",
                             name)));
    return;
  }
  ClusterEntry *cluster = find_cluster(name, len);
  if (cluster == nullptr) cluster = create_cluster(name, len);
  if (cluster == nullptr) {
    ereport(WARNING,
            (errmsg("shard_coordinator: no room for stored cluster \"%s\"; "
                    "it stays stored but is not served",
                    name),
             errdetail("Shared memory holds %d clusters "
                       "(shard_coordinator.max_clusters).",
                       guc_max_clusters),
             errhint("Raise shard_coordinator.max_clusters.")));
    return;
  }
  if (cluster->stored_generation >= cluster->config_generation ||
      cluster->stored_generation == 0) {
    // Nothing newer from configure() is waiting to be stored.
    cluster->heartbeat_interval_us = stored_interval_us(
        SPI_getbinval(tuple, desc, 2, &isnull), name, "heartbeat_interval");
    cluster->grace_period_us = stored_interval_us(
        SPI_getbinval(tuple, desc, 3, &isnull), name, "grace_period");
    cluster->reshard_interval_us = stored_interval_us(
        SPI_getbinval(tuple, desc, 4, &isnull), name, "reshard_interval");
    Datum max_shards = SPI_getbinval(tuple, desc, 5, &isnull);
    cluster->max_shards = isnull ? 0 : DatumGetInt32(max_shards);
    char *mode = TextDatumGetCString(SPI_getbinval(tuple, desc, 12, &isnull));
    if (!parse_handover_mode(mode, &cluster->handover))
      cluster->handover = HandoverMode::Exclusive;
    Datum frozen = SPI_getbinval(tuple, desc, 17, &isnull);
    cluster->frozen = !isnull && DatumGetBool(frozen);
    Datum member_role = SPI_getbinval(tuple, desc, 18, &isnull);
    load_role(member_role, isnull, name, "member_role", &cluster->member_role,
              &cluster->member_role_name);
    Datum admin_role = SPI_getbinval(tuple, desc, 19, &isnull);
    load_role(admin_role, isnull, name, "admin_role", &cluster->admin_role,
              &cluster->admin_role_name);
    cluster->acl_serial++;
    cluster->fence_timeout_us = stored_interval_us(
        SPI_getbinval(tuple, desc, 20, &isnull), name, "fence_timeout");
    cluster->dropping = DatumGetBool(SPI_getbinval(tuple, desc, 21, &isnull));
    cluster->configured = DatumGetBool(SPI_getbinval(tuple, desc, 22, &isnull));
    cluster->stored_generation = cluster->config_generation;
  }
  cluster->epoch = DatumGetInt64(SPI_getbinval(tuple, desc, 6, &isnull));
  cluster->num_shards = DatumGetInt32(SPI_getbinval(tuple, desc, 7, &isnull));
  cluster->count_epoch = DatumGetInt64(SPI_getbinval(tuple, desc, 10, &isnull));
  // Not stored: counted from the last change of the count (fences with
  // keys of older epochs fail for a while, never pass wrongly).
  cluster->shrink_epoch = cluster->count_epoch;
  cluster->grant_count = DatumGetInt32(SPI_getbinval(tuple, desc, 13, &isnull));
  // Every promise made before this start ends within the longest lease
  // ever promised: members and holds get that long from now.
  const int64 lease = cluster->heartbeat_interval_us + cluster->grace_period_us;
  cluster->max_lease_us =
      Max(lease, stored_interval_us(SPI_getbinval(tuple, desc, 14, &isnull),
                                    name, "max_lease"));
  cluster->leases.clear();
  cluster->leases.change(cluster->max_lease_us, lease, now + 1);
  // Until the first step says otherwise; that step is due at once (the
  // gate stays closed while a handover is pending).
  cluster->handover_pending = true;
  pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
  set_cluster_holds(cluster, nullptr, 0);  // the stored ones come next
  load_timeline(cluster, name,
                DatumGetInt32(SPI_getbinval(tuple, desc, 15, &isnull)),
                DatumGetBool(SPI_getbinval(tuple, desc, 16, &isnull)), now);
  Datum resharded = SPI_getbinval(tuple, desc, 8, &isnull);
  cluster->resharded_at = isnull ? 0 : DatumGetTimestampTz(resharded);
  // The gate counts from the last reshard; on the monotonic clock that is
  // as long ago as the wall clock says (never in the future).
  cluster->gate_from = 0;
  if (cluster->num_shards > 0 && cluster->resharded_at != 0)
    cluster->gate_from =
        now - Max(0, GetCurrentTimestamp() - cluster->resharded_at);
  bool slots_null = false;
  bool pending_null = false;
  Datum slots = SPI_getbinval(tuple, desc, 9, &slots_null);
  Datum pending = SPI_getbinval(tuple, desc, 11, &pending_null);
  load_cluster_slots(cluster, name, slots, slots_null, pending, pending_null);
}

// One row of member_state: cluster, member, state, shard, epoch, join_seq,
// joined_at, slots, granted, target_slots, incarnation.
void load_member_row(HeapTuple tuple, TupleDesc desc, int64 now,
                     DroppedMembers *dropped) {
  bool isnull = false;
  char *cname = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
  char *mname = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
  size_t mlen = strlen(mname);
  // Registration numbers are never given twice, not even those of members
  // not loaded (a hold of theirs may outlive them).
  const uint64 join_seq = static_cast<uint64>(
      DatumGetInt64(SPI_getbinval(tuple, desc, 6, &isnull)));
  if (join_seq >= shared->next_join_seq) shared->next_join_seq = join_seq + 1;
  ClusterEntry *cluster = find_cluster(cname, strlen(cname));
  if (cluster == nullptr ||
      check_name(mname, mlen, kMemberNameMax) != NameProblem::None)
    return;
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
    return;
  }
  char *state = TextDatumGetCString(SPI_getbinval(tuple, desc, 3, &isnull));
  Datum shard = SPI_getbinval(tuple, desc, 4, &isnull);
  bool active = strcmp(state, "active") == 0 && !isnull;
  member->state = active ? MemberState::Active : MemberState::Standby;
  member->shard = active ? DatumGetInt32(shard) : kNoShard;
  member->epoch = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
  member->granted =
      active && DatumGetBool(SPI_getbinval(tuple, desc, 9, &isnull));
  Datum incarnation = SPI_getbinval(tuple, desc, 11, &isnull);
  member->incarnation =
      isnull ? 0 : static_cast<uint64>(DatumGetInt64(incarnation));
  member->join_seq = join_seq;
  member->joined_at =
      DatumGetTimestampTz(SPI_getbinval(tuple, desc, 7, &isnull));
  // A full lease from the load.
  if (member_stamp(member) < now)
    pg_atomic_write_u64(&member->last_seen, static_cast<uint64>(now));
  member->load_mark = true;

  if (cluster->slot_set < 0) return;
  // Its granted keys and its target keys.
  const SlotSet &set = slot_sets[cluster->slot_set];
  PolicyKey *entries = slot_entries(cluster->slot_set);
  for (int column : {8, 10}) {
    Datum list = SPI_getbinval(tuple, desc, column, &isnull);
    if (isnull) continue;
    int nkeys = 0;
    int32 *keys = int4_array(list, &nkeys);
    for (int e = 0; e < nkeys; ++e) {
      PolicyKey *at = std::lower_bound(
          entries, entries + set.count, keys[e],
          [](const PolicyKey &k, int32 key) { return k.key < key; });
      if (at == entries + set.count || at->key != keys[e]) continue;
      if (column == 8) {
        at->grantee = member->join_seq;
        at->grant_epoch = member->epoch;
      } else {
        at->target = member->join_seq;
      }
    }
  }
}

// A hold of member `id` (by join_seq): its oldest hold's epoch and its
// earliest release deadline.
void note_hold(ClusterEntry *cluster, uint64 id, int64 epoch, int64 deadline) {
  dlist_iter iter;
  dlist_foreach(iter, &cluster->members) {
    auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
    if (member->join_seq != id) continue;
    if (member->hold_epoch == 0 || epoch < member->hold_epoch)
      member->hold_epoch = epoch;
    if (member->release_deadline == 0 || deadline < member->release_deadline)
      member->release_deadline = deadline;
  }
  if (cluster->release_check_at == 0 || deadline < cluster->release_check_at)
    cluster->release_check_at = deadline;
}

// The pending releases (ordered by cluster): plain holds into the hold pool,
// key holds onto the keys; every deadline one full lease from now. With
// `append`, the plain holds come in addition to those the clusters have.
void load_pending_releases(SPITupleTable *rows, uint64 nrows, int64 now,
                           bool append) {
  TupleDesc desc = rows->tupdesc;
  const size_t room = static_cast<size_t>(Max(nrows, 1)) +
                      (append ? static_cast<size_t>(hold_pool_size()) : 0);
  auto *holds = static_cast<PolicyHold *>(palloc(sizeof(PolicyHold) * room));
  int32 nholds = 0;
  ClusterEntry *current = nullptr;
  auto flush = [&]() {
    if (current != nullptr && nholds > 0 &&
        !set_cluster_holds(current, holds, nholds))
      ereport(WARNING,
              (errmsg("shard_coordinator: no room for the pending releases "
                      "of cluster \"%s\"",
                      current->key.name),
               errhint("Raise shard_coordinator.max_members.")));
    nholds = 0;
  };
  for (uint64 i = 0; i < nrows; ++i) {
    HeapTuple tuple = rows->vals[i];
    bool isnull = false;
    char *cname = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
    ClusterEntry *cluster = find_cluster(cname, strlen(cname));
    if (cluster != current) {
      flush();
      current = cluster;
      if (append && cluster != nullptr)
        nholds = copy_cluster_holds(cluster, holds);
    }
    const uint64 id = static_cast<uint64>(
        DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull)));
    if (id >= shared->next_join_seq) shared->next_join_seq = id + 1;
    if (cluster == nullptr) continue;
    const int64 epoch = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
    const int64 deadline = now + cluster->max_lease_us;
    bool plain_null = false;
    Datum shard = SPI_getbinval(tuple, desc, 4, &plain_null);
    if (!plain_null) {
      PolicyHold &hold = holds[nholds++];
      hold.member = id;
      hold.grant.shard = DatumGetInt32(shard);
      hold.grant.count = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
      hold.epoch = epoch;
      hold.deadline = deadline;
      continue;
    }
    Datum list = SPI_getbinval(tuple, desc, 6, &isnull);
    if (isnull || cluster->slot_set < 0) continue;
    int nkeys = 0;
    int32 *keys = int4_array(list, &nkeys);
    const SlotSet &set = slot_sets[cluster->slot_set];
    PolicyKey *entries = slot_entries(cluster->slot_set);
    for (int e = 0; e < nkeys; ++e) {
      PolicyKey *at = std::lower_bound(
          entries, entries + set.count, keys[e],
          [](const PolicyKey &k, int32 key) { return k.key < key; });
      if (at == entries + set.count || at->key != keys[e]) continue;
      at->holder = id;
      at->hold_epoch = epoch;
      at->hold_deadline = deadline;
    }
  }
  flush();
}

// After the rows: members shared memory shows assigned but the tables do
// not are pending again; no reshard of a predecessor is in flight any more;
// every cluster gets a reshard.
void settle_after_load() {
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
        member->granted = false;
      }
      member->load_mark = false;
      member->removing = false;
      member->hold_epoch = 0;
      member->release_deadline = 0;
    }
    // The members' oldest holds, for their acknowledgements.
    cluster->release_check_at = 0;
    const HoldEntry *holds = hold_entries();
    for (int32 h = cluster->holds_head; h >= 0; h = holds[h].next)
      note_hold(cluster, holds[h].hold.member, holds[h].hold.epoch,
                holds[h].hold.deadline);
    if (cluster->slot_set >= 0) {
      const PolicyKey *keys = slot_entries(cluster->slot_set);
      for (int32 k = 0; k < slot_sets[cluster->slot_set].count; ++k)
        if (keys[k].holder != 0)
          note_hold(cluster, keys[k].holder, keys[k].hold_epoch,
                    keys[k].hold_deadline);
    }
    // An acknowledgement kept aside for a predecessor's step counts as far
    // as what was committed (the loaded epochs), nothing more.
    cluster->epoch_in_flight = 0;
    apply_acks_ahead(cluster, true);
    cluster->reshard_wanted = true;
    cluster->reasons |= kReasonRestart;
    cluster->reshard_fenced = false;
    cluster->expiry_check_at = 0;
    cluster->retry_at = 0;
  }
}

// Deletes the rows of the dropped members (inside the load's transaction).
// What a dropped member was granted may still be worked on until its
// promise ends: it becomes a pending release (released one full lease from
// now, like every stored one), in the table and in shared memory.
void delete_dropped_members(const DroppedMembers *dropped, int64 now) {
  Oid types[2] = {TEXTARRAYOID, TEXTARRAYOID};
  Datum values[2] = {
      PointerGetDatum(construct_array(dropped->clusters, dropped->count,
                                      TEXTOID, -1, false, TYPALIGN_INT)),
      PointerGetDatum(construct_array(dropped->members, dropped->count, TEXTOID,
                                      -1, false, TYPALIGN_INT))};
  if (SPI_execute_with_args(
          "WITH gone AS ("
          "  DELETE FROM shard_coordinator.member_state m "
          "  USING unnest($1, $2) AS d(cluster, member) "
          "  WHERE m.cluster = d.cluster AND m.member = d.member "
          "  RETURNING m.cluster, m.member, m.join_seq, m.state, m.shard, "
          "            m.granted, m.slots) "
          "INSERT INTO shard_coordinator.pending_release AS r (cluster, "
          "  join_seq, member, revoked_epoch, shard, num_shards, slots) "
          "SELECT g.cluster, g.join_seq, g.member, c.epoch + 1, "
          "       CASE WHEN c.slots IS NULL THEN g.shard END, "
          "       CASE WHEN c.slots IS NULL THEN c.grant_count END, "
          "       CASE WHEN c.slots IS NOT NULL THEN g.slots END "
          "  FROM gone AS g JOIN shard_coordinator.cluster_state AS c "
          "       USING (cluster) "
          " WHERE CASE WHEN c.slots IS NULL "
          "            THEN g.state = 'active' AND g.granted "
          "                 AND c.grant_count > 0 "
          "            ELSE pg_catalog.cardinality(g.slots) > 0 END "
          "ORDER BY g.cluster "
          "ON CONFLICT DO NOTHING "
          "RETURNING r.cluster, r.join_seq, r.revoked_epoch, r.shard, "
          "          r.num_shards, r.slots",
          2, types, values, nullptr, false, 0) != SPI_OK_INSERT_RETURNING)
    elog(ERROR, "could not delete the dropped members");
  if (SPI_processed == 0) return;
  SPITupleTable *released = SPI_tuptable;
  const uint64 nreleased = SPI_processed;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  load_pending_releases(released, nreleased, now, true);
  // Their deadlines, for the worker's wake-ups.
  for (uint64 i = 0; i < nreleased; ++i) {
    bool isnull = false;
    char *cname = TextDatumGetCString(
        SPI_getbinval(released->vals[i], released->tupdesc, 1, &isnull));
    ClusterEntry *cluster = find_cluster(cname, strlen(cname));
    if (cluster == nullptr) continue;
    const int64 deadline = now + cluster->max_lease_us;
    if (cluster->release_check_at == 0 || deadline < cluster->release_check_at)
      cluster->release_check_at = deadline;
  }
  LWLockRelease(shared->lock);
}

// The members of a cluster drop_cluster() was called for go (as revoked)
// at the next step, as when it was called (lock held).
void revoke_members_of_dropped_clusters() {
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cluster_table);
  while (auto *cluster =
             static_cast<ClusterEntry *>(hash_seq_search(&status))) {
    if (!cluster->dropping) continue;
    dlist_iter iter;
    dlist_foreach(iter, &cluster->members) {
      auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
      member->leaving = true;
      member->departure_held = true;
    }
    cluster->reshard_wanted = true;
  }
}

// Reads the tables and merges them into shared memory.
void load_tables() {
  if (SPI_execute("SELECT cluster, heartbeat_interval, grace_period, "
                  "reshard_interval, max_shards, epoch, num_shards, "
                  "resharded_at, slots, num_shards_epoch, pending_slots, "
                  "handover, grant_count, max_lease, timeline, synchronous, "
                  "frozen, member_role, admin_role, fence_timeout, dropping, "
                  "configured "
                  "FROM shard_coordinator.cluster_state ORDER BY cluster",
                  true, 0) != SPI_OK_SELECT)
    elog(ERROR, "could not read shard_coordinator.cluster_state");
  SPITupleTable *clusters = SPI_tuptable;
  const uint64 nclusters = SPI_processed;
  if (SPI_execute("SELECT cluster, member, state, shard, epoch, join_seq, "
                  "joined_at, slots, granted, target_slots, incarnation "
                  "FROM shard_coordinator.member_state ORDER BY join_seq",
                  true, 0) != SPI_OK_SELECT)
    elog(ERROR, "could not read shard_coordinator.member_state");
  SPITupleTable *members = SPI_tuptable;
  const uint64 nmembers = SPI_processed;
  if (SPI_execute("SELECT cluster, join_seq, revoked_epoch, shard, "
                  "num_shards, slots FROM shard_coordinator.pending_release "
                  "ORDER BY cluster, revoked_epoch",
                  true, 0) != SPI_OK_SELECT)
    elog(ERROR, "could not read shard_coordinator.pending_release");
  SPITupleTable *releases = SPI_tuptable;
  const uint64 nreleases = SPI_processed;

  DroppedMembers dropped;
  dropped.count = 0;
  dropped.clusters =
      static_cast<Datum *>(palloc(sizeof(Datum) * Max(nmembers, 1)));
  dropped.members =
      static_cast<Datum *>(palloc(sizeof(Datum) * Max(nmembers, 1)));
  const int64 now = mono_now_us();
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  shared->timeline = GetWALInsertionTimeLine();
  for (uint64 i = 0; i < nclusters; ++i)
    load_cluster_row(clusters->vals[i], clusters->tupdesc, now);
  for (uint64 i = 0; i < nmembers; ++i)
    load_member_row(members->vals[i], members->tupdesc, now, &dropped);
  load_pending_releases(releases, nreleases, now, false);
  revoke_members_of_dropped_clusters();
  settle_after_load();
  shared->loaded = true;
  LWLockRelease(shared->lock);
  if (dropped.count > 0) delete_dropped_members(&dropped, now);
  ereport(LOG, (errmsg("shard_coordinator: loaded %llu clusters, %llu "
                       "members and %llu pending releases",
                       static_cast<unsigned long long>(nclusters),
                       static_cast<unsigned long long>(nmembers),
                       static_cast<unsigned long long>(nreleases))));
}

// The catalog version last refused (said once), "" when none.
char refused_version[NAMEDATALEN] = "";

// A catalog of another version than the library's: its tables are not
// those this library reads and writes, so they are left alone until ALTER
// EXTENSION ... UPDATE (or a matching library).
void refuse_catalog(const char *version) {
  if (strcmp(refused_version, version) == 0) return;
  strlcpy(refused_version, version, sizeof(refused_version));
  if (catalog_is_older(version))
    ereport(WARNING,
            (errmsg("shard_coordinator: the extension's catalog is at "
                    "version %s, older than the library (%s); nothing is "
                    "coordinated until it is updated",
                    version, kCatalogVersion),
             errdetail("The stored assignments are kept; coordinating calls "
                       "fail until then."),
             errhint("Run ALTER EXTENSION shard_coordinator UPDATE in "
                     "database \"%s\".",
                     guc_database)));
  else
    ereport(WARNING,
            (errmsg("shard_coordinator: the extension's catalog is at "
                    "version %s, newer than the library (%s); nothing is "
                    "coordinated",
                    version, kCatalogVersion),
             errhint("Install shard_coordinator %s and restart the server.",
                     version)));
}

}  // namespace

bool load_state() {
  volatile bool loaded = false;
  PG_TRY();
  {
    begin_transaction("shard_coordinator: loading state");
    char *version = installed_catalog_version();
    if (version != nullptr && strcmp(version, kCatalogVersion) == 0) {
      refused_version[0] = '\0';
      load_tables();
      loaded = true;
    } else {
      // Not installed (or dropped), or a catalog of another version: nothing
      // of an old installation stays in shared memory.
      if (version != nullptr) refuse_catalog(version);
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

}  // namespace shard_coordinator::worker
