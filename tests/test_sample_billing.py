"""`tokenaudit sample`'s billing exports: valid per the providers' formats, equal to the logs
(priced by the loader) day by day and model by model, but for the labelled injections."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from genai_prices import Usage, calc_price

from tests.conftest import load
from tokenaudit import db
from tokenaudit.sample import LABELS_NAME, SampleSummary, generate

FILES = {
    "openai_usage": "billing/openai-usage-completions.json",
    "openai_costs": "billing/openai-costs.json",
    "anthropic_usage": "billing/anthropic-usage-report.json",
    "anthropic_costs": "billing/anthropic-cost-report.json",
}
DAY = 86_400
RFC3339_DAY = re.compile(r"\d{4}-\d\d-\d\dT00:00:00Z")
CENTS = re.compile(r"(0|[1-9]\d*)(\.\d*[1-9])?")
SNAPSHOT = re.compile(r"(.+?)-(\d{4}-\d\d-\d\d|\d{8})")  # gpt-4o-2024-08-06, claude-…-20250929
OPENAI_PIECES = {"input", "cached input", "output"}
ANTHROPIC_TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
}
CATS = ("input", "cache_read", "cache_write", "cache_write_1h", "output")
# (provider, day, logged model) -> category -> tokens; "requests"; "cost" (Decimal USD)
Totals = dict[tuple[str, dt.date, str], dict[str, Any]]


def alias(model: str) -> str:
    """The logs' name of a billed model: the dated snapshot suffix removed."""
    m = SNAPSHOT.fullmatch(model)
    return m.group(1) if m and not model.startswith("ft:") else model


def pages(doc: Any) -> list[dict[str, Any]]:
    return doc if isinstance(doc, list) else [doc]


@dataclass(frozen=True)
class Billing:
    summary: SampleSummary
    docs: dict[str, Any]  # parsed with exact Decimals
    raw: dict[str, str]
    labels: dict[str, Any]
    logged: Totals  # from the loaded logs

    def buckets(self, name: str) -> list[dict[str, Any]]:
        return [b for p in pages(self.docs[name]) for b in p["data"]]

    def billed(self) -> Totals:
        """The billing files' tokens (usage reports), requests and cost (cost reports)."""
        out: Totals = defaultdict(lambda: defaultdict(int))
        for b in self.buckets("openai_usage"):
            day = dt.datetime.fromtimestamp(b["start_time"], dt.UTC).date()
            for r in b["results"]:
                t = out[("openai", day, alias(r["model"]))]
                t["input"] += r["input_tokens"] - r["input_cached_tokens"]
                t["cache_read"] += r["input_cached_tokens"]
                t["output"] += r["output_tokens"]
                t["requests"] += r["num_model_requests"]
        for b in self.buckets("openai_costs"):
            day = dt.datetime.fromtimestamp(b["start_time"], dt.UTC).date()
            for r in b["results"]:
                model, _ = r["line_item"].rsplit(", ", 1)
                out[("openai", day, alias(model))]["cost"] += r["amount"]["value"]
        for b in self.buckets("anthropic_usage"):
            day = dt.date.fromisoformat(b["starting_at"][:10])
            for r in b["results"]:
                t = out[("anthropic", day, alias(r["model"]))]
                t["input"] += r["uncached_input_tokens"]
                t["cache_read"] += r["cache_read_input_tokens"]
                t["cache_write"] += r["cache_creation"]["ephemeral_5m_input_tokens"]
                t["cache_write_1h"] += r["cache_creation"]["ephemeral_1h_input_tokens"]
                t["output"] += r["output_tokens"]
        for b in self.buckets("anthropic_costs"):
            day = dt.date.fromisoformat(b["starting_at"][:10])
            for r in b["results"]:
                out[("anthropic", day, alias(r["model"]))]["cost"] += Decimal(r["amount"]) / 100
        return out

    def unlogged(self) -> dict[tuple[str, dt.date], Decimal]:
        return {
            (u["provider"], dt.date.fromisoformat(u["day"])): Decimal(u["share_of_billed_cost"])
            for u in self.labels["unlogged"]
        }

    def discounts(self) -> dict[str, Decimal]:
        return {d["model"]: Decimal(d["discount"]) for d in self.labels["discounts"]}


