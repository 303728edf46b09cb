"""Outcome economics in reports: rejected spend per group, and the --sort orders."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from tests.conftest import load
from tokenaudit.cli import app
from tokenaudit.report.queries import rollup

CALLS = [
    # workflow a: trace t1 rejected (2 calls), t2 accepted; workflow b: t3 accepted, t4 none
    ("r1", "t1", "a", "v1", 1000, None),
    ("r2", "t1", "a", "v1", 3000, "rejected"),
    ("r3", "t2", "a", "v2", 500, "accepted"),
    ("r4", "t3", "b", "v1", 200, "accepted"),
    ("r5", "t4", "b", "v1", 100, None),
]


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    path = tmp_path / "calls.jsonl"
    lines = [
        json.dumps(
            {
                "ts": f"2026-11-02T10:00:0{i}Z",
                "request_id": r,
                "trace_id": t,
                "workflow": wf,
                "prompt_version": v,
                "model": "gpt-4o-mini",
                "provider": "openai",
                "input_tokens": n,
                "output_tokens": 50,
                "outcome": o,
            }
        )
        for i, (r, t, wf, v, n, o) in enumerate(CALLS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rejected_spend_is_the_cost_of_rejected_traces(
    con: duckdb.DuckDBPyConnection, calls: Path
) -> None:
    load(con, calls)
    cost = dict(con.execute("SELECT request_id, cost_usd FROM usage_events").fetchall())
    rep = rollup(con, ["workflow"])
    rows = {r["group"]["workflow"]: r for r in rep.rows}
    assert rows["a"]["rejected_usd"] == cost["r1"] + cost["r2"]
    assert rows["a"]["rejected"] == 1
    assert rows["b"]["rejected_usd"] == Decimal(0)
    assert rep.totals["rejected_usd"] == cost["r1"] + cost["r2"]
    by_version = {r["group"]["prompt_version"]: r for r in rollup(con, ["prompt_version"]).rows}
    assert by_version["v1"]["rejected_usd"] == cost["r1"] + cost["r2"]
    assert by_version["v2"]["rejected_usd"] == Decimal(0)


def test_sort_orders(con: duckdb.DuckDBPyConnection, calls: Path) -> None:
    load(con, calls)
    order = {
        s: [r["group"]["workflow"] for r in rollup(con, ["workflow"], sort=s).rows]
        for s in ("cost", "cost_per_accepted", "acceptance", "rejected", "requests")
    }
    assert order["cost"] == ["a", "b"]
    assert order["cost_per_accepted"] == ["a", "b"]  # a: 2 traces of cost for 1 accepted
    assert order["acceptance"] == ["a", "b"]  # a: 50% accepted, b: 100%
    assert order["rejected"] == ["a", "b"]
    assert order["requests"] == ["a", "b"]
    by_calls = [r["group"]["trace_id"] for r in rollup(con, ["trace_id"], sort="requests").rows]
    assert by_calls[0] == "t1"


def test_cli_sort_and_bad_sort(calls: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "o.duckdb")
    assert runner.invoke(app, ["ingest", "--db", db, str(calls)]).exit_code == 0
    out = runner.invoke(app, ["report", "--db", db, "--sort", "acceptance", "-f", "json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["meta"]["sort"] == "acceptance"
    assert "rejected_usd" in payload["rows"][0]
    bad = runner.invoke(app, ["report", "--db", db, "--sort", "vibes"])
    assert bad.exit_code == 2
    assert "cannot sort by 'vibes'" in bad.stderr
