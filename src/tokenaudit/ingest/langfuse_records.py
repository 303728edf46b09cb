"""Mapping for the ``langfuse`` format: one merged observation to one stage row (with the
prompt to count locally, from ``ingest.langfuse_prompt``; no I/O here). Small readers of
values are in ``ingest.langfuse_readers``, scores to outcomes in ``ingest.langfuse_scores``.
Field sources and rules are described in ``ingest.langfuse``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from tokenaudit.ingest.base import RecordError, as_money, clean_tags
from tokenaudit.ingest.langfuse_prompt import prompt_of
from tokenaudit.ingest.langfuse_readers import (
    EMAIL,
    JSON,
    count,
    metadata,
    obj,
    parse_ts,
    provider_id,
    text,
)
from tokenaudit.ingest.openai_parse import provider_of_uri

_LABEL = re.compile(r"[A-Za-z0-9_.:\-]{1,80}")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
            if s and len(s) <= 100 and "\n" not in s and not EMAIL.search(s):
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
