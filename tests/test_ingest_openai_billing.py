"""OpenAI billing: Usage API and Costs API JSON, dashboard usage and cost CSV exports.

Categories never overlap, money is exact, bad records are quarantined with their
line, the JSON and CSV forms agree, detection is specific, re-exports replace, and
the real samples load with totals computed here from the raw files.
"""

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

from tests.conftest import DATA, SAMPLES, load, quarantine_rows
from tokenaudit import db
from tokenaudit.errors import InputError
from tokenaudit.ingest import detect
from tokenaudit.ingest.base import StageContext
from tokenaudit.ingest.openai_billing import INGESTERS, parse_line_item
from tokenaudit.ingest.source import open_source
from tokenaudit.model import BILLING_CATEGORIES

FIXTURES = DATA / "ingest"
OFFICIAL = SAMPLES / "provider" / "official-doc-examples"
COOKBOOK = SAMPLES / "provider" / "openai-cookbook-usage" / "completions_usage_data_array.json"
needs_samples = pytest.mark.skipif(
    not (SAMPLES / "provider").is_dir(), reason="shared samples not available"
)

LINE_COLUMNS = (
    "line_no", "dataset", "period_start", "period_end", "provider", "account", "project",
    "api_key_hash", "api_key_last4", "model", "model_id", "service_tier", "token_category",
    "quantity", "cost", "currency", "description", "source",
)  # fmt: skip


