// One step of one cluster:
//   1. snapshot: copy the cluster out of shared memory under the exclusive
//      lock (members, acknowledgements, keys, holds), marking the members it
//      is about to remove as `removing`;
//   2. decide: the reshard policy (core/reshard_policy.hpp, through its
//      noexcept bridge) gives the complete outcome: targets, grants,
//      revocations, releases, who is told;
//   3. store: one transaction writes it and queues its notifications
//      (store.cpp); commit;
//   4. publish: apply the committed outcome to shared memory, giving each
//      new hold its deadline: the promise of the member's last heartbeat.
// Shared memory is never ahead of the tables: a worker that dies between 3
// and 4 reloads the tables when it starts again (load.cpp). A step that
// fails takes its `removing` marks back and is retried a second later.
//
// A step reshards (recomputes targets) only when the membership changed and
// the gate is open; otherwise it only releases and grants (not gated).
//
// Fences: the worker takes the cluster's fence lock (shmem/fence_lock.hpp)
// without waiting from before the snapshot until after the publication. If
// a fence() holds it, only the settings are stored and the cluster is
// marked as held up (ClusterEntry.reshard_fenced), so that new fences fail
// at once until the step has gone through.

#include <signal.h>

#include "worker/worker.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "utils/resowner.h"
}

#include "module.hpp"
#include "shmem/fence_lock.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::worker {

