"""OpenAI billing: the organization Usage and Costs API JSON, and the dashboard CSV exports.

Four formats, one mapping per kind:

* ``openai-usage``: ``GET /v1/organization/usage/<endpoint>`` answers. A page
  (``{"object":"page","data":[buckets]}``), several pages (a JSON array, or pages one
  after another), or the pages' ``data`` arrays concatenated (a JSON array of
  buckets). A bucket ``{"object":"bucket","start_time","end_time","results":[...]}``
  holds result objects ``organization.usage.<endpoint>.result``; each result is a
  record (its line is where the object starts; in minified JSON, where results share
  a line, its 1-based position in the file) and an empty bucket is none. Both the
  pre-2026-07 fields (``input_tokens`` with cached tokens inside, ``input_cached_tokens``)
  and the 2026 ones (``input_cache_write_tokens``, ``input_uncached_tokens``, text /
  audio / image breakdowns) are read; unknown keys are ignored.
* ``openai-costs``: ``GET /v1/organization/costs`` answers, the same envelope with
  ``organization.costs.result`` objects: ``amount.value`` (dollars, exact decimal, a
  number or a string), ``amount.currency`` (lower case), ``line_item``, ``quantity``
  and ``quantity_unit``.
* ``openai-usage-csv`` / ``openai-costs-csv``: the dashboard exports, read by
  ``ingest.openai_billing_csv`` into the same rows.

Completions categories never overlap: ``input`` is ``input_uncached_tokens`` when
given, else ``input_tokens - input_cached_tokens - input_cache_write_tokens``;
``cache_read`` = ``input_cached_tokens``, ``cache_write`` = ``input_cache_write_tokens``,
``output`` = ``output_tokens``, ``requests`` = ``num_model_requests``. The audio, text
and image breakdowns are subsets of those totals and are not read. ``batch`` true gives
service tier ``batch``; ``default`` is ``standard``. Other endpoints bill units under
``other`` (images, characters, seconds, bytes, sessions, file-search calls), web search
calls under ``web_search`` and model requests under ``requests``, each with a
description naming the unit. A cost ``line_item`` ("gpt-4o-mini-2024-07-18, cached
input", "priority | gpt-5.6-sol, output, long context", "web search tool calls") gives
the model, the category and the tier (``parse_line_item``).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import InputError
from tokenaudit.ingest.base import SECRET_RE, Ingester, StageContext
from tokenaudit.ingest.openai_billing_csv import (
    ENDPOINTS,
    FIELDS,
    ITEMS,
    ROWS,
    ROWS_DDL,
    TIERS,
    VALUES,
    Row,
    csv_kind,
    insert_rows,
    stage_csv,
    stage_sql,
)
from tokenaudit.model import billing_stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

# --- line items ------------------------------------------------------------------------------

_PIECES = (
    (re.compile(r"(uncached |text )?input( tokens)?"), "input"),
    (re.compile(r"(cached input|input cached|cache reads?|cached)( tokens)?"), "cache_read"),
    (
        re.compile(r"(input )?cache writes?( tokens)?,? ?\(?(1h|1 ?hour|1-hour)\)?"),
        "cache_write_1h",
    ),
    (re.compile(r"(1h|1 ?hour|1-hour) (input )?cache writes?( tokens)?"), "cache_write_1h"),
    (re.compile(r"(input )?cache writes?( tokens)?( \(?(5m|5 ?minutes?)\)?)?"), "cache_write"),
    (re.compile(r"(text )?output( tokens)?"), "output"),
)
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


def _piece(text: str) -> str | None:
    norm = " ".join(text.lower().replace("_", " ").split())
    return next((cat for pattern, cat in _PIECES if pattern.fullmatch(norm)), None)


def parse_line_item(item: str | None) -> tuple[str | None, str, str | None]:
    """(model, category, service tier) of a costs ``line_item``."""
    if item is None:
        return None, "other", None
    text, tier = item.strip(), None
    head, bar, rest = text.partition("|")
    if bar and head.strip().lower() in TIERS:
        tier, text = TIERS[head.strip().lower()], rest.strip()
    pieces = [p.strip() for p in text.split(",") if p.strip()]
    category: str | None = None
    first: str | None = None
    for i, piece in enumerate(pieces):
        cat = _piece(piece)
        if cat is not None:
            category = category or cat
        elif piece.lower() in TIERS:
            tier = tier or TIERS[piece.lower()]
        elif i == 0:
            first = piece
    if category is None and "web search" in text.lower().replace("_", " "):
        category = "web_search"
    model = None
    if first is not None and (_MODEL.fullmatch(first) and re.search(r"[0-9-]", first)):
        model = first
    elif first is not None and len(pieces) > 1 and category is not None:
        model = first  # "<model name>, <piece>"
    return model, category or "other", tier


# --- JSON documents ----------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DUP = "\x00duplicate"
_OBJECT = re.compile(r'"object"\s*:\s*"([^"\\]{1,100})"')
_RESULT = re.compile(r'"object"\s*:\s*"organization\.(usage\.[a-z_]+|costs)\.result"')
_USAGE_RESULT = re.compile(r"organization\.usage\.([a-z_]+)\.result")
COSTS_RESULT = "organization.costs.result"


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            out.setdefault(_DUP, key)
        out[key] = value
    return out


class _Doc:
    """A JSON text walked with positions, so each result object keeps its line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder(
            parse_float=Decimal, parse_int=str, parse_constant=str, object_pairs_hook=_pairs
        )
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def skip(self, pos: int) -> int:
        m = _WS.match(self.text, pos)
        return m.end() if m else pos

    def line(self, pos: int) -> int:
        return bisect.bisect_right(self.newlines, pos) + 1

    def values(self) -> Iterator[tuple[int, Any]]:
        """The top-level values, one after another (usually one)."""
        pos = self.skip(0)
        while pos < len(self.text):
            value, end = self.decoder.raw_decode(self.text, pos)
            yield pos, value
            pos = self.skip(end)

    def elements(self, pos: int) -> Iterator[tuple[int, Any]]:
        """(position, value) of the elements of the (valid) array at ``pos``."""
        pos = self.skip(pos + 1)
        while self.text[pos] != "]":
            value, end = self.decoder.raw_decode(self.text, pos)
            yield pos, value
            pos = self.skip(end)
            pos = self.skip(pos + 1) if self.text[pos] == "," else pos

    def member(self, pos: int, name: str) -> int | None:
        """The position of member ``name``'s value in the (valid) object at ``pos``."""
        pos, found = self.skip(pos + 1), None
        while self.text[pos] == '"':
            key, pos = scanstring(self.text, pos + 1)
            pos = self.skip(self.skip(pos) + 1)  # past ':'
            if key == name:
                found = pos
            pos = self.skip(self.decoder.raw_decode(self.text, pos)[1])
            pos = self.skip(pos + 1) if self.text[pos] == "," else pos
        return found


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "<object>"
    if isinstance(value, list):
        return "<array>"
    return str(value).strip() or None


