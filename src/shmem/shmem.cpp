// Shared memory of shard_coordinator: creation, entries, slot sets. The
// locking protocol is described at the top of shmem.hpp.

#include "shmem/shmem.hpp"

#include <sys/mman.h>
#include <unistd.h>

extern "C" {
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

#include "module.hpp"

namespace shard_coordinator {

SharedState *shared = nullptr;
HTAB *cluster_table = nullptr;
HTAB *member_table = nullptr;
SlotSet *slot_sets = nullptr;
static HoldEntry *hold_pool = nullptr;

namespace {

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

// Slot sets: headers, then per set guc_max_slots entries (PolicyKey) and
// guc_max_slots pending keys.
Size slot_headers_size() {
  return MAXALIGN(mul_size(sizeof(SlotSet), guc_max_slot_clusters));
}

Size slot_entries_size() {
  return mul_size(mul_size(sizeof(PolicyKey), guc_max_slots),
                  guc_max_slot_clusters);
}

Size slot_area_size() {
  return add_size(add_size(slot_headers_size(), slot_entries_size()),
                  MAXALIGN(mul_size(mul_size(sizeof(int32), guc_max_slots),
                                    guc_max_slot_clusters)));
}

Size hold_pool_bytes() {
  return mul_size(sizeof(HoldEntry), static_cast<Size>(hold_pool_size()));
}

char *slot_area = nullptr;

Size shmem_size() {
  Size size = MAXALIGN(sizeof(SharedState));
  size = add_size(size, slot_area_size());
  size = add_size(size, hold_pool_bytes());
  size = add_size(size,
                  hash_estimate_size(guc_max_clusters, sizeof(ClusterEntry)));
  size =
      add_size(size, hash_estimate_size(guc_max_members, sizeof(MemberEntry)));
  size = add_size(size, PG_CACHE_LINE_SIZE);  // the end marker
  return size;
}

void request_shmem() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(shmem_size());
  RequestNamedLWLockTranche("shard_coordinator", 1);
}

// The keys are NUL-padded names: hashing only the name's bytes (rather
// than all 64 or 128 of the key, as HASH_BLOBS would) makes the lookups of
// the heartbeat path cheaper. Keys still compare whole (memcmp).
uint32 cluster_key_hash(const void *key, Size keysize) {
  const auto *k = static_cast<const ClusterKey *>(key);
  return hash_bytes(reinterpret_cast<const unsigned char *>(k->name),
                    static_cast<int>(strnlen(k->name, sizeof(k->name))));
}

uint32 member_key_hash(const void *key, Size keysize) {
  const auto *k = static_cast<const MemberKey *>(key);
  return hash_combine(
      hash_bytes_uint32(k->cluster_id),
      hash_bytes(reinterpret_cast<const unsigned char *>(k->name),
                 static_cast<int>(strnlen(k->name, sizeof(k->name)))));
}

void startup_shmem() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();

  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  shared = static_cast<SharedState *>(
      ShmemInitStruct("shard_coordinator", sizeof(SharedState), &found));
  if (!found) {
    shared->lock = &(GetNamedLWLockTranche("shard_coordinator"))->lock;
    ConditionVariableInit(&shared->changed_cv);
    shared->worker_latch = nullptr;
    shared->loaded = false;
    shared->reset_count = 0;
    shared->entry_generation = 1;
    shared->next_cluster_id = 1;
    shared->next_join_seq = 1;
    shared->cluster_count = 0;
    shared->member_count = 0;
    shared->stalls.clear();
    shared->timeline = 1;
    shared->free_holds = -1;
    shared->removed_epoch = 0;
  }

  slot_area = static_cast<char *>(
      ShmemInitStruct("shard_coordinator slot sets", slot_area_size(), &found));
  slot_sets = reinterpret_cast<SlotSet *>(slot_area);
  if (!found) memset(slot_area, 0, slot_area_size());

  hold_pool = static_cast<HoldEntry *>(
      ShmemInitStruct("shard_coordinator holds", hold_pool_bytes(), &found));
  if (!found) {
    for (int32 i = 0; i < hold_pool_size(); ++i) {
      hold_pool[i].cluster_id = 0;
      hold_pool[i].next = i + 1 < hold_pool_size() ? i + 1 : -1;
    }
    shared->free_holds = hold_pool_size() > 0 ? 0 : -1;
    shared->free_hold_count = hold_pool_size();
  }

  HASHCTL info;
  info.keysize = sizeof(ClusterKey);
  info.entrysize = sizeof(ClusterEntry);
  info.hash = cluster_key_hash;
  cluster_table = ShmemInitHash("shard_coordinator clusters", guc_max_clusters,
                                guc_max_clusters, &info,
                                HASH_ELEM | HASH_FUNCTION | HASH_FIXED_SIZE);
  info.keysize = sizeof(MemberKey);
  info.entrysize = sizeof(MemberEntry);
  info.hash = member_key_hash;
  member_table = ShmemInitHash("shard_coordinator members", guc_max_members,
                               guc_max_members, &info,
                               HASH_ELEM | HASH_FUNCTION | HASH_FIXED_SIZE);
  // Everything above was allocated in one run (the postmaster runs this
  // alone), so it lies between SharedState and this marker: the range that
  // populate_page_tables() maps.
  char *end =
      static_cast<char *>(ShmemInitStruct("shard_coordinator end", 1, &found));
  if (!found) {
    shared->area_start = reinterpret_cast<char *>(shared);
    shared->area_end = end;
  }
  LWLockRelease(AddinShmemInitLock);
}

void make_cluster_key(ClusterKey *key, const char *name, size_t len) {
  memset(key, 0, sizeof(*key));
  memcpy(key->name, name, len);
}

void make_member_key(MemberKey *key, uint32 cluster_id, const char *name,
                     size_t len) {
  memset(key, 0, sizeof(*key));
  key->cluster_id = cluster_id;
  memcpy(key->name, name, len);
}

}  // namespace