namespace {

// The member's slot keys and targets, and its holds, into the policy's
// input (lock held).
void snapshot_keys(const ClusterEntry *cluster, Snapshot *snap) {
  BridgeInput &in = snap->input;
  in.nkeys = 0;
  in.keys = nullptr;
  in.keys_pending = false;
  in.nnext = 0;
  in.next_keys = nullptr;
  snap->slot_set = cluster->slot_set;
  snap->slots_pending = false;
  snap->pending_serial = 0;
  if (cluster->slot_set < 0) return;
  const SlotSet &set = slot_sets[cluster->slot_set];
  auto *keys = static_cast<PolicyKey *>(
      palloc(sizeof(PolicyKey) * static_cast<size_t>(Max(set.count, 1))));
  memcpy(keys, slot_entries(cluster->slot_set),
         sizeof(PolicyKey) * static_cast<size_t>(set.count));
  in.nkeys = set.count;
  in.keys = keys;
  if (set.pending_count >= 0) {
    snap->slots_pending = true;
    snap->pending_serial = set.pending_serial;
    auto *next = static_cast<int32 *>(
        palloc(sizeof(int32) * static_cast<size_t>(Max(set.pending_count, 1))));
    memcpy(next, slot_pending_keys(cluster->slot_set),
           sizeof(int32) * static_cast<size_t>(set.pending_count));
    in.keys_pending = true;
    in.nnext = set.pending_count;
    in.next_keys = next;
  }
}

// Copies the cluster out of shared memory and marks the members this step
// removes. Returns false if the cluster is gone.
bool take_snapshot(const char *name, int64 now, bool settings_only,
                   Snapshot *snap) {
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
  snap->max_lease_us = cluster->max_lease_us;
  snap->resharded_at = cluster->resharded_at;
  snap->config_generation = cluster->config_generation;
  snap->settings_unstored =
      cluster->stored_generation < cluster->config_generation;
  snap->settings_only = settings_only;
  snap->frozen = cluster->frozen;
  snap->dropping = cluster->dropping;
  snap->configured = cluster->configured;
  snap->member_role_name = cluster->member_role_name;
  snap->fence_timeout_us = cluster->fence_timeout_us;
  snap->admin_role_name = cluster->admin_role_name;
  const bool reshard = !settings_only && cluster->reshard_wanted &&
                       reshard_gate_open(cluster, now);

  BridgeInput &in = snap->input;
  in.mode = cluster->handover;
  in.epoch = cluster->epoch;
  in.num_shards = cluster->num_shards;
  in.grant_count = cluster->grant_count;
  in.max_shards = cluster->max_shards;
  in.reshard = reshard;
  in.grants_allowed = now >= cluster->grants_held_until;
  in.now = now;
  in.nmembers = settings_only ? 0 : cluster->member_count;
  auto *members = static_cast<PolicyMember *>(
      palloc0(sizeof(PolicyMember) * static_cast<size_t>(Max(in.nmembers, 1))));
  snap->names = static_cast<SnapMember *>(
      palloc0(sizeof(SnapMember) * static_cast<size_t>(Max(in.nmembers, 1))));
  int i = 0;
  dlist_iter iter;
  dlist_foreach(iter, &cluster->members) {
    if (i >= in.nmembers) break;
    auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
    PolicyMember &m = members[i];
    m.id = member->join_seq;
    m.state = member->state;
    m.shard = member->shard;
    m.granted = member->granted;
    m.epoch = member->epoch;
    m.acked = static_cast<int64>(pg_atomic_read_u64(&member->acked));
    const bool expired = expiry_deadline(cluster, member) <= now;
    m.alive = !member->leaving && !expired;
    // Its own leave() or the end of its promise: nothing it held is held.
    // evict() or a leave() from another incarnation: held until its
    // promise ends.
    m.released_on_departure = !member->departure_held;
    // Members leave only in a step that reshards.
    if (!m.alive && reshard) member->removing = true;
    snap->names[i].name = pstrdup(member->key.name);
    snap->names[i].joined_at = member->joined_at;
    snap->names[i].incarnation = member->incarnation;
    ++i;
  }
  in.members = members;

  in.nholds = settings_only ? 0 : count_cluster_holds(cluster);
  auto *holds = static_cast<PolicyHold *>(
      palloc(sizeof(PolicyHold) * static_cast<size_t>(Max(in.nholds, 1))));
  if (!settings_only) copy_cluster_holds(cluster, holds);
  in.holds = holds;
  snapshot_keys(cluster, snap);
  snap->reasons = 0;
  snap->store_us = 0;
  if (!settings_only) {
    snap->reasons = cluster->reasons;
    if (pg_atomic_read_u32(&cluster->grant_check_wanted) != 0 ||
        (cluster->release_check_at != 0 && cluster->release_check_at <= now))
      snap->reasons |= kReasonRelease;
    if (reshard) cluster->reshard_wanted = false;
    pg_atomic_write_u32(&cluster->grant_check_wanted, 0);
    cluster->epoch_in_flight = cluster->epoch + 1;
  }
  LWLockRelease(shared->lock);
  return true;
}

// Room for the policy's answer, in the reshard's memory context.
void allocate_output(const Snapshot *snap, BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  const BridgeRoom room = bridge_room(in);
  out->epoch_moves = false;
  out->epoch = in.epoch;
  out->num_shards = in.num_shards;
  out->grant_count = in.grant_count;
  out->cluster_notice = false;
  out->handover_pending = false;
  out->store = false;
  out->members = static_cast<BridgeMemberResult *>(palloc0(
      sizeof(BridgeMemberResult) * static_cast<size_t>(Max(in.nmembers, 1))));
  out->nkeys = in.nkeys;
  out->keys = static_cast<PolicyKey *>(
      palloc0(sizeof(PolicyKey) * static_cast<size_t>(room.keys)));
  if (in.nkeys > 0)
    memcpy(out->keys, in.keys,
           sizeof(PolicyKey) * static_cast<size_t>(in.nkeys));
  out->keys_pending = in.keys_pending;
  out->nnext = in.nnext;
  out->next_keys = static_cast<int32 *>(
      palloc0(sizeof(int32) * static_cast<size_t>(Max(in.nnext, 1))));
  if (in.nnext > 0)
    memcpy(out->next_keys, in.next_keys,
           sizeof(int32) * static_cast<size_t>(in.nnext));
  out->nholds = in.nholds;
  out->holds = static_cast<PolicyHold *>(
      palloc0(sizeof(PolicyHold) * static_cast<size_t>(room.holds)));
  if (in.nholds > 0)
    memcpy(out->holds, in.holds,
           sizeof(PolicyHold) * static_cast<size_t>(in.nholds));
  out->slots = static_cast<int32 *>(
      palloc0(sizeof(int32) * static_cast<size_t>(room.keys)));
  out->target_slots = static_cast<int32 *>(
      palloc0(sizeof(int32) * static_cast<size_t>(room.keys)));
}

// The snapshot's members by id (sorted), for the lookups of a publication.
struct IdIndex {
  uint64 id;
  int index;
};

int compare_ids(const void *a, const void *b) {
  const uint64 x = static_cast<const IdIndex *>(a)->id;
  const uint64 y = static_cast<const IdIndex *>(b)->id;
  return x < y ? -1 : (x > y ? 1 : 0);
}

IdIndex *index_by_id(const Snapshot *snap) {
  const int n = snap->input.nmembers;
  auto *ids = static_cast<IdIndex *>(
      palloc(sizeof(IdIndex) * static_cast<size_t>(Max(n, 1))));
  for (int i = 0; i < n; ++i) ids[i] = {snap->input.members[i].id, i};
  qsort(ids, static_cast<size_t>(n), sizeof(IdIndex), compare_ids);
  return ids;
}

// The promise end of the member with this id (lock held), or now if it is
// gone.
int64 promise_of(ClusterEntry *cluster, const Snapshot *snap,
                 const IdIndex *ids, uint64 id, int64 now) {
  const IdIndex key = {id, 0};
  const auto *found = static_cast<const IdIndex *>(
      bsearch(&key, ids, static_cast<size_t>(snap->input.nmembers),
              sizeof(IdIndex), compare_ids));
  if (found == nullptr) return now;
  const char *name = snap->names[found->index].name;
  MemberEntry *member = find_member(cluster, name, strlen(name));
  return member != nullptr ? promise_end(cluster, member) : now;
}

// New holds get their deadline: the promise of the member's last heartbeat
// stamped before this publication (lock held).
void set_new_deadlines(ClusterEntry *cluster, const Snapshot *snap,
                       BridgeOutput *out, int64 now) {
  const IdIndex *ids = index_by_id(snap);
  for (int32 h = 0; h < out->nholds; ++h) {
    PolicyHold &hold = out->holds[h];
    if (hold.deadline == kDeadlineAtPublication)
      hold.deadline = promise_of(cluster, snap, ids, hold.member, now);
  }
  for (int32 k = 0; k < out->nkeys; ++k) {
    PolicyKey &key = out->keys[k];
    if (key.holder != 0 && key.hold_deadline == kDeadlineAtPublication)
      key.hold_deadline = promise_of(cluster, snap, ids, key.holder, now);
  }
}

// The earliest release deadline of each snapshot member's holds (0:
// none), by snapshot index: one pass over the holds and keys.
int64 *release_deadlines(const Snapshot *snap, const BridgeOutput *out) {
  const int n = snap->input.nmembers;
  auto *earliest = static_cast<int64 *>(
      palloc0(sizeof(int64) * static_cast<size_t>(Max(n, 1))));
  const IdIndex *ids = index_by_id(snap);
  auto note = [&](uint64 id, int64 deadline) {
    const IdIndex key = {id, 0};
    const auto *found = static_cast<const IdIndex *>(bsearch(
        &key, ids, static_cast<size_t>(n), sizeof(IdIndex), compare_ids));
    if (found == nullptr) return;
    int64 &e = earliest[found->index];
    if (e == 0 || deadline < e) e = deadline;
  };
  for (int32 h = 0; h < out->nholds; ++h)
    note(out->holds[h].member, out->holds[h].deadline);
  for (int32 k = 0; k < out->nkeys; ++k)
    if (out->keys[k].holder != 0)
      note(out->keys[k].holder, out->keys[k].hold_deadline);
  return earliest;
}

void publish_keys(ClusterEntry *cluster, const Snapshot *snap,
                  const BridgeOutput *out) {
  if (cluster->slot_set < 0 || cluster->slot_set != snap->slot_set) return;
  SlotSet &set = slot_sets[cluster->slot_set];
  memcpy(slot_entries(cluster->slot_set), out->keys,
         sizeof(PolicyKey) * static_cast<size_t>(out->nkeys));
  set.count = out->nkeys;
  // The key set configure() asked for is in place (unless it asked for
  // another one meanwhile, which stays pending).
  if (snap->slots_pending && !out->keys_pending &&
      set.pending_serial == snap->pending_serial)
    set.pending_count = -1;
  if (set.count == 0 && set.pending_count < 0) {
    free_slot_set(cluster->slot_set);
    cluster->slot_set = -1;
  }
}

// The stats and history of a committed step (lock held).
void count_step(ClusterEntry *cluster, const Snapshot *snap,
                const BridgeOutput *out, int64 now, TimestampTz wall_now) {
  const BridgeInput &in = snap->input;
  ClusterStats &stats = cluster->stats;
  cluster->reasons &= ~snap->reasons;
  if (in.reshard) stats.reshards++;
  int32 told = 0;
  int32 removed = 0;
  for (int i = 0; i < in.nmembers; ++i) {
    const BridgeMemberResult &r = out->members[i];
    if (r.notice) told++;
    if (r.removed) {
      removed++;
      const char *name = snap->names[i].name;
      const MemberEntry *member = find_member(cluster, name, strlen(name));
      if (member != nullptr && !member->leaving) stats.expiries++;
    }
    if (!r.removed && r.hold_epoch == out->epoch && out->epoch_moves)
      stats.revocations++;
  }
  stats.notices += static_cast<uint64>(told) + (out->cluster_notice ? 1 : 0);
  if (snap->store_us > 0) {
    stats.last_step_us = snap->store_us;
    stats.longest_step_us = Max(stats.longest_step_us, snap->store_us);
  }
  if (!cluster->handover_pending && out->handover_pending)
    stats.handover_started = now;
  if (cluster->handover_pending && !out->handover_pending &&
      stats.handover_started != 0) {
    const int64 took = now - stats.handover_started;
    stats.handovers++;
    stats.handover_us_total += took;
    stats.handover_us_max = Max(stats.handover_us_max, took);
    stats.handover_started = 0;
  }
  if (!out->epoch_moves) return;
  stats.steps++;
  HistoryEntry &entry = cluster->history[cluster->history_next];
  entry.epoch = out->epoch;
  entry.at = wall_now;
  entry.reasons = snap->reasons;
  entry.told = told;
  entry.removed = removed;
  entry.duration_us = snap->store_us;
  cluster->history_next = (cluster->history_next + 1) % kHistoryEntries;
  if (cluster->history_count < kHistoryEntries) cluster->history_count++;
}

// Applies a committed step to shared memory.
void publish(const Snapshot *snap, BridgeOutput *out, int64 now,
             TimestampTz wall_now) {
  const BridgeInput &in = snap->input;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = nullptr;
  if (shared->reset_count == snap->reset_count)
    cluster = find_cluster(snap->name, strlen(snap->name));
  if (cluster != nullptr && !snap->settings_only) {
    count_step(cluster, snap, out, now, wall_now);  // before the removals
    set_new_deadlines(cluster, snap, out, now);
    const int64 *deadlines = release_deadlines(snap, out);
    for (int i = 0; i < in.nmembers; ++i) {
      const BridgeMemberResult &r = out->members[i];
      const char *name = snap->names[i].name;
      MemberEntry *member = find_member(cluster, name, strlen(name));
      if (member == nullptr) continue;
      if (r.removed) {
        remove_member(cluster, member);
        continue;
      }
      member->state = r.state;
      member->shard = r.shard;
      member->granted = r.granted;
      if (r.changed) member->epoch = out->epoch;
      member->hold_epoch = r.hold_epoch;
      member->release_deadline = deadlines[i];
    }
    if (!set_cluster_holds(cluster, out->holds, out->nholds))
      ereport(WARNING,
              (errmsg("shard_coordinator: no room for the holds of cluster "
                      "\"%s\" in shared memory",
                      snap->name),
               errhint("Raise shard_coordinator.max_members.")));
    publish_keys(cluster, snap, out);
    const bool plain = out->nkeys == 0;
    if (out->cluster_notice) cluster->count_epoch = out->epoch;
    if (plain && out->grant_count < in.grant_count && out->epoch_moves)
      cluster->shrink_epoch = out->epoch;
    cluster->epoch = out->epoch;
    cluster->epoch_in_flight = 0;
    if (apply_acks_ahead(cluster, true))
      pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
    cluster->num_shards = out->num_shards;
    cluster->grant_count = out->grant_count;
    cluster->expiry_check_at = 0;
    cluster->retry_at = 0;
    cluster->release_check_at = 0;
    for (int32 h = 0; h < out->nholds; ++h)
      if (cluster->release_check_at == 0 ||
          out->holds[h].deadline < cluster->release_check_at)
        cluster->release_check_at = out->holds[h].deadline;
    for (int32 k = 0; k < out->nkeys; ++k)
      if (out->keys[k].holder != 0 &&
          (cluster->release_check_at == 0 ||
           out->keys[k].hold_deadline < cluster->release_check_at))
        cluster->release_check_at = out->keys[k].hold_deadline;
    const bool handover_ended =
        cluster->handover_pending && !out->handover_pending;
    cluster->handover_pending = out->handover_pending;
    if (out->epoch_moves) cluster->resharded_at = wall_now;
    // The gate counts from the end of the last change, or of the handover
    // that followed it; when the last member is gone the gate resets: the
    // next join is served at once.
    if (out->epoch_moves || handover_ended)
      cluster->gate_from = out->num_shards > 0 ? now : 0;
  }
  if (cluster != nullptr &&
      cluster->stored_generation < snap->config_generation)
    cluster->stored_generation = snap->config_generation;
  LWLockRelease(shared->lock);
  ConditionVariableBroadcast(&shared->changed_cv);
}

// Takes back the `removing` marks of a step that failed; the cluster is
// tried again after `retry_at` (others go on meanwhile).
void take_back(const Snapshot *snap, int64 retry_at) {
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = nullptr;
  if (shared->reset_count == snap->reset_count)
    cluster = find_cluster(snap->name, strlen(snap->name));
  if (cluster != nullptr) {
    for (int i = 0; i < snap->input.nmembers; ++i) {
      const char *name = snap->names[i].name;
      MemberEntry *member = find_member(cluster, name, strlen(name));
      if (member != nullptr) member->removing = false;
    }
    if (snap->input.reshard) cluster->reshard_wanted = true;
    pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
    cluster->epoch_in_flight = 0;
    apply_acks_ahead(cluster, false);
    cluster->expiry_check_at = 0;
    cluster->retry_at = retry_at;
  }
  LWLockRelease(shared->lock);
  ConditionVariableBroadcast(&shared->changed_cv);
}

// Marks (or clears) a cluster whose step a fence() holds up. Marks it only
// if a step that moves work is due now; returns whether it did.
bool set_reshard_fenced(const char *name, bool fenced) {
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name, strlen(name));
  if (cluster != nullptr && fenced) fenced = step_due(cluster, mono_now_us());
  if (cluster != nullptr) {
    cluster->reshard_fenced = fenced;
    if (!fenced) {
      cluster->fenced_since = 0;
      cluster->fence_stage = 0;
    } else if (cluster->fenced_since == 0) {
      cluster->fenced_since = mono_now_us();
      cluster->stats.fence_waits++;
    }
  }
  LWLockRelease(shared->lock);
  if (!fenced) ConditionVariableBroadcast(&shared->changed_cv);
  return fenced;
}

}  // namespace

