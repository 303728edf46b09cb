"""Loading one file: stage, validate, attribute, dedupe, price, insert; all or nothing.

Each file is one transaction. The file's content hash makes a reload a no-op.
Before COMMIT the loader checks conservation: rows loaded + rows quarantined
must equal the records the ingester read, or the whole file is rolled back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit import attribution
from tokenaudit.errors import InputError
from tokenaudit.ingest.base import StageContext
from tokenaudit.model import USAGE_STAGE_NAMES, q
from tokenaudit.pricing import PriceSettings, cost_sql, ensure_prices, price_join

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester
    from tokenaudit.ingest.source import Source


@dataclass(frozen=True)
class FileResult:
    path: str
    format: str
    kind: str
    status: str  # loaded | skipped
    records_read: int
    rows_loaded: int
    rows_quarantined: int
    detail: str = ""
    file_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "kind": self.kind,
            "status": self.status,
            "records_read": self.records_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "skipped_as_already_loaded": self.status == "skipped",
        }


# Checks every format shares, applied to rows the ingester left unflagged.
_GENERIC_CHECKS_SQL = """UPDATE stage SET reason = CASE
    WHEN ts IS NULL THEN 'missing or invalid timestamp'
    WHEN model IS NULL OR trim(model) = '' THEN 'missing model'
    WHEN least(input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
               output_tokens, reasoning_tokens) < 0 THEN 'negative token count'
    WHEN reasoning_tokens > output_tokens THEN 'reasoning_tokens exceeds output_tokens'
END
WHERE reason IS NULL AND (ts IS NULL OR model IS NULL OR trim(model) = ''
    OR least(input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
             output_tokens, reasoning_tokens) < 0
    OR reasoning_tokens > output_tokens)"""

_DUP_COUNT_SQL = """SELECT count(request_id) - count(DISTINCT request_id) FROM stage
WHERE reason IS NULL"""

# Later copies of a request id within the file are quarantined, pointing at the first.
_DUP_MARK_SQL = """UPDATE stage
SET reason = 'duplicate request_id (first at line ' || d.first_line || ')'
FROM (
    SELECT line_no, min(line_no) OVER (PARTITION BY request_id) AS first_line
    FROM stage WHERE reason IS NULL AND request_id IS NOT NULL
) d
WHERE stage.line_no = d.line_no AND d.first_line <> d.line_no"""

_SEEN_COUNT_SQL = """SELECT count(*) FROM stage s SEMI JOIN usage_events e USING (request_id)
WHERE s.reason IS NULL"""

_SEEN_MARK_SQL = """UPDATE stage SET reason = 'request_id already loaded from ' || f.path
FROM usage_events e JOIN files f USING (file_id)
WHERE stage.reason IS NULL AND stage.request_id = e.request_id"""

_INSERT_EVENTS_SQL = """INSERT INTO usage_events
SELECT $file_id AS file_id, s.line_no, $source AS source, {cols_a},
    r.model_id, {cols_b}, {cost} AS cost_usd, p.price_id, s.tags
FROM stage s {join}
WHERE s.reason IS NULL"""

_INSERT_QUARANTINE_SQL = """INSERT INTO quarantine
SELECT $file_id, line_no, reason FROM stage WHERE reason IS NOT NULL"""

_COUNTS_SQL = """SELECT count(*) FILTER (WHERE reason IS NULL),
    count(*) FILTER (WHERE reason IS NOT NULL)
FROM stage"""


def _insert_events_sql() -> str:
    names = list(USAGE_STAGE_NAMES)
    names.remove("tags")
    before = names[: names.index("model") + 1]
    after = names[names.index("model") + 1 :]
    return _INSERT_EVENTS_SQL.format(
        cols_a=", ".join(f"s.{q(c)}" for c in before),
        cols_b=", ".join(f"s.{q(c)}" for c in after),
        cost=cost_sql("s"),
        join=price_join("s"),
    )


def load_file(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    ingester: Ingester,
    ctx: StageContext,
    prices: PriceSettings,
    mapping: dict[str, Any],
) -> FileResult:
    """Load ``src`` with ``ingester`` in one transaction; skip it if already loaded."""
    seen = con.execute("SELECT path, format FROM files WHERE sha256 = ?", [src.sha256]).fetchall()
    if seen:
        return FileResult(
            str(src.path),
            ingester.name,
            ingester.kind,
            "skipped",
            0,
            0,
            0,
            f"same content as {seen[0][0]}",
        )
    # Staging fills only a TEMP table, outside the transaction, so that a fast
    # reader that gives up can fall back without aborting the transaction.
    try:
        read = ingester.stage(con, src, ctx)
    except BaseException:
        con.execute("DROP TABLE IF EXISTS stage")
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        result = _load(con, src, ingester, read, prices, mapping)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS stage")
    return result


def _load(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    ingester: Ingester,
    read: int,
    prices: PriceSettings,
    mapping: dict[str, Any],
) -> FileResult:
    if ingester.kind != "usage":
        raise InputError(f"{src.path}: {ingester.kind} files are not supported yet")
    con.execute(_GENERIC_CHECKS_SQL)
    if mapping:
        attribution.apply(con, mapping)
    if con.execute(_DUP_COUNT_SQL).fetchall()[0][0]:
        con.execute(_DUP_MARK_SQL)
    has_events = con.execute("SELECT EXISTS (SELECT 1 FROM usage_events)").fetchall()[0][0]
    if has_events and con.execute(_SEEN_COUNT_SQL).fetchall()[0][0]:
        con.execute(_SEEN_MARK_SQL)
    ensure_prices(con, prices, stage="stage")
    file_id = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
    loaded, quarantined = (int(x) for x in con.execute(_COUNTS_SQL).fetchall()[0])
    if loaded + quarantined != read:
        raise InputError(
            f"{src.path}: conservation check failed: {loaded} loaded + {quarantined} "
            f"quarantined != {read} records read; nothing was written"
        )
    con.execute(_insert_events_sql(), {"file_id": file_id, "source": ingester.name})
    con.execute(_INSERT_QUARANTINE_SQL, {"file_id": file_id})
    con.execute(
        "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            file_id,
            str(src.path),
            src.sha256,
            src.size_bytes,
            ingester.name,
            ingester.kind,
            read,
            loaded,
            quarantined,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
        ],
    )
    return FileResult(
        str(src.path),
        ingester.name,
        ingester.kind,
        "loaded",
        read,
        loaded,
        quarantined,
        file_id=file_id,
    )


ProgressFn = Callable[[str, int, int], None]  # (path, done_files, total_files)


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
