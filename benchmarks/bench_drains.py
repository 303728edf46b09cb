"""Benchmark: every drain detector together on 2,000,000 loaded events.

Writes ``tokenaudit sample --events 200000`` (realistic traffic with every drain kind),
loads it, then copies its calls nine more times into the same database, each copy with its
own ids (request, trace, session, prompt and prefix hashes suffixed) and shifted 31 days
later, and its outcomes likewise: 2,000,000 calls with the sample's shapes and ten times its
drains. Then times ``drains.detect`` (the preparation of the calls table and each detector),
best of ``--runs``.

    python benchmarks/bench_drains.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb

from tokenaudit import api, db
from tokenaudit.drains import DETECTORS, KINDS
from tokenaudit.drains.base import Settings, prepare
from tokenaudit.sample import generate

_SUFFIXED = ("request_id", "trace_id", "session_id", "prompt_hash", "prefix_hash", "span_id")


def _copy_sql(con: duckdb.DuckDBPyConnection, k: int) -> tuple[str, str]:
    cols = [r[0] for r in con.execute("DESCRIBE usage_events").fetchall()]
    exprs = []
    for c in cols:
        name = f'"{c}"'
        if c in _SUFFIXED:
            exprs.append(f"{name} || '-{k}'")
        elif c == "ts":
            exprs.append(f"ts + INTERVAL {31 * k} DAY")
        elif c == "file_id":
            exprs.append(f"file_id + {1000 * k}")
        else:
            exprs.append(name)
    calls = (
        f"INSERT INTO usage_events SELECT {', '.join(exprs)} FROM usage_events WHERE file_id < 1000"
    )
    outcomes = (
        f"INSERT INTO outcomes SELECT file_id + {1000 * k}, line_no, key_kind, key || '-{k}', "
        f"outcome, ts + INTERVAL {31 * k} DAY, reviewer FROM outcomes WHERE file_id < 1000"
    )
    return calls, outcomes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tokenaudit-drains-"))
    sample, path = work / "sample", work / "drains.duckdb"
    if not path.exists():
        generate(sample, events=200_000, seed=3)
        api.ingest(path, [sample])
        with db.connect(path) as con:
            for k in range(1, args.copies):
                for sql in _copy_sql(con, k):
                    con.execute(sql)
            con.execute("CHECKPOINT")
    with db.connect(path) as con:
        con.execute("SET enable_progress_bar = false")
        calls = con.execute("SELECT count(*) FROM usage_events").fetchall()[0][0]
        best: dict[str, float] = {}
        found: dict[str, int] = {}
        for _ in range(args.runs):
            times: dict[str, float] = {}
            t0 = time.perf_counter()
            prepare(con, "true", [])
            times["prepare"] = time.perf_counter() - t0
            for kind in KINDS:
                t = time.perf_counter()
                found[kind] = len(DETECTORS[kind](con, Settings()))
                times[kind] = time.perf_counter() - t
            times["total"] = time.perf_counter() - t0
            con.execute("DROP TABLE IF EXISTS _dr")
            for k, v in times.items():
                best[k] = min(best.get(k, v), v)
    cpu = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{calls:,} calls; {cpu}\n")
    print(f"| step | findings | seconds (best of {args.runs}) |")
    print("|---|---:|---:|")
    for k, v in best.items():
        print(f"| {k} | {found.get(k, '')} | {v:.2f} |")
    (work / "results.json").write_text(json.dumps({"calls": calls, "best": best, "found": found}))


if __name__ == "__main__":
    main()
