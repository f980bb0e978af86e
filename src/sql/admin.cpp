// Operator controls: evict(), freeze(), unfreeze(), drop_cluster() (README,
// "Operations").
//
// None of them is granted to anybody by the install script: an
// administrator grants them to the roles that run the fleet.

#include "sql/sql.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/builtins.h"
}

#include "core/names.hpp"
#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

// The optional reason argument: any text up to 200 bytes, or NULL.
const char *reason_arg(FunctionCallInfo fcinfo, int argno) {
  if (PG_NARGS() <= argno || PG_ARGISNULL(argno)) return nullptr;
  char *reason = text_to_cstring(PG_GETARG_TEXT_PP(argno));
  if (strlen(reason) > 200)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("reason must be at most 200 bytes")));
  return reason;
}

void no_such_cluster(NameArg name) {
  ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                  errmsg("cluster \"%.*s\" does not exist",
                         static_cast<int>(name.len), name.data),
                  errhint("See shard_coordinator.clusters for the clusters "
                          "there are.")));
}

// Sets the cluster's frozen flag; returns the settings generation to wait
// for, or 0 if the cluster does not exist (or is being dropped: *dropping).
uint64 set_frozen(NameArg name, bool frozen, bool *dropping) {
  uint64 generation = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name.data, name.len);
  *dropping = cluster != nullptr && cluster->dropping;
  if (cluster != nullptr && !*dropping) {
    if (cluster->frozen && !frozen) {
      // Whatever waited while frozen (joins, expiries, releases) is due.
      cluster->reshard_wanted = true;
      cluster->reasons |= kReasonAdmin;
      cluster->expiry_check_at = 0;
      pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
    }
    cluster->frozen = frozen;
    generation = ++cluster->config_generation;
  }
  LWLockRelease(shared->lock);
  return generation;
}

// Marks the cluster dropping and every member as revoked; returns the
// settings generation to wait for, or 0 if the cluster does not exist.
uint64 start_drop(NameArg name, int32 *members) {
  uint64 generation = 0;
  *members = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(name.data, name.len);
  if (cluster != nullptr) {
    if (!cluster->dropping) {
      cluster->dropping = true;
      // Nothing waits for unfreeze() any more: the members go now.
      cluster->frozen = false;
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        if (member->removing) continue;
        // A revocation: what it holds stays held until its promise ends.
        member->leaving = true;
        member->departure_held = true;
      }
      cluster->reshard_wanted = true;
      cluster->reasons |= kReasonAdmin;
      cluster->expiry_check_at = 0;
      pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
    }
    *members = cluster->member_count;
    generation = ++cluster->config_generation;
  }
  LWLockRelease(shared->lock);
  return generation;
}

}  // namespace

void cluster_being_dropped(NameArg cluster, const char *action) {
  ereport(ERROR,
          (errcode(kDroppingSqlstate),
           errmsg("cannot %s cluster \"%.*s\": it is being dropped", action,
                  static_cast<int>(cluster.len), cluster.data),
           errhint("drop_cluster() was called. The cluster is removed once "
                   "the work of its members is released (at the latest when "
                   "their promises end); after that a heartbeat or "
                   "configure() makes it anew.")));
}

}  // namespace shard_coordinator::sql

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

extern "C" {

PG_FUNCTION_INFO_V1(sc_evict);
PG_FUNCTION_INFO_V1(sc_freeze);
PG_FUNCTION_INFO_V1(sc_unfreeze);
PG_FUNCTION_INFO_V1(sc_drop_cluster);

// evict(cluster, member, reason): removes the member at the next reshard
// and bans its incarnation. A revocation: its work is held until its
// promise ends (it may still be running). Returns false if it is unknown.
Datum sc_evict(PG_FUNCTION_ARGS) {
  NameArg cluster_name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member_name = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  const char *reason = reason_arg(fcinfo, 2);
  require_ready_for_writes();
  require_cluster_access(cluster_name, Access::Admin);

  bool known = false;
  uint64 incarnation = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  MemberEntry *member =
      cluster ? find_member(cluster, member_name.data, member_name.len)
              : nullptr;
  if (member != nullptr) {
    known = true;
    incarnation = member->incarnation;
    if (!member->removing) {
      member->leaving = true;
      member->departure_held = true;
      cluster->reshard_wanted = true;
      cluster->reasons |= kReasonAdmin;
    }
    cluster->stats.evictions++;
    if (incarnation != 0) {
      bool banned = false;
      for (uint64 b : cluster->banned) banned = banned || b == incarnation;
      if (!banned) {
        cluster->banned[cluster->banned_next] = incarnation;
        cluster->banned_next = (cluster->banned_next + 1) % kBannedIncarnations;
      }
    }
  }
  LWLockRelease(shared->lock);
  if (known) {
    ereport(LOG,
            (errmsg("shard_coordinator: member \"%.*s\" of cluster \"%.*s\" "
                    "(incarnation %lld) evicted by %s: %s",
                    static_cast<int>(member_name.len), member_name.data,
                    static_cast<int>(cluster_name.len), cluster_name.data,
                    static_cast<long long>(incarnation),
                    GetUserNameFromId(GetUserId(), false),
                    reason != nullptr ? reason : "no reason given")));
    wake_worker();
  }
  PG_RETURN_BOOL(known);
}

// freeze(cluster): no work moves until unfreeze(); returns once stored.
Datum sc_freeze(PG_FUNCTION_ARGS) {
  NameArg name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  require_ready_for_writes();
  require_cluster_access(name, Access::Admin);
  bool dropping = false;
  const uint64 generation = set_frozen(name, true, &dropping);
  if (dropping) cluster_being_dropped(name, "freeze");
  if (generation == 0) no_such_cluster(name);
  wake_worker();
  wait_until_stored(name, generation);
  PG_RETURN_VOID();
}

// unfreeze(cluster): what waited is done now (gate permitting).
Datum sc_unfreeze(PG_FUNCTION_ARGS) {
  NameArg name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  require_ready_for_writes();
  require_cluster_access(name, Access::Admin);
  bool dropping = false;
  const uint64 generation = set_frozen(name, false, &dropping);
  if (dropping) cluster_being_dropped(name, "unfreeze");
  if (generation == 0) no_such_cluster(name);
  wake_worker();
  wait_until_stored(name, generation);
  PG_RETURN_VOID();
}

// drop_cluster(cluster): its members are told `removed`; once nothing is
// held (every holder released it or its promise ended) the worker frees the
// name, its shared memory and its rows. Returns once the drop is stored.
Datum sc_drop_cluster(PG_FUNCTION_ARGS) {
  NameArg name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  require_ready_for_writes();
  require_cluster_access(name, Access::Admin);
  int32 members = 0;
  const uint64 generation = start_drop(name, &members);
  if (generation == 0) no_such_cluster(name);
  ereport(LOG, (errmsg("shard_coordinator: cluster \"%.*s\" (%d members) "
                       "dropped by %s",
                       static_cast<int>(name.len), name.data, members,
                       GetUserNameFromId(GetUserId(), false))));
  wake_worker();
  wait_until_stored(name, generation);
  PG_RETURN_VOID();
}

}  // extern "C"
