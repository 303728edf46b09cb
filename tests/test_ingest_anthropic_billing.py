"""Anthropic billing exports: Admin API usage / cost reports (JSON), Console usage / cost CSV."""

from __future__ import annotations

import csv
import json
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, SAMPLES, load
from tokenaudit.db import install_secret
from tokenaudit.errors import InputError
from tokenaudit.ingest import BY_NAME, detect
from tokenaudit.ingest import anthropic_billing as ab
from tokenaudit.ingest.base import RecordError, StageContext
from tokenaudit.ingest.source import open_source

FIX = DATA / "ingest"
OURS = ("anthropic-usage", "anthropic-cost", "anthropic-console-usage", "anthropic-console-cost")
PROVIDER_SAMPLES = SAMPLES / "provider"
needs_samples = pytest.mark.skipif(
    not (SAMPLES / "provider").is_dir(), reason="shared samples not available"
)

_COLUMNS = (
    "line_no", "dataset", "period_start", "period_end", "provider", "account", "workspace",
    "api_key_hash", "api_key_last4", "model", "model_id", "service_tier", "token_category",
    "quantity", "cost", "list_cost", "currency", "description",
)  # fmt: skip


def _lines(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM billing_lines ORDER BY file_id, line_no, token_category"
    ).fetchall()
    return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]


def _by_category(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Decimal, Decimal]]:
    """category -> (sum of quantity, sum of cost), zero where NULL."""
    rows = con.execute(
        "SELECT token_category, coalesce(sum(quantity), 0), coalesce(sum(cost), 0) "
        "FROM billing_lines GROUP BY ALL"
    ).fetchall()
    return {c: (Decimal(q), Decimal(m)) for c, q, m in rows}


def _quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    return [
        (int(a), str(b))
        for a, b in con.execute("SELECT line_no, reason FROM quarantine ORDER BY 1").fetchall()
    ]


def _key_hash(con: duckdb.DuckDBPyConnection, value: str) -> str:
    return StageContext(secret=install_secret(con)).key_hash(value)


# --- independent expectations from the raw files (json / csv / Decimal only) ------------------

_USAGE_JSON = {
    "input": ("uncached_input_tokens",),
    "cache_read": ("cache_read_input_tokens",),
    "cache_write": ("cache_creation", "ephemeral_5m_input_tokens"),
    "cache_write_1h": ("cache_creation", "ephemeral_1h_input_tokens"),
    "output": ("output_tokens",),
    "web_search": ("server_tool_use", "web_search_requests"),
}
_USAGE_CSV = {
    "input": "usage_input_tokens_no_cache",
    "cache_read": "usage_input_tokens_cache_read",
    "cache_write": "usage_input_tokens_cache_write_5m",
    "cache_write_1h": "usage_input_tokens_cache_write_1h",
    "output": "usage_output_tokens",
    "web_search": "web_search_count",
}


