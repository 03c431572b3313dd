#!/usr/bin/env bash
# Usage: deploy/local/with-servers.sh NAME MYSQL_PORT REDIS_PORT -- COMMAND...
#
# Starts a private MariaDB and Redis in .run/NAME/ (fresh data each time) on
# the given loopback ports, waits until both answer, exports their addresses
# (QUNZU_MYSQL_DSN, QUNZU_REDIS_ADDR, QUNZU_RUN_DIR, ...), runs COMMAND, and
# stops both servers on exit: after success, failure, Ctrl-C or SIGTERM.
# Exits with COMMAND's status.
set -euo pipefail

if [[ $# -lt 5 || "$4" != "--" ]]; then
  echo "usage: $0 NAME MYSQL_PORT REDIS_PORT -- COMMAND..." >&2
  exit 2
fi
name=$1 mysql_port=$2 redis_port=$3
shift 4

root=$(cd "$(dirname "$0")/../.." && pwd)
run_dir="$root/.run/$name"
mysql_dir="$run_dir/mysql"
redis_dir="$run_dir/redis"
mysql_sock="$run_dir/mysql.sock"
mysql_pid="" redis_pid="" cmd_pid=""

log() { echo "[with-servers:$name] $*" >&2; }

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop_servers() {
  local status=$?
  # A second Ctrl-C must not cut the clean-up short and leave servers behind.
  trap - EXIT
  trap "" INT TERM
  if [[ -n "$cmd_pid" ]] && kill -0 "$cmd_pid" 2>/dev/null; then
    kill -TERM "$cmd_pid" 2>/dev/null || true
    wait "$cmd_pid" 2>/dev/null || true
  fi
  for pid in $redis_pid $mysql_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $redis_pid $mysql_pid; do
    # mariadbd flushes and exits on SIGTERM; give it up to 60 s, then kill.
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  log "servers stopped"
  exit "$status"
}

wait_until() {
  local what=$1 pid=$2; shift 2
  for _ in $(seq 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$what exited during start-up; see $run_dir/$what.log"
      tail -n 20 "$run_dir/$what.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  log "$what did not answer within 60 s; see $run_dir/$what.log"
  return 1
}

for port in "$mysql_port" "$redis_port"; do
  if port_in_use "$port"; then
    log "port $port on 127.0.0.1 is already in use; is another run still up? (make clean-servers)"
    exit 1
  fi
done

trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$run_dir"
mkdir -p "$mysql_dir" "$redis_dir"

user=$(id -un)
mariadb-install-db --no-defaults --datadir="$mysql_dir" --user="$user" \
  --auth-root-authentication-method=normal --skip-test-db >"$run_dir/mysql-install.log" 2>&1 || {
  log "mariadb-install-db failed; see $run_dir/mysql-install.log"
  tail -n 20 "$run_dir/mysql-install.log" >&2
  exit 1
}

# Durable settings: every commit is flushed to disk (R13 records survive a crash).
# No binary log (no replica here). The buffer pool holds a benchmark's tables
# (allocated as used; the default is 128 MiB). The redo log is MariaDB's
# default 96 MiB unless QUNZU_INNODB_LOG_FILE_SIZE says otherwise: `make
# bench` sets 512M so a burst of inserts is not throttled by checkpoint
# flushing as early; tests and `make run` keep the disk it would take.
mariadbd --no-defaults --datadir="$mysql_dir" --user="$user" \
  --socket="$mysql_sock" --port="$mysql_port" --bind-address=127.0.0.1 \
  --pid-file="$run_dir/mysql.pid" --log-error="$run_dir/mysql.log" \
  --innodb-flush-log-at-trx-commit=1 --sync-binlog=1 --innodb-doublewrite=1 \
  --innodb-buffer-pool-size=1G --innodb-log-file-size="${QUNZU_INNODB_LOG_FILE_SIZE:-96M}" \
  --max-connections=500 \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
  --default-time-zone=+00:00 --skip-name-resolve &
mysql_pid=$!

redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" \
  --unixsocket "$run_dir/redis.sock" --unixsocketperm 700 \
  --save "" --appendonly no --logfile "$run_dir/redis.log" &
redis_pid=$!

wait_until mysql "$mysql_pid" mariadb-admin --no-defaults --socket="$mysql_sock" -uroot ping
wait_until redis "$redis_pid" redis-cli -h 127.0.0.1 -p "$redis_port" ping

mariadb --no-defaults --socket="$mysql_sock" -uroot <<SQL
CREATE USER 'qunzu'@'127.0.0.1' IDENTIFIED BY 'qunzu';
CREATE USER 'qunzu'@'localhost' IDENTIFIED BY 'qunzu';
GRANT ALL PRIVILEGES ON *.* TO 'qunzu'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'qunzu'@'localhost';
SQL

export QUNZU_RUN_DIR="$run_dir"
export QUNZU_MYSQL_DSN="mysql://qunzu:qunzu@127.0.0.1:$mysql_port"
export QUNZU_MYSQL_SOCKET="$mysql_sock"
export QUNZU_REDIS_ADDR="127.0.0.1:$redis_port"
log "MariaDB on 127.0.0.1:$mysql_port (socket $mysql_sock), Redis on 127.0.0.1:$redis_port"

"$@" &
cmd_pid=$!
set +e
wait "$cmd_pid"
status=$?
set -e
cmd_pid=""
exit "$status"
