"""OTLP/JSON values and the GenAI attribute families, for ``ingest.otel``.

Decodes OTLP ``AnyValue`` objects and attribute lists (keeping only the attributes
tokenaudit uses: message content leaves this module only as a ``tokens.prompt.Prompt``
to be counted, see ``span_prompt``), normalises trace and span ids, timestamps and status,
and turns one span's usage attributes into the non-overlapping token columns. The
attribute names and their sources are listed in the module docstring of ``ingest.otel``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from tokenaudit.ingest.base import RecordError, as_count, as_money, clean_tags, redact
from tokenaudit.ingest.openai_parse import tier
from tokenaudit.ingest.otel_prompt import prompt_attributes, span_prompt
from tokenaudit.pricing.names import PROVIDER_ALIASES

JSON = dict[str, Any]

# --- the usage families ---------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """Attribute names of one usage convention; the first present name of a list wins."""

    name: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    cache_read: tuple[str, ...]
    cache_write: tuple[str, ...]
    reasoning: tuple[str, ...]
    total: tuple[str, ...]

    def names(self) -> tuple[str, ...]:
        return (*self.input, *self.output, *self.cache_read, *self.cache_write,
                *self.reasoning, *self.total)  # fmt: skip


# OTel GenAI semantic conventions and the OpenLLMetry (Traceloop) names for the same
# counts: one lineage, where the input count includes cache reads and writes.
_GA, _LU = "gen_ai.usage.", "llm.usage."
GEN_AI = Family(
    "gen_ai",
    input=(_GA + "input_tokens", _GA + "prompt_tokens", _LU + "prompt_tokens"),
    output=(_GA + "output_tokens", _GA + "completion_tokens", _LU + "completion_tokens"),
    cache_read=(_GA + "cache_read.input_tokens", _GA + "cache_read_input_tokens",
                _LU + "cache_read_input_tokens"),
    cache_write=(_GA + "cache_creation.input_tokens", _GA + "cache_creation_input_tokens",
                 _GA + "cache_write_input_tokens", _LU + "cache_creation_input_tokens"),
    reasoning=(_GA + "reasoning.output_tokens", _GA + "reasoning_tokens",
               _LU + "reasoning_tokens"),
    total=(_GA + "total_tokens", _LU + "total_tokens"),
)  # fmt: skip
_TC = "llm.token_count."
OPENINFERENCE = Family(
    "openinference",
    input=(_TC + "prompt",), output=(_TC + "completion",),
    cache_read=(_TC + "prompt_details.cache_read",),
    cache_write=(_TC + "prompt_details.cache_write",),
    reasoning=(_TC + "completion_details.reasoning",), total=(_TC + "total",),
)  # fmt: skip
FAMILIES = (GEN_AI, OPENINFERENCE)  # in order of preference when a span carries both
_SPEC_NAMES = frozenset({"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"})

# --- attribution ----------------------------------------------------------------------------

ASSOC = "traceloop.association.properties."
_META = "metadata."  # OpenInference ``metadata`` (a JSON object as text), flattened here


def _also(*keys: str) -> tuple[str, ...]:
    """``keys`` as association properties (OpenLLMetry) and OpenInference metadata keys."""
    return tuple(p + k for k in keys for p in (ASSOC, _META))


# Column -> attribute names, most specific first. Looked up on the span, then on its
# ancestors (nearest first), then on the span's resource.
COLUMNS: dict[str, tuple[str, ...]] = {
    "workflow": ("gen_ai.workflow.name", "traceloop.workflow.name", *_also("workflow")),
    "team": _also("team"),
    "tenant": _also("tenant", "tenant_id"),
    "user": ("user.id", "enduser.id", *_also("user_id", "user"), "gen_ai.user"),
    "agent": ("gen_ai.agent.name", "agent.name", "_agent", *_also("agent")),
    "prompt_version": ("traceloop.prompt.version", "llm.prompt_template.version",
                       *_also("prompt_version")),
    "environment": ("deployment.environment.name", "deployment.environment",
                    *_also("environment", "env")),
    "project": ("openinference.project.name", *_also("project")),  # service.name: last resort
    "session_id": ("gen_ai.conversation.id", "session.id", *_also("session_id", "session")),
}  # fmt: skip
TAG_KEYS = {
    "gen_ai.operation.name": "operation", "llm.request.type": "operation",
    "openinference.span.kind": "span_kind", "traceloop.span.kind": "span_kind",
    "traceloop.entity.name": "entity", "gen_ai.agent.id": "agent_id",
}  # fmt: skip
MODEL_KEYS = ("gen_ai.response.model", "llm.response.model_name", "llm.model_name",
              "gen_ai.request.model", "llm.request.model_name")  # fmt: skip
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_OTHER = (
    "gen_ai.response.id", "llm.cost.total", "error.type", "http.response.status_code",
    "http.status_code", "openai.response.service_tier", "gen_ai.openai.response.service_tier",
    "agent.name", "graph.node.id", "traceloop.span.kind", "service.name",
)  # fmt: skip
KEEP = frozenset(
    {k for f in FAMILIES for k in f.names()}
    | {k for keys in COLUMNS.values() for k in keys if not k.startswith(_META)}
    | set(TAG_KEYS)
    | set(MODEL_KEYS)
    | set(PROVIDER_KEYS)
    | set(_OTHER)
)
_CONTENT = ("gen_ai.prompt", "gen_ai.completion", "gen_ai.input", "gen_ai.output",
            "llm.input_messages", "llm.output_messages", "input.value", "output.value")  # fmt: skip
_MAX_TEXT = 200  # longer attribute text is not kept
_MAX_METADATA = 16 << 10

# --- values ---------------------------------------------------------------------------------

_SCALARS = (
    ("stringValue", "string_value"),
    ("boolValue", "bool_value"),
    ("intValue", "int_value"),
    ("doubleValue", "double_value"),
    ("bytesValue", "bytes_value"),
)
_INT = re.compile(r"\s*-?\d{1,30}\s*")
_SPECIAL_DOUBLES = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def any_value(v: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value (a bare JSON scalar is taken as is)."""
    if not isinstance(v, dict):
        return v
    for camel, snake in _SCALARS:
        if camel in v or snake in v:
            x = v.get(camel, v.get(snake))
            if camel == "intValue" and isinstance(x, str) and _INT.fullmatch(x):
                return int(x)
            if camel == "doubleValue" and isinstance(x, str):
                return _SPECIAL_DOUBLES.get(x, x)
            return x
    arr = v.get("arrayValue", v.get("array_value"))
    if isinstance(arr, dict):
        return [any_value(x) for x in arr.get("values") or []]
    kv = v.get("kvlistValue", v.get("kvlist_value"))
    if isinstance(kv, dict):
        return attributes(kv.get("values"), keep_all=True)
    return None


