"""Shared fixtures: an in-memory database, a CLI runner, the data folders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tokenaudit import db
from tokenaudit.ingest import IngestOptions, ingest
from tokenaudit.ingest.load import FileResult
from tokenaudit.pricing import PriceSettings
from tokenaudit.tokens.encodings import cache_path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "samples"

if (SHARED / "tiktoken").is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken"))

# Columns a golden file records for every loaded usage row.
GOLDEN_COLUMNS = (
    "line_no",
    "ts",
    "request_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "session_id",
    "provider",
    "model",
    "model_id",
    "service_tier",
    "workflow",
    "team",
    "tenant",
    "user",
    "agent",
    "prompt_version",
    "environment",
    "project",
    "api_key_last4",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "attempt",
    "status",
    "error_type",
    "http_status",
    "latency_ms",
    "outcome",
    "local_input_tokens",
    "local_tokenizer",
    "local_exact",
    "local_system_tokens",
    "local_tool_tokens",
    "local_uncountable",
    "local_note",
    "gateway_input_tokens",
    "reported_cost_usd",
    "cost_usd",
    "tags",
)
# Counts that depend on tiktoken's files: without ../shared/tiktoken, golden files are
# compared without them (the fallback counts characters).
HAVE_TIKTOKEN = bool((p := cache_path("o200k_base")) and p.is_file())
TOKENIZER_COLUMNS = (
    "local_input_tokens",
    "local_tokenizer",
    "local_exact",
    "local_system_tokens",
    "local_tool_tokens",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite golden files (read the diff!)"
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with db.connect(":memory:") as c:
        yield c


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test runs in its own folder: no stray tokenaudit.toml, pricing/ or DB."""
    monkeypatch.delenv("TOKENAUDIT_DB", raising=False)
    monkeypatch.chdir(tmp_path)


def load(
    con: duckdb.DuckDBPyConnection,
    *paths: Path,
    input_format: str | None = None,
    pricing: Path | None = None,
    mapping: dict[str, Any] | None = None,
) -> list[FileResult]:
    opts = IngestOptions(input_format, PriceSettings(pricing), mapping or {})
    return ingest(con, list(paths), opts)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def usage_rows(con: duckdb.DuckDBPyConnection, file_id: int | None = None) -> list[dict[str, Any]]:
    cols = ", ".join(f'"{c}"' for c in GOLDEN_COLUMNS)
    where = f"WHERE file_id = {int(file_id)}" if file_id is not None else ""
    rows = con.execute(
        f"SELECT {cols} FROM usage_events {where} ORDER BY file_id, line_no, request_id"
    ).fetchall()
    out = []
    for row in rows:
        d = {c: _plain(v) for c, v in zip(GOLDEN_COLUMNS, row, strict=True)}
        if d["tags"] is not None:
            d["tags"] = json.loads(d["tags"])
        out.append(d)
    return out


def without_tokenizer_counts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as comparable on any machine: the tiktoken-dependent counts dropped when the
    encodings are not available (a clone without ../shared)."""
    if HAVE_TIKTOKEN:
        return rows
    return [{k: v for k, v in r.items() if k not in TOKENIZER_COLUMNS} for r in rows]


def quarantine_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT line_no, reason FROM quarantine ORDER BY file_id, line_no"
    ).fetchall()
    return [{"line_no": a, "reason": b} for a, b in rows]


# api_key_hash is keyed by the database's random secret: left out, like the usage hashes.
BILLING_GOLDEN_COLUMNS = (
    "line_no",
    "dataset",
    "period_start",
    "period_end",
    "provider",
    "account",
    "project",
    "workspace",
    "api_key_last4",
    "model",
    "model_id",
    "service_tier",
    "token_category",
    "quantity",
    "cost",
    "list_cost",
    "currency",
    "description",
)


def billing_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = ", ".join(f'"{c}"' for c in BILLING_GOLDEN_COLUMNS)
    rows = con.execute(
        f"SELECT {cols} FROM billing_lines ORDER BY file_id, line_no, token_category, "
        "description, model"
    ).fetchall()
    return [{c: _plain(v) for c, v in zip(BILLING_GOLDEN_COLUMNS, r, strict=True)} for r in rows]


def outcome_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = ("line_no", "key_kind", "key", "outcome", "ts", "reviewer")
    rows = con.execute(
        f"SELECT {', '.join(cols)} FROM outcomes ORDER BY file_id, line_no"
    ).fetchall()
    return [{c: _plain(v) for c, v in zip(cols, r, strict=True)} for r in rows]
