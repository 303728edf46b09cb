"""`tokenaudit anomalies` and `tokenaudit forecast`, with their tables, CSV and markdown."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenaudit.cli.app import (
    ConfigOption,
    DbOption,
    Format,
    FormatOption,
    OutputOption,
    app,
    console_for,
    db_path,
    emit,
    err,
    handle_errors,
)
from tokenaudit.cli.report_cmd import SinceOption, UntilOption, WhereOption, filters
from tokenaudit.errors import TokenauditError

GroupOption = Annotated[
    str,
    typer.Option(
        "--by",
        "-b",
        help="Group by these dimensions, comma-separated: workflow, team, tenant, user, agent, "
        "prompt_version, environment, project, provider, model, ...",
    ),
]
FOLDED = ("explained by", "scope")  # the columns that wrap; the others keep their line
STATE_STYLE = {"within_budget": "green", "at_risk": "yellow", "over_budget": "bold red"}


def _dims(by: str) -> tuple[str, ...]:
    return tuple(d.strip() for d in by.split(",") if d.strip())


def dollars(value: str, option: str) -> Decimal:
    """An amount in dollars given on the command line ($ allowed), at least 0."""
    try:
        amount = Decimal(value.strip().lstrip("$"))
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0:
        raise TokenauditError(f"{option} '{value}' is not an amount in dollars (e.g. 5 or 0.50)")
    return amount


def _month(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value.strip(), "%Y-%m").date()
    except ValueError:
        raise TokenauditError(f"--month '{value}' is not a month (YYYY-MM)") from None


@app.command()
@handle_errors
def anomalies(
    by: GroupOption = "workflow",
    since: SinceOption = None,
    until: UntilOption = None,
    where: WhereOption = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Robust z score from which spend is anomalous.")
    ] = 3.5,
    min_usd: Annotated[
        str,
        typer.Option(
            "--min-usd",
            help="Leave out moves under this many dollars (a day's against its baseline, a "
            "run of hours' excess); tiny groups never reach it.",
        ),
    ] = "1",
    fail_on_anomaly: Annotated[
        bool,
        typer.Option("--fail-on-anomaly", help="Exit 1 when a spike, drop or run is found."),
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Daily spend spikes and drops per group against a robust, weekday-aware baseline,
    hours burning far above normal (runaway loops), and the drains that explain them."""
    from tokenaudit import api
    from tokenaudit.anomalies import Options
    from tokenaudit.config import load_config
    from tokenaudit.report.queries import Filters

    if not threshold > 0:
        raise TokenauditError(f"--threshold {threshold} must be above 0 (e.g. 3.5)")
    flt = filters(since, until, where)
    assert isinstance(flt, Filters)
    opts = Options(_dims(by), flt, threshold, dollars(min_usd, "--min-usd"))
    result = api.anomalies(db_path(db), opts, load_config(config))
    print_anomalies(result, fmt, output)
    if fail_on_anomaly and (result.rows or result.velocity):
        raise typer.Exit(1)


def _drains(entries: list[dict[str, Any]]) -> str:
    from tokenaudit.report.render import money

    return "; ".join(f"{e['kind']} ({money(e['waste_usd'])} waste)" for e in entries)


