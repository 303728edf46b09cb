"""Mapping for the ``langfuse`` format: one merged observation to one stage row (with the
prompt to count locally, ``prompt_of``), one score to an outcome (no I/O here). Field sources
and rules are described in ``ingest.langfuse``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from tokenaudit.ingest.base import RecordError, as_count, as_money, clean_tags
from tokenaudit.ingest.openai_parse import provider_of_uri
from tokenaudit.pricing.names import PROVIDER_ALIASES
from tokenaudit.tokens.prompt import MESSAGE, Prompt
from tokenaudit.tokens.shapes import chat_prompt, load_json, tool_definitions

JSON = dict[str, Any]

_MIN_TS = dt.datetime(2000, 1, 1)
_MAX_TS = dt.datetime(2100, 1, 1)
_LABEL = re.compile(r"[A-Za-z0-9_.:\-]{1,80}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_NON_ALNUM = re.compile(r"[^a-z0-9]")

# --- small readers ---------------------------------------------------------------------------


def text(value: Any, limit: int = 200) -> str | None:
    """A short scalar as text (ids, names); None for objects, empty or long values."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    s = str(value).strip()
    return s if s and len(s) <= limit else None


def obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def metadata(value: Any) -> JSON:
    """Langfuse metadata as a dict: exports keep it as a JSON string, the API as an object."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value, parse_float=Decimal, parse_constant=Decimal)
        except (ValueError, RecursionError):
            return {}
    return value if isinstance(value, dict) else {}


def parse_ts(value: Any, field: str) -> dt.datetime | None:
    """A UTC (naive) timestamp from ISO 8601 (offset or Z; none means UTC) or epoch numbers."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"invalid {field}: {value!r}")
    if isinstance(value, int | Decimal | float):
        x = Decimal(value)
        if not x.is_finite():
            raise RecordError(f"invalid {field}: {value!r}")
        for scale in (1, 1000, 10**6, 10**9):  # seconds, ms, us or ns by magnitude
            if abs(x) / scale < Decimal(10) ** 11:
                x = x / scale
                break
        try:
            ts = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(x))
        except OverflowError:
            raise RecordError(f"{field} out of range: {value!r}") from None
    elif isinstance(value, str):
        try:
            ts = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(f"invalid {field}: {value[:40]!r}") from None
        if ts.tzinfo is not None:
            ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    else:
        raise RecordError(f"invalid {field}: {str(value)[:40]!r}")
    if not _MIN_TS <= ts < _MAX_TS:
        raise RecordError(f"{field} out of range: {str(value)[:40]!r}")
    return ts


def count(value: Any, field: str) -> int:
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise RecordError(f"{field} is not a whole number: {str(value)[:40]!r}")
        value = int(value)
    return as_count(value, field)


# LangChain ``ls_provider`` and OpenInference ``llm.provider`` spellings.
_MORE_ALIASES = {
    "mistralai": "mistral",
    "google_genai": "google",
    "google_vertexai": "google",
    "google_anthropic_vertex": "google",
    "amazon_bedrock": "aws",
    "bedrock_converse": "aws",
    "azure_openai": "azure",
    "azure_ai": "azure",
    "togetherai": "together",
    "fireworks": "fireworks",
}


def provider_id(value: Any) -> str | None:
    """A catalogue provider id from a provider/system name ("openai.responses" -> openai)."""
    s = text(value, 80)
    if s is None:
        return None
    low = s.lower()
    if low in PROVIDER_ALIASES or low in _MORE_ALIASES:
        return PROVIDER_ALIASES.get(low) or _MORE_ALIASES[low]
    head = low.split(".", 1)[0]
    return PROVIDER_ALIASES.get(head, head if "." in low else low) or None


# --- tokens ------------------------------------------------------------------------------------

_TOTAL = frozenset({"total", "totaltokens", "totaltokencount"})
_INPUT = frozenset({"input", "inputtokens", "prompttokens", "prompt", "prompttokencount"})
_OUTPUT = frozenset(
    {"output", "outputtokens", "completiontokens", "completion", "candidatestokencount"}
)
# OpenAI usage objects (Chat Completions, Responses): nested details, counts inclusive.
_NESTED = {
    "prompt_tokens_details": "input_",
    "input_tokens_details": "input_",
    "completion_tokens_details": "output_",
    "output_tokens_details": "output_",
}
_CATEGORIES = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")


