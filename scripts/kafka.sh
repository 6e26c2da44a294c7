#!/usr/bin/env bash
# Local single-node Kafka (KRaft, combined broker+controller) for development and CI.
#
#   scripts/kafka.sh fetch    download the broker jars from Maven Central into .cache/kafka/libs (once per version)
#   scripts/kafka.sh start    format storage on first use, start in the background, wait until it answers
#   scripts/kafka.sh stop     SIGTERM, wait, SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   scripts/kafka.sh status   exit 0 if running and answering
#
# Environment (all optional):
#   KAFKA_VERSION          default 4.1.1
#   KAFKA_PORT             client listener on 127.0.0.1, default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1, default 9093
#   KAFKA_DATA_DIR         config, pid, logs and topic data; default data/kafka (relative to the repo root)
#   KAFKA_HEAP_OPTS        default "-Xms256m -Xmx1536m" (every test stack adds its own topics; 512m ran out)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker, default 60
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL, default 30
#
# Why not the Kafka tarball: the machines reach Maven Central only, and the broker is just a classpath
# of jars plus `java kafka.Kafka server.properties`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"  # relative paths (KAFKA_DATA_DIR, .cache) are relative to the repo root

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1536m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

CACHE_DIR="$ROOT/.cache/kafka"
LIBS_DIR="$CACHE_DIR/libs"
POM="$ROOT/scripts/kafka/pom.xml"

DATA_DIR="${KAFKA_DATA_DIR:-data/kafka}"
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"  # Kafka wants absolute paths in its config
CONFIG="$DATA_DIR/server.properties"
LOG4J_CONFIG="$DATA_DIR/log4j2.properties"
TOOLS_LOG4J_CONFIG="$DATA_DIR/log4j2-tools.properties"
PID_FILE="$DATA_DIR/kafka.pid"
OUT_FILE="$DATA_DIR/kafka.out"       # JVM stdout/stderr (crashes before logging is up)
SERVER_LOG="$DATA_DIR/server.log"    # log4j2 output
LOG_DIRS="$DATA_DIR/kraft"           # topic partitions + the KRaft metadata log

# Interpreter for the readiness check (needs confluent_kafka; else a slower JVM check is used).
VENV_PY="${KAFKA_CHECK_PYTHON:-$ROOT/.venv/bin/python}"

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- fetch
# The stamp records version + pom checksum, so editing the pom or KAFKA_VERSION re-fetches, and nothing else does.
fetch_stamp() { echo "$KAFKA_VERSION $(sha256sum "$POM" | cut -d' ' -f1)"; }