// configure(fence_timeout): a reshard held up by fence() transactions for
// fence_timeout cancels them (as pg_cancel_backend does), for twice that
// terminates them (pg_terminate_backend: an idle transaction ignores a
// cancel). Logged once per stage.
static void enforce_fence_timeout(const char *name, size_t len) {
  const int64 now = mono_now_us();
  int stage = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name, len);
  if (cluster != nullptr && cluster->fence_timeout_us > 0 &&
      cluster->fenced_since != 0) {
    const int64 held = now - cluster->fenced_since;
    if (held >= 2 * cluster->fence_timeout_us)
      stage = 2;
    else if (held >= cluster->fence_timeout_us)
      stage = 1;
    if (stage <= cluster->fence_stage) stage = 0;
    if (stage > 0) cluster->fence_stage = stage;
  }
  LWLockRelease(shared->lock);
  if (stage == 0) return;
  int pids[64];
  const int n = fence_lock_holders(name, len, pids, 64);
  for (int i = 0; i < n; ++i) {
    if (kill(pids[i], stage == 2 ? SIGTERM : SIGINT) != 0) continue;
    ereport(LOG,
            (errmsg("shard_coordinator: %s process %d: its fence() has held "
                    "up a reshard of cluster \"%s\" longer than its "
                    "fence_timeout",
                    stage == 2 ? "terminating" : "cancelling the query of",
                    pids[i], name)));
  }
}

