// Settings (GUCs) and module-wide state, defined in module.cpp.
#pragma once

#include "pg_prelude.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

namespace shard_coordinator {

// shard_coordinator.database: where the background worker runs and the only
// database in which the extension can be used.
extern char *guc_database;
// shard_coordinator.max_members / max_clusters: shared memory capacity.
extern int guc_max_members;
extern int guc_max_clusters;
// shard_coordinator.max_slot_clusters / max_slots: how many clusters can use
// fixed slot sets at once, and how many slot keys each may have.
extern int guc_max_slot_clusters;
extern int guc_max_slots;
// Defaults for clusters that come into being on a first heartbeat (ms).
extern int guc_heartbeat_interval_ms;
extern int guc_grace_period_ms;
extern int guc_reshard_interval_ms;
// shard_coordinator.handover: the handover mode of clusters that come into
// being on a first heartbeat (a HandoverMode).
extern int guc_handover;
extern bool guc_create_on_heartbeat;
extern int guc_empty_cluster_timeout_ms;

// The catalog version this library reads and writes: the control file's
// default_version (scripts/check-versions.py checks that they agree).
constexpr char kCatalogVersion[] = "1.1";

// The version of the installed extension's catalog (pg_extension.extversion,
// palloc'd), or NULL when the extension is not installed in this database.
// Needs a transaction. The worker loads and stores only a catalog of
// kCatalogVersion; coordinating calls refuse any other (README,
// "Upgrading").
char *installed_catalog_version();
// Whether `version` is older than kCatalogVersion (ALTER EXTENSION ...
// UPDATE reaches it) rather than newer (another library is needed).
bool catalog_is_older(const char *version);

// True when _PG_init ran from shared_preload_libraries.
extern bool loaded_at_startup;

// An interval of this many microseconds (palloc'd).
Interval *us_to_interval(int64 us);

// Upper bound of every interval setting: one day, in microseconds.
constexpr int64 kMaxIntervalUs = INT64CONST(86400) * 1000 * 1000;
constexpr int kMaxIntervalMs = 86400 * 1000;

}  // namespace shard_coordinator
