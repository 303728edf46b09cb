"""Parsing for the ``openai-logs`` format: one JSON record to one stage row (no I/O).

``classify`` names a record's shape; ``parse`` maps a record to the stage columns or
raises ``RecordError`` with the reason to quarantine it; ``request_info`` reads what a
request body says (model, attribution, keyed hashes), also for joined batch input lines.
Token semantics and field sources are described in ``ingest.openai_logs``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tokenaudit.ingest.base import RecordError, StageContext, api_key_fields, as_count, clean_tags
from tokenaudit.model import TOKEN_COLUMNS
from tokenaudit.tokens.prompt import Prompt, from_request

JSON = dict[str, Any]

# Request metadata keys that fill attribution columns (the rest become tags).
ATTRIBUTION_KEYS = (
    "workflow", "team", "tenant", "agent", "prompt_version", "environment", "project",
    "session_id", "trace_id",
)  # fmt: skip
LITELLM_KEYS = frozenset({"spend", "response_cost", "call_type", "standard_logging_object"})
OPENAI_OBJECTS = frozenset({"chat.completion", "response", "text_completion"})
NO_STREAM_USAGE = "streamed response without usage"
_MIN_TS = dt.datetime(2000, 1, 1)
_MAX_TS = dt.datetime(2100, 1, 1)
_LABEL = re.compile(r"[A-Za-z0-9_.:\-]{1,80}")
# In TOKEN_COLUMNS order: input, cache read, cache write (5m), cache write (1h), output, reasoning
Tokens = tuple[int, int, int, int, int, int]
ZERO: Tokens = (0, 0, 0, 0, 0, 0)


def classify(obj: Any) -> str | None:
    """``exchange``, ``batch_output``, ``batch_input``, ``body``, or None (not this format)."""
    if not isinstance(obj, dict) or LITELLM_KEYS & obj.keys():
        return None
    if "ts" in obj and "model" in obj:
        return None  # a native tokenaudit line
    if isinstance(obj.get("request"), dict) and isinstance(obj.get("response"), dict):
        return "exchange"
    if "custom_id" in obj and "response" in obj:
        return "batch_output"
    if "custom_id" in obj and isinstance(obj.get("body"), dict):
        return "batch_input"
    if isinstance(obj.get("usage"), dict) and (
        obj.get("object") in OPENAI_OBJECTS or obj.get("type") == "message"
    ):
        return "body"
    if isinstance(obj.get("usage"), dict) or obj.get("object") in OPENAI_OBJECTS:
        return "body?"  # loaded when forced, never claimed by sniffing
    return None


# --- small readers --------------------------------------------------------------------------


def _obj(value: Any) -> JSON | None:
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    s = str(value).strip()
    return s or None


def _label(value: Any) -> str | None:
    """An identifier-like value (error type, tier); never free text."""
    s = _text(value)
    return s if s is not None and _LABEL.fullmatch(s) else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _in_range(ts: dt.datetime, what: str) -> dt.datetime:
    if not _MIN_TS <= ts < _MAX_TS:
        raise RecordError(f"{what} out of range: {ts.isoformat()}")
    return ts


def epoch_ts(value: Any, what: str) -> dt.datetime:
    """Epoch seconds, ms, us or ns (by magnitude) as naive UTC."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,20}(\.\d+)?\s*", value):
        value = float(value) if "." in value else int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise RecordError(f"invalid {what} (not an epoch timestamp)")
    if value < 0 or value >= 1e20:
        raise RecordError(f"{what} out of range")
    div = 1 if value < 1e11 else 1_000 if value < 1e14 else 1_000_000 if value < 1e17 else 10**9
    micros = value * 10**6 // div if isinstance(value, int) else round(value * 1e6 / div)
    return _in_range(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(micros)), what)


def http_date(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        raise RecordError("invalid HTTP date") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return _in_range(parsed, "HTTP date")


def header(headers: Any, name: str) -> str | None:
    """A header value (case-insensitive; VCR keeps values as lists)."""
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, list):
                value = value[0] if value else None
            return _text(value)
    return None


