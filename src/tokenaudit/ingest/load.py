"""Loading one file: stage, validate, attribute, dedupe, price, insert; all or nothing.

Each file is one transaction. The file's content hash makes a reload a no-op.
Before COMMIT the loader checks conservation: rows loaded + rows quarantined
must equal the records the ingester read, or the whole file is rolled back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenaudit import attribution
from tokenaudit.errors import InputError
from tokenaudit.ingest.base import StageContext, Streamed
from tokenaudit.model import USAGE_STAGE_NAMES, q
from tokenaudit.pricing import (
    TOTAL_INPUT_SQL,
    PriceSettings,
    cost_sql,
    price_join,
    resolve_pairs,
)
from tokenaudit.pricing.lookup import PriceMap, price_map

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

# Later copies of a request id within the file, and ids already loaded from another file,
# move from usage_events to quarantine after the insert (both rare: counted first).
_DUP_COUNT_SQL = """SELECT count(request_id) - count(DISTINCT request_id) FROM usage_events
WHERE file_id = $file_id"""

_SEEN_COUNT_SQL = """SELECT count(*) FROM usage_events
WHERE file_id = $file_id AND request_id IN (
    SELECT request_id FROM usage_events WHERE file_id <> $file_id AND request_id IS NOT NULL)"""

_DUPS_SQL = """CREATE OR REPLACE TEMP TABLE _dups AS
SELECT line_no, 'duplicate request_id (first at line ' || first_line || ')' AS reason
FROM (
    SELECT line_no, min(line_no) OVER (PARTITION BY request_id) AS first_line
    FROM usage_events WHERE file_id = $file_id AND request_id IS NOT NULL
) WHERE line_no <> first_line"""

_SEEN_SQL = """INSERT INTO _dups
SELECT e.line_no, 'request_id already loaded from ' || f.path
FROM usage_events e
JOIN (SELECT request_id, min(file_id) AS first_file FROM usage_events
      WHERE file_id <> $file_id AND request_id IS NOT NULL GROUP BY request_id) o USING (request_id)
JOIN files f ON f.file_id = o.first_file
WHERE e.file_id = $file_id AND e.line_no NOT IN (SELECT line_no FROM _dups)"""

_MOVE_DUPS_SQL = (
    "INSERT INTO quarantine SELECT $file_id, line_no, reason FROM _dups",
    "DELETE FROM usage_events WHERE file_id = $file_id AND line_no IN (SELECT line_no FROM _dups)",
    "DROP TABLE _dups",
)

# Calls are priced as they go in, from constants of their models' prices
# (pricing.lookup): a join would lose the file order the ordered attempt relies on.
_INSERT_EVENTS_SQL = """INSERT INTO usage_events ({names})
SELECT $file_id AS file_id, s.line_no, $source AS source, {cols_a},
    s.p.model_id AS model_id, {cols_b}, {cost} AS cost_usd, s.p.price_id AS price_id, s.tags
    {cols_c}
FROM (SELECT s.*, {lookup} AS p FROM (
    SELECT s.*, {key} AS pk FROM ({relation}) s WHERE s.reason IS NULL) s) s"""

_INSERT_QUARANTINE_SQL = """INSERT INTO quarantine
SELECT $file_id, line_no, reason FROM ({relation}) WHERE reason IS NOT NULL"""

# Calls whose model was not in the map (not in the sample the map was built from).
_PRICE_REST_SQL = """UPDATE usage_events AS u
SET cost_usd = c.cost_usd, price_id = c.price_id, model_id = c.model_id
FROM (
    SELECT s.rowid AS rid, {cost} AS cost_usd, p.price_id, r.model_id
    FROM usage_events s {join}
    WHERE s.file_id = $file_id AND s.price_id IS NULL AND r.status = 'priced'
) c
WHERE u.rowid = c.rid"""

# Rows inserted in file order sit at consecutive row ids (the transaction's own).
_NUMBER_SQL = """UPDATE usage_events SET line_no = rowid - (
    SELECT min(rowid) FROM usage_events WHERE file_id = $file_id) + 1
