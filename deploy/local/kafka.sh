#!/usr/bin/env bash
# Apache Kafka 4 (KRaft, one node) for the local stack: start|stop|status.
# The broker jars come from Maven Central through deploy/local/kafka/pom.xml into a private
# Maven repository under $FLOTA_CACHE/m2; the broker runs on the machine's Java 17 with at most
# 1 GiB of heap, broker on 127.0.0.1:19092 and controller on 127.0.0.1:19093.
set -euo pipefail
SVC=kafka
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${FLOTA_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${FLOTA_KAFKA_CONTROLLER_PORT:-19093}"
HERE="$REPO/deploy/local/kafka"
STATE="$STACK/kafka"
PIDFILE="$STATE/kafka.pid"
CONF="$STATE/server.properties"
OUTFILE="$STATE/kafka.out"
LOGFILE="$STATE/server.log"
START_TIMEOUT_S="${FLOTA_KAFKA_START_TIMEOUT_S:-120}"
HEAP_OPTS=(-Xms256m -Xmx1g)
JVM_OPTS=(
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$HERE/log4j2.xml" "-Dkafka.logs.dir=$STATE"
)

ensure_java() {
    local major
    if ! command -v java >/dev/null; then
        log "installing a Java 17 runtime from apt"
        apt_install openjdk-17-jre-headless
    fi
    major="$(java -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
    [[ "${major:-0}" -ge 17 ]] || die "Kafka 4 needs Java 17 or newer; 'java' is version ${major:-unknown}"
    command -v mvn >/dev/null || {
        log "installing maven from apt"
        apt_install maven
    }
}

# Resolve the broker's classpath once per pom version; the file lists jars in $FLOTA_CACHE/m2.
ensure_classpath() {
    local key
    key="$(sha256sum "$HERE/pom.xml" | cut -c1-16)"
    CP_FILE="$FLOTA_CACHE/kafka/classpath-$key.txt"
    if [[ -s "$CP_FILE" ]] && classpath_complete; then
        return 0
    fi
    mkdir -p "$FLOTA_CACHE/kafka" "$FLOTA_CACHE/m2"
    log "fetching the Kafka broker with mvn into $FLOTA_CACHE/m2 (first run only)"
    mvn -B -q -f "$HERE/pom.xml" "-Dmaven.repo.local=$FLOTA_CACHE/m2" \
        dependency:build-classpath "-Dmdep.outputFile=$CP_FILE.tmp" >"$FLOTA_CACHE/kafka/mvn.log" 2>&1 ||
        die "mvn could not fetch the Kafka broker" "$FLOTA_CACHE/kafka/mvn.log"
    mv -f "$CP_FILE.tmp" "$CP_FILE"
    classpath_complete || die "classpath $CP_FILE names jars that are missing"
}

classpath_complete() {
    local jar
    while IFS= read -r jar; do
        [[ -f "$jar" ]] || return 1
    done < <(tr ':' '\n' <"$CP_FILE")
}

render() {
    mkdir -p "$STATE"
    sed -e "s#@STATE@#$STATE#g" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
        "$HERE/server.properties.in" >"$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
}

# Class data sharing: the first broker run writes an archive of the classes it loaded when it
# exits cleanly (on stop); later starts map it instead of loading and verifying ~50 MB of
# classes, which cut start-up from 32 s to 10 s on a busy 2-core machine. The archive is keyed on
# the classpath and the java binary; the JVM itself ignores an archive that does not match.
class_data_sharing() {
    local key jsa
    key="$(basename "$CP_FILE" .txt)-$( (readlink -f "$(command -v java)" && java -version 2>&1) |
        sha256sum | cut -c1-12)"
    jsa="$FLOTA_CACHE/kafka/$key.jsa"
    if [[ ! -s "$jsa" && -s "$jsa.new" ]]; then
        mv -f "$jsa.new" "$jsa" # written by the previous broker at its exit
    fi
    if [[ -s "$jsa" ]]; then
        echo "-XX:SharedArchiveFile=$jsa"
    else
        rm -f "$jsa.new"
        echo "-XX:ArchiveClassesAtExit=$jsa.new"
    fi
}