static bool cluster_frozen(const char *name, size_t len) {
  LWLockAcquire(shared->lock, LW_SHARED);
  const ClusterEntry *cluster = find_cluster(name, len);
  const bool frozen = cluster != nullptr && cluster->frozen;
  LWLockRelease(shared->lock);
  return frozen;
}

bool step_due(ClusterEntry *cluster, int64 now) {
  if (cluster->frozen) return false;  // only its settings are stored
  if (cluster->reshard_wanted && reshard_gate_open(cluster, now)) return true;
  if (pg_atomic_read_u32(&cluster->grant_check_wanted) != 0) return true;
  if (cluster->release_check_at != 0 && cluster->release_check_at <= now)
    return true;
  return cluster->handover_pending && cluster->grants_held_until != 0 &&
         cluster->grants_held_until <= now;
}

namespace {

// One cluster's part of a batch.
struct BatchItem {
  const char *name;
  bool frozen;   // freeze(): its settings only
  bool locked;   // its fence lock is held (a full step)
  bool skipped;  // gone, or its decision failed: nothing to store
  bool store;    // something to store
  int failure;   // the SQLSTATE of its store's failure; 0: none
  Snapshot snap;
  BridgeOutput out;
};

// Whether the hold pool has room for the step's holds, counting what the
// batch's earlier steps will take (*reserved); reserves them. A step that
// found no room at publication would lose the record of work it revoked,
// so it is not stored at all: it waits, and others go on.
bool reserve_holds(const BatchItem *item, int32 *reserved) {
  LWLockAcquire(shared->lock, LW_SHARED);
  const ClusterEntry *cluster = find_cluster(item->name, strlen(item->name));
  const int32 own = cluster != nullptr ? count_cluster_holds(cluster) : 0;
  const int32 room = cluster != nullptr ? hold_room(cluster) - *reserved : 0;
  LWLockRelease(shared->lock);
  if (item->out.nholds > room) return false;
  if (item->out.nholds > own) *reserved += item->out.nholds - own;
  return true;
}

// Snapshot and decision (no transaction). Returns false if there is
// nothing more to do for it (its result is set).
bool prepare_item(BatchItem *item, int64 now, int32 *reserved,
                  ReshardResult *result) {
  const char *name = item->name;
  const size_t len = strlen(name);
  item->frozen = cluster_frozen(name, len);
  // A fence() holds it: store the settings only.
  item->locked = !item->frozen && try_lock_cluster_for_reshard(name, len);
  const bool settings_only = !item->locked;
  item->skipped = true;
  item->store = false;
  item->failure = 0;
  *result = ReshardResult::Done;
  if (!take_snapshot(name, now, settings_only, &item->snap)) return false;
  allocate_output(&item->snap, &item->out);
  char error[256];
  if (!settings_only && !decide_reshard_into(item->snap.input, &item->out,
                                             error, sizeof(error))) {
    ereport(LOG, (errmsg("shard_coordinator: reshard of cluster \"%s\" "
                         "failed: %s",
                         name, error)));
    take_back(&item->snap, now + kRetryMs * 1000);
    *result = ReshardResult::Failed;
    return false;
  }
  if (!settings_only && !reserve_holds(item, reserved)) {
    ereport(LOG, (errmsg("shard_coordinator: reshard of cluster \"%s\" "
                         "postponed: no room for its %d holds in shared memory",
                         name, item->out.nholds),
                  errhint("Raise shard_coordinator.max_members (the hold pool "
                          "has twice as many entries).")));
    take_back(&item->snap, now + kRetryMs * 1000);
    *result = ReshardResult::Failed;
    return false;
  }
  item->skipped = false;
  item->store = item->out.store || item->snap.settings_unstored;
  return true;
}

// Stores one item in a subtransaction of the current transaction; an
// error rolls back its writes and notifications alone.
void store_item(BatchItem *item, TimestampTz wall_now) {
  MemoryContext context = CurrentMemoryContext;
  ResourceOwner owner = CurrentResourceOwner;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(context);
  PG_TRY();
  {
    const int64 started = mono_now_us();
    store_reshard(&item->snap, &item->out, wall_now);
    item->snap.store_us = mono_now_us() - started;
    ReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(context);
    CurrentResourceOwner = owner;
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(context);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(context);
    CurrentResourceOwner = owner;
    ereport(LOG, (errmsg("shard_coordinator: reshard of cluster \"%s\" "
                         "failed: %s",
                         item->name, edata->message)));
    item->failure = edata->sqlerrcode;
    FreeErrorData(edata);
  }
  PG_END_TRY();
}

// The stores of the batch in one transaction. Returns the SQLSTATE of a
// failure of the transaction as a whole (its commit), 0 if none; the
// items' own failures are in item->failure.
int store_batch(BatchItem *items, int n, TimestampTz wall_now) {
  volatile int failure = 0;
  PG_TRY();
  {
    begin_transaction("shard_coordinator: resharding");
    for (int i = 0; i < n; ++i)
      if (!items[i].skipped && items[i].store) store_item(&items[i], wall_now);
    commit_transaction(reshard_context);
  }
  PG_CATCH();
  { failure = recover_from_error(reshard_context, "reshard transaction"); }
  PG_END_TRY();
  return failure;
}

// Publication, or taking back; then the fence lock.
ReshardResult finish_item(BatchItem *item, int batch_failure, int64 now,
                          TimestampTz wall_now) {
  ReshardResult result = ReshardResult::Done;
  const int failure =
      item->store && batch_failure != 0 ? batch_failure : item->failure;
  if (failure != 0) {
    take_back(&item->snap, now + kRetryMs * 1000);
    // Only a stale shared memory needs a reload; any other failure (a
    // lock timeout, a write or NOTIFY that failed) is this cluster's
    // alone and is retried later.
    result = failure == kStaleSharedMemory ? ReshardResult::Reload
                                           : ReshardResult::Failed;
  } else {
    publish(&item->snap, &item->out, now, wall_now);
  }
  return result;
}

}  // namespace

