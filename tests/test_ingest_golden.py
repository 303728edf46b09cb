"""Golden files: every fixture in tests/data/ingest/<format>/ loads to known rows.

Each input ``<case>.<ext>`` sits beside ``<case>.expected.json``: the normalized
usage rows (billing lines for a billing format, outcomes for an outcomes file) and the quarantined lines, as the
store keeps them. The bytes are
the contract: after ``pytest --update-golden`` read the diff before committing.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import (
    DATA,
    HAVE_TIKTOKEN,
    TOKENIZER_COLUMNS,
    billing_rows,
    load,
    outcome_rows,
    quarantine_rows,
    usage_rows,
)
from tokenaudit.ingest import BY_NAME

INGEST = DATA / "ingest"
CASES = sorted(
    p
    for p in INGEST.glob("*/*")
    if p.is_file() and not p.name.endswith(".expected.json") and not p.name.startswith("_")
)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden(path: Path, con: duckdb.DuckDBPyConnection, update_golden: bool) -> None:
    fmt = path.parent.name
    results = load(con, path, input_format=fmt)
    (result,) = results
    assert result.status == "loaded"
    assert result.rows_loaded + result.rows_quarantined == result.records_read
    rows = {"billing": billing_rows, "outcomes": outcome_rows}.get(BY_NAME[fmt].kind, usage_rows)
    actual = {
        "format": result.format,
        "records_read": result.records_read,
        "rows": rows(con),
        "quarantine": quarantine_rows(con),
    }
    if (
        BY_NAME[fmt].kind == "usage"
        and con.execute("SELECT count(*) FROM outcomes").fetchall()[0][0]
    ):
        actual["outcomes"] = outcome_rows(con)
    golden = path.with_name(path.name + ".expected.json")
    text = json.dumps(actual, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if update_golden or not golden.exists():
        golden.write_text(text, encoding="utf-8")
        if not update_golden:
            pytest.fail(f"wrote missing golden file {golden.name}; review and commit it")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    if not HAVE_TIKTOKEN:
        for row in expected.get("rows", []) + actual["rows"]:
            for col in TOKENIZER_COLUMNS:
                row.pop(col, None)
    assert expected == actual


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_detected_without_hint(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Content sniffing picks the fixture's format without --input-format."""
    if path.parent.name.startswith("_"):
        pytest.skip("not a detectable format")
    (result,) = load(con, path)
    assert result.format == path.parent.name
