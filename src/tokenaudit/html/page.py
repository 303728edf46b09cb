"""One self-contained HTML page: inline CSS, inline SVG charts, no script, no network.

Each section appears only when its data exists, and each chart has a table beside it with
the exact figures (money from ``Decimal``, rounded only for display; the exact value is
kept in a ``data-usd`` attribute). Every value from the data is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

from tokenaudit import __version__
from tokenaudit.html import charts
from tokenaudit.html.data import PageData, capture_by_day

CSS = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #fff; margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); }
p.sub, .note { color: var(--muted); margin: .25rem 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr));
  gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.card .label { color: var(--muted); font-size: .8rem; }
.card .value { font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem;
  align-items: start; }
.chart svg { width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { padding: .2rem .45rem; border-bottom: 1px solid var(--line); text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { max-height: 28rem; overflow: auto; }
footer { color: var(--muted); font-size: .8rem; margin-top: 2rem; }
@media (max-width: 900px) { .pair { grid-template-columns: 1fr; } }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section { break-inside: avoid; }
  .scroll { max-height: none; overflow: visible; }
  .pair { grid-template-columns: 1fr; }
}
"""


def usd(value: Decimal | None) -> str:
    if value is None:
        return "—"
    places = Decimal("0.0001") if abs(value) < 1 else Decimal("0.01")
    return f"${value.quantize(places):,}"


def pct(value: Decimal | float | None, places: int = 1) -> str:
    return "—" if value is None else f"{float(value) * 100:.{places}f}%"


