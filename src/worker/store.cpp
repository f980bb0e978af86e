// The transaction that stores one step and queues its notifications:
//   1. the cluster row with the step's epoch (and num_shards_epoch when the
//      count members see changed); its WHERE clause refuses to move a
//      stored epoch back, which only a stale shared memory could ask for;
//   2. the rows of removed members deleted;
//   3. the rows of members whose target, grant or keys changed written;
//   4. the pending releases (holds) rewritten when they changed;
//   5. one NOTIFY per member with a notice and, if the count members see
//      changed, one on the cluster channel for everybody else, sent at
//      commit in this order: a member that moved hears of its own change
//      first.
// The statements are prepared once per worker (SPI_keepplan).

#include "worker/worker.hpp"

extern "C" {
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

#include "core/notify_payload.hpp"
#include "module.hpp"

namespace shard_coordinator::worker {

namespace {

// Prepares `sql` once (kept for the worker's life) and returns the plan.
SPIPlanPtr prepared(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types) {
  if (*plan != nullptr) return *plan;
  SPIPlanPtr fresh = SPI_prepare(sql, nargs, types);
  if (fresh == nullptr)
    elog(ERROR, "could not prepare a statement: %s",
         SPI_result_code_string(SPI_result));
  if (SPI_keepplan(fresh) != 0) elog(ERROR, "could not keep a statement");
  *plan = fresh;
  return fresh;
}

Datum int4_array_datum(const int32 *keys, int32 n) {
  auto *elems =
      static_cast<Datum *>(palloc(sizeof(Datum) * static_cast<size_t>(n + 1)));
  for (int32 k = 0; k < n; ++k) elems[k] = Int32GetDatum(keys[k]);
  return PointerGetDatum(
      construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

// Keys as an array literal ('{1,2,3}').
Datum key_list_text(const int32 *keys, int32 n) {
  StringInfoData list;
  initStringInfo(&list);
  appendStringInfoChar(&list, '{');
  for (int32 k = 0; k < n; ++k)
    appendStringInfo(&list, "%s%d", k > 0 ? "," : "", keys[k]);
  appendStringInfoChar(&list, '}');
  return CStringGetTextDatum(list.data);
}

bool slot_mode_after(const BridgeOutput *out) { return out->nkeys > 0; }

// Whether this commit waits for a synchronous standby (failover: the
// promoted server then knows every grant that was published).
bool commit_is_synchronous() {
  return SyncRepRequested() && SyncRepStandbyNames != nullptr &&
         SyncRepStandbyNames[0] != '\0';
}

SPIPlanPtr cluster_plan = nullptr;
SPIPlanPtr delete_plan = nullptr;
SPIPlanPtr members_plan = nullptr;
SPIPlanPtr clear_releases_plan = nullptr;
SPIPlanPtr add_releases_plan = nullptr;

void store_cluster_row(const Snapshot *snap, const BridgeOutput *out,
                       TimestampTz wall_now) {
  Oid types[22] = {
      TEXTOID,     INTERVALOID,    INTERVALOID,  INTERVALOID,  INT4OID, INT8OID,
      INT4OID,     TIMESTAMPTZOID, INT4ARRAYOID, INT4ARRAYOID, TEXTOID, INT4OID,
      INTERVALOID, INT4OID,        BOOLOID,      BOOLOID,      BOOLOID, TEXTOID,
      TEXTOID,     INTERVALOID,    BOOLOID,      BOOLOID};
  SPIPlanPtr plan = prepared(
      &cluster_plan,
      "INSERT INTO shard_coordinator.cluster_state AS c (cluster, "
      "heartbeat_interval, grace_period, reshard_interval, max_shards, epoch, "
      "num_shards, num_shards_epoch, resharded_at, slots, pending_slots, "
      "handover, grant_count, max_lease, timeline, synchronous, frozen, "
      "member_role, admin_role, fence_timeout, dropping, configured) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $16 THEN $6 ELSE 0 END, "
      "$8, $9, $10, $11, $12, $13, $14, $15, $17, $18, $19, $20, $21, $22) "
      "ON CONFLICT (cluster) DO UPDATE SET "
      "heartbeat_interval = EXCLUDED.heartbeat_interval, "
      "grace_period = EXCLUDED.grace_period, "
      "reshard_interval = EXCLUDED.reshard_interval, "
      "max_shards = EXCLUDED.max_shards, epoch = EXCLUDED.epoch, "
      "num_shards = EXCLUDED.num_shards, "
      "num_shards_epoch = CASE WHEN $16 THEN EXCLUDED.epoch "
      "ELSE c.num_shards_epoch END, "
      "resharded_at = EXCLUDED.resharded_at, slots = EXCLUDED.slots, "
      "pending_slots = EXCLUDED.pending_slots, handover = EXCLUDED.handover, "
      "grant_count = EXCLUDED.grant_count, "
      "max_lease = GREATEST(c.max_lease, EXCLUDED.max_lease), "
      "timeline = EXCLUDED.timeline, synchronous = EXCLUDED.synchronous, "
      "frozen = EXCLUDED.frozen, member_role = EXCLUDED.member_role, "
      "admin_role = EXCLUDED.admin_role, "
      "fence_timeout = EXCLUDED.fence_timeout, "
      "dropping = EXCLUDED.dropping, configured = EXCLUDED.configured "
      "WHERE c.epoch <= EXCLUDED.epoch",
      22, types);
  Datum values[22];
  char nulls[23] = "                      ";
  values[0] = CStringGetTextDatum(snap->name);
  values[1] = IntervalPGetDatum(us_to_interval(snap->heartbeat_interval_us));
  values[2] = IntervalPGetDatum(us_to_interval(snap->grace_period_us));
  values[3] = IntervalPGetDatum(us_to_interval(snap->reshard_interval_us));
  values[4] = Int32GetDatum(snap->max_shards);
  if (snap->max_shards == 0) nulls[4] = 'n';
  values[5] = Int64GetDatum(out->epoch);
  values[6] = Int32GetDatum(out->num_shards);
  const TimestampTz resharded_at =
      out->epoch_moves ? wall_now : snap->resharded_at;
  values[7] = TimestampTzGetDatum(resharded_at);
  if (resharded_at == 0) nulls[7] = 'n';
  // The keys in place (also keys on their way out); NULL in plain mode.
  values[8] = static_cast<Datum>(0);
  nulls[8] = 'n';
  if (out->nkeys > 0) {
    auto *keys = static_cast<int32 *>(
        palloc(sizeof(int32) * static_cast<size_t>(out->nkeys)));
    for (int32 k = 0; k < out->nkeys; ++k) keys[k] = out->keys[k].key;
    values[8] = int4_array_datum(keys, out->nkeys);
    nulls[8] = ' ';
  }
  values[9] = static_cast<Datum>(0);
  nulls[9] = 'n';
  if (out->keys_pending) {
    values[9] = int4_array_datum(out->next_keys, out->nnext);
    nulls[9] = ' ';
  }
  values[10] = CStringGetTextDatum(handover_mode_name(snap->input.mode));
  values[11] = Int32GetDatum(out->grant_count);
  values[12] = IntervalPGetDatum(us_to_interval(snap->max_lease_us));
  values[13] = Int32GetDatum(static_cast<int32>(GetWALInsertionTimeLine()));
  values[14] = BoolGetDatum(commit_is_synchronous());
  values[15] = BoolGetDatum(out->cluster_notice);
  values[16] = BoolGetDatum(snap->frozen);
  values[17] = CStringGetTextDatum(NameStr(snap->member_role_name));
  if (NameStr(snap->member_role_name)[0] == '\0') nulls[17] = 'n';
  values[18] = CStringGetTextDatum(NameStr(snap->admin_role_name));
  if (NameStr(snap->admin_role_name)[0] == '\0') nulls[18] = 'n';
  values[19] = IntervalPGetDatum(us_to_interval(snap->fence_timeout_us));
  values[20] = BoolGetDatum(snap->dropping);
  values[21] = BoolGetDatum(snap->configured);
  const int rc = SPI_execute_plan(plan, values, nulls, false, 0);
  if (rc != SPI_OK_INSERT || SPI_processed != 1)
    ereport(ERROR, (errcode(kStaleSharedMemory),
                    errmsg("stored epoch of cluster \"%s\" is ahead of "
                           "shared memory",
                           snap->name)));
}

void delete_removed_members(const Snapshot *snap, const BridgeOutput *out) {
  const int n = snap->input.nmembers;
  auto *names = static_cast<Datum *>(palloc(sizeof(Datum) * Max(n, 1)));
  int count = 0;
  for (int i = 0; i < n; ++i) {
    if (out->members[i].row == RowAction::Delete)
      names[count++] = CStringGetTextDatum(snap->names[i].name);
  }
  if (count == 0) return;
  Oid types[2] = {TEXTOID, TEXTARRAYOID};
  SPIPlanPtr plan = prepared(&delete_plan,
                             "DELETE FROM shard_coordinator.member_state "
                             "WHERE cluster = $1 AND member = ANY ($2)",
                             2, types);
  Datum values[2] = {CStringGetTextDatum(snap->name),
                     PointerGetDatum(construct_array(names, count, TEXTOID, -1,
                                                     false, TYPALIGN_INT))};
  if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_DELETE)
    elog(ERROR, "could not delete members");
}

void write_changed_members(const Snapshot *snap, const BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  const int n = in.nmembers;
  const size_t room = sizeof(Datum) * static_cast<size_t>(Max(n, 1));
  const size_t flags = sizeof(bool) * static_cast<size_t>(Max(n, 1));
  auto *names = static_cast<Datum *>(palloc(room));
  auto *states = static_cast<Datum *>(palloc(room));
  auto *shards = static_cast<Datum *>(palloc(room));
  auto *shard_nulls = static_cast<bool *>(palloc(flags));
  auto *epochs = static_cast<Datum *>(palloc(room));
  auto *join_seqs = static_cast<Datum *>(palloc(room));
  auto *joined_ats = static_cast<Datum *>(palloc(room));
  auto *granted = static_cast<Datum *>(palloc(room));
  auto *incarnations = static_cast<Datum *>(palloc(room));
  auto *incarnation_nulls = static_cast<bool *>(palloc(flags));
  // Keys as array literals, NULL outside slot mode.
  auto *slot_lists = static_cast<Datum *>(palloc(room));
  auto *slot_nulls = static_cast<bool *>(palloc(flags));
  auto *target_lists = static_cast<Datum *>(palloc(room));
  auto *target_nulls = static_cast<bool *>(palloc(flags));
  const bool slots = slot_mode_after(out);
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const BridgeMemberResult &r = out->members[i];
    if (r.row != RowAction::Write) continue;
    const bool active = r.state == MemberState::Active;
    names[count] = CStringGetTextDatum(snap->names[i].name);
    states[count] = CStringGetTextDatum(state_name(r.state));
    shards[count] = Int32GetDatum(r.shard);
    shard_nulls[count] = !active;
    epochs[count] = Int64GetDatum(r.changed ? out->epoch : in.members[i].epoch);
    join_seqs[count] = Int64GetDatum(static_cast<int64>(in.members[i].id));
    joined_ats[count] = TimestampTzGetDatum(snap->names[i].joined_at);
    granted[count] = BoolGetDatum(r.granted);
    incarnations[count] =
        Int64GetDatum(static_cast<int64>(snap->names[i].incarnation));
    incarnation_nulls[count] = snap->names[i].incarnation == 0;
    slot_nulls[count] = !slots || !active;
    slot_lists[count] =
        slot_nulls[count]
            ? static_cast<Datum>(0)
            : key_list_text(out->slots + r.slots_offset, r.nslots);
    target_nulls[count] = !slots || !active;
    target_lists[count] =
        target_nulls[count]
            ? static_cast<Datum>(0)
            : key_list_text(out->target_slots + r.targets_offset, r.ntargets);
    count++;
  }
  if (count == 0) return;
  Oid types[11] = {
      TEXTOID,      TEXTARRAYOID, TEXTARRAYOID,        INT4ARRAYOID,
      INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID,
      INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
  SPIPlanPtr plan = prepared(
      &members_plan,
      "INSERT INTO shard_coordinator.member_state AS m (cluster, member, "
      "state, shard, epoch, join_seq, joined_at, granted, incarnation, "
      "slots, target_slots) "
      "SELECT $1, u.member, u.state, u.shard, u.epoch, u.join_seq, "
      "u.joined_at, u.granted, u.incarnation, u.slots::pg_catalog.int4[], "
      "u.target_slots::pg_catalog.int4[] "
      "FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
      "AS u(member, state, shard, epoch, join_seq, joined_at, granted, "
      "incarnation, slots, target_slots) "
      "ON CONFLICT (cluster, member) DO UPDATE SET state = EXCLUDED.state, "
      "shard = EXCLUDED.shard, epoch = EXCLUDED.epoch, "
      "granted = EXCLUDED.granted, incarnation = EXCLUDED.incarnation, "
      "slots = EXCLUDED.slots, target_slots = EXCLUDED.target_slots",
      11, types);
  int dims[1] = {count};
  int lbs[1] = {1};
  Datum values[11];
  values[0] = CStringGetTextDatum(snap->name);
  values[1] = PointerGetDatum(
      construct_array(names, count, TEXTOID, -1, false, TYPALIGN_INT));
  values[2] = PointerGetDatum(
      construct_array(states, count, TEXTOID, -1, false, TYPALIGN_INT));
  values[3] = PointerGetDatum(construct_md_array(
      shards, shard_nulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
  values[4] = PointerGetDatum(construct_array(
      epochs, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[5] = PointerGetDatum(construct_array(
      join_seqs, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[6] = PointerGetDatum(construct_array(
      joined_ats, count, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[7] = PointerGetDatum(
      construct_array(granted, count, BOOLOID, 1, true, TYPALIGN_CHAR));
  values[8] = PointerGetDatum(
      construct_md_array(incarnations, incarnation_nulls, 1, dims, lbs, INT8OID,
                         8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[9] = PointerGetDatum(construct_md_array(
      slot_lists, slot_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
  values[10] = PointerGetDatum(construct_md_array(target_lists, target_nulls, 1,
                                                  dims, lbs, TEXTOID, -1, false,
                                                  TYPALIGN_INT));
  if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_INSERT)
    elog(ERROR, "could not store members");
}

// Whether the holds (plain and keys) differ between input and output.
bool holds_changed(const Snapshot *snap, const BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  if (in.nholds != out->nholds) return true;
  for (int32 h = 0; h < out->nholds; ++h) {
    const PolicyHold &a = in.holds[h];
    const PolicyHold &b = out->holds[h];
    if (a.member != b.member || a.epoch != b.epoch ||
        a.grant.shard != b.grant.shard || a.grant.count != b.grant.count)
      return true;
  }
  if (in.nkeys != out->nkeys) return true;
  for (int32 k = 0; k < out->nkeys; ++k) {
    if (in.keys[k].key != out->keys[k].key ||
        in.keys[k].holder != out->keys[k].holder ||
        in.keys[k].hold_epoch != out->keys[k].hold_epoch)
      return true;
  }
  return false;
}

// The member's name by id (the snapshot's), or "" if it is not in it.
const char *name_of(const Snapshot *snap, uint64 id) {
  for (int i = 0; i < snap->input.nmembers; ++i)
    if (snap->input.members[i].id == id) return snap->names[i].name;
  return nullptr;
}

// The stored names of the holders that are no longer members (removed, or
// dropped by a load; the rows are about to be rewritten): join_seq -> name,
// read from the rows as they are. Rare: only then is the table read.
struct StoredNames {
  int count = 0;
  int64 *ids = nullptr;
  char **names = nullptr;
  const char *find(uint64 id) const {
    for (int i = 0; i < count; ++i)
      if (static_cast<uint64>(ids[i]) == id) return names[i];
    return "";
  }
};

StoredNames stored_holder_names(const Snapshot *snap, const BridgeOutput *out) {
  StoredNames result;
  bool unknown = false;
  for (int32 h = 0; h < out->nholds && !unknown; ++h)
    unknown = name_of(snap, out->holds[h].member) == nullptr;
  for (int32 k = 0; k < out->nkeys && !unknown; ++k)
    unknown = out->keys[k].holder != 0 &&
              name_of(snap, out->keys[k].holder) == nullptr;
  if (!unknown) return result;
  Oid types[1] = {TEXTOID};
  Datum cluster = CStringGetTextDatum(snap->name);
  if (SPI_execute_with_args(
          "SELECT DISTINCT join_seq, member "
          "FROM shard_coordinator.pending_release WHERE cluster = $1",
          1, types, &cluster, nullptr, true, 0) != SPI_OK_SELECT)
    elog(ERROR, "could not read the pending releases");
  result.count = static_cast<int>(SPI_processed);
  result.ids = static_cast<int64 *>(palloc(sizeof(int64) * (result.count + 1)));
  result.names =
      static_cast<char **>(palloc(sizeof(char *) * (result.count + 1)));
  for (int i = 0; i < result.count; ++i) {
    bool isnull = false;
    HeapTuple row = SPI_tuptable->vals[i];
    result.ids[i] =
        DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
    result.names[i] = TextDatumGetCString(
        SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
  }
  return result;
}

const char *holder_name(const Snapshot *snap, const StoredNames &stored,
                        uint64 id) {
  const char *name = name_of(snap, id);
  return name != nullptr ? name : stored.find(id);
}

// The cluster's pending releases, rewritten: plain holds one row each, key
// holds one row per member and epoch.
void write_pending_releases(const Snapshot *snap, const BridgeOutput *out) {
  if (!holds_changed(snap, out)) return;
  const StoredNames stored = stored_holder_names(snap, out);
  Oid clear_types[1] = {TEXTOID};
  SPIPlanPtr clear = prepared(&clear_releases_plan,
                              "DELETE FROM shard_coordinator.pending_release "
                              "WHERE cluster = $1",
                              1, clear_types);
  Datum cluster = CStringGetTextDatum(snap->name);
  if (SPI_execute_plan(clear, &cluster, nullptr, false, 0) != SPI_OK_DELETE)
    elog(ERROR, "could not clear the pending releases");
  const int room = out->nholds + out->nkeys + 1;
  auto *join_seqs = static_cast<Datum *>(palloc(sizeof(Datum) * room));
  auto *members = static_cast<Datum *>(palloc(sizeof(Datum) * room));
  auto *epochs = static_cast<Datum *>(palloc(sizeof(Datum) * room));
  auto *shards = static_cast<Datum *>(palloc(sizeof(Datum) * room));
  auto *counts = static_cast<Datum *>(palloc(sizeof(Datum) * room));
  auto *lists = static_cast<Datum *>(palloc(sizeof(Datum) * room));
  auto *plain_nulls = static_cast<bool *>(palloc(sizeof(bool) * room));
  auto *list_nulls = static_cast<bool *>(palloc(sizeof(bool) * room));
  int count = 0;
  for (int32 h = 0; h < out->nholds; ++h) {
    const PolicyHold &hold = out->holds[h];
    join_seqs[count] = Int64GetDatum(static_cast<int64>(hold.member));
    members[count] =
        CStringGetTextDatum(holder_name(snap, stored, hold.member));
    epochs[count] = Int64GetDatum(hold.epoch);
    shards[count] = Int32GetDatum(hold.grant.shard);
    counts[count] = Int32GetDatum(hold.grant.count);
    plain_nulls[count] = false;
    lists[count] = static_cast<Datum>(0);
    list_nulls[count] = true;
    count++;
  }
  // Key holds, grouped by holder and epoch (keys ascending).
  auto *done = static_cast<bool *>(palloc0(sizeof(bool) * (out->nkeys + 1)));
  auto *keys = static_cast<int32 *>(palloc(sizeof(int32) * (out->nkeys + 1)));
  for (int32 k = 0; k < out->nkeys; ++k) {
    const PolicyKey &first = out->keys[k];
    if (first.holder == 0 || done[k]) continue;
    int32 nkeys = 0;
    for (int32 j = k; j < out->nkeys; ++j) {
      const PolicyKey &key = out->keys[j];
      if (key.holder == first.holder && key.hold_epoch == first.hold_epoch) {
        keys[nkeys++] = key.key;
        done[j] = true;
      }
    }
    join_seqs[count] = Int64GetDatum(static_cast<int64>(first.holder));
    members[count] =
        CStringGetTextDatum(holder_name(snap, stored, first.holder));
    epochs[count] = Int64GetDatum(first.hold_epoch);
    shards[count] = static_cast<Datum>(0);
    counts[count] = static_cast<Datum>(0);
    plain_nulls[count] = true;
    lists[count] = key_list_text(keys, nkeys);
    list_nulls[count] = false;
    count++;
  }
  if (count == 0) return;
  Oid types[7] = {TEXTOID,      INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
                  INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID};
  SPIPlanPtr plan = prepared(
      &add_releases_plan,
      "INSERT INTO shard_coordinator.pending_release (cluster, join_seq, "
      "member, revoked_epoch, shard, num_shards, slots) "
      "SELECT $1, u.join_seq, u.member, u.epoch, u.shard, u.num_shards, "
      "u.slots::pg_catalog.int4[] "
      "FROM unnest($2, $3, $4, $5, $6, $7) "
      "AS u(join_seq, member, epoch, shard, num_shards, slots)",
      7, types);
  int dims[1] = {count};
  int lbs[1] = {1};
  Datum values[7];
  values[0] = cluster;
  values[1] = PointerGetDatum(construct_array(
      join_seqs, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[2] = PointerGetDatum(
      construct_array(members, count, TEXTOID, -1, false, TYPALIGN_INT));
  values[3] = PointerGetDatum(construct_array(
      epochs, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[4] = PointerGetDatum(construct_md_array(
      shards, plain_nulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
  values[5] = PointerGetDatum(construct_md_array(
      counts, plain_nulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
  values[6] = PointerGetDatum(construct_md_array(
      lists, list_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
  if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_INSERT)
    elog(ERROR, "could not store the pending releases");
}

void queue_notices(const Snapshot *snap, const BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  char channel[kChannelNameMax + 1];
  char *payload = static_cast<char *>(palloc(kNotifyPayloadMax + 1));
  const size_t cluster_len = strlen(snap->name);
  const bool slots = slot_mode_after(out);
  // The count members see: plain mode, that of every grant; slot mode, the
  // active members.
  const int32 count = slots ? out->num_shards : out->grant_count;
  for (int i = 0; i < in.nmembers; ++i) {
    const BridgeMemberResult &r = out->members[i];
    if (!r.notice) continue;
    const char *name = snap->names[i].name;
    channel_name(snap->name, cluster_len, name, strlen(name), channel);
    const bool active = !r.removed && r.state == MemberState::Active;
    const bool shows_shard = active && (slots || r.granted);
    if (!member_notice_into(
            snap->name, name, shows_shard ? r.shard : kNoShard, count,
            out->epoch, r.removed ? "removed" : state_name(r.state),
            slots && active ? out->slots + r.slots_offset : nullptr,
            slots && active ? r.nslots : 0, payload))
      elog(ERROR, "could not build the notification payload of \"%s\"", name);
    Async_Notify(channel, payload);
  }
  if (out->cluster_notice) {
    cluster_channel_name(snap->name, cluster_len, channel);
    if (!cluster_notice_into(snap->name, count, out->epoch, payload))
      elog(ERROR, "could not build the cluster notification payload");
    Async_Notify(channel, payload);
  }
}

}  // namespace

void store_reshard(const Snapshot *snap, const BridgeOutput *out,
                   TimestampTz wall_now) {
  store_cluster_row(snap, out, wall_now);
  if (!snap->settings_only) {
    delete_removed_members(snap, out);
    write_changed_members(snap, out);
    write_pending_releases(snap, out);
    queue_notices(snap, out);
  }
}

}  // namespace shard_coordinator::worker
