#!/usr/bin/env bash
# `make test`: every test on SQLite, then the store-backed tests again on PostgreSQL.
# Each test run starts one Synapse of its own (tests/common); nothing here mocks Matrix.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
# cargo test, minus the blank lines, banners and progress dots; its status is kept.
quiet_test() { "$@" 2>&1 | { grep -vE '^\s*$|^running [0-9]+ tests?$|^\.+$|^test result: ok\. 0 passed' || true; }; }

scripts/nginx.sh
scripts/chromium.sh

log "cargo fmt and clippy"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings

log "tests on SQLite"
# Built once, then the whatsapp connector's stories run beside everything else: both wait
# on Synapse and sockets more than on the CPU (as the PostgreSQL pass below), which keeps
# a fresh clone's make test within 30 minutes. Every run here selects the whole workspace
# and picks its targets: the features cargo unifies depend on the packages selected, and
# `-p mxgate` or `--exclude mxgate` rebuilt the workspace's crates and most dependencies
# (7 minutes of both cores, while the other runs waited on the build lock).
cargo test -q --workspace --lib --bins --tests --no-run
# Test targets as `--test` options: those of the packages other than mxgate (`others`),
# or mxgate's but the whatsapp and outage stories (`mxgate`).
targets() {
  cargo metadata -q --no-deps --format-version 1 | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    for target in package["targets"]:
        if "test" in target["kind"] and (package["name"] == "mxgate") == (sys.argv[1] == "mxgate") \
                and target["name"] not in ("whatsapp", "outage"):
            print("--test", target["name"])' "$1"
}
# The outage stories (a homeserver stopped and started) wait the most of all, and the
# simulator's own stories run one after another; they go beside the rest too.
sqlite_wa_log=$(mktemp)
sqlite_outage_log=$(mktemp)
sqlite_others_log=$(mktemp)
(quiet_test cargo test -q --workspace --test whatsapp) >"$sqlite_wa_log" 2>&1 &
sqlite_wa=$!
(quiet_test cargo test -q --workspace --test outage) >"$sqlite_outage_log" 2>&1 &
sqlite_outage=$!
# shellcheck disable=SC2046 # one word per option
(quiet_test cargo test -q --workspace $(targets others)) >"$sqlite_others_log" 2>&1 &
sqlite_others=$!
sqlite_status=0
# shellcheck disable=SC2046
quiet_test cargo test -q --workspace --lib --bins $(targets mxgate) || sqlite_status=$?
wait "$sqlite_others" || sqlite_status=$?
wait "$sqlite_outage" || sqlite_status=$?
wait "$sqlite_wa" || sqlite_status=$?
cat "$sqlite_others_log" "$sqlite_outage_log" "$sqlite_wa_log"
rm -f "$sqlite_others_log" "$sqlite_wa_log" "$sqlite_outage_log"
if [ "$sqlite_status" -ne 0 ]; then exit "$sqlite_status"; fi

pg=$(scripts/postgres-url.sh)
# Every test makes its own database; the ones a previous run left are dropped first.
for db in $(psql "$pg" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'mxgate_test_%'"); do
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
done
log "store tests on PostgreSQL ($pg)"
# The device leases' SQL, with processes racing for devices (bridge/src/lease.rs), and the
# wake-ups between processes (bridge/src/wake.rs).
MXGATE_TEST_POSTGRES="$pg" quiet_test cargo test -q --workspace --lib -- lease:: wake::
# The paced story (80 sends outliving Synapse's 60 s push) tests timing against Synapse, not the
# store, and takes 90 s: it runs on SQLite only; the send queue's SQL runs here in every send story.
# --workspace, as above: the same feature set, so the PostgreSQL pass reuses the SQLite pass's
# build instead of compiling the test binaries again (two rebuilds, about 9 minutes on 2 cores).
# The schemathesis pass checks the HTTP contract, which is the same on both stores; its
# minute runs on SQLite only (the api stories exercise every query here). So do the
# console's browser story and the terminal's (`mxgate link` in a pseudo-terminal): they
# are about a page and a terminal, whose API calls the api stories make here.
# On the whatsapp connector, the stories about the store: the cluster (processes sharing a store
# need PostgreSQL; they run here only) and the durable queues. Its other stories are about the
# protocol, and their SQL is the one the api stories run here; they run on SQLite above.
# The two runs wait on Synapse, sockets and leases far more than on the CPU (a test run uses
# well under one of the 2 cores), so they go side by side, each with its own Synapse and
# databases, which keeps make test within its 30 minutes; their output follows, in order.
api_log=$(mktemp)
wa_log=$(mktemp)
outage_log=$(mktemp)
trap 'rm -f "$api_log" "$wa_log" "$outage_log"' EXIT
(MXGATE_TEST_POSTGRES="$pg" quiet_test cargo test -q --workspace --test api --test wa_store_conformance \
  -- --skip fuzz:: --skip console:: --skip cli::) >"$api_log" 2>&1 &
api=$!
(MXGATE_TEST_POSTGRES="$pg" quiet_test cargo test -q --workspace --test outage) >"$outage_log" 2>&1 &
outage=$!
(MXGATE_TEST_POSTGRES="$pg" quiet_test cargo test -q --workspace --test whatsapp -- cluster:: reliability:: \
  --skip paced_batch) >"$wa_log" 2>&1 &
wa=$!
status=0
wait "$api" || status=$?
wait "$outage" || status=$?
wait "$wa" || status=$?
cat "$api_log" "$outage_log" "$wa_log"
exit "$status"
