// fence(cluster, member, epoch): inside the caller's own transaction, fails
// (SC001) unless the member's assignment is still the one it received at
// `epoch`; then holds every reshard of the cluster until the transaction
// ends (shmem/fence_lock.hpp).

#include <algorithm>

#include "core/jump_hash.hpp"
#include "core/names.hpp"
#include "shmem/fence_lock.hpp"
#include "shmem/shmem.hpp"
#include "sql/sql.hpp"

namespace shard_coordinator::sql {

namespace {

// Keys that are not the member's grant: the whole grant (3 arguments). The
// member holds work and its grant has not changed since `epoch`.
const char *whole_grant_problem(const ClusterEntry *cluster,
                                const MemberEntry *member, int64 epoch,
                                int64 member_epoch) {
  const bool slot_mode =
      cluster->slot_set >= 0 && slot_sets[cluster->slot_set].count > 0;
  if (!slot_mode && !member->granted)
    return "holds no work yet (its shard is withheld until its holder "
           "released it)";
  if (member_epoch > epoch) return "was reassigned after that epoch";
  return nullptr;
}

// The given keys (4 arguments): each is granted to the member, and has
// been since `epoch` at least. Sets *bad_key to the first that is not.
const char *keys_problem(const ClusterEntry *cluster, const MemberEntry *member,
                         int64 epoch, const int32 *keys, int32 nkeys,
                         int32 *bad_key) {
  const bool slot_mode =
      cluster->slot_set >= 0 && slot_sets[cluster->slot_set].count > 0;
  for (int32 i = 0; i < nkeys; ++i) {
    *bad_key = keys[i];
    if (slot_mode) {
      const SlotSet &set = slot_sets[cluster->slot_set];
      const PolicyKey *entries = slot_entries(cluster->slot_set);
      const PolicyKey *at = std::lower_bound(
          entries, entries + set.count, keys[i],
          [](const PolicyKey &k, int32 key) { return k.key < key; });
      if (at == entries + set.count || at->key != keys[i])
        return "is not a slot key of the cluster";
      if (at->grantee != member->join_seq)
        return "is not granted to the member";
      if (at->grant_epoch > epoch) return "was granted after that epoch";
      continue;
    }
    // Plain mode: the keys of (shard, grant_count). A count that grew only
    // took keys away; one that shrank added keys at shrink_epoch.
    if (!member->granted) return "is not granted to the member";
    if (jump_consistent_hash(static_cast<uint64>(static_cast<int64>(keys[i])),
                             cluster->grant_count) != member->shard)
      return "is not granted to the member";
    const int64 since = Max(member->epoch, cluster->shrink_epoch);
    if (since > epoch) return "was granted after that epoch";
  }
  *bad_key = 0;
  return nullptr;
}

// Whether the worker has a reshard of this cluster held up by fences.
bool reshard_held_by_fences(NameArg cluster_name) {
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  bool fenced = cluster != nullptr && cluster->reshard_fenced;
  LWLockRelease(shared->lock);
  return fenced;
}

}  // namespace

}  // namespace shard_coordinator::sql

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

