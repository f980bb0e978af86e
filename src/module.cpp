// Module entry: settings (GUCs), shared memory hooks and the background
// worker's registration, which run in the postmaster at start; and the
// installed catalog's version, which the worker and the SQL functions check.

#include "module.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

#include "core/grants.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator {

char *guc_database = nullptr;
int guc_max_members = 10000;
int guc_max_clusters = 1000;
int guc_max_slot_clusters = 64;
int guc_max_slots = 1024;
int guc_heartbeat_interval_ms = 5000;
int guc_grace_period_ms = 10000;
int guc_reshard_interval_ms = 1000;
int guc_handover = static_cast<int>(HandoverMode::Exclusive);
bool guc_create_on_heartbeat = true;
int guc_empty_cluster_timeout_ms = 600000;
bool loaded_at_startup = false;

Interval *us_to_interval(int64 us) {
  auto *value = static_cast<Interval *>(palloc0(sizeof(Interval)));
  value->time = us;
  return value;
}

char *installed_catalog_version() {
  Relation rel = table_open(ExtensionRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
              CStringGetDatum("shard_coordinator"));
  SysScanDesc scan =
      systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
  char *version = nullptr;
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) {
    bool isnull = false;
    Datum value = heap_getattr(tuple, Anum_pg_extension_extversion,
                               RelationGetDescr(rel), &isnull);
    if (!isnull) version = TextDatumGetCString(value);
  }
  systable_endscan(scan);
  table_close(rel, AccessShareLock);
  return version;
}

bool catalog_is_older(const char *version) {
  // Numeric parts compare as numbers ("1.9" < "1.10").
  return strverscmp(version, kCatalogVersion) < 0;
}

namespace {

void define_settings() {
  DefineCustomStringVariable(
      "shard_coordinator.database",
      "Database in which the shard_coordinator background worker runs.",
      "The extension can be created and used only in this database.",
      &guc_database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "shard_coordinator.max_members",
      "Maximum number of members, over all clusters, in shared memory.",
      "A heartbeat that would register one more member fails.",
      &guc_max_members, 10000, 1, 10000000, PGC_POSTMASTER, 0, nullptr, nullptr,
      nullptr);
  DefineCustomIntVariable("shard_coordinator.max_clusters",
                          "Maximum number of clusters in shared memory.",
                          nullptr, &guc_max_clusters, 1000, 1, 1000000,
                          PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "shard_coordinator.max_slot_clusters",
      "Maximum number of clusters configured with fixed slot sets.", nullptr,
      &guc_max_slot_clusters, 64, 0, 100000, PGC_POSTMASTER, 0, nullptr,
      nullptr, nullptr);
  DefineCustomIntVariable("shard_coordinator.max_slots",
                          "Maximum number of slot keys of one cluster.",
                          nullptr, &guc_max_slots, 1024, 1, 1000000,
                          PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("shard_coordinator.heartbeat_interval",
                          "Default heartbeat interval of new clusters.",
                          "Members are told to heartbeat this often.",
                          &guc_heartbeat_interval_ms, 5000, 1, kMaxIntervalMs,
                          PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "shard_coordinator.grace_period", "Default grace period of new clusters.",
      "A member expires after heartbeat_interval + grace_period without a "
      "heartbeat.",
      &guc_grace_period_ms, 10000, 0, kMaxIntervalMs, PGC_SIGHUP, GUC_UNIT_MS,
      nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "shard_coordinator.reshard_interval",
      "Default minimum time between two reshards of a cluster.", nullptr,
      &guc_reshard_interval_ms, 1000, 0, kMaxIntervalMs, PGC_SIGHUP,
      GUC_UNIT_MS, nullptr, nullptr, nullptr);
  static const struct config_enum_entry handover_modes[] = {
      {"exclusive", static_cast<int>(HandoverMode::Exclusive), false},
      {"barrier", static_cast<int>(HandoverMode::Barrier), false},
      {"immediate", static_cast<int>(HandoverMode::Immediate), false},
      {nullptr, 0, false}};
  DefineCustomEnumVariable(
      "shard_coordinator.handover",
      "Handover mode of clusters created by a first heartbeat.",
      "exclusive: work goes to a member only after its holder released it; "
      "barrier: the same for key mappings other than jump hash; immediate: "
      "at once.",
      &guc_handover, static_cast<int>(HandoverMode::Exclusive), handover_modes,
      PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable(
      "shard_coordinator.create_on_heartbeat",
      "Whether a first heartbeat may create a cluster.",
      "off: clusters are created by configure() only, so roles that may "
      "only heartbeat cannot create clusters.",
      &guc_create_on_heartbeat, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "shard_coordinator.empty_cluster_timeout",
      "How long a cluster made by a first heartbeat stays once it is empty.",
      "A cluster that configure() never touched is removed (name, shared "
      "memory and rows) once it has had no members and held nothing for "
      "this long. 0: never.",
      &guc_empty_cluster_timeout_ms, 600000, 0, INT_MAX, PGC_SIGHUP,
      GUC_UNIT_MS, nullptr, nullptr, nullptr);
  MarkGUCPrefixReserved("shard_coordinator");
}

void register_worker() {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof(worker));
  worker.bgw_flags =
      BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = 1;
  strlcpy(worker.bgw_library_name, "shard_coordinator", BGW_MAXLEN);
  strlcpy(worker.bgw_function_name, "sc_worker_main", BGW_MAXLEN);
  strlcpy(worker.bgw_name, "shard_coordinator", BGW_MAXLEN);
  strlcpy(worker.bgw_type, "shard_coordinator", BGW_MAXLEN);
  RegisterBackgroundWorker(&worker);
}

}  // namespace
}  // namespace shard_coordinator

void _PG_init(void) {
  using namespace shard_coordinator;
  // Without shared_preload_libraries there is no shared memory and no
  // worker; the SQL functions then refuse to run, with a hint.
  if (!process_shared_preload_libraries_in_progress) return;
  loaded_at_startup = true;
  define_settings();
  install_shmem_hooks();
  register_worker();
}
