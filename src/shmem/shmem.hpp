// Shared memory: the live picture of every cluster and member.
//
// Locking protocol
// ----------------
// Locks, in the order they are taken (never the other way round):
//   1. a cluster's fence lock (shmem/fence_lock.hpp): a heavyweight lock of
//      the lock manager, ShareLock by fence() for the rest of its
//      transaction, ExclusiveLock by the worker (session-level, never
//      waited for) from before a reshard's snapshot until its publication;
//   2. the LWLock `shared->lock` (tranche "shard_coordinator"), never held
//      across a transaction, a wait or an ereport(ERROR) of ours.
//
// The LWLock guards both hash tables, every ClusterEntry, every
// MemberEntry field except last_seen, the slot sets (SlotSet and their key,
// owner and pending arrays), the counters of SharedState and the stall log:
//  - Heartbeat of a known member (the hot path) takes it SHARED, stamps
//    last_seen with an atomic write and copies its assignment out. Many
//    heartbeats run at once; none of them writes anything else.
//  - Registration of a member or cluster, leave() and configure() take it
//    EXCLUSIVE, change the entries and then wake the worker.
//  - fence() takes it SHARED to check the member after it holds the fence
//    lock. The views take it SHARED and copy; they build rows after it.
//  - The worker takes it EXCLUSIVE to snapshot a cluster before a reshard,
//    to publish the committed result, to take back a failed reshard, to log
//    stalls and to load the tables. The one place it writes under the
//    SHARED lock is find_due_clusters() (worker/main.cpp): it sets
//    reshard_wanted and expiry_check_at, which heartbeats never touch and
//    every other writer changes only under the EXCLUSIVE lock.
//  - last_seen is a pg_atomic_uint64 so that heartbeats can stamp it under
//    the shared lock; everybody else reads it under the lock in either mode.
//  - The worker's latch pointer is written by the worker alone (on start
//    and exit) and read without the lock: a stale pointer only causes a
//    spurious wake-up of whichever process owns that PGPROC slot now.
//
// Entries are looked up by name again after any lock gap, with one
// exception: a backend remembers the entries of the member it heartbeated
// last and uses them again only while shared->entry_generation, which every
// removal of an entry bumps, is unchanged (dynahash never moves an entry).
//
// Who writes what: only the worker (or _install_check, which clears
// everything) removes members and writes states, shards, epochs,
// num_shards and published slot keys and owners. configure() writes
// settings, pending slot keys and config_generation; the worker writes
// stored_generation once they are stored.
//
// A member's life (MemberEntry)
// -----------------------------
//   pending ──(reshard)──▶ active or standby ──(reshard)──▶ active/standby
//      │                          │
//      └── leave() or expiry ─────┴──▶ removed at the next reshard
//
//  - state, shard, epoch: set by the worker when it publishes a reshard
//    (and by the load); a first heartbeat creates the member pending.
//  - leaving: set by leave(); cleared by a heartbeat that comes before the
//    reshard (the member stays), or the member is removed by that reshard.
//  - removing: set by the worker in a reshard's snapshot for each member it
//    is about to remove (left or expired); cleared if that reshard fails
//    (take_back), or by a new worker's load (a dead worker's reshard is
//    redone). A heartbeat of a member being removed waits for the
//    publication and then registers it anew.
//  - load_mark: scratch flag of the load only.
//  - A cluster's reshard_wanted: set by joins, leave(), configure(), the
//    worker's expiry checks and the load; cleared by the snapshot of a
//    membership reshard. reshard_fenced: set and cleared by the worker
//    (reshard.cpp) while a fence() holds a due reshard up. retry_at: set
//    when a reshard failed, cleared by the next publication.
#pragma once

#include "pg_prelude.hpp"

extern "C" {
#include "datatype/timestamp.h"
#include "lib/ilist.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"
}

#include "core/assignment.hpp"
#include "core/clock.hpp"
#include "core/grants.hpp"
#include "core/lease_history.hpp"
#include "core/names.hpp"
#include "core/reshard_policy.hpp"
#include "core/stall_log.hpp"

