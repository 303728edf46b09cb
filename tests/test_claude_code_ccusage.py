"""Parity with ccusage: per-day token totals per category equal ``ccusage daily``'s.

The reference outputs in tests/data/ccusage/ were written once by ccusage 20.0.24 itself
(commands in that folder's README.md). ccusage's categories: inputTokens = input_tokens,
outputTokens = output_tokens, cacheCreationTokens = cache_write_tokens +
cache_write_1h_tokens, cacheReadTokens = cache_read_tokens; days in UTC.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DATA, SAMPLES, load

REFERENCE = DATA / "ccusage"
FIXTURES = DATA / "ingest" / "claude-code"
CATEGORIES = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")


def ccusage_days(name: str) -> dict[str, dict[str, int]]:
    data = json.loads((REFERENCE / name).read_text(encoding="utf-8"))
    return {d["period"]: {k: int(d[k]) for k in CATEGORIES} for d in data["daily"]}


def tokenaudit_days(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    rows = con.execute(
        """SELECT strftime(ts, '%Y-%m-%d'), sum(input_tokens), sum(output_tokens),
            sum(cache_write_tokens + cache_write_1h_tokens), sum(cache_read_tokens)
        FROM usage_events GROUP BY 1"""
    ).fetchall()
    return {r[0]: dict(zip(CATEGORIES, (int(x) for x in r[1:]), strict=True)) for r in rows}


@needs_samples
def test_spotter_sample_matches_ccusage(con: duckdb.DuckDBPyConnection) -> None:
    results = load(con, SAMPLES / "traces" / "claude-code-spotter")
    assert sum(r.rows_quarantined for r in results) == 0
    assert tokenaudit_days(con) == ccusage_days("claude-code-spotter.daily.json")


@needs_samples
def test_ccusage_fixtures_match_ccusage(con: duckdb.DuckDBPyConnection) -> None:
    results = load(con, SAMPLES / "traces" / "ccusage-fixtures" / "claude")
    assert sum(r.rows_quarantined for r in results) == 0
    assert tokenaudit_days(con) == ccusage_days("ccusage-fixtures-claude.daily.json")
    totals = json.loads((REFERENCE / "ccusage-fixtures-claude.daily.json").read_text())["totals"]
    # ccusage's cost is the logs' costUSD here (auto mode): the same as reported_cost_usd
    reported = con.execute("SELECT sum(reported_cost_usd) FROM usage_events").fetchall()[0][0]
    assert float(reported) == pytest.approx(totals["totalCost"])


def fixture_tree(root: Path) -> Path:
    projects = root / "projects"
    billing = projects / "-home-dana-src-billing-api"
    sid = "7f3c2a10-5b4e-4d8a-9c61-2e8f0b7d4a95"
    (billing / sid / "subagents").mkdir(parents=True)
    (projects / "C--Users-lee-work-site").mkdir()
    shutil.copy(FIXTURES / "session.jsonl", billing / f"{sid}.jsonl")
    shutil.copy(FIXTURES / "agent-a5e9f01.jsonl", billing / sid / "subagents")
    shutil.copy(
        FIXTURES / "btw_sidechain.jsonl", billing / "5e6f7a8b-0000-4000-8000-000000000003.jsonl"
    )
    shutil.copy(
        FIXTURES / "old_costusd.jsonl",
        projects / "C--Users-lee-work-site" / "0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e.jsonl",
    )
    return root


def test_fixture_tree_matches_ccusage_but_for_two_documented_rules(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Content-block copies, the subagent file against its parent's agent_progress echo,
    /btw replays and costUSD lines count as ccusage counts them, except:

    - copies of one message without a requestId are one call here (the message id is the
      fallback key); ccusage 20.0.24 counts each copy (2026-01-09: +40 input, +7 output);
    - a flat cache_creation_input_tokens above its 5m/1h split keeps the excess as a
      5-minute write here; ccusage counts the split only (2026-03-10: -100 cache creation).
    """
    results = load(con, fixture_tree(tmp_path))
    assert [r.rows_quarantined for r in results] == [0, 0, 1, 0]  # the echo, loaded from agent-*
    ours = tokenaudit_days(con)
    theirs = ccusage_days("fixture-tree.daily.json")
    assert ours.keys() == theirs.keys()
    delta = {
        day: {
            k: theirs[day][k] - ours[day][k] for k in CATEGORIES if theirs[day][k] != ours[day][k]
        }
        for day in ours
    }
    assert delta == {
        "2026-01-09": {"inputTokens": 40, "outputTokens": 7},
        "2026-03-10": {"cacheCreationTokens": -100},
        "2026-03-29": {},
    }
