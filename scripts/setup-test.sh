#!/usr/bin/env bash
# Installs and starts what the tests need and is missing: Debian's Chromium, and a PostgreSQL server on
# 127.0.0.1:5432 (trust auth). Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq || true; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if [ ! -x /usr/bin/chromium ]; then
  echo "==> apt-get install chromium"
  apt_install chromium
fi

PGHOST_ADDR=${PGHOST_ADDR:-127.0.0.1}
if ! pg_isready -q -h "$PGHOST_ADDR" -p 5432 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "==> apt-get install postgresql"
    apt_install postgresql
  fi
  echo "==> starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h "$PGHOST_ADDR" -p 5432 && break
    sleep 1
  done
  pg_isready -h "$PGHOST_ADDR" -p 5432
fi
if ! psql -h "$PGHOST_ADDR" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  echo "PostgreSQL on $PGHOST_ADDR:5432 does not accept user postgres without a password (trust auth expected)." >&2
  exit 1
fi
