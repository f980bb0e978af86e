// heartbeat() and leave(): the hot path.
//
// A heartbeat of a known member touches shared memory only (no table
// write, no WAL, no transaction ID): the shared lock, the member's entries
// (remembered per backend, see HeartbeatMemo), an atomic stamp and the
// result row. Registration of a new member takes the lock exclusively and
// wakes the worker.

#include "sql/sql.hpp"

extern "C" {
#include "access/htup_details.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include "core/names.hpp"
#include "core/notify_payload.hpp"
#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

// What the caller sends besides the names.
struct HeartbeatArgs {
  bool acknowledges;  // applied_epoch given
  int64 applied_epoch;
  uint64 incarnation;  // 0: none
};

// Whether a call may act for a member under the incarnation it sent
// (README, "Identity"). A member that never sent one is anybody's, as in
// 1.0; once it has, only that incarnation may heartbeat, acknowledge or
// leave as itself.
enum class Identity {
  Ok,        // the member's own incarnation (or none ever sent)
  InUse,     // another incarnation's promise is live
  Missing,   // the member has an incarnation, the call sent none
  Banned,    // evict() banned this incarnation
  Replaced,  // another incarnation's entry is on its way out: wait, then
             // register anew (a new incarnation never inherits an entry)
};

// What a refused call reports.
struct Refusal {
  Identity identity;
  uint64 holder;      // the incarnation that holds the name
  TimestampTz until;  // when its promise ends (InUse)
};

// SQLSTATE SC002: the name is held by another incarnation (or the call
// sent none); SC003: the incarnation was evicted.
constexpr int kNameInUseSqlstate = MAKE_SQLSTATE('S', 'C', '0', '0', '2');
constexpr int kEvictedSqlstate = MAKE_SQLSTATE('S', 'C', '0', '0', '3');

bool is_banned(const ClusterEntry *cluster, uint64 incarnation) {
  if (incarnation == 0) return false;
  for (uint64 banned : cluster->banned)
    if (banned == incarnation) return true;
  return false;
}

// Caller holds the lock (either mode).
Identity check_identity(const ClusterEntry *cluster, MemberEntry *member,
                        uint64 incarnation, int64 now) {
  const uint64 holder = member->incarnation;
  // The steady state first, without looking at the bans: evict() marks the
  // member it bans departure_held, so its own incarnation waits for the
  // removal and is refused when it registers again.
  if (holder != 0 && incarnation == holder)
    return member->departure_held ? Identity::Replaced : Identity::Ok;
  if (is_banned(cluster, incarnation)) return Identity::Banned;
  if (holder == 0) return Identity::Ok;
  if (incarnation == 0) return Identity::Missing;
  if (member->leaving || member->departure_held ||
      promise_end(cluster, member) <= now)
    return Identity::Replaced;
  return Identity::InUse;
}

void fill_refusal(const ClusterEntry *cluster, MemberEntry *member,
                  Identity identity, int64 now, Refusal *refusal) {
  refusal->identity = identity;
  refusal->holder = member != nullptr ? member->incarnation : 0;
  refusal->until = member != nullptr
                       ? mono_to_timestamp(promise_end(cluster, member), now,
                                           GetCurrentTimestamp())
                       : 0;
}

// Counts a refused heartbeat in the cluster's stats.
void count_refusal(NameArg cluster_name) {
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  if (cluster != nullptr) pg_atomic_fetch_add_u64(&cluster->stats.refused, 1);
  LWLockRelease(shared->lock);
}

// Raises the refusal's ERROR (lock released).
void report_refusal(const char *action, NameArg cluster, NameArg member,
                    uint64 incarnation, const Refusal &refusal) {
  const int clen = static_cast<int>(cluster.len);
  const int mlen = static_cast<int>(member.len);
  switch (refusal.identity) {
    case Identity::InUse:
      ereport(ERROR,
              (errcode(kNameInUseSqlstate),
               errmsg("cannot %s member \"%.*s\" of cluster \"%.*s\": the name "
                      "is in use by another process (incarnation %lld) until "
                      "%s",
                      action, mlen, member.data, clen, cluster.data,
                      static_cast<long long>(refusal.holder),
                      timestamptz_to_str(refusal.until)),
               errhint("Pick another member name, or stop the other process; "
                       "the name is free once it leaves or its promise "
                       "ends.")));
      break;
    case Identity::Missing:
      ereport(ERROR,
              (errcode(kNameInUseSqlstate),
               errmsg("cannot %s member \"%.*s\" of cluster \"%.*s\" without "
                      "an incarnation: it was registered by incarnation %lld",
                      action, mlen, member.data, clen, cluster.data,
                      static_cast<long long>(refusal.holder)),
               errhint("Pass the incarnation of the process that holds the "
                       "name.")));
      break;
    case Identity::Banned:
      ereport(ERROR,
              (errcode(kEvictedSqlstate),
               errmsg("cannot %s member \"%.*s\" of cluster \"%.*s\": "
                      "incarnation %lld was evicted",
                      action, mlen, member.data, clen, cluster.data,
                      static_cast<long long>(incarnation)),
               errhint("An operator evicted this process; start a new one "
                       "(a new incarnation) once the cause is fixed.")));
      break;
    case Identity::Ok:
    case Identity::Replaced:
      break;
  }
}

// The incarnation argument: any 64-bit value but 0 (NULL means none).
uint64 incarnation_arg(int64 value) {
  if (value == 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("incarnation must not be 0"),
                    errhint("Pass a random 64-bit number made once when the "
                            "process starts, or NULL.")));
  return static_cast<uint64>(value);
}

