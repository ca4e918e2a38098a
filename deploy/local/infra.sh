#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka 4.x (single node, KRaft, jars from Maven
# Central) and PostgreSQL 15 (a project-local cluster), both on 127.0.0.1 only.
#
#   deploy/local/infra.sh up|down|status|env|reset [kafka|postgres]
#
# State lives in $SKILLSTREAM_LOCAL_DIR (default: <repo>/.local, git-ignored):
#   kafka/libs   jars fetched once by `mvn dependency:copy-dependencies` (second start: no network;
#                SKILLSTREAM_KAFKA_LIBS points elsewhere)
#   kafka/data   KRaft metadata and topic logs;  kafka/kafka.log  broker log;  kafka/kafka.pid
#   pg/data      the PostgreSQL cluster;          pg/postgres.log server log
#
# When KAFKA_BOOTSTRAP_SERVERS or DATABASE_URL are set, that server is external: nothing is
# started or stopped for it, `up` only checks that it answers.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOCAL="${SKILLSTREAM_LOCAL_DIR:-$ROOT/.local}"
KAFKA_PORT="${SKILLSTREAM_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SKILLSTREAM_KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${SKILLSTREAM_PG_PORT:-55432}"
PG_VERSION=15
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
READY_TIMEOUT="${SKILLSTREAM_READY_TIMEOUT:-90}"

KDIR="$LOCAL/kafka"; KLIBS="${SKILLSTREAM_KAFKA_LIBS:-$KDIR/libs}"; KDATA="$KDIR/data"; KLOG="$KDIR/kafka.log"; KPID="$KDIR/kafka.pid"
KCONF="$KDIR/server.properties"
PGDIR="$LOCAL/pg"; PGDATA="$PGDIR/data"; PGLOG="$PGDIR/postgres.log"

