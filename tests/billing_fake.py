"""A minimal billing format for tests of the billing loader and of reconciliation.

JSON lines, one record per line: {"test_billing": 1, "start", "end", "provider", "model",
"items": [[category, quantity, cost], ...], "bad": reason?, "account", "project"}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tokenaudit.ingest import BY_NAME, INGESTERS
from tokenaudit.ingest.base import StageContext
from tokenaudit.ingest.source import Source
from tokenaudit.model import billing_stage_ddl


class LinesIngester:
    """A minimal billing format for testing the loader: JSON lines, one record per line,
    each with a list of billed items (category, quantity, cost)."""

    name = "test-billing"
    kind = "billing"
    detects = "test only"

    def sniff(self, src: Source) -> bool:
        return b'"test_billing"' in src.head

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(billing_stage_ddl())
        rows: list[tuple[Any, ...]] = []
        for n, line in enumerate(src.data_path.read_text().splitlines(), 1):
            rec = json.loads(line)
            items = rec.get("items") or [None]
            for item in items:
                rows.append(
                    (
                        n,
                        rec.get("bad"),
                        "test.dataset",
                        rec["start"],
                        rec["end"],
                        rec.get("provider", "openai"),
                        rec.get("account"),
                        rec.get("project"),
                        None,
                        None,
                        None,
                        rec.get("model"),
                        None,
                        item and item[0],
                        item and item[1],
                        item and item[2],
                        None,
                        item and "USD",
                        None,
                    )
                )
        con.executemany("INSERT INTO billing_stage VALUES (" + ", ".join(["?"] * 19) + ")", rows)
        return len(rows)


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    ing = LinesIngester()
    monkeypatch.setitem(BY_NAME, ing.name, ing)
    monkeypatch.setattr("tokenaudit.ingest.INGESTERS", [ing, *INGESTERS])


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps({"test_billing": 1, **r}) + "\n" for r in records), encoding="utf-8"
    )
    return path