def key_class(key: str) -> str | None:
    """The token category a usage key counts (``other_in``/``other_out``: other input or
    output parts such as audio), ``total``, or None (not a token count)."""
    n = _NON_ALNUM.sub("", key.lower())
    if n in _TOTAL:
        return "total"
    if n in _INPUT:
        return "input"
    if n in _OUTPUT:
        return "output"
    if "reasoning" in n or "thought" in n:
        return "reasoning"
    if "cacheread" in n or "cached" in n or "cachehit" in n:
        return "cache_read"
    if "cachecreation" in n or "cachewrite" in n or n.startswith("ephemeral"):
        return "cache_write_1h" if "1h" in n else "cache_write"
    if n.startswith(("input", "prompt")):
        return "other_in"
    if n.startswith(("output", "completion", "candidates")):
        return "other_out"
    return None


def _usage_source(o: JSON) -> tuple[JSON, str, bool]:
    """(usage map, field name for messages, counts inclusive by default)."""
    details = obj(o.get("usageDetails") or o.get("usage_details"))
    legacy = obj(o.get("usage"))
    unit = text(legacy.get("unit"))
    if not details and unit and unit.upper() != "TOKENS" and legacy.keys() - {"unit"}:
        raise RecordError(f"usage unit {unit[:20]!r} is not tokens")
    flat: JSON = {}
    for key in ("input", "output", "total", "promptTokens", "completionTokens", "totalTokens"):
        if legacy.get(key) is not None:
            flat[key] = legacy[key]
    nested = False
    for key, value in details.items():
        if isinstance(value, dict) and key in _NESTED:
            nested = True
            for k, v in value.items():
                if v is not None:
                    flat[_NESTED[key] + k] = v
        elif value is not None:
            flat[key] = value
    if flat:
        return flat, "usageDetails" if details else "usage", nested
    for keys in (
        ("inputUsage", "outputUsage", "totalUsage"),
        ("promptTokens", "completionTokens", "totalTokens"),
    ):
        found = {k: o[k] for k in keys if o.get(k) is not None}
        if any(count(v, k) for k, v in found.items()):
            return found, "usage", False
    return {}, "usage", False


def tokens(o: JSON) -> dict[str, int] | None:
    """Non-overlapping token counts of an observation, or None when it reports no usage.

    Langfuse's own convention keeps usage keys disjoint (``total`` is the sum of the other
    keys: cache and reasoning already taken out of ``input``/``output``); keys sent raw by an
    integration may follow the provider's inclusive convention. ``total`` decides which one
    a record follows when it can; otherwise Langfuse's, except OpenAI usage objects.
    """
    usage, field, inclusive = _usage_source(o)
    if not usage:
        return None
    sums = dict.fromkeys((*_CATEGORIES, "other_in", "other_out"), 0)
    total: int | None = None
    for key, value in usage.items():
        kind = key_class(str(key))
        if kind is None:
            continue
        n = count(value, f"{field}.{key}")
        if kind == "total":
            total = n
        else:
            sums[kind] += n
    # Readings of input and output (inclusive of their parts or not) that add up to the total
    readings = {
        (a, b): _reading(sums, a, b)
        for a in (False, True)
        for b in (False, True)
        if (not a or sums["input"] >= sums["cache_read"] + sums["cache_write"]
            + sums["cache_write_1h"] + sums["other_in"])
        and (not b or sums["output"] >= sums["reasoning"] + sums["other_out"])
    }  # fmt: skip
    if total is not None:
        fits = {
            tuple(v.items())
            for v in readings.values()
            if sum(v.values()) - v["reasoning_tokens"] == total
        }
        if len(fits) == 1:
            return dict(fits.pop())
    default = (inclusive, inclusive)
    return readings.get(default) or readings.get((False, inclusive)) or readings[(False, False)]


def _reading(sums: dict[str, int], inclusive_in: bool, inclusive_out: bool) -> dict[str, int]:
    cache = sums["cache_read"] + sums["cache_write"] + sums["cache_write_1h"]
    parts_out = sums["reasoning"] + sums["other_out"]
    return {
        "input_tokens": sums["input"] - cache if inclusive_in else sums["input"] + sums["other_in"],
        "cache_read_tokens": sums["cache_read"],
        "cache_write_tokens": sums["cache_write"],
        "cache_write_1h_tokens": sums["cache_write_1h"],
        "output_tokens": sums["output"] if inclusive_out else sums["output"] + parts_out,
        "reasoning_tokens": sums["reasoning"],
    }


