"""The providers' billing exports that go with the sample's logs (``billing/``).

``write`` turns the calls of a :class:`tokenaudit.sample.World` into four JSON documents, as
the providers' admin APIs return them for daily buckets (UTC midnight to midnight, one
bucket per day of the range, one page when the range fits the API's page limit, else a JSON
list of pages):

- ``openai-usage-completions.json``: Usage API, completions, ``group_by=model,project_id``;
- ``openai-costs.json``: Costs API, ``group_by=line_item`` ("<snapshot>, input" etc.);
- ``anthropic-usage-report.json``: usage report (messages), ``group_by[]=model``;
- ``anthropic-cost-report.json``: cost report, ``group_by[]=description``, cents as strings.

Models are named as the APIs report them: dated snapshots (``gpt-4o-mini-2024-07-18``)
where the logs use the alias, OpenAI projects by an opaque ``proj_`` id. Only successful
calls are billed (a failed call has no tokens and is no model request). A call's cost is
its tokens per category times the catalogue's price per million at the call's day, tier
and input size (:mod:`tokenaudit.pricing.catalogue`, the prices the loader uses), summed
exactly in Decimal; as the cost is linear in tokens, the calls of a day, model and price
row are summed first. Billed usage equals the logged usage day by day and model by model,
except for two injected effects, both returned as labels:

- unlogged traffic: on up to ``UNLOGGED_DAYS`` non-adjacent days (not the first or last),
  one provider is billed for traffic that never reached the logs, a chosen share of that
  day's billed cost: every token count and request count of the day is scaled by
  ``1 / (1 - share)`` (rounded to whole tokens), so costs follow on the same models;
- a negotiated discount: the Anthropic model with the most logged spend is billed at
  ``DISCOUNT`` off list price on every day in the cost report; its usage report is unchanged.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from random import Random
from typing import Any

from tokenaudit.sample import DAY_MS, World

FOLDER = "billing"
OPENAI_USAGE = "openai-usage-completions.json"
OPENAI_COSTS = "openai-costs.json"
ANTHROPIC_USAGE = "anthropic-usage-report.json"
ANTHROPIC_COSTS = "anthropic-cost-report.json"
FILES = (OPENAI_USAGE, OPENAI_COSTS, ANTHROPIC_USAGE, ANTHROPIC_COSTS)
# The dated snapshot the APIs report for each alias the logs use.
SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o3-mini": "o3-mini-2025-01-31",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
}
UNLOGGED_DAYS = 3
UNLOGGED_PROVIDERS = ("openai", "anthropic", "openai")
UNLOGGED_SHARE = (0.12, 0.25)  # drawn per day, to 2 decimals
DISCOUNT = Decimal("0.15")
LONG_CONTEXT = 200_000  # Anthropic's context_window boundary (total input tokens)
PAGE_LIMIT = {OPENAI_USAGE: 31, OPENAI_COSTS: 180, ANTHROPIC_USAGE: 31, ANTHROPIC_COSTS: 31}
# Token categories of a cell, then its request count.
CATS = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning")
REQUESTS = len(CATS)
# Costs API line item pieces ("<model>, <piece>") and the categories each bills.
OPENAI_PIECES = (
    ("input", ("input",)),
    ("cached input", ("cache_read",)),
    ("cache writes", ("cache_write", "cache_write_1h")),
    ("output", ("output", "reasoning")),
)
# Cost report token_type, description suffix, categories.
ANTHROPIC_TYPES = (
    ("uncached_input_tokens", "Input Tokens", ("input",)),
    ("cache_read_input_tokens", "Input Tokens, Cache Read", ("cache_read",)),
    ("cache_creation.ephemeral_5m_input_tokens", "Input Tokens, 5m Cache Write", ("cache_write",)),
    (
        "cache_creation.ephemeral_1h_input_tokens",
        "Input Tokens, 1h Cache Write",
        ("cache_write_1h",),
    ),
    ("output_tokens", "Output Tokens", ("output", "reasoning")),
)
_NO_AUDIO_OR_IMAGES = tuple(
    f"{d}_{c}{m}_tokens"
    for m in ("audio", "image")
    for d, c in (("input", ""), ("input", "cached_"), ("output", ""))
)
_MILLION = Decimal(1_000_000)
_RAW = "\x00raw:"  # marks a JSON number written from a Decimal's exact text
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# (provider, day, model, project, context window, price per million per CATS)
Key = tuple[str, int, str, str, str, tuple[Decimal, ...]]


def plain(d: Decimal) -> str:
    """A Decimal as plain text: no exponent, no trailing zeros."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def _number(d: Decimal) -> str:
    """A JSON number of at most 10 decimals (exact for the sample's prices)."""
    return _RAW + plain(d.quantize(Decimal("1e-10"), ROUND_HALF_EVEN))


