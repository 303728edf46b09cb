"""Tabular exports (CSV) into a staging table of text columns, and the SQL checks of
their cells (numbers, money, timestamps) that the billing and gateway formats share.

``stage_csv`` reads with DuckDB's CSV reader when the file is well formed (explicit
options, every column as text, exact line numbers even across quoted newlines) and falls
back to Python's ``csv`` module, row by row, only for a malformed file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

MAX_LINE = 16 << 20
BATCH = 20_000
FIELD_LIMIT = 1 << 30
BAD_UTF8 = re.compile("[\udc80-\udcff]")


# --- reading CSV and Parquet into a table of text columns ---------------------------------


def csv_header(head: bytes) -> list[str] | None:
    """The names in the first line of ``head`` (BOM removed), or None if it is not CSV."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        return None
    try:
        names = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    return [n.strip() for n in names]


def positions(header: Sequence[str], columns: Mapping[str, str]) -> dict[str, int]:
    """Canonical name -> index of the first header cell naming its column."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name.strip().lower(), i)
    return {canon: index[col] for canon, col in columns.items() if col in index}


def _ddl(table: str, columns: Iterable[str]) -> str:
    cols = ", ".join(f"{c} VARCHAR" for c in columns)
    return f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT, bad VARCHAR, {cols})"


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    table: str,
    header: Sequence[str],
    columns: Mapping[str, str],
) -> None:
    """Fill TEMP ``table`` (line_no, bad, one text column per canonical name) from a CSV.

    ``line_no`` is the physical line where the record starts (header = line 1). DuckDB reads
    clean files; Python's csv module takes over when DuckDB errs or when header + records +
    newlines inside fields do not account for every line of the file.
    """
    import duckdb

    pos = positions(header, columns)
    if len({n.strip().lower() for n in header}) == len(header):
        try:
            if _fast_csv(con, src, table, len(header), pos, columns):
                return
        except duckdb.Error:
            pass
    _exact_csv(con, src, table, pos, columns)


def _select_list(pos: Mapping[str, int], columns: Iterable[str]) -> str:
    return ", ".join(f"c{pos[c]} AS {c}" if c in pos else f"NULL::VARCHAR AS {c}" for c in columns)


def _fast_csv(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    table: str,
    width: int,
    pos: Mapping[str, int],
    columns: Mapping[str, str],
) -> bool:
    cols = [f"c{i}" for i in range(width)]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    reader = (
        f"read_csv($path, columns = {spec}, header = true, delim = ',', quote = '\"', "
        f"escape = '\"', auto_detect = false, strict_mode = true, null_padding = false, "
        f"max_line_size = {MAX_LINE})"
    )
    params = {"path": str(src.data_path)}
    select = _select_list(pos, columns)
    # Most exports have no newline inside a field: one line per record.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT 1 + row_number() OVER () AS line_no, NULL::VARCHAR AS bad, {select}
        FROM {reader}""",
        params,
    )
    records = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    if records + 1 == src.line_count:
        return True
    newlines = " + ".join(f"coalesce(len({c}) - len(replace({c}, chr(10), '')), 0)" for c in cols)
    # Newlines inside quoted fields: each record starts after the lines of the ones before.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT 1 + rn + coalesce(sum(nl) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING
                                               AND 1 PRECEDING), 0) AS line_no,
            NULL::VARCHAR AS bad, * EXCLUDE (rn)
        FROM (SELECT row_number() OVER () AS rn, {newlines} AS nl, {select} FROM {reader})""",
        params,
    )
    records, embedded = con.execute(
        f"SELECT count(*), coalesce(sum(nl), 0) FROM {table}"
    ).fetchall()[0]
    if 1 + int(records) + int(embedded) != src.line_count:
        return False
    con.execute(f"ALTER TABLE {table} DROP COLUMN nl")
    return True


def _exact_csv(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    table: str,
    pos: Mapping[str, int],
    columns: Mapping[str, str],
) -> None:
    names = list(columns)
    con.execute(_ddl(table, names))
    batch: list[tuple[object, ...]] = []
    width = 0
    old_limit = csv.field_size_limit(FIELD_LIMIT)
    try:
        with open(src.data_path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f, strict=True)
            try:
                width = len(next(reader))
            except (csv.Error, StopIteration):
                return  # no header: no records (the caller checked the header already)
            start = reader.line_num + 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    batch.append((start, f"malformed CSV row: {e}", *[None] * len(names)))
                    start = reader.line_num + 1
                    continue
                line_no, start = start, reader.line_num + 1
                if not row:
                    continue  # a blank line is not a record
                batch.append(_exact_row(line_no, row, width, pos, names))
                if len(batch) >= BATCH:
                    _insert(con, table, names, batch)
    finally:
        csv.field_size_limit(old_limit)
    _insert(con, table, names, batch)


def _exact_row(
    line_no: int, row: list[str], width: int, pos: Mapping[str, int], names: list[str]
) -> tuple[object, ...]:
    empty = [None] * len(names)
    if len(row) != width:
        return (line_no, f"expected {width} fields, found {len(row)}", *empty)
    values = [row[pos[n]] if n in pos else None for n in names]
    if any(v is not None and BAD_UTF8.search(v) for v in values):
        return (line_no, "invalid UTF-8", *empty)
    return (line_no, None, *[v if v != "" else None for v in values])


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, names: list[str], rows: list[tuple[object, ...]]
) -> None:
    import pyarrow as pa

    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    data = {"line_no": pa.array(cols[0], pa.int64()), "bad": pa.array(cols[1], pa.string())}
    for i, name in enumerate(names):
        data[name] = pa.array(cols[i + 2], pa.string())
    con.register("_csv_batch", pa.table(data))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _csv_batch")
    finally:
        con.unregister("_csv_batch")
    rows.clear()


# --- SQL building blocks ------------------------------------------------------------------

NUM_RE = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"


def nz(expr: str) -> str:
    """Text with empty cells and the bare word NULL as SQL NULL."""
    return f"CASE WHEN trim({expr}) IN ('', 'NULL', 'null') THEN NULL ELSE trim({expr}) END"


def shown(expr: str) -> str:
    """A value for a quarantine reason: at most 40 printable characters."""
    return f"regexp_replace(left({expr}, 40), '[^ -~]', '?', 'g')"


def money(expr: str) -> str:
    """Exact DECIMAL(38,12) of a FOCUS number (decimal or E-notation), else NULL."""
    return (
        f"CASE WHEN regexp_full_match({expr}, '{NUM_RE}') "
        f"THEN TRY_CAST({expr} AS DECIMAL(38,12)) END"
    )


def money_reason(expr: str, label: str, *, required: bool) -> str:
    """WHEN clauses quarantining a bad money value: never rounded, never overflowing."""
    digits = (
        f"regexp_extract({expr}, '^[+-]?([0-9]*)', 1) || "
        f"regexp_extract({expr}, '^[^.eE]*\\.([0-9]*)', 1)"
    )
    scale = (
        f"length(regexp_extract({expr}, '^[^.eE]*\\.([0-9]*)', 1)) - coalesce(TRY_CAST("
        f"regexp_extract({expr}, '[eE]([+-]?[0-9]+)$', 1) AS BIGINT), 0)"
    )
    needed = f"({scale}) - (length({digits}) - length(rtrim({digits}, '0')))"
    missing = f"WHEN {expr} IS NULL THEN 'missing {label}' " if required else ""
    return (
        f"{missing}"
        f"WHEN {expr} IS NOT NULL AND NOT regexp_full_match({expr}, '{NUM_RE}') "
        f"THEN 'invalid {label}: ' || {shown(expr)} "
        f"WHEN {expr} IS NOT NULL AND rtrim({digits}, '0') <> '' AND {needed} > 12 "
        f"THEN '{label} has more than 12 decimal places: ' || {shown(expr)} "
        f"WHEN {expr} IS NOT NULL AND TRY_CAST({expr} AS DECIMAL(38,12)) IS NULL "
        f"THEN '{label} out of range: ' || {shown(expr)} "
    )


_MDY = (
    "['%m/%d/%y', '%m/%d/%Y', '%m/%d/%Y %H:%M:%S', '%m/%d/%Y %H:%M', '%m/%d/%y %H:%M:%S', "
    "'%m/%d/%y %H:%M', '%m/%d/%Y %I:%M:%S %p', '%m/%d/%Y %I:%M %p', '%m/%d/%y %I:%M %p']"
)
_OFFSET = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)? ?([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"


def timestamp(expr: str) -> str:
    """A naive UTC TIMESTAMP from ISO 8601 (with or without a zone) or month/day/year."""
    return f"""CASE
        WHEN regexp_full_match({expr}, '[0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{2,4}}( .*)?')
            THEN try_strptime({expr}, {_MDY})
        WHEN NOT regexp_matches({expr}, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN NULL
        WHEN regexp_matches({expr}, '{_OFFSET}')
            THEN timezone('UTC', TRY_CAST({expr} AS TIMESTAMPTZ))
        ELSE TRY_CAST({expr} AS TIMESTAMP)
    END"""
