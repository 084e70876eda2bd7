#!/usr/bin/env bash
# Drops the PostgreSQL databases the integration tests created (pc_test_*).
set -euo pipefail
psql -h 127.0.0.1 -U postgres -d postgres -Atc "select datname from pg_database where datname like 'pc_test_%'" |
  while read -r db; do
    psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists \"$db\" with (force)" >/dev/null
  done
rm -rf "${TMPDIR:-/tmp}"/pc_test_* 2>/dev/null || true
