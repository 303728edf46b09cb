"""Codex CLI rollouts: token_count events, repeats, null info, replays, samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import DATA, SAMPLES, load, quarantine_rows, usage_rows
from tokenaudit.ingest import BY_NAME
from tokenaudit.ingest.codex import session_from_name
from tokenaudit.ingest.source import open_source

FIXTURES = DATA / "ingest" / "codex"
ROLLOUT = FIXTURES / "rollout-2026-04-02T10-15-00-0198f2c4-7a31-7d20-9b15-3e6a2c8d4f01.jsonl"
SID = "0198f2c4-7a31-7d20-9b15-3e6a2c8d4f01"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")


def test_tokens_repeats_and_null_info(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, ROLLOUT, input_format="codex")
    # 6 token_count events with usage, 2 of them repeats; 2 rate-limit-only events
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (4, 4, 0)
    rows = usage_rows(con)
    first = rows[0]
    # OpenAI semantics converted: cached input is a subset of input
    assert (first["input_tokens"], first["cache_read_tokens"]) == (12000 - 2048, 2048)
    assert (first["output_tokens"], first["reasoning_tokens"]) == (410, 256)
    assert first["cache_write_tokens"] == first["cache_write_1h_tokens"] == 0
    assert [r["line_no"] for r in rows] == [8, 12, 15, 18]  # the repeats (11, 16) are not calls
    assert first["session_id"] == first["trace_id"] == SID
    assert first["request_id"] == f"codex:{SID}:12410"
    assert (first["provider"], first["workflow"], first["agent"]) == (
        "openai",
        "payments-svc",
        "main",
    )
    assert first["tags"] == {
        "cli_version": "0.46.0",
        "originator": "codex_cli_rs",
        "source": "cli",
        "git_branch": "feat/refunds",
        "effort": "high",
    }


def test_model_follows_turn_context(con: duckdb.DuckDBPyConnection) -> None:
    load(con, ROLLOUT, input_format="codex")
    models = [(r["model"], r["tags"]["effort"]) for r in usage_rows(con)]
    assert models == [
        ("gpt-5-codex", "high"),
        ("gpt-5-codex", "high"),
        ("gpt-5.1-codex", "medium"),
        ("gpt-5.1-codex", "medium"),
    ]


def test_totals_only_event_counts_the_difference(con: duckdb.DuckDBPyConnection) -> None:
    load(con, ROLLOUT, input_format="codex")
    last = usage_rows(con)[-1]
    assert (last["input_tokens"], last["cache_read_tokens"], last["output_tokens"]) == (9000, 0, 77)


def test_subagent_replay_of_its_parent_is_skipped(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "subagent_replay.jsonl", input_format="codex")
    assert result.records_read == 1
    (row,) = usage_rows(con)
    assert row["line_no"] == 5
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (856, 6144, 300)
    assert row["agent"] == "subagent"
    assert "source" not in row["tags"]


def test_bad_lines_are_quarantined(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "bad_lines.jsonl", input_format="codex")
    assert result.records_read == result.rows_loaded + result.rows_quarantined == 7
    assert quarantine_rows(con) == [
        {"line_no": 2, "reason": "missing model (no turn_context before this token_count)"},
        {"line_no": 4, "reason": "usage.input_tokens is not a number: many"},
        {"line_no": 5, "reason": "reasoning_tokens exceeds output_tokens"},
        {"line_no": 6, "reason": "total_token_usage.input_tokens went down (400 to 350)"},
        {"line_no": 7, "reason": "invalid timestamp: not a time"},
        {"line_no": 9, "reason": "invalid JSON (a malformed or truncated line)"},
    ]
    (row,) = usage_rows(con)
    assert (row["provider"], row["input_tokens"], row["cache_read_tokens"]) == ("azure", 0, 100)


def test_a_grown_rollout_adds_only_its_new_calls(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    grown = tmp_path / ROLLOUT.name
    event = {"timestamp": "2026-04-02T08:20:00.000Z", "type": "event_msg", "payload": {
        "type": "token_count", "info": {
            "total_token_usage": {"input_tokens": 60000, "cached_input_tokens": 28288,
                                  "output_tokens": 1695, "reasoning_output_tokens": 832,
                                  "total_tokens": 61695},
            "last_token_usage": {"input_tokens": 8480, "cached_input_tokens": 0,
                                 "output_tokens": 100, "reasoning_output_tokens": 0,
                                 "total_tokens": 8580}}}}  # fmt: skip
    grown.write_text(ROLLOUT.read_text() + json.dumps(event) + "\n")
    load(con, ROLLOUT, input_format="codex")
    (result,) = load(con, grown, input_format="codex")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (5, 1, 4)
    assert {q["reason"] for q in quarantine_rows(con)} == {
        f"request_id already loaded from {ROLLOUT}"
    }


def test_session_from_name() -> None:
    assert session_from_name(ROLLOUT) == SID
    assert session_from_name(Path("x/session-alpha.jsonl")) == "session-alpha"


def test_sniff(tmp_path: Path) -> None:
    codex = BY_NAME["codex"]
    assert codex.sniff(open_source(ROLLOUT, tmp_path))
    other = tmp_path / "x.jsonl"
    other.write_text('{"timestamp":"t","type":"assistant","message":{"usage":{}}}\n')
    assert not codex.sniff(open_source(other, tmp_path))


# --- the shared real samples ----------------------------------------------------------------


def expected_calls(path: Path) -> list[dict[str, Any]]:
    """Calls computed here from the raw rollout with json only: token_count events with
    usage whose cumulative totals moved; last_token_usage, else the totals' difference."""
    calls = []
    prev_total: dict[str, int] | None = None
    model = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        obj = json.loads(raw)
        payload = obj.get("payload") or {}
        if obj.get("type") == "turn_context":
            model = payload.get("model") or model
        if obj.get("type") != "event_msg" or payload.get("type") != "token_count":
            continue
        info = payload.get("info")
        if not info:
            continue
        total, last = info.get("total_token_usage"), info.get("last_token_usage")
        if total is not None and total == prev_total:
            continue
        turn = last or {k: v - (prev_total or {}).get(k, 0) for k, v in total.items()}
        prev_total = total or prev_total
        cached = min(turn.get("cached_input_tokens", 0), turn["input_tokens"])
        calls.append({
            "model": info.get("model") or model,
            "input": turn["input_tokens"] - cached,
            "cache_read": cached,
            "output": turn["output_tokens"],
            "reasoning": turn.get("reasoning_output_tokens", 0),
        })  # fmt: skip
    return calls


