// configure(): creates a cluster or changes its settings in shared memory,
// then waits (bounded) until the worker has stored them. Three steps: read
// the arguments (every error before anything changes), apply them under
// the exclusive lock, wait for the store.

#include "sql/sql.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

// What configure() was asked to change (NULL arguments: nothing).
struct Settings {
  NameArg cluster;
  bool set_heartbeat;
  int64 heartbeat_us;
  bool set_grace;
  int64 grace_us;
  bool set_reshard;
  int64 reshard_us;
  bool set_max;
  int32 max_shards;
  bool clear_max;
  int32 nkeys;  // -1: keep the slot set; 0: leave slot mode
  int32 *keys;
  bool set_handover;
  HandoverMode handover;
  bool set_fence_timeout;
  int64 fence_timeout_us;
  // Roles: -1 keep, 0 remove, 1 set to (oid, name).
  int set_member_role;
  Oid member_role;
  NameData member_role_name;
  int set_admin_role;
  Oid admin_role;
  NameData admin_role_name;
};

// A role argument: NULL keeps (-1), '' removes (0), a role's name sets (1).
int read_role_arg(FunctionCallInfo fcinfo, int argno, const char *what,
                  Oid *oid, NameData *name) {
  *oid = InvalidOid;
  memset(name, 0, sizeof(NameData));
  if (PG_NARGS() <= argno || PG_ARGISNULL(argno)) return -1;
  char *value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
  if (value[0] == '\0') return 0;
  if (strlen(value) >= NAMEDATALEN)
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
             errmsg("%s must be shorter than %d bytes", what, NAMEDATALEN)));
  *oid = role_arg_oid(value, what);
  namestrcpy(name, value);
  return 1;
}

Settings read_settings(FunctionCallInfo fcinfo) {
  Settings s;
  s.cluster = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  s.heartbeat_us = 0;
  s.grace_us = 0;
  s.reshard_us = 0;
  s.set_heartbeat =
      get_interval_arg(fcinfo, 1, "heartbeat_interval", false, &s.heartbeat_us);
  s.set_grace = get_interval_arg(fcinfo, 2, "grace_period", true, &s.grace_us);
  s.set_reshard =
      get_interval_arg(fcinfo, 3, "reshard_interval", true, &s.reshard_us);
  s.set_max = !PG_ARGISNULL(4);
  s.max_shards = s.set_max ? PG_GETARG_INT32(4) : 0;
  s.clear_max = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
  if (s.set_max && s.max_shards < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("max_shards must be at least 1"),
                    errhint("Use clear_max_shards => true to remove the "
                            "cap.")));
  if (s.set_max && s.clear_max)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("max_shards and clear_max_shards cannot both be "
                           "given"),
                    errhint("Pass max_shards to set a cap, or "
                            "clear_max_shards => true to remove it.")));
  s.keys = get_slots_arg(fcinfo, 6, &s.nkeys);
  s.fence_timeout_us = 0;
  s.set_fence_timeout =
      PG_NARGS() > 10 &&
      get_interval_arg(fcinfo, 10, "fence_timeout", true, &s.fence_timeout_us);
  s.set_member_role = read_role_arg(fcinfo, 8, "member_role", &s.member_role,
                                    &s.member_role_name);
  s.set_admin_role =
      read_role_arg(fcinfo, 9, "admin_role", &s.admin_role, &s.admin_role_name);
  // handover (1.1; a 1.0 catalog passes seven arguments).
  s.set_handover = PG_NARGS() > 7 && !PG_ARGISNULL(7);
  s.handover = HandoverMode::Exclusive;
  if (s.set_handover) {
    char *mode = text_to_cstring(PG_GETARG_TEXT_PP(7));
    if (!parse_handover_mode(mode, &s.handover))
      ereport(ERROR,
              (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
               errmsg("handover must be exclusive, barrier or immediate, not "
                      "\"%s\"",
                      mode),
               errhint("exclusive (the default) grants work only after its "
                       "holder released it; barrier does too, for key "
                       "mappings other than jump_hash; immediate hands "
                       "work over at once.")));
  }
  return s;
}

enum class Applied { Done, ClustersFull, SlotSetsFull, Dropping };

