"""Gateway request logs (Helicone, Portkey, Cloudflare AI Gateway): token conventions,
money units, dedupe, attribution and privacy, quarantine reasons, record splitting and
detection. Expected values are computed from the raw files with json/csv + Decimal."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, load, quarantine_rows, usage_rows
from tokenaudit import db
from tokenaudit.errors import InputError
from tokenaudit.ingest import detect, gateways
from tokenaudit.ingest.source import open_source

INGEST = DATA / "ingest"
HELICONE = INGEST / "helicone"
PORTKEY = INGEST / "portkey"
CLOUDFLARE = INGEST / "cloudflare-ai-gateway"
OURS = ("helicone", "portkey", "cloudflare-ai-gateway")


def _by_id(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r for r in usage_rows(con)}


def _tokens(row: dict[str, Any]) -> tuple[int, ...]:
    return (
        row["input_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["cache_write_1h_tokens"],
        row["output_tokens"],
        row["reasoning_tokens"],
    )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines() if line]


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- Helicone -------------------------------------------------------------------------------


def test_helicone_prompt_tokens_are_uncached_and_cache_is_apart(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, HELICONE / "export.jsonl", input_format="helicone")
    rows = _by_id(con)
    # OpenAI: Helicone stored prompt_tokens 125 = 1149 - 1024 cached (subtracted already).
    assert _tokens(rows["5f1c2b7e-8a4d-4e0a-b1a2-6c3d9e8f7a01"]) == (125, 1024, 0, 0, 353, 0)
    # Anthropic: uncached input, cache write and cache read as three columns.
    assert _tokens(rows["a3e5c7d9-1b2f-4c6e-8a0d-2f4b6d8e0a13"]) == (14, 11515, 2000, 0, 420, 0)
    # reasoning_tokens is a column of its own: output = completion + reasoning.
    assert _tokens(rows["0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"]) == (800, 0, 0, 0, 500, 320)


def test_helicone_cost_units(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    load(con, HELICONE / "export.jsonl", HELICONE / "clickhouse_rows.jsonl")
    rows = _by_id(con)
    # API rows: cost already in USD (float), kept exactly as written.
    assert rows["5f1c2b7e-8a4d-4e0a-b1a2-6c3d9e8f7a01"]["reported_cost_usd"] == "0.000307350000"
    # An API row with a whole-number cost >= 1000 is in nano-dollars: 8e6 / 1e9.
    assert rows["7c6b5a49-3827-4615-9c8b-7a6958473625"]["reported_cost_usd"] == "0.008000000000"
    # Raw ClickHouse rows: UInt64 USD x 1e9, quoted by JSONEachRow.
    raw = [r for r in _jsonl(HELICONE / "clickhouse_rows.jsonl") if r["cost"] is not None]
    expected = {r["request_id"]: Decimal(r["cost"]) / Decimal(10**9) for r in raw}
    for rid, usd in expected.items():
        assert Decimal(rows[rid]["reported_cost_usd"]) == usd
    legacy = _write(
        tmp_path / "legacy.jsonl",
        [
            {
                "request_id": "r-legacy",
                "request_created_at": "2026-01-01T00:00:00Z",
                "response_status": 200,
                "model": "gpt-4o-mini",
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "costUSD": 0.0000027,
            }
        ],
    )
    load(con, legacy, input_format="helicone")
    assert _by_id(con)["r-legacy"]["reported_cost_usd"] == "0.000002700000"


def test_helicone_costs_sum_exactly(con: duckdb.DuckDBPyConnection) -> None:
    load(con, HELICONE / "export.jsonl")
    records = _jsonl(HELICONE / "export.jsonl")
    seen: dict[str, Decimal] = {}
    for r in records:  # the repeated request is counted once
        cost = Decimal(r["cost"])
        seen[r["request_id"]] = (
            cost / 10**9 if cost == cost.to_integral() and cost >= 1000 else cost
        )
    total = con.execute("SELECT sum(reported_cost_usd) FROM usage_events").fetchall()[0][0]
    assert total == sum(seen.values())


def test_helicone_versions_keep_the_latest_updated_at(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    load(con, HELICONE / "clickhouse_rows.jsonl")
    row = _by_id(con)["aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee2"]
    assert row["line_no"] == 3 and _tokens(row) == (1800, 0, 6000, 0, 1024, 0)
    assert quarantine_rows(con) == [
        {"line_no": 2, "reason": "request_id repeated: the version at line 3 is kept"}
    ]
    # The newest version wins even when it comes first.
    lines = (HELICONE / "clickhouse_rows.jsonl").read_text().splitlines()
    swapped = _write(tmp_path / "swapped.jsonl", [json.loads(lines[2]), json.loads(lines[1])])
    with db.connect(":memory:") as other:
        load(other, swapped, input_format="helicone")
        (kept,) = usage_rows(other)
        assert kept["line_no"] == 1 and kept["output_tokens"] == 1024
        assert quarantine_rows(other)[0]["reason"].endswith("the version at line 1 is kept")


def test_helicone_overlapping_pages_are_counted_once(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, HELICONE / "export.jsonl")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (7, 6, 1)
    assert quarantine_rows(con) == [
        {"line_no": 6, "reason": "request_id repeated: the version at line 4 is kept"}
    ]


def test_helicone_attribution_from_properties_and_sessions(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, HELICONE / "export.jsonl", HELICONE / "clickhouse_rows.jsonl")
    rows = _by_id(con)
    triage = rows["5f1c2b7e-8a4d-4e0a-b1a2-6c3d9e8f7a01"]
    assert (triage["session_id"], triage["trace_id"]) == ("sess-7f3a", "sess-7f3a")
    assert triage["workflow"] == "ticket-triage"  # Helicone-Session-Name
    assert (triage["team"], triage["tenant"], triage["environment"]) == ("support", "acme", "prod")
    assert triage["user"] == "u-17" and triage["outcome"] == "accepted"  # feedback_rating
    assert triage["tags"]["Helicone-Session-Path"] == "/triage/classify"
    sql = rows["0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"]
    assert sql["workflow"] == "sql-assist" and sql["outcome"] == "rejected"
    raw = rows["aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee1"]
    assert raw["team"] == "finance"  # property "Team": keys match without regard to case
    assert raw["user"] == "u-88" and raw["provider"] == "openai"
    cached = rows["1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"]
    assert cached["tags"]["gateway_cache_hit"] is True
    assert cached["reported_cost_usd"] == "0E-12" and cached["cost_usd"] is not None


def test_helicone_status_codes(con: duckdb.DuckDBPyConnection) -> None:
    load(con, HELICONE / "export.jsonl", HELICONE / "clickhouse_rows.jsonl")
    rows = _by_id(con)
    limited = rows["9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b"]
    assert (limited["status"], limited["http_status"], limited["error_type"]) == (
        "error",
        429,
        None,
    )
    pending = rows["aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee3"]
    assert (pending["status"], pending["http_status"]) == ("error", None)
    assert pending["error_type"] == "helicone status -1"


def test_secrets_and_bodies_never_reach_the_database(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with db.connect(path) as con:
        load(con, *sorted(p for p in (HELICONE, PORTKEY, CLOUDFLARE)))
        rows = usage_rows(con)
        assert len(rows) > 20
        for row in rows:
            tags = row["tags"] or {}
            assert not {"request_body", "response_body", "api_key", "request", "response"} & set(
                tags
            )
        hashes = con.execute(
            "SELECT count(*) FROM usage_events WHERE api_key_hash IS NOT NULL"
        ).fetchall()[0][0]
        assert hashes > 0
        con.execute("CHECKPOINT")
    data = path.read_bytes()
    for canary in (b"CANARY", b"sk-ant-api03", b"openai-prod-7d2c9a", b"X-Amz-Signature"):
        assert canary not in data


def test_helicone_json_document_with_trailing_comma(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, HELICONE / "export.json")
    assert (result.records_read, result.rows_loaded) == (2, 2)
    lines = (HELICONE / "export.json").read_text().splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if line == "{"]
    assert [r["line_no"] for r in usage_rows(con)] == starts


def test_helicone_api_answer_envelope(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    records = _jsonl(HELICONE / "export.jsonl")[:3]
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"data": records, "error": None}, default=str, indent=2))
    (result,) = load(con, answer)
    assert result.format == "helicone" and result.rows_loaded == 3


def test_helicone_csv_export(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    load(con, HELICONE / "export.csv")
    rows = usage_rows(con)
    with open(HELICONE / "export.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    assert [r["request_id"] for r in rows] == [r["response_id"] for r in raw]
    assert [r["input_tokens"] for r in rows] == [int(r["prompt_tokens"] or 0) for r in raw]
    # The export tool escapes quotes twice: properties still give the dimensions.
    assert rows[0]["workflow"] == "balance-bot" and rows[0]["team"] == "payments"
    assert rows[2]["status"] == "error" and rows[2]["reported_cost_usd"] is None
    missing = tmp_path / "missing.csv"
    missing.write_text("response_id,request_created_at,model,prompt_tokens\nx,2026-01-01,m,1\n")
    with pytest.raises(InputError, match="missing column\\(s\\) completion_tokens"):
        load(con, missing, input_format="helicone")


def test_helicone_bad_records_are_quarantined(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, HELICONE / "bad.jsonl")
    assert (result.records_read, result.rows_loaded) == (9, 1)
    assert quarantine_rows(con) == [
        {"line_no": 2, "reason": "negative prompt_tokens: -5"},
        {"line_no": 4, "reason": "invalid request_created_at: yesterday"},
        {"line_no": 5, "reason": "missing model"},
        {"line_no": 6, "reason": "cost is not a number: $0.01"},
        {"line_no": 7, "reason": "prompt_tokens is not a whole number: 12.5"},
        {"line_no": 8, "reason": "not a JSON object"},
        {"line_no": 9, "reason": "cost needs more than 12 decimal places in USD: 1e-13"},
        {"line_no": 10, "reason": "invalid JSON (malformed or truncated record)"},
    ]


# --- Portkey --------------------------------------------------------------------------------


def test_portkey_cost_is_cents(con: duckdb.DuckDBPyConnection) -> None:
    load(con, PORTKEY / "logs_export.jsonl", PORTKEY / "export_v2.jsonl")
    expected, seen = Decimal(0), set()
    for name in ("logs_export.jsonl", "export_v2.jsonl"):
        for r in _jsonl(PORTKEY / name):
            rid = r.get("id")
            if rid is None or rid not in seen:  # a repeated log id is loaded once
                expected += Decimal(r["cost"]) / 100
            seen.add(rid)
    total = con.execute("SELECT sum(reported_cost_usd) FROM usage_events").fetchall()[0][0]
    assert total == expected


def test_portkey_cache_split_from_the_response_usage(con: duckdb.DuckDBPyConnection) -> None:
    load(con, PORTKEY / "logs_export.jsonl", PORTKEY / "export_v2.jsonl")
    rows = usage_rows(con)
    by_line = {(r["model"], r["line_no"]): r for r in rows}
    # OpenAI: cached_tokens is a subset of req_units (prompt_tokens).
    assert _tokens(by_line["gpt-4o", 1]) == (125, 1024, 0, 0, 353, 0)
    # Anthropic via Portkey: prompt_tokens is uncached, the cache counts ride apart.
    assert _tokens(by_line["claude-3-7-sonnet-20250219", 2]) == (4, 1163, 0, 0, 202, 0)
    # No response body exported: req_units as it is.
    assert _tokens(by_line["gpt-4o-mini", 4]) == (2600, 0, 0, 0, 410, 0)
    # Reasoning from completion_tokens_details (a JSON-string body), a subset of res_units.
    assert _tokens(by_line["o4-mini", 6]) == (1500, 0, 0, 0, 2900, 2368)
    # The newer export: "response" holds the body.
    assert _tokens(by_line["gpt-4.1", 1]) == (1152, 2048, 0, 0, 640, 0)


def test_portkey_anthropic_cache_summed_into_req_units(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    record = {
        "created_at": "2026-03-02T09:00:05Z",
        "ai_org": "anthropic",
        "ai_model": "claude-3-7-sonnet-20250219",
        "req_units": 1167,
        "res_units": 202,
        "is_success": 1,
        "response.body": {
            "usage": {
                "prompt_tokens": 4,
                "cache_read_input_tokens": 1163,
                "cache_creation_input_tokens": 0,
            }
        },
    }
    load(con, _write(tmp_path / "p.jsonl", [record]), input_format="portkey")
    (row,) = usage_rows(con)
    assert _tokens(row) == (4, 1163, 0, 0, 202, 0)


def test_portkey_attribution_attempts_and_keys(con: duckdb.DuckDBPyConnection) -> None:
    load(con, PORTKEY / "logs_export.jsonl")
    rows = usage_rows(con)
    first = rows[0]
    # metadata.key / metadata.value arrays; _user is the user.
    assert (first["user"], first["workflow"], first["team"]) == ("cust-881", "refunds", "support")
    assert first["trace_id"] == "refund-flow-5521" and first["request_id"] is None
    assert first["api_key_last4"] == "2c9a"
    failed, fallback = rows[2], rows[3]
    assert (failed["status"], failed["http_status"]) == ("error", 502)
    assert (fallback["attempt"], fallback["provider"]) == (3, "azure")  # 2 retries before
    semantic = rows[4]  # metadata as an object
    assert (
        semantic["session_id"] == "chat-5a1e" and semantic["tags"]["cache_status"] == "SEMANTIC HIT"
    )
    assert rows[5]["user"] == "cust-119"  # metadata as JSON text


def test_portkey_other_currency_keeps_no_usd_cost(con: duckdb.DuckDBPyConnection) -> None:
    load(con, PORTKEY / "bad.jsonl")
    eur = next(r for r in usage_rows(con) if r["line_no"] == 7)
    assert eur["reported_cost_usd"] is None
    assert eur["tags"] == {"cost": "12.5", "cost_currency": "EUR"}


def test_portkey_bad_records_are_quarantined(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, PORTKEY / "bad.jsonl")
    assert (result.records_read, result.rows_loaded) == (9, 2)
    assert quarantine_rows(con) == [
        {"line_no": 2, "reason": "unknown is_success: maybe (expected ok or error)"},
        {"line_no": 3, "reason": "req_units is not a whole number: lots"},
        {"line_no": 4, "reason": "cost (cents) is not a number: NaN"},
        {"line_no": 5, "reason": "invalid retry_success_count: -1"},
        {
            "line_no": 6,
            "reason": "reasoning_tokens (response body usage) (64) exceeds res_units (20)",
        },
        {"line_no": 8, "reason": "missing ai_model"},
        {"line_no": 9, "reason": "invalid JSON (malformed or truncated record)"},
    ]


def test_portkey_duplicate_ids_are_loaded_once(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, PORTKEY / "export_v2.jsonl")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "duplicate request_id (first at line 2)"}
    ]


# --- Cloudflare -----------------------------------------------------------------------------


def test_cloudflare_rest_answer(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, CLOUDFLARE / "logs_api.json")
    raw = json.loads((CLOUDFLARE / "logs_api.json").read_text(), parse_float=Decimal)["result"]
    assert result.records_read == len(raw) == result.rows_loaded
    rows = usage_rows(con)
    assert [r["request_id"] for r in rows] == [r["id"] for r in raw]
    assert sum(r["input_tokens"] for r in rows) == sum(r["tokens_in"] for r in raw)
    assert sum(r["output_tokens"] for r in rows) == sum(r["tokens_out"] for r in raw)
    assert sum(Decimal(r["reported_cost_usd"]) for r in rows) == sum(r["cost"] for r in raw)
    lines = (CLOUDFLARE / "logs_api.json").read_text().splitlines()
    assert [r["line_no"] for r in rows] == [i + 1 for i, x in enumerate(lines) if x == "    {"]
    first = rows[0]
    # metadata arrives as a JSON string in the REST API.
    assert (first["user"], first["workflow"], first["environment"]) == (
        "u-5512",
        "kb-answer",
        "prod",
    )
    assert first["trace_id"] == "kb-90f1"
    cached = rows[3]
    assert cached["tags"]["cached"] is True
    failed, fallback = rows[4], rows[5]
    assert (failed["status"], failed["http_status"]) == ("error", 429)
    assert (fallback["attempt"], fallback["provider"]) == (2, "azure")  # step 1


def test_cloudflare_pages_on_lines_are_numbered_by_record(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, CLOUDFLARE / "logs_pages.jsonl")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (4, 3, 1)
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "duplicate request_id (first at line 2)"}
    ]
    rows = usage_rows(con)
    assert {r["provider"] for r in rows} == {"google", "x-ai"}


def test_cloudflare_worker_objects(con: duckdb.DuckDBPyConnection) -> None:
    load(con, CLOUDFLARE / "worker_logs.jsonl")
    first, second = usage_rows(con)
    assert (first["session_id"], first["agent"], first["prompt_version"]) == (
        "tg-chat-88",
        "router",
        "r2",
    )
    assert first["tags"]["cost_center"] == 7021  # a number stays a number
    assert second["outcome"] == "rejected"  # feedback -1
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "tokens_in is not a whole number: 12O"}
    ]


# --- splitting, robustness and detection ----------------------------------------------------


def test_json_documents_and_broken_ones(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    record = json.loads((CLOUDFLARE / "worker_logs.jsonl").read_text().splitlines()[0])
    empty = tmp_path / "empty.json"
    empty.write_text('{"result": [], "success": true, "errors": []}\n')
    (result,) = load(con, empty, input_format="cloudflare-ai-gateway")
    assert result.records_read == 0
    broken = tmp_path / "broken.json"
    second = dict(record, id="x2")
    broken.write_text("[\n" + json.dumps(record) + ",\n" + json.dumps(second) + ',\n{"id": ')
    (result,) = load(con, broken, input_format="cloudflare-ai-gateway")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    reason = quarantine_rows(con)[-1]
    assert reason["line_no"] == 4 and reason["reason"].startswith("invalid JSON at line 4")
    odd = tmp_path / "odd.json"
    odd.write_text("[1, " + json.dumps(dict(record, id="x3")) + "]")
    (result,) = load(con, odd, input_format="cloudflare-ai-gateway")
    assert (result.records_read, result.rows_loaded) == (2, 1)


def test_invalid_utf8_line_is_quarantined(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    good = (PORTKEY / "bad.jsonl").read_bytes().splitlines()[0]
    path = tmp_path / "p.jsonl"
    path.write_bytes(good + b"\n" + good.replace(b"gpt-4o-mini", b"gpt-\xff") + b"\n")
    (result,) = load(con, path, input_format="portkey")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert quarantine_rows(con) == [{"line_no": 2, "reason": "invalid UTF-8"}]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=30),
            st.dictionaries(
                st.sampled_from(
                    [
                        "created_at",
                        "ai_model",
                        "req_units",
                        "res_units",
                        "cost",
                        "is_success",
                        "metadata",
                        "id",
                    ]
                ),
                st.one_of(
                    st.none(),
                    st.integers(-5, 10**20),
                    st.text(max_size=8),
                    st.floats(allow_nan=False),
                    st.booleans(),
                ),
            ).map(json.dumps),
        ),
        max_size=8,
    )
)
def test_every_record_is_loaded_or_quarantined(tmp_path_factory: Any, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("h") / "p.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines))
    with db.connect(":memory:") as con:
        try:
            (result,) = load(con, path, input_format="portkey")
        except InputError:
            return
        assert result.rows_loaded + result.rows_quarantined == result.records_read


@pytest.mark.parametrize("fmt", OURS)
def test_fixtures_are_detected(fmt: str, tmp_path: Path) -> None:
    for path in sorted((INGEST / fmt).glob("*")):
        if path.name.endswith(".expected.json"):
            continue
        found = detect(open_source(path, tmp_path))
        assert found is not None and found.name == fmt, path.name


def test_sniffers_leave_other_formats_alone(tmp_path: Path) -> None:
    others = [
        p
        for p in sorted(INGEST.rglob("*"))
        if p.is_file()
        and p.relative_to(INGEST).parts[0] not in OURS
        and not p.name.endswith(".expected.json")
    ]
    assert others
    for path in others:
        src = open_source(path, tmp_path)
        for ingester in gateways.INGESTERS:
            assert not ingester.sniff(src), f"{ingester.name} claims {path}"


def test_sniffers_tell_the_gateways_apart(tmp_path: Path) -> None:
    for fmt in OURS:
        for path in sorted((INGEST / fmt).glob("*")):
            if path.name.endswith(".expected.json"):
                continue
            src = open_source(path, tmp_path)
            claims = [i.name for i in gateways.INGESTERS if i.sniff(src)]
            assert claims == [fmt], path


def test_helicone_clickhouse_csv_rows(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "rmt.csv"
    path.write_text(
        "request_id,request_created_at,model,provider,prompt_tokens,completion_tokens,"
        "prompt_cache_read_tokens,cost,status,user_id,properties,updated_at\n"
        "r-1,2026-03-05 14:00:00.020,gpt-4.1-mini,OPENAI,3000,512,0,2019200,200,u-88,"
        "\"{'team':'finance','workflow':'invoice-extract'}\",2026-03-05 14:00:02.500\n"
    )
    (result,) = load(con, path)
    assert result.format == "helicone"
    (row,) = usage_rows(con)
    assert row["reported_cost_usd"] == "0.002019200000"  # raw rows: USD x 1e9
    assert (row["team"], row["workflow"], row["user"]) == ("finance", "invoice-extract", "u-88")
