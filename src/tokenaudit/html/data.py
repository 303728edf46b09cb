"""What the HTML page shows, gathered from aggregated SQL only.

Every query here returns one row per day (times a handful of groups) or per file, never
one per call, so the page costs the same few kilobytes for 6,000 calls or 2 million.
The other sections reuse the library's own results (``api.report``, ``api.drains``,
billing and token reconciliation, budget forecasts) so the page agrees with the
commands to the last decimal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.report.queries import MONEY, NONE_LABEL, OTHER_LABEL, RATIO, dim_sql

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.drains import DrainReport
    from tokenaudit.forecast import Forecast
    from tokenaudit.reconcile.billing import Reconciliation
    from tokenaudit.reconcile.tokens import TokenReconciliation
    from tokenaudit.report.queries import Report

OTHERS = "others"

# Daily spend of the TOP workflows by total spend; every other workflow is folded into one.
DAILY_BY_WORKFLOW_SQL = """WITH f AS (
    SELECT CAST(ts AS DATE) AS day, coalesce({workflow}, '{none}') AS workflow, cost_usd
    FROM usage_events WHERE {where}
), top AS (
    SELECT workflow FROM f GROUP BY workflow
    ORDER BY sum(cost_usd) DESC NULLS LAST, workflow LIMIT ?
)
SELECT day, CASE WHEN workflow IN (SELECT workflow FROM top) THEN workflow ELSE '{others}' END
    AS grp, coalesce(sum(cost_usd), 0) AS cost_usd
FROM f GROUP BY ALL ORDER BY day, grp"""

# Daily token counts per billed category (the 5-minute and 1-hour cache writes together).
DAILY_TOKENS_SQL = """SELECT CAST(ts AS DATE) AS day, sum(input_tokens) AS uncached,
    sum(cache_read_tokens) AS cache_read,
    sum(cache_write_tokens + cache_write_1h_tokens) AS cache_write, sum(output_tokens) AS output
FROM usage_events WHERE {where} GROUP BY ALL ORDER BY day"""

# Requests and spend per model (the model mix needs no outcomes: a plain GROUP BY).
MODEL_MIX_SQL = """SELECT {model} AS model, count(*) AS requests, sum(cost_usd) AS cost_usd
FROM usage_events WHERE {where} GROUP BY ALL
ORDER BY cost_usd DESC NULLS LAST, requests DESC, model ASC NULLS LAST"""

# The files loaded, newest first, with their quarantined rows.
FILES_SQL = """SELECT path, format, kind, records_read, rows_loaded, rows_quarantined,
    strftime(loaded_at, '%Y-%m-%d %H:%M') AS loaded_at
FROM files ORDER BY loaded_at DESC, path"""

# Why rows were quarantined, most frequent reason first.
QUARANTINE_SQL = """SELECT reason, count(*) AS n FROM quarantine
GROUP BY reason ORDER BY n DESC, reason LIMIT ?"""

TOKEN_CATEGORIES = ("uncached", "cache_read", "cache_write", "output")


@dataclass
class Series:
    """Values per day for a few named groups (missing days are 0)."""

    days: list[dt.date]
    values: dict[str, list[Decimal]]


@dataclass
class PageData:
    report: Report  # by workflow
    models: list[dict[str, Any]]  # model mix: group, requests, cost_usd, share
    daily_spend: Series
    daily_tokens: Series
    files: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    drains: DrainReport | None = None
    billing: Reconciliation | None = None
    tokens: TokenReconciliation | None = None
    forecast: Forecast | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _pivot(rows: list[tuple[dt.date, str, Any]], order: list[str]) -> Series:
    days = sorted({r[0] for r in rows})
    index = {d: i for i, d in enumerate(days)}
    values = {name: [Decimal(0)] * len(days) for name in order}
    for day, name, value in rows:
        values[name][index[day]] += Decimal(value or 0)
    return Series(days, values)


def model_mix(
    con: duckdb.DuckDBPyConnection, where: str, params: list[Any], top: int
) -> list[dict[str, Any]]:
    """Requests, exact spend and share of spend per model, costliest first; models past
    ``top`` fold into one ``(other)`` row, as in ``report --by model --top``."""
    raw = con.execute(MODEL_MIX_SQL.format(model=dim_sql("model"), where=where), params)
    rows = [(m, int(n), c) for m, n, c in raw.fetchall()]
    if len(rows) > top:
        rest = rows[top:]
        priced = [c for _, _, c in rest if c is not None]
        rows = [
            *rows[:top],
            (OTHER_LABEL, sum(n for _, n, _ in rest), sum(priced) if priced else None),
        ]
    total = sum((c for _, _, c in rows if c is not None), Decimal(0))
    return [
        {
            "group": {"model": model},
            "requests": n,
            "cost_usd": None if cost is None else cost.quantize(MONEY),
            "share": (cost / total).quantize(RATIO, ROUND_HALF_EVEN)
            if cost is not None and total
            else None,
        }
        for model, n, cost in rows
    ]


def daily_spend(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], top: int) -> Series:
    sql = DAILY_BY_WORKFLOW_SQL.format(
        workflow=dim_sql("workflow"), none=NONE_LABEL, others=OTHERS, where=where
    )
    rows = [(r[0], str(r[1]), r[2]) for r in con.execute(sql, [*params, top]).fetchall()]
    totals: dict[str, Decimal] = {}
    for _, name, value in rows:
        totals[name] = totals.get(name, Decimal(0)) + Decimal(value or 0)
    order = sorted((n for n in totals if n != OTHERS), key=lambda n: (-totals[n], n))
    if OTHERS in totals:
        order.append(OTHERS)
    return _pivot(rows, order)


def daily_tokens(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> Series:
    rows = con.execute(DAILY_TOKENS_SQL.format(where=where), params).fetchall()
    days = [r[0] for r in rows]
    values = {
        name: [Decimal(int(r[i + 1] or 0)) for r in rows] for i, name in enumerate(TOKEN_CATEGORIES)
    }
    return Series(days, values)


def window(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> tuple[str, str]:
    """The first and last call the filters select (not the whole database's)."""
    first, last = con.execute(
        f"SELECT min(ts)::VARCHAR, max(ts)::VARCHAR FROM usage_events WHERE {where}", params
    ).fetchall()[0]
    return (first or "—", last or "—")


def sources(
    con: duckdb.DuckDBPyConnection, reasons: int = 10
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    files = _dicts(con.execute(FILES_SQL))
    quarantine = _dicts(con.execute(QUARANTINE_SQL, [reasons]))
    return files, quarantine


def capture_by_day(billing: Reconciliation) -> list[dict[str, Any]]:
    """Logged spend over billed spend per period, over the rows that have both."""
    acc: dict[str, list[Decimal]] = {}
    for r in billing.rows:
        billed, logged = r.get("billed_usd"), r.get("logged_usd")
        if billed is None or logged is None:
            continue
        pair = acc.setdefault(str(r["period"]), [Decimal(0), Decimal(0)])
        pair[0] += billed
        pair[1] += logged
    return [
        {"period": p, "billed_usd": b, "logged_usd": lg, "capture_rate": (lg / b) if b else None}
        for p, (b, lg) in sorted(acc.items())
    ]