# --- cost --------------------------------------------------------------------------------------


def reported_cost(o: JSON) -> Decimal | None:
    """USD: ``costDetails`` (its ``total``, else the sum of its parts), else ``totalCost`` /
    ``calculatedTotalCost`` when not zero, else the legacy ``usage.totalCost`` (or its
    input + output costs)."""
    details = obj(o.get("costDetails") or o.get("cost_details"))
    parts = {k: as_money(v, f"costDetails.{k}") for k, v in details.items()}
    if parts.get("total") is not None:
        return parts["total"]
    known = [v for v in parts.values() if v is not None]
    if known:
        return sum(known, Decimal(0))
    for key in ("totalCost", "calculatedTotalCost", "total_cost"):
        cost = as_money(o.get(key), key)
        if cost:  # zero with no details: Langfuse had no price for the model
            return cost
    legacy = obj(o.get("usage"))
    cost = as_money(legacy.get("totalCost"), "usage.totalCost")
    if cost is not None:
        return cost
    sides = [as_money(legacy.get(k), f"usage.{k}") for k in ("inputCost", "outputCost")]
    return sum((s for s in sides if s is not None), Decimal(0)) if any(sides) else None


# --- attribution -------------------------------------------------------------------------------

ATTRIBUTION_KEYS = ("workflow", "team", "tenant", "agent", "prompt_version", "project")
_PROVIDER_ATTRS = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
    "ai.model.provider",
)
# Metadata keys that are integration internals, not attribution worth a tag.
_NOISE = frozenset(
    {
        "litellm_response_cost",
        "parent_observation_id",
        "checkpoint_ns",
        "langgraph_checkpoint_ns",
        "ls_temperature",
        "public_key",
        "trace_id",
        "session_id",
        "user_id",
    }
)
_SECRETISH = ("key", "secret", "token", "password", "auth", "cookie")
MAX_TAGS = 24


def _split(md: JSON) -> tuple[JSON, JSON, JSON, JSON]:
    """(OTel attributes, resource attributes, scope, the plain rest) of Langfuse metadata."""
    return (
        obj(md.get("attributes")),
        obj(md.get("resourceAttributes")),
        obj(md.get("scope")),
        {k: v for k, v in md.items() if k not in ("attributes", "resourceAttributes", "scope")},
    )


def slim_metadata(value: Any) -> JSON:
    """The part of Langfuse metadata this reader uses (short scalars, the provider and model
    attributes, service and scope names): the rest (message text, tool schemas) is dropped
    as soon as a record is read."""
    attrs, resource, scope, plain = _split(metadata(value))
    out: JSON = {
        k: v
        for k, v in plain.items()
        if isinstance(v, bool | int | Decimal) or (isinstance(v, str) and len(v) <= 100)
    }
    api_base = obj(plain.get("hidden_params")).get("api_base")
    if isinstance(api_base, str):
        out["hidden_params"] = {"api_base": api_base}
    kept = {k: attrs[k] for k in (*_PROVIDER_ATTRS, "gen_ai.response.model") if k in attrs}
    if kept:
        out["attributes"] = kept
    if "service.name" in resource:
        out["resourceAttributes"] = {"service.name": resource["service.name"]}
    if "name" in scope:
        out["scope"] = {"name": scope["name"]}
    return out


def _scalar_tags(plain: JSON) -> JSON:
    """Short scalar metadata values: no objects, no text, nothing secret- or email-like."""
    out: JSON = {}
    for key, value in plain.items():
        low = key.lower()
        if low in _NOISE or any(s in low for s in _SECRETISH) or len(key) > 64:
            continue
        if isinstance(value, bool | int):
            out[key] = value
        elif isinstance(value, Decimal) and value.is_finite():
            out[key] = int(value) if value == value.to_integral_value() else str(value)
        elif isinstance(value, str):
            s = value.strip()
            if s and len(s) <= 100 and "\n" not in s and not _EMAIL.search(s):
                out[key] = s
    return out


