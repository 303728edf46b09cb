"""Spend rollups: requests, tokens, exact cost, outcomes and retries by any dimensions.

Sums happen in DuckDB in exact DECIMAL; ratios (share, acceptance rate, cost per
accepted outcome) are computed here in Python ``Decimal`` from those sums, so a
report's rows always add up to its totals to the last decimal.

Cost per accepted outcome is trace-level: the cost of all calls of a group
divided by the accepted outcomes of its traces (a trace is ``trace_id``, else
``session_id``, else a lone call). A trace's outcome is its last non-null outcome,
counted once, in the group of the call that carries it; so outcome counts, like
costs, add up to the totals.
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


# One row per group: counts and exact sums, plus the outcomes of the traces whose final
# outcome-carrying call falls in the group (so outcome counts add up to the totals).
# A trace is trace_id, else session_id, else the call alone. An outcome loaded from an
# outcomes file (or a trace export's scores) marks the last call of the trace, session or
# request it names; the latest mark of a trace is its outcome. {dims*} are whitelisted.
ROLLUP_SQL = """
WITH ev AS NOT MATERIALIZED (  -- each use reads only the columns it needs
    SELECT * FROM usage_events WHERE {where}
), grouped AS (
    SELECT {dims_select},
        count(*) AS requests,
        {token_sums},
        sum(cost_usd) AS cost_usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_requests,
        count(*) FILTER (WHERE attempt > 1) AS retries
    FROM ev GROUP BY {dims_group}
), marks AS (
    SELECT {trace_key} AS tkey, {dims_struct} AS last, (ts, 0, file_id, line_no) AS ord
    FROM ev WHERE outcome IS NOT NULL{outcome_marks}
), last_outcome AS (
    SELECT tkey, arg_max(last, ord) AS last FROM marks GROUP BY tkey
), rejected_spend AS (
    SELECT {dims_select}, sum(ev.cost_usd) AS rejected_usd, count(*) AS rejected_calls
    FROM ev JOIN last_outcome lo ON lo.tkey = {trace_key_ev}
    WHERE lo.last.outcome IN ('rejected', 'escalated') GROUP BY {dims_group}
), outcomes AS (
    SELECT {dims_from_last},
        count(*) AS outcomes,
        count(*) FILTER (WHERE last.outcome = 'accepted') AS accepted,
        count(*) FILTER (WHERE last.outcome IN ('rejected', 'escalated')) AS rejected
    FROM last_outcome GROUP BY ALL
)
SELECT grouped.*, coalesce(o.outcomes, 0) AS outcomes, coalesce(o.accepted, 0) AS accepted,
    coalesce(o.rejected, 0) AS rejected,
    CASE WHEN rs.rejected_calls IS NULL THEN 0 ELSE rs.rejected_usd END AS rejected_usd
FROM grouped LEFT JOIN outcomes o ON {dims_join}
    LEFT JOIN rejected_spend rs ON {dims_join_rs}
ORDER BY cost_usd DESC NULLS LAST, requests DESC, {dims_order}
"""

TRACE_KEY_SQL = "coalesce(trace_id, session_id, 'call:' || file_id || ':' || line_no)"

# Outcomes from the outcomes table, each on the last call (in the window) of what it names.
OUTCOME_MARKS_SQL = """
    UNION ALL
    SELECT c.tkey, struct_insert(c.d, outcome := o.outcome),
        (coalesce(o.ts, c.ts), 1, o.file_id, o.line_no)
    FROM outcomes o JOIN ({keyed}) c ON c.kind = o.key_kind AND c.key = o.key"""

_KEYED_SQL = """SELECT '{kind}' AS kind, {col} AS key,
        arg_max({dims_only}, (ts, file_id, line_no)) AS d,
        arg_max({trace_key}, (ts, file_id, line_no)) AS tkey, max(ts) AS ts
    FROM ev WHERE {col} IN (SELECT key FROM outcomes WHERE key_kind = '{kind}')
    GROUP BY {col}"""


def _outcome_marks(con: duckdb.DuckDBPyConnection, dims_only: str) -> str:
    if not con.execute("SELECT count(*) FROM outcomes").fetchall()[0][0]:
        return ""
    keyed = " UNION ALL ".join(
        _KEYED_SQL.format(kind=kind, col=col, dims_only=dims_only, trace_key=TRACE_KEY_SQL)
        for kind, col in (
            ("trace", "trace_id"),
            ("session", "session_id"),
            ("request", "request_id"),
        )
    )
    return OUTCOME_MARKS_SQL.format(keyed=keyed)


METRIC_COLUMNS = (
    "requests",
    *TOKEN_COLUMNS,
    "cost_usd",
    "unpriced_requests",
    "retries",
    "outcomes",
    "accepted",
    "rejected",
    "rejected_usd",
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
    dims = by or ["all"]
    exprs = {d: ("'all'" if d == "all" else dim_sql(d)) for d in dims}
    sql = ROLLUP_SQL.format(
        where=where,
        dims_select=", ".join(f"{e} AS {q('g_' + d)}" for d, e in exprs.items()),
        dims_group=", ".join(q("g_" + d) for d in dims),
        dims_struct="{"
        + ", ".join(f"'g_{d}': {e}" for d, e in exprs.items())
        + ", 'outcome': outcome}",
        trace_key=TRACE_KEY_SQL,
        outcome_marks=_outcome_marks(
            con, "{" + ", ".join(f"'g_{d}': {e}" for d, e in exprs.items()) + "}"
        ),
        dims_from_last=", ".join(f"last.{q('g_' + d)} AS {q('g_' + d)}" for d in dims),
        dims_join=" AND ".join(
            f"grouped.{q('g_' + d)} IS NOT DISTINCT FROM o.{q('g_' + d)}" for d in dims
        ),
        dims_join_rs=" AND ".join(
            f"grouped.{q('g_' + d)} IS NOT DISTINCT FROM rs.{q('g_' + d)}" for d in dims
        ),
        trace_key_ev=TRACE_KEY_SQL.replace("trace_id", "ev.trace_id")
        .replace("session_id", "ev.session_id")
        .replace("file_id", "ev.file_id")
        .replace("line_no", "ev.line_no"),
        dims_order=", ".join(f"{q('g_' + d)} ASC NULLS LAST" for d in dims),
        token_sums=",\n        ".join(f"coalesce(sum({c}), 0) AS {c}" for c in TOKEN_COLUMNS),
    )
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _sum_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up group rows exactly: the totals are the sum of the groups, by construction."""
    out: dict[str, Any] = {}
    for col in METRIC_COLUMNS:
        values = [r[col] for r in rows]
        if col in ("cost_usd", "rejected_usd"):
            priced = [v for v in values if v is not None]
            out[col] = sum(priced, Decimal(0)) if priced else None
        else:
            out[col] = sum(int(v) for v in values)
    return out


