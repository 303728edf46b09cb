"""Spend anomalies: each group's daily spend against a robust baseline of its own history,
and hours that burn far faster than the group's normal hour (runaway loops).

Days. A group's series runs from its first day with calls to the last day of the data; a
day without calls is $0. A day is scored against the group's previous days (at least
``MIN_HISTORY``, within the last ``LOOKBACK_DAYS``): the same weekday when ``SAME_DAYS`` of
them exist (within ``WEEKDAY_WEEKS`` weeks), else the same kind of day (Monday-Friday or
Saturday-Sunday) when ``SAME_DAYS`` of those exist; until then it is not scored (against
all days, a weekend of business traffic reads as a drop). The baseline is their median; the
scale 1.4826 x their median absolute deviation (or 1.2533 x the mean absolute deviation
when that is 0); z = (spend - baseline) / scale (the modified z score of Iglewicz and
Hoaglin, customary threshold 3.5). A day is a spike (drop) when z >= threshold (<=
-threshold) and it is at least ``min_usd`` above (below) the baseline; against a flat
history z is None and any such move counts.

Hours (spend velocity). An hour's normal is the median spend of the same hour of the day
on the same kind of day over the previous ``LOOKBACK_DAYS`` (hours without calls count $0;
at least ``SAME_DAYS`` of them); its scale is the larger of theirs and the scale of all the
group's hours with spend (so that a quiet hour's near-zero spread does not read every call
as a spike). Groups with fewer than ``MIN_ACTIVE_HOURS`` hours with spend are skipped. An
hour is flagged when it spends above its normal with z >= threshold; runs of at least
``MIN_RUN_HOURS`` consecutive flagged hours whose excess over their normal adds up to
``min_usd`` or more are reported: a loop burning all weekend is one run.

Explanations. A drain finding (``tokenaudit.drains``, same calls) explains a spike or a run
when its calls (by request id) in that group and period cost ``EXPLAINS`` of the move or
more and at least twice their even share of its cost in the group over the window (so a
month-long pattern does not explain every spike); or, its ids incomplete, when its group
and first..last seen match. It brings its waste, and its calls and cost in the period.

``--since``/``--until`` choose the days reported; the history before them is still read.
Money stays exact: DuckDB sums DECIMAL(38,12), the rest is Python ``Decimal``. A day whose
calls are all unpriced is neither scored nor used as history; a partly unpriced day is
scored on its priced spend and says how many calls were unpriced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import TokenauditError
from tokenaudit.model import DIMENSIONS
from tokenaudit.report.queries import MONEY, Filters, dim_sql

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.drains.base import Finding, Settings

MIN_HISTORY = 8  # previous days a day needs to be scored
LOOKBACK_DAYS = 28  # history read for the all-days and kind-of-day baselines
WEEKDAY_WEEKS = 8  # history read for the same-weekday baseline
SAME_DAYS = 4  # same weekdays (or kinds of day) needed to compare against them alone
MIN_ACTIVE_HOURS = 24  # hours with spend a group needs for hourly scoring
MIN_RUN_HOURS = 2  # consecutive flagged hours a velocity run needs
EXPLAINS = Decimal("0.05")  # share of a move a drain's calls there must cost to explain it
MAD_SCALE = Decimal("1.4826")  # MAD -> standard deviation under normality
MEAN_AD_SCALE = Decimal("1.2533")  # mean absolute deviation -> standard deviation
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

Key = tuple[Any, ...]  # a group's dimension values, in --by order


@dataclass(frozen=True)
class Options:
    by: tuple[str, ...] = ("workflow",)
    filters: Filters = field(default_factory=Filters)
    threshold: float = 3.5  # robust z
    min_usd: Decimal = Decimal(1)  # smallest move reported (a day's, or a run of hours')


@dataclass
class Anomalies:
    by: list[str]
    rows: list[dict[str, Any]]  # spikes and drops, one per group and day
    velocity: list[dict[str, Any]]  # runs of hours far above the group's normal hour
    totals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    spend: Decimal | None  # None: the calls had no price
    requests: int
    unpriced: int


# Spend per group and bucket (UTC day or hour): exact sums, and the calls without a price.
# {dims} and {bucket} are whitelisted expressions; values are bound.
SPEND_SQL = """SELECT {dims}{bucket} AS bucket, sum(cost_usd) AS cost_usd,
    count(*) AS requests, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
