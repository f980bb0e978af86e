// SQL entry points: heartbeat, leave, channel, configure and the functions
// behind the views.
//
// These are thin extern "C" functions written in C style: they hold no C++
// objects with destructors, and the only C++ code they call is noexcept (name
// checks, channel names), so neither a PostgreSQL ERROR nor a C++ exception
// can cross the other's frames. Every ereport(ERROR) here happens with the
// shared lock released.

#include "pg_prelude.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/int.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include "fence.hpp"
#include "jump_hash.hpp"
#include "module.hpp"
#include "names.hpp"
#include "notify_payload.hpp"
#include "shmem.hpp"

using namespace shard_coordinator;

namespace {

// How long a call waits for the background worker (load, store, removal).
constexpr long kWorkerWaitMs = 10000;

struct NameArg {
  const char *data;
  size_t len;
};

NameArg get_name_arg(FunctionCallInfo fcinfo, int argno, const char *what,
                     size_t max) {
  if (PG_ARGISNULL(argno))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("%s must not be NULL", what),
                    errhint("Pass a name of 1 to %zu bytes.", max)));
  text *arg = PG_GETARG_TEXT_PP(argno);
  NameArg name{VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg)};
  switch (check_name(name.data, name.len, max)) {
    case NameProblem::None:
      break;
    case NameProblem::Empty:
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("%s must not be empty", what),
                      errhint("Pass a name of 1 to %zu bytes.", max)));
      break;
    case NameProblem::TooLong:
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("%s is too long (%zu bytes)", what, name.len),
                      errdetail("The limit is %zu bytes.", max),
                      errhint("Use a shorter name.")));
      break;
    case NameProblem::ControlCharacter:
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("%s must not contain control characters", what),
                      errhint("Use printable characters only.")));
      break;
  }
  return name;
}

void require_preloaded() {
  if (!loaded_at_startup || shared == nullptr)
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("shard_coordinator must be loaded via "
                    "shared_preload_libraries"),
             errhint("Add shard_coordinator to shared_preload_libraries in "
                     "postgresql.conf and restart the server.")));
}

// Once per backend: is this the database the worker runs in?
void require_coordinator_database() {
  static bool checked = false;
  if (checked) return;
  char *current = get_database_name(MyDatabaseId);
  if (current == nullptr || strcmp(current, guc_database) != 0)
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("shard_coordinator runs in database \"%s\", not in "
                    "\"%s\"",
                    guc_database, current ? current : "?"),
             errhint("Connect to database \"%s\", or set "
                     "shard_coordinator.database = '%s' in postgresql.conf "
                     "and restart the server.",
                     guc_database, current ? current : "?")));
  checked = true;
}

void require_primary() {
  if (RecoveryInProgress())
    ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                    errmsg("shard_coordinator cannot coordinate on a standby "
                           "server"),
                    errhint("Connect to the primary, for example with "
                            "target_session_attrs=read-write in the connection "
                            "string.")));
}

// Waits until the worker has loaded the tables into shared memory.
void require_loaded() {
  if (shared->loaded) return;
  TimestampTz give_up =
      TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kWorkerWaitMs);
  ConditionVariablePrepareToSleep(&shared->changed_cv);
  while (!shared->loaded) {
    wake_worker();
    if (GetCurrentTimestamp() >= give_up) {
      ConditionVariableCancelSleep();
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
               errmsg("shard_coordinator is not ready"),
               errdetail("The background worker has not loaded the "
                         "coordination state within %ld ms.",
                         kWorkerWaitMs),
               errhint("Check that the shard_coordinator background worker "
                       "runs (pg_stat_activity) and read the server log.")));
    }
    ConditionVariableTimedSleep(&shared->changed_cv, 100, PG_WAIT_EXTENSION);
  }
  ConditionVariableCancelSleep();
}

// The checks every coordinating call makes, cheapest first.
void require_ready_for_writes() {
  require_preloaded();
  require_primary();
  require_coordinator_database();
  require_loaded();
}

// An interval in microseconds (a month counts 30 days, a day 24 hours);
// false if that does not fit in 64 bits.
bool interval_to_us(const Interval *value, int64 *out) {
  int64 days_us = 0;
  int64 months_us = 0;
  return !pg_mul_s64_overflow(static_cast<int64>(value->month),
                              INT64CONST(30) * USECS_PER_DAY, &months_us) &&
         !pg_mul_s64_overflow(static_cast<int64>(value->day), USECS_PER_DAY,
                              &days_us) &&
         !pg_add_s64_overflow(months_us, days_us, out) &&
         !pg_add_s64_overflow(*out, value->time, out);
}

