"""Placeholder while the format is written: detects nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
from tokenaudit.ingest.base import StageContext

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source


class _Pending:
    name = "openai-logs"
    kind = "usage"
    detects = "(not yet available)"

    def sniff(self, src: Source) -> bool:
        return False

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        raise InputError(f"{src.path}: the openai-logs format is not available yet")


INGESTER = _Pending()
