"""A throwaway PostgreSQL server for the tests and benchmarks: `initdb` and `pg_ctl`
from Debian's packages into a temporary folder, on a free port, listening on 127.0.0.1
only, with its socket in that folder. PostgreSQL refuses to run as root: when we are
root it runs as the `postgres` system user (the folder is handed to it).

    with PgServer.start() as server:          # about 1.3 s to init and start
        url = server.create_database("t1")    # postgresql://postgres@127.0.0.1:PORT/t1

`PgServer.stop` stops it (`pg_ctl stop -m immediate`, then SIGKILL of whatever is left
of its processes) and removes the folder; the context manager calls it however the
block ends. The server's processes carry `mark` in TEST_MARK, so the suite's leftover
check (conftest.py) finds them should they ever outlive the run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TEST_MARK = "SEEDANCE_TUI_TEST_MARK"
SEARCHED = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]


def find_bin() -> Path | None:
    """The folder holding `initdb` and `pg_ctl` (PostgreSQL 15 first), or None."""
    for folder in SEARCHED:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.user = user  # the system user the server runs as (None: ourselves)
        self._numbers = 0

    @classmethod
    def start(cls, mark: str | None = None) -> PgServer:
        bin_dir = find_bin()
        if bin_dir is None:
            raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl) found")
        user = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="seedance-pg-"))
        if user:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(bin_dir, root, _free_port(), user)
        try:
            server._run(
                "initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres",
                "--no-sync", "-E", "UTF8", "--locale=C.UTF-8", mark=mark,
            )  # fmt: skip
            options = (
                f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            server._run(
                "pg_ctl", "-D", str(server.data), "-l", str(root / "server.log"),
                "-o", options, "-w", "-t", "60", "start", mark=mark,
            )  # fmt: skip
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, tool: str, *args: str, mark: str | None) -> None:
        argv = [str(self.bin_dir / tool), *args]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        env = dict(os.environ)
        if mark is not None:
            env[TEST_MARK] = mark
        done = subprocess.run(
            argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-1500:]}{tail}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; its URL. Copied file by file from the template
        (PostgreSQL 15's default writes the whole copy to the WAL: twice the work)."""
        import psycopg

        self._numbers += 1
        name = f"{prefix}_{self._numbers}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database `create_database` made, ending any session still on it."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pids(self) -> list[int]:
        """The server's processes (the postmaster and its children)."""
        pid_file = self.data / "postmaster.pid"
        try:
            leader = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        found = [leader]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(fields[1]) == leader:
                    found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """Stop the server, whatever state it is in, and remove its folder."""
        pids = self.pids()
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          mark=None)  # fmt: skip
        deadline = time.monotonic() + 10
        for pid in pids:
            while _alive(pid):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    """Is `pid` still one of the server's processes (running, and a postgres process:
    a pid the system gave to another program since is left alone)?"""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return fields[0] != "Z" and b"postgres" in command
