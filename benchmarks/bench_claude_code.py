# ruff: noqa: E501  (SQL text reads better unwrapped)
"""Claude Code benchmark: tokenaudit vs ccusage on a heavy user's ~/.claude/projects tree.

    python benchmarks/bench_claude_code.py [--sessions 1500] [--subagents 500]
        [--workdir /tmp/tokenaudit-bench-cc] [--ccusage PATH]

Generates (with DuckDB, no per-line Python) a realistic Claude Code tree: about
2,000 files (1,500 session files in 40 project folders, 500 subagent files under
``<session>/subagents/``), about 1.5 million lines and 600 MB. The lines follow
the real v2.1.x shapes: one assistant line per content block repeating the call's
message id, request id and usage (the early copies of a third of the calls carry
a partial output count), user/tool-result lines, hook progress lines, snapshots,
system lines, ``<synthetic>`` lines, subagent calls echoed in the parent session
as ``agent_progress`` lines, resumed sessions that repeat an earlier session's
calls, six models and about 120 days.

Then, in the same run, each in its own process, it measures wall time and peak
memory (``os.wait4`` ru_maxrss) of:
  1. ``tokenaudit ingest TREE --db X``            (first load)
  2. ``tokenaudit report --by day --db X``        (repeated report, best of 3)
  3. ``ccusage daily --offline --json``            (same tree via CLAUDE_CONFIG_DIR)
  4. ``tokenaudit ingest TREE --db X`` again after one new session file is added
     (prints how many files were loaded and how many skipped)
and checks that tokenaudit's per-day token totals equal ccusage's. Results go to
stdout (markdown) and to <workdir>/results.json.
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
from typing import Any

PROJECTS = 40
DAYS = 120
START = "2026-01-05 08:00:00"
LOREM = (
    "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua Ut enim ad minim veniam quis nostrud "
) * 120  # ~19 KB of quote-free text for contents

# One row per file: main sessions, then subagent files (each attached to a parent session).
FILES_SQL = """
CREATE OR REPLACE TABLE files AS
WITH main AS (
    SELECT i AS file_idx, i AS session_idx, NULL::BIGINT AS parent_idx, false AS sidechain,
        i % $projects AS project_idx,
        (10 + hash(i, 'n') % 310)::BIGINT AS n_calls,
        TIMESTAMP '{start}' + to_seconds((hash(i, 'd') % ($days * 86400))::BIGINT) AS t0,
        CASE WHEN i % 20 = 7 AND i >= $projects THEN i - $projects END AS resumed_from,
        NULL::VARCHAR AS agent_id
    FROM range($sessions) t(i)
), sub AS (
    SELECT $sessions + k AS file_idx, (k * 3 + k // 7) % $sessions AS session_idx,
        (k * 3 + k // 7) % $sessions AS parent_idx, true AS sidechain,
        ((k * 3 + k // 7) % $sessions) % $projects AS project_idx,
        (3 + hash(k, 'n') % 55)::BIGINT AS n_calls, NULL::TIMESTAMP AS t0, NULL::BIGINT AS resumed_from,
        CASE WHEN k % 10 = 3 THEN 'acompact-' || left(md5(k::VARCHAR), 6)
             ELSE 'a' || left(md5(k::VARCHAR || 'a'), 7) END AS agent_id
    FROM range($subagents) t(k)
)
SELECT f.*,
    -- a subagent starts after a random call of its parent
    CASE WHEN f.sidechain THEN (hash(f.file_idx, 's') % p.n_calls)::BIGINT END AS spawn_call,
    coalesce(f.t0, p.t0 + to_seconds(((hash(f.file_idx, 's') % p.n_calls) * 23 + 5)::BIGINT)) AS start_ts,
    md5('session' || f.session_idx::VARCHAR) AS sid_hex,
    '/home/dev/work/' || CASE f.project_idx % 4 WHEN 0 THEN 'api-server' WHEN 1 THEN 'web-app'
        WHEN 2 THEN 'data-pipeline' ELSE 'infra' END || '-' || f.project_idx AS cwd
FROM (SELECT * FROM main UNION ALL SELECT * FROM sub) f
LEFT JOIN main p ON p.file_idx = f.parent_idx
"""

# One row per model call, with its usage and how many content-block lines repeat it.
CALLS_SQL = """
CREATE OR REPLACE TABLE calls AS
SELECT f.file_idx, c AS call_idx,
    f.start_ts + to_milliseconds((c * CASE WHEN f.sidechain THEN 4100 ELSE 23300 END
        + hash(f.file_idx, c, 't') % 2000)::BIGINT) AS ts,
    CASE WHEN f.sidechain THEN
        CASE WHEN f.agent_id LIKE 'acompact%' THEN 'claude-opus-4-6'
             WHEN hash(f.file_idx, 'm') % 3 = 0 THEN 'claude-haiku-4-5-20251001'
             ELSE 'claude-sonnet-4-5-20250929' END
    ELSE
        CASE WHEN f.start_ts < TIMESTAMP '{start}' + INTERVAL 30 DAY THEN 'claude-opus-4-1-20250805'
             WHEN hash(f.file_idx, 'm') % 10 = 0 THEN 'claude-sonnet-4-5-20250929'
             WHEN hash(f.file_idx, 'm') % 10 = 1 THEN 'claude-sonnet-4-6'
             ELSE 'claude-opus-4-6' END
    END AS model,
    'msg_01' || left(md5(f.file_idx::VARCHAR || ':' || c::VARCHAR || 'm'), 22) AS msg_id,
    'req_011C' || left(md5(f.file_idx::VARCHAR || ':' || c::VARCHAR || 'r'), 20) AS req_id,
    (hash(f.file_idx, c, 'i') % 40)::BIGINT AS input_tokens,
    (8000 + hash(f.file_idx, c, 'cr') % 150000)::BIGINT AS cache_read,
    CASE WHEN hash(f.file_idx, c, 'cw') % 4 = 0 THEN 0
         ELSE (hash(f.file_idx, c, 'cw') % 20000)::BIGINT END AS cache_write,
    (1 + hash(f.file_idx, c, 'o') % 2500)::BIGINT AS output_tokens,
    1 + (hash(f.file_idx, c, 'b') % 10 >= 5)::INT + (hash(f.file_idx, c, 'b') % 10 >= 8)::INT
      + (hash(f.file_idx, c, 'b') % 10 = 9)::INT AS n_blocks,
    hash(f.file_idx, c, 'p') % 3 = 0 AS partial,
    f.file_idx >= $sessions + $subagents - 40 AND c % 50 = 1 AS fast
FROM files f, unnest(range(f.n_calls)) r(c)
"""

# Where each call appears: its own file, plus resumed copies and parent echoes.
PLACES_SQL = """
CREATE OR REPLACE TABLE places AS
SELECT c.*, c.file_idx AS target_idx, 'own' AS how, c.call_idx * 1000 AS sort_base
FROM calls c
UNION ALL
SELECT c.*, r.file_idx, 'resumed', (c.call_idx - 100000) * 1000
FROM files r JOIN calls c ON c.file_idx = r.resumed_from AND c.call_idx < 30
UNION ALL
SELECT c.*, s.parent_idx, 'echo', s.spawn_call * 1000 + 500 + c.call_idx * 5
FROM files s JOIN calls c ON c.file_idx = s.file_idx
WHERE s.sidechain AND c.call_idx < s.n_calls - 1
"""

ENVELOPE = """'{"parentUuid":"' || md5(p.target_idx::VARCHAR || ':' || p.sort_base::VARCHAR || ':' || k::VARCHAR) || '","isSidechain":' || CASE WHEN f.sidechain THEN 'true' ELSE 'false' END
    || ',"userType":"external","cwd":"' || f.cwd || '","sessionId":"' || sid || '","version":"' || version
    || '","gitBranch":"' || CASE WHEN f.project_idx % 3 = 0 THEN 'main' ELSE 'feature/x-' || f.project_idx END || '"'
    || CASE WHEN f.sidechain THEN ',"agentId":"' || f.agent_id || '"' ELSE '' END"""

MESSAGE = """'{"model":"' || p.model || '","id":"' || p.msg_id || '","type":"message","role":"assistant","content":[{"type":"'
    || CASE k % 3 WHEN 0 THEN 'text","text":"' || left($lorem, (hash(p.msg_id, k) % 160)::INT) || '"}'
                  WHEN 1 THEN 'thinking","thinking":"' || left($lorem, (hash(p.msg_id, k) % 100)::INT) || '","signature":"sig"}'
                  ELSE 'tool_use","id":"toolu_' || left(md5(p.msg_id || k::VARCHAR), 24) || '","name":"Read","input":{"file_path":"/src/m' || k || '.py"}}' END
    || '],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":' || p.input_tokens
    || ',"cache_creation_input_tokens":' || p.cache_write || ',"cache_read_input_tokens":' || p.cache_read
    || ',"cache_creation":{"ephemeral_5m_input_tokens":' || CASE WHEN f.sidechain THEN p.cache_write ELSE 0 END
    || ',"ephemeral_1h_input_tokens":' || CASE WHEN f.sidechain THEN 0 ELSE p.cache_write END
    || '},"output_tokens":' || CASE WHEN p.partial AND k < p.n_blocks THEN least(p.output_tokens, 1 + hash(p.msg_id) % 30) ELSE p.output_tokens END
    || CASE WHEN p.fast THEN ',"speed":"fast"' ELSE '' END
    || ',"service_tier":"standard","inference_geo":"not_available"}}'"""

# Every line of every file, as text, with its file and order.
LINES_SQL = f"""
CREATE OR REPLACE TABLE lines AS
WITH pf AS (
    SELECT p.*, f.sidechain AS own_sidechain FROM places p JOIN files f ON f.file_idx = p.file_idx
    WHERE p.target_idx BETWEEN $lo AND $hi
), expanded AS (
    -- k: 0 user line, 1..n_blocks assistant lines, 10.. hook progress, 20 snapshot, 21 system,
    -- 22 synthetic, 23 queue operation
    SELECT p.*, k FROM pf p, unnest(list_concat(range(0, p.n_blocks + 1),
        range(10, 10 + (hash(p.msg_id, 'h') % 4)::INT),
        CASE WHEN p.call_idx % 2 = 0 THEN [20] ELSE [] END,
        CASE WHEN p.call_idx % 3 = 0 THEN [23] ELSE [] END,
        CASE WHEN p.call_idx % 11 = 0 THEN [21] ELSE [] END,
        CASE WHEN p.call_idx % 97 = 5 AND NOT p.own_sidechain THEN [22] ELSE [] END)) u(k)
    WHERE p.how <> 'echo' OR k <= p.n_blocks
)
SELECT p.target_idx AS file_idx, p.sort_base + k AS seq,
    CASE WHEN p.how = 'echo' THEN
        -- a subagent line echoed in its parent session: an agent_progress wrapper
        '{{"parentUuid":"' || md5(p.target_idx::VARCHAR || ':' || p.sort_base::VARCHAR || ':' || k::VARCHAR)
        || '","isSidechain":false,"userType":"external","cwd":"' || f.cwd || '","sessionId":"' || sid
        || '","version":"2.1.38","gitBranch":"main","type":"progress","data":{{"message":{{"type":"'
        || CASE WHEN k = 0 THEN 'user","timestamp":"' || strftime(p.ts, '%Y-%m-%dT%H:%M:%S.%gZ')
                || '","message":{{"role":"user","content":[{{"tool_use_id":"toolu_x","type":"tool_result","content":"'
                || left($lorem, (hash(p.msg_id, 'u') % 200)::INT) || '"}}]}},"uuid":"' || md5(p.msg_id || 'u') || '"}}'
           ELSE 'assistant","timestamp":"' || strftime(p.ts + to_milliseconds(k * 40), '%Y-%m-%dT%H:%M:%S.%gZ')
                || '","message":' || {MESSAGE.replace("f.sidechain", "true")} || ',"requestId":"' || p.req_id
                || '","uuid":"' || md5(p.msg_id || k::VARCHAR) || '"}}' END
        || ',"type":"agent_progress","prompt":"","agentId":"' || f.agent_id || '"}},"toolUseID":"agent_msg_'
        || left(md5(p.msg_id || 'tu' || k::VARCHAR), 24) || '","parentToolUseID":"toolu_' || left(md5(f.agent_id), 24)
        || '","uuid":"' || md5(p.msg_id || 'e' || k::VARCHAR) || '","timestamp":"'
        || strftime(p.ts + to_milliseconds(k * 40 + 5), '%Y-%m-%dT%H:%M:%S.%gZ') || '"}}'
    WHEN k = 0 THEN
        {ENVELOPE} || ',"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"toolu_'
        || left(md5(p.msg_id || 'tu'), 24) || '","type":"tool_result","content":"'
        || left($lorem, (CASE WHEN hash(p.msg_id, 'big') % 100 = 0 THEN 2000 + hash(p.msg_id, 'u') % 6000
                             ELSE hash(p.msg_id, 'u') % 100 END)::INT)
        || '"}}]}},"uuid":"' || md5(p.msg_id || 'u') || '","timestamp":"'
        || strftime(p.ts - INTERVAL 2 SECOND, '%Y-%m-%dT%H:%M:%S.%gZ') || '"}}'
    WHEN k <= p.n_blocks THEN
        {ENVELOPE} || ',"message":' || {MESSAGE} || ',"requestId":"' || p.req_id
        || '","type":"assistant","uuid":"' || md5(p.msg_id || k::VARCHAR) || '","timestamp":"'
        || strftime(p.ts + to_milliseconds(k * 40), '%Y-%m-%dT%H:%M:%S.%gZ') || '"}}'
    WHEN k < 20 THEN
        {ENVELOPE} || ',"type":"progress","data":{{"type":"hook_progress","hookEvent":"PostToolUse","hookName":"PostToolUse:Read","command":"callback"}},"parentToolUseID":"toolu_'
        || left(md5(p.msg_id || 'tu'), 24) || '","toolUseID":"toolu_' || left(md5(p.msg_id || 'tu'), 24)
        || '","timestamp":"' || strftime(p.ts + to_milliseconds(200 + k), '%Y-%m-%dT%H:%M:%S.%gZ')
        || '","uuid":"' || md5(p.msg_id || 'h' || k::VARCHAR) || '"}}'
    WHEN k = 20 THEN
        '{{"type":"file-history-snapshot","messageId":"' || md5(p.msg_id || 'f') || '","snapshot":{{"messageId":"'
        || md5(p.msg_id || 'f') || '","trackedFileBackups":{{}},"timestamp":"'
        || strftime(p.ts, '%Y-%m-%dT%H:%M:%S.%gZ') || '"}},"isSnapshotUpdate":false}}'
    WHEN k = 23 THEN
        '{{"type":"queue-operation","operation":"' || CASE WHEN p.call_idx % 2 = 0 THEN 'enqueue' ELSE 'dequeue' END
        || '","timestamp":"' || strftime(p.ts - INTERVAL 3 SECOND, '%Y-%m-%dT%H:%M:%S.%gZ') || '","sessionId":"' || sid || '"}}'
    WHEN k = 21 THEN
        {ENVELOPE} || ',"type":"system","subtype":"stop_hook_summary","content":"","level":"info","timestamp":"'
        || strftime(p.ts + to_milliseconds(900), '%Y-%m-%dT%H:%M:%S.%gZ') || '","uuid":"' || md5(p.msg_id || 's') || '","isMeta":false}}'
    ELSE
        {ENVELOPE} || ',"message":{{"id":"' || md5(p.msg_id || 'syn') || '","container":null,"model":"<synthetic>","role":"assistant","stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{{"web_search_requests":0,"web_fetch_requests":0}},"service_tier":null,"cache_creation":{{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0}}}},"content":[{{"type":"text","text":"API Error: Request was aborted."}}],"context_management":null}},"type":"assistant","uuid":"'
        || md5(p.msg_id || 'syn') || '","timestamp":"' || strftime(p.ts + to_milliseconds(950), '%Y-%m-%dT%H:%M:%S.%gZ') || '","isApiErrorMessage":true}}'
    END AS line
FROM expanded p
JOIN files f ON f.file_idx = p.file_idx,
LATERAL (SELECT
    substr(f.sid_hex, 1, 8) || '-' || substr(f.sid_hex, 9, 4) || '-4' || substr(f.sid_hex, 14, 3) || '-8'
        || substr(f.sid_hex, 18, 3) || '-' || substr(f.sid_hex, 21, 12) AS sid,
    CASE WHEN f.project_idx % 5 = 0 THEN '2.1.31' ELSE '2.1.38' END AS version)
"""


def uuid_of(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-4{hex32[13:16]}-8{hex32[17:20]}-{hex32[20:32]}"


def generate(tree: Path, sessions: int, subagents: int) -> dict[str, Any]:
    """Write the tree under ``tree/projects``; return its size figures."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    params = {"sessions": sessions, "subagents": subagents, "projects": PROJECTS}
    con.execute(FILES_SQL.format(start=START), {**params, "days": DAYS})
    con.execute(CALLS_SQL.format(start=START), {k: params[k] for k in ("sessions", "subagents")})
    con.execute(PLACES_SQL)
    names = con.execute(
        "SELECT file_idx, project_idx, sidechain, agent_id, "
        "(SELECT sid_hex FROM files p WHERE p.file_idx = f.session_idx) FROM files f"
    ).fetchall()
    projects = tree / "projects"
    paths: dict[int, Path] = {}
    for file_idx, project_idx, sidechain, agent_id, sid_hex in names:
        folder = projects / (
            "-home-dev-work-"
            + ("api-server", "web-app", "data-pipeline", "infra")[project_idx % 4]
            + f"-{project_idx}"
        )
        sid = uuid_of(sid_hex)
        paths[file_idx] = (
            folder / sid / "subagents" / f"agent-{agent_id}.jsonl"
            if sidechain
            else folder / f"{sid}.jsonl"
        )
    for p in set(paths.values()):
        p.parent.mkdir(parents=True, exist_ok=True)
    total_bytes = 0
    lines = 0
    step = 100  # files per chunk: bounds the generator's memory
    for lo in range(0, len(paths), step):
        con.execute(LINES_SQL, {"lorem": LOREM, "lo": lo, "hi": lo + step - 1})
        cur = con.execute(
            "SELECT file_idx, string_agg(line, chr(10) ORDER BY seq) || chr(10), count(*) "
            "FROM lines GROUP BY file_idx"
        )
        for file_idx, text, n in cur.fetchall():
            data = text.encode()
            total_bytes += len(data)
            lines += n
            paths[file_idx].write_bytes(data)
    return {"files": len(paths), "lines": lines, "bytes": total_bytes}


# --- the loader change this benchmark also measures ------------------------------------------
# ``tokenaudit.ingest.ingest`` with two changes: (1) files whose ingester offers ``load_many``
# (claude-code) are collected and loaded together (one read, one transaction) where the run
# of such files ends, instead of one ``load_file`` each; (2) detection tries the previous
# file's format first (the sniffers ahead of claude-code cost ~0.9 ms a file). Everything
# else is unchanged.


# --- the measured run ---------------------------------------------------------------------


def timed(
    cmd: list[str], env: dict[str, str] | None = None, out: Path | None = None
) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB of the process, os.wait4)."""
    start = time.perf_counter()
    with open(out or os.devnull, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(line.split()[1]) // 1024 // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem = 0
    from importlib.metadata import version

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem} GB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, DuckDB {version('duckdb')}"
    )


def add_session(tree: Path) -> Path:
    """A new session file (the smallest session, with new ids): what a reload must pick up."""
    sessions = list((tree / "projects").glob("*/*.jsonl"))
    src = min(sessions, key=lambda p: p.stat().st_size)
    text = src.read_text().replace('"msg_01', '"msg_09').replace('"req_011C', '"req_019C')
    new = src.with_name("00000000-1111-4222-8333-444455556666.jsonl")
    new.write_text(text.replace(src.stem, new.stem))
    return new


def per_day_tokenaudit(exe: str, db: Path) -> dict[str, dict[str, int]]:
    out = subprocess.run(
        [exe, "report", "--by", "day", "--db", str(db), "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    days = {}
    for r in json.loads(out)["rows"]:
        days[r["group"]["day"]] = {
            "input": r["input_tokens"],
            "output": r["output_tokens"],
            "cache_creation": r["cache_write_tokens"] + r["cache_write_1h_tokens"],
            "cache_read": r["cache_read_tokens"],
        }
    return days


def per_day_ccusage(path: Path) -> dict[str, dict[str, int]]:
    return {
        d["period"]: {
            "input": d["inputTokens"],
            "output": d["outputTokens"],
            "cache_creation": d["cacheCreationTokens"],
            "cache_read": d["cacheReadTokens"],
        }
        for d in json.loads(path.read_text())["daily"]
    }


def load_counts(path: Path) -> tuple[int, int, int, int]:
    """(files loaded, files skipped, rows loaded, rows quarantined) from ingest's JSON."""
    rows = json.loads(path.read_text())["rows"]
    return (
        sum(r["status"] == "loaded" for r in rows),
        sum(r["status"] == "skipped" for r in rows),
        sum(r["rows_loaded"] for r in rows),
        sum(r["rows_quarantined"] for r in rows),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1500)
    ap.add_argument("--subagents", type=int, default=500)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tokenaudit-bench-cc"))
    ap.add_argument(
        "--ccusage", default=shutil.which("ccusage") or "/tmp/ccusage/node_modules/.bin/ccusage"
    )
    ap.add_argument("--runs", type=int, default=3, help="runs of report and ccusage (best kept)")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "claude"
    marker = work / "tree.json"
    want = {"sessions": args.sessions, "subagents": args.subagents}
    if args.generate_only:
        shutil.rmtree(tree, ignore_errors=True)
        sizes = generate(tree, args.sessions, args.subagents)
        marker.write_text(json.dumps({"params": want, **sizes}))
        return
    if not marker.exists() or json.loads(marker.read_text()).get("params") != want:
        # in a process of its own: a child's peak RSS counts its parent's at exec time
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate-only", *sys.argv[1:]], check=True)
        print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    sizes = json.loads(marker.read_text())
    exe = shutil.which("tokenaudit") or sys.exit("tokenaudit is not installed")
    home = work / "home"  # empty: ccusage finds no other agent's logs
    home.mkdir(exist_ok=True)
    cc_env = {**os.environ, "HOME": str(home), "TZ": "UTC", "CLAUDE_CONFIG_DIR": str(tree)}

    def fresh(name: str) -> Path:
        db = work / name
        for p in (db, Path(str(db) + ".wal")):
            p.unlink(missing_ok=True)
        return db

    res: dict[str, Any] = {"tree": sizes, "machine": machine()}
    # 1. ccusage (best of N)
    cc_out = work / "ccusage-daily.json"
    res["ccusage"] = min(
        timed([args.ccusage, "daily", "--offline", "--json"], cc_env, cc_out)
        for _ in range(args.runs)
    )
    # 2. first load
    db1 = fresh("tree.duckdb")
    res["ingest"] = timed(
        [exe, "ingest", str(tree), "--db", str(db1), "--format", "json"], out=work / "ingest-1.json"
    )
    res["ingest_counts"] = load_counts(work / "ingest-1.json")
    # 4. the repeated report (best of N)
    res["report"] = min(
        timed([exe, "report", "--by", "day", "--db", str(db1)]) for _ in range(args.runs)
    )
    # 5. parity: per-day totals per category
    ours, theirs = per_day_tokenaudit(exe, db1), per_day_ccusage(cc_out)
    res["parity_days"] = len(theirs)
    res["parity"] = ours == theirs
    res["parity_diff"] = {
        d: (ours.get(d), theirs.get(d))
        for d in set(ours) | set(theirs)
        if ours.get(d) != theirs.get(d)
    }
    # 6. reload after one new file: only the new file is read
    new = add_session(tree)
    try:
        res["reload"] = timed(
            [exe, "ingest", str(tree), "--db", str(db1), "--format", "json"],
            out=work / "ingest-3.json",
        )
        res["reload_counts"] = load_counts(work / "ingest-3.json")
    finally:
        new.unlink()
    (work / "results.json").write_text(json.dumps(res, indent=2))

    cc_s, cc_mb = res["ccusage"]
    print(
        f"tree: {sizes['files']:,} files, {sizes['lines']:,} lines, {sizes['bytes'] / 1e6:,.0f} MB; "
        f"{res['machine']}\n"
    )
    print("| step | wall time | peak memory | vs ccusage |")
    print("|---|---:|---:|---:|")
    print(
        f"| `ccusage daily --offline --json` (best of {args.runs}) | {cc_s:.2f} s | {cc_mb:,.0f} MB | 1.00x |"
    )
    for key, label in (
        ("ingest", "`tokenaudit ingest TREE` first load"),
        ("report", f"`tokenaudit report --by day` (best of {args.runs})"),
        ("reload", "`tokenaudit ingest TREE` after one new file"),
    ):
        s, mb = res[key]
        print(f"| {label} | {s:.2f} s | {mb:,.0f} MB | {s / cc_s:.2f}x |")
    for key in ("ingest_counts", "reload_counts"):
        loaded, skipped, rows, quarantined = res[key]
        print(
            f"\n{key}: files loaded {loaded:,}, skipped {skipped:,}; calls loaded {rows:,}, quarantined {quarantined:,}"
        )
    print(
        f"\nper-day token totals equal ccusage's on all {res['parity_days']} days: {res['parity']}"
    )
    if res["parity_diff"]:
        print("differences:", json.dumps(res["parity_diff"], indent=1))


if __name__ == "__main__":
    main()
