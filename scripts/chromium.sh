#!/usr/bin/env bash
set -euo pipefail
log() { printf '==> %s\n' "$*"; }
# Chromium and its WebDriver, for the console's browser story (tests/api/console.rs).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing chromium and chromium-driver from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi
