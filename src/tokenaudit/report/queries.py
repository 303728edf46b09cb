"""Spend rollups: requests, tokens, exact cost, outcomes and retries by any dimensions.

Sums happen in DuckDB in exact DECIMAL; ratios (share, acceptance rate, cost per
accepted outcome) are computed here in Python ``Decimal`` from those sums, so a
report's rows always add up to its totals to the last decimal.

Cost per accepted outcome is trace-level: the cost of all calls of a group
divided by the accepted outcomes of the traces (or sessions, or lone calls)
those calls belong to. A trace's outcome is its last non-null outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import TokenauditError
from tokenaudit.model import DIMENSIONS, TIME_DIMENSIONS, TOKEN_COLUMNS, q

if TYPE_CHECKING:
    import duckdb

MONEY = Decimal("0.000000000001")
RATIO = Decimal("0.000001")
NONE_LABEL = "(none)"
OTHER_LABEL = "(other)"

_DIM_SQL = {
    "day": "CAST(ts AS DATE)::VARCHAR",
    "week": "CAST(date_trunc('week', ts) AS DATE)::VARCHAR",
    "month": "strftime(ts, '%Y-%m')",
    "hour": "strftime(date_trunc('hour', ts), '%Y-%m-%d %H:00')",
    "api_key": "CASE WHEN api_key_last4 IS NOT NULL THEN '…' || api_key_last4 END",
}


def dim_sql(dim: str) -> str:
    if dim in _DIM_SQL:
        return _DIM_SQL[dim]
    if dim in DIMENSIONS:
        return q(dim)
    raise TokenauditError(
        f"unknown dimension '{dim}'",
        hint="dimensions: " + ", ".join((*DIMENSIONS, *TIME_DIMENSIONS)),
    )


@dataclass(frozen=True)
class Filters:
    since: dt.date | None = None
    until: dt.date | None = None  # inclusive day
    where: tuple[tuple[str, str], ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.since:
            clauses.append("ts >= ?")
            params.append(dt.datetime.combine(self.since, dt.time()))
        if self.until:
            clauses.append("ts < ?")
            params.append(dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time()))
        for dim, value in self.where:
            expr = dim_sql(dim)
            if value in (NONE_LABEL, ""):
                clauses.append(f"{expr} IS NULL")
            else:
                clauses.append(f"{expr} = ?")
                params.append(value)
        return (" AND ".join(clauses) or "true"), params

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "where": dict(self.where),
        }


# One row per group: counts and exact sums. {dims} are whitelisted expressions.
ROLLUP_SQL = """
WITH ev AS (
    SELECT *, coalesce(trace_id, session_id, 'call:' || file_id || ':' || line_no) AS unit
    FROM usage_events WHERE {where}
), unit_outcome AS (
    SELECT unit, arg_max(outcome, ts) FILTER (WHERE outcome IS NOT NULL) AS outcome
    FROM ev GROUP BY unit
), grouped AS (
    SELECT {dims_select},
        count(*) AS requests,
        {token_sums},
        sum(cost_usd) AS cost_usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_requests,
        count(*) FILTER (WHERE attempt > 1) AS retries,
        count(DISTINCT ev.unit) FILTER (WHERE uo.outcome IS NOT NULL) AS outcomes,
        count(DISTINCT ev.unit) FILTER (WHERE uo.outcome = 'accepted') AS accepted,
        count(DISTINCT ev.unit) FILTER (WHERE uo.outcome IN ('rejected', 'escalated')) AS rejected
    FROM ev LEFT JOIN unit_outcome uo USING (unit)
    GROUP BY {dims_group}
)
SELECT * FROM grouped
ORDER BY cost_usd DESC NULLS LAST, requests DESC, {dims_order}
"""

METRIC_COLUMNS = (
    "requests",
    *TOKEN_COLUMNS,
    "cost_usd",
    "unpriced_requests",
    "retries",
    "outcomes",
    "accepted",
    "rejected",
)


@dataclass
class Report:
    by: list[str]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def _rollup(
    con: duckdb.DuckDBPyConnection, by: list[str], where: str, params: list[Any]
) -> list[dict[str, Any]]:
    if by:
        exprs = [f"{dim_sql(d)} AS {q('g_' + d)}" for d in by]
        dims_select = ", ".join(exprs)
        dims_group = ", ".join(q("g_" + d) for d in by)
        dims_order = ", ".join(f"{q('g_' + d)} ASC NULLS LAST" for d in by)
    else:
        dims_select, dims_group, dims_order = "'all' AS g_all", "ALL", "1"
    sql = ROLLUP_SQL.format(
        where=where,
        dims_select=dims_select,
        dims_group=dims_group,
        dims_order=dims_order,
        token_sums=",\n        ".join(f"coalesce(sum({c}), 0) AS {c}" for c in TOKEN_COLUMNS),
    )
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _finish(raw: dict[str, Any], by: list[str], total_cost: Decimal | None) -> dict[str, Any]:
    row: dict[str, Any] = {"group": {d: raw.get("g_" + d) for d in by}}
    for col in METRIC_COLUMNS:
        value = raw[col]
        row[col] = value if col == "cost_usd" else int(value)
    cost: Decimal | None = raw["cost_usd"]
    row["cost_usd"] = cost.quantize(MONEY) if cost is not None else None
    row["share"] = (
        (cost / total_cost).quantize(RATIO, ROUND_HALF_EVEN)
        if cost is not None and total_cost
        else None
    )
    outcomes, accepted = row["outcomes"], row["accepted"]
    row["acceptance_rate"] = (
        (Decimal(accepted) / Decimal(outcomes)).quantize(RATIO) if outcomes else None
    )
    row["cost_per_accepted_usd"] = (
        (cost / accepted).quantize(MONEY, ROUND_HALF_EVEN)
        if cost is not None and accepted
        else None
    )
    row["retry_rate"] = (
        (Decimal(row["retries"]) / Decimal(row["requests"])).quantize(RATIO)
        if row["requests"]
        else None
    )
    return row


def rollup(
    con: duckdb.DuckDBPyConnection,
    by: list[str],
    filters: Filters | None = None,
    top: int | None = None,
) -> Report:
    """Rank spend by ``by``; rows past ``top`` fold into one ``(other)`` row."""
    for d in by:
        dim_sql(d)
    if len(set(by)) != len(by):
        raise TokenauditError("a dimension is repeated in --by")
    filters = filters or Filters()
    where, params = filters.sql()
    total_raw = _rollup(con, [], where, params)
    total_cost: Decimal | None = total_raw[0]["cost_usd"] if total_raw else None
    raw_rows = _rollup(con, by, where, params)
    rows = [_finish(r, by, total_cost) for r in raw_rows]
    if top is not None and top >= 0 and len(rows) > top:
        rest = raw_rows[top:]
        merged: dict[str, Any] = {("g_" + d): OTHER_LABEL for d in by}
        for col in METRIC_COLUMNS:
            values = [r[col] for r in rest]
            if col == "cost_usd":
                priced = [v for v in values if v is not None]
                merged[col] = sum(priced, Decimal(0)) if priced else None
            else:
                merged[col] = sum(int(v) for v in values)
        rows = [*rows[:top], _finish(merged, by, total_cost)]
        rows[-1]["group"] = dict.fromkeys(by, OTHER_LABEL)
    totals = (
        _finish(total_raw[0], [], total_cost)
        if total_raw and total_raw[0]["requests"]
        else _finish(_empty(), [], None)
    )
    totals.pop("group")
    return Report(by=by, rows=rows, totals=totals)


def _empty() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(METRIC_COLUMNS, 0)
    out["cost_usd"] = None
    return out


META_SQL = """SELECT
    (SELECT count(*) FROM files) AS files_loaded,
    (SELECT coalesce(sum(rows_quarantined), 0) FROM files) AS quarantined_rows,
    (SELECT count(*) FROM usage_events WHERE cost_usd IS NULL) AS unpriced_requests,
    (SELECT min(ts)::VARCHAR FROM usage_events) AS first_ts,
    (SELECT max(ts)::VARCHAR FROM usage_events) AS last_ts,
    (SELECT value FROM meta WHERE key = 'price_fingerprint') AS price_snapshot"""


def meta(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    cur = con.execute(META_SQL)
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchall()[0], strict=True))