void reshard_clusters(char **names, int n, ReshardResult *results) {
  MemoryContext old = MemoryContextSwitchTo(reshard_context);
  const int64 now = mono_now_us();
  // Nobody's deadline is judged before every stall up to now is measured.
  if (!stalls_measured(now)) {
    for (int i = 0; i < n; ++i) results[i] = ReshardResult::NotYet;
    MemoryContextSwitchTo(old);
    return;
  }
  auto *items = static_cast<BatchItem *>(
      palloc0(sizeof(BatchItem) * static_cast<size_t>(Max(n, 1))));
  bool any_store = false;
  int32 reserved = 0;  // hold entries the batch's steps will take
  for (int i = 0; i < n; ++i) {
    items[i].name = names[i];
    CHECK_FOR_INTERRUPTS();
    if (prepare_item(&items[i], now, &reserved, &results[i]))
      any_store = any_store || items[i].store;
  }
  const TimestampTz wall_now = GetCurrentTimestamp();
  const int batch_failure = any_store ? store_batch(items, n, wall_now) : 0;
  for (int i = 0; i < n; ++i) {
    BatchItem &item = items[i];
    const size_t len = strlen(item.name);
    if (!item.skipped)
      results[i] = finish_item(&item, batch_failure, now, wall_now);
    if (item.locked) {
      unlock_cluster_after_reshard(item.name, len);
      set_reshard_fenced(item.name, false);
    } else if (!item.frozen && results[i] == ReshardResult::Done &&
               set_reshard_fenced(item.name, true)) {
      results[i] = ReshardResult::Fenced;
      enforce_fence_timeout(item.name, len);
    }
  }
  MemoryContextSwitchTo(old);
  MemoryContextReset(reshard_context);
}

}  // namespace shard_coordinator::worker
