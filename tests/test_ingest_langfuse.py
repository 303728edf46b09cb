"""Langfuse exports and ingestion batches: token normalization, merging copies of an
observation, wrappers, scores as outcomes, quarantine, privacy, detection, and the real
samples."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, SAMPLES, load, quarantine_rows, usage_rows
from tokenaudit import db
from tokenaudit.errors import InputError
from tokenaudit.ingest import detect
from tokenaudit.ingest import langfuse_records as rec
from tokenaudit.ingest.base import RecordError
from tokenaudit.ingest.langfuse import INGESTERS
from tokenaudit.ingest.langfuse_scores import outcome_of
from tokenaudit.ingest.source import open_source

FIXTURES = DATA / "ingest" / "langfuse"
FRAMEWORKS = SAMPLES / "traces" / "langfuse-framework-traces"
LITELLM = SAMPLES / "traces" / "langfuse-ingestion-from-litellm"
INGESTER = INGESTERS[0]


def _by_id(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r for r in usage_rows(con)}


def _outcomes(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT line_no, key_kind, key, outcome, ts::VARCHAR, reviewer FROM outcomes "
        "ORDER BY file_id, line_no, outcome"
    ).fetchall()


def _tokens(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(
        row[c]
        for c in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
        )
    )


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def _gen(id_: str, **body: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "traceId": "t-1",
        "type": "GENERATION",
        "name": "answer",
        "startTime": "2026-06-01T10:00:00Z",
        "model": "gpt-4o-mini",
        "usageDetails": {"input": 100, "output": 10, "total": 110},
        **body,
    }


# --- token normalization ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # Langfuse's convention: disjoint keys, total = their sum
        ({"input": 412, "input_cached_tokens": 3800, "input_cache_creation_1h": 1200,
          "output": 96, "total": 5508}, (412, 3800, 0, 1200, 96, 0)),
        ({"input": 1510, "input_cached_tokens": 1024, "output": 220,
          "output_reasoning_tokens": 640, "total": 3394}, (1510, 1024, 0, 0, 860, 640)),
        ({"input": 5, "input_cache_creation": 7, "input_cache_creation_5m": 3,
          "input_cache_read": 9, "output": 2, "total": 26}, (5, 9, 10, 0, 2, 0)),
        # LiteLLM: input = prompt_tokens (cache included), total = input + output
        ({"input": 5400, "output": 310, "total": 5710, "cache_read_input_tokens": 4800,
          "cache_creation_input_tokens": 100}, (500, 4800, 100, 0, 310, 0)),
        # older OTel ingestion kept cache and reasoning inside input/output
        ({"input": 2200, "prompt_details.cache_read": 1920, "output": 64,
          "completion_details.reasoning": 30, "total": 2264}, (280, 1920, 0, 0, 64, 30)),
        # an OpenAI usage object, with or without its total
        ({"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020,
          "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
          "completion_tokens_details": {"reasoning_tokens": 40}}, (388, 512, 0, 0, 120, 40)),
        ({"prompt_tokens": 900, "completion_tokens": 120,
          "prompt_tokens_details": {"cached_tokens": 512}}, (388, 512, 0, 0, 120, 0)),
        # audio input is uncached input
        ({"input": 50, "input_audio": 30, "output": 5, "total": 85}, (80, 0, 0, 0, 5, 0)),
        # no total: Langfuse's convention
        ({"input": 100, "input_cache_read": 60, "output": 50}, (100, 60, 0, 0, 50, 0)),
        # strings (Langfuse keeps OTel values as text) and decimals that are whole
        ({"input": "31", "output": Decimal("96.0")}, (31, 0, 0, 0, 96, 0)),
    ],
)  # fmt: skip
def test_usage_details_normalize_to_disjoint_categories(
    usage: dict[str, Any], expected: tuple[int, ...]
) -> None:
    tokens = rec.tokens({"usageDetails": usage})
    assert tokens is not None
    assert _tokens(tokens) == expected


def test_legacy_usage_and_view_counts() -> None:
    assert rec.tokens({"usage": {"promptTokens": 12, "completionTokens": 3}}) == {
        "input_tokens": 12, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0, "output_tokens": 3, "reasoning_tokens": 0,
    }  # fmt: skip
    view = rec.tokens({"usageDetails": {}, "promptTokens": 7, "completionTokens": 2})
    assert view is not None and (view["input_tokens"], view["output_tokens"]) == (7, 2)
    assert rec.tokens({"usageDetails": {}, "inputUsage": 0, "outputUsage": 0}) is None
    with pytest.raises(RecordError, match="usage unit 'CHARACTERS' is not tokens"):
        rec.tokens({"usage": {"input": 400, "output": 20, "unit": "CHARACTERS"}})


def test_reported_cost_is_exact() -> None:
    cost = rec.reported_cost
    assert cost({"costDetails": {"input": Decimal("1.75e-05"), "total": Decimal("0.0004475")}}) == (
        Decimal("0.0004475")
    )
    assert cost(
        {"costDetails": {"input": Decimal("0.0001552"), "output": Decimal("0.000192")}}
    ) == (Decimal("0.0003472"))
    assert cost({"costDetails": {}, "totalCost": 0}) is None  # Langfuse had no price
    assert cost({"calculatedTotalCost": Decimal("0.000207")}) == Decimal("0.000207")
    assert cost(
        {"usage": {"inputCost": Decimal("0.00002"), "outputCost": Decimal("0.000012")}}
    ) == (Decimal("0.000032"))
    with pytest.raises(RecordError, match="not a finite number"):
        cost({"costDetails": {"total": Decimal("NaN")}})


# --- scores -> outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "outcome"),
    [
        ({"name": "user_feedback", "value": 1, "dataType": "BOOLEAN"}, "accepted"),
        ({"name": "user_feedback", "value": 0, "dataType": "BOOLEAN"}, "rejected"),
        ({"name": "accepted", "value": 0, "stringValue": "False", "dataType": "BOOLEAN"}, "rejected"),
        ({"name": "User Feedback", "value": "thumbs_down", "dataType": "CATEGORICAL"}, "rejected"),
        ({"name": "feedback", "value": 0, "stringValue": "\U0001f44d", "dataType": "CATEGORICAL"}, "accepted"),
        ({"name": "thumbs", "value": -1, "dataType": "NUMERIC"}, "rejected"),
        ({"name": "thumbs", "value": 1}, "accepted"),
        ({"name": "review", "value": 1, "stringValue": "escalated", "dataType": "CATEGORICAL"}, "escalated"),
        ({"name": "outcome", "value": "Approved"}, "accepted"),
        ({"name": "escalated", "value": 1, "dataType": "BOOLEAN"}, "escalated"),
        ({"name": "escalated", "value": 0, "dataType": "BOOLEAN"}, None),
        ({"name": "edited", "value": 1, "dataType": "NUMERIC"}, "edited"),
        ({"name": "output", "value": 0, "dataType": "CORRECTION"}, "edited"),
        ({"name": "toxicity", "value": 0.8, "dataType": "NUMERIC"}, None),
        ({"name": "hallucination", "value": 1, "dataType": "NUMERIC"}, None),
        ({"name": "user_rating", "value": 1, "dataType": "NUMERIC"}, None),
        ({"name": "feedback", "value": 0.5, "dataType": "NUMERIC"}, None),
        ({"name": "sentiment", "value": "positive", "dataType": "CATEGORICAL"}, None),
        ({"name": "note", "value": 0, "stringValue": "approved by me", "dataType": "TEXT"}, None),
    ],
)  # fmt: skip
def test_score_to_outcome(score: dict[str, Any], outcome: str | None) -> None:
    assert outcome_of(score) == outcome


def test_trace_export_scores_become_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "trace_export.json")
    # two calls + one outcome (the toxicity evaluation is not a record)
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (3, 3, 0)
    assert _outcomes(con) == [
        (24, "trace", "7f3c2a9e41b04d8e9a6c5b1d2e3f4a5b", "accepted", "2026-03-02 09:20:11",
         "cm9reviewer01"),
    ]  # fmt: skip


def test_batch_scores_keyed_by_trace_and_session(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "ingestion_batch.json")
    assert (result.records_read, result.rows_quarantined) == (5, 0)
    assert [o[1:5] for o in _outcomes(con)] == [
        ("trace", "trace-chat-5512", "rejected", "2026-01-20 16:05:00"),
        ("trace", "trace-chat-5512", "escalated", "2026-01-20 16:05:30"),
        ("session", "chat-sess-12", "rejected", "2026-01-20 17:40:00"),
    ]


def test_score_without_key_is_quarantined(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    doc = [
        _gen("g-1"),
        {"id": "s-1", "name": "accepted", "value": 1, "dataType": "BOOLEAN",
         "datasetRunId": "run-1", "traceId": None},
        {"id": "s-2", "traceId": "t-1", "name": "accepted", "value": 1, "dataType": "BOOLEAN",
         "timestamp": "last week"},
    ]  # fmt: skip
    (result,) = load(con, _write(tmp_path / "scores.json", doc))
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (3, 1, 2)
    assert [r["reason"] for r in quarantine_rows(con)] == [
        "no trace, session or request id to attach the outcome to",
        "invalid score timestamp: 'last week'",
    ]


# --- merging copies, wrappers -----------------------------------------------------------------


def test_batch_update_merged_into_its_create(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "ingestion_batch.json")
    rows = _by_id(con)
    assert sorted(rows) == ["gen-5512-a", "gen-5512-b"]  # spans, events, sdk-log: no calls
    a = rows["gen-5512-a"]
    # model from the create, usage and cost from the update logged before it (line 32)
    assert (a["line_no"], a["model"], a["provider"]) == (
        32,
        "claude-sonnet-4-5-20250929",
        "anthropic",
    )
    assert _tokens(a) == (600, 4800, 0, 0, 310, 0)
    assert a["reported_cost_usd"] == "0.007890000000"
    assert a["ts"] == "2026-01-20T16:02:11.250000"  # -08:00 offset to UTC
    assert a["latency_ms"] == 3650.0
    # trace-create events merged: the later one adds a tag, keeps the rest
    assert (a["workflow"], a["user"], a["session_id"]) == (
        "support-chat",
        "cust-2291",
        "chat-sess-77",
    )
    assert a["tags"]["tags"] == ["escalation-candidate", "web"]
    assert (a["team"], a["tenant"]) == ("support-bots", "globex")
    b = rows["gen-5512-b"]
    assert (b["prompt_version"], b["service_tier"]) == ("followup-prompt:v2", "flex")
    assert _tokens(b) == (388, 512, 0, 0, 120, 0)


def test_last_write_wins_by_event_timestamp(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    def ev(type_: str, ts: str, **body: Any) -> dict[str, Any]:
        return {
            "id": f"e-{ts}-{type_}",
            "type": type_,
            "timestamp": ts,
            "body": {"id": "g-1", **body},
        }

    batch = [
        ev("generation-update", "2026-06-01T10:00:03Z", usageDetails={"input": 300, "output": 30}),
        ev("generation-update", "2026-06-01T10:00:02Z", usageDetails={"input": 200, "output": 20},
           model="gpt-4o"),
        ev("generation-create", "2026-06-01T10:00:01Z", startTime="2026-06-01T10:00:00Z",
           model="gpt-4o-mini", usageDetails={"input": 100, "output": 10}, traceId="t-1"),
        # same instant as the last update: a create comes first, so the update still wins
        ev("generation-create", "2026-06-01T10:00:03Z", usageDetails={"input": 1, "output": 1}),
    ]  # fmt: skip
    (result,) = load(con, _write(tmp_path / "batch.json", {"batch": batch}))
    assert (result.records_read, result.rows_loaded) == (1, 1)
    (row,) = usage_rows(con)
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == ("gpt-4o", 300, 30)
    assert row["line_no"] == 3  # where the first copy (in the file) starts


def test_export_copies_counted_once(con: duckdb.DuckDBPyConnection) -> None:
    # Each observation appears twice (the trace's light copy, then the full one).
    load(con, FIXTURES / "trace_export.json")
    rows = _by_id(con)
    assert sorted(rows) == ["a1b2c3d4e5f60002", "a1b2c3d4e5f60004"]
    classify, draft = rows["a1b2c3d4e5f60002"], rows["a1b2c3d4e5f60004"]
    assert _tokens(classify) == (412, 3800, 0, 1200, 96, 0)
    assert _tokens(draft) == (1510, 1024, 0, 0, 860, 640)
    assert classify["agent"] == draft["agent"] == "triage-agent"  # the AGENT ancestor
    assert classify["provider"] == "anthropic" and draft["provider"] == "openai"
    assert classify["prompt_version"] == "triage-classify:v7"
    assert draft["service_tier"] == "standard"
    assert (classify["team"], classify["tenant"], classify["environment"]) == (
        "support", "acme", "production",
    )  # fmt: skip
    assert classify["tags"]["response_model"] == "claude-sonnet-4-5-20250929"
    assert classify["tags"]["release"] == "2026.03.1"


def test_wrapper_generation_is_not_a_call(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "api_observations.json")
    rows = _by_id(con)
    assert "obs-wrap-01" not in rows  # ai.streamText repeats its two doStream calls
    steps = [rows["obs-step-01"], rows["obs-step-02"]]
    assert sum(r["input_tokens"] for r in steps) == 3900
    assert sum(r["output_tokens"] for r in steps) == 305
    assert rows["obs-embed-01"]["input_tokens"] == 2048
    error = rows["obs-error-01"]
    assert (error["status"], error["error_type"], error["input_tokens"]) == (
        "error", "RateLimitError", 0,
    )  # fmt: skip
    legacy = rows["obs-legacy-01"]
    assert (legacy["workflow"], legacy["team"], legacy["reported_cost_usd"]) == (
        "contract-summary", "legal", "0.000207000000",
    )  # fmt: skip
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (9, 6, 3)
    assert quarantine_rows(con) == [
        {
            "line_no": 212,
            "reason": "generation without usage (no token counts, cost or error level)",
        },
        {"line_no": 255, "reason": "invalid startTime: 'yesterday at noon'"},
        {"line_no": 302, "reason": "negative usageDetails.output: -5"},
    ]


def test_json_lines_merge_and_quarantine(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "observations.jsonl")
    rows = _by_id(con)
    assert sorted(rows) == ["obs-jl-1", "obs-jl-2"]
    assert rows["obs-jl-1"]["latency_ms"] == 700.0  # the later copy's endTime
    assert rows["obs-jl-2"]["ts"] == "2026-04-01T08:01:00"
    assert (rows["obs-jl-2"]["provider"], rows["obs-jl-2"]["reported_cost_usd"]) == (
        "mistral", "0.000032000000",
    )  # fmt: skip
    assert quarantine_rows(con) == [
        {"line_no": 7, "reason": "usageDetails.input is not a whole number: '1.5'"},
        {"line_no": 8, "reason": "invalid JSON (malformed or truncated line)"},
        {"line_no": 9, "reason": "not a Langfuse trace, observation, score or ingestion event"},
    ]
    assert [o[:4] for o in _outcomes(con)] == [
        (5, "trace", "trace-jl-1", "accepted"),
        (6, "request", "obs-jl-2", "rejected"),
    ]
    assert result.records_read == result.rows_loaded + result.rows_quarantined == 7


def test_trace_list_correction_and_category(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "traces.json")
    rows = _by_id(con)
    assert _tokens(rows["3c4d5e6f708192a3"]) == (640, 0, 0, 0, 600, 420)
    assert rows["3c4d5e6f708192a3"]["provider"] == "google"
    assert _tokens(rows["9a8b7c6d5e4f3022"]) == (280, 1920, 0, 0, 64, 0)
    assert [o[3:] for o in _outcomes(con)] == [
        ("edited", "2026-05-04 09:10:00", "cm9reviewer02"),
        ("accepted", "2026-05-04 09:30:00", "API"),
    ]


def test_reexported_trace_counts_once(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    first = FIXTURES / "trace_export.json"
    again = _write(tmp_path / "again.json", json.loads(first.read_text()))  # other bytes
    load(con, first)
    (result,) = load(con, again)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 2)  # the outcome, 2 dupes
    assert {r["reason"] for r in quarantine_rows(con)} == {
        f"request_id already loaded from {first}"
    }
    (skipped,) = load(con, first)
    assert skipped.status == "skipped"


# --- bad input --------------------------------------------------------------------------------


def test_broken_document_is_an_input_error(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    text = (FIXTURES / "trace_export.json").read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match=r"cut\.json: invalid JSON at line \d+"):
        load(con, path, input_format="langfuse")


def test_events_without_body_or_known_type(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    batch = {
        "batch": [
            {"id": "e1", "type": "generation-create", "timestamp": "2026-06-01T10:00:00Z",
             "body": _gen("g-1")},
            {"id": "e2", "type": "generation-create", "timestamp": "2026-06-01T10:00:00Z"},
            {"id": "e3", "type": "telepathy-create", "timestamp": "2026-06-01T10:00:00Z",
             "body": {}},
            {"id": "e4", "type": "dataset-run-item-create", "body": {"runName": "nightly"}},
            "not an event",
        ]
    }  # fmt: skip
    (result,) = load(con, _write(tmp_path / "b.json", batch))
    assert (result.records_read, result.rows_loaded) == (4, 1)
    assert [r["reason"] for r in quarantine_rows(con)] == [
        "ingestion event without type or body",
        "unknown ingestion event type 'telepathy-create'",
        "ingestion event without type or body",
    ]


def test_empty_batch_and_missing_model(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    (empty,) = load(con, _write(tmp_path / "empty.json", {"batch": []}), input_format="langfuse")
    assert (empty.status, empty.records_read) == ("loaded", 0)
    (result,) = load(con, _write(tmp_path / "m.json", [_gen("g-1", model=None)]))
    assert quarantine_rows(con) == [{"line_no": 2, "reason": "missing model"}]
    assert result.rows_quarantined == 1


def test_no_text_or_secrets_reach_the_database(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with db.connect(path) as con:
        inputs = [p for p in sorted(FIXTURES.iterdir()) if not p.name.endswith(".expected.json")]
        results = load(con, *inputs)
        assert len(results) == 5
        text = json.dumps([usage_rows(con), quarantine_rows(con), _outcomes(con)], default=str)
    data = path.read_bytes() + text.encode()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        data += wal.read_bytes()
    for canary in (
        b"CANARY",
        b"jane.doe@example.com",
        b"My invoice is wrong",
        b"charged twice",
        b"Summarize the attached contract",
        b"Cite the 2024 survey",
        b"You are a billing triage assistant",
    ):
        assert canary not in data, canary


# --- detection --------------------------------------------------------------------------------


def _sniff(path: Path, tmp_path: Path) -> bool:
    return INGESTER.sniff(open_source(path, tmp_path))


def test_sniff_claims_only_langfuse_files(tmp_path: Path) -> None:
    for path in sorted((DATA / "ingest").glob("*/*")):
        if path.is_file() and not path.name.endswith(".expected.json"):
            assert _sniff(path, tmp_path) == (path.parent.name == "langfuse"), path
    plain = _write(tmp_path / "plain.json", [{"traceId": "t-1", "name": "x", "value": 3}])
    assert not _sniff(plain, tmp_path)
    batch = _write(tmp_path / "batch.json", {"batch": [{"type": "span-create", "body": {}}]})
    assert _sniff(batch, tmp_path)
    assert detect(open_source(batch, tmp_path)) is INGESTER


# --- the real samples ---------------------------------------------------------------------------


def _decimal_json(path: Path) -> Any:
    return json.loads(path.read_text(), parse_float=Decimal)


def _sums(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    return tuple(
        con.execute(
            "SELECT count(*), sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens), "
            "sum(output_tokens), sum(reasoning_tokens), sum(reported_cost_usd) FROM usage_events"
        ).fetchall()[0]
    )


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not present")
@pytest.mark.parametrize(
    "name",
    [
        "crewai-2025-07-11.trace.json",
        "langgraph-python-2025-08-22.trace.json",
        "openai-agents-2025-09-30.trace.json",
        "pydantic-ai-2025-06-06.trace.json",
        "vercel-aisdk-2025-11-17.trace.json",
    ],
)
def test_framework_trace_samples(con: duckdb.DuckDBPyConnection, name: str) -> None:
    path = FRAMEWORKS / name
    doc = _decimal_json(path)
    observations = doc["observations"]  # the full copies; trace.observations repeats them
    generations = [o for o in observations if o["type"] == "GENERATION"]
    wrappers = {o["parentObservationId"] for o in generations}
    calls = [o for o in generations if o["id"] not in wrappers]
    details = [o["usageDetails"] for o in calls]

    def keyed(word: str) -> int:
        return sum(v for d in details for k, v in d.items() if word in k)

    cost = sum((Decimal(o["costDetails"]["total"]) for o in calls), Decimal(0))
    expected = (
        len(calls),
        sum(d["input"] for d in details),
        keyed("cache_read"),
        0,
        sum(d["output"] for d in details) + keyed("reasoning"),
        keyed("reasoning"),
        cost.quantize(Decimal("1e-12")),
    )
    (result,) = load(con, path)
    assert (result.format, result.rows_quarantined) == ("langfuse", 0)
    assert _sums(con) == expected
    scores = doc["trace"]["scores"] + doc["trace"]["corrections"]
    corrections = [s for s in scores if s["dataType"] == "CORRECTION"]  # evals are not outcomes
    assert [o[3] for o in _outcomes(con)] == ["edited"] * len(corrections)
    assert result.records_read == len(calls) + len(corrections)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not present")
@pytest.mark.parametrize(
    "name",
    ["completion.json", "completion_with_langfuse_metadata.json", "completion_with_tags.json"],
)
def test_litellm_batch_samples(con: duckdb.DuckDBPyConnection, name: str) -> None:
    path = LITELLM / name
    events = _decimal_json(path)["batch"]
    calls = [e["body"] for e in events if e["type"] == "generation-create"]
    usage = [c["usageDetails"] for c in calls]
    # LiteLLM's input is prompt_tokens: cache reads and writes included
    cache_read = sum(u["cache_read_input_tokens"] for u in usage)
    cache_write = sum(u["cache_creation_input_tokens"] for u in usage)
    expected = (
        len(calls),
        sum(u["input"] for u in usage) - cache_read - cache_write,
        cache_read,
        cache_write,
        sum(u["output"] for u in usage),
        0,
        sum((Decimal(c["usage"]["totalCost"]) for c in calls), Decimal(0)).quantize(
            Decimal("1e-12")
        ),
    )
    (result,) = load(con, path)
    assert (result.format, result.rows_quarantined, result.records_read) == (
        "langfuse", 0, len(calls),
    )  # fmt: skip
    assert _sums(con) == expected
    (row,) = usage_rows(con)
    assert row["request_id"] == calls[0]["id"]
    assert row["trace_id"] == calls[0]["traceId"]


def test_records_sharing_a_line_are_numbered_by_ordinal(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # a whole trace per JSON line: its calls and its outcome all start on that line
    first = {
        "id": "t-1",
        "timestamp": "2026-06-01T10:00:00Z",
        "name": "qa",
        "observations": [_gen("g-1"), _gen("g-2", usageDetails={"input": "x"})],
        "scores": [{"id": "s-1", "traceId": "t-1", "name": "accepted", "value": 1}],
    }
    second = {"id": "t-2", "name": "qa", "observations": [_gen("g-3", traceId="t-2")]}
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    (result,) = load(con, path)
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (4, 3, 1)
    assert [(r["line_no"], r["request_id"]) for r in usage_rows(con)] == [(1, "g-1"), (4, "g-3")]
    assert quarantine_rows(con) == [
        {"line_no": 2, "reason": "usageDetails.input is not a whole number: 'x'"}
    ]
    assert [o[:4] for o in _outcomes(con)] == [(3, "trace", "t-1", "accepted")]


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(
        ["GENERATION", "SPAN", "AGENT", "2026-01-01T00:00:00Z", "gpt-4o", "t-1", "g-1",
         "generation-create", "generation-update", "score-create", "trace-create", "BOOLEAN",
         "accepted", "user_feedback", "ERROR"]
    ),
)  # fmt: skip
_KEYS = st.sampled_from(
    ["id", "traceId", "type", "startTime", "endTime", "model", "usageDetails", "usage",
     "costDetails", "input", "output", "total", "name", "value", "dataType", "body", "batch",
     "timestamp", "parentObservationId", "level", "metadata", "observations", "scores", "trace",
     "data", "sessionId", "observationId", "cache_read_input_tokens", "output_reasoning"]
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=6)),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(_JSON, min_size=1, max_size=4), as_document=st.booleans())
def test_conservation_for_arbitrary_json(values: list[Any], as_document: bool) -> None:
    """Whatever the JSON, every record is loaded or quarantined, or the file is refused."""
    with db.connect(":memory:") as con, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.json"
        lines = [json.dumps(v) for v in values]
        path.write_text(json.dumps(values, indent=1) if as_document else "\n".join(lines))
        try:
            (result,) = load(con, path, input_format="langfuse")
        except InputError:
            return
        assert result.rows_loaded + result.rows_quarantined == result.records_read
