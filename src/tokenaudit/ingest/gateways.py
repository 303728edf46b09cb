"""LLM gateway request logs: Helicone, Portkey and Cloudflare AI Gateway.

One record per proxied model call; each is mapped in one SQL statement
(``ingest.gateways_sql``), never a Python loop over rows. Request and response bodies are
never stored (Portkey's response body is read for its ``usage`` counts only).

Helicone (``helicone``): the export tool's files (``npx @helicone/export --format
json|jsonl|csv``: rows of the ``/v1/request/query-clickhouse`` API, the API's own
``{"data": [...]}`` answer) and raw ``request_response_rmt`` rows (ClickHouse
``JSONEachRow``, 64-bit integers quoted). ``prompt_tokens`` is uncached input (Helicone
subtracts OpenAI's cached tokens; Anthropic's ``input_tokens`` is uncached already),
``prompt_cache_read_tokens`` / ``prompt_cache_write_tokens`` are the cache,
``completion_tokens`` excludes ``reasoning_tokens`` where that column exists (output =
both). Cost: USD in API rows (the API divides by 1e9), USD x 1e9 (an integer) in raw
rows and in an API row whose cost is a whole number >= 1000. User = ``request_user_id``;
``request_properties`` (``Helicone-Property-*`` headers) give the dimensions and tags;
``Helicone-Session-Id`` is session and trace. A ``request_id`` seen twice keeps the row
with the latest ``updated_at`` (ReplacingMergeTree versions, overlapping export pages).

Portkey (``portkey``): the JSONL logs export (``created_at``, ``ai_org``, ``ai_model``,
``req_units``, ``res_units``, ``cost`` in cents, ``is_success``, ``trace_id``,
``metadata`` or ``metadata.key``/``metadata.value``...). ``req_units`` is the prompt
count as Portkey's OpenAI-format response reports it; when the response body's usage is
exported, cached tokens (a subset, OpenAI) or Anthropic's cache counts (apart) are split
out. ``metadata._user`` is the user; ``retry_success_count`` + 1 the attempt.

Cloudflare AI Gateway (``cloudflare-ai-gateway``): the REST API's logs answer
(``{"result": [...], "result_info": ...}``, pages concatenated or one per line), or
``AiGatewayLog`` objects as JSON / JSON lines. ``tokens_in`` / ``tokens_out`` as logged
(the cache split is not reported), ``cost`` in USD, ``metadata`` (a JSON string in the
REST API) gives dimensions and tags, ``step`` + 1 the attempt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import InputError
from tokenaudit.ingest import gateways_sql as g
from tokenaudit.ingest import litellm_records, tabular
from tokenaudit.ingest.source import HEAD_BYTES
from tokenaudit.ingest.tabular import csv_header, stage_csv
from tokenaudit.model import stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

ROWS = litellm_records.TABLE  # (line_no, bad, doc): one row per record
_CSV_ROWS = "_gateway_csv_rows"
MAX_LINE = tabular.MAX_LINE
ENVELOPE_KEYS = ("result", "data")  # Cloudflare's REST answer, Helicone's API answer
_WS = re.compile(r"[ \t\n\r]*")


# --- splitting files into records ------------------------------------------------------------


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def _envelope_array(obj: Any) -> list[Any] | None:
    if isinstance(obj, dict):
        for key in ENVELOPE_KEYS:
            if isinstance(obj.get(key), list):
                return list(obj[key])
    return None


def _document_records(text: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line, bad, record text) for each record of a JSON document: the elements of a
    top-level array (a trailing comma before ``]`` is tolerated: the Helicone export
    tool writes one), of an envelope's ``result`` / ``data`` array, or an object itself;
    several documents may follow one another. A parse error ends the file with one
    quarantined record at the line where it happened."""
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)

    def line(at: int) -> int:
        return text.count("\n", 0, at) + 1

    def array(start: int) -> Iterator[tuple[int, str | None, str | None]]:
        nonlocal pos
        pos = _skip(text, start + 1)
        while not text.startswith("]", pos):
            if pos >= len(text):
                raise json.JSONDecodeError("unterminated array", text, pos)
            value, end = decoder.raw_decode(text, pos)
            if isinstance(value, dict):
                yield line(pos), None, text[pos:end]
            else:
                yield line(pos), "not a JSON object", None
            pos = _skip(text, end)
            if text.startswith(",", pos):
                pos = _skip(text, pos + 1)
            elif not text.startswith("]", pos):
                raise json.JSONDecodeError("expected ',' or ']'", text, pos)
        pos = _skip(text, pos + 1)

    try:
        while pos < len(text):
            if text.startswith("[", pos):
                yield from array(pos)
                continue
            value, end = decoder.raw_decode(text, pos)
            if isinstance(value, dict) and _envelope_array(value) is not None:
                yield from _envelope_elements(text, pos, end)
                pos = _skip(text, end)
            elif isinstance(value, dict):
                yield line(pos), None, text[pos:end]
                pos = _skip(text, end)
            else:
                yield line(pos), "not a JSON object", None
                pos = _skip(text, end)
    except (json.JSONDecodeError, RecursionError) as e:
        if isinstance(e, json.JSONDecodeError):
            yield e.lineno, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", None
        else:
            yield line(pos), "invalid JSON: nested too deeply", None


