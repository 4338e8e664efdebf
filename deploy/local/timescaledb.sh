#!/usr/bin/env bash
# TimescaleDB for the real local stack: start | stop | status.
#
# Debian 13 hosts: PostgreSQL 17 + TimescaleDB from apt (postgresql-17-timescaledb).
# Other Debian hosts (12 here): a Debian 13 root built once with debootstrap, cached in
# ${FLOTA_CACHE:-$HOME/.cache/flota}/trixie-root, and PostgreSQL run inside it with chroot.
#
# The server runs in a private mount namespace (unshare -m): the bind mount of the data directory
# and the tmpfs on /dev/shm exist only for the server's processes and vanish with them, so the
# host's mount table is never touched and a crash leaves nothing mounted.
#
# Data: $REPO/.stack/timescaledb/ (data directory, log, socket, the role's random password).
# Output: $REPO/.stack/env.d/timescaledb.env with FLOTA_DATABASE_URL.
# Needs root (debootstrap, chroot, unshare). Listens on 127.0.0.1 only.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="${FLOTA_STACK_DIR:-$REPO/.stack}"
HERE="$STACK/timescaledb"
PGHOME="$HERE/pg"                     # owned by the postgres user; bind-mounted into the root
PWFILE="$HERE/password"               # the flota role's password, generated at first start
ENVFILE="$STACK/env.d/timescaledb.env"
CACHE="${FLOTA_CACHE:-$HOME/.cache/flota}"
ROOT="$CACHE/trixie-root"
PGVER=17
PORT="${FLOTA_PG_PORT:-15432}"
HOST=127.0.0.1
PKG="postgresql-$PGVER-timescaledb"
SUITE=trixie

