#include "shmem/fence_lock.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/sinvaladt.h"
}

#include "core/names.hpp"

namespace shard_coordinator {

namespace {

void cluster_lock_tag(LOCKTAG *tag, const char *cluster, size_t len) {
  const uint64 hash = fnv1a64(cluster, len);
  SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, static_cast<uint32>(hash >> 32),
                       static_cast<uint32>(hash), kFenceLockSpace);
}

}  // namespace

void acquire_fence_lock(const char *cluster, size_t len) {
  LOCKTAG tag;
  cluster_lock_tag(&tag, cluster, len);
  (void)LockAcquire(&tag, ShareLock, false, false);
}

bool fence_lock_held_by_me(const char *cluster, size_t len) {
  LOCKTAG tag;
  cluster_lock_tag(&tag, cluster, len);
  return LockHeldByMe(&tag, ShareLock);
}

bool try_lock_cluster_for_reshard(const char *cluster, size_t len) {
  LOCKTAG tag;
  cluster_lock_tag(&tag, cluster, len);
  return LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

void unlock_cluster_after_reshard(const char *cluster, size_t len) {
  LOCKTAG tag;
  cluster_lock_tag(&tag, cluster, len);
  (void)LockRelease(&tag, ExclusiveLock, true);
}

int fence_lock_holders(const char *cluster, size_t len, int *pids, int max) {
  LOCKTAG tag;
  cluster_lock_tag(&tag, cluster, len);
  int count = 0;
  VirtualTransactionId *holders = GetLockConflicts(&tag, ExclusiveLock, &count);
  int found = 0;
  for (int i = 0; i < count && found < max; ++i) {
    if (!VirtualTransactionIdIsValid(holders[i])) break;
    PGPROC *proc = BackendIdGetProc(holders[i].backendId);
    if (proc != nullptr && proc->pid > 0 && proc->pid != MyProcPid)
      pids[found++] = proc->pid;
  }
  return found;
}

}  // namespace shard_coordinator
