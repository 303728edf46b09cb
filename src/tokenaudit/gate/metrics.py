"""The gate's metrics: one rule's value per group of its scope, with its sample size.

A rule's scope selects calls (``Rule.scope_sql``); its split dimensions (``per``, or the
scope dimensions whose pattern is ``*``) cut them into groups, each judged on its own.
Sums are exact DECIMAL in DuckDB; ratios are taken here in Python ``Decimal``.

- ``spend_usd``: the spend of the group's costliest period (day, week, month or the data's
  whole window, ``all``), naming that period. Samples: the calls.
- ``cost_per_accepted_usd``: the cost of the group's calls over the accepted outcomes of
  their traces, as in ``report`` (a trace's outcome counts in the group of the call that
  carries it). Samples: the traces. Each group also keeps the moments of its per-trace
  (cost, accepted) pairs, which give a regression its interval (``gate.check``).
- ``tokens_per_request_p50`` / ``_p95``: the median / 95th percentile of a call's tokens
  (input, cache reads and writes, output) over the calls that carry tokens.
- ``retry_rate``: retried calls (``attempt > 1``) over all calls.
- ``waste_share``: the waste of the drains found in the scope over its spend.
- ``capture_rate``: logged over billed dollars of the billing rows (provider and model)
  in the scope: lower is worse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.budgets import Rule
from tokenaudit.model import q
from tokenaudit.report.queries import MONEY, RATIO, TRACE_KEY_SQL, _outcome_marks, dim_sql

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.drains.base import Settings

TOKENS = Decimal("0.1")
MONEY_METRICS = ("spend_usd", "cost_per_accepted_usd", "waste_share", "capture_rate")
_PERIOD_SQL = {
    "day": dim_sql("day"),
    "week": dim_sql("week"),
    "month": dim_sql("month"),
    "all": "'all'",
}
_TOKENS_SQL = (
    "coalesce(input_tokens, 0) + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)"
    " + coalesce(cache_write_1h_tokens, 0) + coalesce(output_tokens, 0)"
)

# Calls per group (and period): counts, exact spend, retries and token percentiles.
CALLS_SQL = """
SELECT {dims}, {period} AS period, count(*) AS requests, sum(cost_usd) AS cost_usd,
    count(*) FILTER (WHERE attempt > 1) AS retries,
    count(*) FILTER (WHERE tok > 0) AS with_tokens,
    quantile_cont(tok, 0.5) FILTER (WHERE tok > 0) AS p50,
    quantile_cont(tok, 0.95) FILTER (WHERE tok > 0) AS p95
FROM (SELECT *, {tokens} AS tok FROM usage_events WHERE {where})
GROUP BY ALL ORDER BY ALL
"""

# Per (group, trace): its calls' cost and whether its outcome, counted in this group, is
# accepted. Outcomes follow report's rule: the trace's latest mark, in the group of its call.
TRACES_SQL = """
WITH ev AS NOT MATERIALIZED (  -- each use reads only the columns it needs
    SELECT * FROM usage_events WHERE {where}
), marks AS (
    SELECT {trace_key} AS tkey, {dims_struct} AS last, (ts, 0, file_id, line_no) AS ord
    FROM ev WHERE outcome IS NOT NULL{outcome_marks}
), last_outcome AS (
    SELECT tkey, arg_max(last, ord) AS last FROM marks GROUP BY tkey
), costs AS (
    SELECT {dims_only} AS g, {trace_key} AS tkey, coalesce(sum(cost_usd), 0) AS cost_usd
    FROM ev GROUP BY ALL
)
SELECT c.g, c.tkey, c.cost_usd,
    coalesce(lo.last.outcome = 'accepted' AND {same_group}, false) AS accepted
