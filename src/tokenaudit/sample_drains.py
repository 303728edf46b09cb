"""The drains ``tokenaudit sample`` injects, and their ground-truth labels.

Each injector adds calls to the ``World`` of :mod:`tokenaudit.sample` (which imports this
module lazily) and returns one label (a JSON-ready dict) naming exactly those calls;
``group_labels`` names the two kinds that are shapes of normal traffic (model_overkill,
rejected_work); ``write_labels`` writes the labels file and the folder's README.md. The
rules each drain follows, and what normal traffic never does, are in
:mod:`tokenaudit.sample`'s docstring.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenaudit.sample import DAY_MS, WF, WORKFLOWS, Call, Ctx, World
from tokenaudit.sample_exchanges import readme as exchanges_readme

KINDS = (
    "duplicate_call",
    "retry_storm",
    "context_bloat",
    "runaway_loop",
    "cache_miss",
    "model_overkill",
    "rejected_work",
)
RUNAWAY_CALLS = 400


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _label(w: World, kind: str, unit: str, calls: list[Call], **extra: Any) -> dict[str, Any]:
    calls = sorted(calls, key=lambda c: c.ts)  # stable: creation order within a millisecond
    first = calls[0]
    wf = first.ctx.wf
    d: dict[str, Any] = {
        "id": "",
        "kind": kind,
        "unit": unit,
        "workflow": wf.name,
        "provider": wf.provider,
        "model": first.model,
    }
    d.update(extra)
    d.update(
        first_seen=w.iso(min(w.logged_ts(c) for c in calls)),
        last_seen=w.iso(max(w.logged_ts(c) for c in calls)),
        calls=len(calls),
        request_ids=[c.request_id for c in calls],
        trace_ids=_unique(c.ctx.trace for c in calls),
        session_ids=_unique(c.ctx.session for c in calls),
    )
    return d


def _numbered(labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    for d in labels:
        seen[d["kind"]] = seen.get(d["kind"], 0) + 1
        d["id"] = f"{d['kind']}-{seen[d['kind']]:03d}"
    return labels


def inject(w: World, scale: float) -> list[dict[str, Any]]:
    """Add the injected drains' calls to ``w``; their labels (counts scale with ``scale``)."""

    def n(base: int) -> int:
        return max(1, round(base * scale))

    labels = [_runaway(w)]
    labels += [_duplicate(w, i) for i in range(n(30))]
    labels += [_storm(w, i) for i in range(n(6))]
    labels += [_bloat_session(w) for _ in range(n(3))]
    labels += _bloat_singles(w, n(16))
    labels += [_cache_miss(w, i) for i in range(n(4))]
    return _numbered(labels)


def _day(w: World) -> int:
    return w.rng.randrange(w.days - 1)  # not the last day: nothing spills past the range


def _runaway(w: World) -> dict[str, Any]:
    """A code-review agent looping reviewer/fixer for 400 calls on the mid-range Saturday."""
    r, wf = w.rng, WF["code-review"]
    saturdays = [d for d in range(w.days) if (w.start + dt.timedelta(d)).weekday() == 5]
    full = [d for d in saturdays if d + 1 < w.days] or saturdays
    day = min(full, key=lambda d: (abs(2 * d - w.days), d))
    c = w.ctx(wf, day)
    c.user = "ci-bot"
    ts = day * DAY_MS + r.randint(1_200_000, 7_200_000)
    calls = []
    for i in range(RUNAWAY_CALLS):
        calls.append(w.call(c, wf.agents[1 + i % 2], ts))
        ts += calls[-1].latency + r.randint(15_000, 110_000)
    return _label(w, "runaway_loop", "trace", calls, normal_max_calls_per_trace=16)


def _duplicate(w: World, i: int) -> dict[str, Any]:
    """The same prompt sent 2-3 times within 55 s (double submit, webhook redelivery)."""
    r = w.rng
    wf = WF["sales-email" if i % 2 == 0 else "rag-search"]
    day, agent = _day(w), wf.agents[0]
    ts = w.time_of_day(day, True)
    c = w.ctx(wf, day)
    size, ph = w.size(agent), w.uid("prompt")
    calls = []
    for k in range(r.choice((2, 2, 3))):
        if k:
            c = w.ctx(wf, day, c)
            ts += r.randint(2_000, 25_000)
        c.model, c.version = None, "v3" if wf.bad_version else c.version
        calls.append(w.call(c, agent, ts, prompt=size, prompt_hash=ph))
    calls[0].outcome = w.outcome(c)
    return _label(
        w,
        "duplicate_call",
        "request",
        calls,
        prompt_hash=ph,
        original_request_id=calls[0].request_id,
    )


