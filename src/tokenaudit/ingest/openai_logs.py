"""Raw provider logs: OpenAI and Anthropic response bodies, recorded exchanges, Batch output.

Sources and where they live (one JSON object per line; a file that is one JSON object
or a JSON array of them is read too, ``line_no`` then being the line an element starts on):

* Response bodies as the API returned them, logged by the application: OpenAI Chat
  Completions (``"object": "chat.completion"``), the Responses API
  (``"object": "response"``) and Anthropic Messages (``"type": "message"``, which carries
  no timestamp: log it inside an exchange).
* Recorded exchanges: ``{"request": {"method", "uri", "headers"?, "body"},
  "response": {"status", "date", "request_id", "headers"?, "body"}}``, as written by HTTP
  recorders (VCR cassettes decoded to JSON lines, proxy logs). The response body is a
  JSON object or the text of a server-sent event stream: an OpenAI chat stream gives the
  last chunk's ``usage`` (sent with ``stream_options.include_usage``), a Responses stream
  the ``response.completed`` event's ``response.usage``, an Anthropic stream the
  ``message_start`` usage overlaid with the last (cumulative) ``message_delta`` usage. A
  stream without usage is quarantined ("streamed response without usage"): counting
  tokens from the text is not done here.
* OpenAI Batch API output files (``batch_…_output.jsonl``): ``{"id": "batch_req_…",
  "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``. When the
  batch input file (lines ``{"custom_id", "method", "url", "body"}``) sits in the same
  folder (any ``*.jsonl`` / ``*.jsonl.gz`` whose first line has that shape), lines are
  joined by ``custom_id``: the request's model fills a missing one and its metadata
  gives attribution and tags. A custom_id found in two input files with different
  requests is not joined. An input file alone is not recognised by detection (it holds
  no usage); forced with ``--input-format openai-logs`` its lines are quarantined. Azure
  OpenAI batch output has the same shape (loaded with provider ``openai``).

Detection reads the first line within the first 256 KB: a file whose first record is
longer than that needs ``--input-format openai-logs``.

Sample record (an exchange, bodies shortened)::

    {"request": {"method": "POST", "uri": "https://api.openai.com/v1/chat/completions",
                 "body": {"model": "gpt-4o-mini", "messages": […], "metadata": {"team": "search"}}},
     "response": {"status": 200, "date": "Fri, 18 Apr 2025 09:12:31 GMT",
                  "request_id": "req_5c1e…", "body": {"id": "chatcmpl-BNq3…",
                  "object": "chat.completion", "created": 1744967550,
                  "model": "gpt-4o-mini-2024-07-18", "service_tier": "default",
                  "usage": {"prompt_tokens": 1149, "completion_tokens": 353,
                            "prompt_tokens_details": {"cached_tokens": 1024}}}}}

Token semantics (categories never overlap): OpenAI input counts include cached tokens,
so ``input_tokens = prompt_tokens - cached_tokens - cache_write_tokens`` (``input_tokens``
and ``input_tokens_details`` for the Responses API), ``cache_read_tokens = cached_tokens``,
``cache_write_tokens = prompt_tokens_details.cache_write_tokens``. Anthropic counts are
separate already: ``input_tokens`` (uncached), ``cache_read_input_tokens``, and
``cache_creation_input_tokens`` split into ``cache_write_1h_tokens``
(``cache_creation.ephemeral_1h_input_tokens``) and ``cache_write_tokens`` (the rest: 5-minute
writes). ``output_tokens`` includes reasoning; ``reasoning_tokens`` is the subset.

Other columns: ``ts`` = the body's ``created`` / ``created_at`` (epoch seconds; milliseconds
and finer detected by magnitude), else the HTTP ``date``; a failed batch request (no body)
takes the earliest ``created`` of the file. ``model`` = the response's model, else the
request's. ``provider`` from the body's shape, else the URI host. ``attempt`` = 1 + the
``x-stainless-retry-count`` request header the OpenAI and Anthropic SDKs send (else 1).
``service_tier``: ``default`` becomes ``standard``; every Batch line is ``batch``. A
response with HTTP status >= 400, a batch line with ``error`` set or ``status_code >= 400``
and a failed Responses call are loaded with ``status`` error (zero tokens unless usage
was reported).
Request ``metadata`` keys workflow, team, tenant, agent, prompt_version, environment,
project, session_id and trace_id fill those columns, other keys become tags (sensitive
keys dropped, secret-looking values redacted); ``user`` = the request's ``user``
(``metadata.user_id`` for Anthropic, else ``safety_identifier``). An ``Authorization`` /
``x-api-key`` request header is kept only as a keyed hash and its last 4 characters.
``prompt_hash`` = keyed hash of the model, system prompt / instructions and the
messages or input; ``prefix_hash`` = keyed hash of the system prompt and the tools. The
request's prompt (messages / input, system / instructions, tools) is counted locally at
staging (``tokens``: ``local_input_tokens`` and its parts); no prompt or completion text is
stored.

Dedupe key: ``request_id`` = the provider's request id (``response.request_id``, the
``x-request-id`` / ``request-id`` header, a batch line's ``response.request_id`` or its
``batch_req_…`` id), else the body's ``id``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.base import RecordError, StageContext, quarantined, write_stage
from tokenaudit.ingest.openai_parse import (
    JSON,
    LITELLM_KEYS,
    Request,
    classify,
    parse_bare,
    parse_batch,
    parse_exchange,
    request_info,
)
from tokenaudit.ingest.source import iter_lines

if TYPE_CHECKING:
    from collections.abc import Iterator

    import duckdb

    from tokenaudit.ingest.source import Source

NAME = "openai-logs"
CHUNK = 20_000  # stage rows built in Python at a time
MAX_DOCUMENT = 256 << 20  # a whole-file JSON document (object or array) is read in memory
_WS = re.compile(r"[ \t\r\n]*")
_BOM = b"\xef\xbb\xbf"

# Batch input files read for the join, by (path, size, mtime, secret): each is read once
# per process even when a folder holds many output files.
_INPUTS: dict[tuple[str, int, int, str], dict[str, Request] | None] = {}

_UNDATED = "failed batch request without a timestamp (no answered request in the file)"
Record = tuple[int, Any, str | None]  # line_no, parsed value, reason (value None then)


def _loads(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError:
        return None, "invalid JSON (malformed or truncated line)"


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        for raw in f:
            raw = raw.removeprefix(_BOM).strip()
            if raw:
                return raw
    return b""


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def _document(src: Source) -> list[Record] | None:
    """The records of a file that is one JSON object or array; None for JSON lines."""
    head = src.head.removeprefix(_BOM).lstrip()
    if not head.startswith((b"[", b"{")) or src.size_bytes > MAX_DOCUMENT:
        return None
    if head.startswith(b"{"):
        _, bad = _loads(_first_line(src.data_path).decode("utf-8", "replace"))
        if bad is None:
            return None  # the first line is a whole object: JSON lines
    try:
        text = src.data_path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    start = _skip(text, 0)
    line = 1 + text.count("\n", 0, start)
    if isinstance(doc, dict):
        return [(line, doc, None)]
    if not isinstance(doc, list):
        return None
    out: list[Record] = []
    decoder = json.JSONDecoder()
    pos = start + 1  # past the opening bracket
    for _ in doc:  # where each element starts (the text is known to be valid)
        at = _skip(text, pos)
        line += text.count("\n", start, at)
        start = at
        value, end = decoder.raw_decode(text, at)
        out.append((line, value, None))
        pos = _skip(text, end) + 1  # past the comma
    return out


def records(src: Source) -> Iterator[Record]:
    """Every record of the file: non-blank lines, or the elements of a JSON document."""
    doc = _document(src)
    if doc is not None:
        yield from doc
        return
    for n, raw in iter_lines(src):
        if n == 1:
            raw = raw.removeprefix(_BOM)
        if not raw.strip():
            continue  # blank lines are not records
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield n, None, "invalid UTF-8"
            continue
        yield n, *_loads(text)


def _open(path: Path) -> Any:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_inputs(path: Path, ctx: StageContext) -> dict[str, Request] | None:
    """custom_id -> request for a batch input file; None when ``path`` is not one."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, ctx.secret)
        if key in _INPUTS:
            return _INPUTS[key]
        if len(_INPUTS) > 64:
            _INPUTS.clear()
        found: dict[str, Request] | None = None
        with _open(path) as f:
            for raw in f:
                if not raw.strip():
                    continue
                value, _ = _loads(raw.decode("utf-8", "replace"))
                if classify(value) != "batch_input":
                    if found is None:
                        break  # the first record decides: not a batch input file
                    continue
                found = found if found is not None else {}
                custom_id = value.get("custom_id")
                if isinstance(custom_id, str | int) and not isinstance(custom_id, bool):
                    found[str(custom_id)] = request_info(value["body"], ctx)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    _INPUTS[key] = found
    return found


