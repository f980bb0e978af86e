#!/usr/bin/env bash
# Runs the TAP tests in test/t with PostgreSQL::Test::Cluster (shipped by
# postgresql-server-dev-15). The extension must be installed. PostgreSQL will
# not run as root, so as root the tests run as the postgres user in a
# scratch directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bindir=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
pgxs=$(cd "$(dirname "$(/usr/lib/postgresql/15/bin/pg_config --pgxs)")/../.." && pwd)
work=$(mktemp -d /tmp/sc_tap.XXXXXX)
# SC_TAP_KEEP=1 keeps the scratch directory (servers' logs in tmp_check/log).
if [ -n "${SC_TAP_KEEP:-}" ]; then
  trap 'echo "TAP logs kept in $work/tmp_check/log" >&2' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
cp -r "$top/test/t" "$work/t"
cmd=(env PATH="$bindir:$PATH" PERL5LIB="$pgxs/src/test/perl" TESTDIR="$work"
     PG_TEST_TIMEOUT_DEFAULT=${PG_TEST_TIMEOUT_DEFAULT:-60} PG_REGRESS="$pgxs/src/test/regress/pg_regress"
     prove -v --ext .pl "${@:-t/}")
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres "$work"
  cd "$work" && runuser -u postgres -- "${cmd[@]}"
else
  cd "$work" && "${cmd[@]}"
fi
