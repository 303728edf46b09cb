"""Report semantics: trace-level outcomes, filters, folding, attribution mapping."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import load
from tokenaudit import db
from tokenaudit.config import load_config
from tokenaudit.errors import ConfigError
from tokenaudit.report.queries import Filters, rollup


def _write(tmp: Path, events: list[dict[str, Any]]) -> Path:
    path = tmp / "e.jsonl"
    base = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1_000_000,
        "output_tokens": 0,
    }
    path.write_text("".join(json.dumps({**base, **e}) + "\n" for e in events))
    return path


def test_cost_per_accepted_is_trace_level(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    # One trace of 3 calls ($0.15 each) with one accepted outcome on its last call,
    # and one lone call that was rejected.
    events: list[dict[str, Any]] = [
        {"ts": "2026-11-02T10:00:00Z", "request_id": "a1", "trace_id": "t1", "workflow": "w"},
        {
            "ts": "2026-11-02T10:00:01Z",
            "request_id": "a2",
            "trace_id": "t1",
            "workflow": "w",
            "attempt": 2,
        },
        {
            "ts": "2026-11-02T10:00:02Z",
            "request_id": "a3",
            "trace_id": "t1",
            "workflow": "w",
            "outcome": "accepted",
        },
        {"ts": "2026-11-02T11:00:00Z", "request_id": "b1", "workflow": "w", "outcome": "rejected"},
    ]
    load(con, _write(tmp_path, events))
    (row,) = rollup(con, ["workflow"]).rows
    assert row["requests"] == 4
    assert row["cost_usd"] == Decimal("0.6")
    assert (row["outcomes"], row["accepted"], row["rejected"]) == (2, 1, 1)
    assert row["acceptance_rate"] == Decimal("0.5")
    assert row["cost_per_accepted_usd"] == Decimal("0.6")
    assert row["retry_rate"] == Decimal("0.25")


def test_last_outcome_of_a_trace_wins(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    events = [
        {"ts": "2026-11-02T10:00:00Z", "request_id": "a1", "trace_id": "t1", "outcome": "rejected"},
        {"ts": "2026-11-02T10:05:00Z", "request_id": "a2", "trace_id": "t1", "outcome": "accepted"},
        {"ts": "2026-11-02T10:06:00Z", "request_id": "a3", "trace_id": "t1"},
    ]
    load(con, _write(tmp_path, events))
    total = rollup(con, []).totals
    assert (total["outcomes"], total["accepted"]) == (1, 1)


def test_filters_and_top(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    events = [
        {
            "ts": f"2026-11-0{d}T10:00:00Z",
            "request_id": f"r{d}{w}",
            "workflow": w,
            "input_tokens": 1_000_000 * (i + 1),
        }
        for d in (1, 2, 3)
        for i, w in enumerate(["a", "b", "c"])
    ]
    load(con, _write(tmp_path, events))
    day2 = rollup(con, ["workflow"], Filters(since=_d("2026-11-02"), until=_d("2026-11-02")))
    assert day2.totals["requests"] == 3
    only_b = rollup(con, ["day"], Filters(where=(("workflow", "b"),)))
    assert [r["group"]["day"] for r in only_b.rows] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert only_b.totals["cost_usd"] == Decimal("0.9")
    top = rollup(con, ["workflow"], top=1)
    assert [r["group"]["workflow"] for r in top.rows] == ["c", "(other)"]
    assert top.rows[1]["requests"] == 6
    assert sum(r["cost_usd"] for r in top.rows) == top.totals["cost_usd"]


def _d(text: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(text)


def test_attribution_mapping_fills_dimensions(tmp_path: Path) -> None:
    (tmp_path / "tokenaudit.toml").write_text(
        """
[attribution]
workflow = ["tags.feature", "tags.x-workflow"]
team = "tags.x-team"