def stored(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return [
        {"model": r["model"], "input": r["input_tokens"], "cache_read": r["cache_read_tokens"],
         "output": r["output_tokens"], "reasoning": r["reasoning_tokens"]}
        for r in usage_rows(con)
    ]  # fmt: skip


@needs_samples
@pytest.mark.parametrize(
    "path",
    sorted((SAMPLES / "traces" / "codex-localpush").glob("*.jsonl"))
    + sorted((SAMPLES / "traces" / "ccusage-fixtures" / "codex").rglob("*.jsonl")),
    ids=lambda p: p.name[:40],
)
def test_shared_samples(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    (result,) = load(con, path)
    assert result.format == "codex"
    assert result.rows_quarantined == 0
    assert stored(con) == expected_calls(path)
    assert result.rows_loaded == len(expected_calls(path)) > 0


@needs_samples
def test_localpush_repeats_and_totals(con: duckdb.DuckDBPyConnection) -> None:
    path = next((SAMPLES / "traces" / "codex-localpush").glob("rollout-2026-02-23T12-41*.jsonl"))
    (result,) = load(con, path)
    assert result.rows_loaded == 28  # 56 token_count events with usage, each written twice
    total = con.execute(
        "SELECT sum(input_tokens + cache_read_tokens), sum(cache_read_tokens), sum(output_tokens), "
        "sum(reasoning_tokens) FROM usage_events"
    ).fetchall()[0]
    # the rollout's final cumulative totals
    assert total == (1751428, 1651968, 14600, 4293)
