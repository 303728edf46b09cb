"""Anthropic billing exports: the Admin API usage and cost reports, the Console CSV exports.

Usage report (``GET /v1/organizations/usage_report/messages``, saved as JSON): pages
``{"data": [bucket...], "has_more": ..., "next_page": ...}``; a bucket has ``starting_at``
(inclusive) and ``ending_at`` (exclusive), RFC 3339, and ``results``, one per group::

    {"uncached_input_tokens": 1500, "cache_creation": {"ephemeral_1h_input_tokens": 1000,
     "ephemeral_5m_input_tokens": 500}, "cache_read_input_tokens": 200, "output_tokens": 500,
     "server_tool_use": {"web_search_requests": 10}, "api_key_id": "apikey_01Rj…",
     "workspace_id": "wrkspc_01Jw…", "model": "claude-sonnet-4-20250514",
     "service_tier": "standard", "context_window": "0-200k"}

Token semantics: the four input counts are disjoint (Anthropic style), so each is its own
category: uncached -> input, cache read -> cache_read, 5-minute write -> cache_write, 1-hour
write -> cache_write_1h; output -> output; web searches -> web_search (a request count).
There is no request count. Other ``server_tool_use`` counters become ``other``; unknown keys
are ignored. ``context_window``, ``inference_geo``, ``speed``, ``account_id``,
``service_account_id`` go into the description.

Cost report (``GET /v1/organizations/cost_report``): the same buckets; each result has
``amount``, a decimal string in cents (``"123.78912"`` = $1.2378912, divided by 100
exactly), ``currency``, ``description``, ``cost_type`` (tokens, web_search, code_execution,
session_usage), ``token_type`` (dotted: ``cache_creation.ephemeral_1h_input_tokens``),
``model`` (null for non-token costs), ``service_tier``, ``workspace_id``, ``context_window``.

A file holds one page, several pages (an array, or one per line), or an array of buckets.
Each result is a record numbered by the line its object starts on; a bucket with no results
is no record. Files are small API answers, parsed in Python with exact decimals
(``ingest.anthropic_json``). A file that is not valid JSON is rejected whole: a partial
export would replace complete data for the days it covers. Dedupe: a re-export replaces the
lines of the days it covers (billing_load).

The Console CSV exports are read in SQL (``ingest.anthropic_billing_csv``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest import anthropic_billing_csv as csvx
from tokenaudit.ingest.anthropic_json import Obj, records
from tokenaudit.ingest.base import Ingester, RecordError, StageContext, redact
from tokenaudit.model import BILLING_STAGE_COLUMNS, billing_stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

Row = dict[str, Any]

# --- values ------------------------------------------------------------------------------------

_CTX = Context(prec=80)
_SCALE = Decimal("1e-12")
_MAX = Decimal("1e26")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return redact(_CONTROL.sub("", str(value)))[:40]


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key} is not a string: {_show(value)}")
    return value.strip() or None


def _count(obj: dict[str, Any], key: str, label: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{label} is not a whole number: {_show(value)}")
    if value < 0:
        raise RecordError(f"negative {label}: {value}")
    if value >= 2**63:
        raise RecordError(f"{label} out of range: {_show(value)}")
    return value


def _object_at(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{key} is not an object: {_show(value)}")
    _no_dups(value, key + ".")
    return value


def _no_dups(obj: dict[str, Any], prefix: str = "") -> None:
    if isinstance(obj, Obj) and obj.dups:
        raise RecordError(f"duplicate key: {prefix}{min(obj.dups)}")


_MONEY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,4})?")


def _cents(value: Any) -> Decimal:
    """Dollars from the cost report's amount (cents as a decimal string), exactly."""
    if value is None or value == "":
        raise RecordError("missing amount")
    if isinstance(value, str) and _MONEY.fullmatch(value.strip()):
        cents = Decimal(value.strip())
    elif isinstance(value, Decimal | int) and not isinstance(value, bool):
        cents = Decimal(value)
    else:
        raise RecordError(f"invalid amount: {_show(value)}")
    if not cents.is_finite():
        raise RecordError(f"invalid amount: {_show(value)}")
    sign, digits, exponent = cents.as_tuple()
    dollars = Decimal((sign, digits, int(exponent) - 2))  # cents / 100, no rounding
    if abs(dollars) >= _MAX:
        raise RecordError(f"amount out of range: {_show(value)}")
    try:
        exact = dollars.quantize(_SCALE, context=_CTX)
    except InvalidOperation:
        raise RecordError(f"amount out of range: {_show(value)}") from None
    if exact != dollars:
        raise RecordError(f"amount has more than 10 decimal places: {_show(value)}")
    return exact


