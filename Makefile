# Portcullis — `make run` to run it, `make test` to test everything. Both set up what is missing.
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(CURDIR)/target
FRONT_TARGET_DIR ?= $(CARGO_TARGET_DIR)/front
export CARGO_TARGET_DIR FRONT_TARGET_DIR
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export LEPTOS_OUTPUT_NAME := portcullis
export LEPTOS_SITE_ROOT := target/site

.PHONY: run build test setup setup-test site test-rust test-e2e lint fmt

## Build the release binary and the site, then run Portcullis on embedded SQLite (./data).
run: build
	target/release/portcullis serve

## The release build: target/release/portcullis serves the dashboard from target/site.
build: setup site
	cargo build -p server --release
	@if [ "$(CARGO_TARGET_DIR)" != "$(CURDIR)/target" ]; then \
	  mkdir -p target/release && cp -f "$(CARGO_TARGET_DIR)/release/portcullis" target/release/portcullis; fi

## Every test: lint, unit, integration on SQLite and PostgreSQL, end-to-end in Chromium.
test: setup setup-test site lint test-rust test-e2e

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup-test.sh

site:
	@scripts/build-site.sh

## Unit tests of every crate and the server's integration suite, where each test runs once on SQLite
## and once on PostgreSQL. One cargo invocation, so the crates build once with one feature set.
## One test at a time: each test boots a server on its own Tokio runtime, and Leptos's SSR
## occasionally stalls when several such runtimes render in one process at once (a single server
## under concurrent load does not; see the note in docs/design/testing.md).
test-rust:
	@scripts/drop-test-databases.sh
	cargo test -p identity -p app -p server --features app/ssr --lib --bins --tests -- --test-threads 1
	@scripts/drop-test-databases.sh

## Playwright drives Debian's Chromium through the dashboard, served by the debug binary that the
## test build above produced (same features, so nothing is rebuilt).
test-e2e:
	cargo test -p identity -p app -p server --features app/ssr --lib --bins --tests --no-run
	cd end2end && PORTCULLIS_BIN="$(CARGO_TARGET_DIR)/debug/portcullis" playwright test

lint:
	cargo fmt --all -- --check
	cargo clippy -p identity -p app -p server --features app/ssr --all-targets -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --target-dir "$(FRONT_TARGET_DIR)" -- -D warnings

fmt:
	cargo fmt --all
