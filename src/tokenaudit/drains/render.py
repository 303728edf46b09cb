"""Turning drain findings into text: rich tables, JSON, CSV and markdown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.table import Table

from tokenaudit.drains import DrainReport
from tokenaudit.drains.base import Finding
from tokenaudit.report.render import (
    money,
    money_places,
    rows_csv,
    rows_markdown,
    safe_cell,
    to_json,
)

LABELS = {
    "duplicate_call": "duplicate call",
    "retry_storm": "retry storm",
    "context_bloat": "context bloat",
    "runaway_loop": "runaway loop",
    "cache_miss": "cache miss",
    "model_overkill": "model overkill",
    "rejected_work": "rejected work",
}


def payload(rep: DrainReport) -> dict[str, Any]:
    return {
        "rows": [f.as_dict() for f in rep.findings],
        "by_kind": rep.by_kind,
        "by_workflow": rep.by_workflow,
        "totals": rep.totals,
        "meta": rep.meta,
    }


def drains_json(rep: DrainReport) -> str:
    return to_json(payload(rep))


def _group(f: Finding) -> str:
    parts = [f"{v}" for k, v in f.group.items() if k != "workflow" and v is not None]
    return safe_cell(", ".join(parts))


def _evidence(f: Finding) -> str:
    first = f.trace_ids[:1] if f.kind in ("runaway_loop", "retry_storm") else f.request_ids[:1]
    return safe_cell(first[0] if first else "—")


def _when(f: Finding) -> str:
    """The first day, and how many days the finding spans (``+N d``) or its hours."""
    days = (f.last_seen.date() - f.first_seen.date()).days
    if days:
        return f"{f.first_seen:%Y-%m-%d} +{days}d"
    return f"{f.first_seen:%m-%d %H:%M}–{f.last_seen:%H:%M}"


def findings_table(rep: DrainReport, top: int | None) -> Table:
    """Kind, waste, calls and day keep their width; workflow, model and evidence give way."""
    shown = rep.findings if top is None else rep.findings[:top]
    places = money_places([f.waste_usd for f in shown])
    rows = [
        [LABELS[f.kind], safe_cell(str(f.group.get("workflow") or "(none)")),
         safe_cell(str(f.group.get("model") or "—")), money(f.waste_usd, 0, places),
         f"{f.calls:,}", _when(f), _evidence(f)]
        for f in shown
    ]  # fmt: skip
    header = ["kind", "workflow", "model", "waste", "calls", "when (UTC)", "evidence"]
    table = Table(title="Drains, costliest first", title_justify="left", header_style="bold")
    for i, name in enumerate(header):
        fixed = name in ("kind", "waste", "calls", "when (UTC)")
        width = max([len(name), *(len(r[i]) for r in rows)])
        table.add_column(
            name,
            justify="right" if name in ("waste", "calls") else "left",
            no_wrap=fixed,
            overflow="ellipsis",
            min_width=width if fixed else min(width, 8 if name == "evidence" else 12),
        )
    for r in rows:
        table.add_row(*r)
    return table


def summary_table(rep: DrainReport) -> Table:
    places = money_places([r["waste_usd"] for r in rep.by_kind])
    table = Table(title="Waste by kind", title_justify="left", header_style="bold")
    for name in ("kind", "findings", "calls", "waste", "fix"):
        table.add_column(
            name, justify="right" if name in ("findings", "calls", "waste") else "left"
        )
    fixes: dict[str, str] = {}
    for f in rep.findings:
        fixes.setdefault(f.kind, f.fix)
    for r in rep.by_kind:
        table.add_row(
            LABELS[r["kind"]],
            f"{r['findings']:,}",
            f"{r['calls']:,}",
            money(r["waste_usd"], 0, places),
            fixes.get(r["kind"], ""),
        )
    return table


def workflows_table(rep: DrainReport) -> Table:
    places = money_places([r["waste_usd"] for r in rep.by_workflow])
    table = Table(title="Waste by workflow", title_justify="left", header_style="bold")
    for name in ("workflow", "findings", "calls", "waste", "kinds"):
        numeric = name in ("findings", "calls", "waste")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=name != "kinds")
    kinds: dict[Any, list[str]] = {}
    for f in rep.findings:
        names = kinds.setdefault(f.group.get("workflow"), [])
        if LABELS[f.kind] not in names:
            names.append(LABELS[f.kind])
    for r in rep.by_workflow:
        table.add_row(
            safe_cell(str(r["workflow"] or "(none)")),
            f"{r['findings']:,}",
            f"{r['calls']:,}",
            money(r["waste_usd"], 0, places),
            ", ".join(kinds.get(r["workflow"], [])),
        )
    return table


_CSV = ("kind", "workflow", "model", "agent", "waste_usd", "what_if_usd", "calls", "first_seen",
        "last_seen", "how", "fix", "first_request_id", "first_trace_id")  # fmt: skip


def drains_csv(rep: DrainReport) -> str:
    rows = []
    for f in rep.findings:
        rows.append(
            [
                f.kind,
                safe_cell(str(f.group.get("workflow") or "")),
                safe_cell(str(f.group.get("model") or "")),
                safe_cell(str(f.group.get("agent") or "")),
                str(f.waste_usd),
                "" if f.what_if_usd is None else str(f.what_if_usd),
                str(f.calls),
                f.first_seen.isoformat(),
                f.last_seen.isoformat(),
                f.how,
                f.fix,
                f.request_ids[0] if f.request_ids else "",
                f.trace_ids[0] if f.trace_ids else "",
            ]
        )
    return rows_csv(_CSV, rows)


def drains_markdown(rep: DrainReport, top: int | None) -> str:
    shown = rep.findings if top is None else rep.findings[:top]
    places = money_places([f.waste_usd for f in shown])
    header = ["kind", "workflow", "where", "waste", "calls", "when (UTC)", "evidence", "fix"]
    rows = [
        [LABELS[f.kind], safe_cell(str(f.group.get("workflow") or "(none)")), _group(f),
         money(f.waste_usd, 0, places), f"{f.calls:,}", _when(f), _evidence(f), f.fix]
        for f in shown
    ]  # fmt: skip
    total: Decimal = rep.totals["waste_usd"]
    rows.append(["**total**", "", "", money(total, 0, places), "", "", "", ""])
    return rows_markdown(header, rows, 3, 5)


def summary_line(rep: DrainReport) -> str:
    t = rep.totals
    if not t["findings"]:
        return f"no drains found in {t['calls_scanned']:,} calls"
    return (
        f"{t['findings']:,} findings, ${t['waste_usd']:,.2f} of waste in "
        f"{t['calls_scanned']:,} calls (json: evidence ids, how each waste was computed)"
    )
