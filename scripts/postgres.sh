#!/usr/bin/env bash
# Throwaway local PostgreSQL cluster for development and CI (Debian's packages, no Docker).
#
#   scripts/postgres.sh install   apt-get install postgresql if its binaries are missing
#   scripts/postgres.sh start     initdb on first use, start on 127.0.0.1:$PG_PORT, wait until it accepts connections
#   scripts/postgres.sh stop      fast shutdown (rolls back open transactions, disconnects clients)
#   scripts/postgres.sh status    exit 0 if running and accepting connections
#   scripts/postgres.sh url       print the SQLAlchemy URL of the superuser
#
# Environment (all optional):
#   PG_PORT       default 55432 (not 5432, so it never clashes with a system server)
#   PG_DATA_DIR   default .cache/pg/data, or /var/tmp/minorprot-pg-... when the postgres user
#                 cannot reach the repo (see default_data_dir)
#
# The superuser is `postgres`, with trust auth on the unix socket and loopback only: no password.
# It is a test cluster: fsync is off, so a machine crash (not a server stop) may lose it. Delete the data dir to reset.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"  # a relative PG_DATA_DIR is relative to the repo root

PG_PORT="${PG_PORT:-55432}"
PG_HOST=127.0.0.1

log() { echo "postgres.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pg_bindir() {  # the newest installed server version
  local d
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/postgres" ]] && echo "$d"
}

# postgres refuses to run as root, so as root every server command runs as the `postgres` OS user
# (from / so that an unreadable working directory does not bother it). Others run as themselves.
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

cmd_install() {
  if pg_bindir >/dev/null; then
    return 0
  fi
  ((EUID == 0)) || die "PostgreSQL is not installed; run as root: apt-get install -y postgresql"
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends postgresql
  pg_bindir >/dev/null || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres found"
}

# The data dir must be owned by the server's user, and the postgres user must be able to traverse
# every parent folder. .cache/ inside the repo works when the clone is world-traversable (typical);
# when it is not (e.g. a home directory with mode 700), fall back to /var/tmp, one folder per clone.
default_data_dir() {
  if ((EUID != 0)); then
    echo "$ROOT/.cache/pg/data"
    return
  fi
  mkdir -p "$ROOT/.cache/pg"
  chown postgres: "$ROOT/.cache/pg"
  if runuser -u postgres -- test -w "$ROOT/.cache/pg"; then
    echo "$ROOT/.cache/pg/data"
  else
    echo "/var/tmp/minorprot-pg-$EUID-$(echo -n "$ROOT" | sha256sum | cut -c1-8)/data"
  fi
}

resolve_data_dir() {
  DATA_DIR="${PG_DATA_DIR:-$(default_data_dir)}"
  [[ "$DATA_DIR" = /* ]] || DATA_DIR="$ROOT/$DATA_DIR"
  LOG_FILE="$DATA_DIR/server.log"
  # A unix socket path must fit in 107 bytes; keep it in the data dir (private to this cluster) when it does.
  SOCKET_DIR="$DATA_DIR"
  if ((${#DATA_DIR} + 20 > 107)); then
    SOCKET_DIR=/tmp
  fi
}

is_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }

our_server_running() {  # our data dir has a live postmaster (not just anyone on the port)
  [[ -f "$DATA_DIR/postmaster.pid" ]] && as_pg "$BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

init_cluster() {
  [[ -f "$DATA_DIR/PG_VERSION" ]] && return 0
  log "initdb $DATA_DIR"
  local parent
  parent="$(dirname "$DATA_DIR")"
  mkdir -p "$parent"
  if ((EUID == 0)); then
    chown postgres: "$parent"
  fi
  # trust: a throwaway cluster reachable from this machine only (socket + loopback, see pg_hba.conf).
  as_pg "$BIN/initdb" -D "$DATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=trust >/dev/null
  cat >>"$DATA_DIR/postgresql.conf" <<'EOF'

# ---- added by scripts/postgres.sh (port, listen address and socket dir are given by pg_ctl -o on start)
# Tests open connections from five services plus the test process.
max_connections = 200
# A throwaway test cluster: durability is not wanted, speed is.
fsync = off
synchronous_commit = off
full_page_writes = off
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

cmd_start() {
  cmd_install
  BIN="$(pg_bindir)"
  resolve_data_dir
  if our_server_running && is_ready; then
    log "already running on $PG_HOST:$PG_PORT (data $DATA_DIR)"
    return 0
  fi
  if ! our_server_running && is_ready; then
    die "something else already listens on $PG_HOST:$PG_PORT (set PG_PORT)"
  fi
  init_cluster
  if ! our_server_running; then
    log "starting PostgreSQL $(cat "$DATA_DIR/PG_VERSION") on $PG_HOST:$PG_PORT (data $DATA_DIR)"
    # -w -t: pg_ctl itself waits until the server accepts connections (or fails).
    if ! as_pg "$BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 \
      -o "-c port=$PG_PORT -c listen_addresses=$PG_HOST -c unix_socket_directories=$SOCKET_DIR" >/dev/null; then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "PostgreSQL did not start (log: $LOG_FILE)"
    fi
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    is_ready && break
    sleep 1
  done
  is_ready || { tail -n 30 "$LOG_FILE" >&2 || true; die "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT"; }
  log "ready: $(cmd_url)"
}

cmd_stop() {
  BIN="$(pg_bindir)" || { log "not installed"; return 0; }
  resolve_data_dir
  if ! our_server_running; then
    log "not running"
    return 0
  fi
  as_pg "$BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t 60 >/dev/null
  log "stopped"
}

cmd_status() {
  BIN="$(pg_bindir)" || { echo "not installed"; return 1; }
  resolve_data_dir
  if our_server_running && is_ready; then
    echo "running: $PG_HOST:$PG_PORT, data $DATA_DIR, $("$BIN/postgres" --version)"
    return 0
  fi
  echo "not running (data $DATA_DIR)"
  return 1
}

cmd_url() { echo "postgresql+psycopg://postgres@$PG_HOST:$PG_PORT/postgres"; }

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) cmd_url ;;
  *)
    echo "usage: $0 install|start|stop|status|url" >&2
    exit 2
    ;;
esac