extern "C" {

PG_FUNCTION_INFO_V1(sc_fence);

// Succeeds only while the member's assignment is still the one it received
// at `epoch`; then holds every reshard of the cluster until this transaction
// ends (fence.hpp).
Datum sc_fence(PG_FUNCTION_ARGS) {
  NameArg cluster_name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member_name = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  if (PG_ARGISNULL(2))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("epoch must not be NULL"),
                    errhint("Pass the epoch of the assignment the work was "
                            "done under, from the heartbeat row.")));
  int64 epoch = PG_GETARG_INT64(2);
  // fence(cluster, member, epoch, keys): only these keys are checked.
  int32 nkeys = -1;
  int32 *keys = nullptr;
  if (PG_NARGS() > 3) {
    if (PG_ARGISNULL(3))
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                      errmsg("keys must not be NULL"),
                      errhint("Pass the keys the work was done on (slot keys, "
                              "or in plain mode keys of jump_hash), or use "
                              "fence(cluster, member, epoch).")));
    keys = get_keys_arg(fcinfo, 3, &nkeys);
  }
  require_ready_for_writes();
  require_cluster_access(cluster_name, Access::Join);

  // A reshard the worker could not run because of fences goes first: a new
  // fence fails at once, so a stream of overlapping fences cannot hold it
  // off for ever. It fails rather than waits: a wait outside the lock
  // manager would be invisible to the deadlock detector and lock_timeout
  // (two transactions that each fence the cluster the other holds up). A
  // transaction that already holds the fence lock goes on (it is one of
  // those the reshard waits for).
  if (!fence_lock_held_by_me(cluster_name.data, cluster_name.len) &&
      reshard_held_by_fences(cluster_name))
    ereport(ERROR,
            (errcode(kFenceSqlstate),
             errmsg("cannot fence member \"%.*s\" in cluster \"%.*s\": a "
                    "reshard of the cluster is pending",
                    static_cast<int>(member_name.len), member_name.data,
                    static_cast<int>(cluster_name.len), cluster_name.data),
             errdetail("A reshard is due and waits for transactions that "
                       "fenced the cluster; it goes before new fences."),
             errhint("Roll back, heartbeat for the current assignment and "
                     "retry.")));

  // Taken before the check: a reshard in flight (between its snapshot and
  // its publication) holds the lock exclusively, so once we have it shared
  // memory shows the latest committed assignment, and it cannot change
  // until we commit or abort.
  acquire_fence_lock(cluster_name.data, cluster_name.len);

  // Why the assignment is not current, if it is not.
  const char *reason = nullptr;
  int32 shard = kNoShard;
  int64 member_epoch = 0;
  int64 cluster_epoch = 0;
  int32 bad_key = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  MemberEntry *member =
      cluster ? find_member(cluster, member_name.data, member_name.len)
              : nullptr;
  if (member == nullptr) {
    reason = "is not registered";
  } else {
    shard = member->shard;
    member_epoch = ::shard_coordinator::member_epoch(cluster, member);
    cluster_epoch = cluster->epoch;
    if (member->state == MemberState::Pending)
      reason = "is pending (not assigned yet)";
    else if (member->state == MemberState::Standby)
      reason = "is standby (holds no shard)";
    else if (member->leaving || member->removing)
      reason = "is leaving";
    else if (promise_end(cluster, member) <= mono_now_us())
      reason = "has expired (its lease ran out)";
    else if (epoch > cluster_epoch)
      reason = "was given an epoch the cluster has not reached";
    else if (nkeys < 0)
      reason = whole_grant_problem(cluster, member, epoch, member_epoch);
    else
      reason = keys_problem(cluster, member, epoch, keys, nkeys, &bad_key);
  }
  LWLockRelease(shared->lock);

  if (reason != nullptr && bad_key != 0)
    ereport(ERROR,
            (errcode(kFenceSqlstate),
             errmsg("assignment of member \"%.*s\" in cluster \"%.*s\" at "
                    "epoch %lld is no longer current for key %d",
                    static_cast<int>(member_name.len), member_name.data,
                    static_cast<int>(cluster_name.len), cluster_name.data,
                    static_cast<long long>(epoch), bad_key),
             errdetail("Key %d %s; cluster epoch %lld.", bad_key, reason,
                       static_cast<long long>(cluster_epoch)),
             errhint("Roll back, stop working on that key and heartbeat for "
                     "the current assignment.")));
  if (reason != nullptr)
    ereport(
        ERROR,
        (errcode(kFenceSqlstate),
         errmsg("assignment of member \"%.*s\" in cluster \"%.*s\" at "
                "epoch %lld is no longer current",
                static_cast<int>(member_name.len), member_name.data,
                static_cast<int>(cluster_name.len), cluster_name.data,
                static_cast<long long>(epoch)),
         member == nullptr ? errdetail("The member %s.", reason)
         : shard == kNoShard
             ? errdetail("The member %s; cluster epoch %lld.", reason,
                         static_cast<long long>(cluster_epoch))
             : errdetail("The member %s; it holds shard %d since epoch "
                         "%lld, cluster epoch %lld.",
                         reason, shard, static_cast<long long>(member_epoch),
                         static_cast<long long>(cluster_epoch)),
         errhint("Roll back, stop working under this assignment and "
                 "heartbeat for the current one.")));
  PG_RETURN_VOID();
}

}  // extern "C"
