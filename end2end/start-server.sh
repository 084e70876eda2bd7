#!/usr/bin/env bash
# Serves Portcullis for the browser tests: a fresh SQLite data directory, the built site, one port.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTCULLIS_DATA_DIR="$E2E_DATA_DIR"
export PORTCULLIS_ADDR="127.0.0.1:$E2E_PORT"
export LEPTOS_SITE_ROOT=target/site
# Audit streams deliver to a receiver the tests run on loopback.
export PORTCULLIS_ALLOW_PRIVATE_OUTBOUND=1
exec "${PORTCULLIS_BIN:-target/release/portcullis}" serve
