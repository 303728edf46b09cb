"""Classifying FOCUS line items (``focus``): a label's token category, model and service
tier, from AWS Bedrock usage types, Azure OpenAI / Foundry meter names and Google Vertex AI
SKU descriptions; the provider a row's names point to; and how many tokens one unit of a
quantity is. Pure Python, run once per distinct label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# --- classifying line items: token category, model, service tier --------------------------


@dataclass(frozen=True)
class Item:
    """What a billing label says: a token category, the model and the service tier."""

    category: str
    model: str | None
    service_tier: str | None = "standard"


_TIERS = {"batch": "batch", "priority": "priority", "flex": "flex", "standard": "standard"}
_MODALITIES = {"text", "audio", "image", "images", "video", "speech", "multimodal"}
_REGION = re.compile(r"^(?:[A-Z]{2,3}[0-9]|EU)-")
_MP = re.compile(r"^(?:[A-Za-z]{2,3}[0-9]-)?MP:(?:[A-Za-z]{2,3}[0-9]_)?(.*?)(?:-Units)?$", re.I)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_BEDROCK_EDITION = re.compile(r"\s*\(Amazon Bedrock Edition\)\s*$", re.I)
_NOT_TOKENS_BEDROCK = re.compile(
    r"per-minute|tpm|reserved|provisioned|custom-?model|training|optimizeprompt", re.I
)


def bedrock_usage_type(usage_type: str, service_name: str | None = None) -> Item | None:
    """An AWS Bedrock CUR usage type: model part, token direction and tier suffix."""
    text = usage_type.strip()
    if "token" not in text.lower() or _NOT_TOKENS_BEDROCK.search(text):
        return None
    mp = _MP.match(text)
    if mp:  # marketplace models: USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units
        words = [w for w in re.split(r"[-_\s]+", _CAMEL.sub("-", mp.group(1)).lower()) if w]
        words = [p for w in words for p in re.split(r"(?<=[a-z])(?=[0-9])", w) if p]
        model = _BEDROCK_EDITION.sub("", service_name).strip() if service_name else None
        return _bedrock_words(words, words, model or None)
    body = _REGION.sub("", text, count=1)
    if "-mantle-" in body:
        model_part, _, rest = body.partition("-mantle-")
        words = [w for w in re.split(r"[-_]+", rest.lower()) if w]
        return _bedrock_words(words, words, model_part or None)
    parts = body.split("-")
    lower = [p.lower() for p in parts]
    anchor = next((i for i, w in enumerate(lower) if w in ("input", "output", "cache")), None)
    if anchor is None or anchor == 0:
        return None
    end = anchor - 1 if lower[anchor - 1] in _MODALITIES and anchor > 1 else anchor
    model = "-".join(parts[:end]) or None
    return _bedrock_words(lower[anchor:], lower[anchor:], model)


def _bedrock_words(words: list[str], tail: list[str], model: str | None) -> Item | None:
    if not any(w in ("token", "tokens", "tokencount", "count") for w in words):
        return None
    tier: str | None = next((_TIERS[w] for w in tail if w in _TIERS), "standard")
    if "latency" in tail:
        tier = None  # latency-optimized inference: not one of the tiers tokenaudit knows
    if "cache" in words:
        i = words.index("cache")
        kind = words[i + 1] if i + 1 < len(words) else ""
        if kind == "read":
            return Item("cache_read", model, tier)
        if kind == "write":
            one_hour = any(w in ("1h", "60m") for w in words)
            return Item("cache_write_1h" if one_hour else "cache_write", model, tier)
        return None
    if "input" in words:
        return Item("input", model, tier)
    if "output" in words:
        return Item("output", model, tier)
    return None


_AZ_INPUT = {"inp", "inpt", "input", "in", "prompt"}
_AZ_OUTPUT = {"outp", "outpt", "output", "out", "opt", "completion"}
_AZ_CACHED = {"cchd", "ccchd", "cached", "cache", "cd", "cachd", "caching"}
_AZ_WRITE = {"wr", "write", "creation"}
_AZ_REASONING = {"rsng", "reasoning"}
_AZ_ANCHORS = _AZ_INPUT | _AZ_OUTPUT | _AZ_CACHED | _AZ_REASONING
_AZ_QUALIFIERS = {
    "batch", "pp", "priority", "flex", "std", "standard", "gl", "glbl", "global", "dz",
    "dzone", "datazone", "data", "zone", "rg", "reg", "regnl", "rgnl", "regional",
    "shortco", "longco", "short", "long", "context",
}  # fmt: skip
_AZ_NOT_TOKENS = {"training", "hosting", "grader", "ftuning", "provisioned", "ptu", "storage"}
_AZ_TOKENS = re.compile(r"^(.*?)[\s_-]*(?:\b\d+\s*[KkMm])?\s+Tokens?\s*$|^(.*?)-Tokens?\s*$")


def azure_meter(meter: str) -> Item | None:
    """An Azure OpenAI / Foundry token meter name (``gpt-4o-mini-0718-Inp-glbl Tokens``)."""
    m = _AZ_TOKENS.match(meter.strip())
    if not m:
        return None
    body = (m.group(1) if m.group(1) is not None else m.group(2)).strip(" -_")
    spans = [(w.group(), w.start(), w.end()) for w in re.finditer(r"[^\s_-]+", body)]
    words = [w.lower() for w, _, _ in spans]
    if not words or _AZ_NOT_TOKENS & set(words):
        return None
    if any(w in ("batch",) for w in words):
        tier = "batch"
    elif any(w in ("pp", "priority") for w in words):
        tier = "priority"
    elif "flex" in words:
        tier = "flex"
    else:
        tier = "standard"
    anchor = next((i for i, w in enumerate(words) if w in _AZ_ANCHORS), None)
    model_end = len(words) if anchor is None else anchor
    kept = [i for i in range(model_end) if words[i] not in _AZ_QUALIFIERS]
    model = body[: spans[kept[-1]][2]].strip() if kept else None
    rest = set(words[model_end:])
    if anchor is None:
        # An embeddings meter has no direction: all of it is input.
        if any("embedding" in w for w in words):
            return Item("input", model, tier)
        return None
    if rest & _AZ_CACHED:
        return Item("cache_write" if rest & _AZ_WRITE else "cache_read", model, tier)
    if rest & _AZ_REASONING:
        return Item("reasoning", model, tier)
    if rest & _AZ_OUTPUT:
        return Item("output", model, tier)
    if rest & _AZ_INPUT:
        return Item("input", model, tier)
    return None


_SKU_STOP = {
    "ga", "preview", "global", "live", "batch", "priority", "flex", "standard", "text",
    "audio", "image", "images", "video", "multimodal", "input", "output", "thinking",
    "caching", "cached", "cache", "long", "short", "predictions", "tokens", "token",
    "context", "reasoning", "prompt", "response", "online", "char", "characters",
}  # fmt: skip
_SKU_NOT_TOKENS = re.compile(
    r"storage|training|tuning|provisioned|grounding|per hour|\bhours?\b|\bseconds?\b|"
    r"\bminutes?\b|\bcharacters?\b|\brequests?\b|\bpages?\b",
    re.I,
)
_GENERATE = re.compile(
    r"^generate content (?P<dir>(?:cached )?input|output|cache(?:d)? (?:read|write)[\w ]*?)"
    r" token count (?P<rest>.+)$",
    re.I,
)
_THINKING_OUTPUT = re.compile(r"\bthinking\s+(?:(?:text|audio|image|video)\s+)?output\b", re.I)


def sku_description(desc: str) -> Item | None:
    """A cloud SKU description (Vertex AI Gemini, partner models): direction and model."""
    text = desc.strip()
    low = text.lower()
    if _SKU_NOT_TOKENS.search(low) or text.startswith("$"):
        return None
    tier = next((_TIERS[w] for w in re.findall(r"[a-z]+", low) if w in _TIERS), "standard")
    g = _GENERATE.match(text)
    if g:  # Generate content output token count gemini 2.5 flash short output text thinking
        rest = g.group("rest")
        words = rest.split()
        n = next((i for i, w in enumerate(words) if w.lower() in _SKU_STOP), len(words))
        model = " ".join(words[:n]) or None
        direction = g.group("dir").lower()
        tail = {w.lower() for w in words[n:]}
        if "cache" in direction:
            is_write = "write" in direction
            return Item("cache_write" if is_write else "cache_read", model, tier)
        if direction == "output":
            thinking = "thinking" in tail and "non-thinking" not in tail
            return Item("reasoning" if thinking else "output", model, tier)
        return Item("input", model, tier)
    if not (low.endswith("predictions") or "token" in low or "caching" in low):
        return None
    words = re.findall(r"[^\s()\-]+(?:-[^\s()\-]+)*", text)
    lower = [w.lower() for w in words]
    n = next((i for i, w in enumerate(lower) if w in _SKU_STOP), len(words))
    model = " ".join(words[:n]) or None
    rest = set(lower[n:])
    if "caching" in rest or "cached" in rest or ("cache" in rest and "read" in rest):
        if not ({"input", "read", "text"} & rest or "token" in low):
            return None
        return Item("cache_read", model, tier)
    if "cache" in rest and ("write" in rest or "creation" in rest):
        one_hour = "1h" in rest or "1-hour" in rest
        return Item("cache_write_1h" if one_hour else "cache_write", model, tier)
    if _THINKING_OUTPUT.search(text) or ("reasoning" in rest and "output" in rest):
        return Item("reasoning", model, tier)
    if "output" in rest:
        return Item("output", model, tier)
    if "input" in rest or "prompt" in rest:
        return Item("input", model, tier)
    return None


def classify(
    *,
    usage_type: str | None = None,
    meters: Sequence[str | None] = (),
    description: str | None = None,
    service_name: str | None = None,
) -> Item | None:
    """The first label that names a token category, most specific first."""
    item: Item | None = None
    if usage_type:
        item = bedrock_usage_type(usage_type, service_name)
    for label in (*meters, description):
        if item is not None:
            break
        # Price sentences ("$0.003 per 1K input tokens for ...") name no model: skip them.
        if label and not label.lstrip().startswith("$") and " per " not in label:
            item = azure_meter(label) or sku_description(label)
    if item is not None and item.model is None and service_name:
        edition = _BEDROCK_EDITION.search(service_name)
        if edition:
            item = Item(item.category, service_name[: edition.start()].strip(), item.service_tier)
    return item


_PROVIDERS = (
    (re.compile(r"\b(?:amazon|aws)\b"), "aws"),
    (re.compile(r"\b(?:microsoft|azure)\b"), "azure"),
    (re.compile(r"\b(?:google|gcp)\b"), "google"),
    (re.compile(r"\b(?:oracle|oci)\b"), "oracle"),
    (re.compile(r"\bopenai\b"), "openai"),
    (re.compile(r"\banthropic\b"), "anthropic"),
)


def provider_id(name: str | None) -> str | None:
    """A catalogue provider id from a FOCUS ProviderName ("AWS", "Microsoft", "Google Cloud")."""
    if not name:
        return None
    low = name.strip().lower()
    for pattern, pid in _PROVIDERS:
        if pattern.search(low):
            return pid
    return "-".join(re.findall(r"[a-z0-9]+", low)) or None


# --- units: how many tokens one unit of a quantity is ---------------------------------------

_UNIT = re.compile(
    r"(?:(?P<n>\d+)\s*(?P<k>k|m|thousand|million)?\s*)?(?P<what>tokens?|counts?|units?)?"
)


def unit_tokens(unit: str | None) -> tuple[str, int | None]:
    """("tokens", n) for a token unit ("1K Tokens", "Tokens", bare "1M", GCP "count"),
    ("generic", None) for "Units", ("none", None) for anything else."""
    if not unit or not unit.strip():
        return "none", None
    m = _UNIT.fullmatch(unit.strip().lower())
    if not m or not (m.group("n") or m.group("what")):
        return "none", None
    what = m.group("what") or ""
    if what.startswith("unit") and not m.group("n") and not m.group("k"):
        return "generic", None
    if what.startswith("unit"):
        return "none", None  # "1000 Units" of something
    n = int(m.group("n") or 1)
    scale = {"k": 1000, "thousand": 1000, "m": 1_000_000, "million": 1_000_000}
    return "tokens", n * scale.get(m.group("k") or "", 1)


def token_multipliers(
    consumed_unit: str | None, pricing_unit: str | None, block_size: str | None
) -> tuple[int | None, int | None]:
    """Tokens per unit of ConsumedQuantity and of PricingQuantity (None: not in tokens).

    A generic PricingUnit ("Units", Microsoft's export) counts in blocks of
    ``x_PricingBlockSize`` when the file gives one; otherwise it is not guessed.
    """
    kind, consumed = unit_tokens(consumed_unit)
    pkind, pricing = unit_tokens(pricing_unit)
    if pkind == "generic" and block_size:
        try:
            size = Decimal(block_size)
        except InvalidOperation:
            size = Decimal(0)
        if size.is_finite() and size > 0 and size == size.to_integral_value():
            pricing, pkind = int(size), "tokens"
    return (consumed if kind == "tokens" else None, pricing if pkind == "tokens" else None)
