"""Langfuse: trace + observation exports, ingestion API batches, and their scores.

Shapes read (JSON documents, several documents in a row, or JSON lines; one file may mix them):

* a trace export: ``{"trace": {…, "observations": […], "scores": […], "corrections": […]},
  "observations": […]}`` (the UI's download), a trace with its ``observations`` and
  ``scores`` (``GET /api/public/traces/{id}``), a list of either, or an API page
  ``{"data": […], "meta": {…}}`` of traces, observations or scores;
* observations or scores alone (a list, a page, or one per line);
* ingestion batches ``{"batch": [{"id", "type", "timestamp", "body"}, …]}`` as SDKs and
  LiteLLM send them (``trace-create``, ``generation-create``/``-update``, ``span-*``,
  ``event-create``, ``score-create``, legacy ``observation-*``, ``sdk-log``).

Every copy of an observation (a trace's light copy and the full one, or the create and update
events of a batch) is merged by id before anything is counted: copies in event-timestamp order
(a create before an update at the same instant, then file order), later non-empty values win,
``metadata`` is merged and ``tags`` united, as Langfuse's ingestion does. A model call is a
merged ``GENERATION`` or ``EMBEDDING`` observation with no such observation below it (a
Vercel AI SDK ``ai.generateText`` generation wraps its ``doGenerate`` calls and repeats their
usage); spans, events, agents, tools and the other types are not calls. A call is staged on
the line where its first copy starts; one without usage, cost or error level is quarantined.

Token and cost rules and attribution are in ``ingest.langfuse_records``, the score-to-outcome
rule in ``ingest.langfuse_scores``. Scores that express an outcome go to ``outcome_stage``
keyed by trace (else session, else observation = request); other scores (evaluations such as
``toxicity`` 0.8) are not records. Detection (first 256 KiB): an ingestion event type with a
``body``; a document opening ``{"trace": {"id": …, "projectId": …``; or ``traceId`` beside a
key only Langfuse writes (``parentObservationId``, ``usageDetails``, ``costDetails``,
``providedModelName``, ``calculatedTotalCost``, ``observationId``) or a score ``dataType``.
Only the fields listed in ``FIELDS`` are kept from a record: no prompt or completion text.

Local token counts (``local_*`` columns): of a GENERATION, its ``input`` (a list of chat
messages, ``{"messages", "tools", "system"}``, a string, or JSON text of these; OTel GenAI
parts, Vercel AI SDK tool parts and LangChain tool calls are converted) with the tool
definitions in the input, ``toolDefinitions``, ``modelParameters.tools`` / ``functions`` and
metadata (``tools``, OTel attributes ``ai.prompt.tools``, ``gen_ai.tool.definitions``,
``llm.tools.N.tool.json_schema``, ``model_request_parameters.function_tools``), each name
counted once, and ``modelParameters.instructions`` as the system prompt; of an EMBEDDING,
its input texts. They are read off each copy of a call (``langfuse_prompt.prompt_fields``),
counted at staging and dropped; other observations' input is freed as it is read.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import InputError
from tokenaudit.ingest import langfuse_readers as readers
from tokenaudit.ingest import langfuse_records as rec
from tokenaudit.ingest.base import RecordError, StageContext, quarantined, write_stage
from tokenaudit.ingest.langfuse_prompt import prompt_fields
from tokenaudit.ingest.langfuse_scores import outcome_row
from tokenaudit.ingest.source import iter_lines
from tokenaudit.model import OUTCOME_STAGE_COLUMNS, outcome_stage_ddl, q

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester
    from tokenaudit.ingest.source import Source

NAME = "langfuse"
OBS_TYPES = frozenset(
    {"GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR",
     "EMBEDDING", "GUARDRAIL"}
)  # fmt: skip
CALL_TYPES = frozenset({"GENERATION", "EMBEDDING"})
SCORE_TYPES = frozenset({"NUMERIC", "BOOLEAN", "CATEGORICAL", "CORRECTION", "TEXT"})
QUIET_EVENTS = frozenset({"sdk-log", "dataset-run-item-create"})  # not calls, not outcomes
_EVENT = re.compile(r"([a-z]+)-(create|update)")
# The fields read, by entity (snake_case: Langfuse's own table exports); nothing else is kept.
_OBS_FIELDS = (
    "id", "traceId", "trace_id", "type", "name", "startTime", "start_time", "endTime", "model",
    "providedModelName", "modelParameters", "usageDetails", "usage_details", "usage",
    "costDetails", "cost_details", "totalCost", "calculatedTotalCost", "total_cost",
    "inputUsage", "outputUsage", "totalUsage", "promptTokens", "completionTokens",
    "totalTokens", "level", "statusMessage", "parentObservationId", "parent_observation_id",
    "promptName", "promptVersion", "environment", "version", "projectId", "metadata", "latency",
)  # fmt: skip
_TRACE_FIELDS = (
    "id", "name", "userId", "user_id", "sessionId", "session_id", "tags", "release", "version",
    "environment", "metadata", "projectId", "timestamp",
)  # fmt: skip
_SCORE_FIELDS = (
    "id", "name", "value", "stringValue", "dataType", "traceId", "sessionId", "observationId",
    "timestamp", "authorUserId", "source",
)  # fmt: skip
FIELDS = {"obs": _OBS_FIELDS, "trace": _TRACE_FIELDS, "score": _SCORE_FIELDS}
# Values never read past the first levels (prompt and completion text, tool payloads, comments).
SKIP_KEYS = frozenset(
    {"input", "output", "prompt", "completion", "toolDefinitions", "toolCalls", "comment",
     "longStringValue", "statusMessageDetails"}
)  # fmt: skip
# Of those, the ones a model call's prompt is counted from: kept until ``Collected.add``.
PROMPT_KEYS = ("input", "toolDefinitions")
MAX_DEPTH = 5  # containers this shallow are walked to note where each object starts
_WS = re.compile(r"[ \t\r\n]*")
_MIN = dt.datetime.min
UNKNOWN = "not a Langfuse trace, observation, score or ingestion event"

_SNIFF_EVENT = re.compile(
    rb'"type"\s*:\s*"(?:trace|generation|span|event|score|observation)-(?:create|update)"'
)
_SNIFF_KEYS = re.compile(
    rb'"(?:parentObservationId|usageDetails|costDetails|providedModelName|calculatedTotalCost'
    rb'|observationId)"\s*:'
)
_SNIFF_SCORE = re.compile(rb'"dataType"\s*:\s*"(?:NUMERIC|BOOLEAN|CATEGORICAL|CORRECTION)"')
_SNIFF_TRACE_ID = re.compile(rb'"traceId"\s*:')
# The UI's trace download: the trace (whose input may fill the head) comes first.
_SNIFF_EXPORT = re.compile(rb'\A\s*\{\s*"trace"\s*:\s*\{\s*"id"\s*:[^{}]*"projectId"\s*:')


# --- reading: JSON with the line each object starts on ------------------------------------


def _skip(text: str, pos: int) -> int:
    """Past the whitespace at ``pos``."""
    m = _WS.match(text, pos)
    return m.end() if m else pos


class _Doc:
    """JSON values of a text in a row, noting where each shallow object starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.dec = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
        self.starts: dict[int, int] = {}  # id(object) -> offset
        self.items: dict[int, list[int]] = {}  # id(list) -> offsets of its elements
        self.lines: dict[int, int] = {}  # offset -> line
        self.found: list[Any] = []  # the top-level values

    def values(self) -> list[Any]:
        text, out = self.text, self.found
        pos = _skip(text, 0)
        while pos < len(text):
            value, pos = self._value(pos, 0)
            out.append(value)
            pos = _skip(text, pos)
        line, prev = 1, 0
        offsets = {*self.starts.values(), *(o for v in self.items.values() for o in v)}
        for off in sorted(offsets):
            line += text.count("\n", prev, off)
            prev = off
            self.lines[off] = line
        return out

    def line(self, value: Any, default: int) -> int:
        off = self.starts.get(id(value))
        return default if off is None else self.lines.get(off, default)

    def elements(self, values: list[Any], default: int) -> list[tuple[int, Any]]:
        """(line, element) for the elements of a list, scalars included."""
        offsets = self.items.get(id(values))
        if offsets is None or len(offsets) != len(values):
            return [(self.line(v, default), v) for v in values]
        return [(self.lines.get(o, default), v) for o, v in zip(offsets, values, strict=True)]

    def _value(self, pos: int, depth: int) -> tuple[Any, int]:
        ch = self.text[pos : pos + 1]
        if depth < MAX_DEPTH and ch in ("{", "["):
            return self._container(pos, depth, ch == "{")
        value, end = self.dec.raw_decode(self.text, pos)
        return value, end

    def _container(self, pos: int, depth: int, is_obj: bool) -> tuple[Any, int]:
        text, close = self.text, "}" if is_obj else "]"
        out: Any = {} if is_obj else []
        self.starts[id(out)] = pos
        if not is_obj:
            self.items[id(out)] = []
        pos = _skip(text, pos + 1)
        if text.startswith(close, pos):
            return out, pos + 1
        while True:
            if is_obj:
                if not text.startswith('"', pos):
                    raise json.JSONDecodeError("Expecting property name", text, pos)
                key, pos = self.dec.raw_decode(text, pos)
                pos = _skip(text, pos)
                if not text.startswith(":", pos):
                    raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
                pos = _skip(text, pos + 1)
                if key in SKIP_KEYS:  # text is read past, never kept (counts are)
                    value, pos = self.dec.raw_decode(text, pos)
                    if _number(value) or key in PROMPT_KEYS:
                        out[key] = value
                else:
                    out[key], pos = self._value(pos, depth + 1)
            else:
                self.items[id(out)].append(pos)
                value, pos = self._value(pos, depth + 1)
                out.append(value)
            pos = _skip(text, pos)
            if text.startswith(",", pos):
                pos = _skip(text, pos + 1)
            elif text.startswith(close, pos):
                return out, pos + 1
            else:
                raise json.JSONDecodeError(f"Expecting ',' or '{close}'", text, pos)