def _period(bucket: dict[str, Any]) -> tuple[datetime, datetime]:
    _no_dups(bucket)
    return _ts(bucket, "starting_at"), _ts(bucket, "ending_at")


def _ts(bucket: dict[str, Any], key: str) -> datetime:
    value = bucket.get(key)
    if value is None:
        raise RecordError(f"missing {key}")
    try:
        if not isinstance(value, str):
            raise ValueError
        ts = datetime.fromisoformat(value.strip())
        return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
    except (ValueError, OverflowError):
        raise RecordError(f"invalid {key}: {_show(value)}") from None


_QUALIFIERS = ("context_window", "inference_geo", "speed", "account_id", "service_account_id")


def _dims(result: dict[str, Any], ctx: StageContext) -> tuple[Row, list[str]]:
    """The line's dimensions, and the ones it has no column for (for the description)."""
    _no_dups(result)
    key = _text(result, "api_key_id")
    raw_tier = _text(result, "service_tier")
    tier = csvx.SERVICE_TIERS.get(raw_tier.lower()) if raw_tier else None
    extra = [f"{k}={v}" for k in _QUALIFIERS if (v := _text(result, k))]
    if raw_tier and tier is None:
        extra.append(f"service_tier={raw_tier}")
    dims = {
        "provider": csvx.PROVIDER,
        "workspace": _text(result, "workspace_id"),
        "api_key_hash": ctx.key_hash(key) if key else None,
        "api_key_last4": key[-4:] if key else None,
        "model": _text(result, "model"),
        "service_tier": tier,
    }
    return dims, extra


# --- the two reports ---------------------------------------------------------------------------

_USAGE_FIELDS = (  # (object, key, category); "" = the result itself
    ("", "uncached_input_tokens", "input"),
    ("", "cache_read_input_tokens", "cache_read"),
    ("cache_creation", "ephemeral_5m_input_tokens", "cache_write"),
    ("cache_creation", "ephemeral_1h_input_tokens", "cache_write_1h"),
    ("", "output_tokens", "output"),
    ("server_tool_use", "web_search_requests", "web_search"),
)


