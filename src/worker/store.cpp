// The transaction that stores one reshard and queues its notifications:
//   1. the cluster row with the next epoch (and num_shards_epoch when
//      num_shards changed); its WHERE clause refuses to move a stored epoch
//      back, which only a stale shared memory could ask for;
//   2. the rows of removed members deleted;
//   3. the rows of members whose own assignment changed written;
//   4. one NOTIFY per member with a notice and, if num_shards changed, one
//      on the cluster channel for everybody else, sent at commit in this
//      order: a member that moved hears of its own change first.
// The statements are prepared once per worker (SPI_keepplan).

#include "worker/worker.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
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

SPIPlanPtr cluster_plan = nullptr;
SPIPlanPtr delete_plan = nullptr;
SPIPlanPtr members_plan = nullptr;

void store_cluster_row(const Snapshot *snap, const BridgeOutput *out,
                       TimestampTz wall_now) {
  Oid types[9] = {TEXTOID, INTERVALOID, INTERVALOID,    INTERVALOID, INT4OID,
                  INT8OID, INT4OID,     TIMESTAMPTZOID, INT4ARRAYOID};
  SPIPlanPtr plan = prepared(
      &cluster_plan,
      "INSERT INTO shard_coordinator.cluster_state AS c (cluster, "
      "heartbeat_interval, grace_period, reshard_interval, max_shards, epoch, "
      "num_shards, num_shards_epoch, resharded_at, slots) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, "
      "CASE WHEN $7 > 0 THEN $6 ELSE 0 END, $8, $9) "
      "ON CONFLICT (cluster) DO UPDATE SET "
      "heartbeat_interval = EXCLUDED.heartbeat_interval, "
      "grace_period = EXCLUDED.grace_period, "
      "reshard_interval = EXCLUDED.reshard_interval, "
      "max_shards = EXCLUDED.max_shards, epoch = EXCLUDED.epoch, "
      "num_shards = EXCLUDED.num_shards, "
      "num_shards_epoch = CASE WHEN c.num_shards <> EXCLUDED.num_shards "
      "THEN EXCLUDED.epoch ELSE c.num_shards_epoch END, "
      "resharded_at = EXCLUDED.resharded_at, slots = EXCLUDED.slots "
      "WHERE c.epoch <= EXCLUDED.epoch",
      9, types);
  const BridgeInput &in = snap->input;
  Datum values[9];
  char nulls[10] = "         ";
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
  // The key set after this reshard (the settings alone keep the published
  // one); NULL in plain mode.
  values[8] = static_cast<Datum>(0);
  if (in.new_nkeys > 0)
    values[8] = int4_array_datum(in.new_keys, in.new_nkeys);
  else
    nulls[8] = 'n';
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

// A member's keys as an array literal ('{1,2,3}').
Datum key_list_text(const BridgeOutput *out, const BridgeMemberResult &r) {
  StringInfoData list;
  initStringInfo(&list);
  appendStringInfoChar(&list, '{');
  for (int32 k = 0; k < r.nslots; ++k)
    appendStringInfo(&list, "%s%d", k > 0 ? "," : "",
                     out->slots[r.slots_offset + k]);
  appendStringInfoChar(&list, '}');
  return CStringGetTextDatum(list.data);
}

void write_changed_members(const Snapshot *snap, const BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  const int n = in.nmembers;
  const size_t room = sizeof(Datum) * static_cast<size_t>(Max(n, 1));
  auto *names = static_cast<Datum *>(palloc(room));
  auto *states = static_cast<Datum *>(palloc(room));
  auto *shards = static_cast<Datum *>(palloc(room));
  auto *shard_nulls = static_cast<bool *>(palloc(room));
  auto *join_seqs = static_cast<Datum *>(palloc(room));
  auto *joined_ats = static_cast<Datum *>(palloc(room));
  // Keys as array literals, NULL outside slot mode.
  auto *slot_lists = static_cast<Datum *>(palloc(room));
  auto *slot_nulls = static_cast<bool *>(palloc(room));
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const BridgeMemberResult &r = out->members[i];
    if (r.row != RowAction::Write) continue;
    const bool active = r.state == MemberState::Active;
    names[count] = CStringGetTextDatum(snap->names[i].name);
    states[count] = CStringGetTextDatum(state_name(r.state));
    shards[count] = Int32GetDatum(r.shard);
    shard_nulls[count] = !active;
    join_seqs[count] = Int64GetDatum(static_cast<int64>(in.members[i].id));
    joined_ats[count] = TimestampTzGetDatum(snap->names[i].joined_at);
    slot_nulls[count] = in.new_nkeys == 0 || !active;
    slot_lists[count] =
        slot_nulls[count] ? static_cast<Datum>(0) : key_list_text(out, r);
    count++;
  }
  if (count == 0) return;
  Oid types[8] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID,        INT4ARRAYOID,
                  INT8OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
  SPIPlanPtr plan = prepared(
      &members_plan,
      "INSERT INTO shard_coordinator.member_state AS m (cluster, member, "
      "state, shard, epoch, join_seq, joined_at, slots) "
      "SELECT $1, u.member, u.state, u.shard, $5, u.join_seq, u.joined_at, "
      "u.slots::pg_catalog.int4[] "
      "FROM unnest($2, $3, $4, $6, $7, $8) "
      "AS u(member, state, shard, join_seq, joined_at, slots) "
      "ON CONFLICT (cluster, member) DO UPDATE SET state = EXCLUDED.state, "
      "shard = EXCLUDED.shard, epoch = EXCLUDED.epoch, slots = "
      "EXCLUDED.slots",
      8, types);
  int dims[1] = {count};
  int lbs[1] = {1};
  Datum values[8];
  values[0] = CStringGetTextDatum(snap->name);
  values[1] = PointerGetDatum(
      construct_array(names, count, TEXTOID, -1, false, TYPALIGN_INT));
  values[2] = PointerGetDatum(
      construct_array(states, count, TEXTOID, -1, false, TYPALIGN_INT));
  values[3] = PointerGetDatum(construct_md_array(
      shards, shard_nulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
  values[4] = Int64GetDatum(out->epoch);
  values[5] = PointerGetDatum(construct_array(
      join_seqs, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[6] = PointerGetDatum(construct_array(
      joined_ats, count, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[7] = PointerGetDatum(construct_md_array(
      slot_lists, slot_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
  if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_INSERT)
    elog(ERROR, "could not store members");
}

void queue_notices(const Snapshot *snap, const BridgeOutput *out) {
  const BridgeInput &in = snap->input;
  char channel[kChannelNameMax + 1];
  char *payload = static_cast<char *>(palloc(kNotifyPayloadMax + 1));
  const size_t cluster_len = strlen(snap->name);
  for (int i = 0; i < in.nmembers; ++i) {
    const BridgeMemberResult &r = out->members[i];
    if (!r.notice) continue;
    const char *name = snap->names[i].name;
    channel_name(snap->name, cluster_len, name, strlen(name), channel);
    const bool with_slots =
        in.new_nkeys > 0 && !r.removed && r.state == MemberState::Active;
    if (!member_notice_into(snap->name, name, r.removed ? kNoShard : r.shard,
                            out->num_shards, out->epoch,
                            r.removed ? "removed" : state_name(r.state),
                            with_slots ? out->slots + r.slots_offset : nullptr,
                            with_slots ? r.nslots : 0, payload))
      elog(ERROR, "could not build the notification payload of \"%s\"", name);
    Async_Notify(channel, payload);
  }
  if (out->cluster_notice) {
    cluster_channel_name(snap->name, cluster_len, channel);
    if (!cluster_notice_into(snap->name, out->num_shards, out->epoch, payload))
      elog(ERROR, "could not build the cluster notification payload");
    Async_Notify(channel, payload);
  }
}

}  // namespace

void store_reshard(const Snapshot *snap, const BridgeOutput *out,
                   TimestampTz wall_now) {
  begin_transaction("shard_coordinator: resharding");
  store_cluster_row(snap, out, wall_now);
  delete_removed_members(snap, out);
  write_changed_members(snap, out);
  queue_notices(snap, out);
  commit_transaction(reshard_context);
}

}  // namespace shard_coordinator::worker