namespace shard_coordinator {

struct ClusterKey {
  char name[kClusterNameMax + 1];  // NUL-padded: hashed as a blob
};

// Why a step ran (history.reasons): set with reshard_wanted, taken by the
// step that serves them.
enum StepReason : uint32 {
  kReasonJoin = 1,
  kReasonLeave = 2,
  kReasonExpiry = 4,
  kReasonConfigure = 8,
  kReasonAdmin = 16,    // evict, freeze, unfreeze
  kReasonRelease = 32,  // an acknowledgement or a promise's end
  kReasonRestart = 64,  // the load after a start
};

// Cumulative counters of one cluster since it was created or the server
// started (the stats view). Written by the worker and by calls under the
// exclusive lock; `refused` by heartbeats, hence atomic.
struct ClusterStats {
  TimestampTz since;
  uint64 steps;        // published steps that told anybody
  uint64 reshards;     // steps that recomputed targets
  uint64 joins;        // registrations
  uint64 leaves;       // leave() calls of a known member
  uint64 expiries;     // members removed after their promise ended
  uint64 evictions;    // evict() calls of a known member
  uint64 revocations;  // members told of a revocation
  uint64 handovers;    // handovers completed (pending -> settled)
  int64 handover_us_total;
  int64 handover_us_max;
  int64 handover_started;    // monotonic; 0: none pending
  uint64 notices;            // NOTIFYs sent (member and cluster channels)
  uint64 fence_waits;        // steps found held up by fence()
  pg_atomic_uint64 refused;  // heartbeats refused (identity, access)
  int64 last_step_us;        // the last step's store transaction
  int64 longest_step_us;
};

// One published step in a cluster's bounded history.
struct HistoryEntry {
  int64 epoch;
  TimestampTz at;
  uint32 reasons;  // StepReason bits
  int32 told;      // members with a notice of their own
  int32 removed;   // members removed
  int64 duration_us;
};
constexpr int kHistoryEntries = 16;

// How many evicted incarnations a cluster remembers.
constexpr int kBannedIncarnations = 16;

struct ClusterEntry {
  ClusterKey key;  // first: dynahash key
  uint32 id;       // key of this cluster's members; never reused
  int64 heartbeat_interval_us;
  int64 grace_period_us;
  int64 reshard_interval_us;
  // The leases of heartbeats stamped before recent shortenings of the lease
  // (lease_history.hpp): a promise made is kept.
  LeaseHistory leases;
  int32 max_shards;  // 0: no cap
  int32 num_shards;  // active targets, as of the last publication
  // Plain mode: the count of every grant (core/reshard_policy.hpp).
  int32 grant_count;
  int64 epoch;  // as of the last published reshard
  // The last change of the count members see (plain: grant_count; slot
  // mode: num_shards): a member's epoch is at least this (member_epoch()).
  int64 count_epoch;
  // The last time that count went down in plain mode: every grant gained
  // keys then (fence() with keys counts grants from here).
  int64 shrink_epoch;
  // The gate counts from here (monotonic): the end of the last change, or
  // of the handover that followed it; 0: the gate is open.
  int64 gate_from;
  TimestampTz resharded_at;  // last reshard, for display; 0 if none
  HandoverMode handover;
  TimestampTz exclusive_since;  // when it last switched to a mode that
                                // grants exclusively (display); 0: created so
  bool reshard_wanted;          // join, leave, expiry or max_shards change
  bool reshard_fenced;          // the worker found the cluster held by fence()
  // Something is held or withheld (as of the last publication).
  bool handover_pending;
  // An acknowledgement released a hold: a grant step is due (not gated).
  // Set by heartbeats under the shared lock, hence atomic.
  pg_atomic_uint32 grant_check_wanted;
  // The earliest release deadline of its holds (monotonic); 0: none.
  int64 release_check_at;
  // The epoch of the step the worker is storing (0: none): its notices may
  // reach members before shared memory shows it, so an acknowledgement of
  // it is not early. Anything later is (acknowledge()).
  int64 epoch_in_flight;
  // No new grants before this (monotonic): a promoted server whose last
  // store was not synchronously replicated holds them one full lease.
  int64 grants_held_until;
  // The longest lease ever promised (stored): after a restart every hold
  // and member gets this long from the start.
  int64 max_lease_us;
  // Plain holds: a list in the hold pool (hold_entries()), -1: none.
  int32 holds_head;
  // No member can expire before this (the earliest deadline at the worker's
  // last look; heartbeats only move deadlines later). 0: look at the next
  // pass. Reset whenever members come, go or the timing settings change.
  // Monotonic microseconds.
  int64 expiry_check_at;
  // A reshard of this cluster failed (a write, a NOTIFY): not before this
  // (monotonic); 0: no failure pending. Other clusters go on meanwhile.
  int64 retry_at;
  uint64 config_generation;  // bumped by configure()
  uint64 stored_generation;  // settings generation the worker has stored
  int32 member_count;
  dlist_head members;  // MemberEntry.cluster_link
  int32 slot_set;      // index of its SlotSet, or -1: plain index-and-count
  // freeze(): no step moves work (settings are still stored). Stored.
  bool frozen;
  // Roles of the cluster (README, "Access per cluster"): members of
  // member_role may join it (heartbeat, leave, fence), members of
  // admin_role may administer it (configure, evict, freeze) and join it.
  // InvalidOid: whoever may execute the function. The names are stored;
  // a stored name without a role resolves to the bootstrap superuser (only
  // superusers pass). acl_serial moves with every change (heartbeat memo).
  Oid member_role;
  Oid admin_role;
  NameData member_role_name;  // empty: none
  NameData admin_role_name;
  uint32 acl_serial;
  // configure(fence_timeout): a reshard held up by fence() transactions
  // this long cancels them, twice as long terminates them (0: never).
  int64 fence_timeout_us;
  int64 fenced_since;  // monotonic; 0: not held up
  int32 fence_stage;   // 0, 1 (holders cancelled), 2 (terminated)
  uint32 reasons;      // StepReason bits not yet served by a step
  ClusterStats stats;
  HistoryEntry history[kHistoryEntries];  // a ring
  int32 history_next;
  int32 history_count;
  // Incarnations evict() banned (a ring; shared memory only): they cannot
  // register again.
  uint64 banned[kBannedIncarnations];
  int32 banned_next;
  // configure() made or changed it (stored): never removed for being
  // empty. A cluster a first heartbeat made is removed once it has been
  // empty for shard_coordinator.empty_cluster_timeout.
  bool configured;
  // drop_cluster(): its members are removed as revoked; once nothing is
  // held the worker removes the cluster (stored). Calls for it fail with
  // SC004 meanwhile.
  bool dropping;
  // Since when it has had no members and held nothing (monotonic; 0: it
  // has some). Written and read by the worker alone (find_due_clusters()).
  int64 empty_since;
};

struct MemberKey {
  uint32 cluster_id;
  char name[kMemberNameMax + 1];  // NUL-padded
};

// 224 bytes (with dynahash's 16 and its buckets, about 251 per member).
struct MemberEntry {
  MemberKey key;  // first: dynahash key
  int32 shard;    // its target shard; kNoShard unless active
  dlist_node cluster_link;
  // Monotonic microseconds of the latest heartbeat (its stamp): the promise
  // of its row ends at promise_end().
  pg_atomic_uint64 last_seen;
  TimestampTz joined_at;  // wall clock, for people
  uint64 join_seq;        // registration order within the server's life
  // The epoch of its own last change (state, shard, grant, keys); its
  // assignment's epoch is member_epoch().
  int64 epoch;
  // The highest epoch it acknowledged (applied_epoch): set by heartbeats
  // under the shared lock, hence atomic; read by the worker.
  pg_atomic_uint64 acked;
  // An acknowledgement of the step being stored (its notice came before
  // shared memory shows it): it counts once that step is published, not
  // before, and not at all if the step fails (acknowledge()).
  pg_atomic_uint64 ack_ahead;
  uint64 incarnation;  // 0: none sent yet
  // Its oldest hold's epoch (0: none): while it holds anything, a new
  // acknowledgement may release something (acknowledge()); and the earliest
  // release deadline (monotonic).
  int64 hold_epoch;
  int64 release_deadline;
  MemberState state;  // its target state
  bool granted;       // plain mode: holds (shard, cluster's grant_count)
  bool leaving;       // leave() was called; removed at the next reshard
  // Its departure is a revocation (evict(), or leave() from another
  // incarnation): its work is held until its promise ends.
  bool departure_held;
  bool removing;   // the worker is removing it right now
  bool load_mark;  // scratch flag of the worker's load
};

// The fixed slot set of one cluster: its keys in place (ascending, also
// keys on their way out), each with its target, grantee and holder
// (PolicyKey, core/reshard_policy.hpp), and a key set configure() asked for
// that the worker has not applied yet. The arrays live after the headers,
// see slot_entries() and slot_pending_keys().
struct SlotSet {
  uint32 cluster_id;      // 0: free
  int32 count;            // keys in place
  int32 pending_count;    // -1: nothing pending; 0: leave slot mode
  uint64 pending_serial;  // bumped by each configure(slots => ...)
};

// A plain-mode hold in the pool (hold_entries()), linked per cluster.
struct HoldEntry {
  PolicyHold hold;
  uint32 cluster_id;  // 0: free
  int32 next;         // the next of its cluster (or of the free list), -1
};

struct SharedState {
  LWLock *lock;
  ConditionVariable changed_cv;  // broadcast on load and on each publish
  Latch *worker_latch;           // NULL while no worker runs
  bool loaded;                   // tables loaded into shared memory
  uint64 reset_count;            // bumped when everything is cleared
  uint64 entry_generation;       // bumped when any hash entry is removed
  char *area_start;              // all of our shared memory: this struct,
  char *area_end;                // the slot sets and both hash tables
  uint32 next_cluster_id;
  uint64 next_join_seq;
  int32 cluster_count;
  int32 member_count;
  // Stalls of the server measured by the worker (stall.hpp): written by the
  // worker under the exclusive lock, read under either mode.
  StallLog stalls;
  // The timeline the worker runs on (epochs of timeline t start at
  // (t - 1) << 32): acknowledgements of epochs from another timeline that
  // this server never published are ignored. Set by the worker's load.
  uint32 timeline;
  int32 free_holds;       // head of the free list of the hold pool
  int32 free_hold_count;  // entries on it
  // The highest epoch of any cluster removed since the start: a cluster
  // made again under a removed name starts above it, so that the epochs a
  // name shows never go back within the server's life.
  int64 removed_epoch;
};

extern SharedState *shared;
extern HTAB *cluster_table;
extern HTAB *member_table;
extern SlotSet *slot_sets;  // guc_max_slot_clusters entries

PolicyKey *slot_entries(int32 set);
int32 *slot_pending_keys(int32 set);
// -1 when every slot set is in use.
int32 allocate_slot_set(uint32 cluster_id);
void free_slot_set(int32 set);
// Keys of set granted to the member with this join_seq, ascending, into out
// (room for slot_sets[set].count); returns how many.
int32 member_slots(int32 set, uint64 join_seq, int32 *out);

// The hold pool: max_members * 2 + 64 entries.
HoldEntry *hold_entries();
int32 hold_pool_size();
// Replaces a cluster's holds with these; false if the pool has no room
// (nothing changed then). The worker checks the room before it stores a
// step (hold_room()), so a published step always finds it.
bool set_cluster_holds(ClusterEntry *cluster, const PolicyHold *holds,
                       int32 nholds);
// The cluster's holds into out (room for max_members * 2 + 64); returns how
// many.
int32 copy_cluster_holds(const ClusterEntry *cluster, PolicyHold *out);
int32 count_cluster_holds(const ClusterEntry *cluster);
// How many holds the cluster could have (lock held): its own and the free
// entries.
int32 hold_room(const ClusterEntry *cluster);

// A member's acknowledgement of `epoch` (heartbeat, shared lock held):
// counts up to the epoch the member has been given (published); one of the
// step being stored is kept aside until that step is published. Never an
// error. Returns true when it releases one of the member's holds (a grant
// step is then due).
bool acknowledge(const ClusterEntry *cluster, MemberEntry *member, int64 epoch);
// The worker, after a step (exclusive lock held): the acknowledgements kept
// aside count now if the step was `published`, else they are dropped.
// Returns true when they release a hold.
bool apply_acks_ahead(ClusterEntry *cluster, bool published);

void install_shmem_hooks();

// All of these need shared->lock: shared mode to find, exclusive to change.
ClusterEntry *find_cluster(const char *name, size_t len);
MemberEntry *find_member(const ClusterEntry *cluster, const char *name,
                         size_t len);
// NULL when max_clusters / max_members is reached.
ClusterEntry *create_cluster(const char *name, size_t len);
// now: monotonic (its first stamp); wall_now: its joined_at.
MemberEntry *create_member(ClusterEntry *cluster, const char *name, size_t len,
                           int64 now, TimestampTz wall_now);
void remove_member(ClusterEntry *cluster, MemberEntry *member);
// Whether the cluster has no members and holds nothing (no plain holds, no
// slot key held or granted): it could be removed.
bool cluster_is_empty(const ClusterEntry *cluster);
// Frees the cluster's entry, slot set and holds (members must be gone).
void remove_cluster(ClusterEntry *cluster);
void reset_all();

// Maps all of our shared memory into this process's page tables at once
// (MADV_POPULATE_WRITE; no lock needed). A backend otherwise takes one page
// fault per 4 kB page on its first touch of it, which for a connection that
// heartbeats many members (a pool) means thousands of faults spread over its
// first minutes: 44 MB of member table at 200,000 members.
void populate_page_tables();

// Wakes the background worker (no lock needed).
void wake_worker();

// The epoch of the member's assignment: its own last change, or the last
// change of the count it sees if later (the cluster notice).
inline int64 member_epoch(const ClusterEntry *cluster,
                          const MemberEntry *member) {
  return member->epoch > cluster->count_epoch ? member->epoch
                                              : cluster->count_epoch;
}

inline int64 member_stamp(MemberEntry *member) {
  return static_cast<int64>(pg_atomic_read_u64(&member->last_seen));
}

// The lease a heartbeat stamped at `stamp` was given.
inline int64 lease_at(const ClusterEntry *cluster, int64 stamp) {
  return cluster->leases.lease_at(
      stamp, cluster->heartbeat_interval_us + cluster->grace_period_us);
}

// When the promise of the member's latest heartbeat row ends (monotonic).
inline int64 promise_end(const ClusterEntry *cluster, MemberEntry *member) {
  const int64 stamp = member_stamp(member);
  return stamp + lease_at(cluster, stamp);
}

// When the worker may expire the member: its promise's end, extended by
// the stalls of the server since its latest heartbeat.
inline int64 expiry_deadline(const ClusterEntry *cluster, MemberEntry *member) {
  const int64 stamp = member_stamp(member);
  return stamp + lease_at(cluster, stamp) +
         shared->stalls.extension_after(stamp);
}

// A monotonic time as a wall-clock timestamp, for people.
TimestampTz mono_to_timestamp(int64 mono, int64 mono_now, TimestampTz now);

// Changes a cluster's lease (configure, exclusive lock held) without
// shortening the promises already made.
void set_cluster_lease(ClusterEntry *cluster, int64 heartbeat_interval_us,
                       int64 grace_period_us, int64 now);

// The reshard gate: at most one reshard per reshard_interval while members
// work, counted from the end of the last change or of the handover that
// followed it. A pending handover does not close it: a change of targets
// meanwhile is safe (every grant still waits for what it needs released),
// and a handover may wait long (a two-argument client's lease, the promise
// of a member dropped by a load). It is open whenever no live member holds
// a shard (the first members of a cluster, or after the last one went):
// then nothing is disturbed.
bool reshard_gate_open(ClusterEntry *cluster, int64 now);
// When the gate opens by time alone (now or earlier when open).
int64 reshard_gate_opens_at(const ClusterEntry *cluster, int64 now);

}  // namespace shard_coordinator