Interval *us_to_interval(int64 us) {
  auto *value = static_cast<Interval *>(palloc0(sizeof(Interval)));
  value->time = us;
  return value;
}

// Reads an optional interval argument; NULL leaves *out untouched.
bool get_interval_arg(FunctionCallInfo fcinfo, int argno, const char *what,
                      bool allow_zero, int64 *out) {
  if (PG_ARGISNULL(argno)) return false;
  const Interval *value = PG_GETARG_INTERVAL_P(argno);
  int64 us = 0;
  bool fits = interval_to_us(value, &us);
  // The sign of a value too large for 64 bits: that of its largest unit.
  bool negative =
      fits ? us < 0
           : (value->month != 0
                  ? value->month < 0
                  : (value->day != 0 ? value->day < 0 : value->time < 0));
  if (negative || (fits && us == 0 && !allow_zero))
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("%s must be %s", what,
                           allow_zero ? "zero or positive" : "positive"),
                    errhint("Use a value from %s to 1 day, or NULL to keep the "
                            "current one.",
                            allow_zero ? "0" : "1 ms")));
  if (!fits || us > kMaxIntervalUs)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("%s must be at most 1 day", what),
                    errhint("Use a value from %s to 1 day, or NULL to keep the "
                            "current one.",
                            allow_zero ? "0" : "1 ms")));
  *out = us;
  return true;
}

int cmp_int32(const void *a, const void *b) {
  const int32 x = *static_cast<const int32 *>(a);
  const int32 y = *static_cast<const int32 *>(b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

// Reads the optional slots argument: NULL keeps (*nkeys = -1), '{}' leaves
// slot mode (*nkeys = 0), else the keys ascending.
int32 *get_slots_arg(FunctionCallInfo fcinfo, int argno, int32 *nkeys) {
  *nkeys = -1;
  if (PG_ARGISNULL(argno)) return nullptr;
  ArrayType *array = PG_GETARG_ARRAYTYPE_P(argno);
  if (ARR_NDIM(array) > 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("slots must be a one-dimensional array"),
                    errhint("Pass the keys as integer[], or '{}' to leave "
                            "slot mode.")));
  Datum *elems = nullptr;
  bool *elem_nulls = nullptr;
  int n = 0;
  deconstruct_array(array, INT4OID, 4, true, TYPALIGN_INT, &elems, &elem_nulls,
                    &n);
  if (n > guc_max_slots)
    ereport(ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("slots has %d keys; the limit is %d", n, guc_max_slots),
             errhint("Raise shard_coordinator.max_slots and restart the "
                     "server.")));
  auto *keys = static_cast<int32 *>(
      palloc(sizeof(int32) * static_cast<size_t>(Max(n, 1))));
  for (int i = 0; i < n; ++i) {
    if (elem_nulls[i])
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                      errmsg("slots must not contain NULL"),
                      errhint("Remove the NULL elements.")));
    keys[i] = DatumGetInt32(elems[i]);
  }
  qsort(keys, static_cast<size_t>(n), sizeof(int32), cmp_int32);
  for (int i = 1; i < n; ++i) {
    if (keys[i] == keys[i - 1])
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("slots must not contain duplicates"),
                      errdetail("Key %d appears more than once.", keys[i]),
                      errhint("Pass each key once.")));
  }
  *nkeys = n;
  return keys;
}

TupleDesc result_tupdesc(FunctionCallInfo fcinfo) {
  auto cached = static_cast<TupleDesc>(fcinfo->flinfo->fn_extra);
  if (cached != nullptr) return cached;
  TupleDesc tupdesc;
  if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("function returning record called in context "
                           "that cannot accept type record")));
  MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
  cached = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
  MemoryContextSwitchTo(old);
  fcinfo->flinfo->fn_extra = cached;
  return cached;
}

text *channel_text(NameArg cluster, NameArg member) {
  char buf[kChannelNameMax + 1];
  size_t len =
      channel_name(cluster.data, cluster.len, member.data, member.len, buf);
  return cstring_to_text_with_len(buf, static_cast<int>(len));
}