def batch_inputs(output: Path, ctx: StageContext) -> dict[str, Request]:
    """Requests of the batch input files beside ``output``, by custom_id (unambiguous only)."""
    found: dict[str, Request] = {}
    clash: set[str] = set()
    try:
        siblings = sorted(output.parent.iterdir())
    except OSError:
        return found
    me = output.resolve()
    for path in siblings:
        name = path.name.lower()
        if not name.endswith((".jsonl", ".jsonl.gz")) or not path.is_file():
            continue
        if path.resolve() == me:
            continue
        for custom_id, req in (_read_inputs(path, ctx) or {}).items():
            if found.setdefault(custom_id, req) != req:
                clash.add(custom_id)
    for custom_id in clash:
        del found[custom_id]
    return found


def _parse(value: Any, src: Source, ctx: StageContext, joins: list[dict[str, Request]]) -> JSON:
    if not isinstance(value, dict):
        raise RecordError("not a JSON object")
    kind = classify(value)
    if kind == "exchange":
        return parse_exchange(value, ctx)
    if kind == "batch_output":
        if not joins:
            joins.append(batch_inputs(src.path, ctx))
        return parse_batch(value, ctx, joins[0])
    if kind in ("body", "body?"):
        return parse_bare(value, ctx)
    if kind == "batch_input":
        raise RecordError("batch input line (a request without a response): no usage")
    if "ts" in value and "model" in value:
        raise RecordError("a tokenaudit native line (top-level ts and model), not this format")
    if not LITELLM_KEYS.isdisjoint(value):
        raise RecordError("a LiteLLM log record, not this format")
    raise RecordError(
        "not a provider response, request/response pair or batch output line (no usage)"
    )


