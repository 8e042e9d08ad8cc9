#!/usr/bin/env bash
# `make test`: every test on SQLite, then the store-backed tests again on PostgreSQL.
# Each test run starts one Synapse of its own (tests/common); nothing here mocks Matrix.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
# cargo test, minus the blank lines, banners and progress dots; its status is kept.
quiet_test() { "$@" 2>&1 | { grep -vE '^\s*$|^running [0-9]+ tests?$|^\.+$|^test result: ok\. 0 passed' || true; }; }

# A PostgreSQL to test against: the machine's own on 5432 when it answers, otherwise a
# throwaway cluster from Debian's packages on a port of our own.
postgres_url() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "postgres://postgres@127.0.0.1:5432/postgres"; return
  fi
  local port=55432 dir=/tmp/mxgate-test-pg
  if ! pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      log "installing PostgreSQL from Debian's packages" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq postgresql >/dev/null
    fi
    local bin; bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    rm -rf "$dir"; mkdir -p "$dir"; chown postgres "$dir"
    log "starting a throwaway PostgreSQL on 127.0.0.1:$port" >&2
    su postgres -c "$bin/initdb -A trust -U postgres -D $dir/data" >/dev/null
    su postgres -c "$bin/pg_ctl -s -w -D $dir/data -l $dir/log -o '-h 127.0.0.1 -p $port -k $dir' start" >&2
  fi
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

# nginx, the load balancer in front of the cluster stories (tests/common/cluster.rs).
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  log "installing nginx from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
  # The package starts a server on port 80; the tests start their own.
  service nginx stop >/dev/null 2>&1 || true
fi

log "cargo fmt and clippy"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings

log "tests on SQLite"
quiet_test cargo test -q --workspace --lib --bins --tests

pg=$(postgres_url)
# Every test makes its own database; the ones a previous run left are dropped first.
for db in $(psql "$pg" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'mxgate_test_%'"); do
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
done
log "store tests on PostgreSQL ($pg)"
# The paced story (80 sends outliving Synapse's 60 s push) tests timing against Synapse, not the
# store, and takes 90 s: it runs on SQLite only; the send queue's SQL runs here in every send story.
# --workspace, as above: the same feature set, so the PostgreSQL pass reuses the SQLite pass's
# build instead of compiling the test binaries again (two rebuilds, about 9 minutes on 2 cores).
MXGATE_TEST_POSTGRES="$pg" quiet_test cargo test -q --workspace --test api --test whatsapp --test outage --test wa_store_conformance -- --skip paced_batch
