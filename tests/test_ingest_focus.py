"""FOCUS 1.0-1.2 billing exports: AWS Bedrock, Azure OpenAI and Vertex AI token rows, money."""

from __future__ import annotations

import csv
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, SHARED, load, quarantine_rows
from tokenaudit.errors import InputError
from tokenaudit.ingest import detect
from tokenaudit.ingest.focus import INGESTER
from tokenaudit.ingest.focus_items import (
    Item,
    azure_meter,
    bedrock_usage_type,
    classify,
    provider_id,
    sku_description,
    token_multipliers,
    unit_tokens,
)
from tokenaudit.ingest.source import open_source
from tokenaudit.ingest.tabular import NUM_RE

FIXTURES = DATA / "ingest" / "focus"
SAMPLES = SHARED / "samples" / "provider"
needs_samples = pytest.mark.skipif(
    not (SHARED / "samples").is_dir(), reason="shared samples not available"
)

LINE_COLUMNS = (
    "line_no", "provider", "account", "model", "service_tier", "token_category", "quantity",
    "cost", "list_cost", "currency", "description", "period_start", "period_end", "dataset",
)  # fmt: skip


def lines(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(
        f"SELECT {', '.join(LINE_COLUMNS)} FROM billing_lines ORDER BY file_id, line_no"
    ).fetchall()
    return [dict(zip(LINE_COLUMNS, r, strict=True)) for r in rows]


def by_line(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for row in lines(con):
        assert row["line_no"] not in out, "a FOCUS row is one billing line"
        out[row["line_no"]] = row
    return out


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def sniff(path: Path, tmp_path: Path) -> bool:
    return INGESTER.sniff(open_source(path, tmp_path))


# --- each shape of export --------------------------------------------------------------------


def test_aws_bedrock_usage_types(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "aws_bedrock_focus_1_0.csv")
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == ("focus", 15, 15, 0)
    got = {
        n: (x["model"], x["token_category"], x["quantity"], x["service_tier"])
        for n, x in by_line(con).items()
    }
    assert got == {
        2: ("Claude3Haiku", "input", Decimal(1250000), "standard"),  # ConsumedQuantity, Tokens
        3: ("Claude3Haiku", "output", Decimal(84500), "standard"),  # 84.5 x "1K tokens"
        4: ("Claude3-5Haiku", "cache_read", Decimal(8000), "standard"),
        5: ("Claude3-5Haiku", "cache_write", Decimal(3000), "standard"),
        6: ("Llama3-1-405B", "output", Decimal(375000), "batch"),
        7: ("Claude4Sonnet", "input", Decimal(20000), "standard"),  # cross-region-global
        8: ("anthropic.claude-haiku-4-5", "cache_write_1h", Decimal(2000), "standard"),
        # Marketplace model from ServiceName; "Units" without a block size is not guessed.
        9: ("Claude Sonnet 4.5", "input", None, "standard"),
        10: ("Claude Sonnet 4.5", "output", Decimal(41000), "standard"),
        11: ("GPT-OSS-Safeguard-20B", "input", Decimal(10000), "priority"),
        12: ("Claude3Haiku", "input", None, "standard"),  # a correction: negative tokens dropped
        13: ("Claude3Haiku", "other", None, None),  # a credit keeps its money, not a token row
        14: (None, "other", None, None),  # EC2
        15: (None, "other", None, None),  # S3
        16: (None, "other", None, None),  # tax
    }
    rows = by_line(con)
    assert {x["provider"] for x in rows.values()} == {"aws"}
    assert rows[11]["account"] == "345678901234" and rows[2]["account"] == "123456789012"
    assert rows[15]["cost"] == Decimal("0.000003520000")  # 35.2E-7, exactly
    assert rows[13]["cost"] == Decimal("-5")
    assert rows[2]["description"].startswith("$0.00025 per 1K input tokens")
    assert rows[2]["period_start"].isoformat() == "2026-09-14T09:00:00"
    assert rows[2]["period_end"].isoformat() == "2026-09-14T10:00:00"
    assert {x["dataset"] for x in rows.values()} == {"focus"}
    assert {x["currency"] for x in rows.values()} == {"USD"}


def test_azure_openai_meters(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "azure_openai_focus_1_0.csv")  # BOM, CRLF, empty nulls
    assert (r.records_read, r.rows_quarantined) == (7, 0)
    got = {
        n: (x["model"], x["token_category"], x["quantity"], x["service_tier"])
        for n, x in by_line(con).items()
    }
    assert got == {
        # PricingUnit "Units" x x_PricingBlockSize 1000 (the meter's "1K")
        2: ("gpt-4o-mini-0718", "input", Decimal(1523456), "standard"),
        3: ("gpt-4o-mini-0718", "output", Decimal(210500), "standard"),
        4: ("gpt 4o 0513", "input", Decimal(11000), "standard"),
        # 1M meters: x_PricingBlockSize 1000000
        5: ("GPT 5 Nano", "cache_read", Decimal(250000), "batch"),
        6: ("GPT 5", "reasoning", Decimal(90000), "standard"),
        7: ("text-embedding-3-large", "input", Decimal(180000), "standard"),
        8: (None, "other", None, None),  # a virtual machine
    }
    rows = by_line(con)
    assert {x["provider"] for x in rows.values()} == {"azure"}
    assert rows[2]["account"] == "/subscriptions/6f1c2d3e-4b5a-4978-8a9b-0c1d2e3f4a5b"
    assert rows[2]["cost"] == Decimal("0.2285184")
    assert rows[2]["period_start"].isoformat() == "2026-03-02T00:00:00"


def test_gcp_vertex_skus(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "gcp_vertex_focus_1_2.csv")
    assert (r.records_read, r.rows_quarantined) == (9, 0)
    got = {n: (x["model"], x["token_category"], x["quantity"]) for n, x in by_line(con).items()}
    assert got == {
        2: ("Gemini 2.5 Flash", "input", Decimal(1983966)),  # ConsumedUnit "count"
        3: ("Gemini 2.5 Flash", "output", Decimal(461280)),
        4: ("Gemini 2.5 Flash", "reasoning", Decimal(125000)),  # Thinking Text Output
        5: ("Gemini 2.5 Flash", "cache_read", Decimal(300000)),  # Input Text Caching
        6: ("Gemini 2.5 Flash", "input", Decimal(6400)),  # audio input is input tokens too
        7: (None, "other", None),  # caching storage is billed per GiB-hour, not tokens
        8: ("gemini 2.5 flash lite", "input", Decimal(30000)),
        9: ("Gemini 2.5 Flash", "other", None),  # a credit
        10: (None, "other", None),  # Compute Engine
    }
    rows = by_line(con)
    assert {x["provider"] for x in rows.values()} == {"google"}
    assert rows[8]["account"] == "fabrikam-ml-dev"
    assert rows[10]["cost"] == Decimal("0.00000352")
    assert rows[5]["description"] == "Gemini 2.5 Flash GA Input Text Caching"


def test_virtual_currency_rows_keep_billed_money_only(con: duckdb.DuckDBPyConnection) -> None:
    """FOCUS 1.2 SaaS example: "Token" is a prepaid currency, not LLM tokens."""
    path = FIXTURES / "saas_virtual_currency_focus_1_2.csv"
    (r,) = load(con, path)
    assert (r.records_read, r.rows_quarantined) == (3, 0)
    rows = by_line(con)
    assert [x["token_category"] for x in rows.values()] == ["other"] * 3
    assert [x["quantity"] for x in rows.values()] == [None] * 3
    assert [x["cost"] for x in rows.values()] == [Decimal(50000), Decimal(0), Decimal("12.5")]
    assert rows[2]["period_start"].isoformat() == "2026-06-01T00:00:00"  # 6/1/26
    assert rows[2]["period_end"].isoformat() == "2027-06-01T00:00:00"
    assert rows[3]["provider"] == "docucraft"


def test_parquet_gives_the_same_lines_as_csv(tmp_path: Path) -> None:
    src = FIXTURES / "aws_bedrock_focus_1_0.csv"
    parquet = tmp_path / "export.parquet"
    # Typed columns as a real Parquet export has them: DOUBLE and DECIMAL costs, timestamps.
    with duckdb.connect() as c:
        c.execute(
            f"""COPY (SELECT * REPLACE (
                    CAST(NULLIF(BilledCost, 'NULL') AS DECIMAL(38,12)) AS BilledCost,
                    CAST(NULLIF(PricingQuantity, 'NULL') AS DOUBLE) AS PricingQuantity,
                    CAST(ChargePeriodStart AS TIMESTAMP) AS ChargePeriodStart,
                    CAST(ChargePeriodEnd AS TIMESTAMP) AS ChargePeriodEnd)
                FROM read_csv('{src}', all_varchar = true))
            TO '{parquet}' (FORMAT parquet)"""
        )
    from tokenaudit import db

    results = {}
    for path in (src, parquet):
        with db.connect(":memory:") as con:
            (r,) = load(con, path)
            assert (r.format, r.rows_quarantined) == ("focus", 0)
            results[path.suffix] = [
                {k: v for k, v in x.items() if k != "line_no"} for x in lines(con)
            ]
            numbers = [x["line_no"] for x in lines(con)]
            assert numbers == (list(range(2, 17)) if path == src else list(range(1, 16)))
    assert results[".parquet"] == results[".csv"]


# --- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["aws_bedrock_focus_1_0.csv", "azure_openai_focus_1_0.csv", "gcp_vertex_focus_1_2.csv"]
)
def test_billed_and_list_cost_add_up_exactly(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = FIXTURES / name
    load(con, path)
    rows = csv_rows(path)
    billed = sum(Decimal(r["BilledCost"]) for r in rows)
    listed = sum(Decimal(r["ListCost"]) for r in rows if r["ListCost"] not in ("", "NULL"))
    got = con.execute("SELECT sum(cost), sum(list_cost) FROM billing_lines").fetchall()[0]
    assert got == (billed, listed)


def test_bad_rows_are_quarantined_with_reasons_and_line_numbers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (r,) = load(con, FIXTURES / "bad_rows.csv")
    # 16 records: a blank line is none, a quoted newline keeps one record on two lines.
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (16, 5, 11)
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "invalid BilledCost: three"},
        {"line_no": 4, "reason": "invalid BilledCost: $32"},
        {"line_no": 5, "reason": "invalid BilledCost: 3,432"},
        {"line_no": 6, "reason": "BilledCost has more than 12 decimal places: 0.0000000000001"},
        {"line_no": 7, "reason": "missing BilledCost"},
        {"line_no": 8, "reason": "missing BillingCurrency"},
        {"line_no": 9, "reason": "invalid ChargePeriodStart: yesterday"},
        {"line_no": 10, "reason": "period ends before it starts"},
        {"line_no": 11, "reason": "invalid ConsumedQuantity: 12k"},
        {"line_no": 14, "reason": "expected 16 fields, found 8"},
        {"line_no": 15, "reason": "BilledCost out of range: 1e400"},
    ]
    rows = by_line(con)
    assert sorted(rows) == [2, 12, 16, 17, 19]
    assert rows[12]["description"] == 'Support charge\n(continued on a second line, "quoted")'
    assert rows[16]["cost"] == Decimal("-2.6137")
    assert rows[17]["cost"] == Decimal("0.00000352") and rows[17]["currency"] == "USD"
    assert rows[19]["cost"] == Decimal("0.00000000001")