FROM usage_events WHERE {where} GROUP BY ALL"""

# The group and hour of every call a drain finding names, by request id (i: the finding).
FINDING_CALLS_SQL = """SELECT f.i, {dims}, date_trunc('hour', ts) AS hour, count(*),
    sum(cost_usd)
FROM (SELECT unnest(?) AS i, unnest(?) AS request_id) f
JOIN usage_events USING (request_id)
WHERE {where} GROUP BY ALL"""


def check_dims(by: Sequence[str]) -> None:
    if not by:
        raise TokenauditError("--by needs a dimension")
    for d in by:
        if d not in DIMENSIONS:
            dim_sql(d)  # unknown: its error lists the dimensions
            raise TokenauditError(
                f"--by {d}: a time bucket is not a group here",
                hint="group by workflow, team, model, ...",
            )
    if len(set(by)) != len(by):
        raise TokenauditError("a dimension is repeated in --by")


def spend_by(
    con: duckdb.DuckDBPyConnection, by: Sequence[str], bucket: str, where: str, params: list[Any]
) -> dict[Key, dict[Any, Cell]]:
    """Per group: bucket (a ``date`` for "day", a ``datetime`` for "hour") -> its spend."""
    expr = {"day": "CAST(ts AS DATE)", "hour": "date_trunc('hour', ts)"}[bucket]
    dims = "".join(f"{dim_sql(d)} AS g{i}, " for i, d in enumerate(by))  # none: one group ()
    sql = SPEND_SQL.format(dims=dims, bucket=expr, where=where)
    out: dict[Key, dict[Any, Cell]] = {}
    for *key, b, cost, requests, unpriced in con.execute(sql, params).fetchall():
        cell = Cell(None if cost is None else Decimal(cost), int(requests), int(unpriced))
        out.setdefault(tuple(key), {})[b] = cell
    return out


def _steps(cells: dict[Any, Cell], end: Any) -> Iterator[Any]:
    """Every bucket (day or hour) from the group's first to ``end``."""
    step, at = (HOUR if isinstance(end, dt.datetime) else DAY), min(cells)
    while at <= end:
        yield at
        at += step


