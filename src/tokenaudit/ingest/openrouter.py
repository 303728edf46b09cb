"""OpenRouter activity: the per-generation CSV export and the daily activity API JSON.

CSV (openrouter.ai/activity -> Export): one row per generation, columns matched by header
name (the column set changed over time; the 2026 header has 24 columns)::

    generation_id,created_at,cost_total,cost_web_search,cost_cache,cost_file_processing,
    byok_usage_inference,tokens_prompt,tokens_completion,tokens_reasoning,tokens_cached,
    model_permaslug,provider_name,variant,cancelled,streamed,user,finish_reason_raw,
    finish_reason_normalized,generation_time_ms,time_to_first_token_ms,app_name,
    api_key_name,api_key_disabled

Each generation gives up to five billing lines, categories never overlapping:
``input`` = tokens_prompt - tokens_cached (the prompt count includes cached reads),
``cache_read`` = tokens_cached, ``output`` = tokens_completion (reasoning included:
tokens_reasoning is a subset and is not billed again), ``web_search`` = cost_web_search
(money only), and ``requests`` = 1 generation carrying the rest of cost_total, so that the
lines of a generation add up to cost_total exactly (USD). cost_cache (negative for a
cache-read discount, positive for a cache write), cost_file_processing and
byok_usage_inference are parts of, or beside, that total: they are kept in the
description, never added again. The period is the instant ``created_at`` (naive UTC,
``YYYY-MM-DD HH:MM:SS.mmm``) to 1 ms later, so that a later export replaces exactly the
generations it repeats. Model = model_permaslug, provider = openrouter (the upstream
provider_name goes into the description), project = app_name, the API key is kept as the
keyed hash of api_key_name and its last 4 characters. A generation_id seen twice in one
file is quarantined the second time.

API JSON (``GET /api/v1/activity`` -> ``{"data": [ActivityItem, ...]}``): one record per
item (day x model x endpoint), numbered by the line its object starts on: ``input`` =
prompt_tokens (the API does not split out cached tokens), ``output`` = completion_tokens,
``requests`` = requests with cost ``usage`` (USD); the period is the UTC day of ``date``.
Both forms share the dataset ``openrouter.activity``: they describe the same spend, so a
later file replaces what an earlier one said about the same time range.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import InputError
from tokenaudit.ingest.base import KEY_HASH_SQL, RecordError
from tokenaudit.ingest.tabular import (
    NUM_RE,
    csv_header,
    money,
    money_reason,
    nz,
    shown,
    stage_csv,
)
from tokenaudit.model import BILLING_STAGE_COLUMNS, BILLING_STAGE_NAMES, billing_stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

NAME = "openrouter"
DATASET = "openrouter.activity"
PROVIDER = "openrouter"
ROWS = "_openrouter_rows"

# Canonical name -> CSV header (matched without regard to case). Absent columns are NULL.
COLUMNS: dict[str, str] = {
    "generation_id": "generation_id",
    "created_at": "created_at",
    "cost_total": "cost_total",
    "cost_web_search": "cost_web_search",
    "cost_cache": "cost_cache",
    "cost_file_processing": "cost_file_processing",
    "byok_usage_inference": "byok_usage_inference",
    "tokens_prompt": "tokens_prompt",
    "tokens_completion": "tokens_completion",
    "tokens_reasoning": "tokens_reasoning",
    "tokens_cached": "tokens_cached",
    "model_permaslug": "model_permaslug",
    "model_name": "model",
    "provider_name": "provider_name",
    "variant": "variant",
    "cancelled": "cancelled",
    "app_name": "app_name",
    "api_key_name": "api_key_name",
}
REQUIRED = ("generation_id", "created_at", "cost_total", "tokens_prompt", "tokens_completion")
_TOKENS = ("tokens_prompt", "tokens_completion", "tokens_cached", "tokens_reasoning")
_MONEY = ("cost_total", "cost_web_search", "cost_cache", "cost_file_processing",
          "byok_usage_inference")  # fmt: skip

_TS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
_ZONE = r"([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)"


def _created(expr: str) -> str:
    """created_at as naive UTC: no zone means UTC; a zone is converted."""
    return f"""CASE
        WHEN regexp_full_match({expr}, '{_TS}') THEN TRY_CAST({expr} AS TIMESTAMP)
        WHEN regexp_full_match({expr}, '{_TS} ?{_ZONE}')
            THEN timezone('UTC', TRY_CAST({expr} AS TIMESTAMPTZ))
    END"""


def _count(col: str) -> str:
    return (
        f"CASE WHEN regexp_full_match({col}, '[0-9]{{1,18}}(\\.0+)?') "
        f"THEN TRY_CAST({col} AS DECIMAL(38,6)) END"
    )


def _count_reason(col: str) -> str:
    return (
        f"WHEN {col} IS NOT NULL AND regexp_full_match({col}, '-[0-9]+(\\.[0-9]+)?') "
        f"THEN 'negative {col}: ' || {shown(col)} "
        f"WHEN {col} IS NOT NULL AND NOT regexp_full_match({col}, '[0-9]{{1,18}}(\\.0+)?') "
        f"THEN '{col} is not a whole number: ' || {shown(col)} "
    )


def _part(label: str, col: str) -> str:
    """'; label value' when the cell holds a non-zero amount, else ''."""
    return f"CASE WHEN {money(col)} <> 0 THEN '; {label} ' || {col} ELSE '' END"


def _csv_sql() -> str:
    norm = ",\n        ".join(f"{nz(c)} AS {c}" for c in COLUMNS)
    counts = ", ".join(f"{_count(c)} AS {c.removeprefix('tokens_')}_n" for c in _TOKENS)
    via = "CASE WHEN provider_name IS NOT NULL THEN ' via ' || provider_name ELSE '' END"
    variant = "CASE WHEN variant IS NOT NULL THEN ' (' || variant || ')' ELSE '' END"
    notes = " || ".join(
        (
            _part("cost_cache", "cost_cache"),
            _part("cost_file_processing", "cost_file_processing"),
            _part("byok_usage_inference", "byok_usage_inference"),
            "CASE WHEN lower(cancelled) = 'true' THEN '; cancelled' ELSE '' END",
        )
    )
    return f"""
