#!/usr/bin/env bash
# Stop every service of the local stack and check that none of its processes is left.
# Data stays in .stack/ (delete that folder for a cold start); downloads stay in the cache.
set -euo pipefail
# shellcheck disable=SC2034 # read by log() in lib.sh
SVC=stack
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

rc=0
"$HERE/kafka.sh" stop &
kafka_job=$!
"$HERE/mosquitto.sh" stop || rc=1
if [[ -f "$HERE/timescaledb.sh" ]]; then
    bash "$HERE/timescaledb.sh" stop || rc=1
fi
wait "$kafka_job" || rc=1
rm -f "$STACK/env"

# Every server of ours names a file under $STACK on its command line.
if leftover="$(pgrep -af -- "$STACK/")"; then
    log "ERROR: processes still running after stop:"
    while IFS= read -r line; do log "    $line"; done <<<"$leftover"
    exit 1
fi
# ... and nothing may still listen on the stack's ports (a server started some other way).
for port in "${FLOTA_MQTT_PORT:-18830}" "${FLOTA_KAFKA_PORT:-19092}" \
    "${FLOTA_KAFKA_CONTROLLER_PORT:-19093}" "${FLOTA_PG_PORT:-15432}"; do
    if port_busy "$port"; then
        log "ERROR: something still listens on 127.0.0.1:$port"
        rc=1
    fi
done
((rc == 0)) && log "stack stopped; nothing left running"
exit "$rc"
