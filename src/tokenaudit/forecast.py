"""Month-end spend forecast per group: projection, interval, budget runway, acceleration.

As of: the last day with data, up to the month's end (a past month is complete: its
forecast is its spend). The as-of day counts as a whole day.
Run rate: the group's daily spend over the ``RATE_DAYS`` days ending at the as-of day (from
its first day with calls; days without calls are $0): the median of the weekdays for the
remaining weekdays and of the weekend days for the remaining weekend days, or of all those
days when a kind has fewer than ``MIN_KIND_DAYS``; so a business-hours workload is not
projected at its weekday rate on Sundays.
Projection: month to date + the rate of every remaining day of the month.
Interval (80 %): ``DRAWS`` bootstrap months, each drawing every remaining day's spend from
the run-rate days of its kind, with a seed made of the month and the group (the same data
gives the same interval); the interval is their 10th to 90th percentile.
Acceleration: the four 7-day weeks ending at the as-of day each spend more than the one
before (three rises in a row), from a first week with spend; None when the data does not
reach back four weeks.
Budgets (``budgets.py``): every ``spend_usd`` / ``month`` rule is forecast on the calls its
scope selects, taken together. Its state: ``over_budget`` when the projection exceeds
``fail``; ``at_risk`` when it exceeds ``warn`` or the interval's high end exceeds ``fail``;
else ``within_budget``. ``warn_day`` / ``breach_day``: the first day the month's spend
(actual, then at the run rate) exceeds ``warn`` / ``fail``: a past day when it already
has, None when it will not this month. A group row carries the worst state of the rules
whose scope contains it (a scope of ``--by`` dimensions only, all matching its values).

Money is exact: sums from DuckDB DECIMAL, medians in ``Decimal``, bootstrap sums in integer
units of 1e-12 dollars. Unpriced calls are counted, never valued: their spend is unknown.
Totals add up the groups' figures (the interval too: a conservative total interval).
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from tokenaudit.anomalies import DAY, Cell, Key, check_dims, median, spend_by
from tokenaudit.budgets import Rule
from tokenaudit.report.queries import MONEY, NONE_LABEL, Filters

if TYPE_CHECKING:
    import duckdb

RATE_DAYS = 14  # days behind the run rate
MIN_KIND_DAYS = 3  # weekdays (weekend days) needed for a rate of their own
WEEKS = 4  # weekly spends compared for acceleration
DRAWS = 1000  # bootstrap months behind the interval
LOW, HIGH = 0.10, 0.90
UNITS = 10**12  # integer units of a dollar in the bootstrap (DECIMAL(38,12) scale)
STATES = ("within_budget", "at_risk", "over_budget")
FIELDS = (  # of a row, after its group
    "month_to_date_usd",
    "weekday_rate_usd",
    "weekend_rate_usd",
    "projected_usd",
    "low_usd",
    "high_usd",
    "weekly_usd",
    "accelerating",
    "requests",
    "unpriced_requests",
)


@dataclass(frozen=True)
class Options:
    by: tuple[str, ...] = ("workflow",)
    month: dt.date | None = None  # any day of the month; default: the latest data's
    rules: tuple[Rule, ...] = ()  # budget rules; only spend_usd / month ones are used


@dataclass
class Forecast:
    by: list[str]
    rows: list[dict[str, Any]]
    budgets: list[dict[str, Any]]
    totals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Month:
    start: dt.date
    end: dt.date
    as_of: dt.date  # last day with data, up to ``end``
    weeks_known: bool  # the data reaches back WEEKS weeks from as_of

    @property
    def remaining(self) -> list[dt.date]:
        first = max(self.as_of + DAY, self.start)
        return [first + dt.timedelta(i) for i in range((self.end - first).days + 1)]

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m")


def _q(value: Decimal) -> Decimal:
    return value.quantize(MONEY)


def _weekend(day: dt.date) -> bool:
    return day.weekday() >= 5


def project(cells: dict[Any, Cell], month: Month, seed: str) -> dict[str, Any] | None:
    """One group's (or scope's) forecast from its daily spend; None without a priced day."""
    first = min(cells)
    known: dict[dt.date, Decimal] = {}
    for i in range((month.as_of - first).days + 1):
        day = first + dt.timedelta(i)
        spend = cells[day].spend if day in cells else Decimal(0)
        if spend is not None:
            known[day] = spend
    in_month = [c for d, c in cells.items() if month.start <= d <= month.as_of]
    if not known:
        return None
    window = [d for d in known if d > month.as_of - dt.timedelta(RATE_DAYS)]
    pools = {k: [known[d] for d in window if _weekend(d) == k] for k in (False, True)}
    for k, pool in pools.items():
        if len(pool) < MIN_KIND_DAYS:
            pools[k] = [known[d] for d in window]
    rates = {k: median(pool) if pool else Decimal(0) for k, pool in pools.items()}
    actual = [(d, known.get(d, Decimal(0))) for d in sorted(known) if d >= month.start]
    path = actual + [(d, rates[_weekend(d)]) for d in month.remaining]
    to_date = sum((s for _, s in actual), Decimal(0))
    projected = sum((s for _, s in path), Decimal(0))
    low, high = _interval(pools, month.remaining, random.Random(seed))
    weekly = [
        sum(
            (known.get(month.as_of - dt.timedelta(7 * w + i), Decimal(0)) for i in range(7)),
            Decimal(0),
        )
        for w in reversed(range(WEEKS))
    ]
    accelerating = None
    if month.weeks_known:
        accelerating = weekly[0] > 0 and all(a < b for a, b in pairwise(weekly))
    return {
        "month_to_date_usd": _q(to_date),
        "weekday_rate_usd": _q(rates[False]),
        "weekend_rate_usd": _q(rates[True]),
        "projected_usd": _q(projected),
        "low_usd": _q(to_date + low),
        "high_usd": _q(to_date + high),
        "weekly_usd": [_q(w) for w in weekly] if month.weeks_known else None,
        "accelerating": accelerating,
        "requests": sum(c.requests for c in in_month),
        "unpriced_requests": sum(c.unpriced for c in in_month),
        "_path": path,
    }


def _interval(
    pools: dict[bool, list[Decimal]], remaining: list[dt.date], rng: random.Random
) -> tuple[Decimal, Decimal]:
    """The LOW and HIGH quantiles of the remaining days' spend over DRAWS bootstrap months."""
    counts = {k: sum(_weekend(d) == k for d in remaining) for k in (False, True)}
    units = {k: [int(v * UNITS) for v in pool] for k, pool in pools.items()}
    if not remaining or not any(units.values()):
        return Decimal(0), Decimal(0)
    sums = sorted(
        sum(sum(rng.choices(units[k], k=counts[k])) for k in (False, True) if counts[k])
        for _ in range(DRAWS)
    )
    low, high = (sums[round(q * (DRAWS - 1))] for q in (LOW, HIGH))
    return Decimal(low).scaleb(-12), Decimal(high).scaleb(-12)