say() { printf '[infra] %s\n' "$*"; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
show_log() { printf '[infra] last lines of %s:\n' "$1" >&2; tail -n "${2:-40}" "$1" >&2 2>/dev/null || true; }

host_port_of() {  # "host:port[,...]" -> "host port" of the first entry
  local first="${1%%,*}"; first="${first#*://}"; printf '%s %s\n' "${first%:*}" "${first##*:}"
}

# ---------------------------------------------------------------- Kafka
kafka_fetch() {
  if [ -f "$KLIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn is not installed (apt-get install -y maven)"
  command -v java >/dev/null || die "java is not installed (Java 17+ is required by Kafka 4.x)"
  say "fetching Kafka jars from Maven Central into $KLIBS (once)"
  rm -rf "$KLIBS"; mkdir -p "$KLIBS"
  mkdir -p "$KDIR"
  mvn -B -q -Dstyle.color=never -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.libs.dir="$KLIBS" >"$KDIR/mvn.log" 2>&1 \
    || { show_log "$KDIR/mvn.log"; die "mvn could not fetch the Kafka jars"; }
  ls "$KLIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar in $KLIBS after mvn"
  touch "$KLIBS/.complete"
}

kafka_conf() {
  mkdir -p "$KDIR"
  sed -e "s/@KAFKA_PORT@/$KAFKA_PORT/g" -e "s/@CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT/g" \
      -e "s#@DATA_DIR@#$KDATA#g" "$HERE/kafka/server.properties" > "$KCONF"
}

kafka_java() { # heap first, then the rest
  local heap="$1"; shift
  java $heap -Dlog4j2.configurationFile="$HERE/kafka/$LOG4J_FILE" -Dkafka.logs.dir="$KDIR" -cp "$KLIBS/*" "$@"
}

kafka_format() {
  if [ -f "$KDATA/meta.properties" ]; then return 0; fi
  local cid
  LOG4J_FILE=tools-log4j2.properties
  cid="$(kafka_java -Xmx256m kafka.tools.StorageTool random-uuid)"
  kafka_java -Xmx256m kafka.tools.StorageTool format -t "$cid" -c "$KCONF" >/dev/null
}

kafka_up() {
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    read -r h p < <(host_port_of "$KAFKA_BOOTSTRAP_SERVERS")
    port_open "$h" "$p" || die "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS does not answer"
    say "kafka: external at $KAFKA_BOOTSTRAP_SERVERS (not started by this script)"; return 0
  fi
  if pid_alive "$KPID" && port_open 127.0.0.1 "$KAFKA_PORT"; then
    say "kafka: already running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KPID"))"; return 0
  fi
  if port_open 127.0.0.1 "$KAFKA_PORT"; then
    die "port $KAFKA_PORT is taken by another process; set SKILLSTREAM_KAFKA_PORT or KAFKA_BOOTSTRAP_SERVERS"
  fi
  kafka_fetch; kafka_conf; kafka_format
  LOG4J_FILE=log4j2.properties
  : > "$KLOG"
  local heap="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
  nohup java $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" -Dkafka.logs.dir="$KDIR" \
    -cp "$KLIBS/*" kafka.Kafka "$KCONF" >"$KLOG" 2>&1 </dev/null &
  echo $! > "$KPID"
  local deadline=$((SECONDS + READY_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    if ! pid_alive "$KPID"; then show_log "$KLOG"; die "kafka exited during start-up"; fi
    if grep -q "Kafka Server started" "$KLOG" && port_open 127.0.0.1 "$KAFKA_PORT"; then
      say "kafka: started on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KPID"), log $KLOG)"; return 0
    fi
    sleep 0.5
  done
  show_log "$KLOG"; die "kafka not ready after ${READY_TIMEOUT}s"
}

kafka_down() {
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then say "kafka: external, left alone"; return 0; fi
  if ! pid_alive "$KPID"; then rm -f "$KPID"; say "kafka: not running"; return 0; fi
  local pid; pid="$(cat "$KPID")"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then say "kafka: did not stop in 30s, killing"; kill -9 "$pid" || true; fi
  rm -f "$KPID"; say "kafka: stopped"
}

kafka_status() {
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    read -r h p < <(host_port_of "$KAFKA_BOOTSTRAP_SERVERS")
    if port_open "$h" "$p"; then say "kafka: external $KAFKA_BOOTSTRAP_SERVERS answers"; return 0; fi
    say "kafka: external $KAFKA_BOOTSTRAP_SERVERS does not answer"; return 1
  fi
  if pid_alive "$KPID" && port_open 127.0.0.1 "$KAFKA_PORT"; then
    say "kafka: running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KPID"))"; return 0
  fi
  say "kafka: stopped"; return 1
}

# ---------------------------------------------------------------- PostgreSQL
as_pg() {  # initdb and postgres refuse to run as root: run them as the `postgres` system user
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_install() {
  if [ -x "$PG_BIN/initdb" ]; then return 0; fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL $PG_VERSION is not installed; run: sudo apt-get install -y postgresql-$PG_VERSION"
  say "installing postgresql-$PG_VERSION with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "postgresql-$PG_VERSION" >/dev/null
  # the package may start its own cluster on 5432; ours runs on its own port, so leave it be
  [ -x "$PG_BIN/initdb" ] || die "apt-get did not install $PG_BIN/initdb"
}

# As root the cluster belongs to the `postgres` user, which must reach its directory. When the
# checkout sits below a directory it cannot enter (e.g. /root is 0700), the cluster lives in
# /var/lib/postgresql/skillstream-<hash of the path> instead, found the same way every time.
pg_resolve_dir() {
  [ "$(id -u)" = 0 ] || return 0
  id postgres >/dev/null 2>&1 || return 0
  mkdir -p "$PGDIR"; chown postgres "$PGDIR"
  if ! runuser -u postgres -- test -w "$PGDIR" 2>/dev/null; then
    PGDIR="/var/lib/postgresql/skillstream-$(printf '%s' "$PGDIR" | sha1sum | cut -c1-12)"
    mkdir -p "$PGDIR"; chown postgres "$PGDIR"
    PGDATA="$PGDIR/data"; PGLOG="$PGDIR/postgres.log"
  fi
}

pg_up() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "postgres: external DATABASE_URL is used (not started by this script)"; return 0
  fi
  pg_install
  pg_resolve_dir
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    say "postgres: initdb in $PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 \
      || { show_log "$PGDIR/initdb.log"; die "initdb failed"; }
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    say "postgres: already running on 127.0.0.1:$PG_PORT"; return 0
  fi
  if port_open 127.0.0.1 "$PG_PORT"; then
    die "port $PG_PORT is taken by another process; set SKILLSTREAM_PG_PORT or DATABASE_URL"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t "$READY_TIMEOUT" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDIR -c max_connections=200 -c fsync=off" start >/dev/null \
    || { show_log "$PGLOG"; die "postgres did not start"; }
  for _ in $(seq 1 "$READY_TIMEOUT"); do
    if as_pg "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q; then
      say "postgres: started on 127.0.0.1:$PG_PORT (log $PGLOG)"; return 0; fi
    sleep 1
  done
  show_log "$PGLOG"; die "postgres not ready after ${READY_TIMEOUT}s"
}

pg_down() {
  if [ -n "${DATABASE_URL:-}" ]; then say "postgres: external, left alone"; return 0; fi
  pg_resolve_dir
  if [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; say "postgres: stopped"
  else
    say "postgres: not running"
  fi
}

pg_status() {
  if [ -n "${DATABASE_URL:-}" ]; then say "postgres: external DATABASE_URL"; return 0; fi
  pg_resolve_dir
  if [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    say "postgres: running on 127.0.0.1:$PG_PORT"; return 0
  fi
  say "postgres: stopped"; return 1
}

print_env() {
  echo "export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
  echo "export DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:$PG_PORT/postgres}"
}

cmd="${1:-status}"; what="${2:-all}"
case "$what" in all|kafka|postgres) ;; *) die "unknown component '$what' (kafka|postgres)";; esac
run() { # run $1_<component> for the chosen components
  local rc=0
  if [ "$what" != kafka ]; then "pg_$1" || rc=$?; fi
  if [ "$what" != postgres ]; then "kafka_$1" || rc=$?; fi
  return $rc
}
case "$cmd" in
  up) run up ;;
  down) run down ;;
  status) run status ;;
  env) print_env ;;
  fetch) kafka_fetch; pg_install ;;
  reset)
    run down; pg_resolve_dir; rm -rf "$KDATA" "$PGDATA"
    case "$PGDIR" in /var/lib/postgresql/skillstream-*) rm -rf "$PGDIR" ;; esac
    say "data removed (jars kept)" ;;
  *) echo "usage: $0 up|down|status|env|fetch|reset [kafka|postgres]" >&2; exit 2 ;;
esac