def _json_results(path: Path) -> list[dict[str, Any]]:
    """Every result object of a saved report: one page, pages (array or lines), or buckets."""
    text = path.read_text(encoding="utf-8")
    try:
        docs = [json.loads(text, parse_float=Decimal)]
    except json.JSONDecodeError:
        docs = [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    items = [x for d in docs for x in (d if isinstance(d, list) else [d])]
    buckets = [b for x in items for b in x.get("data", [x])]
    return [r for b in buckets for r in b["results"]]


def _expected_usage_json(path: Path) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for result in _json_results(path):
        for category, keys in _USAGE_JSON.items():
            value: Any = result
            for key in keys:
                value = (value or {}).get(key)
            out[category] += Decimal(value or 0)
    return {k: v for k, v in out.items() if v}


def _expected_cost_json(path: Path) -> Decimal:
    return sum((Decimal(r["amount"]) / 100 for r in _json_results(path)), Decimal(0))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        return [{k.strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]


def _expected_usage_csv(path: Path) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for row in _csv_rows(path):
        for category, column in _USAGE_CSV.items():
            out[category] += Decimal(row.get(column) or 0)
    return {k: v for k, v in out.items() if v}


def _expected_cost_csv(path: Path) -> tuple[Decimal, Decimal]:
    rows = _csv_rows(path)
    cost = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    listed = sum((Decimal(r.get("list_price_usd") or 0) for r in rows), Decimal(0))
    return cost, listed


def _loaded_quantities(con: duckdb.DuckDBPyConnection) -> dict[str, Decimal]:
    return {c: q for c, (q, _) in _by_category(con).items() if q}


def _loaded_cost(con: duckdb.DuckDBPyConnection) -> Decimal:
    return Decimal(con.execute("SELECT coalesce(sum(cost), 0) FROM billing_lines").fetchall()[0][0])


# --- Admin API usage report --------------------------------------------------------------------


def test_usage_report_page_maps_every_category(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "anthropic-usage" / "page.json")
    # Two grouped results, one idle result (loaded, nothing billed); the empty bucket is no record.
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "anthropic-usage", 3, 3, 0,
    )  # fmt: skip
    lines = _lines(con)
    got = {(x["line_no"], x["token_category"]): x["quantity"] for x in lines}
    assert got == {
        (7, "input"): Decimal(120000),
        (7, "cache_read"): Decimal(310000),
        (7, "cache_write"): Decimal(25000),
        (7, "cache_write_1h"): Decimal(4000),
        (7, "output"): Decimal(18000),
        (7, "web_search"): Decimal(3),
        (24, "input"): Decimal(900000),
        (24, "output"): Decimal(64000),
    }
    first = next(x for x in lines if x["line_no"] == 7)
    assert first["dataset"] == "anthropic.usage_report"
    assert first["provider"] == "anthropic"
    assert (str(first["period_start"]), str(first["period_end"])) == (
        "2026-03-01 00:00:00", "2026-03-02 00:00:00",
    )  # fmt: skip
    assert first["workspace"] == "wrkspc_01SupportTeam"
    assert first["api_key_hash"] == _key_hash(con, "apikey_01SupportBot7Qx")
    assert first["api_key_last4"] == "t7Qx"
    assert first["model"] == "claude-sonnet-4-5-20250929"
    assert first["service_tier"] == "standard"
    assert (first["cost"], first["currency"]) == (None, None)
    second = [x for x in lines if x["line_no"] == 24]
    assert {x["service_tier"] for x in second} == {"batch"}
    assert {x["workspace"] for x in second} == {None}
    desc = {x["token_category"]: x["description"] for x in second}
    assert desc["input"] == (
        "uncached_input_tokens; context_window=200k-1M; inference_geo=us; speed=standard"
    )
    # The key id itself is stored nowhere.
    dump = json.dumps(con.execute("SELECT * FROM billing_lines").fetchall(), default=str)
    assert "apikey_01" not in dump


@pytest.mark.parametrize("name", ["page.json", "pages.json", "pages.jsonl", "buckets.json"])
def test_usage_report_shapes_total_what_the_file_says(
    name: str, con: duckdb.DuckDBPyConnection
) -> None:
    path = FIX / "anthropic-usage" / name
    (r,) = load(con, path)
    assert r.format == "anthropic-usage"
    assert r.rows_quarantined == 0
    assert _loaded_quantities(con) == _expected_usage_json(path)


def test_usage_report_tiers_and_pages(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "anthropic-usage" / "pages.json")
    rows = con.execute(
        "SELECT DISTINCT line_no, period_start::VARCHAR, service_tier FROM billing_lines ORDER BY 1"
    ).fetchall()
    # Items of a list of pages are numbered by their own lines; priority_on_demand is priority.
    assert rows == [
        (8, "2026-03-01 00:00:00", "priority"),
        (21, "2026-03-01 01:00:00", "priority"),
    ]


def test_usage_report_quarantine_reasons(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "anthropic-usage" / "bad.json")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (11, 2, 9)
    assert _quarantine(con) == [
        (7, "negative uncached_input_tokens: -5"),
        (8, "uncached_input_tokens is not a whole number: abc"),
        (9, "uncached_input_tokens is not a whole number: 1.5"),
        (10, "uncached_input_tokens is not a whole number: NaN"),
        (11, "duplicate key: output_tokens"),
        (12, "cache_creation is not an object: 12"),
        (13, "result is not an object"),
        (22, "invalid starting_at: yesterday"),
        (25, "results is not a list"),
    ]
    got = {(x["line_no"], x["token_category"]): x for x in _lines(con)}
    # An older result with one flat cache-write count, and an unknown tier kept in words.
    assert got[(14, "cache_write")]["quantity"] == Decimal(40)
    assert got[(14, "input")]["service_tier"] is None
    assert got[(14, "input")]["description"] == "uncached_input_tokens; service_tier=scale"
    # Server tools other than web search are billed as "other".
    assert got[(15, "other")]["quantity"] == Decimal(4)
    assert got[(15, "other")]["description"] == "server_tool_use.code_execution_requests"
    assert got[(15, "web_search")]["quantity"] == Decimal(2)


# --- Admin API cost report ---------------------------------------------------------------------


def test_cost_report_cents_become_exact_dollars(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "anthropic-cost" / "page.json")
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "anthropic-cost", 9, 9, 0,
    )  # fmt: skip
    got = [
        (x["line_no"], x["token_category"], x["cost"], x["model"], x["service_tier"])
        for x in _lines(con)
    ]
    sonnet = "claude-sonnet-4-5-20250929"
    assert got == [
        (7, "input", Decimal("0.36"), sonnet, "standard"),
        (18, "cache_read", Decimal("0.093"), sonnet, "standard"),
        (29, "cache_write", Decimal("0.09375"), sonnet, "standard"),
        (40, "cache_write_1h", Decimal("0.024"), sonnet, "standard"),
        (51, "output", Decimal("0.27"), sonnet, "standard"),
        (62, "web_search", Decimal("0.03"), None, None),
        (73, "input", Decimal("1.2378912"), "claude-haiku-4-5-20251001", "batch"),
        (91, "other", Decimal("15"), None, None),
        (102, "other", Decimal("0.001"), None, None),
    ]
    lines = _lines(con)
    assert {x["currency"] for x in lines} == {"USD"}
    assert {x["quantity"] for x in lines} == {None}
    assert {x["dataset"] for x in lines} == {"anthropic.cost_report"}
    assert (
        lines[0]["description"] == "Claude Sonnet 4.5 Usage - Input Tokens; context_window=0-200k"
    )
    assert lines[6]["description"].endswith("; context_window=200k-1M; inference_geo=us")
    assert lines[7]["description"] == "Code Execution Usage"
    assert _loaded_cost(con) == _expected_cost_json(FIX / "anthropic-cost" / "page.json")


