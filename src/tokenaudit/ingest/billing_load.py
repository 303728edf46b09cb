"""Loading one billing export: stage, check, replace the period it covers, insert; all or nothing.

A billing ingester fills the TEMP table ``billing_stage`` (``model.BILLING_STAGE_COLUMNS``)
with one row per billed category of each record, every row carrying the record's
``line_no``; a record with nothing billed (an idle day) leaves one row whose
``token_category`` is NULL. A record is quarantined whole when any of its rows has a
reason. Conservation is counted in records: loaded + quarantined = records read.

Exports overlap: the same month downloaded twice, a daily export beside a monthly one.
So the lines of a new file replace, per dataset, provider and account, the lines already
loaded whose period overlaps the time range the new file covers (lines longer than a
month, such as a yearly purchase, replace only a line of the same period). Loading an
export twice, or two overlapping exports, leaves the billed totals of loading it once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
from tokenaudit.ingest.load import FileResult, record_file
from tokenaudit.model import BILLING_CATEGORIES, BILLING_STAGE_NAMES, q
from tokenaudit.pricing import PriceSettings, resolve_pairs

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

_CATEGORY_LIST = ", ".join(f"'{c}'" for c in BILLING_CATEGORIES)

# Checks every billing format shares, on rows the ingester left unflagged.
_CHECKS_SQL = f"""UPDATE billing_stage SET reason = CASE
    WHEN period_start IS NULL THEN 'missing or invalid period start'
    WHEN period_end IS NULL THEN 'missing or invalid period end'
    WHEN period_end <= period_start THEN 'period ends before it starts'
    WHEN token_category IS NULL THEN NULL
    WHEN token_category NOT IN ({_CATEGORY_LIST}) THEN 'unknown category: ' || token_category
    WHEN quantity < 0 THEN 'negative quantity: ' || quantity
    WHEN cost IS NOT NULL AND currency IS NULL THEN 'cost without a currency'
END
WHERE reason IS NULL"""

_BAD_RECORDS_SQL = """CREATE OR REPLACE TEMP TABLE _bad_records AS
SELECT line_no, min(reason) AS reason FROM billing_stage
WHERE reason IS NOT NULL GROUP BY line_no"""

# What the new file covers, per dataset, provider and account: the time range of its
# usage-length lines. A line longer than a billing month (a yearly purchase, a commitment)
# would stretch that range over a year of other lines: such a line replaces only an
# earlier line of the same period.
_LONG = "INTERVAL 32 DAY"

_COVERED_SQL = f"""CREATE OR REPLACE TEMP TABLE _covered AS
SELECT dataset, coalesce(provider, '') AS provider, coalesce(account, '') AS account,
    min(period_start) AS first_start, max(period_end) AS last_end
FROM billing_stage s ANTI JOIN _bad_records b USING (line_no)
WHERE period_end - period_start < {_LONG}
GROUP BY ALL"""

_REPLACE_SQL = f"""DELETE FROM billing_lines AS b USING _covered AS c
WHERE b.dataset = c.dataset AND coalesce(b.provider, '') = c.provider
    AND coalesce(b.account, '') = c.account
    AND b.period_end - b.period_start < {_LONG}
    AND b.period_start < c.last_end AND b.period_end > c.first_start"""

_REPLACE_LONG_SQL = f"""DELETE FROM billing_lines AS b USING (
    SELECT DISTINCT dataset, coalesce(provider, '') AS provider,
        coalesce(account, '') AS account, period_start, period_end
    FROM billing_stage s ANTI JOIN _bad_records r USING (line_no)
    WHERE period_end - period_start >= {_LONG}
) AS c
WHERE b.dataset = c.dataset AND coalesce(b.provider, '') = c.provider
    AND coalesce(b.account, '') = c.account
    AND b.period_start = c.period_start AND b.period_end = c.period_end"""

_PAIRS_SQL = """SELECT DISTINCT coalesce(lower(provider), ''), model FROM billing_stage
WHERE reason IS NULL AND model IS NOT NULL AND token_category IS NOT NULL"""

_INSERT_SQL = """INSERT INTO billing_lines ({columns})
SELECT $file_id, s.line_no, $source, {values}, r.model_id
FROM billing_stage s ANTI JOIN _bad_records b USING (line_no)
LEFT JOIN model_resolution r
    ON r.provider = coalesce(lower(s.provider), '') AND r.model = s.model
WHERE s.token_category IS NOT NULL"""


def _insert_sql() -> str:
    names = list(BILLING_STAGE_NAMES)
    columns = ", ".join(["file_id", "line_no", "source", *(q(n) for n in names), "model_id"])
    values = ", ".join(f"s.{q(n)}" for n in names)
    return _INSERT_SQL.format(columns=columns, values=values)


def load_billing(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    ingester: Ingester,
    ctx: StageContext,
    prices: PriceSettings,
) -> FileResult:
    """Load the billing export ``src`` in one transaction."""
    try:
        ingester.stage(con, src, ctx)
        con.execute(_CHECKS_SQL)
        con.execute(_BAD_RECORDS_SQL)
    except BaseException:
        _drop(con)
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        result = _load(con, src, ingester, prices)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        _drop(con)
    return result


def _drop(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("billing_stage", "_bad_records", "_covered"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _load(
    con: duckdb.DuckDBPyConnection, src: Source, ingester: Ingester, prices: PriceSettings
) -> FileResult:
    file_id = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
    records = int(con.execute("SELECT count(DISTINCT line_no) FROM billing_stage").fetchall()[0][0])
    quarantined = int(
        con.execute(
            "INSERT INTO quarantine SELECT ?, line_no, reason FROM _bad_records", [file_id]
        ).fetchall()[0][0]
    )
    con.execute(_COVERED_SQL)
    replaced = int(con.execute(_REPLACE_SQL).fetchall()[0][0])
    replaced += int(con.execute(_REPLACE_LONG_SQL).fetchall()[0][0])
    pairs = [(str(a), str(b)) for a, b in con.execute(_PAIRS_SQL).fetchall()]
    resolve_pairs(con, prices, pairs)
    lines = int(
        con.execute(_insert_sql(), {"file_id": file_id, "source": ingester.name}).fetchall()[0][0]
    )
    loaded = records - quarantined
    if loaded < 0 or (loaded == 0 and lines > 0):
        raise InputError(
            f"{src.path}: conservation check failed: {records} records read, "
            f"{quarantined} quarantined; nothing was written"
        )
    record_file(con, file_id, src, ingester, (records, loaded, quarantined), replaced)
    detail = f"{lines:,} billing lines" + (
        f"; replaced {replaced:,} lines of earlier exports" if replaced else ""
    )
    return FileResult(
        str(src.path),
        ingester.name,
        ingester.kind,
        "loaded",
        records,
        loaded,
        quarantined,
        detail,
        file_id,
    )
