"""LiteLLM SpendLogs / StandardLoggingPayload: token normalization, attribution, costs,
quarantine, the JSON, JSON lines and CSV forms agreeing, detection, and the real samples."""

from __future__ import annotations

import csv
import gzip
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import DATA, SAMPLES, load, quarantine_rows, usage_rows
from tokenaudit.ingest import detect, litellm_records
from tokenaudit.ingest.litellm import INGESTER, map_sql
from tokenaudit.ingest.source import open_source
from tokenaudit.model import USAGE_STAGE_NAMES

FIXTURES = DATA / "ingest" / "litellm"
REAL = SAMPLES / "traces" / "litellm"


def _row(request_id: str, **fields: Any) -> dict[str, Any]:
    """A minimal SpendLogs row as the export writes it."""
    row: dict[str, Any] = {
        "request_id": request_id,
        "call_type": "acompletion",
        "spend": 0.0001,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "startTime": "2026-11-03 09:00:00.000000",
        "endTime": "2026-11-03 09:00:01.000000",
        "model": "gpt-4o-mini",
        "custom_llm_provider": "openai",
        "status": "success",
        "metadata": "{}",
        "request_tags": "[]",
        "cache_hit": "None",
    }
    row.update(fields)
    return row


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _by_id(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r for r in usage_rows(con)}


def _without_line_no(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "line_no"} for r in rows]


# --- token normalization --------------------------------------------------------------------


def test_anthropic_prompt_tokens_are_split_into_uncached_input_and_cache(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, FIXTURES / "spend_logs.jsonl")
    rows = _by_id(con)
    claude = rows["chatcmpl-5b1e0c2a-anthropic-cache"]
    # LiteLLM's prompt_tokens 13529 = 14 uncached + 11515 cache read + 2000 cache write.
    assert (claude["input_tokens"], claude["cache_read_tokens"], claude["cache_write_tokens"]) == (
        14,
        11515,
        2000,
    )
    assert claude["output_tokens"] == 420
    openai = rows["chatcmpl-9f3c-openai-cached"]
    # OpenAI: prompt_tokens 1149 includes prompt_tokens_details.cached_tokens 1024.
    assert (openai["input_tokens"], openai["cache_read_tokens"]) == (125, 1024)
    reasoning = rows["chatcmpl-0c7e-o3-retry"]
    assert (reasoning["output_tokens"], reasoning["reasoning_tokens"]) == (3000, 2600)


def test_one_hour_cache_writes_are_split_out(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "standard_logging.json")
    row = _by_id(con)["chatcmpl-3e8a51d2-bedrock-fallback"]
    assert row["input_tokens"] == 9522 - 5500 - 4000
    assert (row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (1000, 3000)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # cache_read_input_tokens wins; a zero falls through to prompt_tokens_details
        (
            {"cache_read_input_tokens": 0, "prompt_tokens_details": {"cached_tokens": 30}},
            (70, 30, 0),
        ),
        (
            {"cache_read_input_tokens": 40, "prompt_tokens_details": {"cached_tokens": 40}},
            (60, 40, 0),
        ),
        ({"prompt_tokens_details": {"cache_creation_tokens": 25}}, (75, 0, 25)),
        ({"cache_read_input_tokens": 50, "cache_creation_input_tokens": 50}, (0, 50, 50)),
    ],
)
def test_cache_counts_come_from_usage_object(
    tmp_path: Path,
    con: duckdb.DuckDBPyConnection,
    usage: dict[str, Any],
    expected: tuple[int, int, int],
) -> None:
    path = _write(tmp_path / "u.jsonl", [_row("r", metadata=json.dumps({"usage_object": usage}))])
    (r,) = load(con, path, input_format="litellm")
    assert r.rows_loaded == 1
    (row,) = usage_rows(con)
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == expected


