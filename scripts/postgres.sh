#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL state store: Debian's server
# binaries, a data directory and a socket directory under target/postgres, listening on loopback
# only, on a free port. Never a system service.
#
#   scripts/postgres.sh start   creates the cluster if needed, starts it if it is not running, and
#                               prints `export EXCHANGE_SYNC_TEST_POSTGRES=postgres://...` (the
#                               tests read that variable): eval "$(scripts/postgres.sh start)"
#   scripts/postgres.sh stop    stops it (the data stays for the next start)
#   scripts/postgres.sh url     prints the URL of the running cluster
#
# initdb and the server refuse to run as root: when this script runs as root, the cluster belongs
# to the unprivileged user `nobody` and is started through runuser. The password of the cluster's
# user is made up when the cluster is created and kept in target/postgres/password (mode 600).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$root/target/postgres
mkdir -p "$dir"
files=$dir
if [ "$(id -u)" = 0 ]; then
  # nobody must reach the directories on the way (they are root's) and own its own.
  chmod o+x "$root" "$root/target" "$dir" 2>/dev/null || true
  if ! runuser -u nobody -- test -x "$dir"; then
    # A directory of mode 700 on the way (root's home, say) keeps nobody out of target/: the
    # cluster's files go to a directory of their own under /tmp, which target/postgres/files names.
    if [ -f "$dir/files" ] && [ -d "$(cat "$dir/files")" ]; then
      files=$(cat "$dir/files")
    else
      files=$(mktemp -d /tmp/exchange-sync-postgres.XXXXXX)
      chmod 755 "$files"
      echo "$files" >"$dir/files"
    fi
  fi
fi
data=$files/data
sock=$files/socket
logs=$files/log
user=exsync

bin=${PG_BIN:-}
if [ -z "$bin" ]; then
  for v in 17 16 15 14 13; do
    if [ -x /usr/lib/postgresql/$v/bin/initdb ]; then bin=/usr/lib/postgresql/$v/bin; break; fi
  done
fi
if [ -z "$bin" ]; then
  echo "scripts/postgres.sh: no PostgreSQL server binaries (install the Debian package postgresql)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u nobody -- "$@"); else "$@"; fi
}

url() {
  local port password
  port=$(cat "$dir/port")
  password=$(cat "$dir/password")
  printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$user" "$password" "$port" "$user"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  mkdir -p "$dir"
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data" "$sock" "$logs"
    mkdir -p "$data" "$sock" "$logs"
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/password")
    local pwfile=$files/pwfile
    cp "$dir/password" "$pwfile"
    if [ "$(id -u)" = 0 ]; then
      chown -R nobody "$data" "$sock" "$logs" "$pwfile"
    fi
    as_owner "$bin/initdb" -D "$data" -U "$user" --pwfile="$pwfile" --auth-local=scram-sha-256 \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
max_connections = 200
# A throwaway cluster for tests: durability is not what is tested here.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "export EXCHANGE_SYNC_TEST_POSTGRES=$(url)"
    return
  fi
  free_port >"$dir/port"
  as_owner "$bin/pg_ctl" -D "$data" -l "$logs/server.log" -w -t 60 -o "-p $(cat "$dir/port")" start >/dev/null ||
    { cat "$logs/server.log" >&2; exit 1; }
  PGPASSWORD=$(cat "$dir/password") "$bin/psql" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -U "$user" -d postgres \
    -c "SELECT 1 FROM pg_database WHERE datname = '$user'" -tA | grep -q 1 ||
    PGPASSWORD=$(cat "$dir/password") "$bin/createdb" -h 127.0.0.1 -p "$(cat "$dir/port")" -U "$user" "$user"
  echo "export EXCHANGE_SYNC_TEST_POSTGRES=$(url)"
}

stop() {
  if [ -f "$data/PG_VERSION" ]; then
    as_owner "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: scripts/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