@pytest.mark.parametrize("name", ["pages.json", "ungrouped.json"])
def test_cost_report_shapes(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = FIX / "anthropic-cost" / name
    (r,) = load(con, path)
    assert (r.format, r.rows_quarantined) == ("anthropic-cost", 0)
    assert _loaded_cost(con) == _expected_cost_json(path)


def test_cost_report_without_description_grouping_is_other(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, FIX / "anthropic-cost" / "ungrouped.json")
    (line,) = _lines(con)
    assert (line["token_category"], line["cost"], line["description"]) == (
        "other", Decimal("88.125"), "total",
    )  # fmt: skip


def test_cost_report_quarantine_reasons(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "anthropic-cost" / "bad.json")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (10, 2, 8)
    assert _quarantine(con) == [
        (7, "invalid amount: abc"),
        (8, "missing amount"),
        (9, "amount has more than 10 decimal places: 0.0000000000001"),
        (10, "amount out of range: 1e40"),
        (11, "missing currency"),
        (12, "invalid currency: dollars"),
        (14, "duplicate key: amount"),
        (20, "missing ending_at"),
    ]
    got = {x["line_no"]: x for x in _lines(con)}
    # A JSON number is read exactly too; lower-case currency codes are upper-cased.
    assert (got[13]["cost"], got[13]["currency"]) == (Decimal("2.5"), "USD")
    # An unknown token type keeps its money as "other", in the source's words.
    assert (got[15]["token_category"], got[15]["cost"]) == ("other", Decimal("0.07"))
    assert got[15]["description"] == "cache_creation.ephemeral_24h_input_tokens"


def test_a_report_of_idle_days_loads_nothing(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "usage.json"
    buckets: list[dict[str, Any]] = [
        {
            "starting_at": f"2026-03-0{d}T00:00:00Z",
            "ending_at": f"2026-03-0{d + 1}T00:00:00Z",
            "results": r,
        }
        for d, r in ((1, []), (2, None))
    ]
    path.write_text(json.dumps({"data": buckets, "has_more": False, "next_page": None}))
    (r,) = load(con, path)
    assert (r.format, r.status, r.records_read, r.rows_quarantined) == (
        "anthropic-usage",
        "loaded",
        0,
        0,
    )
    assert _lines(con) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"data": [{"starting_at": "2026-03-01T00:00:00Z", "results": [{"amount": "1"', "line 1"),
        (
            '{"type": "error", "error": {"type": "permission_error", "message": "no"}}',
            "permission_error",
        ),
        ('{"hello": "world"}', "no report pages or buckets"),
        ("\ufeff[1, 2, 3]", "no report pages or buckets"),
    ],
)
def test_unreadable_json_rejects_the_file(
    text: str, message: str, tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "report.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as e:
        load(con, path, input_format="anthropic-cost")
    assert str(path) in str(e.value)
    assert con.execute("SELECT count(*) FROM billing_lines").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM files").fetchall() == [(0,)]


def test_invalid_utf8_json_is_rejected(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b'{"data": [], "x": "\xff"}')
    with pytest.raises(InputError, match="not UTF-8"):
        load(con, path, input_format="anthropic-usage")


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=8, min_value=-(10**20), max_value=10**20
    )
)
def test_cents_are_divided_exactly(cents: Decimal) -> None:
    assert ab._cents(str(cents)) == cents / 100
    assert ab._cents(format(cents, "E")) == cents / 100


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1/2", "$3", "3,4", " ", True, [1], {"a": 1}])
def test_cents_refuse_what_is_not_a_decimal(value: Any) -> None:
    with pytest.raises(RecordError):
        ab._cents(value)


# --- Console CSV exports -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "claude_api_tokens_2026_04.csv",  # 2026 header: inference_geo, speed
        "claude_api_tokens_2026_02.csv",  # Feb-2026 header
        "claude_api_tokens_2025_06.csv",  # mid-2025 header: no context_window
        "bom_crlf_upper.csv",  # BOM, CRLF, upper-case names, a quoted newline
    ],
)
def test_console_usage_versions(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = FIX / "anthropic-console-usage" / name
    (r,) = load(con, path)
    assert (r.format, r.rows_quarantined) == ("anthropic-console-usage", 0)
    assert r.records_read == len(_csv_rows(path))
    assert _loaded_quantities(con) == _expected_usage_csv(path)
    assert {x["dataset"] for x in _lines(con)} == {"anthropic.console.usage"}
    assert con.execute("SELECT count(*) FROM billing_lines WHERE cost IS NOT NULL").fetchall() == [
        (0,)
    ]


@pytest.mark.parametrize("folder", ["anthropic-console-usage", "anthropic-console-cost"])
def test_csv_readers_agree(folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's reader and the exact Python reader give the same lines for clean files."""
    from tokenaudit import db
    from tokenaudit.ingest import tabular

    def lines() -> list[tuple[list[dict[str, Any]], list[tuple[int, str]]]]:
        out = []
        for path in sorted((FIX / folder).glob("*.csv")):
            with db.connect(":memory:") as c:
                load(c, path)
                kept = [{k: v for k, v in x.items() if k != "api_key_hash"} for x in _lines(c)]
                out.append((kept, _quarantine(c)))
        return out

    fast = lines()
    monkeypatch.setattr(tabular, "_fast_csv", lambda *_: False)
    assert lines() == fast


def test_console_usage_fields(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "anthropic-console-usage" / "claude_api_tokens_2026_04.csv")
    lines = _lines(con)
    opus = [x for x in lines if x["line_no"] == 3]
    assert {x["token_category"] for x in opus} == {
        "input", "cache_read", "cache_write", "cache_write_1h", "output", "web_search",
    }  # fmt: skip
    x = opus[0]
    assert (str(x["period_start"]), str(x["period_end"])) == (
        "2026-04-08 00:00:00", "2026-04-09 00:00:00",
    )  # fmt: skip
    assert (x["workspace"], x["api_key_last4"], x["service_tier"]) == (
        "Support",
        "-bot",
        "standard",
    )
    assert x["api_key_hash"] == _key_hash(con, "support-bot")
    by_cat = {y["token_category"]: y["description"] for y in opus}
    assert by_cat["cache_write_1h"] == (
        "usage_input_tokens_cache_write_1h; context_window=> 200k; inference_geo=us; speed=fast"
    )
    assert {y["service_tier"] for y in lines if y["line_no"] == 4} == {"batch"}
    assert not [y for y in lines if y["line_no"] == 5]  # an idle row: loaded, nothing billed
    assert "support-bot" not in json.dumps(
        con.execute("SELECT * FROM billing_lines").fetchall(), default=str
    )


def test_console_usage_line_numbers_survive_quoted_newlines(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "anthropic-console-usage" / "bom_crlf_upper.csv")
    rows = con.execute(
        "SELECT DISTINCT line_no, service_tier FROM billing_lines ORDER BY 1"
    ).fetchall()
    assert rows == [(2, "standard"), (4, "standard")]  # "default" is the standard tier


def test_console_usage_quarantine_reasons(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "anthropic-console-usage" / "bad.csv")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (8, 2, 6)
    assert _quarantine(con) == [
        (2, "negative usage_output_tokens: -10"),
        (3, "invalid usage_input_tokens_no_cache: 1,234"),
        (4, "invalid usage_date_utc: Feb 1 2026"),
        (5, "expected 12 fields, found 9"),
        (9, "missing usage_date_utc"),
        (10, "invalid usage_output_tokens: 1.5"),
    ]
    got = {(x["line_no"], x["token_category"]): x for x in _lines(con)}
    assert got[(7, "input")]["service_tier"] == "priority"  # empty cells count as zero
    assert set(got) == {(7, "input"), (7, "output"), (8, "input"), (8, "output")}
    assert got[(8, "input")]["service_tier"] is None
    assert got[(8, "input")]["description"].endswith("usage_type=scale")


@pytest.mark.parametrize(
    "name",
    [
        "claude_api_cost_2026_02_01_to_2026_02_03.csv",  # Feb-2026 header
        "claude_api_cost_2026_08_01_to_2026_08_31.csv",  # later header: list price, geo, speed
    ],
)
def test_console_cost_versions(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = FIX / "anthropic-console-cost" / name
    (r,) = load(con, path)
    assert (r.format, r.rows_quarantined) == ("anthropic-console-cost", 0)
    assert r.records_read == len(_csv_rows(path))
    cost, listed = _expected_cost_csv(path)
    assert _loaded_cost(con) == cost
    got_list = con.execute("SELECT coalesce(sum(list_cost), 0) FROM billing_lines").fetchall()[0][0]
    assert Decimal(got_list) == listed
    assert con.execute("SELECT DISTINCT currency FROM billing_lines").fetchall() == [("USD",)]
    assert con.execute(
        "SELECT count(*) FROM billing_lines WHERE quantity IS NOT NULL"
    ).fetchall() == [(0,)]


def test_console_cost_fields(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "anthropic-console-cost" / "claude_api_cost_2026_02_01_to_2026_02_03.csv")
    got = [
        (x["line_no"], x["token_category"], x["cost"], x["model"], x["model_id"])
        for x in _lines(con)
    ]
    assert got[:5] == [
        (2, "input", Decimal("0.01"), "Claude Haiku 4.5", "claude-haiku-4-5"),
        (3, "output", Decimal("0.00"), "Claude Haiku 4.5", "claude-haiku-4-5"),
        (4, "cache_read", Decimal("1.05"), "Claude Opus 4.5", "claude-opus-4-5"),
        (5, "cache_write", Decimal("0.94"), "Claude Opus 4.5", "claude-opus-4-5"),
        (6, "output", Decimal("0.45"), "Claude Opus 4.5", "claude-opus-4-5"),
    ]
    assert got[-2:] == [
        (10, "cache_write_1h", Decimal("0.30"), "Claude Opus 4.5", "claude-opus-4-5"),
        (11, "web_search", Decimal("0.20"), None, None),
    ]
    first = _lines(con)[0]
    assert first["dataset"] == "anthropic.console.cost"
    assert first["description"] == "input_no_cache; context_window=≤ 200k; usage_type=message"
    assert first["api_key_hash"] == _key_hash(con, "ci-runner")


def test_console_cost_later_header(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIX / "anthropic-console-cost" / "claude_api_cost_2026_08_01_to_2026_08_31.csv")
    got = {x["line_no"]: x for x in _lines(con)}
    assert (got[4]["cost"], got[4]["list_cost"]) == (Decimal("0.10"), Decimal("1.00"))
    assert (
        got[5]["description"]
        == "output; context_window=≤ 200k; inference_geo=global; speed=fast; usage_type=message"
    )
    assert (got[6]["token_category"], got[6]["model"]) == ("other", None)  # code execution


def test_console_cost_quarantine_reasons(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIX / "anthropic-console-cost" / "bad.csv")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (9, 2, 7)
    assert _quarantine(con) == [
        (2, "invalid cost_usd: abc"),
        (3, "invalid cost_usd: $1.00"),
        (4, "invalid cost_usd: 1,50"),
        (5, "missing cost_usd"),
        (6, "invalid usage_date_utc: 2026-02-31"),
        (7, "invalid cost_usd: 0.0000000000001"),
        (10, "malformed CSV row: unexpected end of data"),
    ]
    got = {x["line_no"]: x for x in _lines(con)}
    assert got[8]["cost"] == Decimal("-0.25")  # a credit
    assert got[9]["token_category"] == "other"  # an unknown token type keeps its money


def test_secrets_never_reach_the_database(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    canary = "sk-ant-CANARY0123456789abcdef"
    path = tmp_path / "claude_api_cost.csv"
    path.write_text(
        "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,cost_type\n"
        f"2026-02-01,Claude Opus 4.5,Default,{canary},message,,output,1.00,token\n"
        f"2026-02-01,Claude Opus 4.5,Default,k,message,,output,{canary},token\n",
        encoding="utf-8",
    )
    (r,) = load(con, path)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert _quarantine(con) == [(3, "invalid cost_usd: [redacted]")]
    dump = json.dumps(
        [
            con.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("billing_lines", "quarantine", "files")
        ],
        default=str,
    )
    assert "CANARY" not in dump


@pytest.mark.parametrize(
    ("fmt", "header", "missing"),
    [
        ("anthropic-console-cost", "usage_date_utc,model,token_type", "cost_usd"),
        ("anthropic-console-usage", "model_version,usage_output_tokens", "usage_date_utc"),
        (
            "anthropic-console-usage",
            "usage_date_utc,model_version",
            "usage_input_tokens_no_cache or",
        ),
    ],
)
def test_missing_required_column_rejects_the_file(
    fmt: str, header: str, missing: str, tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match=f"missing column\\(s\\) {missing}"):
        load(con, path, input_format=fmt)


def test_header_only_export_loads_nothing(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "claude_api_tokens_2026_05.csv"
    path.write_text(
        (FIX / "anthropic-console-usage" / "claude_api_tokens_2026_02.csv")
        .read_text()
        .splitlines()[0]
        + "\n"
    )
    (r,) = load(con, path)
    assert (r.format, r.records_read, r.rows_loaded) == ("anthropic-console-usage", 0, 0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["2026-02-01", "2026-02-30", "", "x"]),
            st.sampled_from(["input_no_cache", "output", "input_cache_read", "web", ""]),
            st.one_of(
                st.decimals(
                    places=2, allow_nan=False, allow_infinity=False, min_value=-1000, max_value=1000
                ).map(str),
                st.text(max_size=5),
            ),
        ),
        max_size=8,
    )
)
def test_console_cost_conserves_records(rows: list[tuple[str, str, str]]) -> None:
    head = "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,cost_type\n"
    body = "".join(
        f'{d},Claude Opus 4.5,Default,k,message,,{t},"{c.replace(chr(34), chr(34) * 2)}",token\n'
        for d, t, c in rows
    )
    from tokenaudit import db

    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as c:
        path = Path(tmp) / "claude_api_cost.csv"
        path.write_text(head + body, encoding="utf-8", newline="")
        (r,) = load(c, path, input_format="anthropic-console-cost")
        assert r.rows_loaded + r.rows_quarantined == r.records_read == len(rows)
        good = [Decimal(x) for d, _, x in rows if d == "2026-02-01" and _is_money(x)]
        assert r.rows_loaded == len(good)
        assert _loaded_cost(c) == sum(good, Decimal(0))


def _is_money(text: str) -> bool:
    import re

    return (
        re.fullmatch(r"-?([0-9]{1,26}(\.[0-9]{0,12})?|\.[0-9]{1,12})", text.strip(" ")) is not None
    )


# --- reloading and overlapping exports ----------------------------------------------------------


def _cost_csv(path: Path, days: dict[int, str]) -> Path:
    head = "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,cost_type\n"
    body = "".join(
        f"2026-02-{d:02d},Claude Opus 4.5,Default,k,message,≤ 200k,output,{c},token\n"
        for d, c in days.items()
    )
    path.write_text(head + body, encoding="utf-8")
    return path


def test_reloading_and_overlapping_console_exports(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    month = _cost_csv(tmp_path / "claude_api_cost_a.csv", dict.fromkeys(range(1, 11), "1.00"))
    load(con, month)
    assert _loaded_cost(con) == Decimal("10")
    (again,) = load(con, month)
    assert again.status == "skipped"
    assert _loaded_cost(con) == Decimal("10")
    later = _cost_csv(
        tmp_path / "claude_api_cost_b.csv", {5: "1.50", **dict.fromkeys(range(6, 13), "1.00")}
    )
    (r,) = load(con, later)
    assert "replaced 6 lines" in r.detail
    assert _loaded_cost(con) == Decimal("12.50")


def test_overlapping_api_reports_replace_not_add(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    page = json.loads((FIX / "anthropic-usage" / "page.json").read_text())
    load(con, FIX / "anthropic-usage" / "page.json")
    once = _by_category(con)
    # The same days fetched again as an array of buckets: replaced, never added.
    again = tmp_path / "again.json"
    again.write_text(json.dumps(page["data"], indent=1))
    (r,) = load(con, again)
    assert r.status == "loaded" and "replaced" in r.detail
    assert _by_category(con) == once
    # The cost report is another dataset: loading it leaves the usage lines alone.
    load(con, FIX / "anthropic-cost" / "page.json")
    usage = con.execute(
        "SELECT sum(quantity) FROM billing_lines WHERE dataset = 'anthropic.usage_report'"
    ).fetchall()[0][0]
    assert Decimal(usage) == sum(q for q, _ in once.values())


# --- detection ----------------------------------------------------------------------------------


def _sniffers(path: Path) -> tuple[list[str], str | None]:
    with tempfile.TemporaryDirectory() as tmp:
        src = open_source(path, Path(tmp))
        claims = [n for n in OURS if BY_NAME[n].sniff(src)]
        found = detect(src)
        src.scan  # noqa: B018 (let the background scan finish before the folder goes)
    return claims, found.name if found else None


MINE = sorted(
    p
    for name in OURS
    for p in (FIX / name).glob("*")
    if p.is_file() and not p.name.endswith(".expected.json")
)
OTHERS = sorted(
    p
    for p in FIX.rglob("*")
    if p.is_file() and p.parent.name not in OURS and not p.name.endswith(".expected.json")
)


@pytest.mark.parametrize("path", MINE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixtures_are_detected_as_their_format(path: Path) -> None:
    claims, found = _sniffers(path)
    assert claims == [path.parent.name]
    assert found == path.parent.name


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_other_formats_are_not_claimed(path: Path) -> None:
    assert _sniffers(path)[0] == []


def _other_samples() -> list[Path]:
    """Every shared sample (billing exports, logs, traces) that is not one of ours."""
    if not SAMPLES.is_dir():
        return []
    return sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.is_file()
        and not p.name.startswith(("anthropic_", "claude_api_", "LICENSE"))
        and p.suffix != ".md"
    )


@needs_samples
@pytest.mark.parametrize("path", _other_samples(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_other_shared_samples_are_not_claimed(path: Path) -> None:
    assert _sniffers(path)[0] == []


def test_formats_are_registered() -> None:
    for name in OURS:
        assert BY_NAME[name].kind == "billing"
        assert BY_NAME[name].detects


# --- the shared real samples ----------------------------------------------------------------------


@needs_samples
@pytest.mark.parametrize(
    "name",
    [
        "anthropic_usage_report_messages_response.example.json",
        "anthropic_cost_report_response.example.json",
    ],
)
def test_official_doc_examples(name: str, con: duckdb.DuckDBPyConnection) -> None:
    path = PROVIDER_SAMPLES / "official-doc-examples" / name
    (r,) = load(con, path)
    assert r.rows_quarantined == 0
    assert r.records_read == len(_json_results(path))
    if "usage" in name:
        assert r.format == "anthropic-usage"
        assert _loaded_quantities(con) == _expected_usage_json(path)
    else:
        assert r.format == "anthropic-cost"
        assert _loaded_cost(con) == _expected_cost_json(path) == Decimal("1.2378912")


@needs_samples
def test_console_csv_samples(con: duckdb.DuckDBPyConnection) -> None:
    folder = PROVIDER_SAMPLES / "anthropic-console-csv"
    tokens = folder / "claude_api_tokens_2026_02.csv"
    costs = folder / "claude_api_cost_2026_02_01_to_2026_02_01.csv"
    (r,) = load(con, tokens)
    assert (r.format, r.rows_quarantined, r.records_read) == (
        "anthropic-console-usage", 0, len(_csv_rows(tokens)),
    )  # fmt: skip
    assert _loaded_quantities(con) == _expected_usage_csv(tokens)
    (r,) = load(con, costs)
    assert (r.format, r.rows_quarantined, r.records_read) == (
        "anthropic-console-cost", 0, len(_csv_rows(costs)),
    )  # fmt: skip
    assert _loaded_cost(con) == _expected_cost_csv(costs)[0]
    ids = con.execute("SELECT DISTINCT model, model_id FROM billing_lines ORDER BY 1").fetchall()
    assert ("Claude Opus 4.5", "claude-opus-4-5") in ids  # display names resolve
