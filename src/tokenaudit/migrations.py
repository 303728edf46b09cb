"""Ordered schema migrations and the table that records which ran.

Each migration is a name and the SQL that brings the schema from the previous
version to this one. ``migrate`` applies the missing ones in one transaction.
Adding a migration means appending to ``MIGRATIONS``; never edit an applied one.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from tokenaudit.model import LOCAL_COLUMNS

if TYPE_CHECKING:
    import duckdb


def _schema_v1() -> str:
    return (files("tokenaudit") / "schema.sql").read_text(encoding="utf-8")


MIGRATIONS: list[tuple[str, str | None]] = [
    ("m001_initial", None),  # schema.sql
    # A cheap content key (size + first/last MiB) so a new file can start loading while
    # its full sha256 is computed; a match means "maybe seen": then the full hash decides.
    ("m002_files_quick_key", "ALTER TABLE files ADD COLUMN quick_key VARCHAR"),
    # Billing lines: which export they came from (a re-export of the same dataset replaces
    # the lines of the period it covers), the tier, the line item's own words, list cost.
    (
        "m003_billing_dataset",
        "ALTER TABLE billing_lines ADD COLUMN dataset VARCHAR;"
        "ALTER TABLE billing_lines ADD COLUMN service_tier VARCHAR;"
        "ALTER TABLE billing_lines ADD COLUMN description VARCHAR;"
        "ALTER TABLE billing_lines ADD COLUMN list_cost DECIMAL(38,12);"
        "ALTER TABLE files ADD COLUMN lines_replaced BIGINT DEFAULT 0",
    ),
    # Where a file was and how it looked on disk when loaded: an unchanged file (same
    # resolved path, size and modification time) is skipped without being read again.
    (
        "m004_files_stat",
        "ALTER TABLE files ADD COLUMN source_path VARCHAR;"
        "ALTER TABLE files ADD COLUMN raw_size BIGINT;"
        "ALTER TABLE files ADD COLUMN mtime_ns BIGINT",
    ),
    # How a call's prompt was counted locally, where its text was seen (tokens package),
    # and a gateway's own estimate: what ``reconcile --tokens`` compares.
    (
        "m005_local_counts",
        ";".join(
            f"ALTER TABLE usage_events ADD COLUMN {name} {kind}" for name, kind in LOCAL_COLUMNS
        ),
    ),
]

CREATE_MIGRATIONS_SQL = """
CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)
"""


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this database lacks; return the names applied."""
    con.execute(CREATE_MIGRATIONS_SQL)
    done = {row[0] for row in con.execute("SELECT name FROM _migrations").fetchall()}
    applied: list[str] = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql if sql is not None else _schema_v1())
            con.execute("INSERT INTO _migrations VALUES (?, now()::TIMESTAMP)", [name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def known_migrations() -> list[str]:
    return [name for name, _ in MIGRATIONS]
