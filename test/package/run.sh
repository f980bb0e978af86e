#!/usr/bin/env bash
# The Debian packages (suite `package` of scripts/run-tests.sh): builds
# postgresql-15-shard-coordinator and shard-coordinator-agent with
# dpkg-buildpackage from a copy of the tree (scripts/build-deb.sh), installs
# them with apt, and checks them:
#
#   - each package holds what it should, at the release's version;
#   - the systemd unit template: its ExecStart binary is the package's, its
#     environment file is /etc/shard-coordinator/%i.env, and every variable
#     it uses or the agent reads is the one the example environment file and
#     README document (systemd-analyze verify too, where systemd is there);
#   - a smoke test on a throwaway server (scripts/with-pg.sh): CREATE
#     EXTENSION with the package's files; the unit's ExecStart, run as
#     systemd would with an environment file in the example's format and as
#     an unprivileged user, gets shard 0 of 1 and runs its command; SIGTERM
#     (systemctl stop) stops the command and leaves the cluster;
#   - purging removes every file of both packages.
#
# The machine is left as it was found: the files at the packages' paths
# that exist beforehand (a `make install` puts the extension at the same
# paths) are saved before the installation and put back after the purge,
# also when a check fails or the test is interrupted. If either package is
# installed already, the test skips rather than remove it.
#
# Prints TAP lines ("ok N - ...", "not ok N - ..."); exits 1 if any failed.
# Needs root or sudo (dpkg), the build dependencies (scripts/install-deps.sh)
# and about 2 minutes on 2 CPUs (SC_DEB_PARALLEL jobs, default 2).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

packages=(postgresql-15-shard-coordinator shard-coordinator-agent)
unit=/lib/systemd/system/shard-coordinator@.service
example=/usr/share/doc/shard-coordinator-agent/examples/shard-coordinator.env

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # skip $*"; }
check() {  # description command... : ok if the command succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
finish() {
  [ "$failed" -eq 0 ] && exit 0
  exit 1
}

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    not_ok "installing packages needs root or sudo"
    finish
  fi
fi
apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)

for p in "${packages[@]}"; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
    skip "$p is installed on this machine; the test would remove it"
    finish
  fi
done

restore() {
  [ -z "$restored" ] && [ -f "$saved/list" ] || return 0
  restored=1
  # A file that is no longer the package's was installed by someone else
  # meanwhile (a `make install` running at the same time): that one is put
  # back rather than the one saved before.
  : >"$work/changed"
  [ -n "$installing" ] && while read -r f; do
    if { [ -e "$f" ] || [ -L "$f" ]; } && ! same "$f" "$work/pkgroot$f"; then
      $sudo mkdir -p "$saved/files$(dirname "$f")" && $sudo cp -a "$f" "$saved/files$f" &&
        echo "$f" >>"$work/changed"
      grep -qxF -- "$f" "$saved/list" || echo "$f" >>"$saved/list"
    fi
  done <"$work/files"
  if [ -s "$work/changed" ]; then
    echo "# changed by another process while the packages were installed: $(tr '\n' ' ' <"$work/changed")"
  fi
  for p in "${packages[@]}"; do
    if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
      $sudo dpkg --purge "$p" >/dev/null 2>&1 || echo "# could not purge $p" >&2
    fi
  done
  # Directories first (dpkg removes those it thinks are its own when empty),
  # then each file under a temporary name and renamed into place, so that
  # a server loading the library meanwhile never sees half a file.
  while read -r mode owner group d; do
    [ -d "$d" ] || { $sudo mkdir -p "$d" && $sudo chown "$owner:$group" "$d" && $sudo chmod "$mode" "$d"; }
  done <"$saved/dirs"
  while read -r f; do
    $sudo mkdir -p "$(dirname "$f")"
    $sudo cp -a "$saved/files$f" "$f.sc-restore.$$" && $sudo mv -f "$f.sc-restore.$$" "$f" ||
      echo "# could not put back $f (saved in $saved/files$f)" >&2
  done <"$saved/list"
}
same() {  # path1 path2: the same file content, or the same symbolic link
  if [ -L "$1" ] || [ -L "$2" ]; then
    [ -L "$1" ] && [ -L "$2" ] && [ "$(readlink "$1")" = "$(readlink "$2")" ]
  else
    cmp -s "$1" "$2"
  fi
}