_LOGGED_SQL = """SELECT provider, CAST(ts AS DATE), model, sum(cost_usd),
    count(*) FILTER (WHERE status = 'ok'), sum(input_tokens), sum(cache_read_tokens),
    sum(cache_write_tokens), sum(cache_write_1h_tokens), sum(output_tokens)
FROM usage_events GROUP BY ALL HAVING count(*) FILTER (WHERE status = 'ok') > 0"""


def logged_totals(con: duckdb.DuckDBPyConnection, logs: Path) -> Totals:
    load(con, logs)
    out: Totals = {}
    for provider, day, model, cost, ok, *tokens in con.execute(_LOGGED_SQL).fetchall():
        out[(provider, day, model)] = {
            "cost": cost,
            "requests": ok,
            **dict(zip(CATS, tokens, strict=True)),
        }
    return out


def read(out: Path, con: duckdb.DuckDBPyConnection, summary: SampleSummary) -> Billing:
    raw = {k: (out / f).read_text(encoding="utf-8") for k, f in FILES.items()}
    docs = {k: json.loads(v, parse_float=Decimal) for k, v in raw.items()}
    labels = json.loads((out / LABELS_NAME).read_text(encoding="utf-8"))
    return Billing(summary, docs, raw, labels["billing"], logged_totals(con, out / "logs"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billing]:
    out = tmp_path_factory.mktemp("sample")
    summary = generate(out)
    with db.connect(":memory:") as con:
        yield read(out, con, summary)


def test_files_are_written_listed_and_labelled(sample: Billing) -> None:
    out = sample.summary.out
    assert {p.relative_to(out).as_posix() for p in sample.summary.files} >= set(FILES.values())
    assert sample.labels["files"] == list(FILES.values())
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert all(f"`{f}`" in readme for f in FILES.values())
    labels = json.loads((out / LABELS_NAME).read_text(encoding="utf-8"))
    # added, nothing moved (the recorded exchanges' keys come after)
    assert list(labels)[-3:] == ["billing", "exchanges", "token_drift"] and "drains" in labels
    days = sorted(dt.date.fromisoformat(u["day"]) for u in sample.labels["unlogged"])
    assert len(days) == 3 and {u["provider"] for u in sample.labels["unlogged"]} == {
        "openai",
        "anthropic",
    }
    assert all((b - a).days > 1 for a, b in itertools.pairwise(days))
    assert dt.date(2026, 10, 1) < days[0] and days[-1] < dt.date(2026, 10, 30)
    (d,) = sample.labels["discounts"]
    assert d["provider"] == "anthropic" and Decimal(d["discount"]) == Decimal("0.15")
    assert d["model"] == "claude-sonnet-4-5"  # the Anthropic model with the most spend


def _envelope(doc: dict[str, Any], openai: bool, days: int = 30) -> list[dict[str, Any]]:
    keys = {"data", "has_more", "next_page"} | ({"object"} if openai else set())
    assert set(doc) == keys and doc["has_more"] is False and doc["next_page"] is None
    if openai:
        assert doc["object"] == "page"
    buckets: list[dict[str, Any]] = doc["data"]
    assert len(buckets) == days
    return buckets


def test_openai_usage_is_a_valid_completions_page(sample: Billing) -> None:
    buckets = _envelope(sample.docs["openai_usage"], openai=True)
    start = int(dt.datetime(2026, 10, 1, tzinfo=dt.UTC).timestamp())
    models = set()
    for i, b in enumerate(buckets):
        assert set(b) == {"object", "start_time", "end_time", "results"}
        assert b["object"] == "bucket"
        assert (b["start_time"], b["end_time"]) == (start + i * DAY, start + (i + 1) * DAY)
        assert b["results"]
        for r in b["results"]:
            assert r["object"] == "organization.usage.completions.result"
            counts = {k: v for k, v in r.items() if k.endswith(("_tokens", "_requests"))}
            assert all(type(v) is int and v >= 0 for v in counts.values())
            assert r["input_tokens"] == (
                r["input_cached_tokens"]
                + r["input_cache_write_tokens"]
                + r["input_uncached_tokens"]
            )
            assert r["input_cache_write_tokens"] == 0 and r["num_model_requests"] > 0
            assert re.fullmatch(r"proj_[A-Za-z0-9]{24}", r["project_id"])
            assert r["user_id"] is r["api_key_id"] is r["batch"] is r["service_tier"] is None
            models.add(r["model"])
    assert "gpt-4o-mini-2024-07-18" in models
    assert all(SNAPSHOT.fullmatch(m) or m.startswith("ft:") for m in models)
    ids = sample.labels["openai_project_ids"]
    used = {r["project_id"] for b in buckets for r in b["results"]}
    assert used == set(ids.values()) and len(ids) == len(used)


def test_openai_costs_are_exact_numbers_by_line_item(sample: Billing) -> None:
    buckets = _envelope(sample.docs["openai_costs"], openai=True)
    # Amounts are JSON numbers with at most 10 decimals (exact, parsed as Decimal here).
    values = re.findall(r'"value": ([^,\n}]+)', sample.raw["openai_costs"])
    assert values and all(re.fullmatch(r"\d+(\.\d{1,10})?", v) for v in values)
    quantities: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for b in buckets:
        for r in b["results"]:
            assert set(r) == {
                "object",
                "amount",
                "line_item",
                "project_id",
                "api_key_id",
                "quantity",
                "quantity_unit",
            }
            assert r["object"] == "organization.costs.result"
            value = r["amount"]["value"]
            assert r["amount"]["currency"] == "usd" and isinstance(value, Decimal | int)
            assert value > 0 and r["quantity_unit"] == "tokens"
            model, piece = r["line_item"].rsplit(", ", 1)
            assert piece in OPENAI_PIECES and type(r["quantity"]) is int
            quantities[(b["start_time"], model)][piece] = r["quantity"]
    per_model: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for b in sample.buckets("openai_usage"):
        for r in b["results"]:
            t = per_model[(b["start_time"], r["model"])]
            t["input"] += r["input_uncached_tokens"]
            t["cached input"] += r["input_cached_tokens"]
            t["output"] += r["output_tokens"]
    assert set(quantities) == set(per_model)
    for key, q in quantities.items():
        assert q == {k: v for k, v in per_model[key].items() if v}, key


def test_anthropic_usage_is_a_valid_messages_report(sample: Billing) -> None:
    buckets = _envelope(sample.docs["anthropic_usage"], openai=False)
    for i, b in enumerate(buckets):
        assert set(b) == {"starting_at", "ending_at", "results"}
        assert RFC3339_DAY.fullmatch(b["starting_at"]) and RFC3339_DAY.fullmatch(b["ending_at"])
        start = dt.date.fromisoformat(b["starting_at"][:10])
        assert start == dt.date(2026, 10, 1) + dt.timedelta(i)
        assert dt.date.fromisoformat(b["ending_at"][:10]) == start + dt.timedelta(1)
        assert b["results"]
        for r in b["results"]:
            assert set(r) == {
                "uncached_input_tokens",
                "cache_creation",
                "cache_read_input_tokens",
                "output_tokens",
                "server_tool_use",
                "api_key_id",
                "workspace_id",
                "model",
                "service_tier",
                "context_window",
            }
            tokens = [
                r["uncached_input_tokens"],
                r["cache_read_input_tokens"],
                r["output_tokens"],
                *r["cache_creation"].values(),
            ]
            assert all(type(v) is int and v >= 0 for v in tokens)
            assert set(r["cache_creation"]) == {
                "ephemeral_5m_input_tokens",
                "ephemeral_1h_input_tokens",
            }
            assert r["server_tool_use"] == {"web_search_requests": 0}
            assert r["api_key_id"] is None and r["workspace_id"] is None
            assert r["service_tier"] == "standard" and r["context_window"] == "0-200k"
            assert re.fullmatch(r"claude-[a-z]+-\d-\d-\d{8}", r["model"])


def test_anthropic_costs_are_cent_strings_by_description(sample: Billing) -> None:
    buckets = _envelope(sample.docs["anthropic_costs"], openai=False)
    usage = {
        (b["starting_at"], r["model"]): r
        for b in sample.buckets("anthropic_usage")
        for r in b["results"]
    }
    seen = set()
    for b in buckets:
        for r in b["results"]:
            assert set(r) == {
                "currency",
                "amount",
                "workspace_id",
                "description",
                "cost_type",
                "context_window",
                "model",
                "service_tier",
                "token_type",
            }
            assert r["currency"] == "USD" and isinstance(r["amount"], str)
            assert CENTS.fullmatch(r["amount"]) and Decimal(r["amount"]) > 0
            assert re.fullmatch(
                r"Claude (Haiku|Sonnet|Opus) \d\.\d Usage - [A-Za-z0-9 ,]+", r["description"]
            )
            assert r["cost_type"] == "tokens" and r["workspace_id"] is None
            assert r["service_tier"] == "standard" and r["context_window"] == "0-200k"
            assert r["token_type"] in ANTHROPIC_TOKEN_TYPES
            u = usage[(b["starting_at"], r["model"])]  # a cost line has usage behind it
            tokens = u["cache_creation"] | {k: v for k, v in u.items() if k.endswith("tokens")}
            assert tokens[r["token_type"].rsplit(".", 1)[-1]] > 0
            seen.add(r["token_type"])
    assert seen == set(ANTHROPIC_TOKEN_TYPES)  # the sample has every kind of token


def _discounted(sample: Billing, key: tuple[str, dt.date, str]) -> Decimal:
    """The logged cost of ``key`` at the price the provider charges (labelled discount)."""
    cost: Decimal = sample.logged[key]["cost"]
    return cost * (1 - sample.discounts().get(key[2], Decimal(0)))


def test_billed_equals_logged_on_every_other_day(sample: Billing) -> None:
    billed, unlogged = sample.billed(), sample.unlogged()
    assert {k for k in billed if k[:2] not in unlogged} == {
        k for k in sample.logged if k[:2] not in unlogged
    }
    checked = 0
    for key, logged in sample.logged.items():
        if key[:2] in unlogged:
            continue
        b = billed[key]
        assert all(b[c] == logged[c] for c in CATS), key
        assert b["cost"] == _discounted(sample, key), key  # exact, per day and model
        if key[0] == "openai":
            assert b["requests"] == logged["requests"], key
        checked += 1
    assert checked > 200
    totals = sample.labels["totals"]
    for provider in ("openai", "anthropic"):
        logged_cost = sum(v["cost"] for k, v in sample.logged.items() if k[0] == provider)
        billed_cost = sum(v["cost"] for k, v in billed.items() if k[0] == provider)
        assert Decimal(totals[provider]["logged_cost_usd"]) == logged_cost
        assert Decimal(totals[provider]["billed_cost_usd"]) == billed_cost


def test_unlogged_days_carry_the_labelled_share(sample: Billing) -> None:
    billed = sample.billed()
    labels = {(u["provider"], u["day"]): u for u in sample.labels["unlogged"]}
    for (provider, day), share in sample.unlogged().items():
        keys = [k for k in sample.logged if k[:2] == (provider, day)]
        assert {k for k in billed if k[:2] == (provider, day)} == set(keys)  # same models
        paid = sum(_discounted(sample, k) for k in keys)
        total = sum(billed[k]["cost"] for k in keys)
        assert abs((1 - paid / total) - share) < Decimal("0.005"), (provider, day)
        label = labels[(provider, day.isoformat())]
        assert Decimal(label["billed_cost_usd"]) == total
        assert Decimal(label["unlogged_cost_usd"]) == total - paid
        for k in keys:  # the extra traffic is spread over the day's models in proportion
            for c in CATS:
                logged, more = Decimal(sample.logged[k][c]), Decimal(billed[k][c])
                assert more == logged == 0 or abs(logged / more - (1 - share)) < 0.01, (k, c)


def _rates(model: str, day: dt.date) -> dict[str, Decimal]:
    """List USD per token per category, straight from genai-prices (short context)."""
    at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    n = 1000
    usages = {
        "input": Usage(input_tokens=n),
        "cache_read": Usage(input_tokens=n, cache_read_tokens=n),
        "cache_write": Usage(input_tokens=n, cache_write_tokens=n),
        "cache_write_1h": Usage(input_tokens=n, cache_write_tokens=n, cache_write_1h_tokens=n),
        "output": Usage(output_tokens=n),
    }
    return {
        c: calc_price(u, model, provider_id="anthropic", genai_request_timestamp=at).total_price / n
        for c, u in usages.items()
    }


def test_discounted_model_is_billed_below_list_on_every_day(sample: Billing) -> None:
    (label,) = sample.labels["discounts"]
    discount = Decimal(label["discount"])
    per_day: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
    for b in sample.buckets("anthropic_costs"):
        for r in b["results"]:
            day = dt.date.fromisoformat(b["starting_at"][:10])
            per_day[(day, r["model"])] += Decimal(r["amount"]) / 100
    days = set()
    for b in sample.buckets("anthropic_usage"):
        day = dt.date.fromisoformat(b["starting_at"][:10])
        for r in b["results"]:
            rates = _rates(r["model"], day)
            tokens = {
                "input": r["uncached_input_tokens"],
                "cache_read": r["cache_read_input_tokens"],
                "cache_write": r["cache_creation"]["ephemeral_5m_input_tokens"],
                "cache_write_1h": r["cache_creation"]["ephemeral_1h_input_tokens"],
                "output": r["output_tokens"],
            }
            list_cost = sum(tokens[c] * rates[c] for c in CATS)
            expected = (
                list_cost * (1 - discount) if alias(r["model"]) == label["model"] else list_cost
            )
            assert abs(per_day[(day, r["model"])] - expected) <= Decimal("0.01"), (day, r["model"])
            if alias(r["model"]) == label["model"]:
                days.add(day)
    assert len(days) == 30  # every day of the range
    assert label["billed_model"] == "claude-sonnet-4-5-20250929"


def test_small_sample_with_a_later_start_still_matches(tmp_path: Path) -> None:
    start = dt.date(2027, 2, 1)
    summary = generate(tmp_path, events=1000, seed=3, start=start, days=7)
    with db.connect(":memory:") as con:
        b = read(tmp_path, con, summary)
    billed, unlogged = b.billed(), b.unlogged()
    assert len(b.buckets("openai_usage")) == len(b.buckets("anthropic_costs")) == 7
    assert unlogged and all(start < d < start + dt.timedelta(6) for _, d in unlogged)
    for key, logged in b.logged.items():
        if key[:2] not in unlogged:
            assert billed[key]["cost"] == _discounted(b, key), key
            assert all(billed[key][c] == logged[c] for c in CATS), key


def test_long_ranges_are_paginated(tmp_path: Path) -> None:
    generate(tmp_path, events=1000, seed=5, days=40)
    for name, limit in (
        ("openai-usage-completions", 31),
        ("openai-costs", 180),
        ("anthropic-usage-report", 31),
        ("anthropic-cost-report", 31),
    ):
        doc = json.loads((tmp_path / "billing" / f"{name}.json").read_text(encoding="utf-8"))
        chain = pages(doc)
        assert len(chain) == -(-40 // limit), name
        for i, page in enumerate(chain):
            last = i == len(chain) - 1
            assert page["has_more"] is not last and (page["next_page"] is None) is last
            assert 0 < len(page["data"]) <= limit
        assert sum(len(p["data"]) for p in chain) == 40
