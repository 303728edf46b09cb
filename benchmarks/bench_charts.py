"""Benchmark: drawing the HTML report's charts (``tokenaudit.html.page.render``).

Copies the database (``--db``; default: the one ``benchmarks/bench_drains.py`` leaves in
/tmp/bd) to a temporary folder, gathers the page's data once with ``api.html_data``, then
times ``render`` alone, ``--runs`` times in process, and reports the best and the median
(the charts are most of it) with the number of SVG charts and the page's size.

    python benchmarks/bench_charts.py --db /tmp/bd/drains.duckdb --runs 7
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tokenaudit import api
from tokenaudit.html.page import render


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=Path("/tmp/bd/drains.duckdb"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench.duckdb"
        shutil.copyfile(args.db, copy)
        data = api.html_data(copy)
    page = render(data)  # warm-up: fonts loaded, text metrics cached
    runs = []
    for _ in range(args.runs):
        start = time.perf_counter()
        render(data)
        runs.append(time.perf_counter() - start)
    result = {
        "render_seconds": [round(r, 3) for r in runs],
        "best_seconds": round(min(runs), 3),
        "median_seconds": round(statistics.median(runs), 3),
        "charts": page.count("<svg"),
        "page_bytes": len(page.encode()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