def _label(value: Any) -> str:
    from tokenaudit.report.queries import NONE_LABEL

    return NONE_LABEL if value is None else str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _fit(title: str, dims: list[str], columns: str, rows: list[list[Any]], width: int) -> Any:
    """A rich table: a column per dimension, then ``columns`` ("<" left-aligned, "?" left out
    first, from the right, while the table is wider than ``width``); ``rows`` hold every cell."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    names = columns.split("|")
    keep = list(range(len(dims) + len(names)))
    while True:
        table = Table(title=title, title_justify="left", header_style="bold")
        for i in keep:
            name = dims[i] if i < len(dims) else names[i - len(dims)].strip("<?")
            wrap = i < len(dims) or name in FOLDED
            left = i < len(dims) or "<" in names[i - len(dims)]
            table.add_column(name, justify="left" if left else "right", no_wrap=not wrap)
        for row in rows:
            table.add_row(*(row[i] for i in keep))
        measure = Console(width=10_000)
        optional = [i for i in keep if i >= len(dims) and "?" in names[i - len(dims)]]
        if not optional or Measurement.get(measure, measure.options, table).maximum <= width:
            return table
        keep.remove(optional[-1])


def _z(value: float | None) -> str:
    return "∞" if value is None else f"{value:+.1f}"


def _hour(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:00")


# CSV / markdown of anomalies: days and velocity runs in one table: column, day key, run key.
FLAT = (
    ("kind", "kind", "kind"),
    ("first", "day", "first_hour"),
    ("last", "day", "last_hour"),
    ("spend_usd", "spend_usd", "spend_usd"),
    ("baseline_usd", "baseline_usd", "normal_usd"),
    ("delta_usd", "delta_usd", "excess_usd"),
    ("z", "z", "max_z"),
    ("baseline", "baseline", "baseline"),
    ("requests", "requests", "requests"),
    ("unpriced_requests", "unpriced_requests", "unpriced_requests"),
)


def print_anomalies(result: object, fmt: Format, output: Path | None) -> None:
    from tokenaudit.anomalies import Anomalies
    from tokenaudit.report import render

    assert isinstance(result, Anomalies)
    if fmt == Format.json:
        payload = {"rows": result.rows, "velocity": result.velocity, "totals": result.totals}
        emit(render.to_json({**payload, "meta": result.meta}), output)
        return
    n = len(result.by)
    if fmt in (Format.csv, Format.markdown):
        same = "same hour of day, {} hours"
        runs = [
            {**v, "kind": "velocity", "unpriced_requests": 0, "baseline": same.format(v["hours"])}
            for v in result.velocity
        ]
        lines = []
        for records, at in ((result.rows, 1), (runs, 2)):
            for r in records:
                cells = [render.safe_cell(_label(v)) for v in r["group"].values()]
                for key in (f[at] for f in FLAT):
                    value = r[key]
                    cells.append(_hour(value) if isinstance(value, dt.datetime) else _cell(value))
                lines.append([*cells, _drains(r["drains"])])
        header = [*result.by, *(f[0] for f in FLAT), "drains"]
        csv = fmt == Format.csv
        emit(
            render.rows_csv(header, lines)
            if csv
            else render.rows_markdown(header, lines, n + 3, n + 7),
            output,
        )
        return
    console = console_for(output)
    m, t, money = result.meta, result.totals, render.money
    limits = f"|z| ≥ {m['threshold']}, ≥ {money(m['min_usd'], 0, 2)}"
    if result.rows:
        rows = [
            [_label(v) for v in r["group"].values()]
            + [
                f"{r['day']} {r['weekday']}",
                f"[{'red' if r['kind'] == 'spike' else 'cyan'}]{r['kind']}[/]",
            ]
            + [money(r["spend_usd"], r["unpriced_requests"], 2), money(r["baseline_usd"], 0, 2)]
            + [("+" if r["delta_usd"] > 0 else "") + money(r["delta_usd"], 0, 2), _z(r["z"])]
            + [f"{r['baseline_days']} {r['baseline']}", _drains(r["drains"])]
            for r in result.rows
        ]
        title = f"Spend anomalies by {', '.join(result.by)} ({limits})"
        cols = "<day|<kind|spend|?baseline|change|?z|?compared with|<explained by"
        console.print(_fit(title, result.by, cols, rows, console.width))
    if result.velocity:
        if result.rows:
            console.print()
        rows = [
            [_label(x) for x in v["group"].values()]
            + [_hour(v["first_hour"]), _hour(v["last_hour"] + dt.timedelta(hours=1))]
            + [str(v["hours"]), money(v["spend_usd"], 0, 2), money(v["normal_usd"], 0, 2)]
            + ["+" + money(v["excess_usd"], 0, 2), money(v["peak_usd_per_hour"], 0, 2)]
            + [_z(v["max_z"]), _drains(v["drains"]) or "—"]
            for v in result.velocity
        ]
        title = "Spend velocity: hours far above their normal (runaway loops)"
        cols = "<from|<to|hours|spend|?normal|excess|?peak/hour|?max z|<explained by"
        console.print(_fit(title, result.by, cols, rows, console.width))
    window = f"{m['first_day'] or '—'} → {m['last_day'] or '—'}"
    found = (
        f"{t['spikes']} spikes (+{money(t['spike_usd'], 0, 2)}), {t['drops']} drops, "
        f"{t['velocity_runs']} velocity {'run' if t['velocity_runs'] == 1 else 'runs'}"
        if result.rows or result.velocity
        else f"no anomalies ({limits})"
    )
    err.print(f"[dim]{window}: {found}; {m['days_scored']:,} group-days scored[/]", soft_wrap=True)


@app.command()
@handle_errors
def forecast(
    by: GroupOption = "workflow",
    month: Annotated[
        str | None,
        typer.Option("--month", help="Month to project, YYYY-MM [default: the latest data's]."),
    ] = None,
    budgets: Annotated[
        Path | None,
        typer.Option("--budgets", help="Budgets file (the CI gate's): its spend_usd month rules."),
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Month-end spend projection per group with an 80% interval, acceleration, and the
    runway of each monthly budget: its state and the day it will be exceeded."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.forecast import Options

    opts = Options(_dims(by), _month(month))
    result = api.forecast(db_path(db), opts, budgets, load_config(config))
    print_forecast(result, fmt, output)


BUDGET_COLUMNS: tuple[str, ...] = ("name", "scope", "warn_usd", "fail_usd", "month_to_date_usd")
BUDGET_COLUMNS += ("projected_usd", "low_usd", "high_usd", "state", "warn_day", "breach_day")
BUDGET_COLUMNS += ("unpriced_requests",)


def print_forecast(result: object, fmt: Format, output: Path | None) -> None:
    from tokenaudit.forecast import FIELDS, Forecast
    from tokenaudit.report import render

    assert isinstance(result, Forecast)
    if fmt == Format.json:
        payload = {"rows": result.rows, "budgets": result.budgets, "totals": result.totals}
        emit(render.to_json({**payload, "meta": result.meta}), output)
        return
    n, columns = len(result.by), (*FIELDS, "budget_state", "budgets")
    tables = [
        (
            [*result.by, *columns],
            [
                [render.safe_cell(_label(v)) for v in r["group"].values()]
                + [_cell(r[c]) for c in columns]
                for r in result.rows
            ],
        )
    ]
    if result.budgets and fmt == Format.markdown:  # CSV holds one table: the groups
        lines = [[render.safe_cell(_cell(b[c])) for c in BUDGET_COLUMNS] for b in result.budgets]
        tables.append((list(BUDGET_COLUMNS), lines))
    if fmt == Format.csv:
        emit(render.rows_csv(*tables[0]), output)
        return
    if fmt == Format.markdown:
        spans = [(n, n + 6), (2, 8)]  # the money columns of each table
        parts = [render.rows_markdown(h, lines, *spans[i]) for i, (h, lines) in enumerate(tables)]
        emit("\n".join(parts), output)
        return
    m, t, money = result.meta, result.totals, render.money
    if m.get("month") is None:
        err.print("[yellow]no calls to forecast[/]: load data first with 'tokenaudit ingest'")
        return
    console = console_for(output)
    rows = []
    for r in [*result.rows, {**t, "group": dict.fromkeys(result.by, ""), "total": True}]:
        unpriced, state, weekly = r["unpriced_requests"], r.get("budget_state"), r.get("weekly_usd")
        trend = " → ".join(money(w, 0, 2) for w in weekly) if weekly else ""
        rows.append(
            [
                ("total" if r.get("total") and i == 0 else _label(v))
                for i, v in enumerate(r["group"].values())
            ]
            + [money(r["month_to_date_usd"], unpriced, 2)]
            + [
                money(r.get(k), unpriced, 2) if not r.get("total") else ""
                for k in ("weekday_rate_usd", "weekend_rate_usd")
            ]
            + [money(r["projected_usd"], unpriced, 2), _range(r)]
            + [f"[bold yellow]{trend} ↑[/]" if r.get("accelerating") is True else trend]
            + [f"[{STATE_STYLE[state]}]{state}[/]" if state else ""]
        )
    left = f"{m['days_remaining']} {'day' if m['days_remaining'] == 1 else 'days'} left"
    title = (
        f"Month-end forecast by {', '.join(result.by)}: {m['month']} (as of {m['as_of']}, {left})"
    )
    cols = "to date|?per weekday|?per weekend day|projected|80% interval|<?weekly trend|<budget"
    console.print(_fit(title, result.by, cols, rows, console.width))
    if result.budgets:
        console.print()
        console.print(_budget_table(result.budgets, console.width))
    notes = [f"{t['accelerating']} accelerating (weekly spend up three weeks in a row)"]
    if t["unpriced_requests"]:
        notes.append(f"{t['unpriced_requests']:,} calls unpriced, not in the dollars")
    notes.append(f"run rate: median day of the last {m['rate_days']} days; {m['interval']}")
    err.print("[dim]" + "; ".join(notes) + "[/]", soft_wrap=True)


def _range(row: dict[str, Any]) -> str:
    from tokenaudit.report.render import money

    if row.get("low_usd") is None:
        return "—"
    return f"{money(row['low_usd'], 0, 2)} – {money(row['high_usd'], 0, 2)}"


def _budget_table(budgets: list[dict[str, Any]], width: int) -> Any:
    from tokenaudit.report.render import money

    rows = []
    for b in budgets:
        unpriced, state = b["unpriced_requests"], b["state"]
        cells = [b["name"], _cell(b["scope"]) or "all calls", money(b["warn_usd"], 0, 2)]
        cells += [money(b["fail_usd"], 0, 2), money(b["month_to_date_usd"], unpriced, 2)]
        cells += [money(b["projected_usd"], unpriced, 2), _range(b)]
        cells += [f"[{STATE_STYLE[state]}]{state}[/]" if state else "no data"]
        rows.append([*cells, str(b["warn_day"] or "—"), str(b["breach_day"] or "—")])
    cols = "<scope|warn|fail|?to date|projected|?80% interval|<state|<warn from|<exceeded from"
    return _fit("Monthly budgets", ["budget"], cols, rows, width)