PolicyKey *slot_entries(int32 set) {
  return reinterpret_cast<PolicyKey *>(slot_area + slot_headers_size()) +
         static_cast<Size>(set) * guc_max_slots;
}

int32 *slot_pending_keys(int32 set) {
  return reinterpret_cast<int32 *>(slot_area + slot_headers_size() +
                                   slot_entries_size()) +
         static_cast<Size>(set) * guc_max_slots;
}

HoldEntry *hold_entries() { return hold_pool; }

int32 hold_pool_size() { return guc_max_members * 2 + 64; }

int32 count_cluster_holds(const ClusterEntry *cluster) {
  int32 n = 0;
  for (int32 i = cluster->holds_head; i >= 0; i = hold_pool[i].next) ++n;
  return n;
}

int32 hold_room(const ClusterEntry *cluster) {
  return shared->free_hold_count + count_cluster_holds(cluster);
}

int32 copy_cluster_holds(const ClusterEntry *cluster, PolicyHold *out) {
  int32 n = 0;
  for (int32 i = cluster->holds_head; i >= 0; i = hold_pool[i].next)
    out[n++] = hold_pool[i].hold;
  return n;
}

bool set_cluster_holds(ClusterEntry *cluster, const PolicyHold *holds,
                       int32 nholds) {
  // Room: the entries the cluster has now come back to the free list.
  if (hold_room(cluster) < nholds) return false;
  while (cluster->holds_head >= 0) {
    const int32 i = cluster->holds_head;
    cluster->holds_head = hold_pool[i].next;
    hold_pool[i].cluster_id = 0;
    hold_pool[i].next = shared->free_holds;
    shared->free_holds = i;
    shared->free_hold_count++;
  }
  for (int32 h = nholds - 1; h >= 0; --h) {
    const int32 i = shared->free_holds;
    shared->free_holds = hold_pool[i].next;
    shared->free_hold_count--;
    hold_pool[i].hold = holds[h];
    hold_pool[i].cluster_id = cluster->id;
    hold_pool[i].next = cluster->holds_head;
    cluster->holds_head = i;
  }
  return true;
}

namespace {

// Raises an atomic to at least `value`; returns the value it had.
uint64 raise_atomic(pg_atomic_uint64 *target, uint64 value) {
  uint64 current = pg_atomic_read_u64(target);
  while (value > current) {
    if (pg_atomic_compare_exchange_u64(target, &current, value)) break;
  }
  return current;
}

}  // namespace

