// The SQL entry points' shared parts:
//
//   args.cpp       reading and checking arguments (names, intervals, slots)
//   guards.cpp     the checks every coordinating call makes first
//   heartbeat.cpp  heartbeat() and leave(): the hot path
//   configure.cpp  configure()
//   views.cpp      the functions behind the views, and the install check
//   fence.cpp      fence()
//   admin.cpp      evict(), freeze(), unfreeze(): operator controls
//   access.cpp     per-cluster roles
//   keys.cpp       channel() and jump_hash()
//
// They are thin extern "C" functions written in C style: they hold no C++
// objects with destructors, and the only C++ code they call is noexcept
// (core/), so neither a PostgreSQL ERROR nor a C++ exception can cross the
// other's frames. Our own ereport(ERROR)s are raised with the shared lock
// released (the checks come before or after the locked part); an ERROR
// raised inside PostgreSQL while it is held (out of memory in palloc)
// releases it with the abort, as for any LWLock.
#pragma once

#include "pg_prelude.hpp"

extern "C" {
#include "fmgr.h"
#include "funcapi.h"
}

namespace shard_coordinator {
struct ClusterEntry;  // shmem/shmem.hpp
}

namespace shard_coordinator::sql {

// How long a call waits for the background worker (load, store, removal).
constexpr long kWorkerWaitMs = 10000;

// --- args.cpp ---------------------------------------------------------------

struct NameArg {
  const char *data;
  size_t len;
};

// A cluster or member name: ERROR (22004, 22023) unless 1..max bytes
// without control characters. `what` names the argument.
NameArg get_name_arg(FunctionCallInfo fcinfo, int argno, const char *what,
                     size_t max);
// An optional interval argument of at most 1 day; NULL leaves *out alone
// and returns false.
bool get_interval_arg(FunctionCallInfo fcinfo, int argno, const char *what,
                      bool allow_zero, int64 *out);
// The optional slots argument: NULL keeps (*nkeys = -1), '{}' leaves slot
// mode (*nkeys = 0), else the keys ascending.
int32 *get_slots_arg(FunctionCallInfo fcinfo, int argno, int32 *nkeys);
// A keys argument (int4[], not NULL, no NULL element), as given.
int32 *get_keys_arg(FunctionCallInfo fcinfo, int argno, int32 *nkeys);
// The function's composite result type, built once per call site.
TupleDesc result_tupdesc(FunctionCallInfo fcinfo);
// int4[] of these keys.
Datum slots_datum(const int32 *slots, int32 nslots);
// The member's LISTEN channel as text.
text *channel_text(NameArg cluster, NameArg member);

// --- configure.cpp ----------------------------------------------------------

// Waits until the worker has stored the settings of `generation` (they
// survive a crash and show in the table); warns after kWorkerWaitMs.
void wait_until_stored(NameArg name, uint64 generation);

// SQLSTATE SC004: drop_cluster() was called; the cluster is on its way out.
constexpr int kDroppingSqlstate = MAKE_SQLSTATE('S', 'C', '0', '0', '4');
// Raises SC004 for the cluster (lock released).
[[noreturn]] void cluster_being_dropped(NameArg cluster, const char *action);

// --- access.cpp
// ---------------------------------------------------------------

enum class Access { Join, Admin };

// Whether the current user may join (or administer) a cluster with these
// roles (InvalidOid: no role set). Superusers may everything.
bool access_allowed(Oid member_role, Oid admin_role, Access access);
// ERROR 42501 naming the cluster and the role to be granted.
void access_denied(NameArg cluster, Access access, const char *role);
// ERROR 42501 unless the current user may; nothing for an unknown cluster.
void require_cluster_access(NameArg cluster, Access access);
// The heartbeat's memo of a check that passed (caller holds the lock).
bool access_remembered(const ClusterEntry *cluster);
void remember_access(uint32 cluster_id, uint32 acl_serial);
// A role argument by name: ERROR 42704 if there is no such role.
Oid role_arg_oid(const char *name, const char *what);

// --- guards.cpp -----------------------------------------------------------

void require_preloaded();
// Once per backend: is this the database the worker runs in?
void require_coordinator_database();
// The checks every coordinating call makes, cheapest first: preloaded, on
// the primary, in the coordinator's database, state loaded (waits up to
// kWorkerWaitMs for the worker).
void require_ready_for_writes();
// Whether the worker's commits wait for a synchronous standby: then every
// promise survives a failover (README, "Failover").
bool failover_safe();

}  // namespace shard_coordinator::sql