// What a heartbeat reports, copied out under the lock.
struct HeartbeatResult {
  MemberState state;
  bool shows_shard;  // active and granted (slot mode: active)
  int32 shard;
  int32 num_shards;  // the count it sees
  int64 epoch;
  int64 heartbeat_interval_us;
  int64 lease_us;        // the promise: from the stamp, this long
  int64 release_within;  // revoked work to stop within this; -1: none
  int64 acknowledged;    // 0: none
  bool wake_worker;      // the acknowledgement released a hold
  int32 *slots;          // NULL unless active in a cluster with a slot set
  int32 nslots;
};

// The member's slot keys (caller holds the lock), or NULL when the cluster
// has no published slot set or the member is not active.
int32 *copy_member_slots(const ClusterEntry *cluster, const MemberEntry *member,
                         int32 *nslots) {
  *nslots = 0;
  if (cluster->slot_set < 0 || member->state != MemberState::Active)
    return nullptr;
  const SlotSet &set = slot_sets[cluster->slot_set];
  if (set.count == 0) return nullptr;
  auto *keys = static_cast<int32 *>(
      palloc(sizeof(int32) * static_cast<size_t>(set.count)));
  *nslots = member_slots(cluster->slot_set, member->join_seq, keys);
  return keys;
}

// Stamps the member's heartbeat and takes its acknowledgement (caller holds
// the lock in either mode), and copies what its row reports: the row
// promises the assignment for the lease in force now.
void stamp_and_fill(ClusterEntry *cluster, MemberEntry *member, int64 now,
                    const HeartbeatArgs &args, HeartbeatResult *out) {
  pg_atomic_write_u64(&member->last_seen, static_cast<uint64>(now));
  out->wake_worker = false;
  if (args.acknowledges && acknowledge(cluster, member, args.applied_epoch)) {
    pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
    out->wake_worker = true;
  }
  if (args.incarnation != 0) member->incarnation = args.incarnation;
  const bool slot_mode =
      cluster->slot_set >= 0 && slot_sets[cluster->slot_set].count > 0;
  out->state = member->state;
  out->shows_shard =
      member->state == MemberState::Active && (slot_mode || member->granted);
  out->shard = member->shard;
  out->num_shards = slot_mode ? cluster->num_shards : cluster->grant_count;
  out->epoch = member_epoch(cluster, member);
  out->heartbeat_interval_us = cluster->heartbeat_interval_us;
  out->lease_us = lease_at(cluster, now);
  out->release_within = member->release_deadline == 0
                            ? -1
                            : Max(0, member->release_deadline - now);
  const uint64 acked = pg_atomic_read_u64(&member->acked);
  out->acknowledged =
      static_cast<int64>(Min(acked, static_cast<uint64>(Max(out->epoch, 0))));
  // Every hold of the member was made at or before its published epoch: once
  // that is acknowledged it has nothing left to release, even before the
  // worker's grant step has cleared the deadline.
  if (out->epoch > 0 && out->acknowledged >= out->epoch)
    out->release_within = -1;
  out->slots = copy_member_slots(cluster, member, &out->nslots);
}