def crossing(path: Sequence[tuple[dt.date, Decimal]], level: Decimal | None) -> dt.date | None:
    """The first day the running total of ``path`` exceeds ``level``."""
    if level is None:
        return None
    total = Decimal(0)
    for day, spend in path:
        total += spend
        if total > level:
            return day
    return None


def state(rule: Rule, projected: Decimal, high: Decimal) -> str:
    if rule.fail is not None and projected > rule.fail:
        return "over_budget"
    if (rule.warn is not None and projected > rule.warn) or (
        rule.fail is not None and high > rule.fail
    ):
        return "at_risk"
    return "within_budget"


def _month(con: duckdb.DuckDBPyConnection, month: dt.date | None) -> Month | None:
    first, last = con.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM usage_events").fetchall()[0]
    if last is None:
        return None
    start = (month or last).replace(day=1)
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    as_of = min(last, end)
    return Month(start, end, as_of, first <= as_of - dt.timedelta(7 * WEEKS - 1))


def _label(key: Key) -> str:
    return "|".join(NONE_LABEL if v is None else str(v) for v in key)


def _budget(
    con: duckdb.DuckDBPyConnection, rule: Rule, month: Month, where: str, params: list[Any]
) -> dict[str, Any]:
    scope, scope_params = rule.scope_sql()
    cells = spend_by(con, [], "day", f"({scope}) AND {where}", [*scope_params, *params]).get(())
    fc = project(cells, month, f"{month.label}|budget|{rule.name}") if cells else None
    row: dict[str, Any] = {
        "name": rule.name,
        "scope": dict(rule.scope),
        "warn_usd": rule.warn,
        "fail_usd": rule.fail,
        "month_to_date_usd": None,
        "projected_usd": None,
        "low_usd": None,
        "high_usd": None,
        "state": None,
        "warn_day": None,
        "breach_day": None,
        "requests": 0,
        "unpriced_requests": 0,
    }
    if fc is not None:
        path = fc.pop("_path")
        row.update({k: fc[k] for k in row if k in fc})
        row["state"] = state(rule, fc["projected_usd"], fc["high_usd"])
        row["warn_day"], row["breach_day"] = crossing(path, rule.warn), crossing(path, rule.fail)
    return row


