// channel() and jump_hash(): pure functions of their arguments.

#include "sql/sql.hpp"

extern "C" {
#include "utils/builtins.h"
}

#include "core/jump_hash.hpp"
#include "core/names.hpp"

using namespace shard_coordinator;
using namespace shard_coordinator::sql;

namespace {

void require_buckets(int32 buckets) {
  if (buckets < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("buckets must be at least 1"),
                    errhint("Pass the number of shards.")));
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(sc_channel);
PG_FUNCTION_INFO_V1(sc_cluster_channel);
PG_FUNCTION_INFO_V1(sc_jump_hash_bigint);
PG_FUNCTION_INFO_V1(sc_jump_hash_text);

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

}  // extern "C"
