# shellcheck shell=bash
# Shared helpers for the local-stack service scripts (sourced, not run).
#
# Conventions every service script follows:
#   - runtime state (data, logs, pid files) in $STACK/<svc>/, env lines in $STACK/env.d/<svc>.env
#   - downloads cached in $FLOTA_CACHE (default ~/.cache/flota), kept across `rm -rf .stack`
#   - every server listens on 127.0.0.1 only

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="$REPO/.stack"
FLOTA_CACHE="${FLOTA_CACHE:-${HOME:-/tmp}/.cache/flota}"
PY="${FLOTA_PYTHON:-$REPO/.venv/bin/python}"
export REPO STACK FLOTA_CACHE PY

log() { printf '[%s] %s\n' "${SVC:-stack}" "$*" >&2; }

# die MESSAGE [LOGFILE]: print the message and the log's tail, then exit 1.
die() {
    log "ERROR: $1"
    if [[ -n "${2:-}" && -f "$2" ]]; then
        log "last lines of $2:"
        tail -n 40 "$2" | sed 's/^/    /' >&2
    fi
    exit 1
}

# pid_alive PIDFILE: true when the file names a live process.
pid_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# stop_pid PIDFILE TIMEOUT_S: SIGTERM, wait, then SIGKILL (and set STOP_KILLED=1); removes the
# pid file.
STOP_KILLED=0
stop_pid() {
    local pidfile="$1" timeout="$2" pid i
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after ${timeout}s, sending SIGKILL"
        # shellcheck disable=SC2034 # read by the service scripts
        STOP_KILLED=1
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$pidfile"
}

# port_busy PORT: true when something listens on 127.0.0.1:PORT.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# apt_install PKG...: install Debian packages, running `apt-get update` once if one is unknown.
apt_install() {
    local sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    # Wait for the dpkg lock instead of failing when another script installs at the same time.
    local wait=(-o DPkg::Lock::Timeout=300)
    if ! "${sudo[@]}" apt-get install "${wait[@]}" -y -q "$@" >&2; then
        log "apt-get install failed; running apt-get update once and retrying"
        "${sudo[@]}" apt-get update -q >&2
        "${sudo[@]}" apt-get install "${wait[@]}" -y -q "$@" >&2
    fi
}

# write_env SVC: move $STACK/env.d/SVC.env.tmp into place (callers fill the .tmp first).
write_env() {
    mkdir -p "$STACK/env.d"
    mv -f "$STACK/env.d/$1.env.tmp" "$STACK/env.d/$1.env"
}

require_python() {
    [[ -x "$PY" ]] || die "no Python at $PY: run 'make venv' first (or set FLOTA_PYTHON)"
}

# kill_strays CONFIG_PATH: stop processes whose command line names this stack's own config file
# (a broker whose pid file was lost). Matches only our absolute path, never a program name.
kill_strays() {
    local pid
    for pid in $(pgrep -f -- "$1" || true); do
        [[ "$pid" == "$$" ]] && continue
        log "stopping stray pid $pid (command line names $1)"
        echo "$pid" >"$1.stray.pid"
        stop_pid "$1.stray.pid" 20
    done
}