WHERE file_id = $file_id"""

_UNPRICED_PAIRS_SQL = """SELECT DISTINCT coalesce(lower(provider), ''), model FROM usage_events
WHERE file_id = $file_id AND price_id IS NULL"""

_STAGE_PAIRS_SQL = """SELECT DISTINCT coalesce(lower(provider), ''), model FROM stage
WHERE reason IS NULL AND model IS NOT NULL"""

_FILE_COUNTS_SQL = """SELECT (SELECT count(*) FROM usage_events WHERE file_id = $file_id),
    (SELECT count(*) FROM quarantine WHERE file_id = $file_id)"""


def _insert_events_sql(relation: str, prices: PriceMap, local: bool = True) -> str:
    """``local``: the relation has the LOCAL_COLUMNS (else they are left NULL)."""
    names = list(USAGE_STAGE_NAMES)
    tail = names[names.index("tags") + 1 :]  # columns added by later migrations
    names = names[: names.index("tags")]
    before = names[: names.index("model") + 1]
    after = names[names.index("model") + 1 :]
    return _INSERT_EVENTS_SQL.format(
        cols_a=", ".join(f"s.{q(c)}" for c in before),
        cols_b=", ".join(f"s.{q(c)}" for c in after),
        cols_c="".join(f", s.{q(c)}" for c in tail) if local else "",
        names=", ".join(
            q(c)
            for c in (
                "file_id",
                "line_no",
                "source",
                *before,
                "model_id",
                *after,
                "cost_usd",
                "price_id",
                "tags",
                *(tail if local else []),
            )
        ),
        cost=prices.cost_sql("s"),
        key=prices.key_sql("s"),
        lookup=prices.lookup_sql("s", TOTAL_INPUT_SQL.format(s="s")),
        relation=relation,
    )


_FILE_SQL = """INSERT INTO files (file_id, path, sha256, size_bytes, format, kind, records_read,
    rows_loaded, rows_quarantined, loaded_at, quick_key, lines_replaced, source_path, raw_size,
    mtime_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def record_file(
    con: duckdb.DuckDBPyConnection,
    file_id: int,
    src: Source,
    ingester: Ingester,
    counts: tuple[int, int, int],
    replaced: int = 0,
) -> None:
    """Register a loaded file: (records read, rows loaded, rows quarantined)."""
    records, loaded, quarantined = counts
    try:
        st = src.path.stat()
        where, raw_size, mtime_ns = str(src.path.resolve()), st.st_size, st.st_mtime_ns
    except OSError:  # gone meanwhile: it will simply be read again next time
        where, raw_size, mtime_ns = str(src.path), None, None
    con.execute(
        _FILE_SQL,
        [
            file_id,
            str(src.path),
            src.sha256,
            src.size_bytes,
            ingester.name,
            ingester.kind,
            records,
            loaded,
            quarantined,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            src.quick_key,
            replaced,
            where,
            raw_size,
            mtime_ns,
        ],
    )


class _Mismatch(Exception):
    """The streaming reader did not account for every line: use the staged path."""


def load_file(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    ingester: Ingester,
    ctx: StageContext,
    prices: PriceSettings,
    mapping: dict[str, Any],
) -> FileResult:
    """Load ``src`` with ``ingester`` in one transaction; skip it if already loaded."""
    maybe_seen = con.execute(
        "SELECT count(*) FROM files WHERE quick_key = ? OR quick_key IS NULL", [src.quick_key]
    ).fetchall()[0][0]
    seen = (
        con.execute("SELECT path FROM files WHERE sha256 = ?", [src.sha256]).fetchall()
        if maybe_seen
        else []
    )
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
    if ingester.kind == "billing":
        from tokenaudit.ingest.billing_load import load_billing

        return load_billing(con, src, ingester, ctx, prices)
    if ingester.kind == "outcomes":
        from tokenaudit.ingest.outcomes_load import load_outcomes

        return load_outcomes(con, src, ingester, ctx)
    if ingester.kind != "usage":
        raise InputError(f"{src.path}: {ingester.kind} files are not supported yet")
    stream = getattr(ingester, "stream", None)
    streamed = stream(con, src, ctx) if stream is not None else None
    if streamed is not None:
        import duckdb

        try:
            pairs = _pairs(con, streamed.models_sql, streamed.params)
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            streamed = None  # its first records do not read as typed: the staged path decides
    if streamed is not None:
        pmap = _price_map(con, prices, pairs)
        for relation, ordered in streamed.attempts():
            con.execute("BEGIN TRANSACTION")
            try:
                result = _load(
                    con,
                    src,
                    ingester,
                    (relation, ordered, pmap, pairs),
                    streamed,
                    prices,
                    mapping,
                )
                con.execute("COMMIT")
                return result
            except (_Mismatch, duckdb.InvalidInputException, duckdb.ConversionException):
                con.execute("ROLLBACK")  # the next attempt, at last the staged path, decides
            except BaseException:
                con.execute("ROLLBACK")
                raise
    # Staging fills only a TEMP table, outside the transaction.
    try:
        read = ingester.stage(con, src, ctx)
        con.execute(_GENERIC_CHECKS_SQL)
    except BaseException:
        con.execute("DROP TABLE IF EXISTS stage")
        con.execute("DROP TABLE IF EXISTS outcome_stage")
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        staged = Streamed(_STAGED, {}, read)
        pairs = _pairs(con, _STAGE_PAIRS_SQL, {})
        pmap = _price_map(con, prices, pairs)
        result = _load(con, src, ingester, (_STAGED, False, pmap, pairs), staged, prices, mapping)
        result = _with_outcomes(con, result)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS stage")
        con.execute("DROP TABLE IF EXISTS outcome_stage")
    return result


def _with_outcomes(con: duckdb.DuckDBPyConnection, result: FileResult) -> FileResult:
    """Load the outcomes a usage reader staged beside its calls (scores of a trace export):
    they are records of the file too."""
    from dataclasses import replace

    from tokenaudit.ingest import outcomes_load

    if result.file_id is None or not outcomes_load.staged(con):
        return result
    records, loaded, quarantined = outcomes_load.insert(con, result.file_id)
    con.execute(
        "UPDATE files SET records_read = records_read + ?, rows_loaded = rows_loaded + ?, "
        "rows_quarantined = rows_quarantined + ? WHERE file_id = ?",
        [records, loaded, quarantined, result.file_id],
    )
    return replace(
        result,
        records_read=result.records_read + records,
        rows_loaded=result.rows_loaded + loaded,
        rows_quarantined=result.rows_quarantined + quarantined,
    )


_STAGED = "SELECT * FROM stage"


def _pairs(
    con: duckdb.DuckDBPyConnection, sql: str | None, params: dict[str, Any]
) -> set[tuple[str, str]]:
    if sql is None:
        return set()
    return {(str(a), str(b)) for a, b in con.execute(sql, _bind(sql, params)).fetchall()}


def _price_map(
    con: duckdb.DuckDBPyConnection, prices: PriceSettings, pairs: set[tuple[str, str]]
) -> PriceMap:
    """Resolve ``pairs`` (new ones only) and return their price rows."""
    resolve_pairs(con, prices, sorted(pairs))
    return price_map(con, sorted(pairs))


def _bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The named parameters ``sql`` uses (DuckDB rejects extra ones)."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _load(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    ingester: Ingester,
    attempt: tuple[str, bool, PriceMap, set[tuple[str, str]]],
    s: Streamed,
    prices: PriceSettings,
    mapping: dict[str, Any],
) -> FileResult:
    """Insert the attempt's valid rows, quarantine the rest, price, dedupe, attribute.

    ``attempt`` is (relation, ordered, price map, the pairs in the map). ``ordered``:
    the relation's rows come in file order with line_no 0; it must then account for
    every record with no reject, since rejects would break the numbering.
    """
    relation, ordered, pmap, mapped = attempt
    file_id = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
    ids = {"file_id": file_id}
    params = {**s.params, **ids, "source": ingester.name}
    insert = _insert_events_sql(relation, pmap, local=s.local)
    loaded = con.execute(insert, _bind(insert, params)).fetchall()[0][0]
    records = s.records if s.records is not None else src.line_count  # hashed meanwhile
    quarantined = 0
    if ordered and loaded != records:
        raise _Mismatch
    if loaded < records:
        qsql = _INSERT_QUARANTINE_SQL.format(relation=relation)
        quarantined = con.execute(qsql, _bind(qsql, params)).fetchall()[0][0]
    if loaded + quarantined != records:
        if relation != _STAGED:
            raise _Mismatch
        raise InputError(
            f"{src.path}: conservation check failed: {loaded} loaded + {quarantined} "
            f"quarantined != {records} records read; nothing was written"
        )
    if ordered:
        con.execute(_NUMBER_SQL, ids)
    _price_rest(con, prices, ids, mapped)
    _move_duplicates(con, ids)
    if mapping:
        attribution.apply(con, mapping, table="usage_events", where="file_id = ?", params=[file_id])
    loaded, quarantined = (int(x) for x in con.execute(_FILE_COUNTS_SQL, ids).fetchall()[0])
    if loaded + quarantined != records:
        raise InputError(f"{src.path}: conservation check failed after dedupe; nothing was written")
    record_file(con, file_id, src, ingester, (records, loaded, quarantined))
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