def provider(o: JSON, md: JSON) -> str | None:
    attrs, _, _, plain = _split(md)
    params = obj(o.get("modelParameters"))
    for value in (
        *(attrs.get(a) for a in _PROVIDER_ATTRS),
        plain.get("ls_provider"),
        plain.get("provider"),
        params.get("system"),
    ):
        pid = provider_id(value)
        if pid:
            return pid
    hidden = obj(plain.get("hidden_params"))
    return provider_of_uri(hidden.get("api_base") or plain.get("api_base"))


def _service_tier(o: JSON) -> str | None:
    tier = text(obj(o.get("modelParameters")).get("service_tier"), 20)
    tier = tier.lower() if tier else None
    if tier == "default":
        return "standard"
    return tier if tier in ("standard", "flex", "priority", "batch") else None


def _prompt_version(o: JSON) -> str | None:
    name, version = text(o.get("promptName")), text(o.get("promptVersion"), 20)
    if name and version:
        return f"{name}:v{version}"
    return name or (f"v{version}" if version else None)


def _latency_ms(o: JSON, start: dt.datetime | None) -> float | None:
    try:
        end = parse_ts(o.get("endTime"), "endTime")
    except RecordError:
        end = None
    if start is not None and end is not None and end >= start:
        return (end - start).total_seconds() * 1000
    seconds = o.get("latency")
    if isinstance(seconds, int | Decimal) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds) * 1000
    return None


def call_row(o: JSON, trace: JSON, agent: str | None, fallback_ts: dt.datetime | None) -> JSON:
    """The stage columns of one model call (a merged GENERATION/EMBEDDING observation).

    No API key or prompt text is read (the format carries none worth hashing)."""
    ts = parse_ts(o.get("startTime") or o.get("start_time"), "startTime") or fallback_ts
    counts = tokens(o)
    cost = reported_cost(o)
    level = (text(o.get("level"), 20) or "").upper()
    if not any((counts or {}).values()) and not cost and level != "ERROR":
        raise RecordError("generation without usage (no token counts, cost or error level)")
    md = metadata(o.get("metadata"))
    tmd = metadata(trace.get("metadata"))
    attrs, resource, scope, plain = _split(md)
    _, _, tscope, tplain = _split(tmd)
    columns = {k: text(plain.get(k)) or text(tplain.get(k)) for k in ATTRIBUTION_KEYS}
    tags: JSON = {
        k: v
        for k, v in {**_scalar_tags(tplain), **_scalar_tags(plain)}.items()
        if k not in ATTRIBUTION_KEYS
    }
    service = text(resource.get("service.name"))
    extra = {
        "tags": sorted({t for t in _list(trace.get("tags")) if isinstance(t, str)}) or None,
        "release": text(trace.get("release")),
        "version": text(o.get("version")) or text(trace.get("version")),
        "generation": text(o.get("name")),
        "observation_type": text(o.get("type")) if o.get("type") != "GENERATION" else None,
        "level": level if level in ("WARNING", "ERROR") else None,
        "langfuse_project": text(o.get("projectId")) or text(trace.get("projectId")),
        "service": service if service and not service.startswith("unknown_service") else None,
        "instrumentation": text(scope.get("name")) or text(tscope.get("name")),
        "response_model": text(attrs.get("gen_ai.response.model")),
    }
    tags.update({k: v for k, v in extra.items() if v is not None})
    if len(tags) > MAX_TAGS:
        tags = dict(sorted(tags.items())[:MAX_TAGS])
    status_message = text(o.get("statusMessage"), 80)
    row: JSON = {
        "ts": ts,
        "request_id": text(o.get("id")),
        "trace_id": text(o.get("traceId") or o.get("trace_id")) or text(trace.get("id")),
        "span_id": text(o.get("id")),
        "parent_span_id": text(o.get("parentObservationId") or o.get("parent_observation_id")),
        "session_id": text(trace.get("sessionId") or trace.get("session_id")),
        "provider": provider(o, md),
        "model": text(o.get("model") or o.get("providedModelName"), 300),
        "service_tier": _service_tier(o),
        "workflow": columns["workflow"] or text(trace.get("name")),
        "team": columns["team"],
        "tenant": columns["tenant"],
        "user": text(trace.get("userId") or trace.get("user_id")),
        "agent": columns["agent"] or agent,
        "prompt_version": _prompt_version(o) or columns["prompt_version"],
        "environment": text(o.get("environment")) or text(trace.get("environment")),
        "project": columns["project"],
        **(counts or dict.fromkeys(f"{c}_tokens" for c in _CATEGORIES)),
        "attempt": 1,
        "status": "error" if level == "ERROR" else "ok",
        "error_type": (
            status_message
            if level == "ERROR" and status_message and _LABEL.fullmatch(status_message)
            else None
        ),
        "latency_ms": _latency_ms(o, ts),
        "reported_cost_usd": cost,
        "tags": clean_tags(tags),
    }
    for c in _CATEGORIES:
        row[f"{c}_tokens"] = row[f"{c}_tokens"] or 0
    try:  # the prompt never decides whether a call is a record
        row["_prompt"] = prompt_of(o, row["model"])
    except (TypeError, ValueError, AttributeError, RecursionError):
        row["_prompt"] = None
    return row


