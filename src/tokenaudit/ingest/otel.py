"""OpenTelemetry traces as OTLP/JSON, with GenAI, OpenLLMetry or OpenInference attributes.

Files: what the OpenTelemetry Collector's file exporter and the SDKs' OTLP/JSON file
exporters write, one ``ExportTraceServiceRequest`` per line (JSON lines), or one such
object per file (pretty-printed or not; several concatenated objects and a JSON array of
them are read too). A line may also hold a bare ``ResourceSpans`` object. Structure::

    {"resourceSpans": [{"resource": {"attributes": [...]},
                        "scopeSpans": [{"scope": {"name"}, "spans": [
        {"traceId": "5b8e…", "spanId": "eee1…", "parentSpanId": "…", "name": "chat gpt-4o",
         "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "…",
         "status": {"code": 2, "message": "RateLimitError: …"},
         "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "52"}}]}]}]}]}

``instrumentationLibrarySpans`` (older exporters) and the proto field names
(``resource_spans``, ``start_time_unix_nano``, ``string_value``…) are accepted; ids may be
hex, base64 or Node ``Buffer`` objects (stored as lower hex); ``intValue`` and the
timestamps may be strings or numbers. OTLP logs and metrics files (``resourceLogs``,
``resourceMetrics``) are recognised and yield no records: GenAI log events and token
metrics repeat what the inference spans carry.

Records: one per model call, i.e. per span that carries usage (an input or output count
of a family below) while none of its descendants in the same trace, within the file,
does: agent, workflow and chain spans that repeat (sum) their children's usage are not
records, nor are spans without usage. A span repeated in the file (same trace and span
id) is quarantined after its first copy. ``line_no`` is the line where the span object
starts; when several records start on one line (JSON lines), records are numbered by
their ordinal in the file instead and quarantine reasons name the line.

Token families (one per span, in this order of preference):
* OTel GenAI / OpenLLMetry: ``gen_ai.usage.input_tokens`` | ``gen_ai.usage.prompt_tokens``
  | ``llm.usage.prompt_tokens``; ``…output_tokens`` | ``…completion_tokens``; cache reads
  ``gen_ai.usage.cache_read.input_tokens`` | ``gen_ai.usage.cache_read_input_tokens`` |
  ``llm.usage.cache_read_input_tokens``; cache writes ``gen_ai.usage.cache_creation.input_tokens``
  | ``…cache_creation_input_tokens`` | ``gen_ai.usage.cache_write_input_tokens``; reasoning
  ``gen_ai.usage.reasoning.output_tokens`` | ``…reasoning_tokens``; totals
  ``gen_ai.usage.total_tokens`` | ``llm.usage.total_tokens``.
* OpenInference: ``llm.token_count.prompt``, ``.completion``, ``.prompt_details.cache_read``,
  ``.prompt_details.cache_write``, ``.completion_details.reasoning``, ``.total``.
Inputs include cache reads and writes (uncached input = input - reads - writes), outputs
include reasoning, unless the counts show otherwise (see ``otel_attrs.usage``).

Columns: ``ts`` = span start (UTC); ``model`` = ``gen_ai.response.model``, else
``llm.model_name``, else ``gen_ai.request.model``; ``provider`` from
``gen_ai.provider.name`` / ``gen_ai.system`` / ``llm.provider`` / ``llm.system``;
``request_id`` = ``gen_ai.response.id``; status ERROR (or ``error.type``) -> error, with
``error_type`` from ``error.type``, an ``exception`` event's ``exception.type`` or the
class a status message starts with (never the message). Attribution (workflow, agent,
user, session, environment, project, ...) comes from the span, else its nearest ancestor,
else its resource (``otel_attrs.COLUMNS``); ``service.name`` is the project when nothing
better names one.

Local token counts (``local_*`` columns, ``tokens.count``): the prompt of a record's span is
read from ``gen_ai.input.messages`` (OTel GenAI parts: text, tool calls and results;
images, audio and files noted as not countable), else OpenLLMetry's flattened
``gen_ai.prompt.N.role`` / ``.content`` / ``.tool_calls.M.*``, else OpenInference's
``llm.input_messages.N.message.role`` / ``.content`` / ``.contents.M.message_content.*`` /
``.tool_calls.M.tool_call.function.*``; plus ``gen_ai.system_instructions`` and the tool
definitions in ``gen_ai.tool.definitions``, ``llm.request.functions.N.name`` /
``.description`` / ``.parameters`` and ``llm.tools.N.tool.json_schema``. The text is
counted and dropped: no message content is stored (output messages are never read).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from tokenaudit.errors import InputError
from tokenaudit.ingest.base import RecordError, write_stage
from tokenaudit.ingest.otel_attrs import JSON, Span, attributes, call_row, get, span_of, text
from tokenaudit.ingest.source import iter_lines
from tokenaudit.tokens.count import apply as apply_counts

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import StageContext
    from tokenaudit.ingest.source import Source

NAME = "otel"
MAX_DOCUMENT = 1 << 30  # a file that is not JSON lines is parsed in memory
COUNT_BATCH = 5_000  # rows whose prompts are counted at once (tokens.count.apply)
_BOM = "\ufeff"
_WS = re.compile(r"[ \t\r\n]*")
_DECODE = json.JSONDecoder().raw_decode
_SCAN: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_RESOURCES = ("resourceSpans", "resource_spans")
_SCOPES = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans",
           "instrumentation_library_spans")  # fmt: skip
_OTHER_SIGNALS = ("resourceLogs", "resource_logs", "resourceMetrics", "resource_metrics")
_HEAD = re.compile(r'\s*\[?\s*\{\s*"(?:resource_?[sS]pans|resource_?[lL]ogs|resource_?[mM]etrics)"'
                   r"\s*:\s*\[")  # fmt: skip
_BARE_HEAD = re.compile(r'\s*\{\s*"resource"\s*:\s*\{')
_BARE_SCOPES = re.compile(r'"(?:scope_?[sS]pans|instrumentation_?[lL]ibrary_?[sS]pans)"\s*:\s*\[')

# --- reading: JSON values, with the offset where each span object starts -------------------


class _Located:
    """A span object and the offset in its text where it starts."""

    __slots__ = ("offset", "value")

    def __init__(self, offset: int, value: Any) -> None:
        self.offset, self.value = offset, value


def _fail(s: str, i: int, msg: str) -> NoReturn:
    raise json.JSONDecodeError(msg, s, i)


def _ws(s: str, i: int) -> int:
    m = _WS.match(s, i)
    return m.end() if m else i


def _array(
    s: str, i: int, elem: Callable[..., tuple[Any, int]], found: list[_Located]
) -> tuple[list[Any], int]:
    out: list[Any] = []
    i = _ws(s, i + 1)
    if s.startswith("]", i):
        return out, i + 1
    while True:
        value, i = elem(s, i, found)
        out.append(value)
        i = _ws(s, i)
        if s.startswith(",", i):
            i = _ws(s, i + 1)
        elif s.startswith("]", i):
            return out, i + 1
        else:
            _fail(s, i, "Expecting ',' delimiter")


def _span(s: str, i: int, found: list[_Located]) -> tuple[_Located, int]:
    value, end = _DECODE(s, i)
    loc = _Located(i, value)
    found.append(loc)
    return loc, end


def _node(s: str, i: int, found: list[_Located]) -> tuple[Any, int]:
    """A value whose ``spans`` lists (at any depth of the OTLP envelope) are located."""
    if s.startswith("[", i):
        return _array(s, i, _node, found)
    if not s.startswith("{", i):
        value, end = _DECODE(s, i)
        return value, end
    out: JSON = {}
    i = _ws(s, i + 1)
    if s.startswith("}", i):
        return out, i + 1
    while True:
        if not s.startswith('"', i):
            _fail(s, i, "Expecting property name enclosed in double quotes")
        key, i = _SCAN(s, i + 1)
        i = _ws(s, i)
        if not s.startswith(":", i):
            _fail(s, i, "Expecting ':' delimiter")
        i = _ws(s, i + 1)
        if key == "spans" and s.startswith("[", i):
            out[key], i = _array(s, i, _span, found)
        elif key in _RESOURCES + _SCOPES:
            out[key], i = _node(s, i, found)
        else:
            out[key], i = _DECODE(s, i)
        i = _ws(s, i)
        if s.startswith(",", i):
            i = _ws(s, i + 1)
        elif s.startswith("}", i):
            return out, i + 1
        else:
            _fail(s, i, "Expecting ',' delimiter")


@dataclass
class _Doc:
    line: int  # where the value starts
    value: Any = None
    reason: str | None = None
    spans: dict[int, int] = field(default_factory=dict)  # id(_Located) -> line


def _parse_text(s: str, first_line: int) -> list[_Doc]:
    """Every top-level JSON value of ``s`` (raises JSONDecodeError, RecursionError)."""
    docs: list[_Doc] = []
    line, pos = first_line, 0
    i = _ws(s, 0)
    while i < len(s):
        found: list[_Located] = []
        line += s.count("\n", pos, i)
        pos = i
        doc = _Doc(line)
        doc.value, i = _node(s, i, found)
        at = line
        for loc in found:
            at += s.count("\n", pos, loc.offset)
            pos = loc.offset
            doc.spans[id(loc)] = at
        line = at
        docs.append(doc)
        i = _ws(s, i)
    return docs


def _bad_json(e: Exception, line: int = 1) -> str:
    if isinstance(e, RecursionError):
        return "JSON nested too deeply"
    if isinstance(e, json.JSONDecodeError):
        where = f"line {line + e.lineno - 1} column {e.colno}"
        return f"invalid JSON at {where} (malformed or truncated)"
    return "invalid JSON (malformed or truncated)"


def _is_export(value: Any) -> bool:
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return False
    keys = _RESOURCES + _OTHER_SIGNALS + (_SCOPES if "resource" in value else ())
    return any(isinstance(value.get(k), list) for k in keys)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _lines(src: Source) -> Iterator[_Doc]:
    for n, raw in iter_lines(src):
        if not raw.strip():
            continue
        try:
            s = raw.decode("utf-8").removeprefix(_BOM) if n == 1 else raw.decode("utf-8")
        except UnicodeDecodeError:
            yield _Doc(n, reason="invalid UTF-8")
            continue
        try:
            docs = _parse_text(s, n)
        except (ValueError, RecursionError) as e:
            yield _Doc(n, reason=_bad_json(e) if isinstance(e, RecursionError) else
                       "invalid JSON (malformed or truncated line)")  # fmt: skip
            continue
        yield from docs


def documents(src: Source) -> Iterator[_Doc]:
    """The file's JSON values: one per line (JSON lines), else the whole text's."""
    with open(src.data_path, "rb") as f:
        head = next((raw for raw in f if raw.strip()), b"").removeprefix(b"\xef\xbb\xbf")
    if _loads(head) is not None:
        yield from _lines(src)
        return
    if src.size_bytes > MAX_DOCUMENT:
        raise InputError(f"{src.path}: a single JSON document over 1 GiB; export JSON lines")
    raw = src.data_path.read_bytes()
    try:
        docs = _parse_text(raw.decode("utf-8").removeprefix(_BOM), 1)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError included
        lines = raw.splitlines()[1:]
        if any(_is_export(_loads(ln)) for ln in lines if ln.lstrip().startswith(b"{")):
            yield from _lines(src)  # JSON lines with a broken first line
        else:
            bad = isinstance(e, UnicodeDecodeError)
            yield _Doc(1, reason="invalid UTF-8" if bad else _bad_json(e))
        return
    yield from docs


# --- spans ----------------------------------------------------------------------------------


_UNEXPECTED = (RecursionError, TypeError, ValueError, AttributeError, OverflowError)


def _unexpected(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "span attributes nested too deeply"
    return f"unexpected span structure ({type(e).__name__})"


@dataclass
class _Bad:
    line: int
    order: int
    reason: str


def _items(doc: _Doc, counter: Iterator[int]) -> Iterator[Span | _Bad]:
    """The spans of one JSON value (or a record for a value that is not OTLP)."""
    exports = doc.value if isinstance(doc.value, list) else [doc.value]
    for ex in exports:
        if not isinstance(ex, dict):
            yield _Bad(doc.line, next(counter), "not an OTLP/JSON object")
            continue
        resources = next((ex[k] for k in _RESOURCES if k in ex), None)
        if resources is None:
            if any(k in ex for k in _SCOPES):
                resources = [ex]  # a bare ResourceSpans
            elif ex and not any(k in ex for k in _OTHER_SIGNALS):
                yield _Bad(doc.line, next(counter), "not an OTLP/JSON export (no resourceSpans)")
                continue
            else:
                continue  # {} (an empty export), or logs / metrics: no spans
        if not isinstance(resources, list):
            yield _Bad(doc.line, next(counter), "resourceSpans is not a list")
            continue
        for r in resources:
            if not isinstance(r, dict):
                yield _Bad(doc.line, next(counter), "resourceSpans item is not an object")
                continue
            res = r.get("resource")
            res_attrs = attributes(res.get("attributes")) if isinstance(res, dict) else {}
            for key in _SCOPES:
                scopes = r.get(key)
                if scopes is None:
                    continue
                for sc in scopes if isinstance(scopes, list) else [scopes]:
                    spans = sc.get("spans") if isinstance(sc, dict) else None
                    if not isinstance(sc, dict) or not isinstance(spans, list | None):
                        yield _Bad(doc.line, next(counter), f"{key} item is not an OTLP scope")
                        continue
                    meta = get(sc, "scope", "instrumentationLibrary")
                    if not isinstance(meta, dict):
                        meta = sc.get("instrumentation_library") or {}
                    scope = text(meta.get("name")) if isinstance(meta, dict) else None
                    for loc in spans or []:
                        line = doc.spans.get(id(loc), doc.line)
                        value = loc.value if isinstance(loc, _Located) else loc
                        order = next(counter)
                        if not isinstance(value, dict):
                            yield _Bad(line, order, "span is not a JSON object")
                            continue
                        try:
                            yield span_of(value, line, order, res_attrs, scope)
                        except _UNEXPECTED as e:
                            yield _Bad(line, order, _unexpected(e))


# --- records --------------------------------------------------------------------------------

Key = tuple[str | None, str]


def _ancestors(s: Span, nodes: dict[Key, Span]) -> list[Span]:
    out: list[Span] = []
    seen = {(s.trace, s.span)}
    cur = s
    while cur.parent is not None and len(out) < 1000:
        nxt = nodes.get((cur.trace, cur.parent))
        if nxt is None or (nxt.trace, nxt.span) in seen:
            break
        out.append(nxt)
        seen.add((nxt.trace, nxt.span))
        cur = nxt
    return out


def stage_rows(src: Source) -> list[JSON]:
    """One stage row per record (leaf usage span or unreadable value), in file order."""
    counter = iter(range(1, 1 << 62))
    items: list[Span | _Bad] = []
    for doc in documents(src):
        if doc.reason:
            items.append(_Bad(doc.line, next(counter), doc.reason))
        else:
            items.extend(_items(doc, counter))
    nodes: dict[Key, Span] = {}
    dup_of: dict[int, Span] = {}
    for it in items:
        if isinstance(it, Span) and it.span is not None:
            first_copy = nodes.setdefault((it.trace, it.span), it)
            if first_copy is not it:
                dup_of[it.order] = first_copy
    covered: set[Key] = set()  # spans with a usage-carrying descendant
    for it in items:
        if isinstance(it, Span) and it.family is not None and it.order not in dup_of:
            for a in _ancestors(it, nodes):
                if (a.trace, a.span) in covered:
                    break
                covered.add((a.trace, a.span))  # type: ignore[arg-type]

    def leaf(s: Span) -> bool:
        return s.family is not None and (s.span is None or (s.trace, s.span) not in covered)

    rows: list[tuple[int, JSON]] = []
    prompted: list[JSON] = []  # rows whose prompt is not counted yet
    for it in items:
        if isinstance(it, _Bad):
            rows.append((it.line, {"reason": it.reason}))
        elif it.order in dup_of:
            orig = dup_of[it.order]
            if leaf(orig):
                why = f"duplicate span {it.span} of trace {it.trace} (first on line {orig.line})"
                rows.append((it.line, {"reason": why}))
        elif leaf(it):
            try:
                row = call_row(it, _ancestors(it, nodes))
            except RecordError as e:
                row = {"reason": str(e)}
            except _UNEXPECTED as e:
                row = {"reason": _unexpected(e)}
            rows.append((it.line, row))
            if row.get("_prompt") is not None:
                prompted.append(row)
                if len(prompted) >= COUNT_BATCH:  # counted as we go: the text is freed
                    apply_counts(prompted)
                    prompted.clear()
        if isinstance(it, Span):
            it.prompt = None
    apply_counts(prompted)
    by_line = len({line for line, _ in rows}) == len(rows)
    out: list[JSON] = []
    for n, (line, cols) in enumerate(rows, start=1):
        if not by_line and cols.get("reason"):
            cols["reason"] = f"{cols['reason']} (record on line {line})"
        out.append({"line_no": line if by_line else n, "reason": None, **cols})
    return out


class OtelIngester:
    name = NAME
    kind = "usage"
    detects = (
        "OTLP/JSON traces (resourceSpans; collector file exporter JSON lines) with OTel GenAI, "
        "OpenLLMetry or OpenInference usage attributes"
    )

    def sniff(self, src: Source) -> bool:
        text = src.head.decode("utf-8", "replace").removeprefix(_BOM)
        first_line = next((ln for ln in text.splitlines() if ln.strip()), "")
        if _is_export(_loads(first_line.encode())):
            return True
        head = text.lstrip()
        return bool(_HEAD.match(head)) or (
            bool(_BARE_HEAD.match(head)) and bool(_BARE_SCOPES.search(head))
        )

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        return write_stage(con, stage_rows(src))


INGESTER = OtelIngester()
INGESTERS: tuple[OtelIngester, ...] = (INGESTER,)
