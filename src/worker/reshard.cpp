// One cluster's reshard:
//   1. snapshot: copy the cluster out of shared memory under the exclusive
//      lock, marking its dead members as `removing`;
//   2. decide: the reshard policy (core/reshard_policy.hpp, through its
//      noexcept bridge) gives the complete outcome;
//   3. store: one transaction writes it and queues its notifications
//      (store.cpp); commit;
//   4. publish: apply the committed outcome to shared memory.
// Shared memory is never ahead of the tables: a worker that dies between 3
// and 4 reloads the tables when it starts again (load.cpp). A reshard that
// fails takes its `removing` marks back and is retried a second later.
//
// Fences: the worker takes the cluster's fence lock (shmem/fence_lock.hpp)
// without waiting from before the snapshot until after the publication. If
// a fence() holds it, only the settings are stored and the cluster is
// marked as held up (ClusterEntry.reshard_fenced), so that new fences fail
// at once until the reshard has gone through.

#include "worker/worker.hpp"

extern "C" {
#include "storage/condition_variable.h"
}

#include "shmem/fence_lock.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::worker {

namespace {

// Copies the cluster out of shared memory and marks its dead members as
// removing. Returns false if the cluster is gone.
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
  snap->resharded_at = cluster->resharded_at;
  snap->config_generation = cluster->config_generation;
  snap->settings_unstored =
      cluster->stored_generation < cluster->config_generation;
  snap->settings_only = settings_only || !(cluster->reshard_wanted &&
                                           reshard_gate_open(cluster, now));

  BridgeInput &in = snap->input;
  in.epoch = cluster->epoch;
  in.num_shards = cluster->num_shards;
  in.max_shards = cluster->max_shards;
  in.nmembers = snap->settings_only ? 0 : cluster->member_count;
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
    m.epoch = member->epoch;
    m.alive = !member->leaving && expiry_deadline(cluster, member) > now;
    if (!m.alive) member->removing = true;
    snap->names[i].name = pstrdup(member->key.name);
    snap->names[i].joined_at = member->joined_at;
    ++i;
  }
  in.members = members;

  snap->slot_set = cluster->slot_set;
  snap->slots_pending = false;
  snap->pending_serial = 0;
  in.old_nkeys = 0;
  in.old_keys = nullptr;
  in.old_owners = nullptr;
  in.new_nkeys = 0;
  in.new_keys = nullptr;
  if (cluster->slot_set >= 0) {
    const SlotSet &set = slot_sets[cluster->slot_set];
    const size_t room = static_cast<size_t>(Max(set.count, 1));
    auto *keys = static_cast<int32 *>(palloc(sizeof(int32) * room));
    auto *owners = static_cast<uint64 *>(palloc(sizeof(uint64) * room));
    memcpy(keys, slot_keys(cluster->slot_set),
           sizeof(int32) * static_cast<size_t>(set.count));
    memcpy(owners, slot_owners(cluster->slot_set),
           sizeof(uint64) * static_cast<size_t>(set.count));
    in.old_nkeys = set.count;
    in.old_keys = keys;
    in.old_owners = owners;
    in.new_nkeys = set.count;
    in.new_keys = keys;
    if (set.pending_count >= 0 && !snap->settings_only) {
      snap->slots_pending = true;
      snap->pending_serial = set.pending_serial;
      auto *pending = static_cast<int32 *>(palloc(
          sizeof(int32) * static_cast<size_t>(Max(set.pending_count, 1))));
      memcpy(pending, slot_pending_keys(cluster->slot_set),
             sizeof(int32) * static_cast<size_t>(set.pending_count));
      in.new_nkeys = set.pending_count;
      in.new_keys = pending;
    }
  }
  if (!snap->settings_only) cluster->reshard_wanted = false;
  LWLockRelease(shared->lock);
  return true;
}

// Room for the policy's answer, in the reshard's memory context.
void allocate_output(const Snapshot *snap, BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  out->epoch_moves = false;
  out->epoch = in.epoch;
  out->num_shards = in.num_shards;
  out->cluster_notice = false;
  out->members = static_cast<BridgeMemberResult *>(palloc0(
      sizeof(BridgeMemberResult) * static_cast<size_t>(Max(in.nmembers, 1))));
  out->new_owners = static_cast<uint64 *>(
      palloc0(sizeof(uint64) * static_cast<size_t>(Max(in.new_nkeys, 1))));
  out->slots = static_cast<int32 *>(
      palloc0(sizeof(int32) * static_cast<size_t>(Max(in.new_nkeys, 1))));
}

