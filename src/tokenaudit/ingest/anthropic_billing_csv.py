"""Anthropic Console CSV exports (Usage and Cost pages, Export button); see ``anthropic_billing``.

Usage export ``claude_api_tokens_<YYYY>_<MM>.csv``, one row per day x model x API key x
workspace x tier (x context window, inference geo, speed in newer versions)::

    usage_date_utc,model_version,api_key,workspace,usage_type,context_window,
    usage_input_tokens_no_cache,usage_input_tokens_cache_write_5m,usage_input_tokens_cache_write_1h,
    usage_input_tokens_cache_read,usage_output_tokens,web_search_count,inference_geo,speed
    2026-04-08,claude-sonnet-4-6,Kai2,Default,standard,≤ 200k,113115,0,0,0,42762,0,global,

Cost export ``claude_api_cost_<from>_to_<to>.csv``, one row per day x model x key x token type::

    usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,
    list_price_usd,cost_type,inference_geo,speed
    2026-02-01,Claude Opus 4.5,Default,claude-sdk,message,≤ 200k,output,0.82,0.82,token,,

Older versions lack ``context_window`` (mid-2025), ``inference_geo,speed`` (Feb 2026) and
``list_price_usd``; newer ones add columns (``api_key_id``...), which are ignored. Header names
match without regard to case or surrounding spaces; a UTF-8 BOM is tolerated.

Reading: DuckDB's ``read_csv`` (all VARCHAR, explicit options, strict) into a raw table, one row
per record with its physical start line; kept only when header + records + newlines inside
quoted fields account for every line of the file. Otherwise (a malformed row, invalid UTF-8,
blank lines) Python's ``csv`` module reads it and every record, broken or not, gets a row.
One SQL statement per export kind then maps the raw rows into ``billing_stage``.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
from tokenaudit.ingest.base import KEY_HASH_SQL, SECRET_RE
from tokenaudit.ingest.tabular import stage_csv

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import StageContext
    from tokenaudit.ingest.source import Source

PROVIDER = "anthropic"

# Service tiers as the sources spell them -> the normalized tier.
SERVICE_TIERS = {
    "standard": "standard",
    "default": "standard",
    "batch": "batch",
    "priority": "priority",
    "priority_on_demand": "priority",
    "flex": "flex",
    "flex_discount": "flex",
}

USAGE_TOKEN_COLUMNS = (  # (column, category), in the order the rows are written
    ("usage_input_tokens_no_cache", "input"),
    ("usage_input_tokens_cache_read", "cache_read"),
    ("usage_input_tokens_cache_write_5m", "cache_write"),
    ("usage_input_tokens_cache_write_1h", "cache_write_1h"),
    ("usage_output_tokens", "output"),
    ("web_search_count", "web_search"),
)
USAGE_COLUMNS = (
    "usage_date_utc", "model_version", "api_key", "workspace", "usage_type", "context_window",
    *(c for c, _ in USAGE_TOKEN_COLUMNS), "inference_geo", "speed",
)  # fmt: skip
COST_COLUMNS = (
    "usage_date_utc", "model", "workspace", "api_key", "usage_type", "context_window",
    "token_type", "cost_usd", "list_price_usd", "cost_type", "inference_geo", "speed",
)  # fmt: skip
ALIASES = {"model": "model_version"}  # a usage export that says model, not model_version

COST_TOKEN_TYPES = {
    "input_no_cache": "input",
    "input_cache_read": "cache_read",
    "input_cache_write_5m": "cache_write",
    "input_cache_write": "cache_write",
    "input_cache_write_1h": "cache_write_1h",
    "output": "output",
}
COST_TYPES = {"web_search": "web_search"}  # anything else that is not a token type: other

RAW = "_anthropic_csv_rows"
_SECRET = SECRET_RE.pattern.replace("'", "''")


def header(head: bytes) -> list[str] | None:
    """The lower-cased names in the first line of ``head``, or None when it is no CSV header."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first or first.lstrip().startswith(("{", "[")):
        return None
    try:
        names = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    return [n.strip().lower() for n in names]


def is_usage_export(head: bytes) -> bool:
    names = set(header(head) or ())
    tokens = {c for c, _ in USAGE_TOKEN_COLUMNS if c.startswith("usage_")}
    return {"usage_date_utc", "model_version"} <= names and bool(names & tokens)


def is_cost_export(head: bytes) -> bool:
    names = set(header(head) or ())
    return {"usage_date_utc", "cost_usd"} <= names and bool(names & {"token_type", "cost_type"})


# --- reading the rows ----------------------------------------------------------------------


def read_rows(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    columns: tuple[str, ...],
    required: list[str],
    one_of: tuple[str, ...] = (),
) -> None:
    """Fill the TEMP table ``RAW`` (line_no, bad, one VARCHAR per name in ``columns``)."""
    names = header(src.head)
    if names is None:
        raise InputError(f"{src.path}: no CSV header in the first line")
    canon = [ALIASES.get(n, n) if ALIASES.get(n) in columns else n for n in names]
    missing = [c for c in required if c not in canon]
    if one_of and not set(one_of) & set(canon):
        missing.append(" or ".join(one_of))
    if missing:
        raise InputError(f"{src.path}: missing column(s) {', '.join(missing)} in the CSV header")
    # Each wanted column -> the header cell naming it (the first of repeated names); a column
    # the file lacks reads as NULL.
    wanted = {c: names[canon.index(c)] if c in canon else f"\x00absent {c}" for c in columns}
    stage_csv(con, src, RAW, names, wanted)


# --- mapping the rows ------------------------------------------------------------------------


def _v(col: str) -> str:
    return f"NULLIF(trim({col}), '')"


def _shown(col: str) -> str:
    """A value fit for a quarantine reason: no control characters or secrets, 40 characters."""
    plain = f"regexp_replace({col}, '[\\x00-\\x1f\\x7f]', '', 'g')"
    return f"left(regexp_replace({plain}, '{_SECRET}', '[redacted]', 'g'), 40)"


def _tier(col: str) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SERVICE_TIERS.items())
    return f"CASE lower({col}) {whens} END"


def _map(col: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE lower({col}) {whens} END"


_COUNT = "'[0-9]{1,18}(\\.0*)?'"
_MONEY = "'-?([0-9]{1,26}(\\.[0-9]{0,12})?|\\.[0-9]{1,12})'"
_DATE = "'[0-9]{4}-[0-9]{2}-[0-9]{2}'"

# The columns every record starts from (trimmed; empty = NULL) and the checks both kinds share.
_COMMON = """line_no, bad, {date} AS d_raw, {workspace} AS workspace, {key} AS api_key,
    {usage_type} AS usage_type, {cw} AS context_window, {geo} AS inference_geo,
    {speed} AS speed"""
_DATE_REASON = f"""WHEN bad IS NOT NULL THEN bad
    WHEN d_raw IS NULL THEN 'missing usage_date_utc'
    WHEN d IS NULL THEN 'invalid usage_date_utc: ' || {_shown("d_raw")}
    WHEN contains(all_text, chr(0)) THEN 'NUL byte in a field'"""


def _common(columns: tuple[str, ...]) -> str:
    return (
        _COMMON.format(
            date=_v("usage_date_utc"),
            workspace=_v("workspace"),
            key=_v("api_key"),
            usage_type=_v("usage_type"),
            cw=_v("context_window"),
            geo=_v("inference_geo"),
            speed=_v("speed"),
        )
        + ", concat("
        + ", ".join(f"coalesce({c}, '')" for c in columns)
        + ") AS all_text"
    )


def _qualifiers() -> str:
    """The dimensions the billing line has no column for, as ``key=value`` parts."""
    return (
        "'context_window=' || context_window, 'inference_geo=' || inference_geo, "
        "'speed=' || speed, CASE WHEN service_tier IS NULL THEN 'usage_type=' || usage_type END"
    )


_OUT = """line_no, reason, '{dataset}' AS dataset, d::TIMESTAMP AS period_start,
    (d + INTERVAL 1 DAY)::TIMESTAMP AS period_end, '{provider}' AS provider,
    NULL AS account, NULL AS project, workspace,
    CASE WHEN api_key IS NOT NULL THEN {key_hash} END AS api_key_hash,
    right(api_key, 4) AS api_key_last4, model, service_tier"""
_NAMES = """line_no, reason, dataset, period_start, period_end, provider, account, project,
    workspace, api_key_hash, api_key_last4, model, service_tier, token_category, quantity, cost,
    list_cost, currency, description"""


def _out(dataset: str) -> str:
    return _OUT.format(dataset=dataset, provider=PROVIDER, key_hash=KEY_HASH_SQL.format("api_key"))


def usage_sql() -> str:
    """INSERT the usage export's raw rows into billing_stage (binds $secret)."""
    counts = ", ".join(f"{_v(c)} AS {c}" for c, _ in USAGE_TOKEN_COLUMNS)
    parsed = ", ".join(
        f"CASE WHEN {c} IS NULL THEN 0 WHEN regexp_full_match({c}, {_COUNT}) "
        f"THEN CAST({c} AS DECIMAL(38,6)) END AS n_{c}"
        for c, _ in USAGE_TOKEN_COLUMNS
    )
    count_reasons = "\n    ".join(
        f"WHEN n_{c} IS NULL THEN CASE WHEN starts_with({c}, '-') THEN 'negative {c}: ' "
        f"ELSE 'invalid {c}: ' END || {_shown(c)}"
        for c, _ in USAGE_TOKEN_COLUMNS
    )
    cats = ", ".join(f"({i}, '{cat}', '{c}')" for i, (c, cat) in enumerate(USAGE_TOKEN_COLUMNS))
    pick = " ".join(f"WHEN '{c}' THEN n_{c}" for c, _ in USAGE_TOKEN_COLUMNS)
    nothing = " AND ".join(f"n_{c} = 0" for c, _ in USAGE_TOKEN_COLUMNS)
    return f"""INSERT INTO billing_stage ({_NAMES})
WITH r AS (
    SELECT {_common(USAGE_COLUMNS)}, {_v("model_version")} AS model, {counts} FROM {RAW}
), t AS (
    SELECT *, CASE WHEN regexp_full_match(d_raw, {_DATE}) THEN TRY_CAST(d_raw AS DATE) END AS d,
        {_tier("usage_type")} AS service_tier, {parsed}
    FROM r
), v AS (
    SELECT *, CASE {_DATE_REASON}
        {count_reasons}
    END AS reason FROM t
)
SELECT {_out("anthropic.console.usage")}, c.category, CASE c.field {pick} END,
    NULL, NULL, NULL, concat_ws('; ', c.field, {_qualifiers()})
FROM v CROSS JOIN (VALUES {cats}) AS c(ord, category, field)
WHERE reason IS NULL AND CASE c.field {pick} END > 0
UNION ALL
SELECT {_out("anthropic.console.usage")}, NULL, NULL, NULL, NULL, NULL,
    CASE WHEN reason IS NULL THEN concat_ws('; ', 'no usage', {_qualifiers()}) END
FROM v WHERE reason IS NOT NULL OR ({nothing})"""


def cost_sql() -> str:
    """INSERT the cost export's raw rows into billing_stage (binds $secret)."""
    cat = (
        f"coalesce({_map('token_type', COST_TOKEN_TYPES)}, "
        f"{_map('cost_type', COST_TYPES)}, 'other')"
    )
    return f"""INSERT INTO billing_stage ({_NAMES})
WITH r AS (
    SELECT {_common(COST_COLUMNS)}, {_v("model")} AS model, {_v("token_type")} AS token_type,
        {_v("cost_type")} AS cost_type, {_v("cost_usd")} AS cost_raw,
        {_v("list_price_usd")} AS list_raw
    FROM {RAW}
), t AS (
    SELECT *, CASE WHEN regexp_full_match(d_raw, {_DATE}) THEN TRY_CAST(d_raw AS DATE) END AS d,
        {_tier("usage_type")} AS service_tier,
        CASE WHEN regexp_full_match(cost_raw, {_MONEY}) THEN cost_raw::DECIMAL(38,12) END AS cost,
        CASE WHEN regexp_full_match(list_raw, {_MONEY}) THEN list_raw::DECIMAL(38,12) END
            AS list_cost
    FROM r
), v AS (
    SELECT *, CASE {_DATE_REASON}
        WHEN cost_raw IS NULL THEN 'missing cost_usd'
        WHEN cost IS NULL THEN 'invalid cost_usd: ' || {_shown("cost_raw")}
        WHEN list_raw IS NOT NULL AND list_cost IS NULL
            THEN 'invalid list_price_usd: ' || {_shown("list_raw")}
    END AS reason FROM t
)
SELECT {_out("anthropic.console.cost")},
    CASE WHEN reason IS NULL THEN {cat} END, NULL,
    CASE WHEN reason IS NULL THEN cost END, CASE WHEN reason IS NULL THEN list_cost END,
    CASE WHEN reason IS NULL THEN 'USD' END,
    CASE WHEN reason IS NULL
        THEN concat_ws('; ', coalesce(token_type, cost_type, 'cost'), {_qualifiers()}) END
FROM v"""


# --- the ingesters ---------------------------------------------------------------------------


def _stage(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    secret: str,
    columns: tuple[str, ...],
    required: list[str],
    sql: str,
    one_of: tuple[str, ...] = (),
) -> int:
    from tokenaudit.model import billing_stage_ddl

    con.execute(billing_stage_ddl())
    try:
        read_rows(con, src, columns, required, one_of)
        con.execute(sql, {"secret": secret})
    finally:
        con.execute(f"DROP TABLE IF EXISTS {RAW}")
    return int(con.execute("SELECT count(*) FROM billing_stage").fetchall()[0][0])


class ConsoleUsage:
    name = "anthropic-console-usage"
    kind = "billing"
    detects = (
        "Anthropic Console usage CSV (claude_api_tokens_*.csv): usage_date_utc, model_version "
        "and usage_input_tokens_* columns"
    )

    def sniff(self, src: Source) -> bool:
        return is_usage_export(src.head)

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        tokens = tuple(c for c, _ in USAGE_TOKEN_COLUMNS)
        return _stage(con, src, ctx.secret, USAGE_COLUMNS, ["usage_date_utc"], usage_sql(), tokens)


class ConsoleCost:
    name = "anthropic-console-cost"
    kind = "billing"
    detects = (
        "Anthropic Console cost CSV (claude_api_cost_*.csv): usage_date_utc, token_type or "
        "cost_type, and cost_usd columns"
    )

    def sniff(self, src: Source) -> bool:
        return is_cost_export(src.head)

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        return _stage(
            con, src, ctx.secret, COST_COLUMNS, ["usage_date_utc", "cost_usd"], cost_sql()
        )