def _result_row(kind: str, line_no: int, result: Any, bucket: dict[str, Any] | None) -> Row:
    row: Row = {"line_no": line_no, "bad": None, "endpoint": None}
    if not isinstance(result, dict):
        row["bad"] = "result is not an object"
        return row
    obj = result.get("object")
    usage = _USAGE_RESULT.fullmatch(obj) if isinstance(obj, str) else None
    if usage is not None and usage.group(1) in ENDPOINTS:
        row["endpoint"] = usage.group(1)
    elif obj == COSTS_RESULT:
        row["endpoint"] = "costs"
    elif obj is None:
        row["bad"] = "result without an object type"
    else:
        row["bad"] = f"unknown result object: {_shown(str(_text(obj)))}"
    if row["endpoint"] is not None and (row["endpoint"] == "costs") != (kind == "costs"):
        other = "openai-usage" if kind == "costs" else "openai-costs"
        row["bad"] = f"{obj} is not a {kind} result (use --input-format {other})"
    amount = result.get("amount")
    dup = result.get(_DUP) or (amount.get(_DUP) if isinstance(amount, dict) else None)
    if dup is not None:
        row["bad"] = f"duplicate key: {_shown(dup)}"
    if bucket is None:
        row["bad"] = row["bad"] or "result outside a time bucket: no start_time/end_time"
    else:
        row["start_time"] = _text(bucket.get("start_time"))
        row["end_time"] = _text(bucket.get("end_time"))
    for field in FIELDS[4:]:
        if not field.startswith("amount_"):
            row[field] = _text(result.get(field))
    if isinstance(amount, dict):
        row["amount_value"] = _text(amount.get("value"))
        row["amount_currency"] = _text(amount.get("currency"))
    elif amount is not None:
        row["bad"] = row["bad"] or "amount is not an object"
    return row


def _shown(value: str) -> str:
    return SECRET_RE.sub("[redacted]", value)[:60]


def _element(doc: _Doc, kind: str, pos: int, value: Any, top: bool) -> Iterator[Row]:
    """The records inside a page, a bucket, a result, or (at the top) an array of them."""
    line = doc.line(pos)
    if isinstance(value, list) and top:
        for p, v in doc.elements(pos):
            yield from _element(doc, kind, p, v, False)
    elif not isinstance(value, dict):
        yield {"line_no": line, "bad": "not a page, bucket or result object"}
    elif value.get("object") == "page" or (value.get("object") is None and "data" in value):
        data = doc.member(pos, "data")
        if data is None or not isinstance(value.get("data"), list):
            yield {"line_no": line, "bad": "page without a data array"}
            return
        for p, v in doc.elements(data):
            yield from _element(doc, kind, p, v, False)
    elif value.get("object") == "bucket" or (value.get("object") is None and "results" in value):
        results = doc.member(pos, "results")
        if results is None or not isinstance(value.get("results"), list):
            yield {"line_no": line, "bad": "bucket without a results array"}
            return
        for p, v in doc.elements(results):
            yield _result_row(kind, doc.line(p), v, value)
    elif isinstance(value.get("object"), str) and value["object"].startswith("organization."):
        yield _result_row(kind, line, value, None)
    else:
        yield {"line_no": line, "bad": "not a page, bucket or result object"}