_DEC = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
_BOM = b"\xef\xbb\xbf"


def _line_value(raw: bytes) -> tuple[Any, str | None]:
    """One line's JSON value, or the reason it has none."""
    try:
        return _DEC.decode(raw.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "invalid UTF-8"
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError:
        return None, "invalid JSON (malformed or truncated line)"


def _lines(src: Source) -> Iterator[tuple[int, Any, str | None]]:
    """(line, value, reason) for each non-blank line."""
    for n, raw in iter_lines(src):
        if n == 1:
            raw = raw.removeprefix(_BOM)
        if raw.strip():
            yield n, *_line_value(raw)


def _document(src: Source) -> tuple[_Doc | None, tuple[int, str] | None]:
    """The file as a run of JSON documents, or the first error (line, message)."""
    raw = src.data_path.read_bytes().removeprefix(_BOM)
    try:
        doc = _Doc(raw.decode("utf-8"))
        doc.values()
        return doc, None
    except UnicodeDecodeError as e:
        return None, (raw.count(b"\n", 0, e.start) + 1, "invalid UTF-8")
    except json.JSONDecodeError as e:
        return None, (e.lineno, f"{e.msg} (column {e.colno})")
    except RecursionError:
        return None, (1, "JSON nested too deeply")


# --- collecting copies of traces, observations and scores -----------------------------------


@dataclass
class Copy:
    line: int
    order: int
    body: dict[str, Any]
    ts: dt.datetime | None = None  # the ingestion event's timestamp
    update: bool = False
    type: str | None = None  # observation type
    trace_id: str | None = None  # the trace an export nests it in


@dataclass
class Collected:
    doc: _Doc | None
    traces: dict[str, list[Copy]] = field(default_factory=dict)
    obs: dict[str, list[Copy]] = field(default_factory=dict)
    scores: dict[str, list[Copy]] = field(default_factory=dict)
    bad: list[tuple[int, int, str]] = field(default_factory=list)  # line, order, reason
    order: int = 0

    def line(self, value: Any, default: int) -> int:
        return self.doc.line(value, default) if self.doc else default

    def elements(self, values: list[Any], default: int) -> list[tuple[int, Any]]:
        return self.doc.elements(values, default) if self.doc else [(default, v) for v in values]

    def reject(self, line: int, reason: str) -> None:
        self.order += 1
        self.bad.append((line, self.order, reason))

    def add(self, kind: str, key: Any, c: Copy) -> None:
        self.order += 1
        c.order = self.order
        body = c.body
        c.body = {k: body[k] for k in FIELDS[kind] if k in body}
        md = readers.metadata(c.body["metadata"]) if "metadata" in c.body else {}
        if kind == "obs" and (c.type is None or c.type in CALL_TYPES):
            c.body.update(prompt_fields(body, md))  # counted at staging, then dropped
        for k in PROMPT_KEYS:  # the text read with the record is freed now
            body.pop(k, None)
        if "metadata" in c.body:
            c.body["metadata"] = rec.slim_metadata(md)
        if isinstance(c.body.get("modelParameters"), dict):
            params = c.body["modelParameters"]
            c.body["modelParameters"] = {
                k: params[k] for k in ("system", "service_tier") if k in params
            }
        table = {"trace": self.traces, "obs": self.obs, "score": self.scores}[kind]
        k = readers.text(key, 300) or f"\0{self.order}"  # no id: a record of its own
        table.setdefault(k, []).append(c)

    def value(self, v: Any, line: int, trace_id: str | None = None) -> None:
        """One top-level value, or an element of a list or page."""
        if isinstance(v, list):
            for n, el in self.elements(v, line):
                self.value(el, n, trace_id)
        elif not isinstance(v, dict):
            self.reject(line, "not a JSON object")
        elif isinstance(v.get("batch"), list):
            for n, e in self.elements(v["batch"], line):
                self.event(e, n)
        elif isinstance(v.get("trace"), dict):
            self.trace(v["trace"], self.line(v["trace"], line))
            self.nested(v, line, readers.text(v["trace"].get("id")))
        elif isinstance(v.get("data"), list) and v.keys() <= {"data", "meta"}:
            self.value(v["data"], line, trace_id)
        elif isinstance(v.get("type"), str) and isinstance(v.get("body"), dict):
            self.event(v, line)
        elif _is_score(v):
            self.add("score", v.get("id"), Copy(line, 0, v))
        elif _is_observation(v):
            kind = str(v.get("type") or "").upper() or None
            self.add("obs", v.get("id"), Copy(line, 0, v, type=kind, trace_id=trace_id))
        elif "id" in v and ("observations" in v or "scores" in v or "timestamp" in v):
            self.trace(v, line)
        else:
            self.reject(line, UNKNOWN)

    def trace(self, t: dict[str, Any], line: int) -> None:
        self.add("trace", t.get("id"), Copy(line, 0, t))
        self.nested(t, line, readers.text(t.get("id")))

    def nested(self, parent: dict[str, Any], line: int, trace_id: str | None) -> None:
        for key in ("observations", "scores", "corrections"):
            items = parent.get(key)
            for n, el in self.elements(items if isinstance(items, list) else [], line):
                if isinstance(el, dict):  # a list of ids (API trace lists) holds nothing
                    self.value(el, n, trace_id)

    def event(self, e: Any, line: int) -> None:
        body = e.get("body") if isinstance(e, dict) else None
        etype = str(e.get("type") or "").strip().lower() if isinstance(e, dict) else ""
        if not isinstance(body, dict) or not etype:
            self.reject(line, "ingestion event without type or body")
            return
        try:
            ts = readers.parse_ts(e.get("timestamp"), "event timestamp")
        except RecordError:
            ts = None
        m = _EVENT.fullmatch(etype)
        if etype == "trace-create":
            self.add("trace", body.get("id"), Copy(line, 0, body, ts))
        elif etype == "score-create":
            score = {**body, "timestamp": body.get("timestamp") or e.get("timestamp")}
            self.add("score", body.get("id") or e.get("id"), Copy(line, 0, score, ts))
        elif m and (m[1].upper() in OBS_TYPES or m[1] == "observation"):
            kind = str(body.get("type") or "").upper() if m[1] == "observation" else m[1].upper()
            c = Copy(line, 0, body, ts, m[2] == "update", kind or None)
            self.add("obs", body.get("id"), c)
        elif etype not in QUIET_EVENTS:
            self.reject(line, f"unknown ingestion event type {etype[:40]!r}")


def _number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _is_score(v: dict[str, Any]) -> bool:
    if "startTime" in v or "type" in v:
        return False
    return str(v.get("dataType")) in SCORE_TYPES or (
        "name" in v and "value" in v and any(k in v for k in ("traceId", "observationId"))
    )


def _is_observation(v: dict[str, Any]) -> bool:
    if str(v.get("type") or "").upper() in OBS_TYPES:
        return any(k in v for k in ("traceId", "startTime", "id"))
    return "startTime" in v and ("traceId" in v or "parentObservationId" in v)


# --- merging copies ---------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == "{}"


def merge(copies: list[Copy]) -> tuple[int, dict[str, Any], Copy]:
    """(first line, merged body, first copy in event order): later non-empty values win."""
    ordered = sorted(copies, key=lambda c: (c.ts or _MIN, c.update, c.order))
    out: dict[str, Any] = {}
    for c in ordered:
        for k, v in c.body.items():
            if _empty(v):
                continue
            if k == "metadata" and k in out:
                out[k] = {**readers.metadata(out[k]), **readers.metadata(v)}
            elif k == "tags" and isinstance(v, list) and isinstance(out.get(k), list):
                out[k] = sorted({t for t in (*out[k], *v) if isinstance(t, str)})
            else:
                out[k] = v
        out["type"] = c.type or out.get("type")
        if c.trace_id and not out.get("traceId"):
            out["traceId"] = c.trace_id
    return min(c.line for c in copies), out, ordered[0]


def _calls(col: Collected) -> list[tuple[int, dict[str, Any], Copy, str | None]]:
    """(line, merged observation, first copy, agent) of each model call, in file order."""
    merged = {k: merge(v) for k, v in col.obs.items()}
    parent = {k: readers.text(m[1].get("parentObservationId")) for k, m in merged.items()}
    kinds = {k: str(m[1].get("type") or "").upper() for k, m in merged.items()}
    wrappers: set[str] = set()
    for k, kind in kinds.items():
        p, seen = parent[k] if kind in CALL_TYPES else None, {k}
        while p and p not in seen:  # every ancestor of a call has a call below it
            seen.add(p)
            wrappers.add(p)
            p = parent.get(p)
    out = []
    for k, (line, o, first) in merged.items():
        if kinds[k] not in CALL_TYPES or k in wrappers:
            continue
        p, seen, agent = parent[k], {k}, None
        while p and p not in seen and agent is None:
            seen.add(p)
            if kinds.get(p) == "AGENT":
                agent = readers.text(merged[p][1].get("name"))
            p = parent.get(p)
        out.append((line, o, first, agent))
    out.sort(key=lambda t: (t[0], t[2].order))
    return out


# --- staging ---------------------------------------------------------------------------------


def collect(src: Source) -> Collected:
    """Every copy of a trace, observation and score in the file, and the bad records.

    JSON lines (the first non-blank line is a whole value) are read line by line; anything
    else is read whole as JSON documents, falling back to lines when that fails but the
    first lines are objects of their own (JSON lines with a broken first line)."""
    lines = _lines(src)
    first = list(itertools.islice(lines, 3))
    if not first or first[0][2] is not None:
        doc, error = _document(src)
        if doc is not None:
            col = Collected(doc)
            for v in doc.found:
                col.value(v, doc.line(v, 1))
            return col
        if not any(isinstance(v, dict) for _, v, _ in first) and error:
            raise InputError(f"{src.path}: invalid JSON at line {error[0]}: {error[1]}")
    col = Collected(None)
    for n, v, reason in itertools.chain(first, lines):
        if reason is None:
            col.value(v, n)
        else:
            col.reject(n, reason)
    return col


def stage_rows(col: Collected) -> list[dict[str, Any]]:
    """One stage row per model call or bad record, with ``_order`` (file order)."""
    traces = {k: merge(v)[1] for k, v in col.traces.items()}
    rows = [{**quarantined(line, reason), "_order": n} for line, n, reason in col.bad]
    for line, o, first, agent in _calls(col):
        trace = traces.get(readers.text(o.get("traceId")) or "", {})
        base = {"line_no": line, "_order": first.order}
        try:
            rows.append({**base, "reason": None, **rec.call_row(o, trace, agent, first.ts)})
        except RecordError as e:
            rows.append({**base, "reason": str(e)})
        except RecursionError:
            rows.append({**base, "reason": "JSON nested too deeply"})
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as e:
            rows.append({**base, "reason": f"unexpected record structure ({type(e).__name__})"})
    return rows


def outcome_rows(col: Collected) -> list[dict[str, Any]]:
    """One outcome_stage row per score that expresses an outcome, with ``_order``."""
    out = []
    for copies in col.scores.values():
        line, score, first = merge(copies)
        row = outcome_row(score, first.ts)
        if row is not None:
            out.append({"line_no": line, "_order": first.order, **row})
    return out


def number(rows: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> None:
    """Sort by file order; when several calls start on one line (minified JSON, a whole
    trace per JSON line), number every record of the file by its ordinal instead, so that a
    line number names one record."""
    lines = [r["line_no"] for r in rows]
    if len(set(lines)) != len(lines):
        every = sorted([*rows, *outcomes], key=lambda r: (r["line_no"], r["_order"]))
        for n, r in enumerate(every, start=1):
            r["line_no"] = n
    rows.sort(key=lambda r: r["line_no"])
    outcomes.sort(key=lambda r: r["line_no"])


def write_outcomes(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        con.execute("DROP TABLE IF EXISTS outcome_stage")
        return
    con.execute(outcome_stage_ddl())
    names = ["line_no", "reason", *(n for n, _ in OUTCOME_STAGE_COLUMNS)]
    marks = ", ".join("?" for _ in names)
    con.executemany(
        f"INSERT INTO outcome_stage ({', '.join(q(n) for n in names)}) VALUES ({marks})",
        [[r.get(n) for n in names] for r in rows],
    )


class LangfuseIngester:
    name = NAME
    kind = "usage"
    detects = (
        "Langfuse trace/observation exports (JSON or JSON lines, scores included) and "
        'ingestion batches ({"batch": [trace-create, generation-create, ...]})'
    )

    def sniff(self, src: Source) -> bool:
        head = src.head.removeprefix(b"\xef\xbb\xbf")
        if _SNIFF_EXPORT.match(head):
            return True
        if _SNIFF_EVENT.search(head):
            return b'"body"' in head
        if not _SNIFF_TRACE_ID.search(head):
            return False
        return bool(_SNIFF_KEYS.search(head) or _SNIFF_SCORE.search(head))

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        del ctx  # nothing to hash: the format carries no API keys, and no text is kept
        col = collect(src)
        rows, outcomes = stage_rows(col), outcome_rows(col)
        del col  # the copies are no longer needed: free them before the rows are written
        number(rows, outcomes)
        read = write_stage(con, rows)
        try:
            write_outcomes(con, outcomes)
        except BaseException:
            con.execute("DROP TABLE IF EXISTS outcome_stage")
            raise
        return read


INGESTERS: tuple[Ingester, ...] = (LangfuseIngester(),)