def _kept(key: str) -> bool:
    return key in KEEP or key.startswith(ASSOC)


def attributes(raw: Any, keep_all: bool = False) -> JSON:
    """An attribute list (``[{"key", "value"}]``, or leniently a plain object) as a dict.

    Only attributes tokenaudit uses are kept (``keep_all`` for nested kvlists); message
    content (prompts, completions, input/output values) is never kept.
    """
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, list):
        pairs = [(a.get("key"), a.get("value")) for a in raw if isinstance(a, dict)]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    out: JSON = {}
    for key, value in pairs:
        if not isinstance(key, str) or key.startswith(_CONTENT):
            continue
        if key == "metadata":  # OpenInference: user metadata as a JSON object in text
            out.update(_metadata(any_value(value)))
        elif keep_all or _kept(key):
            out[key] = any_value(value)
    return out


def _metadata(value: Any) -> JSON:
    if isinstance(value, str) and len(value) <= _MAX_METADATA:
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    if not isinstance(value, dict):
        return {}
    return {_META + k: v for k, v in value.items() if isinstance(v, str | int | float)}


def text(value: Any) -> str | None:
    """A short identifier-like attribute value as text (secret-looking parts redacted)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    s = str(value).strip()
    return redact(s) if s and len(s) <= _MAX_TEXT else None


def first(attrs: JSON, keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for k in keys:
        if attrs.get(k) is not None:
            return k, attrs[k]
    return None


# --- ids, time, status ----------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]+")


def norm_id(value: Any, size: int) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id as lower hex: hex, base64 or a Buffer object."""
    if isinstance(value, dict) and isinstance(value.get("data"), list):  # Node Buffer JSON
        data = value["data"]
        if len(data) == size and all(isinstance(b, int) and 0 <= b < 256 for b in data):
            return bytes(data).hex() if any(data) else None
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    s = value.strip()
    if len(s) == 2 * size and _HEX.fullmatch(s):
        return None if set(s) == {"0"} else s.lower()
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        return raw.hex() if any(raw) else None
    return text(s)  # not OTLP-shaped: kept as given


