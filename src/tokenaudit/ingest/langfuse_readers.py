"""Small readers of Langfuse values shared by the Langfuse modules: short text, objects,
metadata, timestamps, whole counts and provider names (no I/O here).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from tokenaudit.ingest.base import RecordError, as_count
from tokenaudit.pricing.names import PROVIDER_ALIASES

JSON = dict[str, Any]

_MIN_TS = dt.datetime(2000, 1, 1)
_MAX_TS = dt.datetime(2100, 1, 1)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def text(value: Any, limit: int = 200) -> str | None:
    """A short scalar as text (ids, names); None for objects, empty or long values."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    s = str(value).strip()
    return s if s and len(s) <= limit else None


def obj(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


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