def _move_duplicates(con: duckdb.DuckDBPyConnection, ids: dict[str, int]) -> None:
    within = con.execute(_DUP_COUNT_SQL, ids).fetchall()[0][0]
    others = con.execute(
        "SELECT EXISTS (SELECT 1 FROM usage_events WHERE file_id <> $file_id)", ids
    ).fetchall()[0][0]
    seen = con.execute(_SEEN_COUNT_SQL, ids).fetchall()[0][0] if others else 0
    if not within and not seen:
        return
    con.execute(_DUPS_SQL, ids)
    if seen:
        con.execute(_SEEN_SQL, ids)
    for sql in _MOVE_DUPS_SQL:
        con.execute(sql, ids if "$file_id" in sql else None)


def _price_rest(
    con: duckdb.DuckDBPyConnection,
    prices: PriceSettings,
    ids: dict[str, int],
    mapped: set[tuple[str, str]],
) -> None:
    """Price the calls whose model was not in the map (first seen past the sample)."""
    pairs = {(str(a), str(b)) for a, b in con.execute(_UNPRICED_PAIRS_SQL, ids).fetchall()}
    new = pairs - mapped
    if new and resolve_pairs(con, prices, sorted(new)):
        con.execute(_PRICE_REST_SQL.format(cost=cost_sql("s"), join=price_join("s")), ids)