def _usage_items(result: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(category, source field, quantity) of a usage result, zero counts left out."""
    parts = {"": result}
    parts |= {p: _object_at(result, p) for p in ("cache_creation", "server_tool_use")}
    out: list[tuple[str, str, int]] = []
    for part, key, category in _USAGE_FIELDS:
        label = f"{part}.{key}" if part else key
        out.append((category, label, _count(parts[part], key, label)))
    if "cache_creation" not in result:  # older reports: one flat cache write count
        flat = "cache_creation_input_tokens"
        out.append(("cache_write", flat, _count(result, flat, flat)))
    for key in sorted(parts["server_tool_use"]):
        if key != "web_search_requests" and key.endswith("_requests"):
            label = f"server_tool_use.{key}"
            out.append(("other", label, _count(parts["server_tool_use"], key, label)))
    return [item for item in out if item[2] > 0]


def _usage_rows(result: dict[str, Any], ctx: StageContext) -> list[Row]:
    dims, extra = _dims(result, ctx)
    rows = [
        {
            **dims,
            "token_category": cat,
            "quantity": Decimal(n),
            "description": "; ".join([f, *extra]),
        }
        for cat, f, n in _usage_items(result)
    ]
    return rows or [{**dims, "description": "; ".join(["no usage", *extra])}]


_COST_TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "input_tokens": "input",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "ephemeral_5m_input_tokens": "cache_write",
    "cache_creation_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
}
_CURRENCY = re.compile(r"[A-Z]{3}")


def _cost_rows(result: dict[str, Any], ctx: StageContext) -> list[Row]:
    dims, extra = _dims(result, ctx)
    cost = _cents(result.get("amount"))
    currency = (_text(result, "currency") or "").upper()
    if not currency:
        raise RecordError("missing currency")
    if not _CURRENCY.fullmatch(currency):
        raise RecordError(f"invalid currency: {_show(result.get('currency'))}")
    token_type = _text(result, "token_type")
    cost_type = _text(result, "cost_type")
    category = _COST_TOKEN_TYPES.get((token_type or "").lower()) or (
        "web_search" if (cost_type or "").lower() == "web_search" else "other"
    )
    said = _text(result, "description") or token_type or cost_type or "total"
    return [
        {
            **dims,
            "token_category": category,
            "cost": cost,
            "currency": currency,
            "description": "; ".join([said, *extra]),
        }
    ]


# --- staging ----------------------------------------------------------------------------------


def _write(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> int:
    import pyarrow as pa

    con.execute(billing_stage_ddl())
    if not rows:
        return 0
    types = {
        "VARCHAR": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "DECIMAL(38,6)": pa.decimal128(38, 6),
        "DECIMAL(38,12)": pa.decimal128(38, 12),
    }
    fields = [("line_no", pa.int64()), ("reason", pa.string())]
    fields += [(n, types[t]) for n, t in BILLING_STAGE_COLUMNS]
    table = pa.table({n: pa.array([r.get(n) for r in rows], type=t) for n, t in fields})
    names = ", ".join(f'"{n}"' for n, _ in fields)
    con.register("_anthropic_rows", table)
    try:
        con.execute(f"INSERT INTO billing_stage ({names}) SELECT {names} FROM _anthropic_rows")
    finally:
        con.unregister("_anthropic_rows")
    return len(rows)


class _Report:
    name = ""
    kind = "billing"
    detects = ""
    dataset = ""
    what = ""

    def rows(self, result: dict[str, Any], ctx: StageContext) -> list[Row]:
        raise NotImplementedError

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        rows: list[Row] = []
        periods: dict[int, tuple[datetime, datetime] | str] = {}
        for line, bucket, result, reason in records(src, self.what):
            base = {"line_no": line, "dataset": self.dataset, "provider": csvx.PROVIDER}
            try:
                if reason is not None:
                    raise RecordError(reason)
                if id(bucket) not in periods:
                    try:
                        periods[id(bucket)] = _period(bucket)
                    except RecordError as e:
                        periods[id(bucket)] = str(e)
                period = periods[id(bucket)]
                if isinstance(period, str):
                    raise RecordError(period)
                if not isinstance(result, dict):
                    raise RecordError("result is not an object")
                start, end = period
                for row in self.rows(result, ctx):
                    rows.append({**base, "period_start": start, "period_end": end, **row})
            except RecordError as e:
                rows.append({**base, "reason": str(e)})
        return _write(con, rows)


_STARTING_AT = re.compile(rb'"starting_at"\s*:\s*"')
_RESULTS = re.compile(rb'"results"\s*:\s*[\[n]')
_RESULT_OBJECT = re.compile(rb'"results"\s*:\s*\[\s*\{')
_USAGE_KEYS = re.compile(rb'"(?:uncached_input_tokens|cache_read_input_tokens)"\s*:')
_AMOUNT = re.compile(rb'"amount"\s*:')
_CURRENCY_KEY = re.compile(rb'"currency"\s*:')


def _buckets(head: bytes) -> bool:
    first = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    return first in (b"{", b"[") and bool(_STARTING_AT.search(head) and _RESULTS.search(head))


def _is_cost(head: bytes) -> bool:
    return bool(_AMOUNT.search(head) and _CURRENCY_KEY.search(head))


class UsageReport(_Report):
    name = "anthropic-usage"
    detects = (
        "Anthropic Admin API usage report JSON (usage_report/messages): buckets with "
        "starting_at and results with uncached_input_tokens"
    )
    dataset = "anthropic.usage_report"
    what = "an Anthropic usage report"

    def sniff(self, src: Source) -> bool:
        head = src.head
        if not _buckets(head) or _is_cost(head):
            return False
        # Only empty buckets (an idle period) are claimed here too: nothing is billed.
        return bool(_USAGE_KEYS.search(head)) or not _RESULT_OBJECT.search(head)

    def rows(self, result: dict[str, Any], ctx: StageContext) -> list[Row]:
        return _usage_rows(result, ctx)


class CostReport(_Report):
    name = "anthropic-cost"
    detects = (
        "Anthropic Admin API cost report JSON (cost_report): buckets with starting_at and "
        "results with amount (cents) and currency"
    )
    dataset = "anthropic.cost_report"
    what = "an Anthropic cost report"

    def sniff(self, src: Source) -> bool:
        return _buckets(src.head) and _is_cost(src.head)

    def rows(self, result: dict[str, Any], ctx: StageContext) -> list[Row]:
        return _cost_rows(result, ctx)


INGESTERS: tuple[Ingester, ...] = (
    UsageReport(),
    CostReport(),
    csvx.ConsoleUsage(),
    csvx.ConsoleCost(),
)