def test_usage_falls_back_to_response_usage(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    response = {
        "choices": [{"message": {"content": "CANARY"}}],
        "usage": {"cache_read_input_tokens": 60},
    }
    path = _write(tmp_path / "r.jsonl", [_row("r", response=json.dumps(response))])
    load(con, path, input_format="litellm")
    (row,) = usage_rows(con)
    assert (row["input_tokens"], row["cache_read_tokens"]) == (40, 60)


def test_cache_larger_than_prompt_is_quarantined(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    usage = {"cache_read_input_tokens": 80, "cache_creation_input_tokens": 50}
    path = _write(tmp_path / "n.jsonl", [_row("r", metadata={"usage_object": usage})])
    (r,) = load(con, path, input_format="litellm")
    assert (r.rows_loaded, r.rows_quarantined) == (0, 1)
    assert quarantine_rows(con) == [
        {
            "line_no": 1,
            "reason": "prompt_tokens (100) is less than cache read (80) + cache write (50): "
            "cannot derive uncached input",
        }
    ]


# --- attribution ----------------------------------------------------------------------------


def test_tags_and_metadata_fill_workflow_team_and_friends(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "spend_logs.jsonl")
    rows = _by_id(con)
    claude = rows["chatcmpl-5b1e0c2a-anthropic-cache"]
    # spend_logs_metadata -> workflow/agent/prompt_version; "env:prod" tag -> environment;
    # the key's team alias -> team; the key's user -> user.
    assert {k: claude[k] for k in ("workflow", "agent", "prompt_version", "environment")} == {
        "workflow": "ticket-triage",
        "agent": "triage-bot",
        "prompt_version": "v7",
        "environment": "prod",
    }
    assert (claude["team"], claude["user"]) == ("support", "u-17")
    assert claude["tags"]["request_tags"] == ["support-queue"]
    assert claude["tags"]["key_alias"] == "support-prod"
    openai = rows["chatcmpl-9f3c-openai-cached"]
    # "feature:..." -> workflow, "tenant=..." -> tenant; team_id beats the "team:search" tag.
    assert (openai["workflow"], openai["tenant"], openai["team"]) == (
        "ticket-summary",
        "acme",
        "team-7f3a",
    )
    assert openai["tags"]["team"] == "search"
    assert openai["user"] == "cust-42"  # end_user when user is empty
    cached = rows["chatcmpl-77aa_cache_hit1793628300.5"]
    # No key team: team from spend_logs_metadata, tenant from requester_metadata,
    # workflow from request_tags; requester_metadata's own "tags" are not repeated.
    assert (cached["team"], cached["tenant"], cached["workflow"]) == (
        "platform",
        "globex",
        "faq-bot",
    )
    assert "tags" not in cached["tags"] and "spend_logs_metadata" not in cached["tags"]


def test_retries_share_a_trace(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "spend_logs.jsonl")
    rows = _by_id(con)
    failed, retry = rows["chatcmpl-0c7d-o3-ratelimited"], rows["chatcmpl-0c7e-o3-retry"]
    assert failed["trace_id"] == retry["trace_id"] == "trace-c3"
    assert (failed["status"], failed["error_type"], failed["http_status"]) == (
        "error",
        "RateLimitError",
        429,
    )
    assert retry["status"] == "ok" and retry["error_type"] is None


def test_router_retries_set_the_attempt(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "standard_logging.json")
    rows = _by_id(con)
    failed = rows["4b9e2f0a-7c1d-4e55-9a3b-failure01"]
    success = rows["chatcmpl-3e8a51d2-bedrock-fallback"]
    assert failed["trace_id"] == success["trace_id"] == "trace-e5"
    # hidden_params.additional_headers: x-litellm-attempted-retries 1, -fallbacks "0"
    assert (failed["attempt"], success["attempt"]) == (1, 2)
    assert (failed["error_type"], failed["http_status"]) == ("ServiceUnavailableError", 503)


def test_sensitive_metadata_is_dropped_and_secrets_redacted(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for name in ("spend_logs.jsonl", "spend_logs.csv", "standard_logging.json", "bad_lines.jsonl"):
        load(con, FIXTURES / name)
    row = _by_id(con)["chatcmpl-0c7e-o3-retry"]
    assert row["tags"] == {
        "call_type": "acompletion",
        "debug_key": "[redacted]",
        "pr": 4821,
        "workflow": "code-review",
    }
    every_value = json.dumps(
        [
            con.execute(f"SELECT * FROM {table}").fetchall()
            for table in ("usage_events", "quarantine", "files")
        ],
        default=str,
    )
    assert "CANARY" not in every_value
    key = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
    assert key not in every_value  # the LiteLLM key hash is stored keyed-hashed, plus last 4


def test_cache_hit_keeps_tokens_and_is_tagged(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "spend_logs.jsonl")
    rows = _by_id(con)
    hit = rows["chatcmpl-77aa_cache_hit1793628300.5"]
    assert hit["tags"]["cache_hit"] is True
    assert (hit["status"], hit["input_tokens"], hit["output_tokens"]) == ("ok", 1200, 180)
    assert not any(
        "cache_hit" in (r["tags"] or {}) for r in rows.values() if r is not hit
    )  # "False" and "None" are not hits


# --- costs ----------------------------------------------------------------------------------


def test_reported_cost_is_kept_apart_from_computed_cost(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    load(con, FIXTURES / "spend_logs.jsonl", FIXTURES / "standard_logging.json")
    rows = _by_id(con)
    hit = rows["chatcmpl-77aa_cache_hit1793628300.5"]
    assert Decimal(hit["reported_cost_usd"]) == 0  # LiteLLM served it from its cache
    assert Decimal(hit["cost_usd"]) == Decimal("0.000288")  # 1200 x 0.15/M + 180 x 0.60/M
    bedrock = rows["chatcmpl-3e8a51d2-bedrock-fallback"]
    assert Decimal(bedrock["reported_cost_usd"]) == Decimal("0.032646")
    assert Decimal(bedrock["cost_usd"]) == Decimal("0.025896")
    # An unpriced model keeps LiteLLM's number but has no cost of ours.
    path = _write(
        tmp_path / "x.jsonl", [_row("x", model="in-house-llm-v2", spend=0.00022500000000000002)]
    )
    load(con, path, input_format="litellm")
    row = _by_id(con)["x"]
    assert (row["cost_usd"], row["reported_cost_usd"]) == (None, "0.000225000000")


# --- quarantine -----------------------------------------------------------------------------


def test_bad_lines_are_quarantined_with_reasons_and_line_numbers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (r,) = load(con, FIXTURES / "bad_lines.jsonl")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (17, 2, 15)
    reasons = {q["line_no"]: q["reason"] for q in quarantine_rows(con)}
    assert reasons[2] == "invalid JSON (malformed or truncated record)"
    assert reasons[4] == "not a JSON object"
    assert reasons[5] == "missing startTime"
    assert reasons[6] == "missing model"
    assert reasons[7] == "negative prompt_tokens: -5"
    assert reasons[8] == "prompt_tokens is not a whole number"  # the text itself is not echoed
    assert reasons[10] == "unknown status: pending (expected success or failure)"
    assert reasons[12] == "duplicate request_id (first at line 1)"
    assert reasons[16] == "invalid UTF-8"
    assert reasons[18] == "prompt_tokens is not a whole number: 12.5"
    assert 3 not in reasons and 19 not in reasons  # blank lines are not records
    assert sorted(x["line_no"] for x in usage_rows(con)) == [1, 17]


def test_truncated_array_keeps_the_elements_before_the_damage(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    text = json.dumps([_row("a"), _row("b"), _row("c")], indent=2)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.rindex('"request_id": "c"') + 10])
    (r,) = load(con, path, input_format="litellm")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (3, 2, 1)
    (q,) = quarantine_rows(con)
    assert q["line_no"] == 3 and q["reason"].startswith("invalid JSON at line")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"prompt_tokens": True}, "prompt_tokens is not a whole number"),
        ({"completion_tokens": "9" * 20}, "completion_tokens out of range"),
        ({"model": {"name": "gpt-4o"}}, "model is not a string"),
        ({"startTime": "2026-13-45 09:00:00"}, "invalid startTime: 2026-13-45 09:00:00"),
        ({"startTime": 1.0}, "startTime out of range: 1970-01-01 00:00:01"),
        ({"spend": "1e400"}, "spend is not a finite number"),
        (
            {"metadata": {"usage_object": {"cache_read_input_tokens": -1}}},
            "negative cache_read_input_tokens: -1",
        ),
    ],
)
def test_wrong_types_are_quarantined(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, fields: dict[str, Any], reason: str
) -> None:
    path = _write(tmp_path / "t.jsonl", [_row("r", **fields)])
    (r,) = load(con, path, input_format="litellm")
    assert (r.records_read, r.rows_quarantined) == (1, 1)
    assert quarantine_rows(con) == [{"line_no": 1, "reason": reason}]


