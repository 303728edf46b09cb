"""`tokenaudit anomalies`: spikes and drops against a robust baseline, spend velocity, and
the drains that explain them; on the sample's runaway loop and on small series."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tokenaudit import api, db
from tokenaudit.anomalies import Cell, Options, score_days, spread, zscore
from tokenaudit.cli import app
from tokenaudit.config import Config
from tokenaudit.report.queries import Filters
from tokenaudit.sample import LABELS_NAME, generate

runner = CliRunner()
MONDAY = dt.date(2026, 10, 5)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The sample dataset (20,000 calls, seed 7) loaded, and its runaway loop's label."""
    out = tmp_path_factory.mktemp("sample")
    generate(out / "data", events=20000, seed=7)
    path = out / "t.duckdb"
    api.ingest(path, [out / "data"], config=Config())
    labels = json.loads((out / "data" / LABELS_NAME).read_text())
    (loop,) = [d for d in labels["drains"] if d["kind"] == "runaway_loop"]
    return path, loop


def _loop_cost(path: Path, loop: dict[str, Any]) -> Decimal:
    with db.connect(path) as con:
        rows = con.execute(
            "SELECT sum(cost_usd) FROM usage_events WHERE request_id IN (SELECT unnest(?))",
            [loop["request_ids"]],
        ).fetchall()
    return Decimal(rows[0][0])


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def test_the_runaway_loop_day_is_a_spike_explained_by_its_drain(
    sample: tuple[Path, dict[str, Any]],
) -> None:
    path, loop = sample
    first, last = _when(loop["first_seen"]), _when(loop["last_seen"])
    assert first.date() == last.date() and first.weekday() == 5  # one Saturday
    result = api.anomalies(path, Options(), Config())
    (row,) = [r for r in result.rows if r["day"] == first.date()]
    assert row["group"] == {"workflow": "code-review"}
    assert row["kind"] == "spike"
    assert row["baseline"] == "weekend days"  # not compared with the busy weekdays
    assert row["delta_usd"] == row["spend_usd"] - row["baseline_usd"]
    cost = _loop_cost(path, loop)
    assert cost * Decimal("0.9") <= row["delta_usd"] <= row["spend_usd"]
    assert row["z"] is not None and row["z"] >= 3.5
    explanation = row["drains"][0]
    assert explanation["kind"] == "runaway_loop"
    assert explanation["calls_in_period"] == loop["calls"] == 400
    assert explanation["cost_in_period_usd"] == cost
    assert explanation["waste_usd"] > 0
    # the loop is the costliest anomaly, and every spike has its drain
    assert max(result.rows, key=lambda r: abs(r["delta_usd"])) is row
    assert all(r["drains"] for r in result.rows if r["kind"] == "spike")


def test_velocity_flags_the_loop_hours(sample: tuple[Path, dict[str, Any]]) -> None:
    path, loop = sample
    first, last = _when(loop["first_seen"]), _when(loop["last_seen"])
    result = api.anomalies(path, Options(), Config())
    (run,) = result.velocity  # the only run of hours far above their normal
    assert run["group"] == {"workflow": "code-review"}
    hour = dt.timedelta(hours=1)
    assert first - hour <= run["first_hour"] <= first
    assert last - 2 * hour <= run["last_hour"] <= last
    assert run["hours"] >= 9
    assert run["excess_usd"] >= _loop_cost(path, loop) * Decimal("0.9")
    assert [d["kind"] for d in run["drains"]] == ["runaway_loop"]


def test_a_long_running_drain_does_not_explain_a_spike(
    sample: tuple[Path, dict[str, Any]],
) -> None:
    """By tenant, the loop's tenant also has model_overkill calls that Saturday; that finding
    runs all month at its usual pace, so only the loop explains the spike."""
    path, loop = sample
    result = api.anomalies(path, Options(by=("tenant",)), Config())
    day = _when(loop["first_seen"]).date()
    (row,) = [r for r in result.rows if r["day"] == day]
    assert [d["kind"] for d in row["drains"]] == ["runaway_loop"]


def test_since_reports_later_days_against_earlier_history(
    sample: tuple[Path, dict[str, Any]],
) -> None:
    path, loop = sample
    day = _when(loop["first_seen"]).date()
    flt = Filters(since=day, until=day)
    result = api.anomalies(path, Options(filters=flt), Config())
    assert [r["day"] for r in result.rows] == [day]
    assert result.meta["first_day"] == result.meta["last_day"] == day


def _cells(values: Sequence[Decimal | None], start: dt.date = MONDAY) -> dict[Any, Cell]:
    return {
        start + dt.timedelta(i): Cell(v, 1, 1 if v is None else 0) for i, v in enumerate(values)
    }


def _week(weekday: str, weekend: str) -> list[Decimal]:
    return [Decimal(weekday)] * 5 + [Decimal(weekend)] * 2


def _score(values: Sequence[Decimal | None], **options: Any) -> list[dict[str, Any]]:
    cells = _cells(values)
    last = max(cells)
    rows, _ = score_days({("wf",): cells}, ["workflow"], MONDAY, last, Options(**options))
    return rows


def test_weekends_of_business_traffic_are_not_drops() -> None:
    assert _score(_week("10.0", "2.0") * 6) == []


