"""OpenAI billing exports as rows of text: the dashboard CSV readers and the shared mapping.

Both OpenAI billing readers (``ingest.openai_billing``: the API JSON; this module: the
dashboard CSV) fill one TEMP table ``ROWS`` with one row per record:
``(line_no, bad, endpoint, <FIELDS>)``, every field as text (NULL when empty or
absent), ``bad`` a reason decided while reading, ``endpoint`` the usage endpoint
(``completions``, ``embeddings``, ...) or ``costs``. One SQL mapping per kind
(``stage_sql``: usage, costs) checks the values (exact DECIMAL casts, never floats),
splits each record into its billed categories and fills ``billing_stage``.

The dashboard's CSV export (platform.openai.com/usage -> Export) is the API's
bucket x result flattened: ``start_time,end_time,start_time_iso,end_time_iso``
then the result's fields, counts written as floats (``3608.0``), booleans as
``False``/``True``; a day without usage is a row with only the time columns
filled; an export without any usage has only the four time columns. The cost
export adds ``amount_value,amount_currency,quantity,quantity_unit,line_item``
and names (``project_name``, ``organization_name``, ``user_email``: the e-mail is
never read). Header names match without regard to case; a UTF-8 BOM is skipped;
unknown columns are ignored. The usage endpoint comes from the columns
(``output_tokens``: completions, ``images``, ``characters``, ``seconds``, ...), and
from the file name (``moderations_usage_...``) where columns cannot tell.

* fast: DuckDB's ``read_csv`` (all VARCHAR, explicit options, strict), kept only when
  header + records + newlines inside quoted fields account for every line of the file.
* exact: Python's ``csv`` module otherwise (a malformed row, invalid UTF-8, blank
  lines): every row, broken or not, is a record with its physical line number.
"""

from __future__ import annotations

import csv
import re
from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
from tokenaudit.ingest.base import KEY_HASH_SQL, SECRET_RE
from tokenaudit.ingest.tabular import BAD_UTF8, BATCH, MAX_LINE, csv_header

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

ROWS = "_openai_billing_rows"
VALUES = "_openai_billing_v"  # ROWS with parsed values and the reason (``why``) of each record
ITEMS = "_openai_billing_items"  # line_item -> model, category, tier (costs)
TIERS = {"default": "standard", "standard": "standard", "auto": "standard", "batch": "batch"}
TIERS |= {t: t for t in ("priority", "flex", "scale")}

# Every field a mapping reads (the API's names; the CSV header uses the same ones).
FIELDS = (
    "start_time", "end_time", "start_time_iso", "end_time_iso",
    "organization_id", "organization_name", "project_id", "project_name", "api_key_id",
    "model", "batch", "service_tier",
    "input_tokens", "output_tokens", "input_cached_tokens", "input_cache_write_tokens",
    "input_uncached_tokens", "num_model_requests",
    "images", "size", "source", "characters", "seconds", "usage_bytes", "num_sessions",
    "num_requests", "vector_store_id", "context_level",
    "amount_value", "amount_currency", "quantity", "quantity_unit", "line_item",
)  # fmt: skip
ROWS_DDL = (
    f"CREATE OR REPLACE TEMP TABLE {ROWS} (line_no BIGINT, bad VARCHAR, endpoint VARCHAR, "
    + ", ".join(f"{f} VARCHAR" for f in FIELDS)
    + ")"
)
Row = dict[str, str | int | None]

TIME_COLUMNS = ("start_time", "end_time", "start_time_iso", "end_time_iso")
COST_COLUMNS = frozenset({"amount_value", "amount_currency"})
# A usage column that tells the endpoint of a CSV export, most specific first.
_ENDPOINT_BY_COLUMN = (
    ("output_tokens", "completions"),
    ("input_cached_tokens", "completions"),
    ("service_tier", "completions"),
    ("batch", "completions"),
    ("images", "images"),
    ("characters", "audio_speeches"),
    ("seconds", "audio_transcriptions"),
    ("usage_bytes", "vector_stores"),
    ("num_sessions", "code_interpreter_sessions"),
    ("context_level", "web_searches"),
    ("vector_store_id", "file_searches"),
    ("num_requests", "file_searches"),
    ("input_tokens", "embeddings"),
    ("num_model_requests", "completions"),
)
USAGE_COLUMNS = frozenset(c for c, _ in _ENDPOINT_BY_COLUMN)
ENDPOINTS = (
    "completions", "embeddings", "moderations", "images", "audio_speeches",
    "audio_transcriptions", "vector_stores", "code_interpreter_sessions", "file_searches",
    "web_searches",
)  # fmt: skip
# Export file names: completions_usage_2026-04-01_2026-04-30.csv, cost_....csv
_FILE_ENDPOINT = re.compile(r"^([a-z_]+?)_usage_", re.IGNORECASE)


