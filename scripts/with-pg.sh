#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 with shard_coordinator
# preloaded, then destroys the server.
#
#   scripts/with-pg.sh [-o guc=value]... COMMAND [ARGS...]
#
# The extension must be installed (make install). Inside COMMAND:
#   PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE   reach the server; the
#       database (sc_test, or $SC_DB) exists and has the extension
#   SC_PG_RESTART   a command that restarts the server (fast shutdown)
#   SC_PG_STOP / SC_PG_START   stop (fast) and start it
#   SC_PG_LOG       the server's log file
# Works as root (the server then runs as the postgres user) and as a normal
# user; uses pg_virtualenv from Debian's postgresql-common.
set -euo pipefail

db=${SC_DB:-sc_test}
opts=(-o "shared_preload_libraries=shard_coordinator"
      -o "shard_coordinator.database=$db"
      -o "log_min_messages=log")
while [ $# -gt 0 ] && [ "$1" = "-o" ]; do
  opts+=(-o "$2")
  shift 2
done
if [ $# -eq 0 ]; then
  echo "usage: $0 [-o guc=value]... COMMAND [ARGS...]" >&2
  exit 2
fi

# A port of our own (random, free) unless SC_PG_PORT says otherwise, so that
# several throwaway servers, or the machine's own on 5432, do not collide.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || [ -e "/var/run/postgresql/.s.PGSQL.$1" ]
}
port=${SC_PG_PORT:-}
if [ -z "$port" ]; then
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    port_in_use "$port" || break
  done
fi

# Every pg_virtualenv cluster is "15/regress" and would share
# /var/run/postgresql/15-regress.pid; a pid file of its own keeps
# pg_ctlcluster restart reliable when several throwaway servers run at once.
opts+=(-o "external_pid_file=${TMPDIR:-/tmp}/sc-pg-$port.pid")

export SC_DB=$db
# UTF-8 whatever the caller's locale, so that results do not depend on it.
exec pg_virtualenv -t -v 15 -c "-p $port --locale=C.UTF-8 --encoding=UTF8" "${opts[@]}" bash -c '
  set -euo pipefail
  export SC_PG_LOG=$(ls "$PG_CLUSTER_CONF_ROOT"/../log/postgresql-15-regress.log 2>/dev/null \
                     || echo "$PG_CLUSTER_CONF_ROOT/../log/postgresql-15-regress.log")
  export SC_PG_RESTART="pg_ctlcluster 15 regress restart -m fast"
  export SC_PG_STOP="pg_ctlcluster 15 regress stop -m fast"
  export SC_PG_START="pg_ctlcluster 15 regress start"
  createdb "$SC_DB"
  psql -X -q -v ON_ERROR_STOP=1 -d "$SC_DB" -c "CREATE EXTENSION shard_coordinator"
  export PGDATABASE=$SC_DB
  "$@"
' with-pg "$@"
