"""Invariants of DESIGN.md section 7, as hypothesis properties over generated inputs."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load
from tokenaudit import db
from tokenaudit.report.queries import rollup

MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "o3-mini",
    "acme-private-7b",
]
WORKFLOWS = ["ticket-summary", "code-review", "rag", None]
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

tokens = st.integers(min_value=0, max_value=400_000)
event = st.fixed_dictionaries(
    {
        "day": st.integers(min_value=0, max_value=40),
        "second": st.integers(min_value=0, max_value=86_399),
        "model": st.sampled_from(MODELS),
        "workflow": st.sampled_from(WORKFLOWS),
        "trace": st.integers(min_value=0, max_value=8),
        "input_tokens": tokens,
        "cache_read_tokens": st.integers(min_value=0, max_value=50_000),
        "cache_write_tokens": st.integers(min_value=0, max_value=20_000),
        "output_tokens": st.integers(min_value=0, max_value=20_000),
        "outcome": st.sampled_from([None, None, "accepted", "rejected"]),
        "attempt": st.integers(min_value=1, max_value=3),
    }
)


def _write(events: list[dict[str, Any]], folder: Path) -> Path:
    path = folder / "events.jsonl"
    start = dt.datetime(2026, 9, 20)
    with open(path, "w") as f:
        for i, e in enumerate(events):
            ts = start + dt.timedelta(days=e["day"], seconds=e["second"])
            rec = {k: v for k, v in e.items() if k not in ("day", "second", "trace")}
            rec.update(ts=ts.isoformat() + "Z", request_id=f"r{i}", trace_id=f"t{e['trace']}")
            f.write(json.dumps(rec) + "\n")
    return path


@SETTINGS
@given(st.lists(event, min_size=1, max_size=60))
def test_totals_equal_under_every_grouping(events: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as con:
        load(con, _write(events, Path(tmp)))
        total = rollup(con, []).totals
        assert total["requests"] == len(events)
        for by in (["workflow"], ["model"], ["day"], ["workflow", "model"], ["week"]):
            for top in (None, 2):
                rows = rollup(con, by, top=top).rows
                priced = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
                assert sum(priced, Decimal(0)) == (total["cost_usd"] or Decimal(0))
                assert sum(r["requests"] for r in rows) == total["requests"]
                assert sum(r["unpriced_requests"] for r in rows) == total["unpriced_requests"]
                for col in ("input_tokens", "cache_read_tokens", "output_tokens"):
                    assert sum(r[col] for r in rows) == total[col]
        exact = con.execute("SELECT sum(cost_usd) FROM usage_events").fetchall()[0][0]
        assert total["cost_usd"] == exact


@SETTINGS
@given(st.lists(event, min_size=1, max_size=30))
def test_loading_twice_adds_nothing(events: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as con:
        path = _write(events, Path(tmp))
        (first,) = load(con, path)
        before = con.execute("SELECT count(*), sum(cost_usd) FROM usage_events").fetchall()
        (second,) = load(con, path)
        assert second.status == "skipped" and second.rows_loaded == 0
        # A copy under another name is the same content: still nothing added.
        copy = Path(tmp) / "renamed.jsonl"
        copy.write_bytes(path.read_bytes())
        (third,) = load(con, copy)
        assert third.status == "skipped"
        assert con.execute("SELECT count(*), sum(cost_usd) FROM usage_events").fetchall() == before
        assert first.rows_loaded == len(events)


line = st.one_of(
    st.builds(lambda e: json.dumps({**e, "ts": "2026-11-02T10:00:00Z"}), event),
    st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s),
    st.just('{"ts":"2026-11-02T10:00:00Z","model":"gpt-4o","input_tokens":-1}'),
    st.just('{"ts":"2026-11-02T10:00:00Z","model":"gpt-4o","output_tokens":"lots"}'),
    st.just('{"ts":"2026-11-02T10:00:00Z","mod'),
    st.just(""),
)


@SETTINGS
@given(st.lists(line, min_size=1, max_size=40), st.booleans())
def test_conservation_for_arbitrary_lines(lines: list[str], crlf: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as con:
        path = Path(tmp) / "mixed.jsonl"
        sep = "\r\n" if crlf else "\n"
        path.write_bytes(sep.join(lines).encode("utf-8", "surrogatepass"))
        results = load(con, path, input_format="tokenaudit")
        records = sum(1 for x in lines if x.strip(" \t"))  # blank lines are not records
        if not path.read_bytes():
            assert results[0].status == "empty"
            return
        (r,) = results
        assert r.records_read == records
        assert r.rows_loaded + r.rows_quarantined == records
        stored = con.execute(
            "SELECT (SELECT count(*) FROM usage_events), (SELECT count(*) FROM quarantine)"
        ).fetchall()[0]
        assert stored == (r.rows_loaded, r.rows_quarantined)
        # Quarantined line numbers point at the non-JSON-object lines (1-based).
        bad = {
            n
            for n, (ln,) in enumerate(
                con.execute("SELECT line_no FROM quarantine ORDER BY line_no").fetchall()
            )
        }
        assert len(bad) == r.rows_quarantined
        qlines = [x[0] for x in con.execute("SELECT line_no FROM quarantine").fetchall()]
        assert all(1 <= n <= len(lines) and lines[n - 1].strip(" \t") for n in qlines)