_ENVELOPE_KEY = re.compile(r'"(result|data)"\s*:\s*\[')


def _envelope_elements(
    text: str, start: int, end: int
) -> Iterator[tuple[int, str | None, str | None]]:
    """The records of the envelope object text[start:end] (already known to be valid)."""
    decoder = json.JSONDecoder()
    obj = json.loads(text[start:end])
    key = next(k for k in ENVELOPE_KEYS if isinstance(obj.get(k), list))
    # Find the array's position: scan the object's top-level keys in order.
    pos = _skip(text, start + 1)
    while pos < end:
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # the colon
        if name == key and text.startswith("[", pos):
            pos = _skip(text, pos + 1)
            while not text.startswith("]", pos):
                value, stop = decoder.raw_decode(text, pos)
                at = text.count("\n", 0, pos) + 1
                if isinstance(value, dict):
                    yield at, None, text[pos:stop]
                else:
                    yield at, "not a JSON object", None
                pos = _skip(text, stop)
                if text.startswith(",", pos):
                    pos = _skip(text, pos + 1)
            return
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)


def _first_line_record(head: bytes) -> Any:
    first = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n").split("\n", 1)[0]
    try:
        return json.loads(first)
    except (ValueError, RecursionError):
        return None


def stage_json_lines(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    """Fill ROWS (line_no, bad, doc) from JSON lines: DuckDB's read_json (each line as JSON
    text) when its rows account for every line of the file, so that row order gives the
    line numbers; otherwise (blank lines, a broken line) every line is split in blocks and
    parsed in DuckDB, broken ones keeping their number."""
    import duckdb

    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {ROWS} AS
            SELECT row_number() OVER () AS line_no, NULL::VARCHAR AS bad, json::VARCHAR AS doc
            FROM read_json($path, format = 'newline_delimited', records = false,
                           columns = {{'json': 'JSON'}}, maximum_object_size = {MAX_LINE})""",
            {"path": str(src.data_path)},
        )
        count = int(con.execute(f"SELECT count(*) FROM {ROWS}").fetchall()[0][0])
        if count == src.line_count:
            return
    except duckdb.Error:
        pass
    con.execute(litellm_records.ROWS_DDL)
    litellm_records.stage_lines(con, src)


def stage_json(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    """Fill ROWS from JSON lines or a JSON document (array, envelope, objects in a row)."""
    first = _first_line_record(src.head)
    if isinstance(first, dict) and _envelope_array(first) is None:
        stage_json_lines(con, src)
        return
    con.execute(litellm_records.ROWS_DDL)
    try:
        text = src.data_path.read_bytes().decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        raise InputError(f"{src.path}: invalid UTF-8 at byte {e.start}") from None
    rows = list(_document_records(text))
    if len({line for line, _, _ in rows}) < len(rows):
        # Several records on one line (minified pages): number records by their ordinal.
        rows = [(i, bad, doc) for i, (_, bad, doc) in enumerate(rows, start=1)]
    for start in range(0, len(rows), tabular.BATCH):
        litellm_records.insert_rows(con, rows[start : start + tabular.BATCH])


def stage_csv_rows(
    con: duckdb.DuckDBPyConnection, src: Source, columns: tuple[str, ...], required: set[str]
) -> None:
    """Fill ROWS from a CSV export: each row becomes a JSON object of its known columns
    (header names matched without regard to case; others, bodies included, never read)."""
    header = csv_header(src.head)
    if not header:
        raise InputError(f"{src.path}: no CSV header line")
    present = {h.strip().lower() for h in header}
    missing = sorted(required - present)
    if missing:
        raise InputError(f"{src.path}: missing column(s) " + ", ".join(missing))
    known = {c: c.lower() for c in columns if c.lower() in present}
    try:
        stage_csv(con, src, _CSV_ROWS, header, known)
        pairs = ", ".join(f"{g.lit(c)}, {c}" for c in known)
        con.execute(litellm_records.ROWS_DDL)
        con.execute(
            f"INSERT INTO {ROWS} SELECT line_no, bad, "
            f"CASE WHEN bad IS NULL THEN json_object({pairs})::VARCHAR END FROM {_CSV_ROWS}"
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_CSV_ROWS}")


# --- detection -------------------------------------------------------------------------------


def first_record(head: bytes) -> dict[str, Any] | None:
    """The first record object of a JSON lines file, array, envelope or document."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text or text[0] not in "[{":
        return None
    value = _first_line_record(head)
    if value is None:
        decoder = json.JSONDecoder()
        try:
            if text.startswith("["):
                value = [decoder.raw_decode(text, _skip(text, 1))[0]]
            else:
                value = decoder.raw_decode(text)[0]
        except (ValueError, RecursionError):
            m = _ENVELOPE_KEY.search(text)
            if not m:
                return None
            try:
                value = [decoder.raw_decode(text, _skip(text, m.end()))[0]]
            except (ValueError, RecursionError):
                return None
    elements = value if isinstance(value, list) else _envelope_array(value)
    if elements is not None:
        value = elements[0] if elements else None
    return value if isinstance(value, dict) else None


def _looks(src: Source, record_test: Callable[[dict[str, Any]], bool], *marks: str) -> bool:
    record = first_record(src.head)
    if record is not None:
        return record_test(record)
    if len(src.head) < HEAD_BYTES:
        return False
    text = src.head.decode("utf-8", errors="replace")  # a first record longer than the head
    return all(f'"{m}"' in text for m in marks)


_HELICONE_MARKS = frozenset(
    {"request_properties", "response_status", "delay_ms", "prompt_cache_read_tokens",
     "prompt_cache_write_tokens", "helicone_user", "request_user_id", "cache_reference_id",
     "organization_id"}
)  # fmt: skip


def is_helicone(record: dict[str, Any]) -> bool:
    return "request_created_at" in record and bool(_HELICONE_MARKS & record.keys())


_PORTKEY_MARKS = frozenset({"ai_org", "ai_provider", "total_units", "is_success"})


def is_portkey(record: dict[str, Any]) -> bool:
    keys = record.keys()
    if "req_units" in keys and "res_units" in keys:
        return True
    return "ai_model" in keys and bool(_PORTKEY_MARKS & keys)


def is_cloudflare(record: dict[str, Any]) -> bool:
    keys = record.keys()
    return (
        bool({"tokens_in", "tokens_out"} & keys)
        and {"model", "provider"} <= keys
        and bool({"cached", "success", "status_code", "duration", "step", "custom_cost"} & keys)
    )


# --- the ingesters ---------------------------------------------------------------------------

HELICONE_CSV_COLUMNS = (*g.HELICONE_KEYS, "organization_id")
HELICONE_CSV_REQUIRED = {"request_created_at", "prompt_tokens", "completion_tokens"}


class _Gateway:
    name: str
    detects: str
    kind = "usage"
    labels: dict[str, str]
    dedupe = False

    def mapping(self, rows: str) -> str:
        raise NotImplementedError

    def _stage_rows(self, con: duckdb.DuckDBPyConnection, src: Source) -> None:
        stage_json(con, src)

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(stage_ddl())
        try:
            self._stage_rows(con, src)
            relation = f"({self.mapping(ROWS)})"
            select = g.finish_sql(relation, self.labels, dedupe_versions=self.dedupe)
            con.execute(f"INSERT INTO stage BY NAME {select}", {"secret": ctx.secret})
        finally:
            con.execute(f"DROP TABLE IF EXISTS {ROWS}")
        return int(con.execute("SELECT count(*) FROM stage").fetchall()[0][0])


class HeliconeIngester(_Gateway):
    name = "helicone"
    detects = (
        "Helicone request exports (JSON, JSON lines or CSV from @helicone/export, the "
        "query API's rows) and raw request_response_rmt rows: request_created_at with "
        "Helicone's token/cache/property fields"
    )
    labels = g.HELICONE_LABELS

    def mapping(self, rows: str) -> str:
        return g.helicone_sql(rows)

    dedupe = True

    def sniff(self, src: Source) -> bool:
        text = src.head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        if text[:1] not in ("[", "{"):
            names = {n.lower() for n in csv_header(src.head) or ()}
            return names >= HELICONE_CSV_REQUIRED and bool({"response_id", "request_id"} & names)
        return _looks(src, is_helicone, "request_created_at", "prompt_cache_read_tokens")

    def _stage_rows(self, con: duckdb.DuckDBPyConnection, src: Source) -> None:
        text = src.head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        if text[:1] in ("[", "{", ""):
            stage_json(con, src)
        else:
            stage_csv_rows(con, src, HELICONE_CSV_COLUMNS, HELICONE_CSV_REQUIRED)


class PortkeyIngester(_Gateway):
    name = "portkey"
    detects = "Portkey logs export (JSON lines): ai_model with req_units / res_units, cost in cents"
    labels = g.PORTKEY_LABELS

    def mapping(self, rows: str) -> str:
        return g.portkey_sql(rows)

    def sniff(self, src: Source) -> bool:
        return _looks(src, is_portkey, "ai_model", "req_units")


class CloudflareIngester(_Gateway):
    name = "cloudflare-ai-gateway"
    detects = (
        "Cloudflare AI Gateway logs: the REST API's result pages or AiGatewayLog objects "
        "(tokens_in / tokens_out, cached, success)"
    )
    labels = g.CLOUDFLARE_LABELS

    def mapping(self, rows: str) -> str:
        return g.cloudflare_sql(rows)

    def sniff(self, src: Source) -> bool:
        return _looks(src, is_cloudflare, "tokens_in", "tokens_out", "cached")


HELICONE = HeliconeIngester()
PORTKEY = PortkeyIngester()
CLOUDFLARE = CloudflareIngester()
INGESTERS: tuple[Ingester, ...] = (HELICONE, PORTKEY, CLOUDFLARE)