def _lines(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = ", ".join(LINE_COLUMNS)
    rows = con.execute(
        f"SELECT {cols} FROM billing_lines ORDER BY line_no, token_category"
    ).fetchall()
    return [dict(zip(LINE_COLUMNS, r, strict=True)) for r in rows]


def _by_category(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Decimal, Decimal | None]]:
    rows = con.execute(
        "SELECT token_category, sum(quantity), sum(cost) FROM billing_lines GROUP BY 1"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _slim(line: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return tuple(line[k] for k in keys)


def _secret(con: duckdb.DuckDBPyConnection) -> StageContext:
    return StageContext(secret=db.install_secret(con))


# --- Usage API JSON ------------------------------------------------------------------------------


def test_completions_2026_fields_never_overlap(con: duckdb.DuckDBPyConnection) -> None:
    path = FIXTURES / "openai-usage" / "completions_2026.json"
    (r,) = load(con, path)
    # Five results (an all-zero one included); the empty bucket is no record.
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "openai-usage",
        5,
        5,
        0,
    )
    lines = _lines(con)
    got = [
        _slim(x, "line_no", "model", "service_tier", "token_category", "quantity") for x in lines
    ]
    assert got == [
        (9, "gpt-4o-mini-2024-07-18", "standard", "cache_read", Decimal(1800)),
        (9, "gpt-4o-mini-2024-07-18", "standard", "cache_write", Decimal(200)),
        (9, "gpt-4o-mini-2024-07-18", "standard", "input", Decimal(3000)),
        (9, "gpt-4o-mini-2024-07-18", "standard", "output", Decimal(1000)),
        (9, "gpt-4o-mini-2024-07-18", "standard", "requests", Decimal(5)),
        (34, "gpt-4o-2024-08-06", "batch", "input", Decimal(120000)),
        (34, "gpt-4o-2024-08-06", "batch", "output", Decimal(30000)),
        (34, "gpt-4o-2024-08-06", "batch", "requests", Decimal(40)),
        # No input_uncached_tokens: input = input_tokens - cached (9000 - 4000).
        (49, "o3-2025-04-16", "priority", "cache_read", Decimal(4000)),
        (49, "o3-2025-04-16", "priority", "input", Decimal(5000)),
        (49, "o3-2025-04-16", "priority", "output", Decimal(2500)),
        (49, "o3-2025-04-16", "priority", "requests", Decimal(3)),
        (69, "gpt-4o-mini-2024-07-18", "flex", "input", Decimal(800)),
        (69, "gpt-4o-mini-2024-07-18", "flex", "output", Decimal(50)),
        (69, "gpt-4o-mini-2024-07-18", "flex", "requests", Decimal(2)),
    ]
    first = lines[0]
    assert first["dataset"] == "openai.usage.completions"
    assert first["provider"] == "openai"
    assert first["project"] == "proj_support"
    assert (str(first["period_start"]), str(first["period_end"])) == (
        "2026-10-01 00:00:00",
        "2026-10-02 00:00:00",
    )
    assert first["api_key_hash"] == _secret(con).key_hash("key_AbCdEf1234")
    assert first["api_key_last4"] == "1234"
    assert first["model_id"] == "gpt-4o-mini"
    assert (first["cost"], first["currency"]) == (None, None)
    # input + cache_read + cache_write = the file's input_tokens; the audio/image
    # breakdowns were not added again.
    totals = _by_category(con)
    raw = json.loads(path.read_text())
    results = [res for b in raw["data"] for res in b["results"]]
    assert sum(totals[c][0] for c in ("input", "cache_read", "cache_write")) == sum(
        res["input_tokens"] for res in results
    )
    assert totals["output"][0] == sum(res["output_tokens"] for res in results)


def test_pre_2026_pages_list(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-usage" / "completions_legacy_pages.json")
    assert (r.records_read, r.rows_quarantined) == (4, 0)
    lines = _lines(con)
    audio = [x for x in lines if x["model"] == "gpt-4o-audio-preview-2024-12-17"]
    assert {x["token_category"]: x["quantity"] for x in audio} == {
        "input": Decimal(5776 - 1024),  # the audio tokens are inside input_tokens
        "cache_read": Decimal(1024),
        "output": Decimal(3166),
        "requests": Decimal(12),
    }
    assert all(x["service_tier"] is None for x in lines)  # batch null: tier unknown
    # Edge buckets keep their partial bounds.
    assert str(lines[0]["period_start"]) == "2025-01-11 17:31:00"
    assert str(lines[-1]["period_end"]) == "2025-01-13 16:44:23"
    assert [x["line_no"] for x in lines if x["token_category"] == "requests"] == [10, 24, 45, 73]


def test_other_usage_endpoints(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-usage" / "other_endpoints_buckets.json")
    assert (r.records_read, r.rows_loaded) == (9, 9)
    got = {
        (x["dataset"], x["token_category"]): (x["quantity"], x["description"], x["model"])
        for x in _lines(con)
    }
    assert got == {
        ("openai.usage.embeddings", "input"): (16000, "input tokens", "text-embedding-3-small"),
        ("openai.usage.embeddings", "requests"): (20, "model requests", "text-embedding-3-small"),
        ("openai.usage.moderations", "input"): (900, "input tokens", "omni-moderation-latest"),
        ("openai.usage.moderations", "requests"): (30, "model requests", "omni-moderation-latest"),
        ("openai.usage.images", "other"): (
            4,
            "images, size 1024x1024, source image.generation",
            "dall-e-3",
        ),
        ("openai.usage.images", "requests"): (4, "model requests", "dall-e-3"),
        ("openai.usage.audio_speeches", "other"): (5200, "characters of text to speech", "tts-1"),
        ("openai.usage.audio_speeches", "requests"): (6, "model requests", "tts-1"),
        ("openai.usage.audio_transcriptions", "other"): (
            360,
            "seconds of audio transcribed",
            "whisper-1",
        ),
        ("openai.usage.audio_transcriptions", "requests"): (3, "model requests", "whisper-1"),
        ("openai.usage.vector_stores", "other"): (1048576, "bytes of vector store storage", None),
        ("openai.usage.code_interpreter_sessions", "other"): (2, "code interpreter sessions", None),
        ("openai.usage.file_searches", "other"): (
            7,
            "file search calls, vector store vs_68a1f2",
            None,
        ),
        # Its num_model_requests (5) are completions requests: not counted twice.
        ("openai.usage.web_searches", "web_search"): (
            9,
            "web search calls, context medium",
            "gpt-4o-2024-08-06",
        ),
    }


def test_usage_quarantine_reasons_and_lines(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-usage" / "bad_results.json")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (13, 1, 12)
    assert quarantine_rows(con) == [
        {"line_no": 9, "reason": "negative output_tokens: -5"},
        {"line_no": 10, "reason": "input_tokens is not a whole number: 1.5"},
        {"line_no": 11, "reason": "invalid input_tokens: abc"},
        {
            "line_no": 12,
            "reason": "input_tokens 100 is less than input_cached_tokens + "
            "input_cache_write_tokens (150)",
        },
        {"line_no": 13, "reason": "invalid batch: maybe"},
        {"line_no": 14, "reason": "unknown result object: organization.usage.fine_tuning.result"},
        {
            "line_no": 15,
            "reason": "organization.costs.result is not a usage result "
            "(use --input-format openai-costs)",
        },
        {"line_no": 16, "reason": "result is not an object"},
        {"line_no": 17, "reason": "duplicate key: input_tokens"},
        {"line_no": 18, "reason": "invalid output_tokens: NaN"},
        {"line_no": 27, "reason": "invalid start_time: yesterday"},
        {"line_no": 30, "reason": "bucket without a results array"},
    ]
    assert {x["line_no"] for x in _lines(con)} == {19}


def test_reasons_never_echo_secrets(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    canary = "sk-proj-CANARY0123456789abcdef"
    result = {
        "object": "organization.usage.completions.result",
        "input_tokens": canary,
        "output_tokens": 1,
        "num_model_requests": 1,
    }
    bucket = {"object": "bucket", "start_time": 1790812800, "end_time": 1790899200}
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"object": "page", "data": [{**bucket, "results": [result]}]}))
    load(con, path)
    assert quarantine_rows(con) == [{"line_no": 1, "reason": "invalid input_tokens: [redacted]"}]


def test_pages_one_after_another(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    def page(start: int, tokens: int) -> str:
        result = {
            "object": "organization.usage.completions.result",
            "input_tokens": tokens,
            "output_tokens": 1,
            "num_model_requests": 1,
        }
        bucket = {"object": "bucket", "start_time": start, "end_time": start + 86400}
        return json.dumps({"object": "page", "data": [{**bucket, "results": [result]}]})

    path = tmp_path / "pages.jsonl"
    path.write_text(page(1790812800, 10) + "\n" + page(1790899200, 20) + "\n")
    (r,) = load(con, path)
    assert (r.format, r.records_read, r.rows_loaded) == ("openai-usage", 2, 2)
    rows = con.execute(
        "SELECT line_no, quantity FROM billing_lines WHERE token_category = 'input' ORDER BY 1"
    ).fetchall()
    assert rows == [(1, Decimal(10)), (2, Decimal(20))]


def test_minified_json_numbers_records_by_position(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """The API answers on one line: each result is numbered by its position in the file."""
    page = json.loads(
        (FIXTURES / "openai-usage" / "bad_results.json")
        .read_text(encoding="utf-8")
        .replace("NaN", '"NaN"')
    )
    path = tmp_path / "minified.json"
    path.write_text(json.dumps(page, separators=(",", ":")))
    (r,) = load(con, path)
    # json.loads kept one of the duplicate keys of result 9: that one loads now.
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (13, 2, 11)
    reasons = {q["line_no"]: q["reason"] for q in quarantine_rows(con)}
    assert reasons[1] == "negative output_tokens: -5"
    assert reasons[8] == "result is not an object"
    assert reasons[12] == "invalid start_time: yesterday"
    assert reasons[13] == "bucket without a results array"
    assert {x["line_no"] for x in _lines(con)} == {9, 11}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"object": "page", "data": [{"object": "bucket", "start_time": 1',
            "invalid JSON at line 1",
        ),
        (b'{"object": "page", "data": []}\xff', "invalid UTF-8 at byte 30"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_is_an_input_error(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, content: bytes, message: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as e:
        load(con, path, input_format="openai-usage")
    assert str(path) in str(e.value)
    assert con.execute("SELECT count(*) FROM billing_lines").fetchall() == [(0,)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9),
            st.integers(0, 10**9),
            st.integers(0, 10**9),
            st.integers(0, 10**6),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_completions_categories_add_up(counts: list[tuple[int, int, int, int, bool]]) -> None:
    """For any counts: input + cache_read + cache_write = input_tokens, in both field sets."""
    import tempfile

    results = []
    for uncached, cached, write, output, new_fields in counts:
        res: dict[str, Any] = {
            "object": "organization.usage.completions.result",
            "input_tokens": uncached + cached + write,
            "input_cached_tokens": cached,
            "input_cache_write_tokens": write,
            "output_tokens": output,
            "num_model_requests": 1,
        }
        if new_fields:
            res["input_uncached_tokens"] = uncached
        results.append(res)
    bucket = {"object": "bucket", "start_time": 1790812800, "end_time": 1790899200}
    page = {"object": "page", "data": [{**bucket, "results": results}]}
    with tempfile.TemporaryDirectory() as d, db.connect(":memory:") as con:
        path = Path(d) / "page.json"
        path.write_text(json.dumps(page))
        (r,) = load(con, path)
        assert (r.records_read, r.rows_loaded) == (len(results), len(results))
        totals = _by_category(con)
    parts = sum(totals.get(c, (0, None))[0] for c in ("input", "cache_read", "cache_write"))
    assert parts == sum(x["input_tokens"] for x in results)
    assert totals.get("output", (0, None))[0] == sum(x[3] for x in counts)


# --- Costs API JSON -------------------------------------------------------------------------------


def test_costs_line_items_exact_money(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-costs" / "costs_line_items.json")
    assert (r.format, r.records_read, r.rows_loaded) == ("openai-costs", 9, 9)
    keys = ("model", "token_category", "service_tier", "quantity", "cost", "description")
    got = [_slim(x, *keys) for x in _lines(con)]
    mini = "gpt-4o-mini-2024-07-18"
    assert got == [
        (mini, "input", None, Decimal(28000), Decimal("0.0042"), f"{mini}, input"),
        (mini, "cache_read", None, Decimal(1800), Decimal("0.000135"), f"{mini}, cached input"),
        (mini, "output", None, Decimal(1000), Decimal("0.0006"), f"{mini}, output"),
        (
            "gpt-4.1-2025-04-14",
            "cache_write",
            None,
            Decimal(200),  # no quantity_unit (older API): tokens
            Decimal("0.0005"),
            "gpt-4.1-2025-04-14, cache writes",
        ),
        (
            "gpt-5.6-sol",
            "output",
            "priority",
            Decimal(126782),
            Decimal("10.1425634"),  # 7 decimals, exact
            "priority | gpt-5.6-sol, output, long context",
        ),
        (None, "web_search", None, Decimal(25), Decimal("0.25"), "web search tool calls"),
        (
            "whisper-1",
            "other",
            None,
            Decimal(360),
            Decimal("0.036"),
            "whisper-1, audio [duration_seconds]",
        ),
        (None, "other", None, None, Decimal("0.08"), "Image models"),
        (mini, "input", None, None, Decimal("-0.5"), f"{mini}, input"),  # a credit
    ]
    lines = _lines(con)
    assert {x["currency"] for x in lines} == {"USD"}
    assert {x["account"] for x in lines} == {"org-Qm3kT8vN"}
    assert {x["dataset"] for x in lines} == {"openai.costs"}
    total = con.execute("SELECT sum(cost) FROM billing_lines").fetchall()[0][0]
    assert total == Decimal("10.0139984")
    assert isinstance(total, Decimal)


def test_costs_quarantine_reasons(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-costs" / "bad_costs.json")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (9, 1, 8)
    assert quarantine_rows(con) == [
        {"line_no": 9, "reason": "invalid amount.value: abc"},
        {"line_no": 10, "reason": "invalid amount.value: $3.00"},
        {"line_no": 11, "reason": "missing amount.currency"},
        {"line_no": 12, "reason": "amount.value has more than 12 decimal places: 1E-13"},
        {"line_no": 13, "reason": "invalid amount.currency: dollars"},
        {"line_no": 14, "reason": "invalid quantity: lots"},
        {"line_no": 15, "reason": "missing amount.value"},
        {"line_no": 16, "reason": "amount is not an object"},
    ]
    assert _by_category(con) == {"output": (Decimal(75000), Decimal("0.75"))}


def test_usage_file_forced_as_costs_is_quarantined(con: duckdb.DuckDBPyConnection) -> None:
    path = FIXTURES / "openai-usage" / "completions_legacy_pages.json"
    (r,) = load(con, path, input_format="openai-costs")
    assert (r.records_read, r.rows_quarantined) == (4, 4)
    reasons = {q["reason"] for q in quarantine_rows(con)}
    assert reasons == {
        "organization.usage.completions.result is not a costs result "
        "(use --input-format openai-usage)"
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("gpt-4o-mini-2024-07-18, cached input", ("gpt-4o-mini-2024-07-18", "cache_read", None)),
        ("gpt-4.1-2025-04-14, output", ("gpt-4.1-2025-04-14", "output", None)),
        ("gpt-4o-2024-08-06, input", ("gpt-4o-2024-08-06", "input", None)),
        ("gpt-4.1-2025-04-14, cache writes", ("gpt-4.1-2025-04-14", "cache_write", None)),
        ("priority | gpt-5.6-sol, output, long context", ("gpt-5.6-sol", "output", "priority")),
        ("flex | o3-2025-04-16, cached input", ("o3-2025-04-16", "cache_read", "flex")),
        ("gpt-4o-mini-2024-07-18, input, batch", ("gpt-4o-mini-2024-07-18", "input", "batch")),
        ("GPT-4o mini, output", ("GPT-4o mini", "output", None)),
        ("whisper-1, audio", ("whisper-1", "other", None)),
        ("gpt-5.6-sol, cache writes (1h)", ("gpt-5.6-sol", "cache_write_1h", None)),
        ("web search tool calls", (None, "web_search", None)),
        ("gpt-4o-2024-08-06, web search tool calls", ("gpt-4o-2024-08-06", "web_search", None)),
        ("input_tokens", (None, "input", None)),
        ("output_tokens", (None, "output", None)),
        ("Image models", (None, "other", None)),
        ("file search tool calls", (None, "other", None)),
        (None, (None, "other", None)),
    ],
)
def test_parse_line_item(item: str | None, expected: tuple[str | None, str, str | None]) -> None:
    assert parse_line_item(item) == expected


@given(st.text(max_size=60))
def test_parse_line_item_never_fails(item: str) -> None:
    model, category, tier = parse_line_item(item)
    assert category in BILLING_CATEGORIES and category != "requests"
    assert tier in (None, "standard", "batch", "priority", "flex", "scale")
    assert model is None or model.strip() == model


# --- dashboard CSV exports ------------------------------------------------------------------------


def test_usage_csv_export(con: duckdb.DuckDBPyConnection) -> None:
    path = FIXTURES / "openai-usage-csv" / "completions_usage_2026-04-09_2026-04-12.csv"
    (r,) = load(con, path)
    # Idle days (only the time columns) are records: loaded, nothing billed.
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "openai-usage-csv",
        5,
        5,
        0,
    )
    keys = ("line_no", "model", "service_tier", "token_category", "quantity")
    assert [_slim(x, *keys) for x in _lines(con)] == [
        (2, "gpt-4o-2024-08-06", "standard", "input", Decimal(3608)),
        (2, "gpt-4o-2024-08-06", "standard", "output", Decimal(564)),
        (2, "gpt-4o-2024-08-06", "standard", "requests", Decimal(1)),
        (3, "gpt-4o-mini-2024-07-18", "batch", "input", Decimal(48210)),
        (3, "gpt-4o-mini-2024-07-18", "batch", "output", Decimal(9120)),
        (3, "gpt-4o-mini-2024-07-18", "batch", "requests", Decimal(12)),
        (5, "gpt-4o-2024-08-06", "priority", "cache_read", Decimal(6400)),
        (5, "gpt-4o-2024-08-06", "priority", "input", Decimal(14600)),
        (5, "gpt-4o-2024-08-06", "priority", "output", Decimal(1400)),
        (5, "gpt-4o-2024-08-06", "priority", "requests", Decimal(7)),
    ]
    first = _lines(con)[0]
    assert first["dataset"] == "openai.usage.completions"
    assert first["api_key_last4"] == "Ps8U"
    assert first["api_key_hash"] == _secret(con).key_hash("key_WEtWjdsBPp3RPs8U")
    assert str(first["period_end"]) == "2026-04-10 00:00:00"


def _csv_as_page(path: Path) -> dict[str, Any]:
    """The Usage API page a dashboard usage CSV was flattened from."""
    buckets: dict[tuple[int, int], list[dict[str, Any]]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            key = (int(row["start_time"]), int(row["end_time"]))
            results = buckets.setdefault(key, [])
            if not row["model"]:
                continue
            res: dict[str, Any] = {"object": "organization.usage.completions.result"}
            for k, v in row.items():
                if k.endswith(("_iso", "_time")) or v == "":
                    continue
                res[k] = {"True": True, "False": False}.get(v, v)
                if k.endswith(("_tokens", "_requests")):
                    res[k] = int(Decimal(v))
            results.append(res)
    data = [
        {"object": "bucket", "start_time": s, "end_time": e, "results": res}
        for (s, e), res in buckets.items()
    ]
    return {"object": "page", "data": data, "has_more": False, "next_page": None}


def test_csv_and_json_agree_and_replace_each_other(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    csv_path = FIXTURES / "openai-usage-csv" / "completions_usage_2026-04-09_2026-04-12.csv"
    json_path = tmp_path / "usage.json"
    json_path.write_text(json.dumps(_csv_as_page(csv_path), indent=2))
    skip = {"line_no", "source"}

    def rows() -> list[dict[str, Any]]:
        keyed = [{k: v for k, v in x.items() if k not in skip} for x in _lines(con)]
        return sorted(keyed, key=lambda x: json.dumps(x, default=str, sort_keys=True))

    load(con, csv_path)
    from_csv = rows()
    (b,) = load(con, json_path)
    assert b.format == "openai-usage"
    assert "replaced 10 lines" in b.detail  # same dataset and period: never doubled
    assert rows() == from_csv


def test_csv_bom_crlf_case_and_extra_columns(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-usage-csv" / "embeddings_usage_2026-04-01_2026-04-02.csv")
    assert (r.format, r.records_read, r.rows_loaded) == ("openai-usage-csv", 2, 2)
    keys = ("line_no", "dataset", "model", "token_category", "quantity", "project")
    assert [_slim(x, *keys) for x in _lines(con)] == [
        (2, "openai.usage.embeddings", "text-embedding-3-small", "input", 16000, "proj_search"),
        (2, "openai.usage.embeddings", "text-embedding-3-small", "requests", 20, "proj_search"),
        (3, "openai.usage.embeddings", "text-embedding-3-large", "input", 2500, "proj_search"),
        (3, "openai.usage.embeddings", "text-embedding-3-large", "requests", 4, "proj_search"),
    ]


def test_csv_moderations_told_by_file_name(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "openai-usage-csv" / "moderations_usage_2026-04-01_2026-04-01.csv")
    assert {x["dataset"] for x in _lines(con)} == {"openai.usage.moderations"}


def test_csv_time_columns_only(con: duckdb.DuckDBPyConnection) -> None:
    empty = FIXTURES / "openai-usage-csv" / "completions_usage_2026-05-01_2026-05-31.csv"
    idle = FIXTURES / "openai-usage-csv" / "completions_usage_idle_2026-04-01_2026-04-03.csv"
    (a,) = load(con, empty)
    assert (a.format, a.status, a.records_read, a.rows_loaded) == (
        "openai-usage-csv",
        "loaded",
        0,
        0,
    )
    (b,) = load(con, idle)
    assert (b.format, b.records_read, b.rows_loaded, b.rows_quarantined) == (
        "openai-usage-csv",
        2,
        2,
        0,
    )
    assert _lines(con) == []


def test_csv_idle_export_replaces_the_period(con: duckdb.DuckDBPyConnection) -> None:
    """A later export saying "no usage on these days" replaces what was loaded for them."""
    load(con, FIXTURES / "openai-usage-csv" / "completions_usage_2026-04-09_2026-04-12.csv")
    load(con, FIXTURES / "openai-usage" / "other_endpoints_buckets.json")
    before = len(_lines(con))
    # Days 2026-04-01..03 hold no completions lines: nothing is replaced.
    (r,) = load(
        con, FIXTURES / "openai-usage-csv" / "completions_usage_idle_2026-04-01_2026-04-03.csv"
    )
    assert "replaced" not in r.detail
    assert len(_lines(con)) == before


def test_csv_bad_rows(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "openai-usage-csv" / "bad_rows.csv")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (7, 2, 5)
    assert quarantine_rows(con) == [
        {"line_no": 4, "reason": "invalid input_tokens: 3,608"},
        {"line_no": 5, "reason": "expected 24 fields, found 12"},
        {"line_no": 6, "reason": "invalid batch: Maybe"},
        {"line_no": 7, "reason": "negative output_tokens: -5.0"},
        {"line_no": 8, "reason": "missing start_time"},
    ]
    lines = _lines(con)
    # Line 2 holds a quoted newline: the next record starts on line 4.
    assert {x["line_no"] for x in lines} == {2, 9}
    assert lines[0]["project"] == "proj_multi\nline"
    assert {x["token_category"]: x["quantity"] for x in lines if x["line_no"] == 9} == {
        "input": 80,
        "cache_read": 20,
        "output": 5,
        "requests": 1,
    }


def test_csv_fast_reader_counts_quoted_newlines(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    head = "start_time,end_time,start_time_iso,end_time_iso,project_id,model,input_tokens\n"
    path = tmp_path / "embeddings_usage_x.csv"
    path.write_text(
        head
        + '1775001600,1775088000,,,"a\nb\nc",text-embedding-3-small,10.0\n'
        + "1775088000,1775174400,,,p,text-embedding-3-small,20.0\n"
    )
    (r,) = load(con, path)
    assert (r.records_read, r.rows_loaded) == (2, 2)
    assert [(x["line_no"], x["quantity"]) for x in _lines(con)] == [(2, 10), (5, 20)]


def test_costs_csv_export(tmp_path: Path) -> None:
    path = FIXTURES / "openai-costs-csv" / "cost_2026-04-01_2026-04-03.csv"
    db_path = tmp_path / "t.duckdb"
    with db.connect(db_path) as con:
        (r,) = load(con, path)
        assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
            "openai-costs-csv",
            5,
            5,
            0,
        )
        keys = ("line_no", "model", "token_category", "quantity", "cost", "currency", "project")
        got = [_slim(x, *keys) for x in _lines(con)]
        proj = "proj_PIX0QSLBaKRDaHp6eP9bfk7a"
        assert got == [
            (2, "gpt-4o-2024-08-06", "input", 3608, Decimal("0.00902"), "USD", proj),
            (3, "gpt-4o-2024-08-06", "output", 564, Decimal("0.00564"), "USD", proj),  # 0.564 K
            (4, "gpt-4o-mini-2024-07-18", "cache_read", 500, Decimal("0.0000625"), "USD", proj),
            (6, None, "web_search", 30, Decimal("0.3"), "USD", None),
        ]
        assert {x["account"] for x in _lines(con)} == {"org-Qm3kT8vN"}
        assert {x["dataset"] for x in _lines(con)} == {"openai.costs"}
        con.execute("CHECKPOINT")
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"ops-canary@example.com" not in stored  # user_email is never read
    assert b"key_WEtWjdsBPp3RPs8U" not in stored  # only its hash and last 4


def test_forcing_the_wrong_csv_kind_is_an_input_error(con: duckdb.DuckDBPyConnection) -> None:
    path = FIXTURES / "openai-costs-csv" / "cost_2026-04-01_2026-04-03.csv"
    with pytest.raises(InputError, match="use --input-format openai-costs-csv"):
        load(con, path, input_format="openai-usage-csv")
    other = DATA / "ingest" / "litellm" / "spend_logs.csv"
    with pytest.raises(InputError, match="not an OpenAI dashboard costs export"):
        load(con, other, input_format="openai-costs-csv")


# --- reloading and overlapping exports -----------------------------------------------------------


def _cost_totals(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    return tuple(
        con.execute("SELECT count(*), sum(quantity), sum(cost) FROM billing_lines").fetchall()[0]
    )


def test_reload_and_overlapping_cost_exports(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = FIXTURES / "openai-costs" / "costs_line_items.json"
    load(con, path)
    once = _cost_totals(con)
    (again,) = load(con, path)
    assert again.status == "skipped"
    assert _cost_totals(con) == once
    # A later export of 2026-10-02..04: day 2 re-billed (one line), day 3 new.
    page = json.loads(path.read_text(), parse_float=Decimal)
    day2 = page["data"][1]
    day2["results"] = [day2["results"][0]]
    day2["results"][0]["amount"]["value"] = Decimal("0.30")
    page["data"][2]["results"] = [
        {
            "object": "organization.costs.result",
            "amount": {"value": "1.5", "currency": "usd"},
            "line_item": "gpt-4o-mini-2024-07-18, output",
            "organization_id": "org-Qm3kT8vN",
            "quantity": 2500000,
            "quantity_unit": "tokens",
        }
    ]
    later = tmp_path / "costs_later.json"
    later.write_text(json.dumps({**page, "data": page["data"][1:]}, default=str))
    (r,) = load(con, later)
    assert "replaced 4 lines" in r.detail
    day1 = Decimal("0.0042") + Decimal("0.000135") + Decimal("0.0006") + Decimal("0.0005")
    day1 += Decimal("10.1425634")
    assert _cost_totals(con)[2] == day1 + Decimal("0.30") + Decimal("1.5")
    # Loading the original again restores days 1-2 and leaves day 3 alone.
    path2 = tmp_path / "costs_again.json"
    path2.write_bytes(path.read_bytes() + b"\n")
    load(con, path2)
    assert _cost_totals(con)[2] == once[2] + Decimal("1.5")


def test_reload_usage_export_is_a_no_op(con: duckdb.DuckDBPyConnection) -> None:
    path = FIXTURES / "openai-usage" / "completions_2026.json"
    load(con, path)
    once = _by_category(con)
    (again,) = load(con, path)
    assert again.status == "skipped"
    assert _by_category(con) == once


# --- detection -----------------------------------------------------------------------------------

OURS = ("openai-usage", "openai-costs", "openai-usage-csv", "openai-costs-csv")
EXPECTED_FORMAT = {
    p.name: p.parent.name
    for name in OURS
    for p in (FIXTURES / name).glob("*")
    if p.is_file() and not p.name.endswith(".expected.json")
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FORMAT))
def test_detects_own_fixtures(name: str, tmp_path: Path) -> None:
    (path,) = [p for fmt in OURS for p in (FIXTURES / fmt).glob(name)]
    src = open_source(path, tmp_path)
    claimed = [i.name for i in INGESTERS if i.sniff(src)]
    assert claimed == [EXPECTED_FORMAT[name]]
    found = detect(src)
    assert found is not None and found.name == EXPECTED_FORMAT[name]


OTHER_FILES = sorted(
    p
    for p in (DATA / "ingest").rglob("*")
    if p.is_file() and p.parent.name not in OURS and not p.name.endswith(".expected.json")
)


@pytest.mark.parametrize("path", OTHER_FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_rejects_other_formats(path: Path, tmp_path: Path) -> None:
    src = open_source(path, tmp_path)
    assert [i.name for i in INGESTERS if i.sniff(src)] == []


@pytest.mark.parametrize(
    "content",
    [
        # native tokenaudit JSONL
        '{"ts":"2026-11-02T14:03:11Z","model":"gpt-4o-mini","input_tokens":12,"object":"page"}\n',
        # an OpenAI chat completion body
        '{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","usage":'
        '{"prompt_tokens":5,"completion_tokens":1}}',
        # an Anthropic usage report (buckets without "object")
        '{"data":[{"starting_at":"2025-08-01T00:00:00Z","ending_at":"2025-08-02T00:00:00Z",'
        '"results":[{"uncached_input_tokens":1}]}],"has_more":false}',
        # a log line quoting the Usage API's result name inside its text
        '{"request":{"messages":[{"content":"object: organization.usage.completions.result"}]}}',
        # CSVs of other exports
        "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd\n",
        "generation_id,created_at,cost_total,start_time,end_time\n",
        "end_time,start_time,amount_value,amount_currency\n",
        "start_time,end_time,amount_value,request_id\n",
    ],
)
def test_rejects_look_alikes(content: str, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    src = open_source(path, tmp_path)
    assert [i.name for i in INGESTERS if i.sniff(src)] == []


# --- the real samples ----------------------------------------------------------------------------


def _expected_usage(raw: Any) -> dict[str, int]:
    """Per-category totals computed straight from a Usage API page or bucket list."""
    buckets = raw["data"] if isinstance(raw, dict) else raw
    out = dict.fromkeys(("input", "cache_read", "cache_write", "output", "requests"), 0)
    for bucket in buckets:
        for res in bucket["results"]:
            cached = res.get("input_cached_tokens") or 0
            write = res.get("input_cache_write_tokens") or 0
            uncached = res.get("input_uncached_tokens")
            out["input"] += res["input_tokens"] - cached - write if uncached is None else uncached
            out["cache_read"] += cached
            out["cache_write"] += write
            out["output"] += res.get("output_tokens") or 0
            out["requests"] += res["num_model_requests"]
    return {k: v for k, v in out.items() if v}


@needs_samples
@pytest.mark.parametrize(
    "path",
    [
        OFFICIAL / "openai_usage_completions_response.example.json",
        OFFICIAL / "openai_usage_embeddings_response.example.json",
        COOKBOOK,
    ],
    ids=lambda p: p.name,
)
def test_real_usage_samples(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    raw = json.loads(path.read_text())
    (r,) = load(con, path)
    assert r.format == "openai-usage"
    assert r.rows_quarantined == 0
    buckets = raw["data"] if isinstance(raw, dict) else raw
    assert r.records_read == sum(len(b["results"]) for b in buckets)
    got = {k: int(v[0]) for k, v in _by_category(con).items()}
    assert got == _expected_usage(raw)
    assert con.execute("SELECT count(*) FROM billing_lines WHERE cost IS NOT NULL").fetchall() == [
        (0,)
    ]


@needs_samples
def test_real_costs_sample(con: duckdb.DuckDBPyConnection) -> None:
    path = OFFICIAL / "openai_costs_response.example.json"
    raw = json.loads(path.read_text(), parse_float=Decimal)
    (r,) = load(con, path)
    assert (r.format, r.rows_quarantined) == ("openai-costs", 0)
    results = [res for b in raw["data"] for res in b["results"]]
    assert r.records_read == len(results)
    expected = sum(Decimal(str(res["amount"]["value"])) for res in results)
    assert con.execute("SELECT sum(cost), any_value(currency) FROM billing_lines").fetchall() == [
        (expected, "USD")
    ]


@needs_samples
@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("openai_usage_completions_result.object.example.json", "openai-usage"),
        ("openai_costs_result.object.example.json", "openai-costs"),
    ],
)
def test_real_bare_result_objects(name: str, fmt: str, con: duckdb.DuckDBPyConnection) -> None:
    """A result object alone has no bucket, so no period: one record, quarantined."""
    (r,) = load(con, OFFICIAL / name)
    assert (r.format, r.records_read, r.rows_quarantined) == (fmt, 1, 1)
    assert quarantine_rows(con) == [
        {"line_no": 1, "reason": "result outside a time bucket: no start_time/end_time"}
    ]
