#!/usr/bin/env bash
# Start or stop the Synapse of `make run` (config rendered by `mxgate setup`): the main
# process and, with MXGATE_SYNAPSE_WORKERS=true, its workers (one file each in
# data/synapse/workers/) and a Redis when none answers at SYNAPSE_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=data/synapse
config=$dir/homeserver.yaml
pidfile=$dir/homeserver.pid
setting() { grep -E "^$1=" .env | tail -1 | cut -d= -f2- || true; }
url=$(setting MXGATE_HOMESERVER_URL)

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
workers() { ls "$dir"/workers/*.yaml 2>/dev/null || true; }
# Waits for a process's /health: up to 60 s, or until the process has died.
wait_healthy() { # name pidfile url log
  for _ in $(seq 120); do
    if curl -sf "$3/health" >/dev/null; then echo "$1 is up at $3 (log: $4)"; return 0; fi
    running "$2" || break
    sleep 0.5
  done
  echo "$1 did not answer at $3; see $4" >&2; return 1
}

# Redis carries the replication between Synapse's processes. The machine's own is used when
# it answers; otherwise, on this host only, one from Debian's redis-server package.
redis_url=$(setting SYNAPSE_REDIS_URL)
redis_address=${redis_url#*://}; redis_address=${redis_address##*@}; redis_address=${redis_address%%/*}
redis_host=${redis_address%:*}
redis_port=${redis_address##*:}
[ "$redis_port" = "$redis_address" ] && redis_port=6379
redis_answers() {
  command -v redis-cli >/dev/null && redis-cli -h "$redis_host" -p "$redis_port" ping 2>&1 | grep -qE 'PONG|NOAUTH'
}
start_redis() {
  if redis_answers; then return 0; fi
  case "$redis_host" in
    127.0.0.1|localhost) ;;
    *) echo "No Redis answers at $redis_host:$redis_port (SYNAPSE_REDIS_URL)" >&2; exit 1 ;;
  esac
  if ! command -v redis-server >/dev/null; then
    echo "==> installing Redis from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    if redis_answers; then return 0; fi
  fi
  local here; here=$(pwd)/$dir
  redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes --save '' --appendonly no \
    --dir "$here" --pidfile "$here/redis.pid" --logfile "$here/redis.log"
  for _ in $(seq 20); do
    if redis_answers; then echo "Redis is up at 127.0.0.1:$redis_port (log: $dir/redis.log)"; return 0; fi
    sleep 0.25
  done
  echo "Redis did not answer at 127.0.0.1:$redis_port; see $dir/redis.log" >&2; exit 1
}

case "${1:-}" in
  start)
    if [ -n "$(workers)" ]; then start_redis; fi
    if running "$pidfile"; then
      echo "Synapse already running (pid $(cat "$pidfile"))"
    else
      nohup .venv/bin/python -m synapse.app.homeserver -c "$config" >$dir/homeserver.log 2>&1 &
      echo $! >"$pidfile"
      wait_healthy Synapse "$pidfile" "$url" $dir/homeserver.log || exit 1
    fi
    for file in $(workers); do
      name=$(basename "$file" .yaml)
      port=$(grep -m1 -E '^ +port:' "$file" | grep -oE '[0-9]+')
      if running "$dir/workers/$name.pid"; then echo "$name already running"; continue; fi
      nohup .venv/bin/python -m synapse.app.generic_worker -c "$config" -c "$file" \
        >"$dir/workers/$name.log" 2>&1 &
      echo $! >"$dir/workers/$name.pid"
      wait_healthy "$name" "$dir/workers/$name.pid" "http://127.0.0.1:$port" "$dir/workers/$name.log" || exit 1
    done ;;
  stop)
    for worker_pid in "$dir"/workers/*.pid; do
      if running "$worker_pid"; then kill "$(cat "$worker_pid")"; echo "$(basename "$worker_pid" .pid) stopped"; fi
      rm -f "$worker_pid"
    done
    if running "$pidfile"; then kill "$(cat "$pidfile")"; echo "Synapse stopped"; fi
    rm -f "$pidfile"
    # Only the Redis this script started.
    if running $dir/redis.pid; then kill "$(cat $dir/redis.pid)"; echo "Redis stopped"; fi
    rm -f $dir/redis.pid ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
