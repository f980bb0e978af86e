// Per-cluster roles (README, "Access per cluster"): who may join a cluster
// (heartbeat, leave, fence) and who may administer it (configure, evict,
// freeze, unfreeze). Checked with PostgreSQL's own role membership
// (has_privs_of_role), never while the shared lock is held.
//
// A heartbeat checks once per backend, cluster and role setting: the
// result is remembered (AccessMemo, a few clusters per backend, so that a
// pooled connection serving members of several clusters checks each once)
// until the cluster's roles change (acl_serial), the user does, or any
// role membership does (a syscache callback).

#include "sql/sql.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

namespace {

// One passed check; slot cluster_id % kAccessMemoSlots (cluster ids are
// never reused, and 0 is never an id: an empty slot).
struct AccessMemo {
  uint32 cluster_id;
  uint32 acl_serial;
};

constexpr uint32 kAccessMemoSlots = 16;
AccessMemo memo[kAccessMemoSlots] = {};
Oid memo_user = InvalidOid;  // the user all of them were checked for
bool callbacks_registered = false;

void forget(Datum, int, uint32) { memset(memo, 0, sizeof(memo)); }

void register_callbacks() {
  if (callbacks_registered) return;
  CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, forget, 0);
  CacheRegisterSyscacheCallback(AUTHOID, forget, 0);
  callbacks_registered = true;
}

bool has_role(Oid role) {
  return OidIsValid(role) && has_privs_of_role(GetUserId(), role);
}

}  // namespace

bool access_allowed(Oid member_role, Oid admin_role, Access access) {
  if (superuser()) return true;
  if (access == Access::Admin)
    return !OidIsValid(admin_role) || has_role(admin_role);
  return !OidIsValid(member_role) || has_role(member_role) ||
         has_role(admin_role);
}

void access_denied(NameArg cluster, Access access, const char *role) {
  ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                  errmsg("permission denied to %s cluster \"%.*s\"",
                         access == Access::Admin ? "administer" : "join",
                         static_cast<int>(cluster.len), cluster.data),
                  errhint("Only members of role \"%s\" may; GRANT %s TO %s.",
                          role, role, GetUserNameFromId(GetUserId(), false))));
}

void require_cluster_access(NameArg cluster_name, Access access) {
  Oid member_role = InvalidOid;
  Oid admin_role = InvalidOid;
  NameData role_name;
  memset(&role_name, 0, sizeof(role_name));
  LWLockAcquire(shared->lock, LW_SHARED);
  const ClusterEntry *cluster =
      find_cluster(cluster_name.data, cluster_name.len);
  if (cluster != nullptr) {
    member_role = cluster->member_role;
    admin_role = cluster->admin_role;
    role_name = access == Access::Admin || !OidIsValid(member_role)
                    ? cluster->admin_role_name
                    : cluster->member_role_name;
  }
  LWLockRelease(shared->lock);
  if (!access_allowed(member_role, admin_role, access))
    access_denied(cluster_name, access, NameStr(role_name));
}

bool access_remembered(const ClusterEntry *cluster) {
  const AccessMemo &slot = memo[cluster->id % kAccessMemoSlots];
  return slot.cluster_id == cluster->id &&
         slot.acl_serial == cluster->acl_serial && memo_user == GetUserId();
}

void remember_access(uint32 cluster_id, uint32 acl_serial) {
  register_callbacks();
  if (memo_user != GetUserId()) {
    forget(0, 0, 0);
    memo_user = GetUserId();
  }
  memo[cluster_id % kAccessMemoSlots] = {cluster_id, acl_serial};
}

Oid role_arg_oid(const char *name, const char *what) {
  Oid role = get_role_oid(name, true);
  if (!OidIsValid(role))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                    errmsg("%s \"%s\" does not exist", what, name),
                    errhint("Create the role first, or pass '' to remove "
                            "the setting.")));
  return role;
}

}  // namespace shard_coordinator::sql