// Applies a committed reshard to shared memory.
void publish(const Snapshot *snap, const BridgeOutput *out, int64 now,
             TimestampTz wall_now) {
  const BridgeInput &in = snap->input;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = nullptr;
  if (shared->reset_count == snap->reset_count)
    cluster = find_cluster(snap->name, strlen(snap->name));
  if (cluster != nullptr) {
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
      member->epoch = r.epoch;
    }
    if (!snap->settings_only && cluster->slot_set >= 0 &&
        cluster->slot_set == snap->slot_set) {
      SlotSet &set = slot_sets[cluster->slot_set];
      memcpy(slot_keys(cluster->slot_set), in.new_keys,
             sizeof(int32) * static_cast<size_t>(in.new_nkeys));
      memcpy(slot_owners(cluster->slot_set), out->new_owners,
             sizeof(uint64) * static_cast<size_t>(in.new_nkeys));
      set.count = in.new_nkeys;
      // A configure() that came during this reshard stays pending.
      if (snap->slots_pending && set.pending_serial == snap->pending_serial)
        set.pending_count = -1;
      if (set.count == 0 && set.pending_count < 0) {
        free_slot_set(cluster->slot_set);
        cluster->slot_set = -1;
      }
    }
    cluster->epoch = out->epoch;
    cluster->num_shards = out->num_shards;
    cluster->expiry_check_at = 0;
    cluster->retry_at = 0;
    if (out->epoch_moves) {
      cluster->resharded_at = wall_now;
      // When the last member is gone the gate resets: the next join is
      // served at once.
      cluster->gate_from = out->num_shards > 0 ? now : 0;
    }
    if (cluster->stored_generation < snap->config_generation)
      cluster->stored_generation = snap->config_generation;
  }
  LWLockRelease(shared->lock);
  ConditionVariableBroadcast(&shared->changed_cv);
}

// Takes back the `removing` marks of a reshard that failed; the cluster is
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
    cluster->reshard_wanted = true;
    cluster->expiry_check_at = 0;
    cluster->retry_at = retry_at;
  }
  LWLockRelease(shared->lock);
  ConditionVariableBroadcast(&shared->changed_cv);
}

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

// Snapshot, decision, store, publication (or the settings alone).
ReshardResult reshard_or_store_settings(const char *name, bool settings_only) {
  const int64 now = mono_now_us();
  // Nobody's deadline is judged before every stall up to now is measured.
  if (!stalls_measured(now)) return ReshardResult::NotYet;
  Snapshot snap;
  if (!take_snapshot(name, now, settings_only, &snap))
    return ReshardResult::Done;

  BridgeOutput out;
  allocate_output(&snap, &out);
  char error[256];
  if (!snap.settings_only &&
      !decide_reshard_into(snap.input, &out, error, sizeof(error))) {
    ereport(LOG, (errmsg("shard_coordinator: reshard of cluster \"%s\" "
                         "failed: %s",
                         name, error)));
    take_back(&snap, now + kRetryMs * 1000);
    return ReshardResult::Failed;
  }

  const TimestampTz wall_now = GetCurrentTimestamp();
  if (out.epoch_moves || snap.settings_unstored) {
    volatile int failure = 0;
    char *what = psprintf("reshard of cluster \"%s\"", name);
    PG_TRY();
    { store_reshard(&snap, &out, wall_now); }
    PG_CATCH();
    { failure = recover_from_error(reshard_context, what); }
    PG_END_TRY();
    if (failure != 0) {
      take_back(&snap, now + kRetryMs * 1000);
      // Only a stale shared memory needs a reload; any other failure (a
      // lock timeout, a write or NOTIFY that failed) is this cluster's
      // alone and is retried later.
      return failure == kStaleSharedMemory ? ReshardResult::Reload
                                           : ReshardResult::Failed;
    }
  }
  publish(&snap, &out, now, wall_now);
  return ReshardResult::Done;
}

}  // namespace

ReshardResult reshard_cluster(const char *name) {
  size_t len = strlen(name);
  MemoryContext old = MemoryContextSwitchTo(reshard_context);
  ReshardResult result;
  if (!try_lock_cluster_for_reshard(name, len)) {
    result = reshard_or_store_settings(name, true);
    if (result == ReshardResult::Done && set_reshard_fenced(name, true))
      result = ReshardResult::Fenced;
  } else {
    result = reshard_or_store_settings(name, false);
    unlock_cluster_after_reshard(name, len);
    set_reshard_fenced(name, false);
  }
  MemoryContextSwitchTo(old);
  MemoryContextReset(reshard_context);
  return result;
}

}  // namespace shard_coordinator::worker
