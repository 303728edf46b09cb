"""Opening the DuckDB file: settings, migrations, clear errors.

The database is one local file (default ``./tokenaudit.duckdb``, ``--db`` or
``$TOKENAUDIT_DB``). DuckDB allows one writing process: a file held by another
process gives a ``DatabaseError`` (exit 2) naming the holder, never a DuckDB
traceback. Connections never reach the network (extension auto-install and
auto-load are off) and never draw DuckDB's progress bar into stdout.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from tokenaudit.errors import DatabaseError
from tokenaudit.migrations import known_migrations, migrate

DEFAULT_DB = "tokenaudit.duckdb"

_SETTINGS = (
    "SET enable_progress_bar = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET TimeZone = 'UTC'",
    "SET preserve_insertion_order = true",  # the fast native load numbers lines by it
)


def default_db_path() -> Path:
    return Path(os.environ.get("TOKENAUDIT_DB") or DEFAULT_DB)


def _open(path: Path | str, read_only: bool) -> duckdb.DuckDBPyConnection:
    target = str(path)
    is_new = target != ":memory:" and not Path(target).exists()
    if read_only and is_new:
        raise DatabaseError(
            f"{target}: no such database",
            hint="load data first with 'tokenaudit ingest PATH' or pass --db",
        )
    try:
        con = duckdb.connect(target, read_only=read_only)
    except duckdb.IOException as e:
        raise DatabaseError(_lock_message(target, str(e))) from None
    except duckdb.Error as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DatabaseError(f"{target}: cannot open database: {first}") from None
    if is_new:
        with suppress(OSError):
            os.chmod(target, 0o600)
    for stmt in _SETTINGS:
        con.execute(stmt)
    return con


def _lock_message(target: str, text: str) -> str:
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        holder = f" (held by process {pid.group(1)})" if pid else ""
        return f"{target}: database is in use by another process{holder}; try again when it ends"
    first = text.splitlines()[0] if text else "I/O error"
    return f"{target}: cannot open database: {first}"


@contextmanager
def connect(path: Path | str, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database, migrate it when writable, and close it afterwards."""
    con = _open(path, read_only)
    try:
        if read_only:
            _check_version(con, str(path))
        else:
            _check_version(con, str(path))
            migrate(con)
        yield con
    finally:
        con.close()


def _check_version(con: duckdb.DuckDBPyConnection, path: str) -> None:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return
    applied = {r[0] for r in con.execute("SELECT name FROM _migrations").fetchall()}
    unknown = applied - set(known_migrations())
    if unknown:
        raise DatabaseError(
            f"{path}: written by a newer tokenaudit (schema {max(unknown)})",
            hint="upgrade tokenaudit; the file was left unchanged",
        )


def install_secret(con: duckdb.DuckDBPyConnection) -> str:
    """The per-database secret used to key hashes of API keys and prompts."""
    row = con.execute("SELECT value FROM meta WHERE key = 'hash_secret'").fetchall()
    if row:
        return str(row[0][0])
    value = secrets.token_hex(32)
    con.execute("INSERT INTO meta VALUES ('hash_secret', ?)", [value])
    return value


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
    return str(row[0][0]) if row else None


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