def forecast(con: duckdb.DuckDBPyConnection, options: Options) -> Forecast:
    by = list(options.by)
    check_dims(by)
    rules = [r for r in options.rules if r.metric == "spend_usd" and r.period == "month"]
    result = Forecast(by, [], [], {})
    month = _month(con, options.month)
    if month is None:
        result.meta = {"by": by, "month": None}
        result.totals = _totals(result)
        return result
    read_from = min(month.start, month.as_of - dt.timedelta(7 * WEEKS - 1))
    where, params = Filters(read_from, month.as_of).sql()
    daily = spend_by(con, by, "day", where, params)
    for key in sorted(daily, key=_label):
        this_month = [c for d, c in daily[key].items() if d >= month.start]
        fc = project(daily[key], month, f"{month.label}|{_label(key)}")
        if fc is None:  # no priced day: the spend is unknown
            if not this_month:
                continue
            fc = dict.fromkeys(FIELDS) | {
                "requests": sum(c.requests for c in this_month),
                "unpriced_requests": sum(c.unpriced for c in this_month),
            }
        elif not this_month and not fc["projected_usd"]:
            continue  # not seen this month, and no run rate left
        fc.pop("_path", None)
        result.rows.append({"group": dict(zip(by, key, strict=True)), **fc})
    result.budgets = [_budget(con, rule, month, where, params) for rule in rules]
    for row in result.rows:
        covering = [
            (b, rule)
            for b, rule in zip(result.budgets, rules, strict=True)
            if rule.scope and {d for d, _ in rule.scope} <= set(by) and rule.matches(row["group"])
        ]
        states = [b["state"] for b, _ in covering if b["state"] is not None]
        row["budget_state"] = max(states, key=STATES.index) if states else None
        row["budgets"] = [rule.name for _, rule in covering]
    result.rows.sort(key=lambda r: (-(r["projected_usd"] or 0), _label(tuple(r["group"].values()))))
    result.totals = _totals(result)
    result.meta = {
        "by": by,
        "month": month.label,
        "as_of": month.as_of,
        "days_elapsed": max((month.as_of - month.start).days + 1, 0),
        "days_remaining": len(month.remaining),
        "rate_days": RATE_DAYS,
        "interval": f"p{round(LOW * 100)}-p{round(HIGH * 100)} of {DRAWS} bootstrap months",
    }
    return result


def _totals(result: Forecast) -> dict[str, Any]:
    out: dict[str, Any] = {"groups": len(result.rows)}
    for key in ("month_to_date_usd", "projected_usd", "low_usd", "high_usd"):
        values = [r[key] for r in result.rows if r.get(key) is not None]
        out[key] = sum(values, Decimal(0)) if values else None
    out["accelerating"] = sum(bool(r.get("accelerating")) for r in result.rows)
    out["requests"] = sum(r.get("requests", 0) for r in result.rows)
    out["unpriced_requests"] = sum(r.get("unpriced_requests", 0) for r in result.rows)
    out["budgets"] = {s: sum(b["state"] == s for b in result.budgets) for s in STATES}
    return out
