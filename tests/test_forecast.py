"""`tokenaudit forecast`: month-end projection, interval, acceleration and budget runway.

The fixture is native JSONL with exact costs: every call is gpt-4o-mini with one million
uncached input tokens and no output, $0.15. Workflow "grow" doubles its calls every week
(Mondays) from 1 a day in the week of 2026-10-05 to 32 a day in the week of 2026-11-09;
"steady" makes 2 calls a day. The data ends on Sunday 2026-11-15.

November as of the 15th, for "grow": Nov 1 (8 calls) $1.20, Nov 2-8 7 x $2.40, Nov 9-15
7 x $4.80: $51.60 to date. Its last 14 days (Nov 2-15) have weekdays and weekend days at
$2.40 and $4.80 alike: a median of $3.60 for each kind; 15 days left: $105.60 projected.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tokenaudit import api
from tokenaudit.cli import app
from tokenaudit.config import Config
from tokenaudit.forecast import Options
from tokenaudit.report.queries import Filters

FIRST = dt.date(2026, 10, 5)  # a Monday
LAST = dt.date(2026, 11, 15)  # a Sunday
CALL_USD = Decimal("0.15")
runner = CliRunner()


def _grow_calls(day: dt.date) -> int:
    return 1 << ((day - FIRST).days // 7)


def _line(day: dt.date, i: int, workflow: str, model: str = "gpt-4o-mini") -> str:
    ts = dt.datetime.combine(day, dt.time(9)) + dt.timedelta(minutes=i)
    return json.dumps(
        {
            "ts": ts.isoformat() + "Z",
            "request_id": f"{workflow}-{day}-{i}",
            "provider": "openai",
            "model": model,
            "workflow": workflow,
            "input_tokens": 1_000_000,
            "output_tokens": 0,
        }
    )


def _write(path: Path, unpriced: bool = False) -> Path:
    lines = []
    day = FIRST
    while day <= LAST:
        lines += [_line(day, i, "grow") for i in range(_grow_calls(day))]
        lines += [_line(day, 100 + i, "steady") for i in range(2)]
        if unpriced and day.month == 11:
            lines.append(_line(day, 200, "house", model="house-model-x"))
        day += dt.timedelta(days=1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.duckdb"
    api.ingest(path, [_write(tmp_path / "calls.jsonl", unpriced=True)], config=Config())
    return path


BUDGETS = """
[[rule]]
name = "grow over"
scope = { workflow = "grow" }
metric = "spend_usd"
period = "month"
warn = 80
fail = 100

[[rule]]
name = "grow at risk"
scope = { workflow = "gr*" }
metric = "spend_usd"
period = "month"
warn = 100
fail = 150

[[rule]]
name = "grow within"
scope = { workflow = "grow" }
metric = "spend_usd"
period = "month"
warn = 200
fail = 300

[[rule]]
name = "grow already over"
scope = { workflow = "grow" }
metric = "spend_usd"
period = "month"
fail = 40

[[rule]]
name = "everything"
metric = "spend_usd"
period = "month"
fail = 1000

[[rule]]
name = "a daily rule, not read here"
metric = "spend_usd"
period = "day"
fail = 1