def stage_rows(src: Source, ctx: StageContext) -> Iterator[JSON]:
    """One stage row per record: the call's columns, or ``reason`` set."""
    joins: list[dict[str, Request]] = []
    for line_no, value, reason in records(src):
        rec: JSON | None = None
        if reason is None:
            try:
                rec = _parse(value, src, ctx, joins)
            except RecordError as e:
                reason = str(e)
            except RecursionError:
                reason = "JSON nested too deeply"
            except (
                ValueError,
                TypeError,
                AttributeError,
                KeyError,
                IndexError,
                OverflowError,
            ) as e:
                reason = f"unexpected record structure ({type(e).__name__})"
        if rec is None or reason is not None:
            yield quarantined(line_no, reason or "unreadable record")
        else:
            yield {"line_no": line_no, "reason": None, **rec}


# Failed batch requests carry no timestamp: they take the batch's earliest one.
_DATE_BATCH_SQL = (
    """UPDATE stage SET ts = (SELECT min(ts) FROM stage
        WHERE reason IS NULL AND service_tier = 'batch' AND ts IS NOT NULL)
    WHERE reason IS NULL AND ts IS NULL""",
    "UPDATE stage SET reason = $undated WHERE reason IS NULL AND ts IS NULL",
)


def write_rows(con: duckdb.DuckDBPyConnection, rows: Iterator[JSON]) -> int:
    """``write_stage`` in chunks, so that a large file is never held as dicts at once."""
    chunks = iter(lambda: list(itertools.islice(rows, CHUNK)), [])
    read = write_stage(con, next(chunks, []))
    more = False
    try:
        for chunk in chunks:
            if not more:
                con.execute("CREATE OR REPLACE TEMP TABLE _openai_stage AS SELECT * FROM stage")
                more = True
            read += write_stage(con, chunk)
            con.execute("INSERT INTO _openai_stage SELECT * FROM stage")
        if more:
            write_stage(con, [])
            con.execute("INSERT INTO stage SELECT * FROM _openai_stage")
    finally:
        if more:
            con.execute("DROP TABLE IF EXISTS _openai_stage")
    for sql in _DATE_BATCH_SQL:
        con.execute(sql, {"undated": _UNDATED} if "$undated" in sql else None)
    return read


class OpenAILogsIngester:
    name = NAME
    kind = "usage"
    detects = (
        "JSON lines of OpenAI/Anthropic response bodies, recorded request/response pairs "
        "(streams included) or OpenAI Batch output"
    )

    def sniff(self, src: Source) -> bool:
        text = src.head.removeprefix(_BOM).decode("utf-8", "replace").lstrip()
        value: Any = None
        try:
            if text.startswith("["):  # a JSON array: its first element decides
                value = json.JSONDecoder().raw_decode(text, _skip(text, 1))[0]
            else:
                value = json.loads(text.split("\n", 1)[0])
        except (ValueError, RecursionError):
            if text.startswith("{") and len(src.head) == src.size_bytes:
                value = _loads(text)[0]  # one pretty-printed object
        return classify(value) in ("exchange", "batch_output", "body")

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        return write_rows(con, stage_rows(src, ctx))


INGESTER = OpenAILogsIngester()