def stage_json(con: duckdb.DuckDBPyConnection, src: Source, kind: str) -> None:
    """Fill ``ROWS`` from an API answer (``kind``: usage or costs)."""
    try:
        text = src.data_path.read_bytes().decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        raise InputError(f"{src.path}: invalid UTF-8 at byte {e.start}") from None
    doc = _Doc(text)
    try:
        values = list(doc.values())
    except json.JSONDecodeError as e:
        raise InputError(
            f"{src.path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        raise InputError(f"{src.path}: invalid JSON: nested too deeply") from None
    con.execute(ROWS_DDL)
    rows: list[Row] = []
    for pos, value in values:
        if not isinstance(value, dict | list):
            raise InputError(f"{src.path}: not an OpenAI {kind} API answer (a JSON scalar)")
        rows.extend(_element(doc, kind, pos, value, True))
    if len({r["line_no"] for r in rows}) < len(rows):
        # Minified JSON (the API's own output): several records share a line, so
        # records are numbered by position instead (the n-th result of the file).
        for n, row in enumerate(rows, 1):
            row["line_no"] = n
    insert_rows(con, rows)


def json_kind(head: bytes) -> str | None:
    """``usage`` or ``costs`` for an OpenAI Usage / Costs API answer, else None."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    first = _OBJECT.search(text)
    if not text.startswith(("{", "[")) or first is None:
        return None
    result = _RESULT.search(text)
    if first.group(1) not in ("page", "bucket") and not (
        result and result.start() == first.start()
    ):
        return None
    if result is None:  # only empty buckets: nothing to load, either way
        return "usage" if '"results"' in text or '"data"' in text else None
    return "costs" if result.group(1) == "costs" else "usage"


def _map(con: duckdb.DuckDBPyConnection, kind: str, secret: str, json_names: bool) -> int:
    import pyarrow as pa

    con.execute(billing_stage_ddl())
    try:
        if kind == "costs":
            items = [r[0] for r in con.execute(f"SELECT DISTINCT line_item FROM {ROWS}").fetchall()]
            parsed = [parse_line_item(i) for i in items]
            items_table = pa.table(
                {
                    "line_item": pa.array(items, pa.string()),
                    "model": pa.array([p[0] for p in parsed], pa.string()),
                    "category": pa.array([p[1] for p in parsed], pa.string()),
                    "tier": pa.array([p[2] for p in parsed], pa.string()),
                }
            )
            con.register("_openai_billing_parsed", items_table)
            try:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {ITEMS} AS SELECT * FROM _openai_billing_parsed"
                )
            finally:
                con.unregister("_openai_billing_parsed")
        values, stage = stage_sql(kind, json_names)
        con.execute(values)
        con.execute(stage, {"secret": secret})
    finally:
        for t in (ROWS, VALUES, ITEMS):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return int(con.execute("SELECT count(*) FROM billing_stage").fetchall()[0][0])


# --- the ingesters -------------------------------------------------------------------------------


class OpenAIJsonIngester:
    kind = "billing"

    def __init__(self, name: str, results: str, detects: str) -> None:
        self.name = name
        self.results = results  # usage | costs
        self.detects = detects

    def sniff(self, src: Source) -> bool:
        return json_kind(src.head) == self.results

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        stage_json(con, src, self.results)
        return _map(con, self.results, ctx.secret, json_names=True)


class OpenAICsvIngester:
    kind = "billing"

    def __init__(self, name: str, results: str, detects: str) -> None:
        self.name = name
        self.results = results
        self.detects = detects

    def sniff(self, src: Source) -> bool:
        return csv_kind(src) == self.results

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        stage_csv(con, src, self.results)
        return _map(con, self.results, ctx.secret, json_names=False)


INGESTERS: tuple[Ingester, ...] = (
    OpenAIJsonIngester(
        "openai-usage",
        "usage",
        'OpenAI Usage API JSON: pages/buckets of "organization.usage.*.result" objects',
    ),
    OpenAIJsonIngester(
        "openai-costs",
        "costs",
        'OpenAI Costs API JSON: pages/buckets of "organization.costs.result" objects',
    ),
    OpenAICsvIngester(
        "openai-costs-csv",
        "costs",
        "OpenAI dashboard cost CSV: start_time,end_time,...,amount_value,amount_currency",
    ),
    OpenAICsvIngester(
        "openai-usage-csv",
        "usage",
        "OpenAI dashboard usage CSV: start_time,end_time,start_time_iso,end_time_iso,...",
    ),
)