// Changes the cluster's settings (creating it if need be); the exclusive
// lock is held. Everything that can refuse is checked before anything
// changes: a refused call creates no cluster.
Applied apply_settings(const Settings &s, uint64 *generation) {
  ClusterEntry *cluster = find_cluster(s.cluster.data, s.cluster.len);
  if (cluster != nullptr && cluster->dropping) return Applied::Dropping;
  int32 new_set = -1;
  if (s.nkeys > 0 && (cluster == nullptr || cluster->slot_set < 0)) {
    new_set = allocate_slot_set(0);
    if (new_set < 0) return Applied::SlotSetsFull;
  }
  const bool created = cluster == nullptr;
  if (created) {
    cluster = create_cluster(s.cluster.data, s.cluster.len);
    if (cluster == nullptr) {
      if (new_set >= 0) free_slot_set(new_set);
      return Applied::ClustersFull;
    }
    // A cluster made by configure() hands over exclusively unless told
    // otherwise (shard_coordinator.handover is for first heartbeats).
    cluster->handover = HandoverMode::Exclusive;
  }
  if (new_set >= 0) {
    slot_sets[new_set].cluster_id = cluster->id;
    cluster->slot_set = new_set;
  }
  if (s.nkeys >= 0 && cluster->slot_set >= 0) {
    // Applied by the worker at the next reshard.
    SlotSet &set = slot_sets[cluster->slot_set];
    if (s.nkeys > 0)
      memcpy(slot_pending_keys(cluster->slot_set), s.keys,
             sizeof(int32) * static_cast<size_t>(s.nkeys));
    set.pending_count = s.nkeys;
    set.pending_serial++;
    cluster->reshard_wanted = true;
    cluster->reasons |= kReasonConfigure;
  }
  // Promises already made are kept (set_cluster_lease).
  set_cluster_lease(
      cluster,
      s.set_heartbeat ? s.heartbeat_us : cluster->heartbeat_interval_us,
      s.set_grace ? s.grace_us : cluster->grace_period_us, mono_now_us());
  // A cluster made just now has promised nothing: the longest lease it ever
  // promised (restarts and failovers wait that long) is the one it starts
  // with, not the defaults it was created from.
  if (created) {
    cluster->leases.clear();
    cluster->max_lease_us =
        cluster->heartbeat_interval_us + cluster->grace_period_us;
  }
  // Deadlines may have moved earlier.
  if (s.set_heartbeat || s.set_grace) cluster->expiry_check_at = 0;
  if (s.set_reshard) cluster->reshard_interval_us = s.reshard_us;
  const int32 new_max =
      s.clear_max ? 0 : (s.set_max ? s.max_shards : cluster->max_shards);
  if (new_max != cluster->max_shards) {
    cluster->max_shards = new_max;
    cluster->reshard_wanted = true;
    cluster->reasons |= kReasonConfigure;
  }
  if (s.set_fence_timeout) cluster->fence_timeout_us = s.fence_timeout_us;
  if (s.set_member_role >= 0) {
    cluster->member_role = s.member_role;
    cluster->member_role_name = s.member_role_name;
    cluster->acl_serial++;
  }
  if (s.set_admin_role >= 0) {
    cluster->admin_role = s.admin_role;
    cluster->admin_role_name = s.admin_role_name;
    cluster->acl_serial++;
  }
  if (s.set_handover && s.handover != cluster->handover) {
    // Work withheld for a handover goes at once under immediate; the
    // exclusive guarantee holds one lease after leaving immediate.
    if (cluster->handover == HandoverMode::Immediate)
      cluster->exclusive_since = GetCurrentTimestamp();
    cluster->handover = s.handover;
    pg_atomic_write_u32(&cluster->grant_check_wanted, 1);
    cluster->reasons |= kReasonConfigure;
  }
  // Never removed for being empty (shard_coordinator.empty_cluster_timeout).
  cluster->configured = true;
  *generation = ++cluster->config_generation;
  return Applied::Done;
}

}  // namespace

// Waits until the worker has stored the settings of `generation`, so that
// they survive a crash and show in the table; warns after kWorkerWaitMs.
void wait_until_stored(NameArg name, uint64 generation) {
  TimestampTz give_up =
      TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kWorkerWaitMs);
  ConditionVariablePrepareToSleep(&shared->changed_cv);
  for (;;) {
    LWLockAcquire(shared->lock, LW_SHARED);
    ClusterEntry *cluster = find_cluster(name.data, name.len);
    const bool stored =
        cluster == nullptr || cluster->stored_generation >= generation;
    LWLockRelease(shared->lock);
    if (stored) break;
    if (GetCurrentTimestamp() >= give_up) {
      ConditionVariableCancelSleep();
      ereport(WARNING, (errmsg("settings of cluster \"%.*s\" apply now but the "
                               "background worker has not stored them yet",
                               static_cast<int>(name.len), name.data)));
      return;
    }
    ConditionVariableTimedSleep(&shared->changed_cv, 100, PG_WAIT_EXTENSION);
  }
  ConditionVariableCancelSleep();
}

}  // namespace shard_coordinator::sql

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

extern "C" {

PG_FUNCTION_INFO_V1(sc_configure);

Datum sc_configure(PG_FUNCTION_ARGS) {
  const Settings settings = read_settings(fcinfo);
  require_ready_for_writes();
  // Creating a cluster needs EXECUTE only; changing one, its admin role.
  require_cluster_access(settings.cluster, Access::Admin);

  uint64 generation = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  const Applied applied = apply_settings(settings, &generation);
  LWLockRelease(shared->lock);
  const NameArg &name = settings.cluster;
  if (applied == Applied::Dropping) cluster_being_dropped(name, "configure");
  if (applied == Applied::SlotSetsFull)
    ereport(
        ERROR,
        (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
         errmsg("cannot give cluster \"%.*s\" a slot set: all %d slot "
                "sets are in use",
                static_cast<int>(name.len), name.data, guc_max_slot_clusters),
         errhint("Raise shard_coordinator.max_slot_clusters and restart "
                 "the server.")));
  if (applied == Applied::ClustersFull)
    ereport(ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("cannot create cluster \"%.*s\": all %d cluster slots "
                    "are in use",
                    static_cast<int>(name.len), name.data, guc_max_clusters),
             errhint("Raise shard_coordinator.max_clusters and restart the "
                     "server.")));
  wake_worker();
  wait_until_stored(name, generation);
  PG_RETURN_VOID();
}

}  // extern "C"