def _finish(raw: dict[str, Any], by: list[str], total_cost: Decimal | None) -> dict[str, Any]:
    row: dict[str, Any] = {"group": {d: raw.get("g_" + d) for d in by}}
    for col in METRIC_COLUMNS:
        value = raw[col]
        row[col] = value if col in ("cost_usd", "rejected_usd") else int(value)
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
    rejected_usd: Decimal | None = raw["rejected_usd"]
    row["rejected_usd"] = rejected_usd.quantize(MONEY) if rejected_usd is not None else None
    row["retry_rate"] = (
        (Decimal(row["retries"]) / Decimal(row["requests"])).quantize(RATIO)
        if row["requests"]
        else None
    )
    return row


SORTS = ("cost", "cost_per_accepted", "acceptance", "rejected", "requests")


def _sort_key(sort: str) -> Any:
    """Costliest first; or by cost per accepted outcome (highest first), acceptance rate
    (lowest first), rejected spend or requests (highest first). Groups without the figure
    go last; ties keep the cost order."""

    def key(r: dict[str, Any]) -> tuple[bool, Decimal]:
        if sort == "cost_per_accepted":
            v = (
                r["cost_usd"] / r["accepted"]
                if r["cost_usd"] is not None and r["accepted"]
                else None
            )
            return (v is None, -(v or Decimal(0)))
        if sort == "acceptance":
            v = Decimal(r["accepted"]) / r["outcomes"] if r["outcomes"] else None
            return (v is None, v or Decimal(0))
        if sort == "rejected":
            return (r["rejected_usd"] is None, -Decimal(r["rejected_usd"] or 0))
        return (False, -Decimal(r["requests"]))

    return key


def rollup(
    con: duckdb.DuckDBPyConnection,
    by: list[str],
    filters: Filters | None = None,
    top: int | None = None,
    sort: str = "cost",
) -> Report:
    """Rank spend by ``by`` (``sort``: see SORTS); rows past ``top`` fold into ``(other)``."""
    if sort not in SORTS:
        raise TokenauditError(f"cannot sort by '{sort}'", hint="--sort takes: " + ", ".join(SORTS))
    for d in by:
        dim_sql(d)
    if len(set(by)) != len(by):
        raise TokenauditError("a dimension is repeated in --by")
    filters = filters or Filters()
    where, params = filters.sql()
    raw_rows = _rollup(con, by, where, params)
    if sort != "cost":
        raw_rows.sort(key=_sort_key(sort))  # stable: ties keep the cost order
    total_raw = _sum_rows(raw_rows)
    total_cost: Decimal | None = total_raw["cost_usd"]
    rows = [_finish(r, by, total_cost) for r in raw_rows]
    if top is not None and top >= 0 and len(rows) > top:
        merged = _sum_rows(raw_rows[top:])
        rows = [*rows[:top], _finish(merged, by, total_cost)]
        rows[-1]["group"] = dict.fromkeys(by, OTHER_LABEL)
    totals = _finish(total_raw, [], total_cost)
    totals.pop("group")
    return Report(by=by, rows=rows, totals=totals)


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