// What a heartbeat reports, copied out under the lock.
struct HeartbeatResult {
  MemberState state;
  int32 shard;
  int32 num_shards;
  int64 epoch;
  int64 heartbeat_interval_us;
  int64 lease_us;  // the promise: from the stamp, this long
  int32 *slots;    // NULL unless active in a cluster with a slot set
  int32 nslots;
};

// The member's slot keys as an int4[] Datum (caller holds the lock), or NULL
// when the cluster has no published slot set or the member is not active.
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

Datum slots_datum(const int32 *slots, int32 nslots) {
  auto *elems = static_cast<Datum *>(
      palloc(sizeof(Datum) * static_cast<size_t>(Max(nslots, 1))));
  for (int32 i = 0; i < nslots; ++i) elems[i] = Int32GetDatum(slots[i]);
  return PointerGetDatum(
      construct_array(elems, nslots, INT4OID, 4, true, TYPALIGN_INT));
}

// Stamps the member's heartbeat (caller holds the lock in either mode) and
// copies what its row reports: the row promises the assignment for the
// lease in force now.
void stamp_and_fill(const ClusterEntry *cluster, MemberEntry *member, int64 now,
                    HeartbeatResult *out) {
  pg_atomic_write_u64(&member->last_seen, static_cast<uint64>(now));
  out->state = member->state;
  out->shard = member->shard;
  out->num_shards = cluster->num_shards;
  out->epoch =
      member->state == MemberState::Pending ? cluster->epoch : member->epoch;
  out->heartbeat_interval_us = cluster->heartbeat_interval_us;
  out->lease_us = lease_at(cluster, now);
  out->slots = copy_member_slots(cluster, member, &out->nslots);
}

enum class HeartbeatStep { Done, Register, WaitForRemoval };

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
                              HeartbeatResult *out) {
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
  if (member != nullptr && member->removing) {
    step = HeartbeatStep::WaitForRemoval;
  } else if (member != nullptr && !member->leaving) {
    stamp_and_fill(cluster, member, mono_now_us(), out);
    step = HeartbeatStep::Done;
  }
  LWLockRelease(shared->lock);
  if (pooled && !populated) {
    populated = true;
    populate_page_tables();
  }
  return step;
}

enum class RegisterOutcome { Done, ClustersFull, MembersFull, Retry };

// Registers a new member (or takes back a leave()).
RegisterOutcome heartbeat_register(NameArg cluster_name, NameArg member_name,
                                   HeartbeatResult *out) {
  RegisterOutcome outcome = RegisterOutcome::Done;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  const int64 now = mono_now_us();
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  if (cluster == nullptr && shared->member_count >= guc_max_members) {
    // Refused: do not leave an empty cluster behind.
    outcome = RegisterOutcome::MembersFull;
  } else if (cluster == nullptr &&
             (cluster = create_cluster(cluster_name.data, cluster_name.len)) ==
                 nullptr) {
    outcome = RegisterOutcome::ClustersFull;
  } else {
    MemberEntry *member =
        find_member(cluster, member_name.data, member_name.len);
    if (member != nullptr && member->removing) {
      outcome = RegisterOutcome::Retry;
    } else {
      if (member == nullptr) {
        member = create_member(cluster, member_name.data, member_name.len, now,
                               GetCurrentTimestamp());
        if (member != nullptr) cluster->reshard_wanted = true;
      } else if (member->leaving) {
        // A heartbeat after leave() but before the reshard: still a member.
        member->leaving = false;
      }
      if (member == nullptr) {
        outcome = RegisterOutcome::MembersFull;
      } else {
        stamp_and_fill(cluster, member, now, out);
      }
    }
  }
  LWLockRelease(shared->lock);
  return outcome;
}

// Whether the worker has a reshard of this cluster held up by fences.
bool reshard_held_by_fences(NameArg cluster_name) {
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  bool fenced = cluster != nullptr && cluster->reshard_fenced;
  LWLockRelease(shared->lock);
  return fenced;
}