# --- the prompt, for local token counts ------------------------------------------------------

# Tool definitions in metadata: OTel attributes as Langfuse keeps them (Vercel AI SDK,
# OTel GenAI, pydantic-ai's model_request_parameters, OpenInference's llm.tools.N).
_TOOL_ATTRS = ("ai.prompt.tools", "gen_ai.tool.definitions")
_LLM_TOOL = re.compile(r"llm\.tools\.\d+\.tool\.json_schema")


def _metadata_tools(md: JSON) -> list[Any]:
    attrs = obj(md.get("attributes"))
    tools = [*tool_definitions(md.get("tools"))]
    for key in _TOOL_ATTRS:
        tools += tool_definitions(attrs.get(key))
    params = load_json(attrs.get("model_request_parameters"))
    if isinstance(params, dict):
        tools += tool_definitions(params.get("function_tools"))
    indexed = sorted((k for k in attrs if _LLM_TOOL.fullmatch(k)), key=lambda k: int(k[10:-17]))
    return tools + tool_definitions([attrs[k] for k in indexed])


def prompt_fields(body: JSON, md: JSON) -> JSON:
    """What a model call's prompt is counted from, read off one copy of an observation
    before its text is dropped: ``_input`` (the observation's ``input``), ``_tools`` (its
    ``toolDefinitions``, ``modelParameters.tools`` / ``functions`` and the tools in its
    metadata) and ``_instructions`` (``modelParameters.instructions``)."""
    out: JSON = {}
    if body.get("input") is not None and not isinstance(body["input"], int | Decimal):
        out["_input"] = body["input"]
    params = obj(body.get("modelParameters"))
    tools = tool_definitions(body.get("toolDefinitions"))
    tools += tool_definitions(params.get("tools") or params.get("functions"))
    tools += _metadata_tools(md)
    if tools:
        out["_tools"] = tools
    if isinstance(params.get("instructions"), str):
        out["_instructions"] = params["instructions"]
    return out


