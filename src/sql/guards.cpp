// The checks every coordinating call makes first, cheapest first.

#include "sql/sql.hpp"

extern "C" {
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include "module.hpp"
#include "shmem/shmem.hpp"

namespace shard_coordinator::sql {

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

namespace {

void require_primary() {
  if (RecoveryInProgress())
    ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                    errmsg("shard_coordinator cannot coordinate on a standby "
                           "server"),
                    errhint("Connect to the primary, for example with "
                            "target_session_attrs=read-write in the connection "
                            "string.")));
}

// The worker loads only a catalog of the library's version (load.cpp): with
// another one, refuse at once and say what to do, rather than wait for a
// load that will not come. Never on the hot path: only while nothing is
// loaded.
void require_catalog_version() {
  char *version = installed_catalog_version();
  if (version == nullptr || strcmp(version, kCatalogVersion) == 0) return;
  if (catalog_is_older(version))
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("shard_coordinator's catalog is at version %s, older "
                    "than the library (%s)",
                    version, kCatalogVersion),
             errdetail("Nothing is coordinated until the catalog is updated; "
                       "the stored assignments are kept."),
             errhint("Run ALTER EXTENSION shard_coordinator UPDATE.")));
  ereport(ERROR,
          (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
           errmsg("shard_coordinator's catalog is at version %s, newer than "
                  "the library (%s)",
                  version, kCatalogVersion),
           errdetail("Nothing is coordinated until the library matches the "
                     "catalog; the stored assignments are kept."),
           errhint("Install shard_coordinator %s and restart the server.",
                   version)));
}

// Waits until the worker has loaded the tables into shared memory.
void require_loaded() {
  if (shared->loaded) return;
  require_catalog_version();
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

}  // namespace

void require_ready_for_writes() {
  require_preloaded();
  require_primary();
  require_coordinator_database();
  require_loaded();
}

bool failover_safe() {
  return max_wal_senders > 0 && SyncRepStandbyNames != nullptr &&
         SyncRepStandbyNames[0] != '\0';
}

}  // namespace shard_coordinator::sql