cmd_fetch() {
  local stamp
  stamp="$(fetch_stamp)"
  if [[ -f "$LIBS_DIR/.stamp" && "$(cat "$LIBS_DIR/.stamp")" == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  command -v java >/dev/null || die "java not found (Kafka 4 needs Java 17+)"
  log "fetching Kafka $KAFKA_VERSION jars into $LIBS_DIR"
  # Copy into a temporary folder and swap it in, so an interrupted fetch never looks complete.
  local tmp="$CACHE_DIR/libs.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$CACHE_DIR"
  mvn -B -q -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  log "fetched $(find "$LIBS_DIR" -name "*.jar" | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1))"
}

# ---------------------------------------------------------------- helpers
kafka_java() {  # run a Kafka tool's main class on the cached classpath (its warnings go to stderr, not server.log)
  java -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J_CONFIG" "$@"
}

# Our pid only if that process is alive and really is this broker (a stale pid may have been reused).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $CONFIG" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# "Answering" = a metadata request succeeds, not merely the port being open (it opens before the broker is ready).
broker_answers() {
  port_open "$KAFKA_PORT" || return 1
  # Prefer the project's venv (~0.5 s); exit 3 means confluent_kafka is not installed there (yet).
  local rc=3
  if [[ -x "$VENV_PY" ]]; then
    "$VENV_PY" - "127.0.0.1:$KAFKA_PORT" <<'PY' 2>/dev/null && rc=0 || rc=$?
import sys
try:
    from confluent_kafka.admin import AdminClient
except ImportError:
    sys.exit(3)
try:
    md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=3)
except Exception:
    sys.exit(1)
sys.exit(0 if md.brokers else 1)
PY
  fi
  if ((rc != 3)); then
    return "$rc"
  else
    # No venv yet (e.g. the very first CI step): ask with Kafka's own tool (slower: a JVM start per try).
    timeout 20 java -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$TOOLS_LOG4J_CONFIG" \
      org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1
  fi
}

show_logs() {
  log "---- tail of $OUT_FILE"
  tail -n 20 "$OUT_FILE" >&2 2>/dev/null || true
  log "---- tail of $SERVER_LOG"
  tail -n 60 "$SERVER_LOG" >&2 2>/dev/null || true
}

write_config() {
  # Rewritten on each start so port overrides apply; topic data in $LOG_DIRS is kept.
  cat >"$CONFIG" <<EOF
# Generated by scripts/kafka.sh on each start; edit the script, not this file.
process.roles=broker,controller
node.id=1
# Static single-voter quorum: the voter is taken from this file, so changing KAFKA_CONTROLLER_PORT later
# needs no re-format (with a dynamic quorum, 'format --standalone', the endpoint is stored in the metadata log).
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${LOG_DIRS}

# Topics are created by 'python -m platform_runtime.topics', never implicitly (docs/conventions.md).
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1

# One node: internal topics must have replication factor 1, and few partitions make them fast to create.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests want a consumer group to get its partitions at once, not after the default 3 s.
group.initial.rebalance.delay.ms=0

# A dev box: keep disk use bounded.
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
EOF

  cat >"$LOG4J_CONFIG" <<EOF
# Generated by scripts/kafka.sh. Kafka 4 logs through log4j2; without a config nothing is written.
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${SERVER_LOG}
appender.file.filePattern = ${SERVER_LOG}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
# The per-request and state-change chatter is noise locally.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF

  cat >"$TOOLS_LOG4J_CONFIG" <<EOF
# Generated by scripts/kafka.sh: for the command-line tools (storage format, readiness check).
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

# What 'kafka-storage random-uuid' prints (16 random bytes, URL-safe base64, unpadded), without paying
# a ~5 s JVM start for it. Kafka itself re-draws ids starting with '-' so they never look like a CLI flag.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

format_storage() {
  # Kafka 4 (KRaft only) refuses to start on an unformatted log dir: 'kafka-storage format' writes
  # meta.properties and the bootstrap metadata checkpoint with a cluster id.
  [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
  local cluster_id
  cluster_id="$(new_cluster_id)"
  log "formatting $LOG_DIRS (cluster id $cluster_id)"
  kafka_java kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$CONFIG" >>"$OUT_FILE" 2>&1 \
    || { show_logs; die "formatting storage failed"; }
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until broker_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_logs
      die "broker process $pid exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_logs
      die "broker (pid $pid) did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

# Serialise start/stop on one data dir (e.g. parallel test workers all calling start).
take_lock() {
  exec 9>"$DATA_DIR/.lock"
  flock -w 120 9 || die "another kafka.sh holds $DATA_DIR/.lock"
}

# ---------------------------------------------------------------- commands
cmd_start() {
  cmd_fetch
  take_lock
  local pid
  if pid="$(running_pid)"; then
    wait_ready "$pid"  # normally instant; covers a start that is still warming up
    log "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
    die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is already in use by another process (set KAFKA_PORT/KAFKA_CONTROLLER_PORT)"
  fi

  write_config
  format_storage

  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, data $DATA_DIR)"
  # setsid: own session, so the broker outlives this shell and a Ctrl-C in it.
  # The inner shell writes its own pid and then execs java, so the pid file names the JVM itself.
  # 9>&- : the broker must not inherit the lock.
  # shellcheck disable=SC2016,SC2086  # $$ is for the inner shell; KAFKA_HEAP_OPTS is a list of words on purpose
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java $KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$DATA_DIR" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -cp "$LIBS_DIR/*" \
    kafka.Kafka "$CONFIG" \
    </dev/null >>"$OUT_FILE" 2>&1 9>&- &

  local waited=0
  until [[ -s "$PID_FILE" ]]; do
    sleep 0.1
    ((++waited < 50)) || die "broker did not write $PID_FILE"
  done
  pid="$(cat "$PID_FILE")"
  wait_ready "$pid"
  log "ready: bootstrap 127.0.0.1:$KAFKA_PORT (pid $pid)"
}

cmd_stop() {
  take_lock
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "no exit after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && broker_answers; then
    echo "running: pid $pid, bootstrap 127.0.0.1:$KAFKA_PORT, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, data $DATA_DIR"
    return 0
  elif [[ -n "${pid:-}" ]]; then
    echo "started but not answering: pid $pid (see $SERVER_LOG)"
    return 1
  fi
  echo "not running"
  return 1
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 fetch|start|stop|status" >&2
    exit 2
    ;;
esac