_MIN_TS = dt.datetime(2000, 1, 1)
_MAX_TS = dt.datetime(2100, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1)


def unix_nanos(value: Any) -> int | None:
    """``*TimeUnixNano``: a decimal string or a JSON number; None when absent or invalid."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def start_ts(raw: Any) -> dt.datetime:
    nanos = unix_nanos(raw)
    if not nanos:
        shown = str(raw)[:30] if raw is not None else "absent"
        raise RecordError(f"missing or invalid startTimeUnixNano: {shown!r}")
    ts = _EPOCH + dt.timedelta(microseconds=nanos // 1000) if nanos < 2**62 else _MAX_TS
    if not _MIN_TS <= ts < _MAX_TS:
        raise RecordError(f"startTimeUnixNano out of range: {nanos}")
    return ts


def get(obj: JSON, camel: str, snake: str) -> Any:
    """A field by its JSON (lowerCamelCase) or its proto (snake_case) name."""
    return obj.get(camel, obj.get(snake))


def is_error(status: Any) -> bool:
    code = status.get("code") if isinstance(status, dict) else None
    return str(code).strip().upper() in ("2", "ERROR", "STATUS_CODE_ERROR")


_CLASS = re.compile(
    r"\s*((?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*)?(?:Error|Exception|Timeout|Failure|Exceeded))\s*(?::|$)"
)


def error_class(message: Any) -> str | None:
    """The exception class a status message starts with (``RateLimitError: ...``), never
    the message itself."""
    m = _CLASS.match(message) if isinstance(message, str) else None
    return m.group(1)[:100] if m else None


# ``gen_ai.system`` values that name the agent framework, not who served the call.
_FRAMEWORKS = frozenset({"strands-agents"})


def provider_id(value: Any) -> str | None:
    """A catalogue provider id for ``gen_ai.provider.name`` / ``gen_ai.system`` / ``llm.*``."""
    s = text(value)
    if s is None:
        return None
    s = s.lower()
    extra = {
        "azure.ai.inference": "azure", "az.ai.inference": "azure", "az.ai.openai": "azure",
        "azure_ai_inference": "azure", "gcp.gen_ai": "google", "vertexai": "google",
        "google_genai": "google", "mistralai": "mistral", "amazon-bedrock": "aws",
        "ibm.watsonx.ai": "ibm", "watsonx": "ibm", "gcp": "google", "az": "azure",
    }  # fmt: skip
    if s in _FRAMEWORKS:
        return None
    for name in (s, s.split(".", 1)[0]):  # "openai.responses" (Vercel AI SDK) -> openai
        if name in extra:
            return extra[name]
        if name in PROVIDER_ALIASES:
            return PROVIDER_ALIASES[name]
    return s


# --- usage ----------------------------------------------------------------------------------


def family_of(attrs: JSON) -> Family | None:
    """The usage family a span's counts are read from: the first one it carries."""
    for fam in FAMILIES:
        if first(attrs, fam.input + fam.output) is not None:
            return fam
    return None


