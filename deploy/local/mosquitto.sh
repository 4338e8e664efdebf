#!/usr/bin/env bash
# Mosquitto 2 (Debian's package) for the local stack: start|stop|status.
# Listens on 127.0.0.1:${FLOTA_MQTT_PORT:-18830}, anonymous access off, per-device passwords and
# rules (dynamic-security plugin) rendered from deploy/local/devices.json by
# cloud.ingest.mqtt_auth; the generated passwords stay in .stack/mosquitto/.
set -euo pipefail
SVC=mosquitto
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${FLOTA_MQTT_PORT:-18830}"
STATE="$STACK/mosquitto"
PIDFILE="$STATE/mosquitto.pid"
LOGFILE="$STATE/mosquitto.log"
CONF="$STATE/mosquitto.conf"
REGISTRY="${FLOTA_DEVICE_REGISTRY:-$REPO/deploy/local/devices.json}"
START_TIMEOUT_S=20

ensure_installed() {
    if ! command -v mosquitto >/dev/null && [[ ! -x /usr/sbin/mosquitto ]] ||
        ! command -v mosquitto_pub >/dev/null; then
        log "installing mosquitto and mosquitto-clients from apt"
        apt_install mosquitto mosquitto-clients
    fi
    MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
}

# Debian ships the dynamic-security plugin inside the mosquitto package, in the multiarch dir.
find_dynsec() {
    local path
    for path in /usr/lib/*/mosquitto_dynamic_security.so /usr/lib/mosquitto_dynamic_security.so \
        /usr/local/lib/mosquitto_dynamic_security.so; do
        [[ -f "$path" ]] && echo "$path" && return 0
    done
    dpkg -L mosquitto 2>/dev/null | grep -m1 'mosquitto_dynamic_security\.so$'
}

render() {
    require_python
    mkdir -p "$STATE/data"
    (cd "$REPO" && "$PY" -m cloud.ingest.mqtt_auth --registry "$REGISTRY" --out-dir "$STATE") >&2
    local dynsec
    dynsec="$(find_dynsec)" || die "mosquitto_dynamic_security.so not found (package mosquitto)"
    sed -e "s#@STATE@#$STATE#g" -e "s#@PORT@#$PORT#g" -e "s#@USER@#$(id -un)#g" \
        -e "s#@DYNSEC@#$dynsec#g" \
        "$REPO/deploy/local/mosquitto/mosquitto.conf.in" >"$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
}

# An authenticated publish/subscribe round trip: a retained message with a fresh nonce is
# published by the health user and must come back to a subscriber with the same credentials.
healthy() {
    local user pass root nonce got
    # shellcheck disable=SC1091
    user="$(. "$STATE/health.env" && echo "$HEALTH_USER")"
    # shellcheck disable=SC1091
    pass="$(. "$STATE/health.env" && echo "$HEALTH_PASSWORD")"
    # shellcheck disable=SC1091
    root="$(. "$STATE/health.env" && echo "$HEALTH_TOPIC_ROOT")"
    nonce="$(date +%s%N)-$$"
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -u "$user" -P "$pass" -q 1 -r \
        -t "$root/check" -m "$nonce" 2>/dev/null || return 1
    got="$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -u "$user" -P "$pass" -q 1 \
        -t "$root/check" -C 1 -W 3 2>/dev/null)" || return 1
    [[ "$got" == "$nonce" ]] || return 1
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -u "$user" -P "$pass" -q 1 -r -n \
        -t "$root/check" 2>/dev/null || true
}

# What Mosquitto reads at start and on SIGHUP; a change means a reload is due.
fingerprint() {
    cat "$STATE/dynamic-security.json" "$CONF" 2>/dev/null | sha256sum || true
}

write_env_file() {
    {
        echo "FLOTA_MQTT_HOST=127.0.0.1"
        echo "FLOTA_MQTT_PORT=$PORT"
        cat "$STATE/bridge.env"
    } >"$STACK/env.d/$SVC.env.tmp"
    write_env "$SVC"
}

start() {
    ensure_installed
    mkdir -p "$STATE" "$STACK/env.d"
    local before after
    before="$(fingerprint)"
    render
    after="$(fingerprint)"
    if pid_alive "$PIDFILE"; then
        if [[ "$before" != "$after" ]]; then
            # The plugin reads its file only at start; persistence keeps sessions and queues.
            log "registry or config changed: restarting"
            stop_pid "$PIDFILE" 15
        elif healthy; then
            write_env_file
            log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
            return 0
        else
            die "running (pid $(cat "$PIDFILE")) but the health check fails" "$LOGFILE"
        fi
    fi
    rm -f "$PIDFILE"
    port_busy "$PORT" && die "127.0.0.1:$PORT is taken by another process (not ours)"
    log "starting on 127.0.0.1:$PORT"
    # Its start-up warnings (e.g. about running as root) go to the log with the rest.
    "$MOSQUITTO" -c "$CONF" -d 2>>"$LOGFILE" || die "mosquitto refused to start" "$LOGFILE"
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until healthy; do
        if ((SECONDS >= deadline)); then
            stop_pid "$PIDFILE" 5 # leave no half-started broker behind
            die "no authenticated pub/sub round trip within ${START_TIMEOUT_S}s" "$LOGFILE"
        fi
        [[ -f "$PIDFILE" ]] && ! pid_alive "$PIDFILE" && die "mosquitto exited" "$LOGFILE"
        sleep 0.2
    done
    write_env_file
    log "healthy (pid $(cat "$PIDFILE")), $(grep -c '"username"' "$STATE/devices.json") devices"
}

stop() {
    if pid_alive "$PIDFILE"; then
        log "stopping pid $(cat "$PIDFILE")"
    fi
    stop_pid "$PIDFILE" 15
    kill_strays "$CONF"
    rm -f "$STACK/env.d/$SVC.env"
}

status() {
    if pid_alive "$PIDFILE" && healthy; then
        echo "mosquitto: running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    elif pid_alive "$PIDFILE"; then
        echo "mosquitto: running (pid $(cat "$PIDFILE")) but not answering"
        return 1
    else
        echo "mosquitto: stopped"
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
