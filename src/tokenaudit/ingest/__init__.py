"""The input formats and the ingest entry point.

``INGESTERS`` is an explicit tuple of format modules, tried in order by
``detect`` (content sniffing on the first bytes, never the extension alone).
``ingest`` walks files and folders (recursively, ``.gz`` included) and loads
each file in its own transaction (see ``ingest.load``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import InputError
from tokenaudit.ingest import (
    anthropic_billing,
    claude_code,
    codex,
    custom_map,
    focus,
    gateways,
    langfuse,
    litellm,
    native,
    openai_billing,
    openai_logs,
    openrouter,
    otel,
    outcomes_file,
)
from tokenaudit.ingest.base import Ingester, StageContext
from tokenaudit.ingest.load import FileResult, load_file
from tokenaudit.ingest.source import Source, open_source, walk

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.pricing import PriceSettings

# Most specific first: the native format's sniff is the loosest.
INGESTERS: tuple[Ingester, ...] = (
    *openai_billing.INGESTERS,
    *anthropic_billing.INGESTERS,
    *focus.INGESTERS,
    *openrouter.INGESTERS,
    *otel.INGESTERS,
    *langfuse.INGESTERS,
    *claude_code.INGESTERS,
    *codex.INGESTERS,
    *gateways.INGESTERS,
    *custom_map.INGESTERS,
    openai_logs.INGESTER,
    litellm.INGESTER,
    *outcomes_file.INGESTERS,
    native.INGESTER,
)
BY_NAME: dict[str, Ingester] = {i.name: i for i in INGESTERS}


def get(name: str) -> Ingester:
    try:
        return BY_NAME[name]
    except KeyError:
        raise InputError(
            f"unknown input format '{name}'",
            hint="known formats: " + ", ".join(sorted(BY_NAME)) + " (see 'tokenaudit formats')",
        ) from None


def _unchanged(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int, str, str]]:
    """Files loaded before, by resolved path: (size, mtime_ns, format, kind)."""
    rows = con.execute(
        "SELECT source_path, raw_size, mtime_ns, format, kind FROM files WHERE mtime_ns IS NOT NULL"
    ).fetchall()
    return {str(p): (int(s), int(m), str(f), str(k)) for p, s, m, f, k in rows}


def _known(unchanged: dict[str, tuple[int, int, str, str]], path: Path) -> tuple[str, str] | None:
    """(format, kind) when ``path`` is a file loaded before and not touched since."""
    if not unchanged:
        return None
    try:
        st = path.stat()
        seen = unchanged.get(str(path.resolve()))
    except OSError:
        return None
    if seen is None or seen[:2] != (st.st_size, st.st_mtime_ns):
        return None
    return seen[2], seen[3]


def detect(src: Source) -> Ingester | None:
    for ingester in INGESTERS:
        if ingester.sniff(src):
            return ingester
    return None


@dataclass(frozen=True)
class IngestOptions:
    input_format: str | None
    prices: PriceSettings
    mapping: dict[str, Any]
    custom: Ingester | None = None  # from ``--map FILE``: forced for every file


def ingest(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    options: IngestOptions,
    on_file: Callable[[Path, int, int], None] | None = None,
) -> list[FileResult]:
    """Load every file under ``paths``; return one result per file."""
    from tokenaudit.db import install_secret
    from tokenaudit.pricing import ensure_prices

    ensure_prices(con, options.prices)  # re-prices stored calls if price files changed
    forced = options.custom or (get(options.input_format) if options.input_format else None)
    files = list(walk(paths))
    explicit = {p.resolve() for p in paths if p.is_file()}
    ctx = StageContext(secret=install_secret(con))
    results: list[FileResult | None] = [None] * len(files)
    unchanged = _unchanged(con)
    # A run of files whose format loads many at once (a Claude Code tree) is read in one
    # pass and one transaction; every file still gets its own result and `files` row.
    pending: list[tuple[int, Source]] = []
    batch: Any = None
    last: Ingester | None = None

    def flush() -> None:
        nonlocal batch
        if pending:
            srcs = [s for _, s in pending]
            loaded = batch.load_many(con, srcs, ctx, options.prices, options.mapping)
            for (i, _), r in zip(pending, loaded, strict=True):
                results[i] = r
            for s in srcs:
                if s.compressed:
                    s.data_path.unlink(missing_ok=True)
            pending.clear()
        batch = None

    with tempfile.TemporaryDirectory(prefix="tokenaudit-") as tmp:
        for i, path in enumerate(files):
            if on_file:
                on_file(path, i, len(files))
            known = _known(unchanged, path) if forced is None else None
            if known is not None:
                results[i] = FileResult(str(path), *known, "skipped", 0, 0, 0, "unchanged")
                continue
            src = open_source(path, Path(tmp))
            if src.stat_size == 0:
                results[i] = FileResult(str(path), "-", "-", "empty", 0, 0, 0)
                continue
            # In a tree of a batch format, the previous file's format first (sniffing every
            # format for each of thousands of files costs more than reading them).
            again = last is not None and hasattr(last, "load_many") and last.sniff(src)
            ingester = forced or (last if again else detect(src))
            if ingester is None:
                if path.resolve() in explicit:
                    flush()
                    raise InputError(
                        f"{path}: unrecognised file format",
                        hint="pass --input-format NAME; 'tokenaudit formats' lists them",
                    )
                results[i] = FileResult(str(path), "-", "-", "unrecognised", 0, 0, 0)
                continue
            last = ingester
            if hasattr(ingester, "load_many"):
                if batch is not None and batch is not ingester:
                    flush()
                batch = ingester
                pending.append((i, replace(src, head=b"")))  # don't keep thousands of heads
                continue
            flush()
            results[i] = load_file(con, src, ingester, ctx, options.prices, options.mapping)
            if src.compressed:
                src.data_path.unlink(missing_ok=True)
        flush()
    if on_file:
        on_file(Path(""), len(files), len(files))
    return [r for r in results if r is not None]
