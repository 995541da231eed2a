"""The database the suite runs on: SQLite files in each platform's data directory (the default), or,
with SPACEHUB_TEST_DATABASE=postgresql, a PostgreSQL server of the session's own (Debian's
packages; a database per platform), started as the `postgres` user on a unix socket."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

BACKEND = os.environ.get("SPACEHUB_TEST_DATABASE", "sqlite")


def _pg_bin(name: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (make setup-test installs it)")
    return str(versions[-1] / name)


class PostgresServer:
    """A private PostgreSQL server in a temporary directory, trusting local connections."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="spacehub-pg-"))
        self.data = self.directory / "data"
        shutil.chown(self.directory, "postgres", "postgres")

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)

    def start(self) -> PostgresServer:
        self._as_postgres(
            _pg_bin("initdb"), "-D", str(self.data), "--auth=trust", "-U", "spacehub", "-E", "UTF8"
        )
        options = f"-k {self.directory} -c listen_addresses='' -c fsync=off -c max_connections=300"
        self._as_postgres(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.directory / "log"),
            "start",
        )
        return self

    def stop(self) -> None:
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://spacehub@/{database}?host={self.directory}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def files(self) -> list[Path]:
        """Every file the server keeps data in (tables and write-ahead log)."""
        return [p for p in self.data.rglob("*") if p.is_file()]