def tier(value: Any) -> str | None:
    t = _label(value)
    if t is None:
        return None
    t = t.lower()
    return "standard" if t in ("default", "standard") else t


def maybe_json(value: Any) -> Any:
    """A body that was logged as JSON text is read as JSON."""
    if isinstance(value, dict) and set(value) == {"string"}:
        value = value["string"]  # VCR's raw body
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --- tokens ---------------------------------------------------------------------------------


def openai_tokens(u: JSON) -> Tokens:
    """OpenAI usage: cached tokens (and cache writes) are inside the input count."""
    chat = "prompt_tokens" in u or "completion_tokens" in u
    pin, pout = ("prompt", "completion") if chat else ("input", "output")
    pin, pout = f"{pin}_tokens", f"{pout}_tokens"
    prompt, out = as_count(u.get(pin), pin), as_count(u.get(pout), pout)
    din = _obj(u.get(f"{pin}_details")) or {}
    dout = _obj(u.get(f"{pout}_details")) or {}
    if din.get("cached_tokens") is not None:
        cached = as_count(din.get("cached_tokens"), "cached_tokens")
    else:  # OpenAI-compatible servers (DeepSeek style)
        cached = as_count(u.get("prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    write = as_count(din.get("cache_write_tokens"), "cache_write_tokens")
    if cached + write > prompt:
        raise RecordError(
            f"{pin} ({prompt}) is less than cached ({cached}) + cache write ({write}) tokens"
        )
    reasoning = as_count(dout.get("reasoning_tokens"), "reasoning_tokens")
    if reasoning > out:
        raise RecordError(f"reasoning_tokens ({reasoning}) exceeds {pout} ({out})")
    return prompt - cached - write, cached, write, 0, out, reasoning


def anthropic_tokens(u: JSON) -> Tokens:
    """Anthropic usage: input, cache reads and cache writes are separate counts."""
    uncached = as_count(u.get("input_tokens"), "input_tokens")
    read = as_count(u.get("cache_read_input_tokens"), "cache_read_input_tokens")
    split = _obj(u.get("cache_creation")) or {}
    one_hour = as_count(split.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens")
    if u.get("cache_creation_input_tokens") is not None:
        writes = as_count(u.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    else:
        five = as_count(split.get("ephemeral_5m_input_tokens"), "ephemeral_5m_input_tokens")
        writes = five + one_hour
    if one_hour > writes:
        raise RecordError(
            f"ephemeral_1h_input_tokens ({one_hour}) exceeds cache_creation_input_tokens ({writes})"
        )
    out = as_count(u.get("output_tokens"), "output_tokens")
    return uncached, read, writes - one_hour, one_hour, out, 0


def _anthropic_usage(u: JSON) -> bool:
    return "prompt_tokens" not in u and not {
        "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation",
    }.isdisjoint(u)  # fmt: skip


# API hosts of providers that speak the OpenAI or Anthropic wire format. The body's shape
# says which format; the host says who served (and bills) the call.
_HOSTS = (
    ("anthropic.com", "anthropic"),
    ("openai.azure.com", "azure"),
    ("services.ai.azure.com", "azure"),
    ("openai.com", "openai"),
    ("deepseek.com", "deepseek"),
    ("groq.com", "groq"),
    ("mistral.ai", "mistral"),
    ("openrouter.ai", "openrouter"),
    ("together.xyz", "together"),
    ("together.ai", "together"),
    ("fireworks.ai", "fireworks"),
    ("x.ai", "x-ai"),
    ("generativelanguage.googleapis.com", "google"),
    ("aiplatform.googleapis.com", "google"),
    ("amazonaws.com", "aws"),
    ("cohere.com", "cohere"),
    ("cohere.ai", "cohere"),
)


def provider_of_uri(uri: Any) -> str | None:
    """The provider a request URL names by its host, or None (a proxy, localhost, ...)."""
    host = urlsplit(uri).hostname if isinstance(uri, str) else None
    if not host:
        return None
    host = host.lower()
    for suffix, provider in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    return None


# --- request side ---------------------------------------------------------------------------


@dataclass
class Request:
    """What a request body says; hashes are keyed, no text is kept."""

    model: str | None = None
    user: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    prompt_hash: str | None = None
    prefix_hash: str | None = None
    tier: str | None = None
    prompt: Prompt | None = None  # counted at staging (tokens.count), then dropped


def _leading_system(items: Any) -> list[Any]:
    out: list[Any] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("role") not in ("system", "developer"):
            break
        out.append(item)
    return out


def request_info(body: JSON | None, ctx: StageContext) -> Request:
    if body is None:
        return Request()
    req = Request(model=_text(body.get("model")))
    meta = _obj(body.get("metadata")) or {}
    req.user = _text(body.get("user")) or _text(meta.get("user_id")) or _text(meta.get("user"))
    req.user = req.user or _text(body.get("safety_identifier"))
    for key, value in meta.items():
        if key in ATTRIBUTION_KEYS and _text(value) is not None:
            req.columns[key] = str(_text(value))
        elif key not in ("user_id", "user"):
            req.tags[key] = value
    t = tier(body.get("service_tier"))
    req.tier = t if t in ("flex", "priority") else None
    prompt = {k: body[k] for k in ("model", "system", "instructions", "messages", "input")
              if body.get(k) is not None}  # fmt: skip
    if "messages" in prompt or "input" in prompt:
        req.prompt_hash = ctx.key_hash(_canonical(prompt))
    system = [body[k] for k in ("system", "instructions") if body.get(k)]
    system += _leading_system(body.get("messages")) + _leading_system(body.get("input"))
    tools = body.get("tools") or None
    if system or tools:
        req.prefix_hash = ctx.key_hash(_canonical({"system": system, "tools": tools}))
    req.prompt = from_request(body)
    return req


# --- response side --------------------------------------------------------------------------


@dataclass
class Response:
    provider: str | None = None
    model: str | None = None
    ts: dt.datetime | None = None
    body_id: str | None = None
    tier: str | None = None
    tokens: Tokens = ZERO
    status: str = "ok"
    error_type: str | None = None
    echo: JSON = field(default_factory=dict)  # request fields a Responses body repeats


def _error_type(err: Any) -> str | None:
    if isinstance(err, dict):
        return _label(err.get("code")) or _label(err.get("type"))
    return None


def parse_body(body: JSON, hint: str | None) -> Response:
    """A JSON response body: Chat Completions, Responses or Anthropic Messages."""
    usage = _obj(body.get("usage"))
    if body.get("object") in OPENAI_OBJECTS or (usage is not None and "prompt_tokens" in usage):
        provider = "openai"
    elif body.get("type") in ("message", "error") or (usage and _anthropic_usage(usage)):
        provider = "anthropic"
    else:
        provider = hint or "openai"
    r = Response(provider=provider, model=_text(body.get("model")), body_id=_text(body.get("id")))
    created = body.get("created", body.get("created_at"))
    r.ts = epoch_ts(created, "created") if created is not None else None
    r.tier = tier(body.get("service_tier")) or tier((usage or {}).get("service_tier"))
    r.echo = {k: body.get(k) for k in ("metadata", "user", "safety_identifier")}
    failed = body.get("status") == "failed" or body.get("type") == "error"
    if failed or (usage is None and body.get("error")):
        r.status, r.error_type = "error", _error_type(body.get("error"))
    if usage is None:
        if r.status == "error":
            return r
        raise RecordError("response body without usage")
    r.tokens = anthropic_tokens(usage) if provider == "anthropic" else openai_tokens(usage)
    return r


def sse_events(text: str) -> list[JSON]:
    """The JSON objects of a server-sent event stream (``data:`` lines; others ignored)."""
    events: list[JSON] = []
    data: list[str] = []

    def flush() -> None:
        payload = "\n".join(data).strip()
        data.clear()
        if payload and payload != "[DONE]":
            try:
                obj = json.loads(payload)
            except ValueError:
                return  # a broken chunk: the usage, if any, is judged on the rest
            if isinstance(obj, dict):
                events.append(obj)

    for line in text.splitlines():
        if not line.strip():
            flush()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    flush()
    return events


def parse_stream(text: str, hint: str | None) -> Response:
    """A streamed body: the usage of the final chunk / event, never counted from text."""
    chat: JSON = {}
    chat_usage: JSON | None = None
    start: JSON | None = None
    delta: JSON | None = None
    final: JSON | None = None
    error: Any = None
    for e in sse_events(text):
        kind = e.get("type")
        if e.get("object") == "chat.completion.chunk":
            for k in ("id", "model", "created", "service_tier"):
                if chat.get(k) is None and e.get(k) is not None:
                    chat[k] = e[k]
            chat_usage = _obj(e.get("usage")) or chat_usage
        elif kind == "message_start":
            start = _obj(e.get("message"))
        elif kind == "message_delta" and isinstance(e.get("usage"), dict):
            delta = e["usage"]
        elif isinstance(kind, str) and kind.startswith("response.") and _obj(e.get("response")):
            if final is None or kind in ("response.completed", "response.incomplete",
                                         "response.failed"):  # fmt: skip
                final = e["response"]
        elif kind == "error" or (kind is None and isinstance(e.get("error"), dict)):
            error = e.get("error", e)  # Anthropic's error event, OpenAI's {"error": {...}}
    body: JSON | None = None
    if start is not None or delta is not None:
        if delta is not None:  # message_delta counts are cumulative: the last one wins
            usage = {**(_obj((start or {}).get("usage")) or {}),
                     **{k: v for k, v in delta.items() if v is not None}}  # fmt: skip
            body = {**(start or {}), "type": "message", "usage": usage}
        hint = "anthropic"
    elif final is not None:
        body = final if _obj(final.get("usage")) else None
    elif chat_usage is not None:
        body = {**chat, "object": "chat.completion", "usage": chat_usage}
    if body is None:
        if error is None:
            raise RecordError(NO_STREAM_USAGE)
        meta = start or final or chat
        r = Response(provider=hint, model=_text(meta.get("model")), status="error")
        r.body_id, r.error_type = _text(meta.get("id")), _error_type(error)
        created = meta.get("created", meta.get("created_at"))
        r.ts = epoch_ts(created, "created") if created is not None else None
        return r
    r = parse_body(body, hint)
    if error is not None:
        r.status, r.error_type = "error", _error_type(error)
    return r


def parse_response_body(body: Any, hint: str | None) -> Response | None:
    """A logged response body of any kind; None when there is none."""
    body = maybe_json(body)
    if body is None or body == "":
        return None
    if isinstance(body, dict):
        return parse_body(body, hint)
    if isinstance(body, str) and "data:" in body:
        return parse_stream(body, hint)
    raise RecordError("response body is neither a JSON object nor an event stream")


# --- records --------------------------------------------------------------------------------


def _status_code(value: Any) -> int | None:
    if isinstance(value, dict):  # VCR: {"code": 200, "message": "OK"}
        value = value.get("code")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value < 1000 else None


def row(
    resp: Response,
    req: Request,
    *,
    ts_later: bool = False,
    service_tier: str | None = None,
    tags: JSON | None = None,
    **columns: Any,
) -> JSON:
    """The stage columns of one call; ``columns`` holds request_id, http_status and such.

    ``ts_later``: a missing timestamp is filled by the caller (failed batch requests).
    """
    model = resp.model or req.model
    if model is None:
        raise RecordError("missing model")
    if resp.ts is None and not ts_later:
        raise RecordError("missing timestamp (an Anthropic body has none: log the HTTP date)")
    out: JSON = {
        "ts": resp.ts,
        "provider": resp.provider,
        "model": model,
        "service_tier": service_tier or resp.tier or req.tier,
        "user": req.user,
        "attempt": 1,
        "status": resp.status,
        "error_type": resp.error_type,
        "prompt_hash": req.prompt_hash,
        "prefix_hash": req.prefix_hash,
        "tags": clean_tags({**req.tags, **(tags or {})}),
        "_prompt": req.prompt,
        **req.columns,
        **dict(zip(TOKEN_COLUMNS, resp.tokens, strict=True)),
        **columns,
    }
    out["request_id"] = out.get("request_id") or resp.body_id
    return out


def _from_echo(resp: Response, ctx: StageContext) -> Request:
    """Request fields a bare Responses-API body repeats (metadata, user)."""
    return request_info({k: v for k, v in resp.echo.items() if v is not None}, ctx)


def parse_bare(obj: JSON, ctx: StageContext) -> JSON:
    resp = parse_body(obj, None)
    return row(resp, _from_echo(resp, ctx))


def parse_exchange(obj: JSON, ctx: StageContext) -> JSON:
    """A recorded request/response pair (``request.body``, ``response.body``)."""
    request, response = obj["request"], obj["response"]
    req_body = maybe_json(request.get("body"))
    req = request_info(req_body if isinstance(req_body, dict) else None, ctx)
    hint = provider_of_uri(request.get("uri") or request.get("url"))
    headers = response.get("headers")
    http_status = _status_code(response.get("status", response.get("status_code")))
    if http_status is not None and http_status >= 400:
        resp = Response(provider=hint, status="error")
        body = maybe_json(response.get("body"))
        err = body.get("error") if isinstance(body, dict) else None
        resp.error_type = _error_type(err)
        if isinstance(body, dict) and body.get("type") == "error":
            resp.provider = resp.provider or "anthropic"
    else:
        parsed = parse_response_body(response.get("body"), hint)
        if parsed is None:
            raise RecordError("response without a body")
        resp = parsed
    # The host names who served the call; the body's shape only names its wire format.
    resp.provider = hint or resp.provider or "openai"
    if not isinstance(req_body, dict):
        req = _from_echo(resp, ctx)
    if resp.ts is None:
        resp.ts = http_date(response.get("date") or header(headers, "date"))
    key = header(request.get("headers"), "x-api-key") or header(request.get("headers"), "api-key")
    auth = header(request.get("headers"), "authorization")
    if auth and auth.lower().startswith("bearer "):
        key = key or auth[7:].strip()
    key_hash, last4 = api_key_fields(ctx, key)
    latency = header(headers, "openai-processing-ms")
    # The official SDKs send how many times they retried the request before this try.
    retries = header(request.get("headers"), "x-stainless-retry-count")
    attempt = int(retries) + 1 if retries and retries.isdigit() and len(retries) < 6 else 1
    return row(
        resp, req, attempt=attempt,
        request_id=_text(response.get("request_id")) or header(headers, "x-request-id")
        or header(headers, "request-id"),
        http_status=http_status, api_key_hash=key_hash, api_key_last4=last4,
        latency_ms=float(latency) if latency and latency.isdigit() else None,
    )  # fmt: skip


def parse_batch(obj: JSON, ctx: StageContext, joined: dict[str, Request]) -> JSON:
    """An OpenAI Batch API output line; ``joined`` maps custom_id to its input request."""
    custom_id = _text(obj.get("custom_id"))
    req = joined.get(custom_id, Request()) if custom_id is not None else Request()
    response = _obj(obj.get("response")) or {}
    http_status = _status_code(response.get("status_code"))
    body = maybe_json(response.get("body"))
    failed = bool(obj.get("error")) or not response or (http_status or 0) >= 400
    if failed:
        resp = Response(provider="openai", status="error")
        resp.error_type = _error_type(obj.get("error")) or _error_type(
            body.get("error") if isinstance(body, dict) else None
        )
        if isinstance(body, dict):
            resp.model = _text(body.get("model"))
    else:
        if not isinstance(body, dict):
            raise RecordError("batch response without a JSON body")
        resp = parse_body(body, "openai")
    if failed and resp.model is None and req.model is None:
        raise RecordError(
            "missing model (a failed batch request: keep the batch input file beside the output)"
        )
    return row(
        resp, req, ts_later=True, service_tier="batch",
        request_id=_text(response.get("request_id")) or _text(obj.get("id")),
        http_status=http_status, tags={"custom_id": custom_id},
    )  # fmt: skip