@pytest.mark.parametrize(
    "fields",
    [
        {"metadata": "{broken"},  # double-encoded but not JSON: ignored, not fatal
        {"metadata": "[1, 2]"},
        {"request_tags": "not json"},
        {"request_tags": {"a": 1}},
        {"prompt_tokens": 100.0},
        {"prompt_tokens": "100"},
    ],
)
def test_odd_but_harmless_values_still_load(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, fields: dict[str, Any]
) -> None:
    path = _write(tmp_path / "t.jsonl", [_row("r", **fields)])
    (r,) = load(con, path, input_format="litellm")
    assert (r.rows_loaded, r.rows_quarantined) == (1, 0)
    (row,) = usage_rows(con)
    assert (row["input_tokens"], row["output_tokens"]) == (100, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("   \n\n", (0, 0)),
        ("[]", (0, 0)),
        ('[{"request_id": "a"}, 7]', (0, 2)),
        (json.dumps(_row("a"), indent=2), (1, 0)),  # one pretty-printed object
        (json.dumps(_row("a"), indent=2) + "\n" + json.dumps(_row("b"), indent=2), (2, 0)),
        (json.dumps([_row("a"), _row("b")]), (2, 0)),
    ],
)
def test_json_document_forms(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, text: str, expected: tuple[int, int]
) -> None:
    path = tmp_path / "doc.json"
    path.write_text(text)
    (r,) = load(con, path, input_format="litellm")
    assert (r.rows_loaded, r.rows_quarantined) == expected


