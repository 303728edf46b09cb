"""Benchmark: ``tokenaudit report --format html`` on a 2,000,000-call database.

Copies the database (``--db``; default: the one ``benchmarks/bench_drains.py`` leaves in
/tmp/bd) to a temporary folder, then times the CLI writing the page (process wall time,
best of ``--runs``) and reports the page's size. A second pass, in process, times each
part of the page over one connection, as ``api.html_data`` does: the rollup by workflow,
the model mix, the aggregated daily queries, drains, billing and token reconciliation, and
drawing the charts with the HTML.

    python benchmarks/bench_html.py --db /tmp/bd/drains.duckdb --runs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tokenaudit import db
from tokenaudit import drains as catalogue
from tokenaudit.api import price_settings
from tokenaudit.config import load_config
from tokenaudit.html import data as page_data
from tokenaudit.html.page import render
from tokenaudit.pricing import ensure_prices
from tokenaudit.reconcile import billing
from tokenaudit.reconcile.tokens import Options as TokenOptions
from tokenaudit.reconcile.tokens import reconcile as tokens_rec
from tokenaudit.report.queries import meta, rollup


def _cli(db_path: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tokenaudit", "report", "--db", str(db_path),
         "--format", "html", "--output", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def _parts(db_path: Path) -> dict[str, float]:
    """Each part of ``api.html_data`` in turn, over one connection as it does."""
    times: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args)
        times[name] = round(time.perf_counter() - start, 3)
        return result

    with db.connect(db_path) as con:
        timed("prices", ensure_prices, con, price_settings(load_config()))
        report = timed("report by workflow", rollup, con, ["workflow"], None, 15)
        models = timed("model mix", page_data.model_mix, con, "true", [], 15)
        daily = timed("daily spend (top 8)", page_data.daily_spend, con, "true", [], 8)
        tokens = timed("daily tokens", page_data.daily_tokens, con, "true", [])
        files, quarantine = timed("files, quarantine", page_data.sources, con)
        data = page_data.PageData(report, models, daily, tokens, files, quarantine)
        data.meta = report.meta = {"filters": {}, **meta(con)}
        data.drains = timed("drains", catalogue.detect, con)
        data.billing = timed("billing reconciliation", billing.reconcile, con, billing.Options())
        data.tokens = timed("token reconciliation", tokens_rec, con, TokenOptions(top=5))
    timed("charts and HTML", render, data)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=Path("/tmp/bd/drains.duckdb"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench.duckdb"
        shutil.copyfile(args.db, copy)
        with db.connect(copy) as con:
            calls = con.execute("SELECT count(*) FROM usage_events").fetchall()[0][0]
        out = Path(tmp) / "report.html"
        _cli(copy, out)  # warm-up: prices resolved, files in the page cache
        runs = [_cli(copy, out) for _ in range(args.runs)]
        parts = _parts(copy)
        result = {
            "calls": calls,
            "cpu": platform.processor() or platform.machine(),
            "cli_seconds": [round(r, 3) for r in runs],
            "best_seconds": round(min(runs), 3),
            "page_bytes": out.stat().st_size,
            "parts_seconds": parts,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