log() { printf 'timescaledb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- mode: native apt install (Debian 13) or a debootstrapped Debian 13 root --------------------

host_is_trixie() {
    [[ -r /etc/os-release ]] && grep -qE '^VERSION_CODENAME=trixie$' /etc/os-release
}

if host_is_trixie && [[ -z "${FLOTA_FORCE_CHROOT:-}" ]]; then
    MODE=native
    SYSROOT=""
    INNER="$HERE/pg"                  # the data lives in place; no bind mount needed
else
    MODE=chroot
    SYSROOT="$ROOT"
    # One mount point per checkout, so two clones can share the cached root.
    KEY="$(printf '%s' "$REPO" | sha1sum | cut -c1-12)"
    INNER="/srv/flota/$KEY"
fi
BINDIR="/usr/lib/postgresql/$PGVER/bin"
DATA_IN="$INNER/data"
SOCK_IN="$INNER/run"
LOG_IN="$INNER/log/postgresql.log"

# --- building the root --------------------------------------------------------------------------

# The Debian mirror this machine already uses, read at run time (never hard-coded in the repo).
debian_mirror() {
    if [[ -n "${FLOTA_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$FLOTA_DEBIAN_MIRROR"
        return
    fi
    local f uri
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # deb822 "URIs: ..." and one-line "deb [opts] URI suite ..." forms.
        uri="$(
            awk '
                /^[[:space:]]*#/ { next }
                /^URIs:/ { for (i = 2; i <= NF; i++) print $i; next }
                /^deb[[:space:]]/ {
                    for (i = 2; i <= NF; i++) { if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }
                }
            ' "$f" | grep -E '/debian/?$' | head -n1
        )"
        if [[ -n "$uri" ]]; then
            printf '%s\n' "${uri%/}"
            return
        fi
    done
    die "no Debian mirror found in /etc/apt/sources.list*; set FLOTA_DEBIAN_MIRROR"
}

# Unmount everything at or below a path (deepest first); used only on our own temp build dirs.
umount_below() {
    local path="$1" m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v p="$path" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

build_root() {
    [[ -x "$ROOT$BINDIR/postgres" ]] && return 0
    command -v debootstrap >/dev/null || {
        log "installing debootstrap"
        apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
    }
    mkdir -p "$CACHE"
    # A previous build that was interrupted: clear it (after unmounting what debootstrap mounted).
    local stale
    for stale in "$ROOT".tmp.*; do
        [[ -d "$stale" ]] || continue
        umount_below "$stale"
        if awk -v p="$stale" 'index($2, p) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
            die "$stale still has mounts; refusing to delete it"
        fi
        rm -rf --one-file-system "$stale"
    done
    local mirror tmp t0
    mirror="$(debian_mirror)"
    tmp="$ROOT.tmp.$$"
    t0=$SECONDS
    log "building a Debian 13 root with $PKG (once; cached in $ROOT)"
    if ! debootstrap --variant=minbase --include="$PKG" "$SUITE" "$tmp" "$mirror" \
        >"$CACHE/trixie-root.build.log" 2>&1; then
        umount_below "$tmp"
        tail -n 20 "$CACHE/trixie-root.build.log" >&2
        die "debootstrap failed (log: $CACHE/trixie-root.build.log)"
    fi
    umount_below "$tmp"
    # Packages' postinst may have started or created a default cluster: we use our own data dir.
    [[ -x "$tmp$BINDIR/postgres" ]] || die "$PKG did not install $BINDIR/postgres"
    mv -T "$tmp" "$ROOT"
    log "root built in $((SECONDS - t0)) s"
}

install_native() {
    [[ -x "$BINDIR/postgres" ]] && dpkg -s "$PKG" >/dev/null 2>&1 && return 0
    log "installing $PKG from apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PKG" >/dev/null
}

# --- running commands as postgres, inside the root ---------------------------------------------

# uid:gid of the postgres user as the root (or the host) knows it.
pg_ids() {
    awk -F: '$1 == "postgres" { print $3 ":" $4 }' "$SYSROOT/etc/passwd"
}

# Run a command as postgres with the data visible at $INNER. In chroot mode the mounts live in a
# private namespace that ends with the last process in it (the postmaster, for pg_ctl start).
as_postgres() {
    if [[ "$MODE" == native ]]; then
        setpriv --reuid=postgres --regid=postgres --init-groups env -i \
            PATH="$BINDIR:/usr/bin:/bin" LANG=C.UTF-8 PGPASSWORD="${PGPASSWORD:-}" "$@"
        return
    fi
    # shellcheck disable=SC2016 # expanded by the inner shell, from its arguments
    unshare --mount --propagation private -- /bin/sh -euc '
        root="$1"; src="$2"; inner="$3"; ids="$4"; bindir="$5"; shift 5
        mount --bind "$src" "$root$inner"
        mount -t tmpfs -o mode=1777,size=256m flota-shm "$root/dev/shm"
        exec chroot --userspec="$ids" "$root" /usr/bin/env -i HOME=/var/lib/postgresql \
            PATH="$bindir:/usr/bin:/bin" LANG=C.UTF-8 PGPASSWORD="${PGPASSWORD:-}" "$@"
    ' sh "$ROOT" "$PGHOME" "$INNER" "$(pg_ids)" "$BINDIR" "$@"
}

prepare_dirs() {
    mkdir -p "$HERE" "$STACK/env.d"
    local ids
    ids="$(pg_ids)"
    [[ -n "$ids" ]] || die "no postgres user in $SYSROOT/etc/passwd"
    mkdir -p "$PGHOME/run" "$PGHOME/log"
    chown "$ids" "$PGHOME" "$PGHOME/run" "$PGHOME/log"
    chmod 0700 "$PGHOME"
    if [[ "$MODE" == chroot ]]; then
        mkdir -p "$ROOT$INNER" "$ROOT/dev/shm"
        [[ -c "$ROOT/dev/null" && -c "$ROOT/dev/urandom" ]] || die "$ROOT/dev lacks device nodes"
    fi
}

init_cluster() {
    [[ -f "$PGHOME/data/PG_VERSION" ]] && return 0
    log "initdb in $PGHOME/data"
    as_postgres initdb -D "$DATA_IN" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    # Settings for a 2-core, 24 GB machine shared with Kafka; durability stays on.
    cat >>"$PGHOME/data/postgresql.conf" <<EOF

# --- flota (deploy/local/timescaledb.sh) ---
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$SOCK_IN'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
# No per-database job schedulers: the Apache edition refuses the policies they would run
# (retention and rollups are our own jobs), and a scheduler, connected as a superuser, keeps the
# throw-away test databases from being dropped by their owner.
timescaledb.max_background_workers = 0
max_connections = 100
shared_buffers = 512MB
effective_cache_size = 4GB
work_mem = 16MB
maintenance_work_mem = 256MB
wal_buffers = 16MB
max_wal_size = 2GB
checkpoint_timeout = 10min
synchronous_commit = on
fsync = on
huge_pages = off
dynamic_shared_memory_type = posix
max_worker_processes = 12
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
logging_collector = off
log_min_messages = warning
EOF
    # Only loopback TCP with a password; local socket by peer (the postgres user for setup).
    cat >"$PGHOME/data/pg_hba.conf" <<EOF
local   all   postgres                 peer
host    all   all        127.0.0.1/32  scram-sha-256
EOF
}

pg_running() {
    as_postgres pg_ctl -D "$DATA_IN" status >/dev/null 2>&1
}

psql_super() {
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK_IN" -p "$PORT" -U postgres "$@"
}

# Role, database and extension; idempotent, safe on every start. TimescaleDB is a trusted
# extension, so the flota role (CREATEDB) can also create it in scratch databases of its own.
provision() {
    if [[ ! -s "$PWFILE" ]]; then
        (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$PWFILE")
    fi
    local pw
    pw="$(cat "$PWFILE")"
    # The password goes through stdin, never through a command line.
    psql_super -d postgres <<SQL
SELECT format('CREATE ROLE flota LOGIN CREATEDB PASSWORD %L', '$pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flota') \gexec
ALTER ROLE flota WITH LOGIN CREATEDB PASSWORD '$pw';
SELECT 'CREATE DATABASE flota OWNER flota'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'flota') \gexec
SQL
    psql_super -d flota -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS timescaledb"
}

# A real query over loopback TCP with the flota role: the path every client uses.
health() {
    local pw
    pw="$(cat "$PWFILE")"
    PGPASSWORD="$pw" as_postgres psql -X -tA -h "$HOST" -p "$PORT" -U flota -d flota -c \
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'" 2>/dev/null
}

write_env() {
    local pw
    pw="$(cat "$PWFILE")"
    (umask 077 && printf 'FLOTA_DATABASE_URL=postgresql://flota:%s@%s:%s/flota\n' \
        "$pw" "$HOST" "$PORT" >"$ENVFILE.tmp")
    mv -f "$ENVFILE.tmp" "$ENVFILE"
}

# --- commands ------------------------------------------------------------------------------------

cmd_start() {
    local t0=$SECONDS
    if [[ "$MODE" == chroot ]]; then build_root; else install_native; fi
    prepare_dirs
    init_cluster
    if pg_running; then
        log "already running"
    else
        as_postgres pg_ctl -D "$DATA_IN" -l "$LOG_IN" -w -t 60 start >/dev/null ||
            { tail -n 30 "$PGHOME/log/postgresql.log" >&2; die "PostgreSQL did not start"; }
    fi
    provision
    local v="" _
    for _ in $(seq 1 60); do
        v="$(health || true)"
        [[ -n "$v" ]] && break
        sleep 0.5
    done
    [[ -n "$v" ]] || die "health check failed: no TimescaleDB answering on $HOST:$PORT"
    write_env
    log "serving on $HOST:$PORT (TimescaleDB $v, $MODE) in $((SECONDS - t0)) s; env: $ENVFILE"
}

cmd_stop() {
    if [[ "$MODE" == chroot && ! -x "$ROOT$BINDIR/pg_ctl" ]] || [[ ! -f "$PGHOME/data/PG_VERSION" ]]; then
        log "not running"
        return 0
    fi
    if pg_running; then
        as_postgres pg_ctl -D "$DATA_IN" -m fast -w -t 60 stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
    # Nothing to unmount on the host: the server's mounts lived in its own namespace.
    if [[ "$MODE" == chroot ]] && grep -q " $ROOT$INNER " /proc/mounts; then
        umount "$ROOT$INNER" || die "could not unmount $ROOT$INNER"
    fi
}

cmd_status() {
    if [[ "$MODE" == chroot && ! -x "$ROOT$BINDIR/pg_ctl" ]] || [[ ! -f "$PGHOME/data/PG_VERSION" ]]; then
        echo "timescaledb: not installed"
        return 1
    fi
    local v
    v="$(health || true)"
    if [[ -n "$v" ]]; then
        echo "timescaledb: serving on $HOST:$PORT (TimescaleDB $v, $MODE)"
    elif pg_running; then
        echo "timescaledb: running but not answering queries"
        return 1
    else
        echo "timescaledb: stopped"
        return 1
    fi
}

[[ $EUID -eq 0 ]] || die "needs root (debootstrap, chroot, unshare)"
case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