def _storm(w: World, i: int) -> dict[str, Any]:
    """One call attempted 6-20 times with backoff; the last attempt succeeds 75 % of the time."""
    r = w.rng
    wf = WF["rag-search" if i % 2 == 0 else "ticket-summary"]
    day, agent = _day(w), wf.agents[-1]
    ts = w.time_of_day(day, True)
    c = w.ctx(wf, day)
    c.model = None
    attempts, ph = r.randint(6, 20), w.uid("prompt")
    calls = []
    for a in range(1, attempts + 1):
        ok = a == attempts and r.random() < 0.75
        calls.append(w.call(c, agent, ts, prompt_hash=ph, attempt=a, fail=not ok))
        ts += calls[-1].latency + int(min(5000, 400 * 2 ** (a - 1)) * r.uniform(0.5, 1.5))
    if calls[-1].http_status == 200:
        calls[-1].outcome = w.outcome(c)
    failed = sum(1 for x in calls if x.http_status != 200)
    return _label(w, "retry_storm", "trace", calls, attempts=attempts, failed=failed)


def _bloat_session(w: World) -> dict[str, Any]:
    """A rag-search chat of 8-14 turns whose input grows >= 10 % a turn, to 6-10x."""
    r, wf = w.rng, WF["rag-search"]
    agent, day = wf.agents[-1], _day(w)
    ts = w.time_of_day(day, True)
    turns, base = r.randint(8, 14), w.size(agent)
    growth = r.uniform(6, 10) ** (1 / (turns - 1))
    c: Ctx | None = None
    calls = []
    for j in range(turns):
        c = w.ctx(wf, day, c)
        calls.append(w.call(c, agent, ts, prompt=int(base * growth**j * r.uniform(0.98, 1.02))))
        calls[-1].outcome = w.outcome(c)
        ts += calls[-1].latency + r.randint(40_000, 240_000)
    return _label(
        w,
        "context_bloat",
        "session",
        calls,
        turns=turns,
        first_input=calls[0].prompt,
        last_input=calls[-1].prompt,
    )


def _bloat_singles(w: World, count: int) -> list[dict[str, Any]]:
    """Single calls with 5-15x their workflow's median input; one label per workflow."""
    r = w.rng
    by_wf: dict[str, list[Call]] = {}
    for i in range(count):
        wf = WF["ticket-summary" if i % 2 == 0 else "rag-search"]
        agent, day = wf.agents[-1], _day(w)
        c = w.ctx(wf, day)
        c.model = None
        size = int((agent.prefix + agent.body) * r.uniform(5, 15))
        call = w.call(c, agent, w.time_of_day(day, True), prompt=size)
        call.outcome = w.outcome(c)
        by_wf.setdefault(wf.name, []).append(call)
    return [
        _label(
            w,
            "context_bloat",
            "request",
            calls,
            median_input=calls[0].agent.prefix + calls[0].agent.body,
        )
        for calls in by_wf.values()
    ]


def _cache_miss(w: World, i: int) -> dict[str, Any]:
    """A deploy without cache_control: 10-30 calls with one new long prefix, never cached."""
    r = w.rng
    wf = WF["code-review" if i % 2 == 0 else "ticket-summary"]
    agent = wf.agents[1] if wf.agentic else wf.agents[-1]
    day = _day(w)
    ts = w.time_of_day(day, True)
    version = f"{w.version(wf, day)}.{i // 2 + 1}"
    calls = []
    for _ in range(r.randint(10, 30)):
        c = w.ctx(wf, day)
        c.model, c.version = None, version
        calls.append(w.call(c, agent, ts))
        calls[-1].nocache = True
        calls[-1].outcome = w.outcome(c)
        ts += r.randint(20_000, 150_000)
    return _label(
        w,
        "cache_miss",
        "prefix",
        calls,
        prefix_hash=calls[0].prefix_hash,
        prefix_tokens=agent.prefix,
        prompt_version=version,
    )


def _accepted(calls: list[Call]) -> float:
    outcomes = [c.outcome for c in calls if c.outcome]
    return round(outcomes.count("accepted") / len(outcomes), 4) if outcomes else 0.0