def test_fast_reader_counts_lines_inside_quoted_fields(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenaudit.ingest import tabular

    text = (FIXTURES / "bad_rows.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    good = [text[0], text[1], *text[11:13], text[15], text[16]]  # no broken row, no blank line
    path = tmp_path / "good.csv"
    path.write_text("".join(good), encoding="utf-8")
    calls: list[str] = []
    monkeypatch.setattr(tabular, "_exact_csv", lambda *a: calls.append("exact"))
    (r,) = load(con, path)
    assert calls == []  # DuckDB's reader did it all
    assert r.records_read == 4
    assert [x["line_no"] for x in lines(con)] == [2, 3, 5, 6]


def test_exact_reader_agrees_with_the_fast_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenaudit import db
    from tokenaudit.ingest import tabular

    path = FIXTURES / "aws_bedrock_focus_1_0.csv"
    with db.connect(":memory:") as con:
        load(con, path)
        fast = lines(con)
    monkeypatch.setattr(tabular, "_fast_csv", lambda *a: False)
    with db.connect(":memory:") as con:
        load(con, path)
        assert lines(con) == fast


def test_columns_are_matched_by_name_without_regard_to_case(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "shuffled.csv"
    path.write_text(
        "x_usagetype,CHARGEPERIODEND,Id,billedCOST,BillingCurrency,ChargePeriodStart,"
        "PricingUnit,pricingquantity,ProviderName\n"
        "USE1-Claude3Haiku-output-tokens,2026-09-14T10:00:00Z,77,0.00125,usd,"
        "2026-09-14T09:00:00+00:00,1K tokens,1,Amazon Web Services\n",
        encoding="utf-8",
    )
    (r,) = load(con, path)
    assert r.format == "focus"
    (row,) = lines(con)
    assert (row["provider"], row["model"], row["token_category"], row["quantity"]) == (
        "aws",
        "Claude3Haiku",
        "output",
        Decimal(1000),
    )
    assert row["period_start"].isoformat() == "2026-09-14T09:00:00"


def test_time_zones_are_converted_to_utc(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "zones.csv"
    path.write_text(
        "BilledCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ProviderName\n"
        "1,USD,2026-09-14T11:00:00+02:00,2026-09-14T12:00:00+02:00,AWS\n"
        "1,USD,2026-09-14 09:00:00,2026-09-14 10:00:00,AWS\n"
        "1,USD,9/14/2026,9/15/2026,AWS\n",
        encoding="utf-8",
    )
    load(con, path)
    got = [(x["period_start"].isoformat(), x["period_end"].isoformat()) for x in lines(con)]
    assert got == [
        ("2026-09-14T09:00:00", "2026-09-14T10:00:00"),
        ("2026-09-14T09:00:00", "2026-09-14T10:00:00"),
        ("2026-09-14T00:00:00", "2026-09-15T00:00:00"),
    ]


def test_missing_required_column_rejects_the_file(tmp_path: Path) -> None:
    from tokenaudit import db

    path = tmp_path / "partial.csv"
    path.write_text("BilledCost,ChargePeriodStart,ChargePeriodEnd\n1,2026-01-01,2026-01-02\n")
    with db.connect(":memory:") as con, pytest.raises(InputError) as err:
        load(con, path, input_format="focus")
    assert "missing column(s) BillingCurrency" in str(err.value)
    assert str(path) in str(err.value)
    with db.connect(":memory:") as con:
        assert con.execute("SELECT count(*) FROM billing_lines").fetchall() == [(0,)]


def test_header_only_file_loads_nothing(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "header_only.csv")
    assert (r.status, r.records_read, r.rows_loaded) == ("loaded", 0, 0)


numbers = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[0-9]{0,28}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{0,16}", fullmatch=True)),
    st.one_of(st.just(""), st.integers(-20, 30).map(lambda e: f"E{e}")),
)
junk = st.text(alphabet="0123456789.,eE+-$ x", max_size=10)


def expected_cost(text: str) -> str | Decimal:
    """What a BilledCost cell must give: its exact value, or the kind of reason."""
    t = text.strip()
    if t in ("", "NULL", "null"):
        return "missing"
    if not re.fullmatch(NUM_RE, t):
        return "invalid"
    d = Decimal(t)
    _, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    while digits and digits[-1] == 0:
        digits, exp = digits[:-1], exp + 1
    if any(digits) and exp < -12:
        return "decimal places"
    if abs(d) >= Decimal(10) ** 26:
        return "out of range"
    return d


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(numbers, junk), min_size=1, max_size=25))
def test_money_is_exact_or_quarantined_never_rounded(values: list[str]) -> None:
    from tempfile import TemporaryDirectory

    from tokenaudit import db

    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "money.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd"])
            for v in values:
                w.writerow([v, "USD", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"])
        with db.connect(":memory:") as con:
            (r,) = load(con, path)
            assert r.records_read == len(values)
            costs = dict(con.execute("SELECT line_no, cost FROM billing_lines").fetchall())
            reasons = dict(con.execute("SELECT line_no, reason FROM quarantine").fetchall())
    for line, value in enumerate(values, start=2):
        want = expected_cost(value)
        if isinstance(want, Decimal) and abs(want) >= Decimal(10) ** 24:
            # Near DECIMAL(38,12)'s limit DuckDB's cast of some E-notation spellings
            # (".01E27") overflows: such a cell may be quarantined, never rounded.
            assert costs.get(line) == want or "out of range" in reasons.get(line, ""), value
        elif isinstance(want, Decimal):
            assert costs.get(line) == want, value
        else:
            assert want in reasons.get(line, ""), (value, reasons.get(line))


# --- reloading and overlapping exports ------------------------------------------------------


def totals(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    return tuple(
        con.execute("SELECT count(*), sum(quantity), sum(cost) FROM billing_lines").fetchall()[0]
    )


def test_loading_twice_or_an_overlapping_export_never_double_counts(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = FIXTURES / "gcp_vertex_focus_1_2.csv"
    load(con, path)
    once = totals(con)
    (again,) = load(con, path)
    assert again.status == "skipped"
    # The same hour exported again (a new file: one more column, rows reordered) replaces it.
    rows = csv_rows(path)
    copy = tmp_path / "reexport.csv"
    with open(copy, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, [*rows[0].keys(), "x_ExportTime"])
        w.writeheader()
        for row in reversed(rows):
            w.writerow({**row, "x_ExportTime": "2026-07-16T02:00:00Z"})
    (r,) = load(con, copy)
    assert "replaced" in r.detail
    assert totals(con) == once


# --- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.csv")), ids=lambda p: p.name)
def test_sniff_claims_focus_files(path: Path, tmp_path: Path) -> None:
    assert sniff(path, tmp_path)
    assert detect(open_source(path, tmp_path)) is INGESTER


def _other_files() -> list[Path]:
    root = DATA / "ingest"
    found = [p for p in root.rglob("*") if p.is_file() and p.parent != FIXTURES]
    return sorted(p for p in found if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", _other_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sniff_rejects_other_formats(path: Path, tmp_path: Path) -> None:
    assert not sniff(path, tmp_path)


def test_sniff_rejects_parquet_that_is_not_focus(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    with duckdb.connect() as c:
        c.execute(f"COPY (SELECT 1 AS cost, 'x' AS model) TO '{path}' (FORMAT parquet)")
    assert not sniff(path, tmp_path)


@needs_samples
def test_sniff_rejects_other_shared_samples(tmp_path: Path) -> None:
    for path in sorted(SAMPLES.rglob("*")):
        if path.is_file() and path.parent.name not in ("focus-sample-data", "focus-spec-examples"):
            assert not sniff(path, tmp_path), path


@needs_samples
def test_azure_price_list_is_not_a_billing_export(tmp_path: Path) -> None:
    for path in sorted((SAMPLES / "azure-retail-prices-openai").glob("*.ndjson")):
        assert detect(open_source(path, tmp_path)) is None


# --- the label parsers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage_type", "expected"),
    [
        ("USE1-Claude3Sonnet-input-tokens", Item("input", "Claude3Sonnet")),
        ("USE1-Claude3Sonnet-output-tokens", Item("output", "Claude3Sonnet")),
        ("USW2-Claude3-7Sonnet-cache-read-input-token-count", Item("cache_read", "Claude3-7Sonnet")),
        ("USE1-Claude3-7Sonnet-cache-write-input-token-count", Item("cache_write", "Claude3-7Sonnet")),
        ("USE1-Llama4-Maverick-17B-input-tokens-batch", Item("input", "Llama4-Maverick-17B", "batch")),
        ("USE1-GPT-OSS-Safeguard-20B-input-tokens-priority", Item("input", "GPT-OSS-Safeguard-20B", "priority")),
        ("USE1-zai.glm-4.7-output-tokens-batch", Item("output", "zai.glm-4.7", "batch")),
        ("USE1-Claude4Sonnet-output-tokens-long-context-cross-region-global", Item("output", "Claude4Sonnet")),
        ("USE1-openai.gpt-oss-120b-mantle-input-tokens-standard", Item("input", "openai.gpt-oss-120b")),
        ("USE1-openai.gpt-oss-120b-mantle-output-tokens-flex", Item("output", "openai.gpt-oss-120b", "flex")),
        ("USE1-anthropic.claude-haiku-4-5-mantle-cache-write-tokens-1h-standard",
         Item("cache_write_1h", "anthropic.claude-haiku-4-5")),
        ("USE1-NovaSonic-speech-input-tokens", Item("input", "NovaSonic")),
        ("USE1-NovaPro-input-tokens-latency-optimized", Item("input", "NovaPro", None)),
        ("USE1-MP:USE1_InputTokenCount-Units", Item("input", "Claude Opus 4.6")),
        ("APN1-MP:APN1_OutputTokenCount_Global-Units", Item("output", "Claude Opus 4.6")),
        ("USE1-MP:USE1_CacheReadInputTokenCount-Units", Item("cache_read", "Claude Opus 4.6")),
        ("USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units", Item("cache_write_1h", "Claude Opus 4.6")),
        ("USE1-MP:USE1_MillionBatchInputTokens-Units", Item("input", "Claude Opus 4.6", "batch")),
        ("USE1-anthropic.claude-opus-4-5-reserved-1-month-input-tokens-per-minute", None),
        ("USE1-BoxUsage:m5.large", None),
        ("USE1-DataTransfer-Out-Bytes", None),
    ],
)  # fmt: skip
def test_bedrock_usage_types(usage_type: str, expected: Item | None) -> None:
    assert bedrock_usage_type(usage_type, "Claude Opus 4.6 (Amazon Bedrock Edition)") == expected


@pytest.mark.parametrize(
    ("meter", "expected"),
    [
        ("gpt-4o-mini-0718-Inp-glbl Tokens", Item("input", "gpt-4o-mini-0718")),
        ("gpt-4o-mini-0718-Outp-regnl Tokens", Item("output", "gpt-4o-mini-0718")),
        ("gpt 4o 0513 Input global Tokens", Item("input", "gpt 4o 0513")),
        ("gpt-4o-mini-0718-Batch-Inp-glbl Tokens", Item("input", "gpt-4o-mini-0718", "batch")),
        ("GPT 5 Nano Batch Inpt cchd Dzone 1M Tokens", Item("cache_read", "GPT 5 Nano", "batch")),
        ("GPT 5 Rsng outpt Glbl 1M Tokens", Item("reasoning", "GPT 5")),
        ("gpt 4.1 cached Inp glbl Tokens", Item("cache_read", "gpt 4.1")),
        ("5.4 mini cd Inp Gl 1M Tokens", Item("cache_read", "5.4 mini")),
        ("5.6 sol ShortCo Cd Wr Std Gl 1M Tokens", Item("cache_write", "5.6 sol")),
        ("5.4 pp opt Gl 1M Tokens", Item("output", "5.4", "priority")),
        ("gpt-5-codex-ccchd-inp-glbl Tokens", Item("cache_read", "gpt-5-codex")),
        ("MAI-DS-R1 Inp Dzone Tokens", Item("input", "MAI-DS-R1")),
        ("K2.5 Thinking Outp DZ Tokens", Item("output", "K2.5 Thinking")),  # a model's name
        ("Phi-3.5-Mini-128K-Instruct-Output Tokens", Item("output", "Phi-3.5-Mini-128K-Instruct")),
        ("text-embedding-3-large-glbl Tokens", Item("input", "text-embedding-3-large")),
        ("o4-mini-ft model grader output Tokens", None),
        ("Provisioned Managed Global Unit", None),
        ("D2s v3", None),
        ("Standard Data Processed", None),
    ],
)  # fmt: skip
def test_azure_meter_names(meter: str, expected: Item | None) -> None:
    assert azure_meter(meter) == expected


@needs_samples
def test_every_token_meter_of_the_azure_price_list_is_read() -> None:
    """Real meter names (a price list, used here only for its names and units)."""
    path = SAMPLES / "azure-retail-prices-openai" / "azure_retail_prices_2024-07-01.tokens.ndjson"
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert items
    for item in items:
        name = item["meterName"]
        parsed = azure_meter(name)
        assert parsed is not None, name
        direction = "output" if ("Outp" in name or "Output" in name) else "input"
        assert parsed.category == direction, name
        assert parsed.model and name.startswith(parsed.model), name
        assert unit_tokens(item["unitOfMeasure"]) == ("tokens", 1000)


@pytest.mark.parametrize(
    ("sku", "expected"),
    [
        ("Gemini 2.5 Flash GA Text Input - Predictions", Item("input", "Gemini 2.5 Flash")),
        ("Gemini 2.5 Flash GA Text Output - Predictions", Item("output", "Gemini 2.5 Flash")),
        ("Gemini 2.5 Pro Thinking Text Output - Predictions", Item("reasoning", "Gemini 2.5 Pro")),
        ("Gemini 2.5 Flash GA Text Output (Thinking On) - Predictions", Item("output", "Gemini 2.5 Flash")),
        (" Gemini 2.5 Flash GA Input Text Caching", Item("cache_read", "Gemini 2.5 Flash")),
        ("Gemini 2.5 Flash GA Input Text Caching (Long)", Item("cache_read", "Gemini 2.5 Flash")),
        ("Gemini 2.5 Flash Lite Text Input - Predictions", Item("input", "Gemini 2.5 Flash Lite")),
        ("Gemini 3.7 Flash Global Text Input - Predictions", Item("input", "Gemini 3.7 Flash")),
        ("Gemini 2.5 Flash Batch Text Output - Predictions", Item("output", "Gemini 2.5 Flash", "batch")),
        ("Generate content input token count gemini 2.5 flash short input text", Item("input", "gemini 2.5 flash")),
        ("Generate content output token count gemini 2.5 flash lite short output text non-thinking",
         Item("output", "gemini 2.5 flash lite")),
        ("Claude Sonnet 4 Cache Write Tokens", Item("cache_write", "Claude Sonnet 4")),
        ("Gemini 2.5 Flash Text Input Caching Storage", None),
        ("N2 Instance Core running in Americas", None),
        ("Token Consumption - Q Widget SKU", None),
        ("Memorystore Redis caching", None),
    ],
)  # fmt: skip
def test_cloud_sku_descriptions(sku: str, expected: Item | None) -> None:
    assert sku_description(sku) == expected


def test_classify_prefers_the_usage_type_and_skips_price_sentences() -> None:
    assert classify(
        usage_type="USE1-Claude3Haiku-output-tokens",
        description="Claude 3 Haiku Input Tokens",
    ) == Item("output", "Claude3Haiku")
    assert classify(description="$0.003 per 1000 input tokens for Claude 3 Sonnet") is None
    assert classify(
        description="$0.003 per 1000 input tokens", usage_type="USE1-MP:USE1_InputTokenCount-Units",
        service_name="Claude Haiku 4.5 (Amazon Bedrock Edition)",
    ) == Item("input", "Claude Haiku 4.5")  # fmt: skip


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("Tokens", ("tokens", 1)),
        ("Token", ("tokens", 1)),
        ("1K Tokens", ("tokens", 1000)),
        ("1000 Tokens", ("tokens", 1000)),
        ("1M tokens", ("tokens", 1_000_000)),
        ("1K", ("tokens", 1000)),
        ("count", ("tokens", 1)),
        ("1000000 count", ("tokens", 1_000_000)),
        ("Units", ("generic", None)),
        ("Hours", ("none", None)),
        ("GB-Months", ("none", None)),
        ("", ("none", None)),
        (None, ("none", None)),
    ],
)
def test_token_units(unit: str | None, expected: tuple[str, int | None]) -> None:
    assert unit_tokens(unit) == expected


def test_token_multipliers() -> None:
    assert token_multipliers("Tokens", "1K tokens", None) == (1, 1000)
    assert token_multipliers("Units", "Units", "1000") == (None, 1000)  # Microsoft block pricing
    assert token_multipliers("Units", "Units", None) == (None, None)  # not guessed
    assert token_multipliers(None, "Hours", "1") == (None, None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("AWS", "aws"), ("Amazon Web Services", "aws"), ("Microsoft", "azure"),
     ("Google Cloud", "google"), ("Oracle", "oracle"), ("ACMECORP", "acmecorp"),
     ("Lawson Analytics", "lawson-analytics"), (None, None)],
)  # fmt: skip
def test_provider_ids(name: str | None, expected: str | None) -> None:
    assert provider_id(name) == expected


# --- the real samples -----------------------------------------------------------------------


@needs_samples
def test_focus_sample_data_total_is_the_exact_sum(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = SAMPLES / "focus-sample-data" / "focus_sample_1.0.csv"
    (r,) = load(con, path)
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "focus", 1000, 1000, 0,
    )  # fmt: skip
    rows = csv_rows(path)
    billed = sum(Decimal(x["BilledCost"]) for x in rows)
    listed = sum(Decimal(x["ListCost"]) for x in rows)
    plain = (
        duckdb.connect()
        .execute(
            "SELECT sum(CAST(BilledCost AS DECIMAL(38,12))) FROM read_csv(?, all_varchar = true)",
            [str(path)],
        )
        .fetchall()[0][0]
    )
    got = con.execute("SELECT sum(cost), sum(list_cost) FROM billing_lines").fetchall()[0]
    assert got == (billed, listed)
    assert got[0] == plain == Decimal("20.52022672899")
    # No token rows in this sample: all its AI rows are Azure ML VMs, disks and bandwidth.
    assert (
        con.execute(
            "SELECT DISTINCT token_category FROM billing_lines WHERE quantity IS NOT NULL"
        ).fetchall()
        == []
    )
    providers = dict(
        con.execute("SELECT provider, count(*) FROM billing_lines GROUP BY 1").fetchall()
    )
    expected: dict[str, int] = {}
    for x in rows:
        pid = {"AWS": "aws", "Microsoft": "azure", "Oracle": "oracle"}[x["ProviderName"]]
        expected[pid] = expected.get(pid, 0) + 1
    assert providers == expected


@needs_samples
@pytest.mark.parametrize(
    "name",
    ["v1.2_virtual_currency_pricing_model_a1.csv", "v1.2_virtual_currency_pricing_model_a2.csv"],
)
def test_focus_spec_examples(name: str, tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = SAMPLES / "focus-spec-examples" / name
    copy = tmp_path / name
    shutil.copy(path, copy)
    (r,) = load(con, copy)
    rows = csv_rows(path)
    assert (r.format, r.records_read, r.rows_quarantined) == ("focus", len(rows), 0)
    got = con.execute(
        "SELECT sum(cost), sum(list_cost), count(quantity), min(period_start) FROM billing_lines"
    ).fetchall()[0]
    assert got[0] == sum(Decimal(x["BilledCost"]) for x in rows)
    assert got[1] == sum(Decimal(x["ListCost"]) for x in rows)
    assert got[2] == 0  # its "Token" is a prepaid currency, not LLM tokens
    assert got[3].isoformat() == "2025-04-01T00:00:00"  # 4/1/25
