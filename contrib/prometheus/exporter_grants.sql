-- What the role of prometheus-postgres-exporter needs to run
-- shard_coordinator_queries.yaml: reading the stats, clusters and members
-- views (and the functions behind them), nothing else. Run it as a
-- superuser in the database named by shard_coordinator.database, after
-- creating the role:
--
--   CREATE ROLE prometheus LOGIN;
--   psql -v exporter_role=prometheus -f exporter_grants.sql
--
-- test/prometheus/exporter_test.py runs the exporter as such a role.

\set ON_ERROR_STOP on

GRANT USAGE ON SCHEMA shard_coordinator TO :"exporter_role";
GRANT SELECT ON shard_coordinator.stats,
                shard_coordinator.clusters,
                shard_coordinator.members TO :"exporter_role";
GRANT EXECUTE ON FUNCTION shard_coordinator._live_stats(),
                          shard_coordinator._live_clusters(),
                          shard_coordinator._live_members(),
                          shard_coordinator._is_live() TO :"exporter_role";
