"""Loading outcomes: from an outcomes file, or beside the calls of a trace export.

An ingester fills the TEMP table ``outcome_stage`` (``model.OUTCOME_STAGE_COLUMNS``), one
row per record: which trace, session or request was judged, and how (accepted, edited,
rejected, escalated). Valid rows go to ``outcomes``; the others are quarantined with their
line and reason. The report attaches each outcome to its trace (see ``report.queries``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
from tokenaudit.ingest.load import FileResult, record_file
from tokenaudit.model import KEY_KINDS, OUTCOMES

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

_KINDS = ", ".join(f"'{k}'" for k in KEY_KINDS)
_OUTCOMES = ", ".join(f"'{o}'" for o in OUTCOMES)

_CHECKS_SQL = f"""UPDATE outcome_stage SET reason = CASE
    WHEN key_kind IS NULL OR key_kind NOT IN ({_KINDS})
        THEN 'no trace, session or request id to attach the outcome to'
    WHEN key IS NULL OR trim(key) = '' THEN 'empty ' || key_kind || ' id'
    WHEN outcome IS NULL THEN 'missing outcome'
    WHEN outcome NOT IN ({_OUTCOMES}) THEN 'unknown outcome: ' || left(outcome, 30)
        || ' (expected accepted, edited, rejected or escalated)'
END
WHERE reason IS NULL"""


def staged(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the ingester filled an ``outcome_stage`` table."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'outcome_stage' AND temporary"
    ).fetchall()[0][0]
    return bool(found)


def insert(con: duckdb.DuckDBPyConnection, file_id: int) -> tuple[int, int, int]:
    """Move ``outcome_stage`` into ``outcomes`` and ``quarantine``: (records, loaded,
    quarantined). Runs inside the caller's transaction; drops the stage table."""
    con.execute(_CHECKS_SQL)
    records = int(con.execute("SELECT count(*) FROM outcome_stage").fetchall()[0][0])
    loaded = int(
        con.execute(
            "INSERT INTO outcomes SELECT ?, line_no, key_kind, trim(key), outcome, ts, reviewer "
            "FROM outcome_stage WHERE reason IS NULL",
            [file_id],
        ).fetchall()[0][0]
    )
    quarantined = int(
        con.execute(
            "INSERT INTO quarantine SELECT ?, line_no, reason FROM outcome_stage "
            "WHERE reason IS NOT NULL",
            [file_id],
        ).fetchall()[0][0]
    )
    con.execute("DROP TABLE outcome_stage")
    return records, loaded, quarantined


def load_outcomes(
    con: duckdb.DuckDBPyConnection, src: Source, ingester: Ingester, ctx: StageContext
) -> FileResult:
    """Load an outcomes file in one transaction."""
    try:
        ingester.stage(con, src, ctx)
    except BaseException:
        con.execute("DROP TABLE IF EXISTS outcome_stage")
        raise
    if not staged(con):
        raise InputError(f"{src.path}: the {ingester.name} reader staged no outcomes")
    con.execute("BEGIN TRANSACTION")
    try:
        file_id = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
        records, loaded, quarantined = insert(con, file_id)
        record_file(con, file_id, src, ingester, (records, loaded, quarantined))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS outcome_stage")
    return FileResult(
        str(src.path),
        ingester.name,
        ingester.kind,
        "loaded",
        records,
        loaded,
        quarantined,
        file_id=file_id,
    )