def _plain(value: Any) -> Any:
    """JSON as ``json.dumps`` takes it (numbers were read as Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _split_input(value: Any) -> tuple[Any, Any, list[Any]] | None:
    """(messages, system, tools) of a generation's input, or None when it is no prompt
    (an application's own arguments, say)."""
    if isinstance(value, list | str):
        return value, None, []
    if not isinstance(value, dict):
        return None
    if "role" in value:
        return [value], None, []
    system = value.get("system", value.get("instructions"))
    tools = tool_definitions(value.get("tools") or value.get("functions"))
    for key in ("messages", "input", "prompt"):
        if isinstance(value.get(key), list | str):
            return value[key], system, tools
    return None


def prompt_of(o: JSON, model: str | None) -> Prompt | None:
    """The prompt of a merged observation (its input, tools and instructions), or None."""
    raw, tools = o.get("_input"), list(o.get("_tools") or [])
    if raw is None:  # tools alone are not the prompt
        return None
    value = _plain(load_json(raw))
    if str(o.get("type") or "").upper() == "EMBEDDING":  # texts to embed: no chat format
        p = Prompt(model=model, chat=False)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                p.add(text, MESSAGE)
        return p
    parts = _split_input(value)
    if parts is None:
        return None
    messages, system, inline = parts
    seen: set[str] = set()
    unique = []
    for t in [*inline, *tools]:  # Langfuse may hold a tool in the input and in metadata
        name = t.get("name") if isinstance(t, dict) else None
        if name not in seen:
            unique.append(t)
            if isinstance(name, str):
                seen.add(name)
    if system is None:
        system = o.get("_instructions")
    if not messages and system is None and not unique:
        return None
    return chat_prompt(messages, unique, system, model)


# --- scores -> outcomes ------------------------------------------------------------------------

_WORDS = {
    "accepted": ("accepted", "accept", "approved", "approve", "resolved"),
    "edited": ("edited", "edit", "modified", "corrected", "revised"),
    "rejected": ("rejected", "reject", "declined", "discarded", "denied"),
    "escalated": ("escalated", "escalate", "handoff", "handed_off", "human_handoff"),
}
OUTCOME_WORDS = {w: outcome for outcome, words in _WORDS.items() for w in words}
_POSITIVE = frozenset({"thumbs_up", "thumbsup", "up", "positive", "good", "yes", "true", "like"})
_NEGATIVE = frozenset({"thumbs_down", "thumbsdown", "down", "negative", "bad", "no", "false"})
_EMOJI = {"\U0001f44d": "thumbs_up", "\U0001f44e": "thumbs_down"}
# Score names that carry user or reviewer acceptance: true / 1 / thumbs up -> accepted,
# false / 0 (or -1) / thumbs down -> rejected.
FEEDBACK_NAMES = frozenset(
    {
        "accepted", "accept", "acceptance", "is_accepted", "user_accepted", "approved",
        "approval", "user_feedback", "feedback", "human_feedback", "user_vote", "vote",
        "thumbs", "thumb", "thumbs_up", "thumbs_up_down", "helpful", "is_helpful", "outcome",
    }
)  # fmt: skip
# Score names that are an outcome flag: true / 1 -> that outcome; false / 0 says nothing.
FLAG_NAMES = {
    **dict.fromkeys(("rejected", "is_rejected", "user_rejected", "thumbs_down"), "rejected"),
    **dict.fromkeys(("edited", "is_edited", "user_edited", "corrected", "modified"), "edited"),
    **dict.fromkeys(
        ("escalated", "is_escalated", "escalation", "handoff", "human_handoff"), "escalated"
    ),
}


def _norm(value: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip().lower()).strip("_")


def outcome_of(score: JSON) -> str | None:
    """The outcome a Langfuse score expresses, or None (an evaluation metric, free text)."""
    name = _norm(score.get("name") or "")
    data_type = str(score.get("dataType") or "").upper()
    value, label = score.get("value"), score.get("stringValue")
    if data_type == "CORRECTION":
        return "edited"  # a reviewer corrected the output
    if data_type == "TEXT":
        return None
    if data_type == "CATEGORICAL" or isinstance(value, str):
        raw = str(label if isinstance(label, str) and label else value).strip()
        word = _EMOJI.get(raw) or _norm(raw)
        if word in OUTCOME_WORDS:
            return OUTCOME_WORDS[word]
        if name in FEEDBACK_NAMES:
            return "accepted" if word in _POSITIVE else "rejected" if word in _NEGATIVE else None
        return None
    if isinstance(value, bool):
        number = Decimal(int(value))
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    elif data_type == "BOOLEAN" and isinstance(label, str):
        number = Decimal(1 if label.strip().lower() == "true" else 0)
    else:
        return None
    if name in FLAG_NAMES:
        return FLAG_NAMES[name] if number == 1 else None
    if name in FEEDBACK_NAMES:
        if number == 1:
            return "accepted"
        if number == 0 or (number == -1 and data_type != "BOOLEAN"):
            return "rejected"
    return None


def outcome_row(score: JSON, fallback_ts: dt.datetime | None) -> JSON | None:
    """The outcome_stage columns of a score that expresses an outcome, else None."""
    outcome = outcome_of(score)
    if outcome is None:
        return None
    row: JSON = {"reason": None, "outcome": outcome, "key_kind": None, "key": None}
    for kind, field in (
        ("trace", "traceId"),
        ("session", "sessionId"),
        ("request", "observationId"),
    ):
        key = text(score.get(field))
        if key:
            row["key_kind"], row["key"] = kind, key
            break
    try:
        row["ts"] = parse_ts(score.get("timestamp"), "score timestamp") or fallback_ts
    except RecordError as e:
        row["reason"], row["ts"] = str(e), None
    reviewer = text(score.get("authorUserId"), 80) or text(score.get("source"), 40)
    row["reviewer"] = reviewer if reviewer and not _EMAIL.search(reviewer) else None
    return row
