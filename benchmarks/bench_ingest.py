"""Ingest benchmark: tokenaudit vs a bare DuckDB load of the same native JSONL file.

    python benchmarks/bench_ingest.py [--events 2000000] [--workdir /tmp/tokenaudit-bench]

Generates N native events (about 600 bytes each, so 2M is about 1.2 GB) with
DuckDB's COPY, then in the same run, each in a fresh process:
  1. bare:   CREATE TABLE t AS SELECT * FROM read_json(file)   (into a new DB file)
  2. ingest: tokenaudit ingest file --db new.duckdb             (validation, dedupe, pricing)
  3. report: tokenaudit report --by workflow on the loaded DB  (CLI wall time, 3 runs)
and prints wall time and peak memory (max RSS of the process) for each, plus
the ratio of tokenaudit's ingest to the bare load. Results go to stdout as a
markdown table and to <workdir>/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

GENERATE_SQL = """
COPY (
  SELECT
    strftime(TIMESTAMP '2026-10-01'
             + to_microseconds((i * 1297003)::BIGINT % (30::BIGINT * 86400 * 1000000)),
             '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
    'req_' || i AS request_id, 'trace_' || (i // 4) AS trace_id, 'span_' || i AS span_id,
    'sess_' || (i // 20) AS session_id,
    CASE WHEN i % 3 = 0 THEN 'anthropic' ELSE 'openai' END AS provider,
    CASE i % 5 WHEN 0 THEN 'claude-sonnet-4-5' WHEN 1 THEN 'gpt-4o' WHEN 2 THEN 'gpt-4o-mini'
               WHEN 3 THEN 'claude-haiku-4-5' ELSE 'o3-mini' END AS model,
    'workflow-' || (i % 37) AS workflow, 'team-' || (i % 7) AS team,
    'tenant-' || (i % 11) AS tenant, 'user-' || (i % 997) AS "user",
    'agent-' || (i % 5) AS agent, 'v' || (i % 4) AS prompt_version, 'prod' AS environment,
    (i * 7919) % 4000 AS input_tokens, (i % 3) * 512 AS cache_read_tokens,
    CASE WHEN i % 3 = 0 THEN 128 ELSE 0 END AS cache_write_tokens,
    (i * 31) % 800 AS output_tokens,
    CASE WHEN i % 5 = 4 THEN (i * 31) % 400 ELSE 0 END AS reasoning_tokens,
    1 + (i % 17 = 0)::INT AS attempt, CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END AS status,
    CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END AS http_status, (i * 13) % 3000 AS latency_ms,
    CASE WHEN i % 4 = 3 THEN 'accepted' END AS outcome,
    md5(((i * 7) % 100000)::VARCHAR) AS prompt_hash, NULL AS cost_usd,
    {'feature_flag': 'x' || (i % 3), 'region': 'eu-west-1'} AS tags
  FROM range(?) t(i)
) TO ? (FORMAT json)
"""

BARE = """
import duckdb, sys
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE t AS SELECT * FROM read_json(?)", [sys.argv[1]])
con.execute("CHECKPOINT")
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB) of that process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tokenaudit-bench"))
    ap.add_argument("--runs", type=int, default=1, help="repeat the ingest pair, keep the best")
    args = ap.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"events-{args.events}.jsonl"
    if not data.exists():
        import duckdb

        duckdb.connect().execute(GENERATE_SQL, [args.events, str(data)])
    size_gb = data.stat().st_size / 1e9
    exe = shutil.which("tokenaudit") or sys.exit("tokenaudit is not installed")

    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.runs):
        for name in ("bare", "ingest"):
            db = work / f"{name}.duckdb"
            for p in (db, Path(str(db) + ".wal")):
                p.unlink(missing_ok=True)
            cmd = (
                [sys.executable, "-c", BARE, str(data), str(db)]
                if name == "bare"
                else [exe, "ingest", str(data), "--db", str(db), "--format", "json"]
            )
            result = timed(cmd)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    reports = [
        timed([exe, "report", "--by", "workflow", "--db", str(work / "ingest.duckdb")])
        for _ in range(3)
    ]
    best["report"] = min(reports)

    ratio = best["ingest"][0] / best["bare"][0]
    results = {
        "events": args.events,
        "file_gb": round(size_gb, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "bare_s": round(best["bare"][0], 2),
        "bare_rss_mb": round(best["bare"][1]),
        "ingest_s": round(best["ingest"][0], 2),
        "ingest_rss_mb": round(best["ingest"][1]),
        "ratio": round(ratio, 2),
        "report_s": round(best["report"][0], 3),
        "report_rss_mb": round(best["report"][1]),
    }
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(f"{args.events:,} native events, {size_gb:.2f} GB; {results['machine']}\n")
    print("| step | wall time | peak memory |")
    print("|---|---:|---:|")
    print(
        f"| bare DuckDB `CREATE TABLE AS SELECT * FROM read_json(...)` | {results['bare_s']} s "
        f"| {results['bare_rss_mb']} MB |"
    )
    print(f"| `tokenaudit ingest` | {results['ingest_s']} s | {results['ingest_rss_mb']} MB |")
    print(f"| ratio tokenaudit / bare | {ratio:.2f}x | |")
    print(
        f"| `tokenaudit report --by workflow` (CLI, best of 3) | {results['report_s']} s "
        f"| {results['report_rss_mb']} MB |"
    )


if __name__ == "__main__":
    main()
