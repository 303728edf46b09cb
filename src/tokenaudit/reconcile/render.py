"""Turning a billing reconciliation into text: rich tables, JSON, CSV and markdown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text

from tokenaudit.reconcile.billing import CATEGORIES, Reconciliation
from tokenaudit.report.render import (
    money,
    money_places,
    pct,
    rows_csv,
    rows_markdown,
    safe_cell,
    to_json,
)

CAUSE_LABELS = {
    "billed_not_logged": "billed, not logged",
    "logged_not_billed": "logged, not billed",
    "missing_billing_day": "missing billing day",
    "missing_log_day": "missing log day",
    "unlogged_usage": "unlogged usage",
    "logged_beyond_billed": "logged beyond billed",
    "token_category_drift": "token category drift",
    "price_drift": "price drift",
}


def reconcile_payload(rec: Reconciliation) -> dict[str, Any]:
    return {"rows": rec.rows, "totals": rec.totals, "causes": rec.causes, "meta": rec.meta}


def reconcile_json(rec: Reconciliation) -> str:
    return to_json(reconcile_payload(rec))


def _signed(value: Decimal, places: int) -> str:
    text = money(abs(value), 0, places)
    return ("-" if value < 0 else "+") + text if value != 0 else text


def _capture(value: Decimal | None) -> Text:
    if value is None:
        return Text("—")
    style = "green" if abs(1 - value) <= Decimal("0.01") else ("yellow" if value < 1 else "red")
    return Text(pct(value), style=style)


def rows_table(rec: Reconciliation, top: int | None) -> tuple[Table, int]:
    """The unmatched rows, largest gap first (at most ``top``); returns the table and how
    many unmatched rows were left out."""
    gaps = sorted(
        (r for r in rec.rows if r["status"] != "matched"),
        key=lambda r: (-abs(r["gap_usd"]), r["period"], r["provider"], r["model"]),
    )
    shown = gaps if top is None else gaps[:top]
    totals = rec.totals
    places = money_places(
        [totals["billed_usd"], totals["logged_usd"], *(r["gap_usd"] for r in shown)]
    )
    grain = rec.meta.get("grain", "day")
    table = Table(
        title=f"Billing reconciliation by {grain}: billed against logged",
        title_justify="left",
        header_style="bold",
        show_footer=True,
    )
    table.add_column(grain, footer="total", no_wrap=True)
    table.add_column("provider", no_wrap=True)
    table.add_column("model", overflow="fold", min_width=10)
    scoped = "project" in rec.meta.get("by", ())
    if scoped:
        table.add_column("project", overflow="fold")
    table.add_column("billed", justify="right", footer=money(totals["billed_usd"], 0, places))
    table.add_column("logged", justify="right", footer=money(totals["logged_usd"], 0, places))
    table.add_column("capture", justify="right", footer=_capture(totals["capture_rate"]))
    table.add_column("gap", justify="right", footer=_signed(totals["gap_usd"], places))
    table.add_column("main cause", overflow="fold")
    for r in shown:
        cause = r["causes"][0] if r["causes"] else None
        table.add_row(
            r["period"],
            r["provider"],
            r["model"],
            *([r.get("project") or "—"] if scoped else []),
            money(r["billed_usd"], 0, places) if r["billed_usd"] is not None else "—",
            money(r["logged_usd"], 0, places) if r["logged_usd"] is not None else "—",
            _capture(r["capture_rate"]),
            _signed(r["gap_usd"], places),
            f"{CAUSE_LABELS[cause['cause']]} {_signed(cause['usd'], places)}" if cause else "",
        )
    return table, len(gaps) - len(shown)


def causes_table(rec: Reconciliation) -> Table:
    places = money_places([c["usd"] for c in rec.causes])
    table = Table(title="Gap by cause", title_justify="left", header_style="bold")
    table.add_column("cause", no_wrap=True)
    table.add_column("dollars", justify="right", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("what it means", overflow="fold")
    for c in rec.causes:
        table.add_row(
            CAUSE_LABELS[c["cause"]],
            _signed(c["usd"], places),
            f"{c['rows']:,}",
            c["explains"].split(": ", 1)[-1] if ": " in c["explains"] else c["explains"],
        )
    return table


FLAT = (
    "period",
    "provider",
    "model",
    "project",
    "billed_usd",
    "billed_at_our_prices_usd",
    "logged_usd",
    "gap_usd",
    "capture_rate",
    "status",
    "requests",
    "unpriced_requests",
)


def _flat(rec: Reconciliation) -> tuple[list[str], list[list[str]]]:
    header = [
        *FLAT,
        *(f"billed_{c}_tokens" for c in CATEGORIES),
        *(f"logged_{c}_tokens" for c in CATEGORIES),
        "causes",
    ]
    rows = []
    for r in rec.rows:
        cells = ["" if r.get(k) is None else str(r[k]) for k in FLAT]
        cells[:4] = [safe_cell(c) for c in cells[:4]]
        cells += [
            "" if r["billed_tokens"][c] is None else str(r["billed_tokens"][c]) for c in CATEGORIES
        ]
        cells += [str(r["logged_tokens"][c]) for c in CATEGORIES]
        cells.append("; ".join(f"{c['cause']}={c['usd']}" for c in r["causes"]))
        rows.append(cells)
    return header, rows


def reconcile_csv(rec: Reconciliation) -> str:
    header, rows = _flat(rec)
    return rows_csv(header, rows)


def reconcile_markdown(rec: Reconciliation) -> str:
    places = money_places([rec.totals["billed_usd"], rec.totals["logged_usd"]])
    header = ["period", "provider", "model", "billed", "logged", "capture", "gap", "causes"]
    rows: list[list[str]] = []
    for r in rec.rows:
        rows.append(
            [
                safe_cell(r["period"]),
                safe_cell(r["provider"]),
                safe_cell(r["model"]),
                money(r["billed_usd"], 0, places) if r["billed_usd"] is not None else "—",
                money(r["logged_usd"], 0, places) if r["logged_usd"] is not None else "—",
                pct(r["capture_rate"]),
                _signed(r["gap_usd"], places),
                ", ".join(
                    f"{CAUSE_LABELS[c['cause']]} {_signed(c['usd'], places)}" for c in r["causes"]
                ),
            ]
        )
    t = rec.totals
    rows.append(
        [
            "**total**",
            "",
            "",
            money(t["billed_usd"], 0, places) if t["billed_usd"] is not None else "—",
            money(t["logged_usd"], 0, places),
            pct(t["capture_rate"]),
            _signed(t["gap_usd"], places),
            "",
        ]
    )
    return rows_markdown(header, rows, 3, len(header) - 1)


def summary_line(rec: Reconciliation) -> str:
    t = rec.totals
    return (
        f"{t['matched_rows']:,} of {t['rows']:,} rows matched within "
        f"{pct(rec.meta.get('tolerance'))}; capture {pct(t['capture_rate'])}"
    )