// Waits (bounded) for the worker to publish whatever it is doing now.
void wait_for_publish() {
  ConditionVariablePrepareToSleep(&shared->changed_cv);
  wake_worker();
  ConditionVariableTimedSleep(&shared->changed_cv, 100, PG_WAIT_EXTENSION);
  ConditionVariableCancelSleep();
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(sc_heartbeat);
PG_FUNCTION_INFO_V1(sc_leave);
PG_FUNCTION_INFO_V1(sc_channel);
PG_FUNCTION_INFO_V1(sc_cluster_channel);
PG_FUNCTION_INFO_V1(sc_configure);
PG_FUNCTION_INFO_V1(sc_live_members);
PG_FUNCTION_INFO_V1(sc_live_clusters);
PG_FUNCTION_INFO_V1(sc_is_live);
PG_FUNCTION_INFO_V1(sc_install_check);
PG_FUNCTION_INFO_V1(sc_jump_hash_bigint);
PG_FUNCTION_INFO_V1(sc_jump_hash_text);
PG_FUNCTION_INFO_V1(sc_fence);

Datum sc_heartbeat(PG_FUNCTION_ARGS) {
  NameArg cluster = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  require_ready_for_writes();

  HeartbeatResult result;
  // Read before the stamp, so that expires_at never overstates the promise.
  const TimestampTz wall_now = GetCurrentTimestamp();
  TimestampTz give_up =
      0;  // set on the first wait only: keep the hot path lean
  for (;;) {
    HeartbeatStep step = heartbeat_known(cluster, member, &result);
    if (step == HeartbeatStep::Done) break;
    if (step == HeartbeatStep::Register) {
      RegisterOutcome outcome = heartbeat_register(cluster, member, &result);
      if (outcome == RegisterOutcome::Done) {
        wake_worker();
        break;
      }
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

  TupleDesc tupdesc = result_tupdesc(fcinfo);
  Datum values[8];
  bool nulls[8] = {false, false, false, false, false, false, false, false};
  if (result.state == MemberState::Active) {
    values[0] = Int32GetDatum(result.shard);
  } else {
    values[0] = static_cast<Datum>(0);
    nulls[0] = true;
  }
  values[1] = Int32GetDatum(result.num_shards);
  values[2] = Int64GetDatum(result.epoch);
  values[3] = CStringGetTextDatum(state_name(result.state));
  values[4] = PointerGetDatum(channel_text(cluster, member));
  values[5] = IntervalPGetDatum(us_to_interval(result.heartbeat_interval_us));
  values[6] = TimestampTzGetDatum(wall_now + result.lease_us);
  if (result.slots != nullptr) {
    values[7] = slots_datum(result.slots, result.nslots);
  } else {
    values[7] = static_cast<Datum>(0);
    nulls[7] = true;
  }
  PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum sc_leave(PG_FUNCTION_ARGS) {
  NameArg cluster_name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member_name = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  require_ready_for_writes();

  bool known = false;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  MemberEntry *member =
      cluster ? find_member(cluster, member_name.data, member_name.len)
              : nullptr;
  if (member != nullptr) {
    known = true;
    if (!member->removing) {
      member->leaving = true;
      cluster->reshard_wanted = true;
    }
  }
  LWLockRelease(shared->lock);
  if (known) wake_worker();
  PG_RETURN_BOOL(known);
}

Datum sc_channel(PG_FUNCTION_ARGS) {
  NameArg cluster = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  PG_RETURN_TEXT_P(channel_text(cluster, member));
}

Datum sc_cluster_channel(PG_FUNCTION_ARGS) {
  NameArg cluster = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  char buf[kChannelNameMax + 1];
  size_t len = cluster_channel_name(cluster.data, cluster.len, buf);
  PG_RETURN_TEXT_P(cstring_to_text_with_len(buf, static_cast<int>(len)));
}

Datum sc_configure(PG_FUNCTION_ARGS) {
  NameArg cluster_name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  int64 heartbeat_us = 0;
  int64 grace_us = 0;
  int64 reshard_us = 0;
  bool set_heartbeat =
      get_interval_arg(fcinfo, 1, "heartbeat_interval", false, &heartbeat_us);
  bool set_grace = get_interval_arg(fcinfo, 2, "grace_period", true, &grace_us);
  bool set_reshard =
      get_interval_arg(fcinfo, 3, "reshard_interval", true, &reshard_us);
  bool set_max = !PG_ARGISNULL(4);
  int32 max_shards = set_max ? PG_GETARG_INT32(4) : 0;
  bool clear_max = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
  if (set_max && max_shards < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("max_shards must be at least 1"),
                    errhint("Use clear_max_shards => true to remove the "
                            "cap.")));
  if (set_max && clear_max)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("max_shards and clear_max_shards cannot both be "
                           "given"),
                    errhint("Pass max_shards to set a cap, or "
                            "clear_max_shards => true to remove it.")));
  int32 nkeys = -1;  // -1: keep the slot set
  int32 *keys = get_slots_arg(fcinfo, 6, &nkeys);
  require_ready_for_writes();

  bool full = false;
  bool no_slot_set = false;
  uint64 generation = 0;
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  // Everything that can refuse is checked before anything changes: a
  // refused call creates no cluster.
  int32 new_set = -1;
  if (nkeys > 0 && (cluster == nullptr || cluster->slot_set < 0)) {
    new_set = allocate_slot_set(0);
    no_slot_set = new_set < 0;
  }
  if (!no_slot_set && cluster == nullptr) {
    cluster = create_cluster(cluster_name.data, cluster_name.len);
    full = cluster == nullptr;
    if (full && new_set >= 0) free_slot_set(new_set);
  }
  if (!no_slot_set && !full) {
    if (new_set >= 0) {
      slot_sets[new_set].cluster_id = cluster->id;
      cluster->slot_set = new_set;
    }
    if (nkeys >= 0 && cluster->slot_set >= 0) {
      // Applied by the worker at the next reshard.
      SlotSet &set = slot_sets[cluster->slot_set];
      if (nkeys > 0)
        memcpy(slot_pending_keys(cluster->slot_set), keys,
               sizeof(int32) * static_cast<size_t>(nkeys));
      set.pending_count = nkeys;
      set.pending_serial++;
      cluster->reshard_wanted = true;
    }
    // Promises already made are kept (set_cluster_lease).
    set_cluster_lease(
        cluster, set_heartbeat ? heartbeat_us : cluster->heartbeat_interval_us,
        set_grace ? grace_us : cluster->grace_period_us, mono_now_us());
    // Deadlines may have moved earlier.
    if (set_heartbeat || set_grace) cluster->expiry_check_at = 0;
    if (set_reshard) cluster->reshard_interval_us = reshard_us;
    int32 new_max =
        clear_max ? 0 : (set_max ? max_shards : cluster->max_shards);
    if (new_max != cluster->max_shards) {
      cluster->max_shards = new_max;
      cluster->reshard_wanted = true;
    }
    generation = ++cluster->config_generation;
  }
  LWLockRelease(shared->lock);
  if (no_slot_set)
    ereport(ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("cannot give cluster \"%.*s\" a slot set: all %d slot "
                    "sets are in use",
                    static_cast<int>(cluster_name.len), cluster_name.data,
                    guc_max_slot_clusters),
             errhint("Raise shard_coordinator.max_slot_clusters and restart "
                     "the server.")));
  if (full)
    ereport(ERROR,
            (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
             errmsg("cannot create cluster \"%.*s\": all %d cluster slots "
                    "are in use",
                    static_cast<int>(cluster_name.len), cluster_name.data,
                    guc_max_clusters),
             errhint("Raise shard_coordinator.max_clusters and restart the "
                     "server.")));
  wake_worker();

  // Return once the worker has stored the settings, so that they survive a
  // crash and show in the table (bounded wait).
  TimestampTz give_up =
      TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kWorkerWaitMs);
  ConditionVariablePrepareToSleep(&shared->changed_cv);
  for (;;) {
    LWLockAcquire(shared->lock, LW_SHARED);
    cluster = find_cluster(cluster_name.data, cluster_name.len);
    bool stored =
        cluster == nullptr || cluster->stored_generation >= generation;
    LWLockRelease(shared->lock);
    if (stored) break;
    if (GetCurrentTimestamp() >= give_up) {
      ConditionVariableCancelSleep();
      ereport(WARNING,
              (errmsg("settings of cluster \"%.*s\" apply now but the "
                      "background worker has not stored them yet",
                      static_cast<int>(cluster_name.len), cluster_name.data)));
      PG_RETURN_VOID();
    }
    ConditionVariableTimedSleep(&shared->changed_cv, 100, PG_WAIT_EXTENSION);
  }
  ConditionVariableCancelSleep();
  PG_RETURN_VOID();
}