def header(head: bytes) -> list[str] | None:
    """The lower-cased names of the first line of ``head``, or None when it is not a header."""
    names = csv_header(head)
    return None if names is None else [n.lower() for n in names]


def csv_kind(src: Source, *, loose: bool = False) -> str | None:
    """``usage`` or ``costs`` for an OpenAI dashboard CSV export, else None.

    Sniffing wants the export's first columns (``start_time,end_time``); ``loose`` (a
    format given by the user) only wants a start time column.
    """
    names = header(src.head)
    if not names:
        return None
    cols = set(names)
    if names[:2] != ["start_time", "end_time"] and not (
        loose and cols & {"start_time", "start_time_iso"}
    ):
        return None
    if cols >= COST_COLUMNS:
        return "costs"
    if cols & COST_COLUMNS:
        return None
    if cols <= set(TIME_COLUMNS):  # an export without any usage: only the time columns
        return "costs" if src.name.lower().startswith("cost") else "usage"
    return "usage" if cols & USAGE_COLUMNS else None


def usage_endpoint(names: list[str], file_name: str) -> str | None:
    """The usage endpoint a CSV export comes from: its columns, else its file name."""
    m = _FILE_ENDPOINT.match(file_name)
    named = m.group(1).lower() if m and m.group(1).lower() in ENDPOINTS else None
    cols = set(names)
    for column, endpoint in _ENDPOINT_BY_COLUMN:
        if column in cols:
            # Embeddings and moderations have the same columns: the file name tells them apart.
            return named if endpoint == "embeddings" and named == "moderations" else endpoint
    return named


def stage_csv(con: duckdb.DuckDBPyConnection, src: Source, kind: str) -> None:
    """Fill ``ROWS`` from the CSV export ``src`` (every row, each with its line number)."""
    import duckdb

    found = csv_kind(src, loose=True)
    if found != kind:
        other = {"usage": "openai-usage-csv", "costs": "openai-costs-csv"}.get(found or "")
        hint = f" (it is a {found} export: use --input-format {other})" if other else ""
        raise InputError(f"{src.path}: not an OpenAI dashboard {kind} export{hint}")
    names = header(src.head) or []
    endpoint = "costs" if kind == "costs" else usage_endpoint(names, src.name)
    try:
        if _fast(con, src, names, endpoint):
            return
    except duckdb.Error:
        pass
    _exact(con, src, names, endpoint)


