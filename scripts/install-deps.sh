#!/usr/bin/env bash
# Installs, from Debian 12's own packages, everything shard_coordinator needs to
# build, test and demo: compilers, CMake, PostgreSQL 15 with headers, pgTAP,
# the client's libraries, Patroni and etcd (the high-availability test,
# test/t/023_patroni.pl, which runs its own etcd on ports of its own),
# prometheus-postgres-exporter (the test of contrib/prometheus), the Debian
# packaging tools (debian/, make deb and the package suite), and Node.js with
# npm (the Node package; its own dependencies come from npm with `npm ci`).
# Skips what is already there. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential g++ cmake pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
  postgresql-common libpq-dev
  libtap-parser-sourcehandler-pgtap-perl libipc-run-perl pgbouncer
  nlohmann-json3-dev libcli11-dev libgtest-dev prometheus-cpp-dev
  prometheus-postgres-exporter
  clang-format clang-tidy python3 procps perl libfaketime
  patroni python3-etcd etcd-server
  debhelper dpkg-dev postgresql-server-dev-all
  nodejs npm
)

# Node.js and npm count as there when their commands are (a Node.js from
# elsewhere, e.g. one that bundles npm, is not replaced).
command -v node >/dev/null 2>&1 && packages=("${packages[@]/nodejs}")
command -v npm >/dev/null 2>&1 && packages=("${packages[@]/npm}")

missing=()
for p in "${packages[@]}"; do
  [ -n "$p" ] || continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-deps: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null

# On a machine that runs systemd, the etcd-server package starts a system
# etcd (loopback ports 2379 and 2380). The tests start their own; one that
# this script brought along is stopped and disabled again.
if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi
# The exporter's package starts a system exporter on port 9187 where an init
# system runs. The test runs its own on a free port; leave nothing listening
# for the machine's PostgreSQL: stop and disable the service just installed
# (an exporter installed before is left alone).
if [[ " ${missing[*]} " == *" prometheus-postgres-exporter "* ]]; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus-postgres-exporter.service >/dev/null 2>&1 || true
  else
    $sudo /etc/init.d/prometheus-postgres-exporter stop >/dev/null 2>&1 || true
    $sudo update-rc.d prometheus-postgres-exporter disable >/dev/null 2>&1 || true
  fi
fi
