// Fencing: the lock that orders fence() against reshards.
//
// Each cluster has one heavyweight lock (an advisory lock tag in the
// coordinator's database, field4 = kFenceLockSpace so that it cannot collide
// with pg_advisory_lock keys, which use 1 and 2). fence() takes it in
// ShareLock mode for the rest of the caller's transaction; the background
// worker takes it in ExclusiveLock mode, session-level and without waiting,
// from before it snapshots a cluster until it has published the committed
// reshard. So a fenced transaction delays reshards of its own cluster only,
// and the worker serves other clusters meanwhile and comes back. While a
// reshard is held up that way (ClusterEntry.reshard_fenced), new fences of
// that cluster fail at once (SC001), so overlapping fences cannot starve it
// and no fence ever waits outside the lock manager; storing settings needs
// no lock and is never held up. The only wait of a fence is the lock
// manager's, for a reshard in flight: the deadlock detector and
// lock_timeout see it.
#pragma once

#include "pg_prelude.hpp"

namespace shard_coordinator {

constexpr uint16 kFenceLockSpace = 0x5343;  // "SC"

// SQLSTATE SC001: the assignment given at that epoch is no longer current.
constexpr int kFenceSqlstate = MAKE_SQLSTATE('S', 'C', '0', '0', '1');

// fence(): ShareLock until the end of the transaction (waits for a reshard
// in flight).
void acquire_fence_lock(const char *cluster, size_t len);
bool fence_lock_held_by_me(const char *cluster, size_t len);

// The worker: ExclusiveLock, session-level; false if a fence holds it.
bool try_lock_cluster_for_reshard(const char *cluster, size_t len);
void unlock_cluster_after_reshard(const char *cluster, size_t len);

// The processes that hold the cluster's fence lock now (up to max), for
// the worker's fence_timeout; returns how many.
int fence_lock_holders(const char *cluster, size_t len, int *pids, int max);

}  // namespace shard_coordinator