def _fast(
    con: duckdb.DuckDBPyConnection, src: Source, names: list[str], endpoint: str | None
) -> bool:
    cols = [f"c{i}" for i in range(len(names))]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    newlines = " + ".join(f"coalesce(len({c}) - len(replace({c}, chr(10), '')), 0)" for c in cols)
    where = dict(reversed(list(zip(names, cols, strict=True))))  # the first of a name wins
    values = ", ".join(
        f"NULLIF(trim({where[f]}), '') AS {f}" if f in where else f"NULL::VARCHAR AS {f}"
        for f in FIELDS
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {ROWS} AS
        SELECT 1 + rn + coalesce(sum(nl) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING
                                                      AND 1 PRECEDING), 0) AS line_no,
            NULL::VARCHAR AS bad, $endpoint::VARCHAR AS endpoint, {values}, nl
        FROM (SELECT row_number() OVER () AS rn, {newlines} AS nl, *
              FROM read_csv($path, columns = {spec}, header = true, delim = ',',
                   quote = '"', escape = '"', auto_detect = false,
                   strict_mode = true, null_padding = false, max_line_size = {MAX_LINE}))""",
        {"path": str(src.data_path), "endpoint": endpoint},
    )
    records, embedded = con.execute(
        f"SELECT count(*), coalesce(sum(nl), 0) FROM {ROWS}"
    ).fetchall()[0]
    if 1 + int(records) + int(embedded) != src.line_count:
        return False
    con.execute(f"ALTER TABLE {ROWS} DROP COLUMN nl")
    return True


def _exact(
    con: duckdb.DuckDBPyConnection, src: Source, names: list[str], endpoint: str | None
) -> None:
    con.execute(ROWS_DDL)
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        index.setdefault(n, i)
    rows: list[Row] = []
    with open(src.data_path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, strict=True)
        try:
            next(reader)
        except (csv.Error, StopIteration):
            return
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                rows.append(_bad(start, f"malformed CSV row: {e}", endpoint))
                start = reader.line_num + 1
                continue
            line_no, start = start, reader.line_num + 1
            if fields:  # a blank line is not a record
                rows.append(_record(line_no, fields, index, len(names), endpoint))
            if len(rows) >= BATCH:
                insert_rows(con, rows)
    insert_rows(con, rows)


def _bad(line_no: int, reason: str, endpoint: str | None) -> Row:
    return {"line_no": line_no, "bad": reason, "endpoint": endpoint}


def _record(
    line_no: int, fields: list[str], index: dict[str, int], width: int, endpoint: str | None
) -> Row:
    if len(fields) != width:
        return _bad(line_no, f"expected {width} fields, found {len(fields)}", endpoint)
    row: Row = {"line_no": line_no, "bad": None, "endpoint": endpoint}
    for name, i in index.items():
        if name in FIELDS:
            value = fields[i].strip()
            if BAD_UTF8.search(value):
                return _bad(line_no, f"invalid UTF-8 in {name}", endpoint)
            row[name] = value or None
    return row


def insert_rows(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    """Append ``rows`` (dicts of line_no, bad, endpoint and FIELDS) to ``ROWS``; empty the list."""
    import pyarrow as pa

    if not rows:
        return
    columns = {"line_no": pa.array([r["line_no"] for r in rows], pa.int64())}
    for name in ("bad", "endpoint", *FIELDS):
        columns[name] = pa.array([r.get(name) for r in rows], pa.string())
    con.register("_openai_billing_batch", pa.table(columns))
    try:
        con.execute(f"INSERT INTO {ROWS} SELECT * FROM _openai_billing_batch")
    finally:
        con.unregister("_openai_billing_batch")
    rows.clear()


# --- the mapping (SQL), shared by the JSON and CSV readers -------------------------------------

_SECRET = SECRET_RE.pattern.replace("'", "''")
_TOKENS = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")


def _show(field: str) -> str:
    return f"left(regexp_replace({field}, '{_SECRET}', '[redacted]', 'g'), 60)"


def _ts(x: str) -> str:
    """Unix seconds or an ISO time (UTC when it has no offset) as a naive UTC timestamp."""
    secs = f"TRY_CAST({x} AS DECIMAL(20,6))"
    return f"""CASE WHEN {secs} IS NOT NULL THEN CASE WHEN {secs} BETWEEN 0 AND 253402300799
            THEN make_timestamp(CAST({secs} * 1000000 AS BIGINT)) END
        WHEN regexp_matches({x}, '([Zz]|[+-]\\d\\d(:?\\d\\d)?)$')
            THEN timezone('UTC', TRY_CAST({x} AS TIMESTAMPTZ))
        ELSE TRY_CAST({x} AS TIMESTAMP) END"""


def _period_checks() -> str:
    out = []
    for edge in ("start", "end"):
        raw, iso = f"{edge}_time", f"{edge}_time_iso"
        out.append(f"WHEN {raw} IS NULL AND {iso} IS NULL THEN 'missing {raw}'")
        out.append(
            f"WHEN period_{edge} IS NULL "
            f"THEN 'invalid {raw}: ' || {_show(f'coalesce({raw}, {iso})')}"
        )
    return "\n        ".join(out)


def _count_checks(field: str, endpoints: tuple[str, ...]) -> str:
    n, shown = f"n_{field}", _show(field)
    scope = "endpoint IN (" + ", ".join(f"'{e}'" for e in endpoints) + f") AND {field} IS NOT NULL"
    return f"""WHEN {scope} AND {n} IS NULL THEN 'invalid {field}: ' || {shown}
        WHEN {scope} AND {n} < 0 THEN 'negative {field}: ' || {shown}
        WHEN {scope} AND {n} <> trunc({n}) THEN '{field} is not a whole number: ' || {shown}
        WHEN {scope} AND {n} >= 9223372036854775808 THEN '{field} out of range: ' || {shown}"""


_REQUESTS = ("requests", "n_num_model_requests", "'model requests'")
# endpoint -> (category, quantity, description) billed per result.
_USAGE_ITEMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "completions": (
        ("input", "n_input", "'uncached input tokens'"),
        ("cache_read", "n_input_cached_tokens", "'cached input tokens'"),
        ("cache_write", "n_input_cache_write_tokens", "'cache write input tokens'"),
        ("output", "n_output_tokens", "'output tokens'"),
        _REQUESTS,
    ),
    "embeddings": (("input", "n_input_tokens", "'input tokens'"), _REQUESTS),
    "moderations": (("input", "n_input_tokens", "'input tokens'"), _REQUESTS),
    "images": (
        ("other", "n_images", "concat_ws(', ', 'images', 'size ' || size, 'source ' || source)"),
        _REQUESTS,
    ),
    "audio_speeches": (("other", "n_characters", "'characters of text to speech'"), _REQUESTS),
    "audio_transcriptions": (
        ("other", "n_seconds", "'seconds of audio transcribed'"),
        _REQUESTS,
    ),
    "vector_stores": (("other", "n_usage_bytes", "'bytes of vector store storage'"),),
    "code_interpreter_sessions": (("other", "n_num_sessions", "'code interpreter sessions'"),),
    "file_searches": (
        (
            "other",
            "n_num_requests",
            "concat_ws(', ', 'file search calls', 'vector store ' || vector_store_id)",
        ),
    ),
    # num_model_requests here are completions requests that searched: counted there.
    "web_searches": (
        (
            "web_search",
            "n_num_requests",
            "concat_ws(', ', 'web search calls', 'context ' || context_level)",
        ),
    ),
}
# count field -> the endpoints that read it (checked there only).
_COUNTS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("completions", "embeddings", "moderations"),
    "input_cached_tokens": ("completions",),
    "input_cache_write_tokens": ("completions",),
    "input_uncached_tokens": ("completions",),
    "output_tokens": ("completions",),
    "num_model_requests": (
        "completions", "embeddings", "moderations", "images", "audio_speeches",
        "audio_transcriptions",
    ),
    "images": ("images",),
    "characters": ("audio_speeches",),
    "seconds": ("audio_transcriptions",),
    "usage_bytes": ("vector_stores",),
    "num_sessions": ("code_interpreter_sessions",),
    "num_requests": ("file_searches", "web_searches"),
}  # fmt: skip

_CACHED = "(coalesce(n_input_cached_tokens, 0) + coalesce(n_input_cache_write_tokens, 0))"
_TIER_CASES = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in TIERS.items())
_USAGE_VALUES = f"""CREATE OR REPLACE TEMP TABLE {VALUES} AS
WITH t AS (
    SELECT *, {", ".join(f"TRY_CAST({f} AS DECIMAL(38,9)) AS n_{f}" for f in _COUNTS)},
        coalesce({_ts("start_time")}, {_ts("start_time_iso")}) AS period_start,
        coalesce({_ts("end_time")}, {_ts("end_time_iso")}) AS period_end,
        lower(batch) AS batch_flag
    FROM {ROWS}
), u AS (
    SELECT *, coalesce(n_input_uncached_tokens,
        n_input_tokens - {_CACHED}) AS n_input FROM t
)
SELECT *, CASE WHEN bad IS NOT NULL THEN bad
        {_period_checks()}
        {chr(10).join(_count_checks(f, e) for f, e in _COUNTS.items())}
        WHEN batch_flag NOT IN ('true', 'false', '1', '0')
            THEN 'invalid batch: ' || {_show("batch")}
        WHEN n_input < 0 THEN 'input_tokens ' || n_input_tokens::BIGINT
            || ' is less than input_cached_tokens + input_cache_write_tokens ('
            || ({_CACHED})::BIGINT
            || ')'
    END AS why,
    'openai.usage' || coalesce('.' || endpoint, '') AS dataset,
    CASE WHEN batch_flag IN ('true', '1') THEN 'batch'
        ELSE CASE lower(service_tier) {_TIER_CASES} ELSE lower(service_tier) END END AS tier