[[rule]]
scope = { workflow = "*" }
metric = "cost_per_accepted_usd"
max_increase_pct = 10
min_samples = 200
"""


def _budgets(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGETS, encoding="utf-8")
    return path


def _row(result: object, workflow: str) -> dict[str, Any]:
    rows = getattr(result, "rows")  # noqa: B009
    (row,) = [r for r in rows if r["group"] == {"workflow": workflow}]
    assert isinstance(row, dict)
    return row


def test_doubling_month_projects_at_the_run_rate_and_accelerates(db: Path) -> None:
    result = api.forecast(db, Options(), config=Config())
    assert result.meta["month"] == "2026-11"
    assert result.meta["as_of"] == LAST
    assert result.meta["days_remaining"] == 15
    grow = _row(result, "grow")
    assert grow["month_to_date_usd"] == Decimal("51.600000000000")
    assert grow["weekday_rate_usd"] == grow["weekend_rate_usd"] == Decimal("3.600000000000")
    assert grow["projected_usd"] == Decimal("105.600000000000")
    weekly = [Decimal(x) for x in ("4.2", "8.4", "16.8", "33.6")]
    assert grow["weekly_usd"] == weekly
    assert grow["accelerating"] is True
    low, high = grow["low_usd"], grow["high_usd"]
    assert isinstance(low, Decimal) and isinstance(high, Decimal)
    # every remaining day draws $2.40 or $4.80: the interval lies within 15 x those
    assert Decimal("51.6") + 15 * Decimal("2.4") <= low <= Decimal("105.6") <= high
    assert high <= Decimal("51.6") + 15 * Decimal("4.8")
    steady = _row(result, "steady")
    assert steady["projected_usd"] == 30 * 2 * CALL_USD
    assert steady["accelerating"] is False
    assert result.totals["accelerating"] == 1


def test_the_interval_is_deterministic(db: Path) -> None:
    first = api.forecast(db, Options(), config=Config())
    second = api.forecast(db, Options(), config=Config())
    assert first.rows == second.rows


def test_budget_states_and_breach_days(db: Path, tmp_path: Path) -> None:
    result = api.forecast(db, Options(), _budgets(tmp_path), Config())
    budgets = {b["name"]: b for b in result.budgets}
    assert set(budgets) == {
        "grow over",
        "grow at risk",
        "grow within",
        "grow already over",
        "everything",
    }  # only the spend_usd / month rules
    over = budgets["grow over"]
    assert over["state"] == "over_budget"
    # $51.60 on the 15th, then $3.60 a day: above $80 on the 23rd, above $100 on the 29th
    assert over["warn_day"] == dt.date(2026, 11, 23)
    assert over["breach_day"] == dt.date(2026, 11, 29)
    at_risk = budgets["grow at risk"]
    assert at_risk["state"] == "at_risk"
    assert at_risk["warn_day"] == dt.date(2026, 11, 29)
    assert at_risk["breach_day"] is None
    within = budgets["grow within"]
    assert within["state"] == "within_budget"
    assert within["warn_day"] is None and within["breach_day"] is None
    # already exceeded: $1.20 + 7 x $2.40 = $18 on the 8th, then $4.80 a day: $42 on the 13th
    assert budgets["grow already over"]["breach_day"] == dt.date(2026, 11, 13)
    everything = budgets["everything"]
    assert everything["month_to_date_usd"] == Decimal("51.6") + 15 * 2 * CALL_USD
    assert everything["unpriced_requests"] == 15  # the house model's calls, never $0
    assert result.totals["budgets"] == {"within_budget": 2, "at_risk": 1, "over_budget": 2}
    grow = _row(result, "grow")
    assert grow["budget_state"] == "over_budget"  # the worst of the rules scoped to it
    assert "everything" not in grow["budgets"]  # not scoped by workflow
    assert _row(result, "steady")["budget_state"] is None


def test_unpriced_groups_are_not_zero(db: Path) -> None:
    house = _row(api.forecast(db, Options(), config=Config()), "house")
    assert house["projected_usd"] is None and house["month_to_date_usd"] is None
    assert house["unpriced_requests"] == house["requests"] == 15


def test_a_past_month_is_its_spend(db: Path) -> None:
    result = api.forecast(db, Options(month=dt.date(2026, 10, 1)), config=Config())
    assert result.meta["days_remaining"] == 0
    report = api.report(db, ["workflow"], Filters(dt.date(2026, 10, 1), dt.date(2026, 10, 31)))
    spent = {r["group"]["workflow"]: r["cost_usd"] for r in report.rows}
    for row in result.rows:
        assert row["projected_usd"] == row["low_usd"] == row["high_usd"]
        assert row["projected_usd"] == row["month_to_date_usd"] == spent[row["group"]["workflow"]]
    assert result.totals["month_to_date_usd"] == report.totals["cost_usd"]


def test_a_month_ahead_is_all_run_rate(db: Path) -> None:
    result = api.forecast(db, Options(month=dt.date(2026, 12, 1)), config=Config())
    assert result.meta["days_remaining"] == 31
    grow = _row(result, "grow")
    assert grow["month_to_date_usd"] == 0
    assert grow["projected_usd"] == 31 * Decimal("3.6")


def test_cli_json(db: Path, tmp_path: Path) -> None:
    args = ["forecast", "--db", str(db), "--budgets", str(_budgets(tmp_path)), "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"rows", "budgets", "totals", "meta"}
    grow = next(r for r in payload["rows"] if r["group"] == {"workflow": "grow"})
    assert grow["projected_usd"] == "105.600000000000"
    assert grow["accelerating"] is True
    assert grow["requests"] == 1 * 8 + 7 * 16 + 7 * 32
    over = next(b for b in payload["budgets"] if b["name"] == "grow over")
    assert over["breach_day"] == "2026-11-29"
    assert over["fail_usd"] == "100"
    assert payload["meta"]["budgets_file"].endswith("budgets.toml")


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_cli_formats(db: Path, tmp_path: Path, fmt: str) -> None:
    args = ["forecast", "--db", str(db), "--budgets", str(_budgets(tmp_path)), "-f", fmt]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "grow" in result.stdout
    if fmt != "table":
        assert "105.600000000000" in result.stdout
    else:
        assert "$105.60" in result.stdout and "unpriced" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "--month '2026-13' is not a month"),
        (["--by", "day"], "a time bucket is not a group"),
        (["--by", "colour"], "unknown dimension 'colour'"),
    ],
)
def test_cli_usage_errors(db: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["forecast", "--db", str(db), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