[attribution.api_keys]
"9f2c" = { team = "search", tenant = "acme" }
"""
    )
    cfg = load_config(cwd=tmp_path)
    events = [
        {
            "ts": "2026-11-02T10:00:00Z",
            "request_id": "1",
            "feature": "summarize",
            "x-team": "support",
        },
        {
            "ts": "2026-11-02T10:00:00Z",
            "request_id": "2",
            "x-workflow": "triage",
            "workflow": "explicit-wins",
            "api_key": "sk-test-aaaaaaaaaaaaaaaaaa9f2c",
        },
        {
            "ts": "2026-11-02T10:00:00Z",
            "request_id": "3",
            "api_key": "sk-test-bbbbbbbbbbbbbbbbbb0000",
        },
    ]
    with db.connect(":memory:") as con:
        load(con, _write(tmp_path, events), mapping=cfg.attribution)
        rows = con.execute(
            "SELECT request_id, workflow, team, tenant FROM usage_events ORDER BY request_id"
        ).fetchall()
    assert rows == [
        ("1", "summarize", "support", None),
        ("2", "explicit-wins", "search", "acme"),
        ("3", None, None, None),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[attribution]\ncolour = 'tags.x'\n", "unknown dimension 'colour'"),
        ("[attribution]\nteam = 'headers.x'\n", "'headers.x' is not a column or tags.KEY path"),
        ("[attributoin]\n", "unknown section 'attributoin'"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "tokenaudit.toml").write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_config(cwd=tmp_path)


def test_pyproject_section_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname='x'\n[tool.tokenaudit.attribution]\nteam = 'tags.squad'\n"
    )
    assert load_config(cwd=tmp_path).attribution == {"team": "tags.squad"}


# --- rendering -------------------------------------------------------------


def _render_width(table: Any) -> int:
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)
    return Measurement.get(console, console.options, table).maximum


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (Decimal("119.8249"), 2, "$119.82"),
        (Decimal("0.3770"), 2, "$0.38"),
        (Decimal("0.004"), 2, "<$0.01"),
        (Decimal("0.000289"), 4, "$0.0003"),
        (Decimal("0.00000004"), 6, "<$0.000001"),
        (Decimal("0"), 2, "$0.00"),
        (Decimal("1234567.5"), 2, "$1,234,567.50"),
    ],
)
def test_money_has_one_precision_per_column(value: Decimal, places: int, text: str) -> None:
    from tokenaudit.report.render import money

    assert money(value, 0, places) == text


def test_money_places_follow_the_largest_value() -> None:
    from tokenaudit.report.render import money_places

    assert money_places([Decimal("119.8"), Decimal("0.0003")]) == 2
    assert money_places([Decimal("3.1"), None]) == 4
    assert money_places([Decimal("0.0004")]) == 6


def test_unpriced_is_never_shown_as_zero() -> None:
    from tokenaudit.report.render import money

    assert money(None, 3) == "unpriced"
    assert money(None, 0) == "—"


def test_table_fits_a_narrow_terminal(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    from tokenaudit.report.render import report_table

    events = [
        {"ts": "2026-11-02T10:00:00Z", "request_id": f"r{i}", "workflow": f"workflow-{i}"}
        for i in range(5)
    ]
    load(con, _write(tmp_path, events))
    report = rollup(con, ["workflow"])
    wide = report_table(report, "t")
    narrow = report_table(report, "t", 80)
    assert _render_width(wide) > 80
    assert _render_width(narrow) <= 80
    headers = [c.header for c in narrow.columns]
    assert headers[:1] == ["workflow"]
    assert "cost" in headers
    assert "share" in headers
    # no unpriced calls and no cache writes here: those columns carry no news
    assert "unpriced" not in [c.header for c in wide.columns]
    assert "cache write" not in [c.header for c in wide.columns]


def test_outcomes_file_joins_at_trace_level(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    # Trace t1: 3 calls ($0.15 each), accepted in the outcomes file; trace t2: 1 call,
    # its log says rejected, a later review says edited; a session-keyed outcome lands on
    # its last call; an outcome for a trace with no calls is loaded but counts nowhere.
    events: list[dict[str, Any]] = [
        {"ts": "2026-11-02T10:00:00Z", "request_id": "a1", "trace_id": "t1", "workflow": "w"},
        {"ts": "2026-11-02T10:00:01Z", "request_id": "a2", "trace_id": "t1", "workflow": "w"},
        {"ts": "2026-11-02T10:00:02Z", "request_id": "a3", "trace_id": "t1", "workflow": "w"},
        {
            "ts": "2026-11-02T11:00:00Z",
            "request_id": "b1",
            "trace_id": "t2",
            "workflow": "v",
            "outcome": "rejected",
        },
        {"ts": "2026-11-02T12:00:00Z", "request_id": "c1", "session_id": "s9", "workflow": "u"},
    ]
    load(con, _write(tmp_path, events))
    outcomes = tmp_path / "reviews.csv"
    outcomes.write_text(
        "trace_id,session_id,outcome,ts\n"
        "t1,,accepted,2026-11-02T13:00:00Z\n"
        "t2,,edited,2026-11-02T13:00:00Z\n"
        ",s9,escalated,\n"
        "t-none,,accepted,\n"
    )
    (r,) = load(con, outcomes)
    assert (r.format, r.rows_loaded, r.rows_quarantined) == ("outcomes", 4, 0)
    rows = {row["group"]["workflow"]: row for row in rollup(con, ["workflow"]).rows}
    w = rows["w"]
    assert (w["requests"], w["outcomes"], w["accepted"]) == (3, 1, 1)
    assert w["cost_usd"] == Decimal("0.45")
    assert w["cost_per_accepted_usd"] == Decimal("0.45")  # the whole trace, not one call
    assert (rows["v"]["outcomes"], rows["v"]["accepted"], rows["v"]["rejected"]) == (1, 0, 0)
    assert (rows["u"]["outcomes"], rows["u"]["rejected"]) == (1, 1)  # escalated
    # The JSON report shows it too.
    from typer.testing import CliRunner

    from tokenaudit.cli import app

    db_file = tmp_path / "r.duckdb"
    con.execute(f"ATTACH '{db_file}' AS out")
    con.execute("COPY FROM DATABASE memory TO out")
    con.execute("DETACH out")
    res = CliRunner().invoke(
        app, ["report", "--by", "workflow", "--db", str(db_file), "-f", "json"]
    )
    payload = {r["group"]["workflow"]: r for r in json.loads(res.stdout)["rows"]}
    assert payload["w"]["cost_per_accepted_usd"] == "0.450000000000"
