#!/usr/bin/env bash
# Start the real local stack (Mosquitto, Kafka, TimescaleDB) on 127.0.0.1 and write .stack/env.
# Idempotent: services that already answer are left alone. Each service script returns only
# once its health check passes, so when this exits 0 every service really serves.
set -euo pipefail
# shellcheck disable=SC2034 # read by log() in lib.sh
SVC=stack
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

mkdir -p "$STACK/env.d"
rm -f "$STACK/env"
started=$SECONDS
failed=()

# Kafka takes longest (mvn on a cold cache, then the JVM) and installs nothing with apt, so it
# starts in the background while Mosquitto and TimescaleDB, which may both need apt and its
# lock, start one after the other in the foreground.
"$HERE/kafka.sh" start &
kafka_job=$!

"$HERE/mosquitto.sh" start || failed+=(mosquitto)
if [[ -x "$HERE/timescaledb.sh" ]]; then
    "$HERE/timescaledb.sh" start || failed+=(timescaledb)
elif [[ -f "$HERE/timescaledb.sh" ]]; then
    bash "$HERE/timescaledb.sh" start || failed+=(timescaledb)
else
    log "deploy/local/timescaledb.sh not present: TimescaleDB not started"
fi
wait "$kafka_job" || failed+=(kafka)

if ((${#failed[@]})); then
    log "FAILED: ${failed[*]} (the others are left running; deploy/local/stop.sh stops them)"
    exit 1
fi

cat "$STACK"/env.d/*.env >"$STACK/env.tmp"
chmod 600 "$STACK/env.tmp"
mv -f "$STACK/env.tmp" "$STACK/env"
log "stack up in $((SECONDS - started)) s; environment in $STACK/env:"
sed -e 's/\(PASSWORD=\).*/\1***/' -e 's#\(://[^:]*:\)[^@]*@#\1***@#' "$STACK/env" | sed 's/^/    /' >&2
