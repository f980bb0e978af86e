// Reading and checking the arguments of the SQL entry points: every bad
// value is a clear ERROR with a SQLSTATE, a message naming the argument and
// a hint, raised before anything changes.

#include "sql/sql.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "core/interval.hpp"
#include "core/names.hpp"
#include "module.hpp"

namespace shard_coordinator::sql {

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

// Reads an optional interval argument; NULL leaves *out untouched.
bool get_interval_arg(FunctionCallInfo fcinfo, int argno, const char *what,
                      bool allow_zero, int64 *out) {
  if (PG_ARGISNULL(argno)) return false;
  const Interval *value = PG_GETARG_INTERVAL_P(argno);
  int64 us = 0;
  const bool fits = interval_to_us(value->month, value->day, value->time, &us);
  const bool negative =
      interval_is_negative(value->month, value->day, value->time);
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

namespace {

int cmp_int32(const void *a, const void *b) {
  const int32 x = *static_cast<const int32 *>(a);
  const int32 y = *static_cast<const int32 *>(b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

}  // namespace

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

Datum slots_datum(const int32 *slots, int32 nslots) {
  auto *elems = static_cast<Datum *>(
      palloc(sizeof(Datum) * static_cast<size_t>(Max(nslots, 1))));
  for (int32 i = 0; i < nslots; ++i) elems[i] = Int32GetDatum(slots[i]);
  return PointerGetDatum(
      construct_array(elems, nslots, INT4OID, 4, true, TYPALIGN_INT));
}

text *channel_text(NameArg cluster, NameArg member) {
  char buf[kChannelNameMax + 1];
  size_t len =
      channel_name(cluster.data, cluster.len, member.data, member.len, buf);
  return cstring_to_text_with_len(buf, static_cast<int>(len));
}

int32 *get_keys_arg(FunctionCallInfo fcinfo, int argno, int32 *nkeys) {
  ArrayType *array = PG_GETARG_ARRAYTYPE_P(argno);
  if (ARR_NDIM(array) > 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("keys must be a one-dimensional array"),
                    errhint("Pass the keys as integer[].")));
  Datum *elems = nullptr;
  bool *elem_nulls = nullptr;
  int n = 0;
  deconstruct_array(array, INT4OID, 4, true, TYPALIGN_INT, &elems, &elem_nulls,
                    &n);
  auto *keys = static_cast<int32 *>(
      palloc(sizeof(int32) * static_cast<size_t>(Max(n, 1))));
  for (int i = 0; i < n; ++i) {
    if (elem_nulls[i])
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                      errmsg("keys must not contain NULL"),
                      errhint("Remove the NULL elements.")));
    keys[i] = DatumGetInt32(elems[i]);
  }
  *nkeys = n;
  return keys;
}

}  // namespace shard_coordinator::sql