FROM u"""

_USAGE_ITEMS_SQL = "\nUNION ALL ".join(
    f"SELECT line_no, '{cat}' AS category, {qty} AS qty, {desc} AS descr "
    f"FROM {VALUES} WHERE why IS NULL AND endpoint = '{ep}' AND {qty} > 0"
    for ep, items in _USAGE_ITEMS.items()
    for cat, qty, desc in items
)

_COST_VALUES = f"""CREATE OR REPLACE TEMP TABLE {VALUES} AS
WITH t AS (
    SELECT r.*, i.model AS item_model, coalesce(i.category, 'other') AS category, i.tier,
        TRY_CAST(amount_value AS DECIMAL(38,12)) AS n_amount,
        TRY_CAST(amount_value AS DECIMAL(38,18)) AS n_amount_18,
        TRY_CAST(quantity AS DECIMAL(38,9)) AS n_quantity,
        lower(quantity_unit) AS unit,
        CASE coalesce(lower(quantity_unit), 'tokens') WHEN 'tokens' THEN 1
            WHEN '1000_tokens' THEN 1000 WHEN '1k_tokens' THEN 1000 WHEN '1m_tokens' THEN 1000000
            WHEN '1000000_tokens' THEN 1000000 END AS per_token,
        coalesce({_ts("start_time")}, {_ts("start_time_iso")}) AS period_start,
        coalesce({_ts("end_time")}, {_ts("end_time_iso")}) AS period_end,
        amount_value IS NULL AND amount_currency IS NULL AND line_item IS NULL
            AND quantity IS NULL AS idle
    FROM {ROWS} r LEFT JOIN {ITEMS} i USING (line_item)
)
SELECT *, CASE WHEN bad IS NOT NULL THEN bad
        {_period_checks()}
        WHEN idle THEN NULL
        WHEN amount_value IS NULL THEN 'missing @value@'
        WHEN n_amount IS NULL THEN 'invalid @value@: ' || {_show("amount_value")}
        WHEN coalesce(n_amount_18 <> n_amount, false)
            THEN '@value@ has more than 12 decimal places: ' || {_show("amount_value")}
        WHEN amount_currency IS NULL THEN 'missing @currency@'
        WHEN NOT regexp_full_match(amount_currency, '[A-Za-z]{{3}}')
            THEN 'invalid @currency@: ' || {_show("amount_currency")}
        WHEN quantity IS NOT NULL AND n_quantity IS NULL
            THEN 'invalid quantity: ' || {_show("quantity")}
        WHEN n_quantity < 0 THEN 'negative quantity: ' || {_show("quantity")}
    END AS why,
    'openai.costs' AS dataset, tier