WITH r AS (
    SELECT line_no, bad,
        {norm}
    FROM {ROWS}
), typed AS (
    SELECT *,
        {_created("created_at")} AS ts,
        {counts},
        {money("cost_total")} AS total,
        coalesce({money("cost_web_search")}, 0) AS web,
        min(line_no) OVER (PARTITION BY generation_id) AS first_line,
        coalesce(model_permaslug, model_name) AS model,
        {via} || {variant} AS upstream
    FROM r
), checked AS (
    SELECT *, CASE
        WHEN bad IS NOT NULL THEN bad
        WHEN generation_id IS NOT NULL AND first_line < line_no
            THEN 'duplicate generation_id (first at line ' || first_line || ')'
        WHEN created_at IS NULL THEN 'missing created_at'
        WHEN ts IS NULL THEN 'invalid created_at: ' || {shown("created_at")}
        {money_reason("cost_total", "cost_total", required=True)}
        {" ".join(money_reason(c, c, required=False) for c in _MONEY[1:])}
        {" ".join(_count_reason(c) for c in _TOKENS)}
        WHEN prompt_n IS NULL THEN 'missing tokens_prompt'
        WHEN completion_n IS NULL THEN 'missing tokens_completion'
        WHEN cached_n > prompt_n THEN 'tokens_cached (' || cached_n::BIGINT
            || ') exceeds tokens_prompt (' || prompt_n::BIGINT || ')'
    END AS reason
    FROM typed
), items AS (
    SELECT c.*, i.*
    FROM checked c CROSS JOIN (VALUES
        (1, 'input', 'tokens_prompt - tokens_cached'),
        (2, 'cache_read', 'tokens_cached'),
        (3, 'output', 'tokens_completion'),
        (4, 'web_search', 'cost_web_search'),
        (5, 'requests', 'cost_total')
    ) AS i(ord, category, what)
)
SELECT line_no, reason, '{DATASET}' AS dataset,
    ts AS period_start, ts + INTERVAL 1 MILLISECOND AS period_end,
    '{PROVIDER}' AS provider, NULL AS account, app_name AS project, NULL AS workspace,
    CASE WHEN api_key_name IS NOT NULL THEN {KEY_HASH_SQL.format("api_key_name")} END
        AS api_key_hash,
    right(api_key_name, 4) AS api_key_last4,
    model, NULL AS service_tier, category AS token_category,
    CASE category
        WHEN 'input' THEN prompt_n - coalesce(cached_n, 0)
        WHEN 'cache_read' THEN cached_n
        WHEN 'output' THEN completion_n
        WHEN 'requests' THEN 1
    END AS quantity,
    CASE category WHEN 'web_search' THEN web WHEN 'requests' THEN total - web END AS cost,
    NULL AS list_cost,
    CASE WHEN category IN ('web_search', 'requests') THEN 'USD' END AS currency,
    what || upstream || CASE category
        WHEN 'output' THEN CASE WHEN reasoning_n > 0
            THEN ' (' || reasoning_n::BIGINT || ' reasoning tokens included)' ELSE '' END
        WHEN 'requests' THEN {notes}
        ELSE '' END AS description