def _dumps(doc: Any) -> str:
    text = json.dumps(doc, indent=1)
    return re.sub(r'"\\u0000raw:(-?[0-9.]+)"', r"\1", text) + "\n"


def _or(value: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if value is None else value


def _price(
    rows: dict[tuple[str, str], list[Any]], provider: str, model: str, day: dt.date, total: int
) -> tuple[Decimal, ...]:
    """Per-million prices in CATS order, falling back between them as the loader's cost SQL."""
    from tokenaudit.pricing.catalogue import resolve

    if (provider, model) not in rows:
        found = resolve(provider, model)[1]
        rows[(provider, model)] = [r for r in found if r.service_tier == "standard"]
    for r in rows[(provider, model)]:
        upto = total if r.input_upto is None else r.input_upto
        if (
            r.effective_from <= day < (r.effective_to or dt.date.max)
            and r.input_above < total <= upto
        ):
            inp, read, write, write_1h, out, reasoning = r.prices
            if inp is not None and out is not None:
                w = _or(write, inp)
                return inp, _or(read, inp), w, _or(write_1h, w), out, _or(reasoning, out)
    raise ValueError(f"{provider}/{model}: no catalogue price on {day}")


def _cells(w: World) -> dict[Key, list[int]]:
    """Token and request counts (CATS, then requests) of the billable calls per Key."""
    prices: dict[tuple[str, str], list[Any]] = {}
    cells: dict[Key, list[int]] = {}
    for c in w.calls:
        if c.http_status != 200:
            continue
        provider, day = c.ctx.wf.provider, c.ts // DAY_MS
        total = c.input + c.cache_read + c.cache_write + c.cache_write_1h
        window = "0-200k" if total <= LONG_CONTEXT else "200k-1M"
        price = _price(prices, provider, c.model, w.start + dt.timedelta(day), total)
        key = (provider, day, c.model, c.ctx.wf.project, window, price)
        counts = (c.input, c.cache_read, c.cache_write, c.cache_write_1h, c.output - c.reasoning)
        v = cells.setdefault(key, [0] * (REQUESTS + 1))
        for i, n in enumerate((*counts, c.reasoning, 1)):
            v[i] += n
    return dict(sorted(cells.items(), key=lambda kv: kv[0][:5]))


def _cost(key: Key, v: list[int], cats: tuple[str, ...] = CATS) -> Decimal:
    return sum((v[CATS.index(k)] * key[5][CATS.index(k)] for k in cats), Decimal(0)) / _MILLION


def _unlogged_days(rng: Random, days: int) -> list[tuple[int, str, Decimal]]:
    """(day, provider, share): one day in each third of the inner days, none adjacent."""
    inner = list(range(1, days - 1))
    providers = list(UNLOGGED_PROVIDERS)
    rng.shuffle(providers)
    chosen: list[tuple[int, str, Decimal]] = []
    for k in range(UNLOGGED_DAYS):
        third = inner[k * len(inner) // UNLOGGED_DAYS : (k + 1) * len(inner) // UNLOGGED_DAYS]
        free = [d for d in third if all(abs(d - x[0]) > 1 for x in chosen)]
        share = Decimal(f"{rng.uniform(*UNLOGGED_SHARE):.2f}")
        if free:
            chosen.append((rng.choice(free), providers[k % len(providers)], share))
    return chosen


def _project_id(seed: int, project: str) -> str:
    digest = hashlib.blake2b(f"{seed}|project|{project}".encode(), digest_size=24).digest()
    return "proj_" + "".join(_ALNUM[b % len(_ALNUM)] for b in digest)


def _display(model: str) -> str:
    """The name cost report descriptions use: claude-sonnet-4-5-20250929 is Claude Sonnet 4.5."""
    m = re.fullmatch(r"claude-([a-z]+)-(\d+)(?:-(\d))?(?:-\d{8})?", model)
    if not m:
        return model
    family, major, minor = m.groups()
    return f"Claude {family.title()} {major}{'.' + minor if minor else ''}"


def _sum(rows: list[tuple[Key, list[int]]]) -> list[int]:
    return [sum(v[i] for _, v in rows) for i in range(REQUESTS + 1)]


def _grouped(
    cells: dict[Key, list[int]], provider: str, day: int, by: Any
) -> dict[Any, list[tuple[Key, list[int]]]]:
    out: dict[Any, list[tuple[Key, list[int]]]] = {}
    for key, v in cells.items():
        if key[0] == provider and key[1] == day:
            out.setdefault(by(key), []).append((key, v))
    return dict(sorted(out.items()))


def _openai_usage(rows: dict[Any, list[tuple[Key, list[int]]]]) -> list[dict[str, Any]]:
    results = []
    for (model, project), group in rows.items():
        v = dict(zip((*CATS, "requests"), _sum(group), strict=True))
        written, output = v["cache_write"] + v["cache_write_1h"], v["output"] + v["reasoning"]
        results.append(
            {
                "object": "organization.usage.completions.result",
                "input_tokens": v["input"] + v["cache_read"] + written,
                "input_cached_tokens": v["cache_read"],
                "input_cache_write_tokens": written,
                "input_uncached_tokens": v["input"],
                "output_tokens": output,
                "input_text_tokens": v["input"],
                "output_text_tokens": output,
                "input_cached_text_tokens": v["cache_read"],
                **dict.fromkeys(_NO_AUDIO_OR_IMAGES, 0),
                "num_model_requests": v["requests"],
                "project_id": project,
                **dict.fromkeys(("user_id", "api_key_id"), None),
                "model": model,
                **dict.fromkeys(("batch", "service_tier"), None),
            }
        )
    return results


def _openai_costs(rows: dict[Any, list[tuple[Key, list[int]]]]) -> list[dict[str, Any]]:
    results = []
    for model, group in rows.items():
        for piece, cats in OPENAI_PIECES:
            quantity = sum(v[CATS.index(k)] for _, v in group for k in cats)
            if quantity:
                amount = sum((_cost(k, v, cats) for k, v in group), Decimal(0))
                results.append(
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": _number(amount), "currency": "usd"},
                        "line_item": f"{model}, {piece}",
                        "project_id": None,
                        "api_key_id": None,
                        "quantity": quantity,
                        "quantity_unit": "tokens",
                    }
                )
    return results


def _anthropic_usage(rows: dict[Any, list[tuple[Key, list[int]]]]) -> list[dict[str, Any]]:
    results = []
    for (model, window), group in rows.items():
        v = dict(zip((*CATS, "requests"), _sum(group), strict=True))
        results.append(
            {
                "uncached_input_tokens": v["input"],
                "cache_creation": {
                    "ephemeral_1h_input_tokens": v["cache_write_1h"],
                    "ephemeral_5m_input_tokens": v["cache_write"],
                },
                "cache_read_input_tokens": v["cache_read"],
                "output_tokens": v["output"] + v["reasoning"],
                "server_tool_use": {"web_search_requests": 0},
                "api_key_id": None,
                "workspace_id": None,
                "model": model,
                "service_tier": "standard",
                "context_window": window,
            }
        )
    return results


def _anthropic_costs(
    rows: dict[Any, list[tuple[Key, list[int]]]], discounted: str
) -> list[dict[str, Any]]:
    results = []
    for (model, window), group in rows.items():
        factor = 1 - DISCOUNT if model == discounted else Decimal(1)
        for token_type, what, cats in ANTHROPIC_TYPES:
            if any(v[CATS.index(k)] for _, v in group for k in cats):
                amount = sum((_cost(k, v, cats) for k, v in group), Decimal(0)) * factor
                results.append(
                    {
                        "currency": "USD",
                        "amount": plain(amount * 100),
                        "workspace_id": None,
                        "description": f"{_display(model)} Usage - {what}",
                        "cost_type": "tokens",
                        "context_window": window,
                        "model": model,
                        "service_tier": "standard",
                        "token_type": token_type,
                    }
                )
    return results


def _pages(name: str, buckets: list[dict[str, Any]]) -> Any:
    """One page (a JSON object), or a list of pages when the buckets exceed the API's limit."""
    openai = name.startswith("openai")
    limit = PAGE_LIMIT[name]
    chunks = [buckets[i : i + limit] for i in range(0, len(buckets), limit)] or [[]]
    pages: list[dict[str, Any]] = []
    for i, chunk in enumerate(chunks):
        nxt = None
        if i + 1 < len(chunks):
            first = chunks[i + 1][0]
            cursor = str(first["start_time"] if openai else first["starting_at"]).encode()
            nxt = "page_" + base64.b64encode(cursor).decode()
        page: dict[str, Any] = {"object": "page"} if openai else {}
        page.update(data=chunk, has_more=nxt is not None, next_page=nxt)
        pages.append(page)
    return pages[0] if len(pages) == 1 else pages


def _total(
    cells: dict[Key, list[int]],
    provider: str,
    day: int | None = None,
    model: str | None = None,
    discounted: str = "",
) -> Decimal:
    """The cost of the cells of ``provider`` (on ``day``, of ``model``), ``discounted``'s
    at the negotiated price."""
    return sum(
        (
            _cost(k, v) * (1 - DISCOUNT if k[2] == discounted else 1)
            for k, v in cells.items()
            if k[0] == provider and day in (None, k[1]) and model in (None, k[2])
        ),
        Decimal(0),
    )


def write(out: Path, w: World) -> tuple[dict[str, Any], list[Path]]:
    """Write the four billing files into ``out / FOLDER``; their labels and paths."""
    rng = Random(int.from_bytes(hashlib.blake2b(f"{w.seed}:billing".encode()).digest()[:8]))
    logged = _cells(w)
    days = max(w.days, 1 + max((k[1] for k in logged), default=0))
    claude = sorted({k[2] for k in logged if k[0] == "anthropic"})
    discounted = max(claude, key=lambda m: _total(logged, "anthropic", model=m), default="")
    unlogged = _unlogged_days(rng, days)
    factors = {(p, d): s / (1 - s) for d, p, s in unlogged}
    billed: dict[Key, list[int]] = {}
    for key, v in logged.items():
        f = factors.get(key[:2])
        billed[key] = [n + int((n * f).to_integral_value(ROUND_HALF_EVEN)) for n in v] if f else v
    names = {m: SNAPSHOTS.get(m, m) for m in sorted({k[2] for k in logged})}
    projects = {
        p: _project_id(w.seed, p) for p in sorted({k[3] for k in logged if k[0] == "openai"})
    }
    docs: dict[str, list[dict[str, Any]]] = {name: [] for name in FILES}
    origin = dt.datetime.combine(w.start, dt.time(), dt.UTC)
    for day in range(days):
        t0 = origin + dt.timedelta(days=day)
        t1 = t0 + dt.timedelta(days=1)
        unix = {"object": "bucket", "start_time": int(t0.timestamp())}
        unix["end_time"] = int(t1.timestamp())
        iso = {"starting_at": f"{t0:%Y-%m-%dT%H:%M:%SZ}", "ending_at": f"{t1:%Y-%m-%dT%H:%M:%SZ}"}
        usage = _grouped(billed, "openai", day, lambda k: (names[k[2]], projects[k[3]]))
        by_model = _grouped(billed, "openai", day, lambda k: names[k[2]])
        claude_rows = _grouped(billed, "anthropic", day, lambda k: (names[k[2]], k[4]))
        docs[OPENAI_USAGE].append({**unix, "results": _openai_usage(usage)})
        docs[OPENAI_COSTS].append({**unix, "results": _openai_costs(by_model)})
        docs[ANTHROPIC_USAGE].append({**iso, "results": _anthropic_usage(claude_rows)})
        costs = _anthropic_costs(claude_rows, names.get(discounted, ""))
        docs[ANTHROPIC_COSTS].append({**iso, "results": costs})
    paths = [out / FOLDER / name for name in FILES]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        path.write_text(_dumps(_pages(path.name, docs[path.name])), encoding="utf-8")
    unlogged_labels = []
    for day, provider, share in sorted(unlogged):
        total = _total(billed, provider, day, discounted=discounted)
        paid = _total(logged, provider, day, discounted=discounted)
        unlogged_labels.append(
            {
                "provider": provider,
                "day": (w.start + dt.timedelta(day)).isoformat(),
                "share_of_billed_cost": str(share),
                "billed_cost_usd": plain(total),
                "unlogged_cost_usd": plain(total - paid),
            }
        )
    model_list = _total(billed, "anthropic", model=discounted)
    discount = {
        "provider": "anthropic",
        "model": discounted,
        "billed_model": names.get(discounted),
        "discount": str(DISCOUNT),
        "list_cost_usd": plain(model_list),
        "billed_cost_usd": plain(model_list * (1 - DISCOUNT)),
    }
    totals = {
        p: {
            "logged_cost_usd": plain(_total(logged, p)),
            "billed_cost_usd": plain(_total(billed, p, discounted=discounted)),
        }
        for p in ("openai", "anthropic")
    }
    labels = {
        "files": [f"{FOLDER}/{name}" for name in FILES],
        "bucket_width": "1d",
        "billed_calls": "successful calls only: a failed call has no tokens, no cost, no request",
        "model_names": names,
        "openai_project_ids": projects,
        "unlogged": unlogged_labels,
        "discounts": [discount] if discounted else [],
        "totals": totals,
    }
    return labels, paths