bool acknowledge(const ClusterEntry *cluster, MemberEntry *member,
                 int64 epoch) {
  // What this member has been given: its published epoch. The step being
  // stored may have told it more already (its notices go at commit, shared
  // memory follows): that acknowledgement is kept aside until the step is
  // published (apply_acks_ahead()). Anything later (a stale client, one of
  // another timeline, a bogus value) counts only as far as it has been
  // given.
  const int64 given = member_epoch(cluster, member);
  if (epoch > given && epoch <= cluster->epoch_in_flight)
    raise_atomic(&member->ack_ahead, static_cast<uint64>(epoch));
  if (epoch > given) epoch = given;
  if (epoch <= 0) return false;
  const uint64 before =
      raise_atomic(&member->acked, static_cast<uint64>(epoch));
  // A new acknowledgement of a member that holds something may release a
  // hold: not only its oldest (hold_epoch), also a newer one made by a
  // later step, or one the step being stored is making. The grant step
  // decides; an acknowledgement that releases nothing costs one step.
  return static_cast<int64>(before) < epoch && member->hold_epoch > 0;
}

bool apply_acks_ahead(ClusterEntry *cluster, bool published) {
  bool released = false;
  dlist_iter iter;
  dlist_foreach(iter, &cluster->members) {
    auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
    const uint64 ahead = pg_atomic_exchange_u64(&member->ack_ahead, 0);
    if (!published || ahead == 0) continue;
    const int64 epoch =
        Min(static_cast<int64>(ahead), member_epoch(cluster, member));
    if (epoch <= 0) continue;
    const uint64 before =
        raise_atomic(&member->acked, static_cast<uint64>(epoch));
    if (member->hold_epoch > 0 && static_cast<int64>(before) < epoch)
      released = true;
  }
  return released;
}

int32 allocate_slot_set(uint32 cluster_id) {
  for (int32 i = 0; i < guc_max_slot_clusters; ++i) {
    if (slot_sets[i].cluster_id == 0) {
      slot_sets[i].cluster_id = cluster_id;
      slot_sets[i].count = 0;
      slot_sets[i].pending_count = -1;
      return i;
    }
  }
  return -1;
}

void free_slot_set(int32 set) {
  slot_sets[set].cluster_id = 0;
  slot_sets[set].count = 0;
  slot_sets[set].pending_count = -1;
}

int32 member_slots(int32 set, uint64 join_seq, int32 *out) {
  const PolicyKey *keys = slot_entries(set);
  int32 n = 0;
  for (int32 i = 0; i < slot_sets[set].count; ++i) {
    if (keys[i].grantee == join_seq) out[n++] = keys[i].key;
  }
  return n;
}

void install_shmem_hooks() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = request_shmem;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_shmem;
}

ClusterEntry *find_cluster(const char *name, size_t len) {
  ClusterKey key;
  make_cluster_key(&key, name, len);
  return static_cast<ClusterEntry *>(
      hash_search(cluster_table, &key, HASH_FIND, nullptr));
}

MemberEntry *find_member(const ClusterEntry *cluster, const char *name,
                         size_t len) {
  MemberKey key;
  make_member_key(&key, cluster->id, name, len);
  return static_cast<MemberEntry *>(
      hash_search(member_table, &key, HASH_FIND, nullptr));
}