def count(value: int | Decimal | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def _cell(value: Any, numeric: bool) -> str:
    attrs = ' class="n"' if numeric else ""
    if isinstance(value, Decimal):
        attrs += f' data-usd="{escape(str(value))}"'
    return f"<td{attrs}>{escape(str(value)) if not isinstance(value, Decimal) else usd(value)}</td>"


def table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` hold str (shown as is, escaped) or Decimal (dollars); headers ending in
    '#' are right-aligned numbers."""
    head = "".join(
        f'<th class="n" scope="col">{escape(h.rstrip("#"))}</th>'
        if h.endswith("#")
        else f'<th scope="col">{escape(h)}</th>'
        for h in headers
    )
    numeric = [h.endswith("#") for h in headers]
    body = "".join(
        "<tr>" + "".join(_cell(v, n) for v, n in zip(r, numeric, strict=True)) + "</tr>"
        for r in rows
    )
    return (
        f'<div class="scroll"><table><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def section(anchor: str, title: str, *parts: str, note: str = "") -> str:
    extra = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{extra}{"".join(parts)}</section>'


def pair(chart: str, side: str) -> str:
    return f'<div class="pair"><div class="chart">{chart}</div><div>{side}</div></div>'


def _floats(values: Sequence[Decimal]) -> list[float]:
    return [float(v) for v in values]


def headline(data: PageData) -> str:
    t, meta = data.report.totals, data.report.meta
    tokens = sum(
        int(t[k] or 0)
        for k in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
        )
    )
    requests = int(t["requests"] or 0)
    unpriced = Decimal(t["unpriced_requests"] or 0) / requests if requests else None
    first, last = data.meta.get("window") or (meta.get("first_ts"), meta.get("last_ts"))
    window = f"Window: {first or '—'} → {last or '—'} UTC"
    shown = filters_shown(data.meta.get("filters") or {})
    note = f"{window}. Filters: {shown}." if shown else window
    cards = [
        ("Spend", usd(t["cost_usd"]), t["cost_usd"]),
        ("Requests", count(requests), None),
        ("Tokens", count(tokens), None),
        ("Cost per accepted outcome", usd(t.get("cost_per_accepted_usd")), None),
        ("Unpriced share of requests", pct(unpriced), None),
    ]
    html = "".join(
        f'<div class="card" id="headline-{escape(label.split()[0].lower())}"'
        + (f' data-usd="{escape(str(exact))}"' if exact is not None else "")
        + f'><div class="label">{escape(label)}</div><div class="value">{escape(value)}</div></div>'
        for label, value, exact in cards
    )
    return section("headline", "Headline", f'<div class="cards">{html}</div>', note=note)


def filters_shown(filters: dict[str, Any]) -> str:
    """``--since``, ``--until`` and ``--where`` as a reader of the page should see them."""
    parts = [f"since {filters['since']}"] if filters.get("since") else []
    if filters.get("until"):
        parts.append(f"until {filters['until']}")
    parts += [f"{dim} = {value}" for dim, value in (filters.get("where") or {}).items()]
    return ", ".join(parts)


def daily_spend(data: PageData) -> str:
    s = data.daily_spend
    if not s.days:
        return ""
    series = {k: _floats(v) for k, v in s.values.items()}
    chart = charts.stacked_bars(s.days, series, "Daily spend by workflow", "spend (USD per day)")
    totals = [(name, sum(v, Decimal(0))) for name, v in s.values.items()]
    side = table("Spend in the window", ["workflow", "spend#"], totals)
    return section("daily-spend", "Daily spend, top workflows", pair(chart, side))


def workflows(data: PageData) -> str:
    rows = [r for r in data.report.rows if r["requests"]]
    if not rows:
        return ""
    labels = [_label(r) for r in rows]
    chart = charts.hbars(
        labels, [float(r["cost_usd"] or 0) for r in rows], "Spend by workflow", "spend (USD)"
    )
    by_cost = table(
        "Ranked by spend",
        ["workflow", "spend#", "share#", "requests#"],
        [(_label(r), r["cost_usd"], pct(r["share"]), count(r["requests"])) for r in rows],
    )
    parts = [pair(chart, by_cost)]
    ranked = sorted(
        (r for r in rows if r.get("cost_per_accepted_usd") is not None),
        key=lambda r: -r["cost_per_accepted_usd"],
    )
    if ranked:
        chart2 = charts.hbars(
            [_label(r) for r in ranked],
            [float(r["cost_per_accepted_usd"]) for r in ranked],
            "Cost per accepted outcome by workflow",
            "USD per accepted outcome",
        )
        side = table(
            "Ranked by cost per accepted outcome",
            ["workflow", "per accepted#", "accepted#", "acceptance#"],
            [
                (
                    _label(r),
                    r["cost_per_accepted_usd"],
                    count(r["accepted"]),
                    pct(r["acceptance_rate"]),
                )
                for r in ranked
            ],
        )
        parts.append(pair(chart2, side))
    return section("workflows", "Workflows", *parts)


def models(data: PageData) -> str:
    rows = [r for r in data.models if r["requests"]]
    if not rows:
        return ""
    chart = charts.hbars(
        [_label(r) for r in rows],
        [float(r["share"] or 0) for r in rows],
        "Model mix (share of spend)",
        "share of spend",
        unit="pct",
    )
    side = table(
        "Spend by model",
        ["model", "spend#", "share#", "requests#"],
        [(_label(r), r["cost_usd"], pct(r["share"]), count(r["requests"])) for r in rows],
    )
    return section("models", "Model mix", pair(chart, side))


def token_categories(data: PageData) -> str:
    s = data.daily_tokens
    if not s.days:
        return ""
    names = {"uncached": "uncached input", "cache_read": "cache read",
             "cache_write": "cache write", "output": "output"}  # fmt: skip
    series = {names[k]: _floats(v) for k, v in s.values.items()}
    chart = charts.stacked_area(s.days, series, "Tokens per day by category", "tokens per day")
    totals = [(names[k], count(sum(v, Decimal(0)))) for k, v in s.values.items()]
    side = table("Tokens in the window", ["category", "tokens#"], totals)
    return section("tokens", "Token categories over time", pair(chart, side))


def drains(data: PageData) -> str:
    d = data.drains
    if d is None or not d.findings:
        return ""
    chart = charts.hbars(
        [r["kind"] for r in d.by_kind],
        [float(r["waste_usd"]) for r in d.by_kind],
        "Waste by drain kind",
        "waste (USD)",
    )
    kinds = table(
        "By kind",
        ["kind", "waste#", "findings#", "calls#"],
        [(r["kind"], r["waste_usd"], count(r["findings"]), count(r["calls"])) for r in d.by_kind],
    )
    flows = table(
        "By workflow",
        ["workflow", "waste#", "findings#", "calls#"],
        [
            (str(r["workflow"]), r["waste_usd"], count(r["findings"]), count(r["calls"]))
            for r in d.by_workflow
        ],
    )
    total = d.totals["waste_usd"]
    note = f"{count(d.totals['findings'])} findings, {usd(total)} of waste in total"
    body = f'<p id="drains-total" data-usd="{escape(str(total))}">{escape(note)}</p>'
    return section("drains", "Drains", body, pair(chart, kinds), flows)


def capture(data: PageData) -> str:
    if data.billing is None:
        return ""
    rows = capture_by_day(data.billing)
    if not rows:
        return ""
    days = [dt.date.fromisoformat(r["period"][:10]) for r in rows]
    chart = charts.line(
        days,
        [None if r["capture_rate"] is None else float(r["capture_rate"]) for r in rows],
        "Billing capture rate per day (logged ÷ billed)",
        "capture rate",
        reference=1.0,
    )
    side = table(
        "Billed against logged",
        ["period", "billed#", "logged#", "capture#"],
        [(r["period"], r["billed_usd"], r["logged_usd"], pct(r["capture_rate"])) for r in rows],
    )
    total = data.billing.totals.get("capture_rate")
    note = f"Overall capture {pct(total)}"
    if (data.meta.get("filters") or {}).get("where"):
        note += (
            ". Billing exports carry no workflow, team or tenant: this section covers every"
            " call between the dates, whatever --where selects"
        )
    return section("billing", "Billing capture", pair(chart, side), note=note)


def token_drift(data: PageData) -> str:
    if data.tokens is None or not data.tokens.models:
        return ""
    rows = data.tokens.models
    chart = charts.hbars(
        [str(r["model"]) for r in rows],
        [float(r["median_drift_pct"] or 0) / 100 for r in rows],
        "Median token drift per model (reported vs local count)",
        "median drift",
        unit="pct",
    )
    side = table(
        "Token drift",
        ["model", "method", "requests#", "median#", "p95 |drift|#", "outside#"],
        [
            (
                str(r["model"]),
                str(r["method"]),
                count(r["requests"]),
                f"{r['median_drift_pct'] or 0:.2f}%",
                f"{r['p95_abs_drift_pct'] or 0:.2f}%",
                pct(r["outside_share"]),
            )
            for r in rows
        ],
    )
    return section("drift", "Token drift per model", pair(chart, side))


def budgets(data: PageData) -> str:
    if data.forecast is None or not data.forecast.budgets:
        return ""
    side = table(
        "Monthly budgets",
        ["budget", "state", "to date#", "projected#", "warn#", "fail#", "breach day"],
        [
            (
                str(b["name"]),
                str(b["state"] or "—"),
                _money(b["month_to_date_usd"]),
                _money(b["projected_usd"]),
                _money(b["warn_usd"]),
                _money(b["fail_usd"]),
                str(b["breach_day"] or "—"),
            )
            for b in data.forecast.budgets
        ],
    )
    return section("budgets", "Budget states", side)


def data_sources(data: PageData) -> str:
    if not data.files:
        return ""
    files = table(
        "Files loaded",
        ["file", "format", "kind", "rows#", "quarantined#", "loaded (UTC)"],
        [
            (
                str(f["path"]),
                str(f["format"]),
                str(f["kind"]),
                count(f["rows_loaded"]),
                count(f["rows_quarantined"]),
                str(f["loaded_at"]),
            )
            for f in data.files
        ],
    )
    parts = [files]
    if data.quarantine:
        parts.append(
            table(
                "Quarantined rows by reason",
                ["reason", "rows#"],
                [(str(q["reason"]), count(q["n"])) for q in data.quarantine],
            )
        )
    quarantined = sum(int(f["rows_quarantined"]) for f in data.files)
    note = f"{len(data.files)} files, {count(quarantined)} quarantined rows"
    return section("sources", "Data sources", *parts, note=note)


SECTIONS = (
    headline, daily_spend, workflows, models, token_categories, drains, capture,
    token_drift, budgets, data_sources,
)  # fmt: skip


def render(data: PageData, title: str = "tokenaudit report") -> str:
    body = "".join(part(data) for part in SECTIONS)
    meta = data.report.meta
    footer = (
        f"Generated by tokenaudit {__version__} from {meta.get('db', '')}; "
        f"prices: {meta.get('price_snapshot') or '—'}. Charts: matplotlib (SVG), Okabe-Ito colours."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}<footer>{escape(footer)}</footer></body></html>\n"
    )


def _label(row: dict[str, Any]) -> str:
    return " · ".join(str(v) for v in row["group"].values())


def _money(value: Decimal | None) -> str | Decimal:
    return "—" if value is None else value
