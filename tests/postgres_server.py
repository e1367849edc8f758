"""A throw-away PostgreSQL server for the tests: ``initdb`` into a temporary folder, ``postgres`` on a free port.

Debian's ``postgresql`` package (installed by ``scripts/setup.sh``) provides
the programs under ``/usr/lib/postgresql/VERSION/bin``; ``$SEMCURATE_PG_BIN``
names another folder.  The cluster trusts local TCP connections, listens on
127.0.0.1 only, has no Unix socket, and runs without ``fsync`` (its data dies
with the test session anyway).  PostgreSQL refuses to run as root, so under
root the cluster belongs to the ``postgres`` system user the package creates.
The server is a child of the test process and asks Linux to kill it when that
process dies, so a killed test run leaves no server behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: ``prctl`` option that delivers a signal to a process when its parent exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Seconds to wait for the server to accept connections.
START_TIMEOUT = 30.0
#: Server settings for a throw-away cluster: nothing is made durable, more connections than the default.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "unix_socket_directories": "",
    "listen_addresses": "127.0.0.1",
}


class PostgresUnavailable(Exception):
    """The PostgreSQL server programs are missing or the server would not start; the message says which."""


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: ``$SEMCURATE_PG_BIN``, Debian's newest, or the ``PATH``."""
    candidates = [os.environ.get("SEMCURATE_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    initdb = shutil.which("initdb")
    candidates.append(str(Path(initdb).parent) if initdb else "")
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """Child start-up (after any change of user): be killed when the test process exits."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class PostgresServer:
    """One running throw-away cluster; :meth:`create_database` hands out empty databases by URL.

    Parameters
    ----------
    bin_dir : Path
        Folder of ``initdb`` and ``postgres``.
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="semcurate-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._names = itertools.count(1)
        self._as_user: dict = {}
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no `postgres` user to run the server") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    @classmethod
    def start(cls) -> PostgresServer:
        """Create and start a cluster; :class:`PostgresUnavailable` when the programs are missing or it fails."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(
                "PostgreSQL server programs (initdb, postgres) not found: install Debian's `postgresql` package "
                "(scripts/setup.sh does) or set SEMCURATE_PG_BIN"
            )
        server = cls(bin_dir)
        try:
            server._initdb()
            server._launch()
        except BaseException:
            server.stop()
            raise
        return server

    def _initdb(self) -> None:
        data = self.root / "data"
        done = subprocess.run(
            [self.bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"],
            capture_output=True,
            text=True,
            **self._as_user,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip().splitlines()[-1:]}")

    def _launch(self) -> None:
        options = [arg for key, value in SETTINGS.items() for arg in ("-c", f"{key}={value}")]
        with open(self.root / "server.log", "wb") as log:
            self.process = subprocess.Popen(
                [self.bin_dir / "postgres", "-D", self.root / "data", "-p", str(self.port), *options],
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_die_with_parent,  # runs after the change of user (which would clear it), before exec
                **self._as_user,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "server.log").read_text(errors="replace").strip().splitlines()
                raise PostgresUnavailable(f"postgres exited at start: {log[-1:] or 'no log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                import psycopg

                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
            except Exception:  # the server is still starting ("the database system is starting up")
                time.sleep(0.1)
        raise PostgresUnavailable(f"postgres did not accept connections within {START_TIMEOUT:.0f} s")

    def dsn(self, database: str) -> str:
        """A libpq connection string for ``database`` as the superuser."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(statement)

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def copy_database(self, url: str) -> str:
        """A new database holding a copy of the database of ``url`` (``pg_dump`` into ``psql``: the source may be in
        use, unlike ``CREATE DATABASE … TEMPLATE``); returns the copy's URL."""
        copy = self.create_database()
        source, target = (name.rsplit("/", 1)[-1] for name in (url, copy))
        dump = subprocess.run([str(self.bin_dir / "pg_dump"), self.dsn(source)], capture_output=True, check=True)
        subprocess.run(
            [str(self.bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.dsn(target)],
            input=dump.stdout,
            capture_output=True,
            check=True,
        )
        return copy

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, ending any connection still open to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)')

    def halt(self) -> None:
        """Stop the server (fast shutdown: open connections are ended), keeping its data for :meth:`resume`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def resume(self) -> None:
        """Start a halted server again on the same port, with the same data."""
        self._launch()

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)