ClusterEntry *create_cluster(const char *name, size_t len) {
  if (shared->cluster_count >= guc_max_clusters) return nullptr;
  ClusterKey key;
  make_cluster_key(&key, name, len);
  bool found = false;
  auto *cluster = static_cast<ClusterEntry *>(
      hash_search(cluster_table, &key, HASH_ENTER_NULL, &found));
  if (cluster == nullptr) return nullptr;
  if (found) return cluster;
  shared->cluster_count++;
  cluster->id = shared->next_cluster_id++;
  cluster->heartbeat_interval_us =
      static_cast<int64>(guc_heartbeat_interval_ms) * 1000;
  cluster->grace_period_us = static_cast<int64>(guc_grace_period_ms) * 1000;
  cluster->reshard_interval_us =
      static_cast<int64>(guc_reshard_interval_ms) * 1000;
  cluster->leases.clear();
  cluster->max_shards = 0;
  cluster->num_shards = 0;
  cluster->grant_count = 0;
  cluster->epoch = shared->removed_epoch;
  cluster->count_epoch = 0;
  cluster->shrink_epoch = 0;
  cluster->gate_from = 0;
  cluster->resharded_at = 0;
  cluster->handover = static_cast<HandoverMode>(guc_handover);
  cluster->exclusive_since = 0;
  cluster->reshard_wanted = false;
  cluster->reshard_fenced = false;
  cluster->handover_pending = false;
  cluster->epoch_in_flight = 0;
  pg_atomic_init_u32(&cluster->grant_check_wanted, 0);
  cluster->release_check_at = 0;
  cluster->grants_held_until = 0;
  cluster->max_lease_us =
      cluster->heartbeat_interval_us + cluster->grace_period_us;
  cluster->holds_head = -1;
  cluster->expiry_check_at = 0;
  cluster->retry_at = 0;
  // A new cluster's settings are not stored yet.
  cluster->config_generation = 1;
  cluster->stored_generation = 0;
  cluster->member_count = 0;
  dlist_init(&cluster->members);
  cluster->slot_set = -1;
  cluster->frozen = false;
  cluster->member_role = InvalidOid;
  cluster->admin_role = InvalidOid;
  memset(&cluster->member_role_name, 0, sizeof(NameData));
  memset(&cluster->admin_role_name, 0, sizeof(NameData));
  cluster->acl_serial = 0;
  cluster->fence_timeout_us = 0;
  cluster->fenced_since = 0;
  cluster->fence_stage = 0;
  cluster->reasons = 0;
  memset(&cluster->stats, 0, sizeof(cluster->stats));
  pg_atomic_init_u64(&cluster->stats.refused, 0);
  cluster->stats.since = GetCurrentTimestamp();
  cluster->history_next = 0;
  cluster->history_count = 0;
  memset(cluster->banned, 0, sizeof(cluster->banned));
  cluster->banned_next = 0;
  cluster->configured = false;
  cluster->dropping = false;
  cluster->empty_since = 0;
  return cluster;
}

MemberEntry *create_member(ClusterEntry *cluster, const char *name, size_t len,
                           int64 now, TimestampTz wall_now) {
  if (shared->member_count >= guc_max_members) return nullptr;
  MemberKey key;
  make_member_key(&key, cluster->id, name, len);
  bool found = false;
  auto *member = static_cast<MemberEntry *>(
      hash_search(member_table, &key, HASH_ENTER_NULL, &found));
  if (member == nullptr) return nullptr;
  if (found) return member;
  shared->member_count++;
  cluster->member_count++;
  dlist_push_tail(&cluster->members, &member->cluster_link);
  cluster->expiry_check_at = 0;
  pg_atomic_init_u64(&member->last_seen, static_cast<uint64>(now));
  member->joined_at = wall_now;
  member->join_seq = shared->next_join_seq++;
  // A registration is the member's own change: its epoch is the cluster's
  // (so the epochs a name sees never go back, not across registrations).
  member->epoch = cluster->epoch;
  pg_atomic_init_u64(&member->acked, 0);
  pg_atomic_init_u64(&member->ack_ahead, 0);
  member->incarnation = 0;
  member->hold_epoch = 0;
  member->release_deadline = 0;
  member->shard = kNoShard;
  member->state = MemberState::Pending;
  member->granted = false;
  member->leaving = false;
  member->departure_held = false;
  member->removing = false;
  member->load_mark = false;
  return member;
}

void remove_member(ClusterEntry *cluster, MemberEntry *member) {
  dlist_delete(&member->cluster_link);
  cluster->member_count--;
  shared->member_count--;
  MemberKey key = member->key;
  hash_search(member_table, &key, HASH_REMOVE, nullptr);
  // Pointers to entries that backends remember are void now.
  shared->entry_generation++;
}

