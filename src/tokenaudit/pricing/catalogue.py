"""Prices from the bundled genai-prices catalogue, as date-effective rows.

Each distinct (provider, model) in the data is resolved once. The model's
conditional prices (start dates), request variants (batch processing, priority
and flex tiers) and threshold tiers (long-context prices over 200k input tokens)
are flattened into ``PriceRow`` values that SQL joins on day, tier and total
input. The network updater of genai-prices is never called.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any

from tokenaudit.pricing.names import candidates, provider_hint

OPEN_START = dt.date(1970, 1, 1)
SERVICE_TIERS = ("standard", "batch", "priority", "flex")
_CONTEXTS: dict[str, dict[str, str] | None] = {
    "standard": None,
    "batch": {"processing": "batch"},
    "priority": {"service_tier": "priority"},
    "flex": {"service_tier": "flex"},
}
FIELDS = (
    "input_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_mtok",
    "reasoning_mtok",
)
_GENAI_FIELD = {
    "input_mtok": "input_mtok",
    "cache_read_mtok": "cache_read_mtok",
    "cache_write_mtok": "cache_write_mtok",
    "cache_write_1h_mtok": "cache_write_1h_mtok",
    "output_mtok": "output_mtok",
    "reasoning_mtok": "output_reasoning_mtok",
}


@dataclass(frozen=True)
class PriceRow:
    model_id: str
    price_provider: str | None
    service_tier: str
    effective_from: dt.date
    effective_to: dt.date | None
    input_above: int  # applies when total input > input_above ...
    input_upto: int | None  # ... and <= input_upto
    prices: tuple[Decimal | None, ...]  # in FIELDS order, per million tokens
    source: str


@dataclass(frozen=True)
class Resolution:
    model_id: str | None
    price_provider: str | None
    detail: str


@cache
def catalogue_version() -> str:
    from importlib.metadata import version

    return f"genai-prices {version('genai-prices')}"


def resolve(provider: str | None, model: str) -> tuple[Resolution, list[PriceRow]]:
    """Find ``model`` in the catalogue and flatten its prices."""
    found = _find(provider, model)
    if found is None:
        return Resolution(None, None, "not in the genai-prices catalogue"), []
    prov, info = found
    rows = _flatten(prov.id, info)
    if not rows:
        return Resolution(None, prov.id, f"{info.id}: catalogue has no token prices"), []
    return Resolution(info.id, prov.id, f"matched {info.id} ({prov.id})"), rows


def _find(provider: str | None, model: str) -> tuple[Any, Any] | None:
    from genai_prices import data_snapshot

    snap = data_snapshot.get_snapshot()
    hint = provider_hint(provider, model)
    for name in candidates(model):
        for prov_id in (hint, None) if hint else (None,):
            try:
                return snap.find_provider_model(name, None, prov_id, None)
            except LookupError:
                continue
    return None


def _breakpoints(info: Any) -> list[dt.date]:
    from genai_prices import types

    dates = {OPEN_START}
    conds = info.prices if isinstance(info.prices, list) else []
    for cp in conds:
        if isinstance(cp.constraint, types.StartDateConstraint):
            dates.add(cp.constraint.start_date)
    for variant in info.price_variants or []:
        if isinstance(variant.constraint, types.StartDateConstraint):
            dates.add(variant.constraint.start_date)
    return sorted(dates)


def _flatten(provider_id: str, info: Any) -> list[PriceRow]:
    from genai_prices import types

    source = catalogue_version()
    days = _breakpoints(info)
    rows: list[PriceRow] = []
    last: dict[str, list[PriceRow]] = {}  # tier -> segments of the open interval
    for i, start in enumerate(days):
        end = days[i + 1] if i + 1 < len(days) else None
        # Noon UTC: time-of-day prices (off-peak discounts) take their daytime rate.
        at = dt.datetime.combine(start, dt.time(12), tzinfo=dt.UTC)
        for tier, context in _CONTEXTS.items():
            price = info.get_prices(at, context)
            values = {f: getattr(price, g, None) for f, g in _GENAI_FIELD.items()}
            if all(v is None for v in values.values()):
                continue
            thresholds = sorted(
                {
                    t.start
                    for v in values.values()
                    if isinstance(v, types.TieredPrices)
                    for t in v.tiers
                }
            )
            bounds = [-1, *thresholds]
            segs = []
            for k, above in enumerate(bounds):
                upto = bounds[k + 1] if k + 1 < len(bounds) else None
                seg = tuple(_at_threshold(values[f], above) for f in FIELDS)
                segs.append(
                    PriceRow(info.id, provider_id, tier, start, end, above, upto, seg, source)
                )
            prev = last.get(tier)
            if prev and [(p.input_above, p.input_upto, p.prices) for p in prev] == [
                (p.input_above, p.input_upto, p.prices) for p in segs
            ]:
                # Same prices as the previous period: extend it instead of a new row.
                for p in prev:
                    rows[rows.index(p)] = replace(p, effective_to=end)
                last[tier] = [replace(p, effective_to=end) for p in prev]
                continue
            rows.extend(segs)
            last[tier] = segs
    return rows


def _at_threshold(value: Any, above: int) -> Decimal | None:
    from genai_prices import types

    if value is None:
        return None
    if isinstance(value, types.TieredPrices):
        applicable: Decimal = value.base
        for tier in value.tiers:
            if above >= tier.start:
                applicable = tier.price
        return applicable
    return Decimal(value)


def with_source(rows: list[PriceRow], source: str) -> list[PriceRow]:
    return [replace(r, source=source) for r in rows]
