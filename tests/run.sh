#!/usr/bin/env bash
# Runs the whole TrainFlow test suite: unit tests, then the end-to-end suite and the schemathesis
# contract test (tests/schemathesis/run.sh) on SQLite and on a fresh PostgreSQL database.
# Installs what a fresh machine lacks (Chromium and chromedriver for the portal's browser tests,
# schemathesis into the cache; the accessibility test installs axe-core from npm into the cache
# itself) and fails — never skips — when PostgreSQL is unreachable.
#
#   bash tests/run.sh                 # everything
#   TRAINFLOW_PG_URL=postgres://user@host:5432/postgres bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trainflow/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The connector components (plugins/, their own workspace) build into a cache of their own.
export TRAINFLOW_PLUGINS_TARGET_DIR="${TRAINFLOW_PLUGINS_TARGET_DIR:-$HOME/.cache/trainflow/plugins-target}"
PG_URL="${TRAINFLOW_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# This run's PostgreSQL databases carry its id (start time and process), so the run drops its
# own when it ends and never one of a run going on beside it; leftovers of runs that died more
# than a day ago are dropped too.
export TRAINFLOW_TEST_RUN="${TRAINFLOW_TEST_RUN:-$(date +%s)_$$}"
drop_databases() { # $1: a LIKE pattern
  command -v psql >/dev/null || return 0
  for db in $(psql "$PG_URL" -Atc "select datname from pg_database where datname like '$1'" 2>/dev/null); do
    psql "$PG_URL" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  done
}
drop_stale_databases() {
  command -v psql >/dev/null || return 0
  local cutoff=$(( $(date +%s) - 86400 ))
  for db in $(psql "$PG_URL" -Atc "select datname from pg_database where datname ~ '^trainflow_(test|cli)_[0-9]+_'" 2>/dev/null); do
    local started=${db#trainflow_*_}; started=${started%%_*}
    if [ "$started" -lt "$cutoff" ]; then
      psql "$PG_URL" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    fi
  done
}
cleanup() {
  drop_databases "trainflow\_test\_${TRAINFLOW_TEST_RUN}\_%"
  drop_databases "trainflow\_cli\_${TRAINFLOW_TEST_RUN}\_%"
}
trap cleanup EXIT

step "Checking prerequisites"
if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs)" >&2; exit 1
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  step "Adding the wasm32-wasip2 target for the connector components"
  rustup target add wasm32-wasip2
fi
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  step "Installing Chromium and chromedriver for the portal's browser tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver >/dev/null
fi

step "Checking PostgreSQL"
if command -v pg_isready >/dev/null && ! pg_isready -q -d "$PG_URL"; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    sleep 2
  fi
fi
# If it is still unreachable the PostgreSQL run below fails loudly; it is never skipped.

step "Building"
cargo build --workspace --all-targets --locked

step "Building the connector components (wasm32-wasip2)"
(cd plugins && CARGO_TARGET_DIR="$TRAINFLOW_PLUGINS_TARGET_DIR" cargo build --release --target wasm32-wasip2 --locked)

step "Connector SDK and first-party connector unit tests"
CARGO_TARGET_DIR="$TRAINFLOW_PLUGINS_TARGET_DIR" cargo test --manifest-path sdk/Cargo.toml --locked
CARGO_TARGET_DIR="$TRAINFLOW_PLUGINS_TARGET_DIR" cargo test --manifest-path plugins/Cargo.toml --locked

step "Unit tests and the end-to-end suite on SQLite"
TRAINFLOW_TEST_BACKEND=sqlite cargo test --workspace --locked --no-fail-fast

# The OpenAPI document as the contract: schemathesis (pinned, installed into the cache on first
# use) over every operation against the debug binary with the demo tenant; fails on any failure.
step "Contract test: schemathesis over the OpenAPI document on SQLite"
bash tests/schemathesis/run.sh sqlite

drop_stale_databases

# The same package selection as the SQLite pass (so the same features and the same build),
# integration test targets only: the unit tests do not touch a database.
step "The end-to-end suite on PostgreSQL (a fresh database per test binary)"
TRAINFLOW_TEST_BACKEND=postgres TRAINFLOW_TEST_PG_URL="$PG_URL" \
  cargo test --workspace --locked --no-fail-fast --test '*'

step "Contract test: schemathesis over the OpenAPI document on PostgreSQL (with the stateful phase)"
bash tests/schemathesis/run.sh postgres "$PG_URL"

step "All tests passed on SQLite and PostgreSQL"
