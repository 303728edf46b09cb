"""The billing loader: records vs lines, quarantine, replacement of overlapping exports."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests import billing_fake
from tests.conftest import load


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    billing_fake.register(monkeypatch)


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    return billing_fake.write(path, records)


def _day(d: int, items: list[Any], **kw: Any) -> dict[str, Any]:
    return {
        "start": f"2026-10-{d:02d} 00:00:00",
        "end": f"2026-10-{d + 1:02d} 00:00:00",
        "model": "gpt-4o-mini-2024-07-18",
        "items": items,
        **kw,
    }


def _totals(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    return tuple(
        con.execute("SELECT count(*), sum(quantity), sum(cost) FROM billing_lines").fetchall()[0]
    )


def test_records_lines_quarantine_and_model_ids(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = _write(
        tmp_path / "a.jsonl",
        [
            _day(1, [["input", 100, "0.10"], ["output", 10, "0.05"]]),
            _day(2, []),  # an idle day: loaded, nothing billed
            _day(3, [["input", 5, "0.01"]], bad="cost is not a number: x"),
            _day(4, [["input", -5, "0.01"]]),
            _day(5, [["tokens", 5, "0.01"], ["input", 5, "0.01"]]),
        ],
    )
    (r,) = load(con, path)
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (5, 2, 3)
    reasons = con.execute("SELECT line_no, reason FROM quarantine ORDER BY 1").fetchall()
    assert reasons == [
        (3, "cost is not a number: x"),
        (4, "negative quantity: -5.000000"),
        (5, "unknown category: tokens"),
    ]
    assert _totals(con) == (2, Decimal("110"), Decimal("0.15"))
    ids = con.execute("SELECT DISTINCT model_id FROM billing_lines").fetchall()
    assert ids == [("gpt-4o-mini",)]  # the dated snapshot lines up with the logs' name


def test_reloading_and_overlapping_exports_never_double_count(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    month = _write(
        tmp_path / "month.jsonl", [_day(d, [["input", 100, "1.00"]]) for d in range(1, 11)]
    )
    load(con, month)
    once = _totals(con)
    assert once == (10, Decimal("1000"), Decimal("10"))
    (again,) = load(con, month)
    assert again.status == "skipped"
    # A later export of days 5-12, with day 5 corrected: days 5-10 are replaced, 11-12 added.
    later = _write(
        tmp_path / "later.jsonl",
        [_day(5, [["input", 150, "1.50"]])]
        + [_day(d, [["input", 100, "1.00"]]) for d in range(6, 13)],
    )
    (r,) = load(con, later)
    assert "replaced 6 lines" in r.detail
    assert _totals(con) == (12, Decimal("1250"), Decimal("12.50"))
    # Another account's lines for the same days are not touched.
    other = _write(tmp_path / "other.jsonl", [_day(5, [["input", 1, "0.01"]], account="acct-2")])
    load(con, other)
    assert _totals(con) == (13, Decimal("1251"), Decimal("12.51"))


def test_a_failed_billing_load_leaves_nothing(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenaudit.ingest import billing_load

    path = _write(tmp_path / "a.jsonl", [_day(1, [["input", 1, "1"]])])

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(billing_load, "record_file", boom)
    with pytest.raises(RuntimeError):
        load(con, path)
    assert _totals(con)[0] == 0
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]


def test_a_yearly_line_neither_stretches_nor_suffers_the_replacement(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    year = {
        "start": "2026-01-01 00:00:00",
        "end": "2027-01-01 00:00:00",
        "model": None,
        "items": [["other", None, "1200.00"]],
    }
    first = _write(tmp_path / "a.jsonl", [year, _day(1, [["input", 1, "1.00"]])])
    load(con, first)
    # A daily export of another day: the yearly line and day 1 stay.
    load(con, _write(tmp_path / "b.jsonl", [_day(2, [["input", 1, "2.00"]])]))
    assert _totals(con)[2] == Decimal("1203.00")
    # The same yearly line again (next month's export): replaced, not doubled.
    load(con, _write(tmp_path / "c.jsonl", [year, _day(3, [["input", 1, "3.00"]])]))
    assert _totals(con)[2] == Decimal("1206.00")