FROM t"""

_COST_ITEMS_SQL = f"""SELECT line_no, category,
    CASE WHEN per_token IS NOT NULL THEN n_quantity * per_token
        WHEN category NOT IN ({", ".join(f"'{c}'" for c in _TOKENS)}) THEN n_quantity END AS qty,
    CASE WHEN category IN ('other', 'web_search') AND n_quantity IS NOT NULL AND unit IS NOT NULL
        THEN concat_ws(' ', line_item,
            '[' || CASE WHEN per_token IS NULL THEN unit ELSE 'tokens' END || ']')
        ELSE line_item END AS descr,
    n_amount AS cost, upper(amount_currency) AS currency, item_model
FROM {VALUES} WHERE why IS NULL AND NOT idle"""

_STAGE = f"""INSERT INTO billing_stage BY NAME
SELECT v.line_no, v.why AS reason, v.dataset, v.period_start, v.period_end,
    'openai' AS provider, coalesce(v.organization_id, v.organization_name) AS account,
    coalesce(v.project_id, v.project_name) AS project, NULL AS workspace,
    {{key_hash}} AS api_key_hash, right(v.api_key_id, 4) AS api_key_last4,
    {{model}} AS model, v.tier AS service_tier, i.category AS token_category,
    i.qty::DECIMAL(38,6) AS quantity, {{cost}} AS cost, NULL AS list_cost, {{currency}} AS currency,
    i.descr AS description
FROM {VALUES} v LEFT JOIN ({{items}}) i USING (line_no)
ORDER BY v.line_no, i.category"""


def stage_sql(kind: str, json_names: bool) -> list[str]:
    """The statements that fill ``VALUES`` from ``ROWS`` then ``billing_stage`` from it.

    ``$secret`` keys the API key hash; costs need ``ITEMS`` (the parsed line items).
    """
    key_hash = KEY_HASH_SQL.format("v.api_key_id")
    if kind == "usage":
        common = {"model": "v.model", "cost": "NULL", "currency": "NULL"}
        return [
            _USAGE_VALUES,
            _STAGE.format(key_hash=key_hash, items=_USAGE_ITEMS_SQL, **common),
        ]
    names = (
        ("amount.value", "amount.currency") if json_names else ("amount_value", "amount_currency")
    )
    costs = {"model": "i.item_model", "cost": "i.cost", "currency": "i.currency"}
    return [
        _COST_VALUES.replace("@value@", names[0]).replace("@currency@", names[1]),
        _STAGE.format(key_hash=key_hash, items=_COST_ITEMS_SQL, **costs),
    ]
