"""`reconcile --billing` on the sample: it finds the labelled unlogged days, their share and
the negotiated discount, and nothing else."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import load
from tokenaudit import db
from tokenaudit.reconcile.billing import Options, Reconciliation, reconcile
from tokenaudit.sample import generate

POINT = Decimal("0.01")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Reconciliation, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sample")
    generate(out, events=8000, seed=11)
    labels = json.loads((out / "ground-truth.labels.json").read_text())["billing"]
    con: duckdb.DuckDBPyConnection
    with db.connect(":memory:") as con:
        results = load(con, out)
        assert all(r.rows_quarantined == 0 for r in results)
        rec = reconcile(con, Options())
    return rec, labels


def _sum(rows: list[dict[str, Any]], cause: str) -> Decimal:
    return sum((c["usd"] for r in rows for c in r["causes"] if c["cause"] == cause), Decimal(0))


def test_finds_the_unlogged_days_and_their_share(
    sample: tuple[Reconciliation, dict[str, Any]],
) -> None:
    rec, labels = sample
    by_day: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rec.rows:
        by_day[(r["provider"], r["period"])].append(r)
    found = {}
    for key, rows in by_day.items():
        billed = sum((r["billed_usd"] or Decimal(0) for r in rows), Decimal(0))
        unlogged = _sum(rows, "unlogged_usage")
        if billed and unlogged / billed > POINT:
            found[key] = unlogged / billed
    expected = {
        (u["provider"], u["day"]): Decimal(u["share_of_billed_cost"]) for u in labels["unlogged"]
    }
    assert set(found) == set(expected)
    for key, share in expected.items():
        assert abs(found[key] - share) < POINT, (key, found[key], share)


def test_finds_the_discount(sample: tuple[Reconciliation, dict[str, Any]]) -> None:
    rec, labels = sample
    (deal,) = labels["discounts"]
    rows = [r for r in rec.rows if r["model"] == deal["model"]]
    assert rows and all(
        c["cause"] != "price_drift" or c["usd"] < 0 for r in rows for c in r["causes"]
    )
    drift = _sum(rows, "price_drift")
    # price drift is measured on the logged tokens, at our (list) prices
    logged_list = sum((r["logged_usd"] for r in rows), Decimal(0))
    assert abs(-drift / logged_list - Decimal(deal["discount"])) < POINT
    # no other model shows a price drift
    others = [r for r in rec.rows if r["model"] != deal["model"]]
    assert _sum(others, "price_drift") == 0


def test_every_other_row_matches(sample: tuple[Reconciliation, dict[str, Any]]) -> None:
    rec, labels = sample
    unlogged = {(u["provider"], u["day"]) for u in labels["unlogged"]}
    (deal,) = labels["discounts"]
    rest = [
        r
        for r in rec.rows
        if (r["provider"], r["period"]) not in unlogged and r["model"] != deal["model"]
    ]
    assert rest
    assert [r for r in rest if r["status"] != "matched"] == []
    assert rec.totals["gap_usd"] == sum((c["usd"] for c in rec.causes), Decimal(0))


def test_cli_fail_under_on_the_sample(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tokenaudit.cli import app

    out = tmp_path / "s"
    generate(out, events=2000, seed=3)
    dbf = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(out), "--db", dbf]).exit_code == 0
    # Logged exceeds billed overall (the discount): capture above 100% passes 95%.
    assert runner.invoke(app, ["reconcile", "--db", dbf, "--fail-under", "95%"]).exit_code == 0
    strict = runner.invoke(app, ["reconcile", "--db", dbf, "--fail-under", "100%", "-f", "json"])
    capture = Decimal(json.loads(strict.stdout)["totals"]["capture_rate"])
    assert strict.exit_code == (1 if capture < 1 else 0)