enum class HeartbeatStep {
  Done,
  Register,
  WaitForRemoval,
  Refused,
  CheckAccess,  // the cluster has a member role this backend has not checked
};

// A cluster's roles and names, for an access check outside the lock.
struct AccessCheck {
  uint32 cluster_id;
  uint32 acl_serial;
  Oid member_role;
  Oid admin_role;
  NameData role_name;  // the role to name in an error
};

// Caller holds the lock. Whether the join check must run first.
bool needs_access_check(const ClusterEntry *cluster, AccessCheck *check) {
  if (!OidIsValid(cluster->member_role) || access_remembered(cluster))
    return false;
  check->cluster_id = cluster->id;
  check->acl_serial = cluster->acl_serial;
  check->member_role = cluster->member_role;
  check->admin_role = cluster->admin_role;
  check->role_name = cluster->member_role_name;
  return true;
}

// The entries of the member this backend heartbeated last. A worker's
// connection heartbeats the same member again and again, so the hot path
// usually skips both hash lookups. The pointers stay valid while
// shared->entry_generation is unchanged: dynahash never moves an entry, and
// every removal of an entry bumps the generation (shmem.cpp).
struct HeartbeatMemo {
  uint64 generation = 0;  // 0: empty (the shared generation starts at 1)
  ClusterEntry *cluster = nullptr;
  MemberEntry *member = nullptr;
  size_t cluster_len = 0;
  size_t member_len = 0;
  char cluster_name[kClusterNameMax];
  char member_name[kMemberNameMax];
};

HeartbeatMemo memo;

bool memo_holds(NameArg cluster_name, NameArg member_name) {
  return memo.member_len == member_name.len &&
         memo.cluster_len == cluster_name.len &&
         memcmp(memo.member_name, member_name.data, member_name.len) == 0 &&
         memcmp(memo.cluster_name, cluster_name.data, cluster_name.len) == 0;
}

// Remembers the member's entries. Returns true when it replaces another
// member: the backend serves several (a connection pool).
bool memo_remember(NameArg cluster_name, NameArg member_name,
                   ClusterEntry *cluster, MemberEntry *member) {
  bool another = memo.generation != 0 && !memo_holds(cluster_name, member_name);
  memo.generation = shared->entry_generation;
  memo.cluster = cluster;
  memo.member = member;
  memo.cluster_len = cluster_name.len;
  memo.member_len = member_name.len;
  memcpy(memo.cluster_name, cluster_name.data, cluster_name.len);
  memcpy(memo.member_name, member_name.data, member_name.len);
  return another;
}