@dataclass(frozen=True)
class Usage:
    input: int  # uncached
    cache_read: int
    cache_write: int
    output: int  # reasoning included
    reasoning: int
    label: str  # gen_ai | openllmetry | openinference
    flags: tuple[str, ...]  # conventions inferred from the counts


def _count(attrs: JSON, keys: tuple[str, ...]) -> int:
    hit = first(attrs, keys)
    return as_count(hit[1], hit[0]) if hit else 0


def usage(attrs: JSON, fam: Family) -> Usage:
    """The non-overlapping counts of one span (RecordError names a bad attribute).

    Input counts of every family include cache reads and writes, output includes
    reasoning (the specifications, and the instrumentations that follow them). A source
    that evidently reports otherwise is read its way: a stated total equal to
    input + output + cache (+ reasoning) says the input (output) excludes them, and so
    does an input smaller than its cached part (an output smaller than its reasoning).
    """
    inp, out = _count(attrs, fam.input), _count(attrs, fam.output)
    read, write = _count(attrs, fam.cache_read), _count(attrs, fam.cache_write)
    reasoning = _count(attrs, fam.reasoning)
    hit = first(attrs, fam.total)
    total = as_count(hit[1], hit[0]) if hit else None
    cache = read + write
    options = [(ec, er) for ec in (False, True) for er in (False, True)
               if (ec or inp >= cache) and (er or out >= reasoning)]  # fmt: skip
    excl_cache, excl_reasoning = options[0]
    for ec, er in options:
        if total == inp + out + (cache if ec else 0) + (reasoning if er else 0):
            excl_cache, excl_reasoning = ec, er
            break
    used = {k for k in fam.input + fam.output if attrs.get(k) is not None}
    label = fam.name
    if fam is GEN_AI and not used & _SPEC_NAMES:
        label = "openllmetry"  # its LLM_USAGE_* names (gen_ai.usage.prompt_tokens, llm.usage.*)
    flags = (("input_excludes_cache",) if excl_cache and cache else ()) + (
        ("output_excludes_reasoning",) if excl_reasoning and reasoning else ()
    )
    return Usage(
        input=inp if excl_cache else inp - cache,
        cache_read=read,
        cache_write=write,
        output=out + reasoning if excl_reasoning else out,
        reasoning=reasoning,
        label=label,
        flags=flags,
    )


# --- one span: its record ---------------------------------------------------------------

_MAPPED_ASSOC = {k[len(ASSOC) :] for keys in COLUMNS.values() for k in keys if k.startswith(ASSOC)}


@dataclass
class Span:
    line: int
    order: int
    trace: str | None
    span: str | None
    parent: str | None
    name: str | None
    start: Any
    end: Any
    error: bool
    error_type: str | None
    attrs: JSON
    resource: JSON
    scope: str | None
    family: Family | None
    prompt: JSON | None = None  # a usage span's message attributes, until its row is made


def _exception_type(events: Any) -> str | None:
    for ev in events if isinstance(events, list) else []:
        if isinstance(ev, dict) and ev.get("name") == "exception":
            for a in ev.get("attributes") or []:
                if isinstance(a, dict) and a.get("key") == "exception.type":
                    return text(any_value(a.get("value")))
    return None


