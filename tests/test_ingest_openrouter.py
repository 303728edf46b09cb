"""OpenRouter activity: the per-generation CSV export and the activity API JSON."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import DATA, SHARED, load, quarantine_rows
from tokenaudit.errors import InputError
from tokenaudit.ingest import detect
from tokenaudit.ingest.openrouter import INGESTER, activity_items
from tokenaudit.ingest.source import open_source

FIXTURES = DATA / "ingest" / "openrouter"
SAMPLES = SHARED / "samples" / "provider"
needs_samples = pytest.mark.skipif(
    not (SHARED / "samples").is_dir(), reason="shared samples not available"
)

COLUMNS = (
    "line_no", "dataset", "provider", "account", "project", "workspace", "api_key_hash",
    "api_key_last4", "model", "service_tier", "token_category", "quantity", "cost", "currency",
    "description", "period_start", "period_end",
)  # fmt: skip


def lines(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM billing_lines ORDER BY file_id, line_no, token_category"
    ).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def per_generation(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, Any]]:
    """line -> {category: quantity or cost}."""
    out: dict[int, dict[str, Any]] = {}
    for x in lines(con):
        value = x["cost"] if x["token_category"] == "web_search" else x["quantity"]
        if x["token_category"] == "requests":
            value = (x["quantity"], x["cost"])
        out.setdefault(x["line_no"], {})[x["token_category"]] = value
    return out


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def totals(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Any, Any]]:
    rows = con.execute(
        "SELECT token_category, sum(quantity), sum(cost) FROM billing_lines GROUP BY 1"
    ).fetchall()
    return {c: (q, m) for c, q, m in rows}


# --- the CSV export --------------------------------------------------------------------------


def test_each_generation_splits_into_disjoint_categories(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "activity_2026.csv")
    assert (r.format, r.kind, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "openrouter", "billing", 7, 7, 0,
    )  # fmt: skip
    one = (Decimal(1),)
    assert per_generation(con) == {
        2: {"input": 1840, "output": 212, "requests": (*one, Decimal("0.000612"))},
        # tokens_prompt 52310 includes 48120 cached; 120 reasoning are inside the 388 output
        3: {"input": 4190, "cache_read": 48120, "output": 388,
            "requests": (*one, Decimal("0.004127"))},
        4: {"input": 48200, "output": 610, "requests": (*one, Decimal("0.031504"))},
        # the web search is part of cost_total: 0.013180 = 0.010000 + 0.003180
        5: {"input": 1520, "output": 302, "web_search": Decimal("0.01"),
            "requests": (*one, Decimal("0.00318"))},
        6: {"input": 2400, "output": 150, "requests": (*one, Decimal("0.00009"))},
        7: {"input": 7310, "requests": (*one, Decimal(0))},  # cancelled, nothing generated
        8: {"input": 3100, "output": 1450, "requests": (*one, Decimal("0.00284"))},
    }  # fmt: skip
    rows = lines(con)
    # The lines of each generation add up to its cost_total.
    assert sum(x["cost"] or 0 for x in rows) == sum(
        Decimal(x["cost_total"]) for x in csv_rows(FIXTURES / "activity_2026.csv")
    )
    assert {x["provider"] for x in rows} == {"openrouter"}
    assert {x["dataset"] for x in rows} == {"openrouter.activity"}
    assert {x["currency"] for x in rows if x["cost"] is not None} == {"USD"}
    assert {x["currency"] for x in rows if x["cost"] is None} == {None}
    first = next(x for x in rows if x["line_no"] == 3 and x["token_category"] == "requests")
    assert first["model"] == "openai/gpt-5-mini-20250807"
    assert first["project"] == "support-triage"
    assert first["period_start"].isoformat() == "2026-10-02T09:14:09.087000"
    assert first["period_end"].isoformat() == "2026-10-02T09:14:09.088000"
    assert first["description"] == "cost_total via OpenAI (standard); cost_cache -0.011250"
    output = next(x for x in rows if x["line_no"] == 3 and x["token_category"] == "output")
    assert "120 reasoning tokens included" in output["description"]
    byok = next(x for x in rows if x["line_no"] == 6 and x["token_category"] == "requests")
    assert byok["description"].endswith("; byok_usage_inference 0.001800")
    cancelled = next(x for x in rows if x["line_no"] == 7 and x["token_category"] == "requests")
    assert cancelled["description"].endswith("; cancelled")
    files = next(x for x in rows if x["line_no"] == 8 and x["token_category"] == "requests")
    assert files["description"].endswith("; cost_file_processing 0.000200")


def test_api_keys_are_hashed_never_stored(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "activity_2026.csv")
    keys = con.execute(
        "SELECT DISTINCT api_key_hash, api_key_last4 FROM billing_lines ORDER BY 2"
    ).fetchall()
    assert sorted(k[1] for k in keys) == ["-key", "-key", "groq"]
    assert all(len(k[0]) == 32 for k in keys)
    dump = json.dumps(
        con.execute("SELECT * FROM billing_lines").fetchall(), default=str
    ) + json.dumps(con.execute("SELECT * FROM files").fetchall(), default=str)
    for name in ("prod-triage-key", "research-key", "byok-groq"):
        assert name not in dump


def test_older_column_set_is_read_by_header_name(con: duckdb.DuckDBPyConnection) -> None:
    """Dec-2025 exports have no cost_file_processing column: model_permaslug moves left."""
    (r,) = load(con, FIXTURES / "activity_2025_23_columns.csv")
    assert (r.records_read, r.rows_quarantined) == (2, 0)
    assert per_generation(con) == {
        2: {"input": 1602, "cache_read": 4608, "output": 340,
            "requests": (Decimal(1), Decimal("0.001905"))},
        3: {"input": 1190, "output": 64, "requests": (Decimal(1), Decimal("0.000357"))},
    }  # fmt: skip
    models = {x["model"] for x in lines(con)}
    assert models == {"openai/gpt-5-mini-20250807", "mistralai/mistral-small-3.2-24b-instruct"}


def test_bad_rows_are_quarantined_with_reasons_and_line_numbers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (r,) = load(con, FIXTURES / "bad_rows.csv")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (12, 2, 10)
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "invalid created_at: 30/09/2026 10:00"},
        {"line_no": 4, "reason": "invalid cost_total: abc"},
        {"line_no": 5, "reason": "negative tokens_prompt: -5"},
        {"line_no": 6, "reason": "tokens_completion is not a whole number: 80.5"},
        {"line_no": 7, "reason": "tokens_cached (1500) exceeds tokens_prompt (1200)"},
        {"line_no": 8, "reason": "cost_total has more than 12 decimal places: 0.0000000000001"},
        {"line_no": 9, "reason": "missing cost_total"},
        {"line_no": 10, "reason": "duplicate generation_id (first at line 2)"},
        {"line_no": 11, "reason": "invalid cost_web_search: $0.01"},
        {"line_no": 12, "reason": "expected 24 fields, found 8"},
    ]
    gens = per_generation(con)
    assert sorted(gens) == [2, 13]
    # ISO with Z is accepted too; 1024 of the 2400 prompt tokens were cached.
    assert gens[13] == {
        "input": 1376, "cache_read": 1024, "output": 160,
        "requests": (Decimal(1), Decimal("0.0009")),
    }  # fmt: skip


def test_missing_required_column_rejects_the_file(tmp_path: Path) -> None:
    from tokenaudit import db

    path = tmp_path / "activity.csv"
    text = (FIXTURES / "activity_2026.csv").read_text(encoding="utf-8")
    path.write_text(text.replace("cost_total,", "cost_sum,", 1), encoding="utf-8")
    with db.connect(":memory:") as con, pytest.raises(InputError) as err:
        load(con, path, input_format="openrouter")
    assert "missing column(s) cost_total" in str(err.value)


def test_reloading_and_overlapping_exports_never_double_count(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = FIXTURES / "activity_2026.csv"
    load(con, path)
    once = totals(con)
    (again,) = load(con, path)
    assert again.status == "skipped"
    # A later export that repeats the last three generations and adds one more.
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    extra = (
        "gen-1790990120-Nx2cV5bM8qW1eR4tY7uI,2026-10-02 09:16:02.310,0.001000,,,,0,1000,100,"
        "0,0,openai/gpt-5-mini-20250807,OpenAI,standard,false,true,,completed,stop,1200,400,"
        "support-triage,prod-triage-key,false\n"
    )
    later = tmp_path / "later.csv"
    later.write_text("".join([text[0], *text[-3:], extra]), encoding="utf-8")
    (r,) = load(con, later)
    assert "replaced 8 lines" in r.detail  # the 3 repeated generations: 3 + 2 + 3 lines
    now = totals(con)
    assert now["requests"] == (once["requests"][0] + 1, once["requests"][1] + Decimal("0.001"))
    assert now["input"][0] == once["input"][0] + 1000
    assert now["output"][0] == once["output"][0] + 100


# --- the activity API ------------------------------------------------------------------------


def test_activity_api_response(con: duckdb.DuckDBPyConnection) -> None:
    (r,) = load(con, FIXTURES / "activity_api.json")
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "openrouter", 4, 3, 1,
    )  # fmt: skip
    assert quarantine_rows(con) == [{"line_no": 29, "reason": "negative requests: -3"}]
    assert per_generation(con) == {
        3: {"input": 2210450, "output": 188320, "requests": (412, Decimal("1.284517"))},
        16: {"input": 512000, "output": 40100, "requests": (37, Decimal("0.0125"))},
        42: {"requests": (0, Decimal(0))},  # an idle endpoint-day
    }
    rows = lines(con)
    day = next(x for x in rows if x["line_no"] == 16)
    assert day["period_start"].isoformat() == "2026-01-16T00:00:00"
    assert day["period_end"].isoformat() == "2026-01-17T00:00:00"
    assert day["model"] == "anthropic/claude-4.5-sonnet-20250929"
    cost = next(x for x in rows if x["line_no"] == 16 and x["token_category"] == "requests")
    assert cost["description"] == "usage via Amazon Bedrock; byok_usage_inference 2.5"


def test_activity_items_are_numbered_by_their_first_line() -> None:
    text = '{"data":[\n{"a":1},\n\n  {"b":\n2}],"x":{"data":[]}}'
    assert activity_items(text) == [(2, {"a": 1}), (4, {"b": 2})]
    with pytest.raises(ValueError, match="data"):
        activity_items('{"items": []}')


def test_a_broken_activity_response_is_rejected(tmp_path: Path) -> None:
    from tokenaudit import db

    path = tmp_path / "activity.json"
    text = (FIXTURES / "activity_api.json").read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with db.connect(":memory:") as con, pytest.raises(InputError) as err:
        load(con, path, input_format="openrouter")
    assert str(path) in str(err.value) and "line" in str(err.value)


# --- sniffing -------------------------------------------------------------------------------


INPUTS = sorted(p for p in FIXTURES.iterdir() if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_sniff_claims_openrouter_files(path: Path, tmp_path: Path) -> None:
    assert detect(open_source(path, tmp_path)) is INGESTER


def _other_files() -> list[Path]:
    root = DATA / "ingest"
    found = [p for p in root.rglob("*") if p.is_file() and p.parent != FIXTURES]
    return sorted(p for p in found if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", _other_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sniff_rejects_other_formats(path: Path, tmp_path: Path) -> None:
    assert not INGESTER.sniff(open_source(path, tmp_path))


@needs_samples
def test_sniff_rejects_other_shared_samples(tmp_path: Path) -> None:
    for path in sorted(SAMPLES.rglob("*")):
        if path.is_file() and path.parent.name != "openrouter-activity":
            assert not INGESTER.sniff(open_source(path, tmp_path)), path


# --- the real sample ------------------------------------------------------------------------


@needs_samples
def test_real_activity_export(con: duckdb.DuckDBPyConnection) -> None:
    (path,) = sorted((SAMPLES / "openrouter-activity").glob("*.csv"))
    (r,) = load(con, path)
    rows = csv_rows(path)
    assert (r.format, r.records_read, r.rows_loaded, r.rows_quarantined) == (
        "openrouter", len(rows), len(rows), 0,
    )  # fmt: skip
    prompt = sum(int(x["tokens_prompt"]) for x in rows)
    cached = sum(int(x["tokens_cached"]) for x in rows)
    completion = sum(int(x["tokens_completion"]) for x in rows)
    cost = sum(Decimal(x["cost_total"]) for x in rows)
    web = sum(Decimal(x["cost_web_search"] or "0") for x in rows)
    got = totals(con)
    assert got["input"][0] == prompt - cached
    assert got["cache_read"][0] == cached
    assert got["output"][0] == completion  # reasoning is inside it, not added again
    assert "reasoning" not in got
    assert got["requests"] == (len(rows), cost - web)
    assert con.execute("SELECT sum(cost) FROM billing_lines").fetchall()[0][0] == cost
    # Discounts were kept in the description, not subtracted again.
    discounted = [x for x in rows if x["cost_cache"].startswith("-")]
    noted = con.execute(
        "SELECT count(*) FROM billing_lines WHERE description LIKE '%cost_cache -%'"
    ).fetchall()[0][0]
    assert discounted and noted == len(discounted)
