// The background worker's parts, shared between its files:
//
//   main.cpp         the loop and its scheduling: what is due, when to wake
//   transaction.cpp  starting, committing and cleaning up its transactions
//   load.cpp         loading the tables into shared memory
//   reshard.cpp      one cluster's reshard: snapshot, decision (the policy
//                    in core/), publication, fences
//   store.cpp        the transaction that stores a reshard and notifies
//   remove.cpp       removing dropped and long-empty clusters
//   stall_meter.cpp  the thread that measures stalls of the server
//
// C++ at the boundary: these files are written in C style (no C++ objects
// with destructors in frames that can raise a PostgreSQL ERROR), and reach
// the pure C++ parts only through noexcept functions (core/*_bridge.hpp,
// core/notify_payload.hpp) that copy their results into palloc'd memory.
#pragma once

#include "pg_prelude.hpp"

extern "C" {
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include "core/names.hpp"
#include "core/reshard_bridge.hpp"

namespace shard_coordinator {
struct ClusterEntry;  // shmem/shmem.hpp
}

namespace shard_coordinator::worker {

// After a failed transaction, try that cluster again this much later.
constexpr long kRetryMs = 1000;
// While a fence() holds a cluster, look at it again this often.
constexpr long kFenceRetryMs = 10;
// While the stall meter has not ticked since a possible stall, decide
// nothing that a stall would change; look again this soon.
constexpr long kStallCheckMs = 10;
// The SQLSTATE of "the stored epoch is ahead of shared memory" (internal:
// only logged): the one failure that needs a reload of the tables.
constexpr int kStaleSharedMemory = MAKE_SQLSTATE('S', 'C', '9', '0', '1');

// Reset at the start of each cycle; the loop runs in it.
extern MemoryContext cycle_context;
// Reset after each cluster's reshard.
extern MemoryContext reshard_context;

// --- transaction.cpp -------------------------------------------------------

void begin_transaction(const char *activity);
// Commit and abort leave the process in TopMemoryContext (PostgreSQL 15):
// both go back to `back_to`.
void commit_transaction(MemoryContext back_to);
// Logs the current error ("shard_coordinator: <what> failed: ...") and
// cleans up the failed transaction. Returns the error's SQLSTATE.
int recover_from_error(MemoryContext back_to, const char *what);

// --- load.cpp -------------------------------------------------------------

// Loads the tables into shared memory. Returns false if the extension is
// not installed (yet) or the load failed.
bool load_state();

// --- main.cpp -------------------------------------------------------------

// Takes the stalls the meter measured into shared memory. False while the
// meter may not have measured a stall that just happened: then no deadline
// may be judged at `now`.
bool stalls_measured(int64 now);

// --- reshard.cpp ----------------------------------------------------------

// Done; Failed (retried later, others go on); Reload (shared memory is
// stale); Fenced (held up by fence(), retried soon); NotYet (a stall may
// just have happened, retried soon).
enum class ReshardResult { Done, Failed, Reload, Fenced, NotYet };

// At most this many clusters' steps share one transaction (one commit,
// one synchronous flush), and at most about this many members in all.
constexpr int kBatchClusters = 64;
constexpr int kBatchMembers = 20000;

// One step of each of these clusters: a reshard (when the membership
// changed and the gate is open), releases and grants; or only its settings
// when a fence holds it. Their stores share one transaction, each in a
// subtransaction of its own, so that one cluster's failure is that
// cluster's alone. results[i] is names[i]'s.
void reshard_clusters(char **names, int n, ReshardResult *results);

// Whether a step that may move work is due (lock held): a membership change
// with the gate open, an acknowledgement that released something, a release
// deadline that passed, or the end of a failover's hold on grants.
bool step_due(ClusterEntry *cluster, int64 now);

// A member as copied out of shared memory for one reshard.
struct SnapMember {
  char *name;
  TimestampTz joined_at;
  uint64 incarnation;
};

// A cluster as copied out of shared memory for one reshard.
struct Snapshot {
  char name[kClusterNameMax + 1];
  uint64 reset_count;
  int64 heartbeat_interval_us;
  int64 grace_period_us;
  int64 reshard_interval_us;
  int32 max_shards;
  int64 max_lease_us;
  TimestampTz resharded_at;
  uint64 config_generation;
  bool settings_unstored;
  // A fence holds the cluster: store the settings only, leave members,
  // epoch, keys and holds alone.
  bool settings_only;
  bool frozen;      // freeze(): stored with the settings
  bool dropping;    // drop_cluster(): stored with the settings
  bool configured;  // configure() made or changed it: stored
  int64 fence_timeout_us;
  uint32 reasons;             // StepReason bits this step serves
  int64 store_us;             // how long its store transaction took
  NameData member_role_name;  // per-cluster roles (empty: none)
  NameData admin_role_name;
  int32 slot_set;      // its SlotSet, or -1
  bool slots_pending;  // configure() asked for a new key set
  uint64 pending_serial;
  // The policy's input (members, keys, holds) and the names that go with
  // its members.
  BridgeInput input;
  SnapMember *names;  // input.nmembers
};

// --- remove.cpp -----------------------------------------------------------

// Keeps ClusterEntry.empty_since (lock held, either mode: only the worker
// reads and writes it).
void note_emptiness(ClusterEntry *cluster, int64 now);
// When the cluster is to be removed (monotonic); PG_INT64_MAX: not.
int64 removal_due_at(const ClusterEntry *cluster);
// Removes the cluster if it is still due: its entry, then its row.
void remove_cluster_if_due(const char *name);

// --- store.cpp ------------------------------------------------------------

// Stores a step (or only the settings) and queues its notifications, in
// the current transaction (the caller's subtransaction: several clusters'
// steps share one commit). Raises a PostgreSQL ERROR on failure (with
// kStaleSharedMemory if the stored epoch is ahead of shared memory).
void store_reshard(const Snapshot *snap, const BridgeOutput *out,
                   TimestampTz wall_now);

}  // namespace shard_coordinator::worker