def span_of(v: JSON, line: int, order: int, resource: JSON, scope: str | None) -> Span:
    attrs = attributes(v.get("attributes"))
    name = text(v.get("name"))
    if str(attrs.get("traceloop.span.kind", "")).lower() == "agent":
        attrs["_agent"] = attrs.get("traceloop.entity.name")
    elif str(attrs.get("openinference.span.kind", "")).upper() == "AGENT":
        attrs["_agent"] = attrs.get("agent.name") or attrs.get("graph.node.id") or name
    status = v.get("status")
    err_attr = text(attrs.get("error.type"))
    error = is_error(status) or err_attr is not None
    error_type = err_attr or _exception_type(v.get("events"))
    if error and error_type is None and isinstance(status, dict):
        error_type = error_class(status.get("message"))
    family = family_of(attrs)
    prompt = prompt_attributes(v.get("attributes")) if family is not None else None
    return Span(
        line, order,
        trace=norm_id(get(v, "traceId", "trace_id"), 16),
        span=norm_id(get(v, "spanId", "span_id"), 8),
        parent=norm_id(get(v, "parentSpanId", "parent_span_id"), 8),
        name=name, start=get(v, "startTimeUnixNano", "start_time_unix_nano"),
        end=get(v, "endTimeUnixNano", "end_time_unix_nano"),
        error=error, error_type=error_type if error else None, attrs=attrs,
        resource=resource, scope=scope, family=family, prompt=prompt,
    )  # fmt: skip


def _pick(scopes: list[JSON], keys: tuple[str, ...]) -> str | None:
    for attrs in scopes:
        for k in keys:
            if k in attrs and (value := text(attrs[k])) is not None:
                return value
    return None


def call_row(s: Span, chain: list[Span]) -> JSON:
    """The stage columns of one leaf usage span (RecordError: quarantine)."""
    assert s.family is not None
    u = usage(s.attrs, s.family)
    ts = start_ts(s.start)
    model = _pick([s.attrs], MODEL_KEYS)
    if model is None:
        raise RecordError("missing model (no gen_ai.response.model, gen_ai.request.model "
                          "or llm.model_name)")  # fmt: skip
    scopes = [s.attrs, *(a.attrs for a in chain), s.resource]
    cols = {col: _pick(scopes, keys) for col, keys in COLUMNS.items()}
    service = text(s.resource.get("service.name"))
    provider = first(s.attrs, PROVIDER_KEYS) or next(
        (hit for a in chain if (hit := first(a.attrs, PROVIDER_KEYS))), None
    )
    start, end = unix_nanos(s.start), unix_nanos(s.end)
    status = first(s.attrs, ("http.response.status_code", "http.status_code"))
    http = status[1] if status and isinstance(status[1], int) and 100 <= status[1] < 600 else None
    if service and service.startswith("unknown_service"):
        service = None  # the SDK's placeholder when no service name was configured
    cols["project"] = cols["project"] or service
    tags: JSON = {"usage_family": u.label, "span_name": s.name, "scope": s.scope,
                  "service": service, **dict.fromkeys(u.flags, True)}  # fmt: skip
    for key, tag in TAG_KEYS.items():
        tags[tag] = tags.get(tag) or text(s.attrs.get(key))
    for key, value in s.attrs.items():
        if key.startswith(ASSOC) and key[len(ASSOC) :] not in _MAPPED_ASSOC:
            tags[key[len(ASSOC) :]] = text(value)
    return {
        "ts": ts, "request_id": text(s.attrs.get("gen_ai.response.id")),
        "trace_id": s.trace, "span_id": s.span, "parent_span_id": s.parent,
        "provider": provider_id(provider[1]) if provider else None, "model": model,
        "service_tier": _tier(s.attrs),
        **cols,
        "input_tokens": u.input, "cache_read_tokens": u.cache_read,
        "cache_write_tokens": u.cache_write, "cache_write_1h_tokens": 0,
        "output_tokens": u.output, "reasoning_tokens": u.reasoning,
        "attempt": 1, "status": "error" if s.error else "ok", "error_type": s.error_type,
        "http_status": http,
        "latency_ms": (end - start) / 1e6 if start and end and end >= start else None,
        "reported_cost_usd": as_money(s.attrs.get("llm.cost.total"), "llm.cost.total"),
        "tags": clean_tags(tags),
        "_prompt": span_prompt(s.prompt) if s.prompt else None,
    }  # fmt: skip


def _tier(attrs: JSON) -> str | None:
    hit = first(attrs, ("openai.response.service_tier", "gen_ai.openai.response.service_tier"))
    return tier(hit[1]) if hit else None