// The views copy what they show under the shared lock and build their rows
// after releasing it: building a tuplestore can spill to disk, and every
// join and reshard needs the lock exclusively.

// A cluster's published slot keys and their owners, copied.
struct SlotsCopy {
  int32 count;
  int32 *keys;
  uint64 *owners;
};

SlotsCopy copy_slots(const ClusterEntry *cluster) {
  SlotsCopy copy{0, nullptr, nullptr};
  if (cluster->slot_set < 0 || slot_sets[cluster->slot_set].count == 0)
    return copy;
  copy.count = slot_sets[cluster->slot_set].count;
  const size_t n = static_cast<size_t>(copy.count);
  copy.keys = static_cast<int32 *>(palloc(sizeof(int32) * n));
  copy.owners = static_cast<uint64 *>(palloc(sizeof(uint64) * n));
  memcpy(copy.keys, slot_keys(cluster->slot_set), sizeof(int32) * n);
  memcpy(copy.owners, slot_owners(cluster->slot_set), sizeof(uint64) * n);
  return copy;
}

// The keys of the member with this join_seq, as an int4[] Datum.
Datum owned_slots_datum(const SlotsCopy &slots, uint64 join_seq) {
  auto *keys = static_cast<int32 *>(
      palloc(sizeof(int32) * static_cast<size_t>(Max(slots.count, 1))));
  int32 n = 0;
  for (int32 i = 0; i < slots.count; ++i) {
    if (slots.owners[i] == join_seq) keys[n++] = slots.keys[i];
  }
  return slots_datum(keys, n);
}

