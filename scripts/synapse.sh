#!/usr/bin/env bash
# Start or stop the Synapse of `make run` (config rendered by `mxgate setup`).
set -euo pipefail
cd "$(dirname "$0")/.."
config=data/synapse/homeserver.yaml
pidfile=data/synapse/homeserver.pid
url=$(grep -E '^MXGATE_HOMESERVER_URL=' .env | cut -d= -f2-)

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "Synapse already running (pid $(cat "$pidfile"))"; exit 0; fi
    nohup .venv/bin/python -m synapse.app.homeserver -c "$config" >data/synapse/homeserver.log 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 120); do
      if curl -sf "$url/health" >/dev/null; then echo "Synapse is up at $url (log: data/synapse/homeserver.log)"; exit 0; fi
      sleep 0.5
    done
    echo "Synapse did not answer at $url within 60 s; see data/synapse/" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; echo "Synapse stopped"; fi
    rm -f "$pidfile" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
