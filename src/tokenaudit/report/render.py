"""Turning results into text: rich tables, JSON, CSV and markdown.

The only module that formats numbers. JSON keeps money as exact decimal strings
(DECIMAL(38,12) scale) and counts as integers. CSV and markdown escape text
cells that a spreadsheet would run as a formula (= + - @, tab, CR).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenaudit.report.queries import NONE_LABEL, Report

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BAR_WIDTH = 12


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formulas in a text cell (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(json_value(payload), indent=2, ensure_ascii=False) + "\n"


def report_json(report: Report) -> str:
    return to_json({"rows": report.rows, "totals": report.totals, "meta": report.meta})


def money(value: Decimal | None, unpriced: int = 0) -> str:
    if value is None:
        return "unpriced" if unpriced else "—"
    if abs(value) >= 100:
        text = f"${value:,.2f}"
    elif abs(value) >= 0.01 or value == 0:
        text = f"${value:,.4f}"
    else:
        text = f"${value:.6f}"
    return text


def count(value: int) -> str:
    return f"{value:,}"


def pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def bar(share: Decimal | None) -> Text:
    if share is None:
        return Text("")
    filled = float(share) * BAR_WIDTH
    full = int(filled)
    part = (
        "▏▎▍▌▋▊▉"[int((filled - full) * 7)] if filled - full >= 1 / 7 and full < BAR_WIDTH else ""
    )
    return Text("█" * full + part, style="cyan") + Text(f" {float(share) * 100:.1f}%")


def _label(value: Any) -> str:
    return NONE_LABEL if value is None else str(value)


REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("requests", "requests"),
    ("input_tokens", "input"),
    ("cache_read_tokens", "cache read"),
    ("cache_write", "cache write"),
    ("output_tokens", "output"),
    ("cost_usd", "cost"),
    ("share", "share"),
    ("unpriced_requests", "unpriced"),
    ("acceptance_rate", "accepted"),
    ("cost_per_accepted_usd", "$/accepted"),
    ("retry_rate", "retries"),
)


def _cells(row: dict[str, Any]) -> list[str | Text]:
    return [
        count(row["requests"]),
        count(row["input_tokens"]),
        count(row["cache_read_tokens"]),
        count(row["cache_write_tokens"] + row["cache_write_1h_tokens"]),
        count(row["output_tokens"]),
        money(row["cost_usd"], row["unpriced_requests"]),
        bar(row["share"]),
        count(row["unpriced_requests"]) if row["unpriced_requests"] else "",
        pct(row["acceptance_rate"]),
        money(row["cost_per_accepted_usd"]) if row["cost_per_accepted_usd"] is not None else "—",
        pct(row["retry_rate"]),
    ]


def report_table(report: Report, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", show_footer=True)
    totals = report.totals
    for i, dim in enumerate(report.by):
        table.add_column(dim, footer="total" if i == 0 else "", overflow="fold", min_width=8)
    total_cells = _cells({**totals, "share": None})
    for (_, header), foot in zip(REPORT_COLUMNS, total_cells, strict=True):
        if header == "share":
            table.add_column(
                header, justify="left", footer=foot, no_wrap=True, min_width=BAR_WIDTH + 8
            )
        else:
            table.add_column(header, justify="right", footer=foot, no_wrap=True)
    for row in report.rows:
        labels = [_label(row["group"].get(d)) for d in report.by]
        table.add_row(*labels, *_cells(row))
    return table


def print_table(console: Console, table: Table) -> None:
    console.print(table)


FLAT_COLUMNS = (
    "requests",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "share",
    "unpriced_requests",
    "outcomes",
    "accepted",
    "acceptance_rate",
    "cost_per_accepted_usd",
    "retry_rate",
)


def _flat(report: Report) -> tuple[list[str], list[list[str]]]:
    header = [*report.by, *FLAT_COLUMNS]
    rows = []
    for row in report.rows:
        labels = [safe_cell(_label(row["group"].get(d))) for d in report.by]
        values = ["" if row[c] is None else str(row[c]) for c in FLAT_COLUMNS]
        rows.append(labels + values)
    return header, rows


def report_csv(report: Report) -> str:
    header, rows = _flat(report)
    return rows_csv(header, rows)


def rows_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _md_cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def rows_markdown(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append(
        "|" + "|".join("---:" if i >= numeric_from else "---" for i in range(len(header))) + "|"
    )
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    header = [*report.by, *(h for _, h in REPORT_COLUMNS)]
    rows = []
    for row in [*report.rows, {**report.totals, "group": {}, "share": None}]:
        is_total = not row["group"] and report.by
        labels = [
            ("**total**" if is_total and i == 0 else "")
            if is_total
            else safe_cell(_label(row["group"].get(d)))
            for i, d in enumerate(report.by)
        ]
        cells = [c.plain if isinstance(c, Text) else c for c in _cells(row)]
        rows.append(labels + cells)
    return rows_markdown(header, rows, len(report.by))
