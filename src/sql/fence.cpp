// fence(cluster, member, epoch): inside the caller's own transaction, fails
// (SC001) unless the member's assignment is still the one it received at
// `epoch`; then holds every reshard of the cluster until the transaction
// ends (shmem/fence_lock.hpp).

#include "core/names.hpp"
#include "shmem/fence_lock.hpp"
#include "shmem/shmem.hpp"
#include "sql/sql.hpp"

namespace shard_coordinator::sql {

namespace {

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
  require_ready_for_writes();

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
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  MemberEntry *member =
      cluster ? find_member(cluster, member_name.data, member_name.len)
              : nullptr;
  if (member == nullptr) {
    reason = "is not registered";
  } else {
    shard = member->shard;
    member_epoch = member->epoch;
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
    else if (member_epoch > epoch)
      reason = "was reassigned after that epoch";
  }
  LWLockRelease(shared->lock);

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
