"""otel: leaf-only counting, token conventions per family, attribution, errors, quarantine,
privacy, detection and the shared OTLP samples."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, SAMPLES, load, quarantine_rows, usage_rows
from tokenaudit import db
from tokenaudit.ingest import detect, otel
from tokenaudit.ingest.otel_attrs import GEN_AI, OPENINFERENCE, provider_id, usage
from tokenaudit.ingest.source import open_source

FIX = DATA / "ingest" / "otel"
TRACES = SAMPLES / "traces"
TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
T0 = 1_760_434_200_000_000_000  # 2025-10-14T09:30:00Z in ns

needs_samples = pytest.mark.skipif(not TRACES.is_dir(), reason="shared samples not present")


def _tokens(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(row[c]) for c in TOKENS)


def _by_span(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    return {str(r["span_id"]): r for r in usage_rows(con)}


# --- building OTLP/JSON in tests ------------------------------------------------------------


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, dict):
        return v  # already an AnyValue
    return {"stringValue": v}


def _span(
    span_id: str,
    attrs: dict[str, Any],
    parent: str | None = None,
    *,
    trace: str = "4bf92f3577b34da6a3ce929d0e0e4736",
    start: int = T0,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": span_id,
        "parentSpanId": parent or "",
        "name": str(attrs.get("gen_ai.operation.name", "span")),
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_500_000_000),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attrs.items()],
        "status": status or {},
    }


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
}


def _use(inp: Any, out: Any = 1) -> dict[str, Any]:
    return {"gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out}


def _chat(
    span_id: str,
    attrs: dict[str, Any] | None = None,
    parent: str | None = None,
    *,
    trace: str = "4bf92f3577b34da6a3ce929d0e0e4736",
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return _span(span_id, {**CHAT, **(attrs or {})}, parent, trace=trace, status=status)


def _export(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    res = [{"key": k, "value": _value(v)} for k, v in (resource or {}).items()]
    scope = {"scope": {"name": "test"}, "spans": spans}
    return {"resourceSpans": [{"resource": {"attributes": res}, "scopeSpans": [scope]}]}


def _write(path: Path, *exports: dict[str, Any], pretty: bool = False) -> Path:
    if pretty:
        path.write_text("\n".join(json.dumps(e, indent=2) for e in exports) + "\n")
    else:
        path.write_text("".join(json.dumps(e) + "\n" for e in exports))
    return path


GEN = {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}


# --- counting: leaf model calls only --------------------------------------------------------


def test_agent_span_repeating_its_two_children_counts_two_calls(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The invoke_agent span sums its two chat spans' usage: 2 calls, not 3."""
    (r,) = load(con, FIX / "genai-agent.json")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (4, 4, 0)
    rows = _by_span(con)
    agent_trace = [x for x in rows.values() if x["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
    assert sorted(x["span_id"] for x in agent_trace) == ["aa8e1a3b4f0d2c77", "b7ad6b7169203331"]
    assert "53995c3f42cd8ad8" not in rows  # the agent span
    assert _tokens(rows["b7ad6b7169203331"]) == (1850 - 1024, 1024, 0, 0, 212, 0)
    assert _tokens(rows["aa8e1a3b4f0d2c77"]) == (2301 - 1920, 1920, 0, 0, 640, 512)
    for x in agent_trace:  # attribution inherited from the agent and workflow spans
        assert (x["agent"], x["workflow"], x["session_id"]) == (
            "triage",
            "ticket-triage",
            "conv_5f1c29a8",
        )
        assert (x["environment"], x["project"]) == ("prod", "support-bot")


def test_minimal_agent_with_two_llm_children(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    spans = [
        _span("00000000000000a1", {**agent, **_use(300, 30)}),
        _chat("00000000000000b1", _use(100, 10), "00000000000000a1"),
        _chat("00000000000000b2", _use(200, 20), "00000000000000a1"),
    ]
    (r,) = load(con, _write(tmp_path / "t.json", _export(spans), pretty=True))
    assert (r.records_read, r.rows_loaded) == (2, 2)
    rows = usage_rows(con)
    assert sum(x["input_tokens"] for x in rows) == 300
    assert {x["agent"] for x in rows} == {"planner"}


def test_repeated_usage_found_across_lines_and_through_tool_spans(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """The agent span comes on a later line (exported later); its LLM call sits under a tool
    span: the agent still has a usage-carrying descendant."""
    child = _chat("00000000000000c1", _use(80, 8), "00000000000000d1")
    tool = _span("00000000000000d1", {"gen_ai.operation.name": "execute_tool"}, "00000000000000e1")
    agent = _span("00000000000000e1", {**CHAT, **_use(80, 8)})
    (r,) = load(con, _write(tmp_path / "t.jsonl", _export([child]), _export([tool, agent])))
    assert (r.records_read, r.rows_loaded) == (1, 1)
    assert usage_rows(con)[0]["span_id"] == "00000000000000c1"


def test_openllmetry_collector_lines(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "openllmetry-collector.jsonl")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (3, 3, 0)
    rows = _by_span(con)
    assert "a0b1c2d3e4f50617" not in rows  # support_agent.agent repeats its children
    openai_row, claude = rows["c1a2b3c4d5e6f708"], rows["d4e5f60718293a4b"]
    # OpenLLMetry's prompt_tokens include cache reads (OpenAI) and writes (its Anthropic
    # instrumentation adds them): 1149 - 1024 and 2065 - 2048.
    assert _tokens(openai_row) == (125, 1024, 0, 0, 353, 0)
    assert _tokens(claude) == (17, 0, 2048, 0, 120, 0)
    for x in (openai_row, claude):
        assert (x["workflow"], x["agent"], x["user"], x["session_id"], x["tenant"]) == (
            "answer_question",
            "support_agent",
            "u-417",
            "sess-77",
            "acme",
        )
        assert (x["environment"], x["project"], x["prompt_version"]) == ("staging", "rag-api", "3")
        assert x["tags"]["plan"] == "enterprise"
        assert x["tags"]["usage_family"] == "openllmetry"
    assert claude["provider"] == "anthropic"  # gen_ai.system "Anthropic"
    emb = rows["1122334455667788"]  # base64 ids in the file
    assert emb["trace_id"] == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert _tokens(emb) == (42, 0, 0, 0, 0, 0)
    assert emb["workflow"] == "index_docs"


def test_openinference_spans(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "openinference-phoenix.json")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (5, 5, 0)
    rows = _by_span(con)
    first = rows["90d94774e8e3724d"]
    assert _tokens(first) == (2400 - 1536, 1536, 0, 0, 310, 0)
    assert (first["agent"], first["project"], first["session_id"], first["user"]) == (
        "Trip planner",
        "travel-agent",
        "sess-3f1",
        "user-88",
    )
    assert (first["workflow"], first["team"], first["prompt_version"]) == (
        "trip-planning",
        "growth",
        "v7",
    )  # from the metadata attribute
    assert rows["98870087af69bf06"]["reported_cost_usd"] == "0.004114000000"
    # OpenInference's Anthropic prompt count includes the cache write: 1760 - 1733.
    assert _tokens(rows["7c4b1d2e3f405162"]) == (27, 0, 1733, 0, 85, 0)
    # Gemini: completion 50 excludes 200 thinking tokens (total = 900 + 50 + 200).
    gemini = rows["5c6d7e8f90123456"]
    assert _tokens(gemini) == (900, 0, 0, 0, 250, 200)
    assert gemini["tags"]["output_excludes_reasoning"] is True
    assert gemini["provider"] == "google"


def test_a_span_with_two_families_counts_once(con: duckdb.DuckDBPyConnection) -> None:
    """google-adk writes gen_ai.usage.* and llm.token_count.* with the same numbers."""
    load(con, FIX / "openinference-phoenix.json")
    adk = _by_span(con)["4b5c6d7e8f901234"]
    assert _tokens(adk) == (512, 0, 0, 0, 64, 0)
    assert adk["tags"]["usage_family"] == "gen_ai"
    assert (adk["provider"], adk["agent"], adk["project"], adk["environment"]) == (
        "google",
        "weather_agent",
        "weather-adk",
        "dev",
    )


def test_family_choice_is_deterministic(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    oi = {"llm.token_count.prompt": 999, "llm.token_count.completion": 99}
    load(
        con, _write(tmp_path / "t.jsonl", _export([_chat("00000000000000f1", {**oi, **_use(10)})]))
    )
    assert _tokens(usage_rows(con)[0]) == (10, 0, 0, 0, 1, 0)


def test_spans_without_usage_are_not_records(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    spans = [
        _chat("0000000000000001", status={"code": 2, "message": "RateLimitError: 429"}),
        _span("0000000000000002", {"llm.usage.total_tokens": 12}),  # a total alone
        _span("0000000000000003", {"gen_ai.operation.name": "execute_tool"}),
    ]
    (r,) = load(con, _write(tmp_path / "t.jsonl", _export(spans)))
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (0, 0, 0)


# --- token conventions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "family", "expected", "flags"),
    [
        # OTel GenAI: input SHOULD include cache reads and writes (Anthropic rule of the spec).
        ({"gen_ai.usage.input_tokens": 1477, "gen_ai.usage.output_tokens": 187,
          "gen_ai.usage.cache_read.input_tokens": 1163,
          "gen_ai.usage.cache_creation.input_tokens": 310}, GEN_AI, (4, 1163, 310, 187, 0), ()),
        # deprecated names and OpenLLMetry's underscore cache name
        ({"gen_ai.usage.prompt_tokens": 1149, "gen_ai.usage.completion_tokens": 353,
          "gen_ai.usage.cache_read_input_tokens": 1024}, GEN_AI, (125, 1024, 0, 353, 0), ()),
        ({"llm.usage.prompt_tokens": 500, "llm.usage.completion_tokens": 50,
          "llm.usage.cache_read_input_tokens": 100}, GEN_AI, (400, 100, 0, 50, 0), ()),
        # reasoning is inside output
        ({"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 228,
          "gen_ai.usage.reasoning.output_tokens": 192}, GEN_AI, (11, 0, 0, 228, 192), ()),
        # a total equal to input + output + cache says the input excludes cache (Strands)
        ({"gen_ai.usage.input_tokens": 4299, "gen_ai.usage.output_tokens": 631,
          "gen_ai.usage.cache_read_input_tokens": 35574,
          "gen_ai.usage.cache_write_input_tokens": 17787, "gen_ai.usage.total_tokens": 58291},
         GEN_AI, (4299, 35574, 17787, 631, 0), ("input_excludes_cache",)),
        # a total equal to input + output says it includes them
        ({"gen_ai.usage.input_tokens": 8, "gen_ai.usage.output_tokens": 2,
          "gen_ai.usage.cache_read.input_tokens": 3, "gen_ai.usage.cache_creation.input_tokens": 1,
          "gen_ai.usage.total_tokens": 10}, GEN_AI, (4, 3, 1, 2, 0), ()),
        # an input smaller than its cached part cannot include it
        ({"gen_ai.usage.input_tokens": 4, "gen_ai.usage.output_tokens": 9,
          "gen_ai.usage.cache_read.input_tokens": 1163}, GEN_AI, (4, 1163, 0, 9, 0),
         ("input_excludes_cache",)),
        # OpenInference: prompt includes cache reads and writes
        ({"llm.token_count.prompt": 2400, "llm.token_count.completion": 310,
          "llm.token_count.prompt_details.cache_read": 1536,
          "llm.token_count.total": 2710}, OPENINFERENCE, (864, 1536, 0, 310, 0), ()),
        ({"llm.token_count.prompt": "190", "llm.token_count.completion": "164",
          "llm.token_count.prompt_details.cache_read": "0",
          "llm.token_count.completion_details.reasoning": "0"}, OPENINFERENCE,
         (190, 0, 0, 164, 0), ()),
        # a completion smaller than its reasoning cannot include it
        ({"llm.token_count.prompt": 10, "llm.token_count.completion": 5,
          "llm.token_count.completion_details.reasoning": 40}, OPENINFERENCE,
         (10, 0, 0, 45, 40), ("output_excludes_reasoning",)),
    ],
)  # fmt: skip
def test_token_conventions(
    attrs: dict[str, Any], family: Any, expected: tuple[int, ...], flags: tuple[str, ...]
) -> None:
    u = usage(attrs, family)
    assert (u.input, u.cache_read, u.cache_write, u.output, u.reasoning) == expected
    assert u.flags == flags


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("openai", "openai"), ("Anthropic", "anthropic"), ("aws.bedrock", "aws"),
        ("azure.ai.openai", "azure"), ("azure.ai.inference", "azure"), ("gcp.vertex_ai", "google"),
        ("gcp.gemini", "google"), ("gcp.vertex.agent", "google"), ("mistral_ai", "mistral"),
        ("x_ai", "x-ai"), ("xai", "x-ai"), ("openai.responses", "openai"), ("groq", "groq"),
        ("strands-agents", None), ("", None),
    ],
)  # fmt: skip
def test_provider_ids(value: str, expected: str | None) -> None:
    assert provider_id(value) == expected


# --- columns --------------------------------------------------------------------------------


def test_errors_keep_the_class_never_the_message(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    u = _use(10)
    long = "ValidationError: 1 validation error for TicketLabel label=secret detail 7781"
    exc = _chat("0000000000000002", u)
    exc["status"] = {"code": "STATUS_CODE_ERROR", "message": "Request timed out."}
    exc["events"] = [
        {
            "name": "exception",
            "attributes": [
                {"key": "exception.type", "value": {"stringValue": "openai.APITimeoutError"}},
                {"key": "exception.message", "value": {"stringValue": "secret detail 7781"}},
            ],
        }
    ]
    spans = [
        _chat("0000000000000001", u, status={"code": 2, "message": long}),
        exc,
        _chat("0000000000000003", {**u, "error.type": "rate_limit_exceeded"}),
        _chat("0000000000000004", u, status={"code": 2, "message": "secret detail 7781"}),
        _chat("0000000000000005", u, status={"code": 1}),
    ]
    load(con, _write(tmp_path / "t.jsonl", _export(spans)))
    got = {r["span_id"][-1]: (r["status"], r["error_type"]) for r in usage_rows(con)}
    assert got == {
        "1": ("error", "ValidationError"),
        "2": ("error", "openai.APITimeoutError"),
        "3": ("error", "rate_limit_exceeded"),
        "4": ("error", None),
        "5": ("ok", None),
    }
    assert "secret detail" not in json.dumps(usage_rows(con))


def test_service_name_is_the_project_unless_better(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    u = _use(10)
    assoc = {**u, "traceloop.association.properties.project": "alpha"}
    a = _export([_chat("0000000000000001", u)], {"service.name": "unknown_service:python"})
    b = _export(
        [_chat("0000000000000002", u, trace="5b8efff798038103d269b633813fc60c")],
        {"service.name": "billing-api", "deployment.environment": "qa"},
    )
    c = _export(
        [_chat("0000000000000003", assoc, trace="6b8efff798038103d269b633813fc60c")],
        {"service.name": "billing-api"},
    )
    load(con, _write(tmp_path / "t.jsonl", a, b, c))
    got = {r["span_id"][-1]: (r["project"], r["environment"]) for r in usage_rows(con)}
    assert got == {"1": (None, None), "2": ("billing-api", "qa"), "3": ("alpha", None)}


def test_ids_timestamps_and_value_encodings(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    span = _chat("0000000000000001", _use({"intValue": 12}, {"doubleValue": 3.0}))
    span["traceId"] = base64.b64encode(bytes(range(1, 17))).decode()
    span["spanId"] = {"type": "Buffer", "data": [0, 0, 0, 0, 0, 0, 0, 9]}
    span["parentSpanId"] = "0000000000000000"
    span["startTimeUnixNano"] = T0 + 123_456_789  # a JSON number
    load(con, _write(tmp_path / "t.jsonl", _export([span])))
    (row,) = usage_rows(con)
    assert row["trace_id"] == bytes(range(1, 17)).hex()
    assert (row["span_id"], row["parent_span_id"]) == ("0000000000000009", None)
    assert row["ts"] == "2025-10-14T09:30:00.123456"
    assert _tokens(row)[0::4] == (12, 3)


def test_the_response_model_is_preferred(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    attrs = {
        **_use(5),
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-1",
    }
    load(con, _write(tmp_path / "t.jsonl", _export([_chat("0000000000000001", attrs)])))
    (row,) = usage_rows(con)
    assert (row["model"], row["request_id"], row["model_id"]) == (
        "gpt-4o-mini-2024-07-18",
        "chatcmpl-1",
        "gpt-4o-mini",
    )


# --- quarantine and line numbers ------------------------------------------------------------


def test_bad_span_in_a_pretty_document_names_its_line(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    spans = [
        _chat("0000000000000001", _use(10)),
        _chat("0000000000000002", _use(-3)),
        _chat("0000000000000003", _use("12.5")),
    ]
    path = _write(tmp_path / "t.json", _export(spans), pretty=True)
    (r,) = load(con, path)
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (3, 1, 2)
    lines = path.read_text().splitlines()
    starts = [
        n for n, ln in enumerate(lines, start=1) if ln.strip() == "{" and '"traceId"' in lines[n]
    ]
    assert [row["line_no"] for row in usage_rows(con)] == starts[:1]
    assert quarantine_rows(con) == [
        {"line_no": starts[1], "reason": "negative gen_ai.usage.input_tokens: -3"},
        {"line_no": starts[2], "reason": "gen_ai.usage.input_tokens is not a whole number: '12.5'"},
    ]


def test_records_sharing_a_line_are_numbered_by_ordinal(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "edge-cases.jsonl")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (8, 3, 5)
    q = quarantine_rows(con)
    assert [x["line_no"] for x in q] == [2, 3, 4, 6, 8]
    assert q[0]["reason"] == (
        "gen_ai.usage.input_tokens is not a whole number: 'n/a' (record on line 1)"
    )
    assert q[3]["reason"].startswith("duplicate span 0102030405060708")
    assert q[3]["reason"].endswith("(first on line 1) (record on line 2)")
    assert q[4]["reason"] == "invalid JSON (malformed or truncated line) (record on line 5)"
    lines = [x["line_no"] for x in usage_rows(con)] + [x["line_no"] for x in q]
    assert sorted(lines) == list(range(1, 9))


def test_a_truncated_document_is_one_quarantined_record(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    text = (FIX / "genai-agent.json").read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    (r,) = load(con, path)
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (1, 0, 1)
    (q,) = quarantine_rows(con)
    assert q["line_no"] == 1
    assert q["reason"].startswith("invalid JSON at line ")
    assert "(malformed or truncated)" in q["reason"]


def test_json_lines_with_a_broken_first_line(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    good = json.dumps(_export([_chat("0000000000000001", _use(4))]))
    path = tmp_path / "t.jsonl"
    path.write_bytes(good[:40].encode() + b"\n" + good.encode() + b"\n\xff\xfe\n")
    (r,) = load(con, path, input_format="otel")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (3, 1, 2)
    assert [x["reason"] for x in quarantine_rows(con)] == [
        "invalid JSON (malformed or truncated line)",
        "invalid UTF-8",
    ]


def test_logs_metrics_and_empty_exports_hold_no_records(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    logs = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "attributes": [
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}}
                                ]
                            }
                        ]
                    }
                ]
            }
        ]
    }
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(logs) + "\n" + json.dumps({"resourceMetrics": []}) + "\n{}\n")
    (r,) = load(con, path)
    assert (r.format, r.records_read) == ("otel", 0)


def test_non_otlp_objects_are_quarantined(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    ok = _export([_chat("0000000000000001", _use(4))])
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(ok) + '\n{"hello": 1}\n[1]\n{"resourceSpans": 3}\n')
    (r,) = load(con, path)
    assert [x["reason"] for x in quarantine_rows(con)] == [
        "not an OTLP/JSON export (no resourceSpans)",
        "not an OTLP/JSON object",
        "resourceSpans is not a list",
    ]
    assert r.rows_loaded == 1


def test_the_same_call_in_two_files_loads_once(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    span = _chat("0000000000000001", {**_use(4), "gen_ai.response.id": "chatcmpl-9"})
    a = _write(tmp_path / "a.jsonl", _export([span]))
    b = _write(tmp_path / "b.jsonl", _export([span], {"service.name": "x"}))
    load(con, a, b)
    assert len(usage_rows(con)) == 1
    assert quarantine_rows(con)[0]["reason"].startswith("request_id already loaded from")


# --- privacy --------------------------------------------------------------------------------


def test_no_content_or_secrets_reach_the_database(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with db.connect(str(path)) as con:
        load(
            con,
            *(
                FIX / n
                for n in (
                    "genai-agent.json",
                    "openllmetry-collector.jsonl",
                    "openinference-phoenix.json",
                )
            ),
        )
        assert len(usage_rows(con)) == 12
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("t.duckdb"))
    for canary in (
        b"CANARY",
        b"jane.doe@example.com",
        b"Refund issued",
        b"refund policy",
        b"Plan 3 days",
        b"Lisbon",
        b"Alfama",
        b"order 5521",
    ):
        assert canary not in data


# --- detection ------------------------------------------------------------------------------


def _sniff(path: Path, tmp_path: Path) -> bool:
    return otel.INGESTER.sniff(open_source(path, tmp_path))


def test_other_formats_fixtures_are_not_claimed(tmp_path: Path) -> None:
    others = [
        p
        for p in (DATA / "ingest").rglob("*")
        if p.is_file() and FIX not in p.parents and not p.name.endswith(".expected.json")
    ]
    assert others
    assert [p for p in others if _sniff(p, tmp_path)] == []


def test_sniffing(tmp_path: Path) -> None:
    export = _export([_chat("0000000000000001")])
    cases = {
        "pretty.json": (json.dumps(export, indent=2), True),
        "bare.json": (json.dumps(export["resourceSpans"][0], indent=2), True),
        "proto-names.jsonl": ('{"resource_spans": [{"scope_spans": []}]}\n', True),
        "array.json": (json.dumps([export]), True),
        "logs.json": ('{\n  "resourceLogs": [\n', True),
        # an HTTP exchange whose request was an OTLP export is not a trace file
        "exchange.jsonl": (json.dumps({"request": {"body": export}, "response": {}}) + "\n", False),
        "nested.json": (json.dumps({"data": export}, indent=2), False),
        "native.jsonl": ('{"ts": "2026-01-01T00:00:00Z", "model": "gpt-4o"}\n', False),
    }
    for name, (body, expected) in cases.items():
        path = tmp_path / name
        path.write_text(body)
        assert _sniff(path, tmp_path) is expected, name


# --- the leaf rule, as a property -----------------------------------------------------------


@st.composite
def _forests(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Spans of a few traces: random parents, usage on random spans."""
    spans: list[dict[str, Any]] = []
    for t in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 8))
        for k in range(n):
            parent = draw(st.integers(-1, k - 1)) if k else -1
            spans.append(
                {
                    "trace": t,
                    "id": k,
                    "parent": parent,
                    "usage": draw(st.none() | st.integers(0, 500)),
                }
            )
    return spans


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(forest=_forests(), per_line=st.integers(1, 5), seed=st.randoms(use_true_random=False))
def test_only_leaf_usage_spans_are_counted(
    tmp_path: Path, forest: list[dict[str, Any]], per_line: int, seed: Any
) -> None:
    def sid(t: int, k: int) -> str:
        return f"{t + 1:08x}{k + 1:08x}"

    spans = []
    for s in forest:
        attrs = {} if s["usage"] is None else _use(s["usage"])
        parent = sid(s["trace"], s["parent"]) if s["parent"] >= 0 else None
        spans.append(_chat(sid(s["trace"], s["id"]), attrs, parent, trace=f"{s['trace'] + 1:032x}"))
    seed.shuffle(spans)  # children may come before their parents, on any line
    lines = [_export(spans[i : i + per_line]) for i in range(0, len(spans), per_line)]
    path = _write(tmp_path / "f.jsonl", *lines)
    rows = otel.stage_rows(open_source(path, tmp_path))

    def has_usage_below(s: dict[str, Any]) -> bool:
        kids = [c for c in forest if c["trace"] == s["trace"] and c["parent"] == s["id"]]
        return any(c["usage"] is not None or has_usage_below(c) for c in kids)

    leaves = [s for s in forest if s["usage"] is not None and not has_usage_below(s)]
    assert len(rows) == len(leaves)
    assert all(r["reason"] is None for r in rows)
    assert sum(r["input_tokens"] for r in rows) == sum(s["usage"] for s in leaves)
    assert len({r["line_no"] for r in rows}) == len(rows)


# --- shared samples -------------------------------------------------------------------------


def _raw_values(path: Path) -> list[Any]:
    """The JSON values of a file, read without tokenaudit: one document, else JSON lines."""
    text = path.read_text(encoding="utf-8")
    try:
        return [json.loads(text)]
    except ValueError:
        return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


def _independent_usage(values: list[Any]) -> tuple[int, dict[str, int]]:
    """Leaf spans with GenAI usage and their raw token sums, computed from the raw JSON."""
    spans = [
        sp
        for v in values
        for rs in v.get("resourceSpans", [])
        for ss in rs.get("scopeSpans", []) + rs.get("instrumentationLibrarySpans", [])
        for sp in ss.get("spans", [])
    ]

    def attrs(sp: dict[str, Any]) -> dict[str, int]:
        return {
            a["key"]: int(next(iter(a["value"].values())))
            for a in sp.get("attributes", [])
            if a["key"] in GEN
        }

    with_usage = {(sp["traceId"].lower(), sp["spanId"].lower()) for sp in spans if attrs(sp)}
    parents = {
        (sp["traceId"].lower(), sp["spanId"].lower()): sp.get("parentSpanId", "").lower()
        for sp in spans
    }
    covered = set()
    for t, s in with_usage:
        p = parents.get((t, s))
        while p and (t, p) in parents and (t, p) not in covered:
            covered.add((t, p))
            p = parents[(t, p)]
    leaves = [
        sp
        for sp in spans
        if attrs(sp) and (sp["traceId"].lower(), sp["spanId"].lower()) not in covered
    ]
    totals = {k: sum(attrs(sp).get(k, 0) for sp in leaves) for k in sorted(GEN)}
    return len(leaves), totals


def _is_otlp(values: list[Any]) -> bool:
    return any(
        isinstance(v, dict) and ("resourceSpans" in v or "resourceLogs" in v) for v in values
    )


@needs_samples
@pytest.mark.parametrize("name", ["trace.json", "logs.json"])
def test_shared_otlp_examples(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = TRACES / "otlp-json-example" / name
    values = _raw_values(path)
    assert _is_otlp(values)
    (r,) = load(con, path)
    assert r.format == "otel"
    calls, totals = _independent_usage(values) if "resourceSpans" in values[0] else (0, {})
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (calls, calls, 0)
    rows = usage_rows(con)
    assert sum(
        x["input_tokens"] + x["cache_read_tokens"] + x["cache_write_tokens"] for x in rows
    ) == totals.get("gen_ai.usage.input_tokens", 0)
    assert sum(x["output_tokens"] for x in rows) == totals.get("gen_ai.usage.output_tokens", 0)


@needs_samples
def test_shared_recorded_exchanges_stay_with_openai_logs(tmp_path: Path) -> None:
    """The OpenLLMetry cassettes are HTTP exchanges, not OTLP: openai-logs keeps them."""
    folder = TRACES / "openllmetry-cassettes"
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("LICENSE")]
    assert files
    for path in files:
        src = open_source(path, tmp_path)
        assert not otel.INGESTER.sniff(src), path.name
        if path.suffix == ".jsonl":
            assert not _is_otlp(_raw_values(path))
            found = detect(src)
            assert found is not None and found.name == "openai-logs", path.name


def test_fixture_totals_match_an_independent_count(con: duckdb.DuckDBPyConnection) -> None:
    """genai-agent.json, counted from the raw JSON (every input there includes its cache)."""
    path = FIX / "genai-agent.json"
    calls, totals = _independent_usage(_raw_values(path))
    load(con, path)
    rows = usage_rows(con)
    assert len(rows) == calls == 4
    assert (
        sum(x["input_tokens"] + x["cache_read_tokens"] + x["cache_write_tokens"] for x in rows)
        == totals["gen_ai.usage.input_tokens"]
    )
    assert sum(x["output_tokens"] for x in rows) == totals["gen_ai.usage.output_tokens"]
    assert sum(Decimal(x["cost_usd"]) for x in rows) > 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(
    ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "llm.token_count.prompt",
     "gen_ai.request.model", "metadata", "traceloop.span.kind", "error.type", "llm.cost.total"]
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "traceId",
                "spanId",
                "parentSpanId",
                "startTimeUnixNano",
                "status",
                "events",
                "name",
                "endTimeUnixNano",
            ]
        ),
        _JSON,
        max_size=4,
    ),
    attrs=st.lists(st.tuples(_KEYS, _JSON), max_size=4),
)
def test_odd_values_never_crash(
    tmp_path: Path, fields: dict[str, Any], attrs: list[tuple[str, Any]]
) -> None:
    span = {**_chat("0000000000000001", _use(5)), **fields}
    span["attributes"] += [{"key": k, "value": {"stringValue": v} if v else v} for k, v in attrs]
    path = _write(tmp_path / "f.jsonl", _export([span]))
    rows = otel.stage_rows(open_source(path, tmp_path))
    assert len(rows) <= 1
    assert all(r["reason"] is None or len(r["reason"]) < 200 for r in rows)