// The hot path: shared lock, the memo (or two hash lookups), one atomic
// store.
HeartbeatStep heartbeat_known(NameArg cluster_name, NameArg member_name,
                              const HeartbeatArgs &args, HeartbeatResult *out,
                              Refusal *refusal, AccessCheck *check) {
  // A backend that serves several members will touch pages all over the
  // member table, so it maps them all at once (populate_page_tables()),
  // after its first switch of member. A worker's own connection, which
  // heartbeats one member, never does.
  static bool populated = false;
  bool pooled = false;
  HeartbeatStep step = HeartbeatStep::Register;
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster;
  MemberEntry *member;
  if (memo.generation == shared->entry_generation &&
      memo_holds(cluster_name, member_name)) {
    cluster = memo.cluster;
    member = memo.member;
  } else {
    cluster = find_cluster(cluster_name.data, cluster_name.len);
    member = cluster ? find_member(cluster, member_name.data, member_name.len)
                     : nullptr;
    if (member != nullptr)
      pooled = memo_remember(cluster_name, member_name, cluster, member);
  }
  if (cluster != nullptr && needs_access_check(cluster, check)) {
    step = HeartbeatStep::CheckAccess;
  } else if (member != nullptr && member->removing) {
    step = HeartbeatStep::WaitForRemoval;
  } else if (member != nullptr) {
    const int64 now = mono_now_us();
    const Identity identity =
        check_identity(cluster, member, args.incarnation, now);
    if (identity == Identity::Ok && !member->leaving) {
      stamp_and_fill(cluster, member, now, args, out);
      step = HeartbeatStep::Done;
    } else if (identity == Identity::Replaced) {
      step = HeartbeatStep::WaitForRemoval;
    } else if (identity != Identity::Ok) {
      fill_refusal(cluster, member, identity, now, refusal);
      step = HeartbeatStep::Refused;
    }
  }
  LWLockRelease(shared->lock);
  if (pooled && !populated) {
    populated = true;
    populate_page_tables();
  }
  return step;
}

enum class RegisterOutcome {
  Done,
  ClustersFull,
  MembersFull,
  Retry,
  Refused,
  NoCluster,  // shard_coordinator.create_on_heartbeat is off
  Dropping,   // drop_cluster() was called
};

// Registers a new member (or takes back a leave()).
RegisterOutcome heartbeat_register(NameArg cluster_name, NameArg member_name,
                                   const HeartbeatArgs &args,
                                   HeartbeatResult *out, Refusal *refusal) {
  RegisterOutcome outcome = RegisterOutcome::Done;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  const int64 now = mono_now_us();
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  AccessCheck unused;
  if (cluster == nullptr && !guc_create_on_heartbeat) {
    outcome = RegisterOutcome::NoCluster;
  } else if (cluster != nullptr && needs_access_check(cluster, &unused)) {
    outcome = RegisterOutcome::Retry;  // the roles changed: check again
  } else if (cluster != nullptr && cluster->dropping) {
    // Its members are all on their way out (drop_cluster() marked them
    // leaving): nobody joins or comes back.
    outcome = RegisterOutcome::Dropping;
  } else if (cluster == nullptr && shared->member_count >= guc_max_members) {
    // Refused: do not leave an empty cluster behind.
    outcome = RegisterOutcome::MembersFull;
  } else if (cluster == nullptr &&
             (cluster = create_cluster(cluster_name.data, cluster_name.len)) ==
                 nullptr) {
    outcome = RegisterOutcome::ClustersFull;
  } else {
    MemberEntry *member =
        find_member(cluster, member_name.data, member_name.len);
    const Identity identity =
        member != nullptr
            ? check_identity(cluster, member, args.incarnation, now)
            : (is_banned(cluster, args.incarnation) ? Identity::Banned
                                                    : Identity::Ok);
    if ((member != nullptr && member->removing) ||
        identity == Identity::Replaced) {
      outcome = RegisterOutcome::Retry;
    } else if (identity != Identity::Ok) {
      fill_refusal(cluster, member, identity, now, refusal);
      outcome = RegisterOutcome::Refused;
    } else {
      if (member == nullptr) {
        member = create_member(cluster, member_name.data, member_name.len, now,
                               GetCurrentTimestamp());
        if (member != nullptr) {
          cluster->reshard_wanted = true;
          cluster->reasons |= kReasonJoin;
          cluster->stats.joins++;
        }
      } else if (member->leaving) {
        // A heartbeat after leave() but before the reshard: still a member.
        member->leaving = false;
      }
      if (member == nullptr) {
        outcome = RegisterOutcome::MembersFull;
      } else {
        stamp_and_fill(cluster, member, now, args, out);
      }
    }
  }
  LWLockRelease(shared->lock);
  return outcome;
}

