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


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(payload: dict[str, Any]) -> str:
    """JSON for scripts: money as exact decimal strings, times in ISO 8601."""
    return json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def report_json(report: Report) -> str:
    return to_json({"rows": report.rows, "totals": report.totals, "meta": report.meta})


def money(value: Decimal | None, unpriced: int = 0, places: int | None = None) -> str:
    """Dollars; ``places`` fixes the decimals (a column's), else they follow the size."""
    if value is None:
        return "unpriced" if unpriced else "—"
    if places is None:
        places = money_places([value])
    step = Decimal(1).scaleb(-places)
    if value != 0 and abs(value) < step:
        return f"<${step}" if value > 0 else f"-<${step}"
    return f"${value:,.{places}f}"


def money_places(values: Sequence[Decimal | None]) -> int:
    """Decimals for a column of dollars: 2 when the largest is $10 or more, else 4, else 6."""
    largest = max((abs(v) for v in values if v is not None), default=Decimal(0))
    if largest >= 10:
        return 2
    return 4 if largest >= Decimal("0.01") else 6


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
    ("rejected_usd", "rejected $"),
    ("retry_rate", "retries"),
)
# Dropped first to last when the table is wider than the terminal.
NARROW_DROP = (
    "cache write", "cache read", "rejected $", "retries", "input", "output", "$/accepted",
    "requests",
)  # fmt: skip


def _cells(row: dict[str, Any], places: tuple[int, int] = (2, 4)) -> list[str | Text]:
    per_accepted = row["cost_per_accepted_usd"]
    return [
        count(row["requests"]),
        count(row["input_tokens"]),
        count(row["cache_read_tokens"]),
        count(row["cache_write_tokens"] + row["cache_write_1h_tokens"]),
        count(row["output_tokens"]),
        money(row["cost_usd"], row["unpriced_requests"], places[0]),
        bar(row["share"]),
        count(row["unpriced_requests"]) if row["unpriced_requests"] else "",
        pct(row["acceptance_rate"]),
        money(per_accepted, 0, places[1]) if per_accepted is not None else "—",
        money(row["rejected_usd"], 1, places[0]) if row["outcomes"] else "—",
        pct(row["retry_rate"]),
    ]


def _places(report: Report) -> tuple[int, int]:
    rows = [*report.rows, report.totals]
    return (
        money_places([r["cost_usd"] for r in rows]),
        max(money_places([r["cost_per_accepted_usd"] for r in rows]), 4),
    )


def report_table(report: Report, title: str | None = None, width: int | None = None) -> Table:
    """The report as a rich table; columns without news (no unpriced calls, no cache
    writes) are left out, and with ``width`` the least useful go until it fits."""
    places = _places(report)
    rows = [
        ([_label(r["group"].get(d)) for d in report.by], _cells(r, places)) for r in report.rows
    ]
    foot = _cells({**report.totals, "share": None}, places)
    keep = [
        header
        for (key, header), cell in zip(REPORT_COLUMNS, foot, strict=True)
        if not (key in ("unpriced_requests", "cache_write") and cell in ("", "0"))
        and not (key == "rejected_usd" and not report.totals["rejected_usd"])
    ]
    table = _table(report, title, rows, foot, keep)
    if width is not None:
        for header in NARROW_DROP:
            if _width(table) <= width:
                break
            if header in keep:
                keep.remove(header)
                table = _table(report, title, rows, foot, keep)
    return table


def _width(table: Table) -> int:
    from rich.measure import Measurement

    console = Console(width=10_000)
    return Measurement.get(console, console.options, table).maximum


def _table(
    report: Report,
    title: str | None,
    rows: list[tuple[list[str], list[str | Text]]],
    foot: list[str | Text],
    keep: list[str],
) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", show_footer=True)
    for i, dim in enumerate(report.by):
        longest = max((len(labels[i]) for labels, _ in rows), default=8)
        table.add_column(
            dim, footer="total" if i == 0 else "", overflow="ellipsis", min_width=min(longest, 24)
        )
    index = [i for i, (_, h) in enumerate(REPORT_COLUMNS) if h in keep]
    for i in index:
        header = REPORT_COLUMNS[i][1]
        if header == "share":
            table.add_column(
                header, justify="left", footer=foot[i], no_wrap=True, min_width=BAR_WIDTH + 7
            )
        else:
            table.add_column(header, justify="right", footer=foot[i], no_wrap=True)
    for labels, cells in rows:
        table.add_row(*labels, *(cells[i] for i in index))
    return table


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
    "rejected",
    "rejected_usd",
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