FROM costs c LEFT JOIN last_outcome lo ON lo.tkey = c.tkey
ORDER BY ALL
"""


@dataclass
class Measure:
    """One group's value of a rule's metric (None: no data to compute it)."""

    group: dict[str, Any]
    value: Decimal | None
    samples: int
    period: str | None = None  # spend: the period of the value
    stats: dict[str, float] = field(default_factory=dict)  # cost per accepted: moments

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "value": None if self.value is None else str(self.value),
            "samples": self.samples,
            "period": self.period,
            "stats": self.stats,
        }


def _groups(rule: Rule) -> tuple[list[str], str]:
    dims = list(rule.split_dims())
    select = ", ".join(f"{dim_sql(d)} AS {q('g_' + d)}" for d in dims) or "'all' AS g_all"
    return dims, select


def _key(dims: list[str], row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row["g_" + d] for d in dims)


def _calls(
    con: duckdb.DuckDBPyConnection, rule: Rule, period: str = "all"
) -> tuple[list[str], list[dict[str, Any]]]:
    dims, select = _groups(rule)
    where, params = rule.scope_sql()
    sql = CALLS_SQL.format(dims=select, period=_PERIOD_SQL[period], tokens=_TOKENS_SQL, where=where)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return dims, [r for r in rows if r["requests"]]  # no group: an empty aggregate


def _ratio(num: Decimal, den: Decimal, unit: Decimal = RATIO) -> Decimal | None:
    return (num / den).quantize(unit, ROUND_HALF_EVEN) if den else None


def _tokens(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value)).quantize(TOKENS, ROUND_HALF_EVEN)


def _simple(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Measure]:
    period = (rule.period or "all") if rule.metric == "spend_usd" else "all"
    dims, rows = _calls(con, rule, period)
    out: dict[tuple[Any, ...], Measure] = {}
    for r in rows:
        group = {d: r["g_" + d] for d in dims}
        if rule.metric == "spend_usd":
            cost = (r["cost_usd"] or Decimal(0)).quantize(MONEY)
            m = Measure(group, cost, int(r["requests"]), None if period == "all" else r["period"])
            best = out.get(_key(dims, r))
            if best is not None:  # keep the costliest period; the calls of all of them
                m.samples += best.samples
                if best.value is not None and best.value >= cost:
                    m.value, m.period = best.value, best.period
            out[_key(dims, r)] = m
        elif rule.metric == "retry_rate":
            requests = int(r["requests"])
            out[_key(dims, r)] = Measure(
                group, _ratio(Decimal(int(r["retries"])), Decimal(requests)), requests
            )
        else:
            p = r["p50"] if rule.metric == "tokens_per_request_p50" else r["p95"]
            out[_key(dims, r)] = Measure(group, _tokens(p), int(r["with_tokens"]))
    return list(out.values())


def _moments(pairs: Iterable[tuple[float, float]]) -> dict[str, float]:
    n = c = a = cc = aa = ca = 0.0
    for cost, acc in pairs:
        n += 1
        c += cost
        a += acc
        cc += cost * cost
        aa += acc * acc
        ca += cost * acc
    return {"n": n, "c": c, "a": a, "cc": cc, "aa": aa, "ca": ca}


def _cost_per_accepted(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Measure]:
    dims, _ = _groups(rule)
    exprs = {d: dim_sql(d) for d in dims} or {"all": "'all'"}
    only = "{" + ", ".join(f"'g_{d}': {e}" for d, e in exprs.items()) + "}"
    struct = "{" + ", ".join(f"'g_{d}': {e}" for d, e in exprs.items()) + ", 'outcome': outcome}"
    same = " AND ".join(
        f"lo.last.{q('g_' + d)} IS NOT DISTINCT FROM c.g.{q('g_' + d)}" for d in exprs
    )
    where, params = rule.scope_sql()
    sql = TRACES_SQL.format(
        where=where,
        trace_key=TRACE_KEY_SQL,
        dims_struct=struct,
        dims_only=only,
        outcome_marks=_outcome_marks(con, only),
        same_group=same,
    )
    traces: dict[tuple[Any, ...], list[tuple[Decimal, bool]]] = {}
    for g, _tkey, cost, accepted in con.execute(sql, params).fetchall():
        key = tuple(g["g_" + d] for d in dims)
        traces.setdefault(key, []).append((Decimal(cost), bool(accepted)))
    out = []
    for key, pairs in traces.items():
        cost = sum((c for c, _ in pairs), Decimal(0))
        accepted = sum(1 for _, a in pairs if a)
        m = Measure(
            dict(zip(dims, key, strict=True)), _ratio(cost, Decimal(accepted), MONEY), len(pairs)
        )
        m.stats = _moments((float(c), float(a)) for c, a in pairs)
        out.append(m)
    return out


def _waste_share(
    con: duckdb.DuckDBPyConnection, rule: Rule, settings: Settings | None
) -> list[Measure]:
    from tokenaudit import drains

    dims, rows = _calls(con, rule)
    where, params = rule.scope_sql()
    found = drains.detect(con, where, params, drains.KINDS, settings)
    waste: dict[tuple[Any, ...], Decimal] = {}
    for f in found.findings:
        key = tuple(f.group.get(d) for d in dims)
        waste[key] = waste.get(key, Decimal(0)) + f.waste_usd
    out = []
    for r in rows:
        spend = r["cost_usd"] or Decimal(0)
        value = _ratio(waste.get(_key(dims, r), Decimal(0)), spend)
        out.append(Measure({d: r["g_" + d] for d in dims}, value, int(r["requests"])))
    return out


def _capture_rate(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Measure]:
    from tokenaudit.reconcile import billing

    dims = list(rule.split_dims())
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in billing.reconcile(con, billing.Options(grain="month")).rows:
        if not rule.matches(row):
            continue
        key = tuple(row.get(d) for d in dims)
        acc = sums.setdefault(key, [Decimal(0), Decimal(0), 0])
        billed = row["billed_usd"] if row["billed_usd"] is not None else None
        billed = billed if billed is not None else row["billed_at_our_prices_usd"]
        acc[0] += row["logged_usd"] or Decimal(0)
        if billed is not None:
            acc[1] += billed
            acc[2] += 1
    return [
        Measure(dict(zip(dims, key, strict=True)), _ratio(logged, billed), lines)
        for key, (logged, billed, lines) in sorted(sums.items(), key=lambda kv: str(kv[0]))
        if lines
    ]


def measure(
    con: duckdb.DuckDBPyConnection, rule: Rule, settings: Settings | None = None
) -> list[Measure]:
    """The rule's value per group of its scope; no group at all: the scope has no data."""
    if rule.metric == "cost_per_accepted_usd":
        found = _cost_per_accepted(con, rule)
    elif rule.metric == "waste_share":
        found = _waste_share(con, rule, settings)
    elif rule.metric == "capture_rate":
        found = _capture_rate(con, rule)
    else:
        found = _simple(con, rule)
    return sorted(found, key=lambda m: [str(m.group[d]) for d in m.group])


RATE_METRICS = frozenset({"retry_rate", "waste_share", "capture_rate"})


def shown(metric: str, value: Decimal | None) -> str:
    """A metric's value as people read it: dollars, a percentage or a token count."""
    if value is None:
        return "—"
    if metric in RATE_METRICS:  # (waste and capture are money ratios: rates here)
        return f"{value * 100:.1f}%"
    if metric in MONEY_METRICS:
        places = 0 if value == value.to_integral_value() else 2 if abs(value) >= 10 else 4
        return f"${value:,.{places}f}"
    return f"{value:,.0f}"
