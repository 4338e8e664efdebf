#!/usr/bin/env bash
# Usage: deploy/local/with-stack.sh CMD [ARG...]
# Start the local stack, run CMD with the stack's environment (.stack/env) exported, then always
# stop the stack, and exit with CMD's status (or 1 if CMD passed but the stack did not stop
# cleanly). FLOTA_KEEP_STACK=1 leaves the stack running afterwards, for debugging.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

if (($# == 0)); then
    echo "usage: $0 CMD [ARG...]" >&2
    exit 2
fi

finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ "${FLOTA_KEEP_STACK:-0}" == 1 ]]; then
        echo "[stack] FLOTA_KEEP_STACK=1: leaving the stack running (deploy/local/stop.sh stops it)" >&2
    elif ! "$HERE/stop.sh"; then
        ((rc == 0)) && rc=1
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/start.sh" || exit $?
set -a
# shellcheck disable=SC1091
source "$STACK/env"
set +a
"$@"