def group_labels(w: World) -> list[dict[str, Any]]:
    """model_overkill and rejected_work: every call of the group, once traffic is complete."""
    labels = []
    for wf in WORKFLOWS:
        if wf.alt:
            cheap = wf.agents[-1].model
            mine = [c for c in w.calls if c.ctx.wf is wf and c.model == wf.alt[0]]
            rest = [c for c in w.calls if c.ctx.wf is wf and c.model == cheap]
            if mine:
                labels.append(
                    _label(
                        w,
                        "model_overkill",
                        "group",
                        mine,
                        group={"workflow": wf.name, "model": wf.alt[0]},
                        cheaper_model=cheap,
                        acceptance={wf.alt[0]: _accepted(mine), cheap: _accepted(rest)},
                    )
                )
        if wf.bad_version:
            mine = [c for c in w.calls if c.ctx.wf is wf and c.ctx.version == wf.bad_version]
            if mine:
                outcomes = [c.outcome for c in mine if c.outcome]
                bad = sum(1 for o in outcomes if o in ("rejected", "escalated"))
                labels.append(
                    _label(
                        w,
                        "rejected_work",
                        "group",
                        mine,
                        group={"workflow": wf.name, "prompt_version": wf.bad_version},
                        rejected_or_escalated_share=round(bad / max(1, len(outcomes)), 4),
                    )
                )
    return _numbered(labels)


def write_labels(
    out: Path,
    name: str,
    labels: list[dict[str, Any]],
    params: dict[str, Any],
    apps: dict[str, int],
    normal: int,
    injected: int,
    days: tuple[dt.date, dt.date],
    billing: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Write the labels file and README.md into ``out``; the number of findings per kind.

    ``billing`` (the billing files and their injected differences) goes under ``"billing"``,
    ``tokens`` (the recorded exchanges and their token drifts) under its own keys.
    """
    drains = {k: sum(1 for x in labels if x["kind"] == k) for k in KINDS}
    doc = {
        "generator": "tokenaudit sample",
        "parameters": params,
        "events_written": normal + injected,
        "normal_events": normal,
        "injected_events": injected,
        "first_day": days[0].isoformat(),
        "last_day": days[1].isoformat(),
        "drains_per_kind": drains,
        "drains": labels,
    }
    if billing is not None:
        doc["billing"] = billing
    doc.update(tokens or {})
    (out / name).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    readme = _readme(params, apps, normal + injected, drains, billing, tokens)
    (out / "README.md").write_text(readme, "utf-8")
    return drains


_BILLING_FILES = {
    "openai-usage-completions.json": "OpenAI Usage API, completions, by model and project",
    "openai-costs.json": "OpenAI Costs API, by line item",
    "anthropic-usage-report.json": "Anthropic usage report (messages), by model",
    "anthropic-cost-report.json": "Anthropic cost report, by description",
}


def _billing_readme(billing: dict[str, Any] | None) -> str:
    if not billing:
        return ""
    files = "\n".join(
        f"- `{f}`: {_BILLING_FILES.get(f.rsplit('/', 1)[-1], 'billing export')}"
        for f in billing["files"]
    )
    n = len(billing["unlogged"])
    days = f"{n} day{'s' * (n != 1)}"
    return f"""
What the providers billed for the same days, as their admin APIs return it (JSON, daily
buckets):

{files}

Billed tokens and costs equal the logged calls' at list prices, day by day and model by
model, except for differences injected on purpose and listed under `billing` in
`ground-truth.labels.json`: traffic billed but never logged on {days}, and a negotiated
discount on one model. The billing files name models by their dated snapshots
(`gpt-4o-mini-2024-07-18`) and OpenAI projects by id (the labels map them to the logs'
project names).
"""


def _readme(
    params: dict[str, Any],
    apps: dict[str, int],
    events: int,
    drains: dict[str, int],
    billing: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
) -> str:
    """The README.md of a sample folder (no paths: the bytes must not depend on ``out``).

    ``apps``: the number of calls per file of ``logs/``."""
    files = "\n".join(f"- `logs/{a}`: {n} calls" for a, n in apps.items())
    kinds = "\n".join(f"- {k}: {n}" for k, n in drains.items())
    workflows = (tokens or {}).get("exchanges", {}).get("workflows", {})
    recorded = sum(d["calls"] for d in workflows.values())
    but = ", but for the calls the support gateway recorded with their prompts" if recorded else ""
    calls = textwrap.fill(
        f"{events} calls over seven workflows, five teams and four tenants, in tokenaudit "
        f"native JSONL (one model call a line, gzip-compressed){but}:",
        90,
    )
    return f"""# tokenaudit sample data

Synthetic LLM usage, not real traffic: made by
`tokenaudit sample --events {params["events"]} --seed {params["seed"]}`
({params["days"]} days from {params["start"]}). The same parameters give the same bytes.

{calls}

{files}
{exchanges_readme(tokens, recorded)}{_billing_readme(billing)}
Waste of every drain kind was injected on purpose. `ground-truth.labels.json` lists each
injected finding with its evidence (request, trace and session ids), first and last seen
and number of calls; `tokenaudit ingest` skips it, as it skips this file. Injected findings:

{kinds}

Try: `tokenaudit audit .` in this folder. The fine-tuned model
`ft:gpt-4o-mini-2024-07-18:acme::sup42` is priced at its fine-tuned rate, not its base model's.
"""