// Waits (bounded) for the worker to publish whatever it is doing now.
void wait_for_publish() {
  ConditionVariablePrepareToSleep(&shared->changed_cv);
  wake_worker();
  ConditionVariableTimedSleep(&shared->changed_cv, 100, PG_WAIT_EXTENSION);
  ConditionVariableCancelSleep();
}

}  // namespace

}  // namespace shard_coordinator::sql

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

extern "C" {

PG_FUNCTION_INFO_V1(sc_heartbeat);
PG_FUNCTION_INFO_V1(sc_leave);

Datum sc_heartbeat(PG_FUNCTION_ARGS) {
  NameArg cluster = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  // applied_epoch and incarnation (1.1; a 1.0 catalog passes neither). An
  // acknowledgement is never an error: one of an epoch this member was not
  // given is ignored (acknowledge()).
  HeartbeatArgs args{false, 0, 0};
  if (PG_NARGS() > 2 && !PG_ARGISNULL(2)) {
    args.acknowledges = true;
    args.applied_epoch = PG_GETARG_INT64(2);
  }
  if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
    args.incarnation = incarnation_arg(PG_GETARG_INT64(3));
  require_ready_for_writes();

  HeartbeatResult result;
  Refusal refusal{Identity::Ok, 0, 0};
  AccessCheck check;
  // Read before the stamp, so that expires_at never overstates the promise.
  const TimestampTz wall_now = GetCurrentTimestamp();
  TimestampTz give_up =
      0;  // set on the first wait only: keep the hot path lean
  for (;;) {
    HeartbeatStep step =
        heartbeat_known(cluster, member, args, &result, &refusal, &check);
    if (step == HeartbeatStep::Done) break;
    if (step == HeartbeatStep::CheckAccess) {
      if (!access_allowed(check.member_role, check.admin_role, Access::Join)) {
        count_refusal(cluster);
        access_denied(cluster, Access::Join, NameStr(check.role_name));
      }
      remember_access(check.cluster_id, check.acl_serial);
      continue;
    }
    if (step == HeartbeatStep::Refused) {
      count_refusal(cluster);
      report_refusal("heartbeat", cluster, member, args.incarnation, refusal);
    }
    if (step == HeartbeatStep::Register) {
      RegisterOutcome outcome =
          heartbeat_register(cluster, member, args, &result, &refusal);
      if (outcome == RegisterOutcome::Done) {
        wake_worker();
        break;
      }
      if (outcome == RegisterOutcome::Refused) {
        count_refusal(cluster);
        report_refusal("heartbeat", cluster, member, args.incarnation, refusal);
      }
      if (outcome == RegisterOutcome::Dropping) {
        count_refusal(cluster);
        cluster_being_dropped(cluster, "heartbeat in");
      }
      if (outcome == RegisterOutcome::NoCluster)
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_OBJECT),
                 errmsg("cluster \"%.*s\" does not exist",
                        static_cast<int>(cluster.len), cluster.data),
                 errhint("shard_coordinator.create_on_heartbeat is off: an "
                         "administrator creates clusters with configure().")));
      if (outcome == RegisterOutcome::ClustersFull)
        ereport(ERROR,
                (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                 errmsg("cannot register cluster \"%.*s\": all %d cluster "
                        "slots are in use",
                        static_cast<int>(cluster.len), cluster.data,
                        guc_max_clusters),
                 errhint("Raise shard_coordinator.max_clusters and restart "
                         "the server.")));
      if (outcome == RegisterOutcome::MembersFull)
        ereport(
            ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("cannot register member \"%.*s\": all %d member "
                    "slots are in use",
                    static_cast<int>(member.len), member.data, guc_max_members),
             errhint("Raise shard_coordinator.max_members and restart "
                     "the server, or let expired members be removed.")));
    }
    // The worker is removing this member (it expired or left): once that
    // is published, the heartbeat registers it anew.
    if (give_up == 0)
      give_up =
          TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kWorkerWaitMs);
    else if (GetCurrentTimestamp() >= give_up)
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
               errmsg("member \"%.*s\" is being removed and the background "
                      "worker has not finished",
                      static_cast<int>(member.len), member.data),
               errhint("Retry the heartbeat.")));
    wait_for_publish();
    CHECK_FOR_INTERRUPTS();
  }

  if (result.wake_worker) wake_worker();
  TupleDesc tupdesc = result_tupdesc(fcinfo);
  Datum values[11];
  bool nulls[11];
  memset(nulls, 0, sizeof(nulls));
  values[0] = Int32GetDatum(result.shard);
  nulls[0] = !result.shows_shard;
  values[1] = Int32GetDatum(result.num_shards);
  values[2] = Int64GetDatum(result.epoch);
  values[3] = CStringGetTextDatum(state_name(result.state));
  values[4] = PointerGetDatum(channel_text(cluster, member));
  values[5] = IntervalPGetDatum(us_to_interval(result.heartbeat_interval_us));
  values[6] = TimestampTzGetDatum(wall_now + result.lease_us);
  values[7] = static_cast<Datum>(0);
  nulls[7] = result.slots == nullptr;
  if (result.slots != nullptr)
    values[7] = slots_datum(result.slots, result.nslots);
  // 1.1: the promise left, what to release within, the acknowledgement.
  // (A 1.0 catalog declares the first eight columns only.)
  if (tupdesc->natts >= 11) {
    values[8] = IntervalPGetDatum(us_to_interval(result.lease_us));
    values[9] = IntervalPGetDatum(us_to_interval(result.release_within));
    nulls[9] = result.release_within < 0;
    values[10] = Int64GetDatum(result.acknowledged);
    nulls[10] = result.acknowledged == 0;
  }
  PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum sc_leave(PG_FUNCTION_ARGS) {
  NameArg cluster_name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member_name = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  const uint64 incarnation = PG_NARGS() > 2 && !PG_ARGISNULL(2)
                                 ? incarnation_arg(PG_GETARG_INT64(2))
                                 : 0;
  require_ready_for_writes();
  require_cluster_access(cluster_name, Access::Join);

  bool known = false;
  bool revocation = false;
  Refusal refusal{Identity::Ok, 0, 0};
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  MemberEntry *member =
      cluster ? find_member(cluster, member_name.data, member_name.len)
              : nullptr;
  if (member != nullptr) {
    known = true;
    // Its own leave() releases its work at once; one from another
    // incarnation is a revocation: the work is held until its promise ends.
    const uint64 holder = member->incarnation;
    if (holder != 0 && incarnation == 0) {
      fill_refusal(cluster, member, Identity::Missing, mono_now_us(), &refusal);
    } else if (!member->removing) {
      revocation = holder != 0 && incarnation != holder;
      member->leaving = true;
      if (revocation) member->departure_held = true;
      cluster->reshard_wanted = true;
      cluster->reasons |= kReasonLeave;
      cluster->stats.leaves++;
    }
  }
  LWLockRelease(shared->lock);
  if (refusal.identity != Identity::Ok)
    report_refusal("leave", cluster_name, member_name, incarnation, refusal);
  if (revocation)
    ereport(LOG, (errmsg("shard_coordinator: member \"%.*s\" of cluster "
                         "\"%.*s\" was left by another incarnation (%lld); "
                         "its work is held until its promise ends",
                         static_cast<int>(member_name.len), member_name.data,
                         static_cast<int>(cluster_name.len), cluster_name.data,
                         static_cast<long long>(incarnation))));
  if (known) wake_worker();
  PG_RETURN_BOOL(known);
}

}  // extern "C"