def median(values: Sequence[Decimal]) -> Decimal:
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def spread(pool: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    """The baseline (median) of ``pool`` and its robust scale (0 for a flat pool)."""
    base = median(pool)
    dev = [abs(x - base) for x in pool]
    scale = MAD_SCALE * median(dev)
    if not scale:
        scale = MEAN_AD_SCALE * sum(dev, Decimal(0)) / len(dev)
    return base, scale


def zscore(value: Decimal, base: Decimal, scale: Decimal) -> float | None:
    """The robust z (2 decimals), or None against a flat baseline."""
    return round(float((value - base) / scale), 2) if scale else None


def _pool(history: dict[dt.date, Decimal], day: dt.date) -> tuple[list[Decimal], str] | None:
    recent = [d for d in history if day - dt.timedelta(LOOKBACK_DAYS) <= d < day]
    if len(recent) < MIN_HISTORY:
        return None
    weeks = [day - dt.timedelta(7 * k) for k in range(1, WEEKDAY_WEEKS + 1)]
    same = [history[d] for d in weeks if d in history]
    if len(same) >= SAME_DAYS:
        return same, f"same weekday ({day.strftime('%A')})"
    weekend = day.weekday() >= 5
    kind = [history[d] for d in recent if (d.weekday() >= 5) == weekend]
    if len(kind) >= SAME_DAYS:
        return kind, "weekend days" if weekend else "weekdays"
    if len(kind) == len(recent):  # the history has one kind of day (gaps: unpriced days)
        return kind, "all days"
    return None  # a weekend against weekdays would be read as a drop: wait for its kind


def score_days(
    daily: dict[Key, dict[Any, Cell]],
    by: Sequence[str],
    first: dt.date,
    last: dt.date,
    options: Options,
) -> tuple[list[dict[str, Any]], int]:
    """Spikes and drops among the days ``first``..``last``; and how many days were scored."""
    rows: list[dict[str, Any]] = []
    scored = 0
    end = max(max(cells) for cells in daily.values()) if daily else last
    for key, cells in daily.items():
        history: dict[dt.date, Decimal] = {}
        for day in _steps(cells, end):
            cell = cells.get(day, Cell(Decimal(0), 0, 0))
            if cell.spend is not None:
                found = _pool(history, day) if first <= day <= last else None
                if found is not None:
                    scored += 1
                    pool, basis = found
                    base, scale = spread(pool)
                    z = zscore(cell.spend, base, scale)
                    delta = cell.spend - base
                    small = not delta or abs(delta) < options.min_usd
                    if not small and (z is None or abs(z) >= options.threshold):
                        rows.append(
                            {
                                "group": dict(zip(by, key, strict=True)),
                                "day": day,
                                "weekday": day.strftime("%a"),
                                "kind": "spike" if delta > 0 else "drop",
                                "spend_usd": cell.spend.quantize(MONEY),
                                "baseline_usd": base.quantize(MONEY),
                                "delta_usd": delta.quantize(MONEY),
                                "z": z,
                                "scale_usd": scale.quantize(MONEY),
                                "baseline": basis,
                                "baseline_days": len(pool),
                                "requests": cell.requests,
                                "unpriced_requests": cell.unpriced,
                                "drains": [],
                            }
                        )
                history[day] = cell.spend
    rows.sort(key=lambda r: (r["day"], -abs(r["delta_usd"]), tuple(map(str, r["group"].values()))))
    return rows, scored


def _hour_pool(series: dict[dt.datetime, Decimal | None], hour: dt.datetime) -> list[Decimal]:
    weekend = hour.weekday() >= 5
    before = (hour - dt.timedelta(k) for k in range(1, LOOKBACK_DAYS + 1))
    return [v for h in before if (h.weekday() >= 5) == weekend and (v := series.get(h)) is not None]


def score_hours(
    hourly: dict[Key, dict[Any, Cell]],
    by: Sequence[str],
    first: dt.date,
    last: dt.date,
    options: Options,
) -> list[dict[str, Any]]:
    """Runs of consecutive hours (within days ``first``..``last``) far above their normal."""
    runs: list[dict[str, Any]] = []
    end = max(max(cells) for cells in hourly.values()) if hourly else None
    for key, cells in hourly.items():
        active = [c.spend for c in cells.values() if c.spend]
        if end is None or len(active) < MIN_ACTIVE_HOURS:
            continue
        floor = spread(active)[1]
        series = {h: cells[h].spend if h in cells else Decimal(0) for h in _steps(cells, end)}
        flagged: dict[dt.datetime, tuple[Decimal, Decimal, float | None]] = {}
        for hour, cell in cells.items():
            if not cell.spend or not first <= hour.date() <= last:
                continue
            pool = _hour_pool(series, hour)
            if len(pool) < SAME_DAYS:
                continue
            normal, scale = spread(pool)
            z = zscore(cell.spend, normal, max(scale, floor))
            if cell.spend > normal and (z is None or z >= options.threshold):
                flagged[hour] = (cell.spend, normal, z)
        for start in sorted(h for h in flagged if h - HOUR not in flagged):
            hours = [start]
            while hours[-1] + HOUR in flagged:
                hours.append(hours[-1] + HOUR)
            spent = [flagged[h][0] for h in hours]
            normal = sum((flagged[h][1] for h in hours), Decimal(0))
            excess = sum(spent, Decimal(0)) - normal
            if len(hours) < MIN_RUN_HOURS or excess < options.min_usd:
                continue
            zs = [flagged[h][2] for h in hours]
            runs.append(
                {
                    "group": dict(zip(by, key, strict=True)),
                    "first_hour": start,
                    "last_hour": hours[-1],
                    "hours": len(hours),
                    "spend_usd": sum(spent, Decimal(0)).quantize(MONEY),
                    "normal_usd": normal.quantize(MONEY),
                    "excess_usd": excess.quantize(MONEY),
                    "peak_usd_per_hour": max(spent).quantize(MONEY),
                    "max_z": None if None in zs else max(z for z in zs if z is not None),
                    "requests": sum(cells[h].requests for h in hours),
                    "drains": [],
                }
            )
    runs.sort(key=lambda r: (r["first_hour"], tuple(map(str, r["group"].values()))))
    return runs


def explain(
    con: duckdb.DuckDBPyConnection,
    result: Anomalies,
    findings: list[Finding],
    sql: tuple[str, list[Any], int],  # the window: WHERE clause, its parameters, its hours
) -> None:
    """Attach to each spike and velocity run the drain findings that explain it."""
    by, (where, params, window) = result.by, sql
    idx = [i for i, f in enumerate(findings) for _ in f.request_ids]
    rids = [r for f in findings for r in f.request_ids]
    cells: dict[tuple[int, Key], dict[dt.datetime, tuple[int, Decimal]]] = {}
    if rids:
        text = FINDING_CALLS_SQL.format(dims=", ".join(dim_sql(d) for d in by), where=where)
        for i, *values, hour, calls, cost in con.execute(text, [idx, rids, *params]).fetchall():
            cells.setdefault((i, tuple(values)), {})[hour] = (int(calls), Decimal(cost or 0))

    def matches(key: Key, start: dt.datetime, end: dt.datetime, move: Decimal) -> list[Any]:
        out: list[dict[str, Any]] = []
        for i, f in enumerate(findings):
            mine = cells.get((i, key), {})
            inside = [v for h, v in mine.items() if start <= h < end]
            calls: int | None = sum(c for c, _ in inside)
            cost: Decimal | None = sum((c for _, c in inside), Decimal(0))
            even = sum((c for _, c in mine.values()), Decimal(0)) * int((end - start) / HOUR)
            if inside and cost and cost >= EXPLAINS * move and cost * window >= 2 * even:
                pass  # a material part of the move, twice its even share or more
            elif not inside and len(f.request_ids) < f.calls and _overlaps(f, by, key, start, end):
                calls = cost = None  # ids incomplete: matched on its group and time
            else:
                continue
            keys = ("kind", "group", "waste_usd", "calls", "first_seen", "last_seen", "fix")
            entry = {k: getattr(f, k) for k in keys} | {"calls_in_period": calls}
            out.append(
                entry | {"cost_in_period_usd": cost if cost is None else cost.quantize(MONEY)}
            )
        out.sort(key=lambda e: (-(e["cost_in_period_usd"] or 0), -e["waste_usd"], e["kind"]))
        return out

    for row in (r for r in result.rows if r["kind"] == "spike"):
        start = dt.datetime.combine(row["day"], dt.time())
        key = tuple(row["group"].values())
        row["drains"] = matches(key, start, start + DAY, row["delta_usd"])
    for run in result.velocity:
        end = run["last_hour"] + HOUR
        key = tuple(run["group"].values())
        run["drains"] = matches(key, run["first_hour"], end, run["excess_usd"])


def _overlaps(f: Finding, by: list[str], key: Key, start: dt.datetime, end: dt.datetime) -> bool:
    """The finding names the group and its first..last seen meets ``start``..``end``."""
    named = [(d, v) for d, v in zip(by, key, strict=True) if d in f.group]
    met = f.first_seen < end and f.last_seen >= start
    return met and bool(named) and all(f.group[d] == v for d, v in named)


def find(
    con: duckdb.DuckDBPyConnection, options: Options, settings: Settings | None = None
) -> Anomalies:
    """Score the days and hours ``options.filters`` selects; explain them with drains."""
    from tokenaudit import drains

    by = list(options.by)
    check_dims(by)
    flt = options.filters
    where, params = flt.sql()
    sql = f"SELECT min(ts)::DATE, max(ts)::DATE FROM usage_events WHERE {where}"
    span = con.execute(sql, params).fetchall()[0]
    first, last = flt.since or span[0], flt.until or span[1]
    back = dt.timedelta(max(LOOKBACK_DAYS, 7 * WEEKDAY_WEEKS))  # the history read before
    where, params = Filters(first - back if first else None, flt.until, flt.where).sql()
    result = Anomalies(by, [], [], {})
    scored = 0
    hours = 1
    if first is not None and last is not None:
        daily = spend_by(con, by, "day", where, params)
        result.rows, scored = score_days(daily, by, first, last, options)
        hourly = spend_by(con, by, "hour", where, params)
        result.velocity = score_hours(hourly, by, first, last, options)
        days = [d for cells in daily.values() for d in cells]
        hours = ((max(days) - min(days)).days + 1) * 24 if days else 1
    if any(r["kind"] == "spike" for r in result.rows) or result.velocity:
        report = drains.detect(con, where, params, drains.KINDS, settings)
        explain(con, result, report.findings, (where, params, hours))
    kinds = {k: [r["delta_usd"] for r in result.rows if r["kind"] == k] for k in ("spike", "drop")}
    result.totals = {
        "anomalies": len(result.rows),
        **{f"{k}s": len(v) for k, v in kinds.items()},
        **{f"{k}_usd": sum(v, Decimal(0)) for k, v in kinds.items()},
        "velocity_runs": len(result.velocity),
        "velocity_excess_usd": sum((r["excess_usd"] for r in result.velocity), Decimal(0)),
    }
    result.meta = {
        "by": by,
        "filters": flt.as_dict(),
        "threshold": options.threshold,
        "min_usd": options.min_usd,
        "first_day": first,
        "last_day": last,
        "days_scored": scored,
    }
    return result
