"""openai-logs: token normalization, streams, batch joins, quarantine, privacy, real samples."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import (
    DATA,
    SAMPLES,
    load,
    quarantine_rows,
    usage_rows,
    without_tokenizer_counts,
)
from tokenaudit import db
from tokenaudit.ingest import openai_logs
from tokenaudit.ingest.openai_parse import NO_STREAM_USAGE, epoch_ts
from tokenaudit.ingest.source import open_source

FIX = DATA / "ingest" / "openai-logs"
BATCH = FIX / "batch"
TRACES = SAMPLES / "traces"
TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def _tokens(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(row[c]) for c in TOKENS)


def _by_line(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, Any]]:
    return {int(r["line_no"]): r for r in usage_rows(con)}


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- token normalization --------------------------------------------------------------------


def test_openai_cached_tokens_are_taken_out_of_input(con: duckdb.DuckDBPyConnection) -> None:
    """1,024 cached of 1,149 prompt tokens: 125 uncached input + 1,024 cache reads."""
    load(con, FIX / "chat_cache.jsonl")
    rows = _by_line(con)
    assert _tokens(rows[1]) == (125, 1024, 0, 0, 353, 0)
    assert _tokens(rows[2]) == (1149, 0, 0, 0, 361, 0)  # the same prompt, no cache hit
    # cache_write_tokens is also part of prompt_tokens: 2048 - 1536 - 256 = 256.
    assert _tokens(rows[3]) == (256, 1536, 256, 0, 512, 448)
    assert rows[1]["model"] == "gpt-4o-mini-2024-07-18"  # the response's model
    assert rows[1]["service_tier"] == "standard"  # "default"
    assert rows[3]["service_tier"] == "flex"
    assert rows[5]["service_tier"] == "priority"


def test_anthropic_keeps_its_separate_cache_counts(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "anthropic.jsonl")
    rows = _by_line(con)
    # input_tokens is uncached already; 3,000 writes = 1,163 (5 minutes) + 1,837 (1 hour).
    assert _tokens(rows[1]) == (4, 0, 1163, 1837, 187, 0)
    assert _tokens(rows[2]) == (4, 3000, 0, 0, 202, 0)
    assert _tokens(rows[4]) == (310, 0, 1163, 0, 95, 0)  # no 5m/1h split given
    assert {r["provider"] for r in rows.values()} == {"anthropic"}
    assert rows[1]["user"] == "u-88"  # metadata.user_id
    assert rows[4]["service_tier"] == "priority"


def test_responses_api_input_and_reasoning(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "responses.jsonl")
    rows = _by_line(con)
    assert _tokens(rows[1]) == (3120 - 2048, 2048, 0, 0, 1460, 1152)
    assert (rows[1]["workflow"], rows[1]["agent"]) == ("vendor-review", "researcher")
    assert (rows[2]["team"], rows[2]["user"]) == ("growth", "u-7")  # echoed by the body
    assert rows[2]["tags"] == {"campaign": "autumn"}
    assert (rows[3]["status"], rows[3]["error_type"]) == ("error", "server_error")
    assert _tokens(rows[3]) == (0,) * 6
    assert rows[4]["status"] == "ok" and rows[4]["output_tokens"] == 256  # incomplete, billed


# --- streams --------------------------------------------------------------------------------


def test_anthropic_stream_output_is_the_last_cumulative_delta(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, FIX / "anthropic_stream.jsonl")
    rows = _by_line(con)
    assert _tokens(rows[1]) == (17, 0, 0, 0, 171, 0)  # not 3 + 171 = 174
    assert _tokens(rows[2]) == (12, 2048, 0, 0, 96, 0)
    assert (rows[4]["status"], rows[4]["error_type"]) == ("error", "overloaded_error")
    assert quarantine_rows(con) == [{"line_no": 3, "reason": NO_STREAM_USAGE}]


def test_openai_streams_keep_the_final_usage(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "openai_stream.jsonl")
    rows = _by_line(con)
    assert _tokens(rows[1]) == (24, 0, 0, 0, 9, 0)
    assert rows[1]["ts"] == "2025-07-22T07:45:09"
    # The mock server's created is in milliseconds; no request id, so the chunk id.
    assert rows[2]["ts"] == "2025-07-22T07:49:59.123000"
    assert rows[2]["request_id"] == "chatcmpl-7UR9mockStream00000000000000"
    assert _tokens(rows[4]) == (40, 0, 0, 0, 120, 64)  # response.completed
    assert quarantine_rows(con) == [{"line_no": 3, "reason": NO_STREAM_USAGE}]


def test_openai_stream_error_is_an_error_call(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    body = 'data: {"error": {"message": "The server had an error", "code": "server_error"}}\n\n'
    record = {
        "request": {
            "uri": "https://api.openai.com/v1/chat/completions",
            "body": {"model": "gpt-4o"},
        },
        "response": {"status": 200, "date": "Tue, 22 Jul 2025 08:00:44 GMT", "body": body},
    }
    load(con, _write(tmp_path / "e.jsonl", [record]))
    (row,) = usage_rows(con)
    assert (row["status"], row["error_type"], row["model"]) == ("error", "server_error", "gpt-4o")
    assert _tokens(row) == (0,) * 6


@pytest.mark.parametrize(
    ("uri", "provider"),
    [
        ("https://api.deepseek.com/chat/completions", "deepseek"),
        ("https://acme.openai.azure.com/openai/deployments/x/chat/completions", "azure"),
        ("https://api.openai.com/v1/chat/completions", "openai"),
        ("http://localhost:4000/v1/chat/completions", "openai"),  # a proxy: the body decides
    ],
)
def test_the_host_names_the_provider_of_an_openai_shaped_answer(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, uri: str, provider: str
) -> None:
    body = {
        "object": "chat.completion",
        "created": 1753171244,
        "model": "deepseek-chat",
        "usage": {"prompt_tokens": 1000000, "completion_tokens": 0, "total_tokens": 1000000},
    }
    record = {
        "request": {"uri": uri, "body": {"model": "deepseek-chat"}},
        "response": {"status": 200, "body": body},
    }
    load(con, _write(tmp_path / "e.jsonl", [record]))
    (row,) = usage_rows(con)
    assert row["provider"] == provider
    if provider == "deepseek":
        assert row["cost_usd"] is not None  # priced as DeepSeek's own model


# --- batch ----------------------------------------------------------------------------------


def test_batch_output_is_joined_to_its_input(
    con: duckdb.DuckDBPyConnection, update_golden: bool
) -> None:
    (r,) = load(con, BATCH / "output.jsonl")
    assert (r.format, r.records_read, r.rows_loaded) == ("openai-logs", 3, 3)
    rows = _by_line(con)
    assert {x["service_tier"] for x in rows.values()} == {"batch"}
    assert _tokens(rows[1]) == (412 - 256, 256, 0, 0, 38, 0)
    assert rows[1]["model"] == "gpt-4o-mini-2024-07-18"
    # Failed requests: zero tokens, the request's model from the input file, the batch's time.
    for line, http, err in ((2, 400, "invalid_request_error"), (3, None, "batch_expired")):
        row = rows[line]
        assert (row["status"], row["http_status"], row["error_type"]) == ("error", http, err)
        assert (row["model"], _tokens(row)) == ("gpt-4o-mini", (0,) * 6)
        assert row["ts"] == rows[1]["ts"]
    assert rows[3]["request_id"] == "batch_req_6814b2c0f5068190c5d6e7f8091a2b3c"
    for row in rows.values():  # request metadata, joined by custom_id
        assert (row["workflow"], row["tenant"]) == ("nightly-summaries", "acme")
        assert row["tags"]["run_date"] == "2025-05-02"
    assert [x["tags"]["custom_id"] for x in rows.values()] == [f"ticket-000{i}" for i in (1, 2, 3)]
    actual = {"rows": usage_rows(con), "quarantine": quarantine_rows(con)}
    golden = BATCH / "output.jsonl.expected.json"
    if update_golden or not golden.exists():
        golden.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    expected["rows"] = without_tokenizer_counts(expected["rows"])
    actual["rows"] = without_tokenizer_counts(actual["rows"])
    assert expected == actual


def test_batch_output_without_its_input(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    shutil.copy(BATCH / "output.jsonl", tmp_path / "output.jsonl")
    (r,) = load(con, tmp_path / "output.jsonl")
    assert (r.rows_loaded, r.rows_quarantined) == (1, 2)
    assert usage_rows(con)[0]["workflow"] is None
    reasons = {q["line_no"]: q["reason"] for q in quarantine_rows(con)}
    assert set(reasons) == {2, 3}
    assert all(x.startswith("missing model (a failed batch request") for x in reasons.values())


def test_failed_batch_without_any_answer_is_quarantined(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    shutil.copy(BATCH / "input.jsonl", tmp_path / "input.jsonl")
    last = (BATCH / "output.jsonl").read_text(encoding="utf-8").splitlines()[2]
    (tmp_path / "expired.jsonl").write_text(last + "\n", encoding="utf-8")
    (r,) = load(con, tmp_path / "expired.jsonl")
    assert (r.rows_loaded, r.rows_quarantined) == (0, 1)
    assert quarantine_rows(con)[0]["reason"].startswith("failed batch request without a timestamp")


def test_batch_input_alone_is_not_recognised(con: duckdb.DuckDBPyConnection) -> None:
    results = {Path(r.path).name: r for r in load(con, BATCH)}
    assert results["input.jsonl"].status == "unrecognised"
    assert results["output.jsonl"].status == "loaded"
    assert not openai_logs.INGESTER.sniff(open_source(BATCH / "input.jsonl", BATCH))


def test_batch_input_forced_is_quarantined(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, BATCH / "input.jsonl", input_format="openai-logs")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (3, 0, 3)
    assert {q["reason"] for q in quarantine_rows(con)} == {
        "batch input line (a request without a response): no usage"
    }


def test_ambiguous_custom_ids_are_not_joined(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    lines = (BATCH / "input.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text(lines[1] + "\n", encoding="utf-8")
    other = json.loads(lines[1])
    other["body"]["model"] = "gpt-4.1-nano"
    _write(tmp_path / "b.jsonl", [other])
    shutil.copy(BATCH / "output.jsonl", tmp_path / "out.jsonl")
    load(con, tmp_path / "out.jsonl")
    reasons = {q["line_no"] for q in quarantine_rows(con)}
    assert reasons == {2, 3}  # ticket-0002 is in both inputs with different requests


# --- quarantine and conservation ------------------------------------------------------------


def _record_lines(path: Path) -> set[int]:
    return {n for n, line in enumerate(path.read_bytes().split(b"\n"), start=1) if line.strip()}


@pytest.mark.parametrize("name", sorted(p.name for p in FIX.glob("*.jsonl")))
def test_every_line_is_loaded_or_quarantined(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = FIX / name
    (r,) = load(con, path, input_format="openai-logs")
    records = _record_lines(path)
    assert r.records_read == len(records)
    assert r.rows_loaded + r.rows_quarantined == r.records_read
    seen = [int(x["line_no"]) for x in usage_rows(con)] + [
        q["line_no"] for q in quarantine_rows(con)
    ]
    assert sorted(seen) == sorted(records)


def test_bad_lines_reasons(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "bad_lines.jsonl")
    assert (r.records_read, r.rows_loaded) == (21, 2)  # 23 lines, 2 blank
    reasons = {q["line_no"]: q["reason"] for q in quarantine_rows(con)}
    assert reasons[2] == "invalid JSON (malformed or truncated line)"
    assert reasons[4] == reasons[5] == "not a JSON object"
    assert reasons[7].startswith("a tokenaudit native line")
    assert reasons[9] == "response body without usage"
    assert reasons[11] == "prompt_tokens (50) is less than cached (64) + cache write (0) tokens"
    assert reasons[12] == "reasoning_tokens (30) exceeds completion_tokens (20)"
    assert reasons[15] == "duplicate request_id (first at line 1)"
    assert reasons[17] == "JSON nested too deeply"
    assert reasons[23] == "invalid UTF-8"
    assert 3 not in reasons and 16 not in reasons  # blank lines are not records


def test_odd_shapes_never_raise(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    odd: list[Any] = [
        {"request": {}, "response": {}},
        {"request": {"body": "not json"}, "response": {"body": 5}},
        {"request": {"body": []}, "response": {"status": "x", "body": {"usage": "none"}}},
        {"request": {"uri": 7}, "response": {"status": 200, "body": "data: {\n\n"}},
        {"request": {}, "response": {"status": 200, "body": "data: [DONE]\n\n"}},
        {"custom_id": 1, "response": "x", "error": None},
        {"custom_id": "a", "response": {"status_code": "200", "body": {"usage": {}}}},
        {"custom_id": "b", "response": None, "error": "boom"},
        {"object": "chat.completion", "usage": {"prompt_tokens": "12"}, "model": ["x"]},
        {"object": "response", "usage": {"input_tokens_details": 3}, "created_at": True},
        {"type": "message", "usage": {"cache_creation": {"ephemeral_1h_input_tokens": 9}}},
        {"usage": {"prompt_tokens": 10**30}},
        {"spend": 0.1, "usage": {}},
        {"object": "chat.completion", "usage": {"prompt_tokens": 10}, "created": 1.7e9,
         "model": "gpt-4o", "metadata": {"workflow": {"nested": True}}},
    ]  # fmt: skip
    path = _write(tmp_path / "odd.jsonl", odd)
    (r,) = load(con, path, input_format="openai-logs")
    assert r.records_read == len(odd)
    assert r.rows_loaded + r.rows_quarantined == len(odd)
    assert all(q["reason"] for q in quarantine_rows(con))


def test_bom_crlf_and_gzip(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    lines = (FIX / "chat_cache.jsonl").read_text(encoding="utf-8").splitlines()
    text = "\ufeff" + "\r\n".join([lines[0], "", lines[2]]) + "\r\n"
    path = tmp_path / "win.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    (r,) = load(con, path)
    assert (r.format, r.records_read, r.rows_loaded) == ("openai-logs", 2, 2)
    assert sorted(_by_line(con)) == [1, 3]


@pytest.mark.parametrize("name", ["bad_lines.jsonl", "batch/output.jsonl"])
def test_staging_in_chunks_gives_the_same_rows(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for chunk in (openai_logs.CHUNK, 2):
        monkeypatch.setattr(openai_logs, "CHUNK", chunk)
        with db.connect(str(tmp_path / f"c{chunk}.duckdb")) as con:
            load(con, FIX / name, input_format="openai-logs")
            results.append((usage_rows(con), quarantine_rows(con)))
    assert results[0] == results[1]
    assert results[0][0]  # something was loaded


def test_json_document_line_numbers(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "array.json")
    assert (r.records_read, r.rows_loaded) == (3, 2)
    assert sorted(_by_line(con)) == [2, 39]  # where each array element starts
    assert [q["line_no"] for q in quarantine_rows(con)] == [36]


@pytest.mark.parametrize(
    ("created", "iso"),
    [
        (1744967550, "2025-04-18T09:12:30"),
        (1744967550.25, "2025-04-18T09:12:30.250000"),
        ("1744967550", "2025-04-18T09:12:30"),
        (1744967550123, "2025-04-18T09:12:30.123000"),
        (1744967550123456, "2025-04-18T09:12:30.123456"),
        (1744967550123456789, "2025-04-18T09:12:30.123456"),
    ],
)
def test_created_units_by_magnitude(created: Any, iso: str) -> None:
    assert epoch_ts(created, "created").isoformat() == iso


# --- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "claimed"),
    [
        ({"ts": "2025-01-01T00:00:00Z", "model": "gpt-4o", "input_tokens": 5}, False),
        ({"ts": 1, "model": "m", "request": {}, "response": {}}, False),
        ({"request_id": "r", "call_type": "acompletion", "spend": 0.1,
          "response": {"usage": {}}, "model": "gpt-4o"}, False),
        ({"standard_logging_object": {"response": {"object": "chat.completion", "usage": {}}}},
         False),
        ({"object": "chat.completion", "usage": {"prompt_tokens": 1}, "response_cost": 0.1},
         False),
        ({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}, False),
        ({"usage": {"prompt_tokens": 1}}, False),
        ({"object": "chat.completion", "usage": {"prompt_tokens": 1}}, True),
        ({"object": "response", "usage": {"input_tokens": 1}}, True),
        ({"type": "message", "usage": {"input_tokens": 1}}, True),
        ({"request": {"body": {}}, "response": {"body": "data: x"}}, True),
        ({"id": "batch_req_1", "custom_id": "a", "response": None, "error": {"code": "x"}}, True),
    ],
)  # fmt: skip
def test_sniff(tmp_path: Path, record: dict[str, Any], claimed: bool) -> None:
    path = _write(tmp_path / "x.jsonl", [record])
    assert openai_logs.INGESTER.sniff(open_source(path, tmp_path)) is claimed


def test_sniff_documents(tmp_path: Path) -> None:
    sniff = openai_logs.INGESTER.sniff
    assert sniff(open_source(FIX / "array.json", tmp_path))
    assert sniff(open_source(FIX / "single.json", tmp_path))
    (tmp_path / "n.json").write_text('[{"ts": 1, "model": "m"}]', encoding="utf-8")
    assert not sniff(open_source(tmp_path / "n.json", tmp_path))
    (tmp_path / "t.txt").write_text("hello\n", encoding="utf-8")
    assert not sniff(open_source(tmp_path / "t.txt", tmp_path))


# --- privacy --------------------------------------------------------------------------------


def test_no_text_or_key_is_stored(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX, input_format="openai-logs")
    load(con, BATCH / "output.jsonl")
    dump = json.dumps(
        [con.execute(f"SELECT * FROM {t}").fetchall() for t in ("usage_events", "quarantine")],
        default=str,
    )
    for canary in ("charged twice", "sk-test-fixture", "Churn rose", "indemnity", "Clause",
                   "limerick", "sampled", "Summarize", "Rate limit reached", "rollout",
                   "triage assistant", "max_tokens is too large", "Overloaded"):  # fmt: skip
        assert canary not in dump, canary


def test_prompt_and_prefix_hashes(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "chat_cache.jsonl")
    rows = con.execute(
        "SELECT line_no, prompt_hash, prefix_hash, api_key_hash FROM usage_events ORDER BY line_no"
    ).fetchall()
    h = {r[0]: r[1:] for r in rows}
    assert h[1][0] == h[2][0] == h[4][0]  # the same request three times
    assert h[1][1] == h[2][1] and h[1][1] != h[1][0]  # system prompt + tools
    assert h[3] == (None, None, None)  # a bare body: no request
    assert h[5][0] not in (None, h[1][0]) and h[5][1] is None  # no system prompt, no tools
    assert all(len(x) == 32 and int(x, 16) >= 0 for x in (h[1][0], h[1][1], h[1][2]))


# --- the real samples in /work/shared -------------------------------------------------------

# Totals computed by reading the files (usage fields summed by hand, OpenAI cached tokens
# taken out of input): calls, input, cache read, cache write, 1h write, output, reasoning.
REAL = {
    "openllmetry-cassettes/decoded/anthropic__test_anthropic_message_streaming_legacy.jsonl": (
        1, 17, 0, 0, 0, 171, 0,
    ),
    "openllmetry-cassettes/decoded/openai__test_chat_reasoning.jsonl": (3, 33, 0, 0, 0, 568, 512),
    "openllmetry-cassettes/decoded/openai__test_chat_streaming.jsonl": (1, 10, 0, 0, 0, 50, 0),
    "openllmetry-cassettes/decoded/openai__test_responses_reasoning.jsonl": (
        2, 22, 0, 0, 0, 458, 384,
    ),
    "openai-batch-litellm/out.jsonl": (1, 51, 0, 0, 0, 95, 0),
    "openai-batch-litellm/out_azure.jsonl": (1, 51, 0, 0, 0, 16, 0),
}  # fmt: skip
needs_samples = pytest.mark.skipif(not TRACES.is_dir(), reason="shared samples not present")


@needs_samples
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_sample_totals(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = TRACES / name
    if not path.is_file():
        pytest.skip(f"{name} not present")
    (r,) = load(con, path)
    assert (r.format, r.rows_quarantined) == ("openai-logs", 0)
    cols = ", ".join(f"sum({c})::BIGINT" for c in TOKENS)
    got = con.execute(f"SELECT count(*), {cols} FROM usage_events").fetchall()[0]
    assert tuple(got) == REAL[name]


@needs_samples
def test_real_samples_load_whole_folders(con: duckdb.DuckDBPyConnection) -> None:
    results = load(
        con, TRACES / "openllmetry-cassettes" / "decoded", TRACES / "openai-batch-litellm"
    )
    by_name = {Path(r.path).name: r for r in results}
    for r in results:
        if r.path.endswith(".jsonl") and Path(r.path).name != "input.jsonl":
            assert r.format == "openai-logs", r.path
            # Only a stream without usage may be quarantined (none in today's samples).
            assert r.rows_quarantined == 0 or {q["reason"] for q in quarantine_rows(con)} == {
                NO_STREAM_USAGE
            }
    assert by_name["input.jsonl"].status == "unrecognised"  # a batch input file
    rows = {r["request_id"]: r for r in usage_rows(con)}
    anthropic = rows["req_01JUK6ATKHDAaXF2Bs7Xprjv"]
    assert (anthropic["provider"], anthropic["ts"]) == ("anthropic", "2024-10-20T22:47:56")
    batch = rows["d5d91547aef5fb21997a8d67fe4785fa"]
    assert (batch["service_tier"], batch["model"]) == ("batch", "gpt-4o-2024-05-13")
    joined = con.execute(
        "SELECT count(*) FROM usage_events WHERE service_tier = 'batch' AND prompt_hash IS NOT NULL"
    ).fetchall()[0][0]
    assert joined == 2  # both outputs joined to input.jsonl by custom_id


def test_sdk_retry_count_header_gives_the_attempt(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    from tests.tokens_fake import openai, write

    first = openai("r1", "gpt-4o-mini", [{"role": "user", "content": "hi"}], prompt_tokens=8)
    retry = openai("r2", "gpt-4o-mini", [{"role": "user", "content": "hi"}], prompt_tokens=8)
    first["request"]["headers"] = {"X-Stainless-Retry-Count": "0"}
    retry["request"]["headers"] = {"x-stainless-retry-count": "2"}
    load(con, write(tmp_path / "x.jsonl", [first, retry]))
    assert con.execute("SELECT request_id, attempt FROM usage_events ORDER BY 1").fetchall() == [
        ("r1", 1),
        ("r2", 3),
    ]
