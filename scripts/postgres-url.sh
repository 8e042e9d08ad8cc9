#!/usr/bin/env bash
set -euo pipefail
# Prints the URL of a PostgreSQL for the tests and the bench: the machine's own on 5432
# when it answers, otherwise a throwaway cluster from Debian's packages on a port of our own.
log() { printf '==> %s\n' "$*" >&2; }
main() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "postgres://postgres@127.0.0.1:5432/postgres"; return
  fi
  local port=55432 dir=/tmp/mxgate-test-pg
  if ! pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      log "installing PostgreSQL from Debian's packages"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2 && apt-get install -y -qq postgresql >/dev/null
    fi
    local bin; bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    rm -rf "$dir"; mkdir -p "$dir"; chown postgres "$dir"
    log "starting a throwaway PostgreSQL on 127.0.0.1:$port"
    su postgres -c "$bin/initdb -A trust -U postgres -D $dir/data" >/dev/null
    su postgres -c "$bin/pg_ctl -s -w -D $dir/data -l $dir/log -o '-h 127.0.0.1 -p $port -k $dir' start" >&2
  fi
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

main