def rows_markdown(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric_from: int,
    numeric_to: int | None = None,
) -> str:
    """A markdown table; columns ``numeric_from`` to ``numeric_to`` (exclusive) align right."""
    end = len(header) if numeric_to is None else numeric_to
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append(
        "|"
        + "|".join("---:" if numeric_from <= i < end else "---" for i in range(len(header)))
        + "|"
    )
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    header = [*report.by, *(h for _, h in REPORT_COLUMNS)]
    places = _places(report)
    rows = []
    for row in [*report.rows, {**report.totals, "group": {}, "share": None}]:
        is_total = not row["group"] and report.by
        labels = [
            ("**total**" if is_total and i == 0 else "")
            if is_total
            else safe_cell(_label(row["group"].get(d)))
            for i, d in enumerate(report.by)
        ]
        cells = [c.plain if isinstance(c, Text) else c for c in _cells(row, places)]
        share = [h for _, h in REPORT_COLUMNS].index("share")
        cells[share] = "" if row["share"] is None else pct(row["share"])  # no bar in markdown
        rows.append(labels + cells)
    return rows_markdown(header, rows, len(report.by))


PRICE_COLUMNS = (
    ("input_mtok", "input"),
    ("cache_read_mtok", "cache read"),
    ("cache_write_mtok", "write 5m"),
    ("cache_write_1h_mtok", "write 1h"),
    ("output_mtok", "output"),
    ("reasoning_mtok", "reasoning"),
)


def per_mtok(value: Decimal | None) -> str:
    """A price per million tokens, with at least cents: $0.30, $0.075, $15.00."""
    if value is None:
        return "—"
    text = f"{value.normalize():f}"
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def _input_size(row: dict[str, Any]) -> str:
    above, upto = row["input_above"], row["input_upto"]
    if above < 0 and upto is None:
        return "any"
    if above < 0:
        return f"≤{upto:,}"
    return f">{above:,}" + (f" ≤{upto:,}" if upto is not None else "")


def _period(row: dict[str, Any]) -> str:
    start = row["effective_from"]
    first = "" if str(start) == "1970-01-01" else str(start)
    last = "" if row["effective_to"] is None else f"{row['effective_to']}"
    if not first and not last:
        return "always"
    return f"{first or '…'} → {last or 'now'}"


def _source(row: dict[str, Any]) -> str:
    source = str(row["source"])
    return "catalogue" if source.startswith("genai-prices") else source


def _model_label(row: dict[str, Any]) -> str:
    return str(row["model"]) + (f" ({row['provider']})" if row["provider"] else "")


def prices_table(rows: list[dict[str, Any]], title: str) -> Table:
    """Resolved prices, one line per model, tier, period and input size.

    A model's name is printed once for its rows (with the catalogue id it resolved
    to underneath, when that differs), or in the title when there is one model.
    Columns no row needs are left out: price categories no row has (reasoning,
    cache writes for most OpenAI models), the source when every price is the
    catalogue's (its version is in the title), calls when none are loaded.
    """
    models = {_model_label(r) for r in rows}
    single = len(models) == 1
    if single:
        (label,) = models
        ids = {r["model_id"] for r in rows} - {rows[0]["model"]}
        title = (
            f"{label}{' = ' + ', '.join(sorted(ids)) if ids else ''}: {title[0].lower()}{title[1:]}"
        )
    table = Table(title=title, title_justify="left", header_style="bold")
    if not single:
        longest = max(len(m) for m in models)
        table.add_column("model", overflow="fold", min_width=min(longest, 16), max_width=40)
    table.add_column("tier", no_wrap=True)
    table.add_column("period", overflow="fold")
    sized = any(_input_size(r) != "any" for r in rows)
    if sized:
        table.add_column("input size", no_wrap=True)
    shown = [(k, h) for k, h in PRICE_COLUMNS if any(r[k] is not None for r in rows)]
    for _, header in shown:
        table.add_column(header, justify="right", no_wrap=True)
    sourced = any(_source(r) != "catalogue" for r in rows)
    if sourced:
        table.add_column("source", overflow="fold", min_width=9)
    used = any(r["calls"] for r in rows)
    if used:
        table.add_column("calls", justify="right", no_wrap=True)
    groups: dict[str, int] = {}
    for r in rows:
        name = _model_label(r)
        seen = groups.get(name, 0)
        groups[name] = seen + 1
        alias = r["model_id"] not in (None, r["model"])
        label = name if seen == 0 else (f"  = {r['model_id']}" if seen == 1 and alias else "")
        if seen == 0 and alias and sum(_model_label(x) == name for x in rows) == 1:
            label = f"{name}\n  = {r['model_id']}"
        table.add_row(
            *([] if single else [label]),
            r["service_tier"],
            _period(r),
            *([_input_size(r)] if sized else []),
            *(per_mtok(r[k]) for k, _ in shown),
            *([_source(r)] if sourced else []),
            *([count(r["calls"])] if used else []),
        )
    return table


def prices_tables(rows: list[dict[str, Any]], title: str, width: int | None) -> list[Table]:
    """The prices as one table, or one per model when that is too wide for ``width``."""
    table = prices_table(rows, title)
    if width is None or _width(table) <= width or not rows:
        return [table]
    per_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        per_model.setdefault(_model_label(r), []).append(r)
    return [prices_table(group, title) for group in per_model.values()]