# KRaft storage is formatted once per state directory, as a one-voter ("standalone") quorum.
ensure_formatted() {
    [[ -f "$STATE/meta/meta.properties" ]] && return 0
    local cluster_id
    # A Kafka cluster id is 16 random bytes in unpadded URL-safe base64.
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    log "formatting KRaft storage (cluster id $cluster_id)"
    java -Xmx256m -XX:TieredStopAtLevel=1 "${JVM_OPTS[@]}" -cp "$(cat "$CP_FILE")" \
        kafka.tools.StorageTool \
        format --standalone -t "$cluster_id" -c "$CONF" >"$STATE/format.log" 2>&1 ||
        die "kafka storage format failed" "$STATE/format.log"
}

# Healthy = the broker answers the admin API: metadata (topics) and the cluster description.
# Polls until DEADLINE_S; gives up early when the JVM has exited.
healthy() {
    local deadline_s="$1" pid="${2:-0}"
    "$PY" - "127.0.0.1:$PORT" "$deadline_s" "$pid" <<'PYEOF'
import logging, os, sys, time
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

logging.disable(logging.CRITICAL)
bootstrap, deadline, pid = sys.argv[1], time.monotonic() + float(sys.argv[2]), int(sys.argv[3])
while True:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="flota-health",
                                 request_timeout_ms=5000)
        try:
            admin.list_topics()
            admin.describe_cluster()
        finally:
            admin.close()
        sys.exit(0)
    except (KafkaError, OSError) as err:
        last = err
    if pid:
        try:
            os.kill(pid, 0)
        except OSError:
            print(f"broker process {pid} exited", file=sys.stderr)
            sys.exit(2)
    if time.monotonic() >= deadline:
        print(f"broker not answering: {last!r}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
PYEOF
}

write_env_file() {
    echo "FLOTA_KAFKA_BOOTSTRAP=127.0.0.1:$PORT" >"$STACK/env.d/$SVC.env.tmp"
    write_env "$SVC"
}

start() {
    require_python
    mkdir -p "$STATE" "$STACK/env.d"
    if pid_alive "$PIDFILE"; then
        healthy "$START_TIMEOUT_S" "$(cat "$PIDFILE")" ||
            die "running (pid $(cat "$PIDFILE")) but the broker does not answer" "$LOGFILE"
        write_env_file
        log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
        return 0
    fi
    rm -f "$PIDFILE"
    for port in "$PORT" "$CONTROLLER_PORT"; do
        port_busy "$port" && die "127.0.0.1:$port is taken by another process (not ours)"
    done
    ensure_java
    ensure_classpath
    render
    ensure_formatted
    log "starting on 127.0.0.1:$PORT (controller 127.0.0.1:$CONTROLLER_PORT)"
    local cds
    cds="$(class_data_sharing)"
    # setsid: the broker must not get the terminal's Ctrl-C; stop.sh ends it by its pid.
    # shellcheck disable=SC2086 # $cds is one option or none
    setsid nohup java "${HEAP_OPTS[@]}" "${JVM_OPTS[@]}" $cds -cp "$(cat "$CP_FILE")" \
        kafka.Kafka "$CONF" >"$OUTFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    if ! healthy "$START_TIMEOUT_S" "$(cat "$PIDFILE")"; then
        tail -n 20 "$OUTFILE" >&2 || true
        stop_pid "$PIDFILE" 10 # leave no half-started broker behind
        die "broker did not come up within ${START_TIMEOUT_S}s" "$LOGFILE"
    fi
    write_env_file
    log "healthy (pid $(cat "$PIDFILE"))"
}

stop() {
    if pid_alive "$PIDFILE"; then
        log "stopping pid $(cat "$PIDFILE") (controlled shutdown)"
    fi
    stop_pid "$PIDFILE" 40
    kill_strays "$CONF"
    if ((STOP_KILLED)); then
        rm -f "$FLOTA_CACHE"/kafka/*.jsa.new # a class archive cut off mid-write
    fi
    rm -f "$STACK/env.d/$SVC.env"
}

status() {
    if pid_alive "$PIDFILE" && healthy 5 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "kafka: running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    elif pid_alive "$PIDFILE"; then
        echo "kafka: running (pid $(cat "$PIDFILE")) but not answering"
        return 1
    else
        echo "kafka: stopped"
        return 3
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