cleanup() {
  restore
  $sudo rm -rf "$work"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/sc-package.XXXXXX")
chmod 0755 "$work"  # apt reads the .deb files as _apt
saved=$work/saved
restored=""
installing=""
trap cleanup EXIT
trap 'not_ok "interrupted"; exit 1' INT TERM HUP

# --- build -------------------------------------------------------------------
start=$SECONDS
if DEB_BUILD_OPTIONS="nocheck parallel=${SC_DEB_PARALLEL:-2}" \
    scripts/build-deb.sh "$work/debs" >"$work/build.log" 2>&1; then
  ok "dpkg-buildpackage -us -uc -b built both packages ($((SECONDS - start)) s)"
else
  tail -n 60 "$work/build.log" | sed 's/^/# /'
  not_ok "dpkg-buildpackage -us -uc -b built both packages"
  finish
fi
release=$(python3 -c 'import json; print(json.load(open("META.json"))["version"])')
debs=()
for p in "${packages[@]}"; do
  debs+=("$work/debs/${p}_${release}_$(dpkg --print-architecture).deb")
done
for d in "${debs[@]}"; do
  if [ ! -f "$d" ]; then
    not_ok "$(basename "$d") was built (the release is $release)"
    ls "$work/debs" | sed 's/^/# built: /'
    finish
  fi
done
ext_deb=${debs[0]}
agent_deb=${debs[1]}

# --- what the packages hold ---------------------------------------------------
contents() { dpkg-deb -c "$1" | awk '{print substr($1, 1, 1), $6}' | sed 's| \./| /|; s|/$||'; }
contents "$ext_deb" >"$work/ext.list"
contents "$agent_deb" >"$work/agent.list"
has() { grep -qxF -- "- $2" "$work/$1.list"; }

missing=()
for f in lib/shard_coordinator.so; do
  has ext "/usr/lib/postgresql/15/$f" || missing+=("$f")
done
for f in shard_coordinator.control $(cd sql && ls shard_coordinator--*.sql); do
  has ext "/usr/share/postgresql/15/extension/$f" || missing+=("$f")
done
check "the extension's package holds the library, the control file and every SQL script${missing[*]:+ (missing: ${missing[*]})}" \
  test ${#missing[@]} -eq 0
check "the agent's package holds /usr/bin/shard-coordinator, $unit and the example environment file" \
  bash -c 'grep -qxF -- "- /usr/bin/shard-coordinator" "$1" && grep -qxF -- "- $2" "$1" &&
           grep -qxF -- "- $3" "$1" && grep -qxF -- "d /etc/shard-coordinator" "$1"' \
  _ "$work/agent.list" "$unit" "$example"
versions=$(for d in "${debs[@]}"; do dpkg-deb -f "$d" Version; done | sort -u)
check "both packages have the release's version $release (got: $(echo $versions))" \
  test "$versions" = "$release"

# --- save what is at the packages' paths, and put it back at the end ----------
# Nothing is installed unless every file there was saved and its copy
# checked.
mkdir -p "$saved/files"
cat "$work/ext.list" "$work/agent.list" | awk '$1 != "d" {print $2}' | sort -u >"$work/files"
cat "$work/ext.list" "$work/agent.list" | awk '$1 == "d" {print $2}' | sort -u >"$work/dirs"
while read -r d; do
  [ -d "$d" ] && stat -c '%a %U %G %n' "$d"
done <"$work/dirs" >"$saved/dirs"
mkdir "$work/pkgroot"
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$work/pkgroot"; done
save_failed=""
: >"$saved/list.tmp"
while read -r f; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if $sudo mkdir -p "$saved/files$(dirname "$f")" && $sudo cp -a "$f" "$saved/files$f" &&
      same "$f" "$saved/files$f"; then
    echo "$f" >>"$saved/list.tmp"
  else
    save_failed+="$f "
  fi
done <"$work/files"
if [ -n "$save_failed" ]; then
  not_ok "saving the files at the packages' paths before installing (failed: $save_failed); nothing installed"
  finish
fi
mv "$saved/list.tmp" "$saved/list"  # from now on, cleanup purges and puts back

# --- install ------------------------------------------------------------------
others=$(apt-get -s "${apt_opts[@]}" install "${debs[@]}" 2>/dev/null |
  awk '/^Inst /{print $2}' | grep -vxF -e "${packages[0]}" -e "${packages[1]}" | tr '\n' ' ')
if [ -n "$others" ]; then
  not_ok "apt would install more than the two packages: $others(scripts/install-deps.sh installs what they need)"
  finish
fi
installing=1
installed_at=$SECONDS
if $sudo env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install "${debs[@]}" >"$work/apt.log" 2>&1; then
  ok "apt-get install ./${packages[0]}_*.deb ./${packages[1]}_*.deb (files saved first: $(wc -l <"$saved/list"))"
else
  sed 's/^/# /' "$work/apt.log"
  not_ok "apt-get install ./${packages[0]}_*.deb ./${packages[1]}_*.deb"
  finish
fi
check "dpkg counts the installed library as the package's" \
  bash -c 'dpkg -S /usr/lib/postgresql/15/lib/shard_coordinator.so | grep -q "^postgresql-15-shard-coordinator:"'

# --- the systemd unit, statically ---------------------------------------------
unit_value() { sed -n "s/^$1=//p" "$unit"; }
exec_start=$(unit_value ExecStart)
binary=${exec_start%% *}
check "ExecStart runs $binary, the agent's package's executable" \
  bash -c '[ -x "$1" ] && dpkg -S "$1" | grep -q "^shard-coordinator-agent:"' _ "$binary"
check "EnvironmentFile is /etc/shard-coordinator/%i.env (got: $(unit_value EnvironmentFile))" \
  test "$(unit_value EnvironmentFile)" = "/etc/shard-coordinator/%i.env"
check "KillMode=mixed: SIGTERM reaches the agent alone, which stops its command first" \
  test "$(unit_value KillMode)" = mixed
# The variables: those the unit expands, those the agent reads itself (its
# --help says "Env:"); each must be in the example file and README, and the
# example must name no SHARD_COORDINATOR_* variable that nothing reads.
unit_vars=$(grep -v '^#' "$unit" | grep -oE '\$\{?[A-Za-z_][A-Za-z0-9_]*' | tr -d '${' | sort -u)
agent_vars=$(/usr/bin/shard-coordinator run --help | grep -oE 'Env:[A-Z_]+' | cut -d: -f2 | sort -u)
example_vars=$(sed -nE 's/^#?([A-Z_][A-Z0-9_]*)=.*/\1/p' "$example" | sort -u)
read_vars=$(printf '%s\n' $unit_vars $agent_vars | sort -u)
undocumented=$(comm -23 <(echo "$read_vars") <(echo "$example_vars") | tr '\n' ' ')
unread=$(comm -13 <(echo "$read_vars") <(echo "$example_vars") | grep '^SHARD_COORDINATOR_' | tr '\n' ' ')
not_in_readme=$(for v in $read_vars; do grep -q "$v" README.md || echo "$v"; done | tr '\n' ' ')
check "the example environment file documents every variable the unit and the agent read ($(echo $read_vars))${undocumented:+; missing: $undocumented}${unread:+; read by nothing: $unread}" \
  test -z "$undocumented$unread"
check "README documents them too${not_in_readme:+ (missing: $not_in_readme)}" test -z "$not_in_readme"
check "ExecStart expands each variable as \$NAME (split at spaces, as the smoke test below does), none as \${NAME}" \
  bash -c '! grep -qE "^ExecStart=.*[$][{]" "$1"' _ "$unit"
if command -v systemd-analyze >/dev/null 2>&1; then
  if out=$(systemd-analyze verify --man=no "$unit" 2>&1); then
    ok "systemd-analyze verify $unit"
  else
    echo "$out" | sed 's/^/# /'
    not_ok "systemd-analyze verify $unit"
  fi
else
  skip "systemd-analyze verify: systemd is not installed"
fi

# --- smoke test: the extension and an agent started like the unit does ------
cat >"$work/child.sh" <<'EOF'
#!/bin/sh
# The worker command: says which shard it got, then works until stopped.
echo "$$ $SHARD_INDEX $SHARD_COUNT $SHARD_EPOCH $SHARD_CLUSTER $SHARD_MEMBER" >"$SMOKE_OUT"
exec sleep 600
EOF
mkdir -m 0777 "$work/run"
chmod 0755 "$work/child.sh"
cat >"$work/smoke.sh" <<'EOF'
#!/usr/bin/env bash
# Runs inside scripts/with-pg.sh: the database $PGDATABASE has the extension.
set -uo pipefail
work=$1 unit=$2 exec_start=$3 n=$4
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

v=$(q "SELECT extversion FROM pg_extension WHERE extname = 'shard_coordinator'")
lib=$(q "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
if [ "$v" = "1.1" ] && [ "$lib" = shard_coordinator ]; then
  ok "CREATE EXTENSION shard_coordinator ($v) from the package, preloaded"
else
  not_ok "CREATE EXTENSION shard_coordinator (got version '$v', preloaded '$lib')"
fi

port=${PGPORT:-$(q "SHOW port")}
cat >"$work/run/smoke.env" <<ENV
# In the format of the example file (one NAME=value a line, quoted values).
SHARD_COORDINATOR_DSN="host=${PGHOST:-localhost} port=$port dbname=$PGDATABASE user=$PGUSER password=$PGPASSWORD"
SHARD_COORDINATOR_CLUSTER=smoke
SHARD_COORDINATOR_MEMBER=package-smoke
SHARD_COORDINATOR_COMMAND="$work/child.sh"
SHARD_COORDINATOR_OPTIONS="-v --kill-timeout 5s"
SMOKE_OUT=$work/run/child.out
ENV
# As systemd would: a clean environment, the file's variables, the
# ExecStart line with each $NAME split at spaces, an unprivileged user
# (DynamicUser=yes), and stdin from /dev/null.
( cd / && exec env -i PATH=/usr/bin:/bin \
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
    bash -c 'set -a; . "$1"; set +a; eval "exec $2"' _ "$work/run/smoke.env" "$exec_start" \
    </dev/null >"$work/run/agent.log" 2>&1 ) &
agent=$!
for _ in $(seq 100); do
  [ -s "$work/run/child.out" ] && break
  kill -0 "$agent" 2>/dev/null || break
  sleep 0.2
done
[ -f "$work/run/child.out" ] && read -r child shard count epoch cluster member <"$work/run/child.out"
row=$(q "SELECT shard, num_shards, state FROM shard_coordinator.members WHERE cluster = 'smoke' AND member = 'package-smoke'")
if [ "${shard:-}" = 0 ] && [ "${count:-}" = 1 ] && [ "${cluster:-}" = smoke ] && [ "$row" = "0|1|active" ]; then
  ok "the unit's ExecStart (as nobody): the agent got shard 0 of 1 (epoch $epoch) and ran its command with SHARD_INDEX=0 SHARD_COUNT=1"
else
  sed 's/^/# agent: /' "$work/run/agent.log"
  not_ok "the unit's ExecStart: the agent got shard 0 of 1 (command saw '${shard:-} ${count:-} ${cluster:-}', members view '$row')"
fi

# systemctl stop with KillMode=mixed: SIGTERM to the agent alone.
kill -TERM "$agent" 2>/dev/null
rc=""
for _ in $(seq 100); do
  if ! kill -0 "$agent" 2>/dev/null; then wait "$agent"; rc=$?; break; fi
  sleep 0.2
done
left=$(q "SELECT count(*) FROM shard_coordinator.members WHERE cluster = 'smoke'")
if [ "$rc" = 0 ] && [ -n "${child:-}" ] && ! kill -0 "$child" 2>/dev/null && [ "$left" = 0 ]; then
  ok "SIGTERM (systemctl stop): the command stopped, the agent left the cluster and exited 0"
else
  kill -KILL "$agent" 2>/dev/null
  sed 's/^/# agent: /' "$work/run/agent.log"
  not_ok "SIGTERM: exit status '${rc}', command ${child:-?} still running: $(kill -0 "${child:-0}" 2>/dev/null && echo yes || echo no), members left: '$left'"
fi
[ -n "${child:-}" ] && kill -KILL "$child" 2>/dev/null
[ "$failed" -eq 0 ]
EOF
check "shard-coordinator --version says the release ($(/usr/bin/shard-coordinator --version))" \
  test "$(/usr/bin/shard-coordinator --version)" = "shard-coordinator $release"
scripts/with-pg.sh bash "$work/smoke.sh" "$work" "$unit" "$exec_start" "$n" >"$work/smoke.log" 2>&1
smoke_rc=$?
cat "$work/smoke.log"
smoke_ok=$(grep -cE '^ok [0-9]+' "$work/smoke.log")
smoke_not_ok=$(grep -cE '^not ok [0-9]+' "$work/smoke.log")
n=$((n + smoke_ok + smoke_not_ok))
failed=$((failed + smoke_not_ok))
if [ "$smoke_rc" -ne 0 ] && [ "$smoke_not_ok" -eq 0 ]; then
  not_ok "the smoke test on a throwaway server ran (exit $smoke_rc)"
fi

# --- purge, and the machine as it was -------------------------------------------
if $sudo env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" purge "${packages[@]}" >"$work/apt.log" 2>&1; then
  left_over=$(awk '$1 != "d" {print $2}' "$work/ext.list" "$work/agent.list" |
    while read -r f; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done | tr '\n' ' ')
  check "apt-get purge removed every file of both packages${left_over:+ (left: $left_over)}" test -z "$left_over"
else
  sed 's/^/# /' "$work/apt.log"
  not_ok "apt-get purge ${packages[*]}"
fi
restore
differ=$(while read -r f; do same "$saved/files$f" "$f" || echo "$f"; done <"$saved/list" | tr '\n' ' ')
check "the $(wc -l <"$saved/list") files that were at the packages' paths before are back as they were, after $((SECONDS - installed_at)) s${differ:+ (not: $differ)}" \
  test -z "$differ"
finish
