"""Billing reconciliation: capture rate and each gap cause, on hand-computed data."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests import billing_fake
from tests.conftest import load
from tokenaudit.reconcile.billing import Options, reconcile

# gpt-4o-mini: $0.15 per million input, $0.075 cached, $0.60 output.
M = 1_000_000


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    billing_fake.register(monkeypatch)


def _calls(path: Path, day: int, n: int, model: str = "gpt-4o-mini", **tokens: int) -> list[str]:
    return [
        json.dumps(
            {
                "ts": f"2026-10-{day:02d}T12:00:{i:02d}Z",
                "request_id": f"{model}-{day}-{i}",
                "provider": "openai",
                "model": model,
                **tokens,
            }
        )
        for i in range(n)
    ]


def _bill(
    day: int, items: list[list[Any]], model: str = "gpt-4o-mini-2024-07-18"
) -> dict[str, Any]:
    return {
        "start": f"2026-10-{day:02d} 00:00:00",
        "end": f"2026-10-{day + 1:02d} 00:00:00",
        "model": model,
        "items": items,
    }


@pytest.fixture
def loaded(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    logs = tmp_path / "calls.jsonl"
    lines: list[str] = []
    for day in (1, 2, 3, 4, 5):
        lines += _calls(logs, day, 4, input_tokens=M // 4)  # 1M input a day: $0.15
    lines += _calls(logs, 6, 4, input_tokens=M // 4)  # logged uncached, billed half cached
    logs.write_text("\n".join(lines) + "\n")
    load(con, logs)
    bills = [
        _bill(1, [["input", M, "0.15"]]),  # matched
        _bill(2, [["input", 1_250_000, "0.1875"]]),  # 25% more billed than logged
        _bill(3, [["input", M, "0.135"]]),  # billed 10% under our price
        # day 4: no billing line at all (the export stops early)
        _bill(5, [["input", M, "0.15"]]),
        _bill(5, [["output", M, "10.00"]], model="gpt-4o-2024-08-06"),  # billed, never logged
        _bill(6, [["input", M // 2, "0.075"], ["cache_read", M // 2, "0.0375"]]),
    ]
    load(con, billing_fake.write(tmp_path / "bill.jsonl", bills))
    return con


def _by(rec: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["period"], r["model"]): r for r in rec.rows}


def _causes(row: dict[str, Any]) -> dict[str, Decimal]:
    return {c["cause"]: c["usd"] for c in row["causes"]}


def test_each_gap_cause_is_found_and_priced(loaded: duckdb.DuckDBPyConnection) -> None:
    rec = reconcile(loaded, Options())
    rows = _by(rec)
    day1 = rows[("2026-10-01", "gpt-4o-mini")]
    assert (day1["status"], day1["capture_rate"], day1["causes"]) == ("matched", Decimal(1), [])

    day2 = rows[("2026-10-02", "gpt-4o-mini")]
    assert day2["capture_rate"] == Decimal("0.8")
    assert _causes(day2) == {"unlogged_usage": Decimal("0.0375")}  # 250k tokens at $0.15/M

    day3 = rows[("2026-10-03", "gpt-4o-mini")]
    assert _causes(day3) == {"price_drift": Decimal("-0.015")}  # billed 10% under list

    day4 = rows[("2026-10-04", "gpt-4o-mini")]
    assert _causes(day4) == {"missing_billing_day": Decimal("-0.15")}
    assert day4["billed_usd"] is None and day4["status"] == "unreconciled"

    ghost = rows[("2026-10-05", "gpt-4o")]  # the snapshot name lines up with the alias
    assert _causes(ghost) == {"billed_not_logged": Decimal("10")}
    assert ghost["requests"] == 0

    day6 = rows[("2026-10-06", "gpt-4o-mini")]
    # Same tokens, split differently: billed half as cached ($0.1125) vs logged $0.15.
    assert _causes(day6) == {"token_category_drift": Decimal("-0.0375")}

    t = rec.totals
    assert t["billed_usd"] == Decimal("0.15") * 3 + Decimal("0.1875") + Decimal(
        "0.135"
    ) + 10 - Decimal("0.15") + Decimal("0.1125")
    assert t["logged_usd"] == Decimal("0.90")
    assert t["gap_usd"] == t["billed_usd"] - t["logged_usd"]
    # The causes account for the whole gap, to the last decimal.
    assert sum(c["usd"] for c in rec.causes) == t["gap_usd"]


def test_month_grain_and_window(loaded: duckdb.DuckDBPyConnection) -> None:
    import datetime as dt

    month = reconcile(loaded, Options(grain="month"))
    assert {r["period"] for r in month.rows} == {"2026-10"}
    window = reconcile(loaded, Options(since=dt.date(2026, 10, 2), until=dt.date(2026, 10, 3)))
    assert {r["period"] for r in window.rows} == {"2026-10-02", "2026-10-03"}


def test_cli_json_and_fail_under(loaded: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tokenaudit.cli import app

    db = tmp_path / "r.duckdb"
    loaded.execute(f"ATTACH '{db}' AS out")
    loaded.execute("COPY FROM DATABASE memory TO out")
    loaded.execute("DETACH out")
    runner = CliRunner()
    ok = runner.invoke(app, ["reconcile", "--db", str(db), "-f", "json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert set(payload) == {"rows", "totals", "causes", "meta"}
    # $0.90 logged of $10.735 billed
    assert payload["totals"]["capture_rate"] == str(
        (Decimal("0.90") / Decimal("10.735")).quantize(Decimal("0.000001"))
    )
    assert {c["cause"] for c in payload["causes"]} >= {"billed_not_logged", "price_drift"}
    low = runner.invoke(app, ["reconcile", "--db", str(db), "--fail-under", "95%"])
    assert low.exit_code == 1
    assert "below --fail-under" in low.stderr
    table = runner.invoke(app, ["reconcile", "--db", str(db)])
    assert table.exit_code == 0
    assert "Gap by cause" in table.stdout and "billed, not logged" in table.stdout
    bad = runner.invoke(app, ["reconcile", "--db", str(db), "--grain", "week"])
    assert bad.exit_code == 2 and "unknown grain" in bad.stderr


def test_billing_models_stay_priced_after_prices_change(
    loaded: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # New price files re-resolve every model: the billing lines' models too.
    from tokenaudit.pricing import PriceSettings, ensure_prices

    folder = tmp_path / "pricing"
    folder.mkdir()
    (folder / "house.toml").write_text(
        '[[price]]\nmodel = "house-llm"\ninput_mtok = "1"\noutput_mtok = "2"\n'
    )
    assert ensure_prices(loaded, PriceSettings(folder))
    rows = _by(reconcile(loaded, Options()))
    assert _causes(rows[("2026-10-03", "gpt-4o-mini")]) == {"price_drift": Decimal("-0.015")}
    assert rows[("2026-10-05", "gpt-4o")]["model"] == "gpt-4o"


def test_reasoning_meters_count_as_output_and_modelless_spend_is_set_aside(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    logs = tmp_path / "calls.jsonl"
    logs.write_text("\n".join(_calls(logs, 1, 1, output_tokens=M, reasoning_tokens=M // 2)) + "\n")
    load(con, logs)
    bills = [
        _bill(1, [["output", M // 2, "0.30"], ["reasoning", M // 2, "0.30"]]),
        {**_bill(1, [["other", None, "42.00"]]), "model": None},  # e.g. storage, no model
    ]
    load(con, billing_fake.write(tmp_path / "bill.jsonl", bills))
    rec = reconcile(con, Options())
    (row,) = rec.rows
    assert row["billed_tokens"]["output"] == M
    assert (row["status"], row["causes"]) == ("matched", [])
    assert rec.meta["billed_without_model_usd"] == Decimal("42")


def test_by_project_finds_the_project_that_bypasses_the_logs(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    logs = tmp_path / "calls.jsonl"
    lines = [json.loads(x) for x in _calls(logs, 1, 2, input_tokens=M // 2)]
    logs.write_text("".join(json.dumps({**x, "project": "proj_a"}) + "\n" for x in lines))
    load(con, logs)
    bills = [
        {**_bill(1, [["input", M, "0.15"]]), "project": "proj_a"},
        {**_bill(1, [["input", M, "0.15"]]), "project": "proj_b"},
    ]
    path = tmp_path / "bill.jsonl"
    path.write_text(
        "".join(json.dumps({"test_billing": 1, **b}) + "\n" for b in bills), encoding="utf-8"
    )
    load(con, path)
    whole = reconcile(con, Options())
    (row,) = whole.rows
    assert _causes(row) == {"unlogged_usage": Decimal("0.15")}
    split = {r["project"]: r for r in reconcile(con, Options(by=("project",))).rows}
    assert split["proj_a"]["status"] == "matched"
    assert _causes(split["proj_b"]) == {"billed_not_logged": Decimal("0.15")}