bool cluster_is_empty(const ClusterEntry *cluster) {
  if (cluster->member_count > 0 || cluster->holds_head >= 0) return false;
  if (cluster->slot_set < 0) return true;
  const PolicyKey *keys = slot_entries(cluster->slot_set);
  for (int32 i = 0; i < slot_sets[cluster->slot_set].count; ++i)
    if (keys[i].holder != 0 || keys[i].grantee != 0) return false;
  return true;
}

void remove_cluster(ClusterEntry *cluster) {
  while (!dlist_is_empty(&cluster->members)) {
    auto *member = dlist_container(MemberEntry, cluster_link,
                                   dlist_head_node(&cluster->members));
    remove_member(cluster, member);
  }
  set_cluster_holds(cluster, nullptr, 0);
  if (cluster->slot_set >= 0) free_slot_set(cluster->slot_set);
  shared->removed_epoch = Max(shared->removed_epoch, cluster->epoch);
  shared->cluster_count--;
  ClusterKey key = cluster->key;
  hash_search(cluster_table, &key, HASH_REMOVE, nullptr);
  shared->entry_generation++;
}

void reset_all() {
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, member_table);
  while (auto *member = static_cast<MemberEntry *>(hash_seq_search(&status))) {
    MemberKey key = member->key;
    hash_search(member_table, &key, HASH_REMOVE, nullptr);
  }
  hash_seq_init(&status, cluster_table);
  while (auto *cluster =
             static_cast<ClusterEntry *>(hash_seq_search(&status))) {
    ClusterKey key = cluster->key;
    hash_search(cluster_table, &key, HASH_REMOVE, nullptr);
  }
  for (int32 i = 0; i < guc_max_slot_clusters; ++i) free_slot_set(i);
  for (int32 i = 0; i < hold_pool_size(); ++i) {
    hold_pool[i].cluster_id = 0;
    hold_pool[i].next = i + 1 < hold_pool_size() ? i + 1 : -1;
  }
  shared->free_holds = hold_pool_size() > 0 ? 0 : -1;
  shared->free_hold_count = hold_pool_size();
  shared->cluster_count = 0;
  shared->member_count = 0;
  shared->loaded = false;
  shared->reset_count++;
  shared->entry_generation++;
}

void populate_page_tables() {
#ifdef MADV_POPULATE_WRITE
  uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t from =
      reinterpret_cast<uintptr_t>(shared->area_start) & ~(page - 1);
  uintptr_t to = reinterpret_cast<uintptr_t>(shared->area_end);
  // Failure (an older kernel: EINVAL) only leaves the pages to be faulted in
  // one by one, as without this.
  (void)madvise(reinterpret_cast<void *>(from), to - from, MADV_POPULATE_WRITE);
#endif
}

TimestampTz mono_to_timestamp(int64 mono, int64 mono_now, TimestampTz now) {
  return now + (mono - mono_now);
}

void set_cluster_lease(ClusterEntry *cluster, int64 heartbeat_interval_us,
                       int64 grace_period_us, int64 now) {
  cluster->leases.change(
      cluster->heartbeat_interval_us + cluster->grace_period_us,
      heartbeat_interval_us + grace_period_us, now);
  cluster->heartbeat_interval_us = heartbeat_interval_us;
  cluster->grace_period_us = grace_period_us;
  cluster->max_lease_us =
      Max(cluster->max_lease_us, heartbeat_interval_us + grace_period_us);
}

bool reshard_gate_open(ClusterEntry *cluster, int64 now) {
  if (reshard_gate_opens_at(cluster, now) <= now) return true;
  dlist_iter iter;
  dlist_foreach(iter, &cluster->members) {
    auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
    if (member->state == MemberState::Active && !member->leaving &&
        !member->removing && expiry_deadline(cluster, member) > now)
      return false;
  }
  return true;
}

int64 reshard_gate_opens_at(const ClusterEntry *cluster, int64 now) {
  if (cluster->gate_from == 0) return now;
  return cluster->gate_from + cluster->reshard_interval_us;
}

void wake_worker() {
  Latch *latch = shared->worker_latch;
  if (latch != nullptr) SetLatch(latch);
}

}  // namespace shard_coordinator