FROM items
WHERE category = 'requests' OR (reason IS NULL AND CASE category
    WHEN 'input' THEN prompt_n - coalesce(cached_n, 0) > 0
    WHEN 'cache_read' THEN cached_n > 0
    WHEN 'output' THEN completion_n > 0
    WHEN 'web_search' THEN web <> 0 END)
"""


# --- the activity API (JSON) ------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T]00:00:00(?:\.0+)?(?:Z|[+-]00:?00)?)?")


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def activity_items(text: str) -> list[tuple[int, Any]]:
    """(line where the item starts, item) for every element of the top-level ``data`` array.

    Raises ValueError when the text is not one JSON object with a ``data`` array.
    """
    json.loads(text)  # the whole document must be valid JSON first
    decoder = json.JSONDecoder(parse_float=Decimal)
    pos = _skip(text, 0)
    if not text.startswith("{", pos):
        raise ValueError("not a JSON object")
    pos = _skip(text, pos + 1)
    found: list[tuple[int, Any]] | None = None
    while not text.startswith("}", pos):
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # the colon
        if key == "data" and text.startswith("[", pos):
            found = []
            pos = _skip(text, pos + 1)
            while not text.startswith("]", pos):
                line = text.count("\n", 0, pos) + 1
                item, pos = decoder.raw_decode(text, pos)
                found.append((line, item))
                pos = _skip(text, pos)
                if text.startswith(",", pos):
                    pos = _skip(text, pos + 1)
            pos += 1
        else:
            _, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
    if found is None:
        raise ValueError('no "data" array')
    return found


def _whole(item: dict[str, Any], field: str) -> Decimal:
    value = item.get(field)
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise RecordError(f"{field} is not a whole number: {str(value)[:40]!r}")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(f"{field} is not a whole number: {str(value)[:40]!r}") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise RecordError(f"{field} is not a whole number: {str(value)[:40]!r}")
    if d < 0:
        raise RecordError(f"negative {field}: {d}")
    if d >= 2**63:
        raise RecordError(f"{field} out of range: {d}")
    return d


def _usd(item: dict[str, Any], field: str) -> Decimal | None:
    value = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise RecordError(f"invalid {field}: {str(value)[:40]!r}")
    text = str(value).strip()
    if not re.fullmatch(NUM_RE, text):
        raise RecordError(f"invalid {field}: {text[:40]}")
    d = Decimal(text)
    if abs(d) >= Decimal(10) ** 26:
        raise RecordError(f"{field} out of range: {text[:40]}")
    if d != d.quantize(Decimal("1e-12")):
        raise RecordError(f"{field} has more than 12 decimal places: {text[:40]}")
    return d


def _activity_rows(line: int, item: Any) -> list[dict[str, Any]]:
    import datetime as dt

    base: dict[str, Any] = {"line_no": line, "dataset": DATASET, "provider": PROVIDER}
    try:
        if not isinstance(item, dict):
            raise RecordError("activity item is not a JSON object")
        raw_date = item.get("date")
        m = _DATE.fullmatch(raw_date.strip()) if isinstance(raw_date, str) else None
        if raw_date is None:
            raise RecordError("missing date")
        try:
            day = dt.datetime.strptime(m.group(1), "%Y-%m-%d") if m else None
        except ValueError:
            day = None
        if day is None:
            raise RecordError(f"invalid date: {str(raw_date)[:40]}")
        prompt = _whole(item, "prompt_tokens")
        completion = _whole(item, "completion_tokens")
        requests = _whole(item, "requests")
        usage = _usd(item, "usage")
        byok = _usd(item, "byok_usage_inference")
        _whole(item, "reasoning_tokens")
    except RecordError as e:
        return [{**base, "reason": str(e)}]
    model = item.get("model_permaslug") or item.get("model")
    workspace = item.get("workspace_id")
    upstream = item.get("provider_name")
    via = f" via {upstream}" if isinstance(upstream, str) and upstream else ""
    byok_note = f"; byok_usage_inference {byok}" if byok else ""
    common = {
        **base,
        "period_start": day,
        "period_end": day + dt.timedelta(days=1),
        "model": str(model) if model is not None else None,
        "workspace": workspace if isinstance(workspace, str) else None,
    }
    rows = []
    if prompt:
        rows.append({**common, "token_category": "input", "quantity": prompt,
                     "description": f"prompt_tokens{via}"})  # fmt: skip
    if completion:
        rows.append({**common, "token_category": "output", "quantity": completion,
                     "description": f"completion_tokens{via}"})  # fmt: skip
    rows.append(
        {
            **common,
            "token_category": "requests",
            "quantity": requests,
            "cost": usage,
            "currency": "USD" if usage is not None else None,
            "description": f"usage{via}{byok_note}",
        }
    )
    return rows


def _stage_activity(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    import pyarrow as pa

    try:
        text = src.data_path.read_bytes().decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        raise InputError(f"{src.path}: invalid UTF-8 at byte {e.start}") from None
    try:
        items = activity_items(text)
    except (ValueError, RecursionError) as e:
        where = f" at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        raise InputError(f"{src.path}: not an OpenRouter activity response{where}") from None
    rows = [row for line, item in items for row in _activity_rows(line, item)]
    if not rows:
        return
    types = {
        "TIMESTAMP": pa.timestamp("us"),
        "VARCHAR": pa.string(),
        "DECIMAL(38,6)": pa.decimal128(38, 6),
        "DECIMAL(38,12)": pa.decimal128(38, 12),
    }
    fields = [("line_no", pa.int64()), ("reason", pa.string())]
    fields += [(n, types[t]) for n, t in BILLING_STAGE_COLUMNS]
    table = pa.table({n: pa.array([r.get(n) for r in rows], t) for n, t in fields})
    con.register("_openrouter_items", table)
    try:
        names = ", ".join(f'"{n}"' for n, _ in fields)
        con.execute(f"INSERT INTO billing_stage ({names}) SELECT {names} FROM _openrouter_items")
    finally:
        con.unregister("_openrouter_items")


# --- detection and the ingester ---------------------------------------------------------------


def _is_activity_csv(names: list[str] | None) -> bool:
    lower = {n.strip().lower() for n in names or ()}
    return set(REQUIRED) <= lower and bool(lower & {"model_permaslug", "model"})


def _is_activity_json(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return (
        text.startswith("{")
        and '"data"' in text
        and '"model_permaslug"' in text
        and ('"byok_usage_inference"' in text or '"endpoint_id"' in text)
        and '"prompt_tokens"' in text
    )


class OpenRouterIngester:
    name = NAME
    kind = "billing"
    detects = (
        "OpenRouter activity: the per-generation CSV export (generation_id, created_at, "
        "cost_total, tokens_prompt, ...) and the /api/v1/activity JSON"
    )

    def sniff(self, src: Source) -> bool:
        return _is_activity_csv(csv_header(src.head)) or _is_activity_json(src.head)

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(billing_stage_ddl())
        if src.head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            _stage_activity(con, src)
        else:
            self._stage_csv(con, src, ctx)
        return int(con.execute("SELECT count(*) FROM billing_stage").fetchall()[0][0])

    @staticmethod
    def _stage_csv(con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> None:
        header = csv_header(src.head)
        if not header:
            raise InputError(f"{src.path}: not an OpenRouter activity export: no header line")
        lower = {h.strip().lower() for h in header}
        missing = [c for c in REQUIRED if c not in lower]
        if missing:
            raise InputError(
                f"{src.path}: not an OpenRouter activity export: missing column(s) "
                + ", ".join(missing)
            )
        try:
            stage_csv(con, src, ROWS, header, COLUMNS)
            names = ", ".join(f'"{n}"' for n in ("line_no", "reason", *BILLING_STAGE_NAMES))
            con.execute(
                f"INSERT INTO billing_stage ({names}) SELECT {names} FROM ({_csv_sql()})",
                {"secret": ctx.secret},
            )
        finally:
            con.execute(f"DROP TABLE IF EXISTS {ROWS}")


INGESTER = OpenRouterIngester()
INGESTERS: tuple[Ingester, ...] = (INGESTER,)