def test_spike_and_drop_against_the_same_weekday() -> None:
    values = _week("10.0", "2.0") * 5
    values[26] = Decimal("0")  # the 4th Saturday
    values[30] = Decimal("30")  # the 5th Wednesday
    drop, spike = _score(values)
    assert (spike["kind"], spike["day"], spike["baseline"]) == (
        "spike",
        MONDAY + dt.timedelta(30),
        "same weekday (Wednesday)",
    )
    assert spike["delta_usd"] == Decimal(20) and spike["baseline_days"] == 4
    assert spike["z"] is None  # four equal Wednesdays: a flat baseline
    assert drop["kind"] == "drop" and drop["delta_usd"] == Decimal(-2)
    assert drop["day"] == MONDAY + dt.timedelta(26)
    assert drop["baseline"] == "weekend days"  # three Saturdays before: not enough alone
    assert drop["baseline_days"] == 6


def test_min_usd_and_threshold_filter_small_moves() -> None:
    values = _week("10.0", "2.0") * 5
    values[30] = Decimal("10.5")
    assert _score(values) == []  # $0.50 < $1
    assert len(_score(values, min_usd=Decimal("0.25"))) == 1
    noisy = [Decimal(10 + (i * 7) % 5) for i in range(35)]  # weekdays and weekends alike
    noisy[30] = Decimal(16)
    assert [r["day"] for r in _score(noisy, threshold=1.0)]
    assert _score(noisy, threshold=20.0) == []


def test_too_little_history_and_unpriced_days_are_not_scored() -> None:
    assert _score([Decimal(1)] * 7 + [Decimal(100)]) == []  # 7 days before it: not enough
    values: list[Decimal | None] = [*_week("10.0", "2.0") * 5]
    values[29] = None  # calls, but none priced: unknown, not $0
    rows, scored = score_days(
        {("wf",): _cells(values)}, ["workflow"], MONDAY, MONDAY + dt.timedelta(34), Options()
    )
    assert rows == []
    assert scored == 35 - 8 - 2 - 1  # the first 8 days, two early weekend days, the unpriced one


def test_flat_history_has_no_scale() -> None:
    assert spread([Decimal(3)] * 5) == (Decimal(3), Decimal(0))
    assert zscore(Decimal(4), Decimal(3), Decimal(0)) is None
    base, scale = spread([Decimal(1), Decimal(2), Decimal(3), Decimal(4), Decimal(100)])
    assert base == 3 and scale == Decimal("1.4826")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=21, max_size=40),
    st.integers(min_value=2, max_value=50),
)
def test_z_is_scale_free_and_moves_scale_with_spend(cents: list[int], factor: int) -> None:
    """Spending k times as much every day gives the same z scores and k times the moves."""
    base = [Decimal(c) / 100 for c in cents]
    small = _score(list(base), min_usd=Decimal(0))
    large = _score([v * factor for v in base], min_usd=Decimal(0))
    assert [(r["day"], r["kind"], r["z"]) for r in small] == [
        (r["day"], r["kind"], r["z"]) for r in large
    ]
    for a, b in zip(small, large, strict=True):
        assert b["delta_usd"] == a["delta_usd"] * factor


def test_cli_json_and_exit_codes(sample: tuple[Path, dict[str, Any]]) -> None:
    path, loop = sample
    result = runner.invoke(app, ["anomalies", "--db", str(path), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"rows", "velocity", "totals", "meta"}
    day = _when(loop["first_seen"]).date().isoformat()
    (row,) = [r for r in payload["rows"] if r["day"] == day]
    assert isinstance(row["spend_usd"], str) and isinstance(row["requests"], int)
    assert Decimal(row["delta_usd"]) == Decimal(row["spend_usd"]) - Decimal(row["baseline_usd"])
    assert row["drains"][0]["kind"] == "runaway_loop"
    totals = payload["totals"]
    spikes = [Decimal(r["delta_usd"]) for r in payload["rows"] if r["kind"] == "spike"]
    assert Decimal(totals["spike_usd"]) == sum(spikes)
    assert totals["velocity_runs"] == len(payload["velocity"]) == 1
    assert payload["meta"]["by"] == ["workflow"]
    failing = runner.invoke(app, ["anomalies", "--db", str(path), "--fail-on-anomaly"])
    assert failing.exit_code == 1
    assert "runaway_loop" in failing.stdout
    quiet = ["anomalies", "--db", str(path), "--fail-on-anomaly", "--min-usd", "1000"]
    assert runner.invoke(app, quiet).exit_code == 0


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_cli_flat_formats(sample: tuple[Path, dict[str, Any]], fmt: str) -> None:
    path, _ = sample
    result = runner.invoke(app, ["anomalies", "--db", str(path), "-f", fmt])
    assert result.exit_code == 0, result.stderr
    assert "velocity" in result.stdout and "runaway_loop" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-usd", "lots"], "--min-usd 'lots' is not an amount"),
        (["--threshold", "0"], "--threshold 0.0 must be above 0"),
        (["--by", "hour"], "a time bucket is not a group"),
        (["--since", "yesterday"], "--since 'yesterday' is not a date"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "t.duckdb"
    duckdb.connect(str(path)).close()
    result = runner.invoke(app, ["anomalies", "--db", str(path), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_cli_missing_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["anomalies", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    assert "no such database" in result.stderr