def test_callback_kwargs_lines_and_gzip(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    slp = {
        "id": "slp-1",
        "trace_id": "t-1",
        "call_type": "acompletion",
        "response_cost": 0.5,
        "status": "success",
        "startTime": 1793696400.0,
        "endTime": 1793696401.25,
        "model": "gpt-4o",
        "custom_llm_provider": "openai",
        "prompt_tokens": 30,
        "completion_tokens": 4,
        "metadata": {"user_api_key_hash": "abc123def456", "usage_object": None},
    }
    kwargs = {"messages": [{"role": "user", "content": "CANARY"}], "standard_logging_object": slp}
    path = tmp_path / "callbacks.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(kwargs) + "\n").encode()))
    (r,) = load(con, path)
    assert (r.format, r.rows_loaded) == ("litellm", 1)
    (row,) = usage_rows(con)
    assert (row["request_id"], row["trace_id"], row["ts"], row["latency_ms"]) == (
        "slp-1",
        "t-1",
        "2026-11-03T09:00:00",
        1250.0,
    )
    assert (row["input_tokens"], row["output_tokens"], row["api_key_last4"]) == (30, 4, "f456")


def test_jsonl_with_a_broken_first_line_is_read_line_by_line(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"request_id": "x", "spend":\n'
        + json.dumps(_row("a"))
        + "\n"
        + json.dumps(_row("b"))
        + "\n"
    )
    (r,) = load(con, path, input_format="litellm")
    assert (r.rows_loaded, r.rows_quarantined) == (2, 1)
    assert [q["line_no"] for q in quarantine_rows(con)] == [1]


def test_deeply_nested_first_line_does_not_hide_the_rest(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    deep = json.dumps(_row("a"))[:-1] + ', "response": ' + "[" * 50_000 + "]" * 50_000 + "}"
    path = tmp_path / "deep.jsonl"
    path.write_text(deep + "\n" + json.dumps(_row("b")) + "\n")
    (r,) = load(con, path, input_format="litellm")
    assert (r.records_read, r.rows_loaded) == (2, 2)


def test_deeply_nested_json_is_quarantined_not_crashing(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.json"
    path.write_text("[" + json.dumps(_row("a")) + ", " + deep + "]")
    (r,) = load(con, path, input_format="litellm")
    assert r.rows_loaded + r.rows_quarantined == r.records_read
    assert r.rows_loaded == 1 and r.rows_quarantined == 1


# --- the forms agree --------------------------------------------------------------------------


def _rows_of(path: Path, **kw: Any) -> list[dict[str, Any]]:
    from tokenaudit import db

    with db.connect(":memory:") as c:
        (r,) = load(c, path, input_format="litellm", **kw)
        assert r.rows_quarantined == 0
        return usage_rows(c)


def test_csv_json_and_jsonl_give_the_same_rows(tmp_path: Path) -> None:
    jsonl = _rows_of(FIXTURES / "spend_logs.jsonl")
    as_csv = _rows_of(FIXTURES / "spend_logs.csv")
    array = tmp_path / "spend_logs.json"
    array.write_text(
        json.dumps(
            [json.loads(x) for x in (FIXTURES / "spend_logs.jsonl").read_text().splitlines()]
        )
    )
    as_array = _rows_of(array)
    assert len(jsonl) == 5
    assert _without_line_no(as_csv) == _without_line_no(jsonl) == _without_line_no(as_array)
    # CSV line numbers are physical lines: the first record's metadata spans 35 lines.
    assert [r["line_no"] for r in as_csv] == [2, 37, 38, 39, 40]
    assert [r["line_no"] for r in as_array] == [1, 2, 3, 4, 5]


def test_csv_exact_reader_agrees_with_the_fast_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _rows_of(FIXTURES / "spend_logs.csv")

    def no_fast(*args: Any) -> bool:
        return False

    monkeypatch.setattr(litellm_records, "_fast", no_fast)
    assert _rows_of(FIXTURES / "spend_logs.csv") == fast


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_fast_reader_is_used_for_a_clean_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str
) -> None:
    reference = _rows_of(FIXTURES / "spend_logs.csv")
    rows = list(csv.reader(io.StringIO((FIXTURES / "spend_logs.csv").read_text(), newline="")))
    path = tmp_path / "export.csv"
    path.write_bytes(_csv(rows, newline).encode())

    def no_exact(*args: Any) -> None:
        raise AssertionError("the exact reader should not be needed")

    monkeypatch.setattr(litellm_records, "_exact", no_exact)
    assert _rows_of(path) == reference


def _csv(rows: list[list[str]], newline: str = "\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows(rows)
    return buf.getvalue()


def test_csv_broken_rows_get_line_numbers(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    head = [
        "request_id",
        "call_type",
        "spend",
        "prompt_tokens",
        "completion_tokens",
        "startTime",
        "model",
        "metadata",
    ]
    good = [
        "a",
        "acompletion",
        "0.001",
        "10",
        "5",
        "2026-11-03 09:00:00",
        "gpt-4o-mini",
        '{"x":\n1}',
    ]
    text = (
        _csv([head, good], "\r\n")  # lines 1-3 (CRLF, a field over two lines)
        + "\r\n"  # line 4: blank
        + "b,acompletion,0.001,10\r\n"  # line 5: too few fields
        + _csv([["c", *good[1:]]], "\r\n")  # lines 6-7
        + 'd,acompletion,"0.001,10,5,2026-11-03,gpt-4o-mini,{}\r\n'  # line 8: unterminated quote
    )
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode())
    (r,) = load(con, path, input_format="litellm")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (4, 2, 2)
    assert [x["line_no"] for x in usage_rows(con)] == [2, 6]
    assert quarantine_rows(con) == [
        {"line_no": 5, "reason": "expected 8 fields, found 4"},
        {"line_no": 8, "reason": "malformed CSV row: unexpected end of data"},
    ]


# --- detection --------------------------------------------------------------------------------


def _sniff(tmp_path: Path, name: str, text: str) -> bool:
    path = tmp_path / name
    path.write_text(text)
    return INGESTER.sniff(open_source(path, tmp_path))


def test_sniff_claims_litellm_files(tmp_path: Path) -> None:
    assert _sniff(tmp_path, "a.jsonl", json.dumps(_row("a")) + "\n")
    slp = {"id": "x", "call_type": "acompletion", "response_cost": 0.1, "startTime": 1.0}
    assert _sniff(tmp_path, "b.json", json.dumps([slp], indent=2))
    assert _sniff(tmp_path, "c.json", json.dumps({"messages": [], "standard_logging_object": slp}))
    assert _sniff(tmp_path, "e.json", json.dumps([_row("a"), _row("b")]))  # an array on one line
    header = "request_id,call_type,api_key,spend,startTime,model\n"
    assert _sniff(tmp_path, "d.csv", header + "a,acompletion,,0.1,2026-11-03,gpt-4o\n")


def test_sniff_leaves_other_formats_alone(tmp_path: Path) -> None:
    native = {
        "ts": "2026-11-02T14:03:11Z",
        "model": "gpt-4o-mini",
        "input_tokens": 3,
        "call_type": "x",
        "spend": 1,
    }
    assert not _sniff(tmp_path, "a.jsonl", json.dumps(native) + "\n")
    openai = {
        "request": {"model": "gpt-4o-mini", "messages": []},
        "response": {"id": "chatcmpl-1", "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
    }
    assert not _sniff(tmp_path, "b.jsonl", json.dumps(openai) + "\n")
    assert not _sniff(tmp_path, "c.csv", "date,model,cost_usd\n2026-11-03,gpt-4o,1.0\n")
    assert not _sniff(tmp_path, "d.json", "[1, 2, 3]")


@pytest.mark.parametrize("name", ["spend_logs.jsonl", "spend_logs.csv", "standard_logging.json"])
def test_fixtures_are_detected(tmp_path: Path, name: str) -> None:
    found = detect(open_source(FIXTURES / name, tmp_path))
    assert found is not None and found.name == "litellm"


def test_mapping_produces_exactly_the_stage_columns(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TEMP TABLE empty_rows (line_no BIGINT, bad VARCHAR, doc VARCHAR)")
    names = [d[0] for d in con.execute(map_sql("empty_rows"), {"secret": "s"}).description]
    assert sorted(names) == sorted(["line_no", "reason", *USAGE_STAGE_NAMES])


# --- the real samples ---------------------------------------------------------------------------

# Read off the files by hand: prompt/completion tokens, no cache use, LiteLLM's cost.
REAL_EXPECTED = {
    "spend_logs_payload.json": ("2025-01-24T09:20:46.847371", "gpt-4o", 10, 20, "0.000225000000"),
    "standard_logging_payload.json": (
        "2025-01-24T09:20:46.847371",
        "gpt-4o",
        10,
        20,
        "0.000225000000",
    ),
    # callback kwargs: the standard_logging_object's float startTime 1750615148.162725
    "captured_kwargs.json": (
        "2025-06-22T17:59:08.162725",
        "arn:aws:bedrock:us-west-2:1234567890123:inference-profile/"
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        14,
        67,
        "0.001047000000",
    ),
}


@pytest.mark.parametrize("name", sorted(REAL_EXPECTED))
def test_real_samples(name: str, tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = REAL / name
    if not path.is_file():
        pytest.skip("shared LiteLLM samples not available")
    assert detect(open_source(path, tmp_path)) is INGESTER
    (r,) = load(con, path)
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == ("litellm", 1, 1, 0)
    (row,) = usage_rows(con)
    ts, model, prompt, completion, reported = REAL_EXPECTED[name]
    assert (row["ts"], row["model"], row["reported_cost_usd"]) == (ts, model, reported)
    cached = row["cache_read_tokens"] + row["cache_write_tokens"] + row["cache_write_1h_tokens"]
    assert (row["input_tokens"], cached, row["output_tokens"], row["reasoning_tokens"]) == (
        prompt,
        0,
        completion,
        0,
    )
    assert row["status"] == "ok"