struct MemberRow {
  char *cluster;
  char *member;
  int32 shard;
  int32 num_shards;
  int64 epoch;
  MemberState state;
  const char *shown_state;
  int64 stamp;    // monotonic
  int64 promise;  // monotonic
  TimestampTz joined_at;
  uint64 join_seq;
  const SlotsCopy *slots;  // NULL: no slot set
};

// One row per member, from shared memory.
Datum sc_live_members(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

  MemberRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  const int64 now = mono_now_us();
  if (shared->loaded) {
    rows = static_cast<MemberRow *>(palloc(
        sizeof(MemberRow) * static_cast<size_t>(Max(shared->member_count, 1))));
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      SlotsCopy *slots = nullptr;
      if (cluster->slot_set >= 0 && cluster->member_count > 0) {
        slots = static_cast<SlotsCopy *>(palloc(sizeof(SlotsCopy)));
        *slots = copy_slots(cluster);
      }
      char *cluster_name = pstrdup(cluster->key.name);
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        if (nrows >= shared->member_count) break;  // cannot happen
        MemberRow &row = rows[nrows++];
        row.cluster = cluster_name;
        row.member = pstrdup(member->key.name);
        row.shard = member->shard;
        row.num_shards = cluster->num_shards;
        row.epoch = member->epoch;
        row.state = member->state;
        row.shown_state = state_name(member->state);
        if (member->leaving || member->removing)
          row.shown_state = "leaving";
        else if (expiry_deadline(cluster, member) <= now)
          row.shown_state = "expired";
        row.stamp = member_stamp(member);
        row.promise = promise_end(cluster, member);
        row.joined_at = member->joined_at;
        row.join_seq = member->join_seq;
        row.slots = slots;
      }
    }
  }
  LWLockRelease(shared->lock);

  const TimestampTz wall_now = GetCurrentTimestamp();
  for (int32 i = 0; i < nrows; ++i) {
    const MemberRow &row = rows[i];
    Datum values[10];
    bool nulls[10] = {false, false, false, false, false,
                      false, false, false, false, false};
    values[0] = CStringGetTextDatum(row.cluster);
    values[1] = CStringGetTextDatum(row.member);
    values[2] = Int32GetDatum(row.shard);
    nulls[2] = row.state != MemberState::Active;
    values[3] = Int32GetDatum(row.num_shards);
    values[4] = Int64GetDatum(row.epoch);
    nulls[4] = row.state == MemberState::Pending;
    values[5] = CStringGetTextDatum(row.shown_state);
    values[6] =
        TimestampTzGetDatum(mono_to_timestamp(row.stamp, now, wall_now));
    values[7] =
        TimestampTzGetDatum(mono_to_timestamp(row.promise, now, wall_now));
    values[8] = TimestampTzGetDatum(row.joined_at);
    values[9] = static_cast<Datum>(0);
    nulls[9] = true;
    if (row.slots != nullptr && row.slots->count > 0 &&
        row.state == MemberState::Active) {
      values[9] = owned_slots_datum(*row.slots, row.join_seq);
      nulls[9] = false;
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

struct ClusterRow {
  char *cluster;
  int64 heartbeat_interval_us;
  int64 grace_period_us;
  int64 reshard_interval_us;
  int32 max_shards;
  int64 epoch;
  int32 num_shards;
  int32 members;
  int32 counts[3];  // indexed by MemberState
  TimestampTz resharded_at;
  SlotsCopy slots;
  bool fenced;
};

// One row per cluster, from shared memory.
Datum sc_live_clusters(PG_FUNCTION_ARGS) {
  require_preloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

  ClusterRow *rows = nullptr;
  int32 nrows = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  if (shared->loaded) {
    rows = static_cast<ClusterRow *>(
        palloc0(sizeof(ClusterRow) *
                static_cast<size_t>(Max(shared->cluster_count, 1))));
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cluster_table);
    while (auto *cluster =
               static_cast<ClusterEntry *>(hash_seq_search(&status))) {
      if (nrows >= shared->cluster_count) {  // cannot happen
        hash_seq_term(&status);
        break;
      }
      ClusterRow &row = rows[nrows++];
      row.cluster = pstrdup(cluster->key.name);
      row.heartbeat_interval_us = cluster->heartbeat_interval_us;
      row.grace_period_us = cluster->grace_period_us;
      row.reshard_interval_us = cluster->reshard_interval_us;
      row.max_shards = cluster->max_shards;
      row.epoch = cluster->epoch;
      row.num_shards = cluster->num_shards;
      row.members = cluster->member_count;
      dlist_iter iter;
      dlist_foreach(iter, &cluster->members) {
        auto *member = dlist_container(MemberEntry, cluster_link, iter.cur);
        row.counts[static_cast<int>(member->state)]++;
      }
      row.resharded_at = cluster->resharded_at;
      row.slots = copy_slots(cluster);
      row.fenced = cluster->reshard_fenced;
    }
  }
  LWLockRelease(shared->lock);

  for (int32 i = 0; i < nrows; ++i) {
    const ClusterRow &row = rows[i];
    Datum values[14];
    bool nulls[14] = {false, false, false, false, false, false, false,
                      false, false, false, false, false, false, false};
    values[0] = CStringGetTextDatum(row.cluster);
    values[1] = IntervalPGetDatum(us_to_interval(row.heartbeat_interval_us));
    values[2] = IntervalPGetDatum(us_to_interval(row.grace_period_us));
    values[3] = IntervalPGetDatum(us_to_interval(row.reshard_interval_us));
    values[4] = Int32GetDatum(row.max_shards);
    nulls[4] = row.max_shards == 0;
    values[5] = Int64GetDatum(row.epoch);
    values[6] = Int32GetDatum(row.num_shards);
    values[7] = Int32GetDatum(row.members);
    values[8] =
        Int32GetDatum(row.counts[static_cast<int>(MemberState::Active)]);
    values[9] =
        Int32GetDatum(row.counts[static_cast<int>(MemberState::Standby)]);
    values[10] =
        Int32GetDatum(row.counts[static_cast<int>(MemberState::Pending)]);
    values[11] = TimestampTzGetDatum(row.resharded_at);
    nulls[11] = row.resharded_at == 0;
    values[12] = static_cast<Datum>(0);
    nulls[12] = row.slots.count == 0;
    if (row.slots.count > 0)
      values[12] = slots_datum(row.slots.keys, row.slots.count);
    values[13] = BoolGetDatum(row.fenced);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

Datum sc_is_live(PG_FUNCTION_ARGS) {
  PG_RETURN_BOOL(shared != nullptr && shared->loaded);
}

// Run by CREATE EXTENSION: refuse early and clearly, and start from a clean
// shared memory so that nothing of a dropped installation survives.
Datum sc_install_check(PG_FUNCTION_ARGS) {
  require_preloaded();
  require_coordinator_database();
  LWLockAcquire(shared->lock, LW_EXCLUSIVE);
  reset_all();
  LWLockRelease(shared->lock);
  wake_worker();
  PG_RETURN_VOID();
}

static void require_buckets(int32 buckets) {
  if (buckets < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("buckets must be at least 1"),
                    errhint("Pass the number of shards.")));
}

Datum sc_jump_hash_bigint(PG_FUNCTION_ARGS) {
  int64 key = PG_GETARG_INT64(0);
  int32 buckets = PG_GETARG_INT32(1);
  require_buckets(buckets);
  PG_RETURN_INT32(jump_consistent_hash(static_cast<uint64>(key), buckets));
}

Datum sc_jump_hash_text(PG_FUNCTION_ARGS) {
  text *key = PG_GETARG_TEXT_PP(0);
  int32 buckets = PG_GETARG_INT32(1);
  require_buckets(buckets);
  PG_RETURN_INT32(jump_consistent_hash_bytes(VARDATA_ANY(key),
                                             VARSIZE_ANY_EXHDR(key), buckets));
}

// Succeeds only while the member's assignment is still the one it received
// at `epoch`; then holds every reshard of the cluster until this transaction
// ends (fence.hpp).
Datum sc_fence(PG_FUNCTION_ARGS) {
  NameArg cluster_name = get_name_arg(fcinfo, 0, "cluster", kClusterNameMax);
  NameArg member_name = get_name_arg(fcinfo, 1, "member", kMemberNameMax);
  if (PG_ARGISNULL(2))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("epoch must not be NULL"),
                    errhint("Pass the epoch of the assignment the work was "
                            "done under, from the heartbeat row.")));
  int64 epoch = PG_GETARG_INT64(2);
  require_ready_for_writes();

  // A reshard the worker could not run because of fences goes first: a new
  // fence fails at once, so a stream of overlapping fences cannot hold it
  // off for ever. It fails rather than waits: a wait outside the lock
  // manager would be invisible to the deadlock detector and lock_timeout
  // (two transactions that each fence the cluster the other holds up). A
  // transaction that already holds the fence lock goes on (it is one of
  // those the reshard waits for).
  if (!fence_lock_held_by_me(cluster_name.data, cluster_name.len) &&
      reshard_held_by_fences(cluster_name))
    ereport(ERROR,
            (errcode(kFenceSqlstate),
             errmsg("cannot fence member \"%.*s\" in cluster \"%.*s\": a "
                    "reshard of the cluster is pending",
                    static_cast<int>(member_name.len), member_name.data,
                    static_cast<int>(cluster_name.len), cluster_name.data),
             errdetail("A reshard is due and waits for transactions that "
                       "fenced the cluster; it goes before new fences."),
             errhint("Roll back, heartbeat for the current assignment and "
                     "retry.")));

  // Taken before the check: a reshard in flight (between its snapshot and
  // its publication) holds the lock exclusively, so once we have it shared
  // memory shows the latest committed assignment, and it cannot change
  // until we commit or abort.
  acquire_fence_lock(cluster_name.data, cluster_name.len);

  // Why the assignment is not current, if it is not.
  const char *reason = nullptr;
  int32 shard = kNoShard;
  int64 member_epoch = 0;
  int64 cluster_epoch = 0;
  LWLockAcquire(shared->lock, LW_SHARED);
  ClusterEntry *cluster = find_cluster(cluster_name.data, cluster_name.len);
  MemberEntry *member =
      cluster ? find_member(cluster, member_name.data, member_name.len)
              : nullptr;
  if (member == nullptr) {
    reason = "is not registered";
  } else {
    shard = member->shard;
    member_epoch = member->epoch;
    cluster_epoch = cluster->epoch;
    if (member->state == MemberState::Pending)
      reason = "is pending (not assigned yet)";
    else if (member->state == MemberState::Standby)
      reason = "is standby (holds no shard)";
    else if (member->leaving || member->removing)
      reason = "is leaving";
    else if (promise_end(cluster, member) <= mono_now_us())
      reason = "has expired (its lease ran out)";
    else if (epoch > cluster_epoch)
      reason = "was given an epoch the cluster has not reached";
    else if (member_epoch > epoch)
      reason = "was reassigned after that epoch";
  }
  LWLockRelease(shared->lock);

  if (reason != nullptr)
    ereport(
        ERROR,
        (errcode(kFenceSqlstate),
         errmsg("assignment of member \"%.*s\" in cluster \"%.*s\" at "
                "epoch %lld is no longer current",
                static_cast<int>(member_name.len), member_name.data,
                static_cast<int>(cluster_name.len), cluster_name.data,
                static_cast<long long>(epoch)),
         member == nullptr ? errdetail("The member %s.", reason)
         : shard == kNoShard
             ? errdetail("The member %s; cluster epoch %lld.", reason,
                         static_cast<long long>(cluster_epoch))
             : errdetail("The member %s; it holds shard %d since epoch "
                         "%lld, cluster epoch %lld.",
                         reason, shard, static_cast<long long>(member_epoch),
                         static_cast<long long>(cluster_epoch)),
         errhint("Roll back, stop working under this assignment and "
                 "heartbeat for the current one.")));
  PG_RETURN_VOID();
}

}  // extern "C"
