#!/usr/bin/env bash
set -euo pipefail
log() { printf '==> %s\n' "$*"; }
# nginx, the load balancer in front of the cluster stories (tests/common/cluster.rs).
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  log "installing nginx from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
  # The package starts a server on port 80; the tests start their own.
  service nginx stop >/dev/null 2>&1 || true
fi

