"""Claude Code session logs: normalization, ccusage's dedupe, trees, quarantine, samples."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

import duckdb
import pytest

from tests.conftest import DATA, SAMPLES, load, quarantine_rows, usage_rows
from tokenaudit import db
from tokenaudit.ingest import BY_NAME
from tokenaudit.ingest.base import StageContext
from tokenaudit.ingest.claude_code import INGESTER
from tokenaudit.ingest.claude_code_places import place_of, sniff_claude, workflow_of
from tokenaudit.ingest.source import open_source, walk
from tokenaudit.pricing import PriceSettings

FIXTURES = DATA / "ingest" / "claude-code"
SPOTTER = SAMPLES / "traces" / "claude-code-spotter"
CCUSAGE = SAMPLES / "traces" / "ccusage-fixtures"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")

SID = "7f3c2a10-5b4e-4d8a-9c61-2e8f0b7d4a95"
FOLDER = "-home-dana-src-billing-api"


def by_request(rows: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {r["request_id"]: r for r in rows}


def tree(tmp_path: Path) -> Path:
    """A ~/.claude/projects tree: the session, its subagent file, a resumed session."""
    root = tmp_path / "claude" / "projects" / FOLDER
    (root / SID / "subagents").mkdir(parents=True)
    shutil.copy(FIXTURES / "session.jsonl", root / f"{SID}.jsonl")
    shutil.copy(FIXTURES / "agent-a5e9f01.jsonl", root / SID / "subagents" / "agent-a5e9f01.jsonl")
    # a resumed session repeats the first call of the first one, then makes a call of its own
    lines = (FIXTURES / "session.jsonl").read_text().splitlines()
    new = json.loads(lines[5])
    new["message"]["id"], new["requestId"] = "msg_01Resumed1", "req_011CYr1"
    new["timestamp"] = "2026-03-12T08:00:00.000Z"
    (root / "1a2b3c4d-0000-4000-8000-000000000001.jsonl").write_text(
        "\n".join([lines[3], lines[4], lines[5], json.dumps(new)]) + "\n"
    )
    return tmp_path / "claude"


# --- token normalization and dedupe within a file -------------------------------------------


def test_content_block_copies_count_once_with_the_final_usage(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (result,) = load(con, FIXTURES / "session.jsonl", input_format="claude-code")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (5, 5, 0)
    rows = by_request(usage_rows(con))
    first = rows["msg_01Kq7vYtP3aQ1"]  # three lines: output 10, 10, then 299
    assert first["output_tokens"] == 299
    assert first["line_no"] == 6  # the copy kept
    assert first["ts"] == "2026-03-10T00:00:01.433000"  # its timestamp (past midnight)
    # Anthropic semantics: input excludes the cache; the TTL split is kept apart
    assert (first["input_tokens"], first["cache_read_tokens"]) == (3, 11515)
    assert (first["cache_write_tokens"], first["cache_write_1h_tokens"]) == (0, 13835)
    assert first["reasoning_tokens"] == 0
    assert first["provider"] == "anthropic"
    assert first["session_id"] == first["trace_id"] == SID
    assert first["agent"] == "main"
    assert first["tags"] == {
        "version": "2.1.38",
        "git_branch": "main",
        "cwd": "billing-api",
        "anthropic_request_id": "req_011CYa1",
    }


def test_cache_writes_split_flat_and_excess(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "session.jsonl", input_format="claude-code")
    rows = by_request(usage_rows(con))
    five = rows["msg_01Kq7vYtP3aQ2"]  # ephemeral_5m 208
    assert (five["cache_write_tokens"], five["cache_write_1h_tokens"]) == (208, 0)
    flat = rows["msg_01Kq7vYtP3aQ3"]  # no cache_creation: a 5-minute write
    assert (flat["cache_write_tokens"], flat["cache_write_1h_tokens"]) == (1115, 0)
    assert flat["tags"]["speed"] == "fast"
    excess = rows["msg_01Kq7vYtP3aQ4"]  # flat 700, split 100 + 500: 100 unexplained -> 5m
    assert (excess["cache_write_tokens"], excess["cache_write_1h_tokens"]) == (200, 500)


def test_synthetic_placeholders_and_non_calls_are_not_records(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (result,) = load(con, FIXTURES / "session.jsonl", input_format="claude-code")
    models = {r["model"] for r in usage_rows(con)}
    assert "<synthetic>" not in models
    # 17 lines: 5 calls (7 assistant lines, 2 echoes of one call), the rest not calls
    assert result.records_read == 5


def test_agent_progress_echo_is_a_subagent_call(con: duckdb.DuckDBPyConnection) -> None:
    load(con, FIXTURES / "session.jsonl", input_format="claude-code")
    echo = by_request(usage_rows(con))["msg_01SubA1"]
    assert echo["agent"] == "subagent"
    assert echo["model"] == "claude-sonnet-4-5-20250929"
    assert echo["output_tokens"] == 41  # the larger of its two copies
    assert echo["tags"]["via"] == "agent_progress"
    assert echo["tags"]["agent_id"] == "a5e9f01"
    assert echo["session_id"] == SID


def test_old_lines_cost_and_missing_ids(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "old_costusd.jsonl", input_format="claude-code")
    assert (result.records_read, result.rows_loaded) == (4, 4)
    rows = usage_rows(con)
    first = rows[0]
    assert first["reported_cost_usd"] == "0.120000000000"  # costUSD, exactly
    # no requestId: copies grouped by message id, the larger kept
    no_req = by_request(rows)["msg_01Old2"]
    assert no_req["output_tokens"] == 19
    assert no_req["reported_cost_usd"] == "0.000104700000"
    assert "anthropic_request_id" not in no_req["tags"]
    # neither id: each line is a call (request_id NULL, never deduped)
    assert [r["request_id"] for r in rows].count(None) == 2
    # a Windows cwd outside a projects/ tree names the workflow
    assert {r["workflow"] for r in rows} == {"site"}
    assert rows[0]["service_tier"] is None


def test_sidechain_replay_with_a_new_request_id_counts_once(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """/btw: a sidechain replays a parent message under a new request id (ccusage #913)."""
    (result,) = load(con, FIXTURES / "btw_sidechain.jsonl", input_format="claude-code")
    assert result.records_read == 2
    rows = by_request(usage_rows(con))
    assert rows["msg_01Parent"]["cache_read_tokens"] == 20  # the parent copy wins
    assert rows["msg_01Parent"]["agent"] == "main"
    assert rows["msg_01Answer"]["cache_read_tokens"] == 700
    assert rows["msg_01Answer"]["agent"] == "sidechain"


# --- quarantine -----------------------------------------------------------------------------


def test_bad_lines_are_quarantined_with_line_and_reason(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load(con, FIXTURES / "bad_lines.jsonl", input_format="claude-code")
    assert result.records_read == result.rows_loaded + result.rows_quarantined == 11
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "usage.output_tokens is not a whole number: 12.5"},
        {"line_no": 4, "reason": "negative usage.input_tokens: -4"},
        {"line_no": 5, "reason": "missing timestamp"},
        {"line_no": 6, "reason": "invalid timestamp: yesterday"},
        {"line_no": 7, "reason": "costUSD is not a number: abc"},
        {"line_no": 8, "reason": "missing message.model"},
        {
            "line_no": 9,
            "reason": "model <synthetic> (a placeholder Claude Code writes) with non-zero usage",
        },
        {"line_no": 10, "reason": "usage.input_tokens is not a whole number: lots"},
        {"line_no": 14, "reason": "invalid JSON (a malformed or truncated line mentioning usage)"},
    ]
    rows = usage_rows(con)
    # copies of one call where one copy is malformed: the good copy is kept
    assert [(r["line_no"], r["request_id"]) for r in rows] == [
        (1, "msg_01Bad_ok"),
        (12, "msg_01Bad_cp"),
    ]
    assert rows[0]["tags"]["git_branch"] == "fix/[redacted]"


def test_invalid_utf8_line_is_quarantined_and_neighbours_load(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (result,) = load(con, FIXTURES / "latin1_byte.jsonl", input_format="claude-code")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert quarantine_rows(con) == [{"line_no": 2, "reason": "invalid UTF-8"}]
    assert [r["line_no"] for r in usage_rows(con)] == [1, 3]


def test_crlf_and_blank_lines_keep_line_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    lines = (FIXTURES / "session.jsonl").read_text().splitlines()
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(("\r\n".join(lines[:5]) + "\r\n\r\n" + "\r\n".join(lines[5:])).encode())
    load(con, path, input_format="claude-code")
    assert [r["line_no"] for r in usage_rows(con)] == [7, 10, 13, 14, 18]


def test_no_text_or_secret_reaches_the_database(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with db.connect(path) as con:
        for name in ("session.jsonl", "bad_lines.jsonl"):
            load(con, FIXTURES / name, input_format="claude-code")
    data = b"".join(p.read_bytes() for p in tmp_path.glob("t.duckdb*"))
    for canary in (b"CANARY", b"invoice exporter", b"map the exporters", b"export.py"):
        assert canary not in data


# --- trees: subagent files, echoes and resumed sessions across files ------------------------


def test_tree_counts_each_call_once_across_files(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    results = load(con, tree(tmp_path))
    assert [Path(r.path).name for r in results] == [
        "1a2b3c4d-0000-4000-8000-000000000001.jsonl",
        "agent-a5e9f01.jsonl",  # <session>/ sorts before <session>.jsonl: loaded first
        f"{SID}.jsonl",
    ]
    assert all(r.format == "claude-code" for r in results)
    assert [(r.records_read, r.rows_loaded, r.rows_quarantined) for r in results] == [
        (2, 2, 0),
        (2, 2, 0),
        (5, 3, 2),
    ]
    rows = usage_rows(con)
    ids = [r["request_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 7
    quarantine = quarantine_rows(con)
    assert [q["line_no"] for q in quarantine] == [6, 12]
    assert quarantine[0]["reason"].startswith("request_id already loaded from ")
    assert quarantine[0]["reason"].endswith("1a2b3c4d-0000-4000-8000-000000000001.jsonl")
    assert quarantine[1]["reason"].endswith("subagents/agent-a5e9f01.jsonl")
    sub = by_request(rows)["msg_01SubA1"]
    assert (sub["agent"], sub["output_tokens"], sub["tags"]["agent_id"]) == (
        "subagent",
        41,
        "a5e9f01",
    )
    assert "via" not in sub["tags"]  # from the subagent's own file
    assert {r["workflow"] for r in rows} == {"billing-api"}
    assert {r["session_id"] for r in rows} == {SID}


def test_tree_reload_is_a_no_op_and_reads_only_new_files(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    root = tree(tmp_path)
    load(con, root)
    extra = root / "projects" / FOLDER / "2c3d4e5f-0000-4000-8000-000000000002.jsonl"
    shutil.copy(FIXTURES / "btw_sidechain.jsonl", extra)
    again = load(con, root)
    assert [r.status for r in again].count("loaded") == 1
    assert [r.status for r in again].count("skipped") == 3
    assert next(r for r in again if r.status == "loaded").path == str(extra)


def test_load_many_equals_loading_file_by_file(tmp_path: Path) -> None:
    """The whole-tree path (one read, one transaction) stores what load_file stores."""
    root = tree(tmp_path)
    shutil.copy(FIXTURES / "bad_lines.jsonl", root / "projects" / FOLDER / "bad.jsonl")
    shutil.copy(FIXTURES / "latin1_byte.jsonl", root / "projects" / FOLDER / "latin1.jsonl")
    stored = []
    for batched in (False, True):
        with db.connect(":memory:") as con:
            if batched:
                from tokenaudit.db import install_secret
                from tokenaudit.pricing import ensure_prices

                prices = PriceSettings(None)
                ensure_prices(con, prices)
                ctx = StageContext(secret=install_secret(con))
                srcs = [open_source(p, tmp_path) for p in walk([root])]
                results = INGESTER.load_many(con, srcs, ctx, prices, {})
                again = INGESTER.load_many(
                    con, [open_source(p, tmp_path) for p in walk([root])], ctx, prices, {}
                )
                assert {r.status for r in again} == {"skipped"}
            else:
                results = load(con, root)
            stored.append(
                (
                    [dataclasses.replace(r, file_id=None) for r in results],
                    usage_rows(con),
                    quarantine_rows(con),
                    con.execute(
                        "SELECT path, sha256, size_bytes, format, kind, records_read, rows_loaded,"
                        " rows_quarantined, quick_key, lines_replaced, source_path, raw_size,"
                        " mtime_ns FROM files ORDER BY path"
                    ).fetchall(),
                )
            )
    assert stored[0] == stored[1]


def test_stage_many_reads_files_that_fail_the_fast_path(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    srcs = [open_source(FIXTURES / n, tmp_path) for n in ("latin1_byte.jsonl", "session.jsonl")]
    counts = INGESTER.stage_many(con, srcs, StageContext("s"))
    assert list(counts.values()) == [3, 5]
    bad = con.execute("SELECT line_no, reason FROM stage WHERE reason IS NOT NULL").fetchall()
    assert bad == [(2, "invalid UTF-8")]


# --- paths, workflows and sniffing ----------------------------------------------------------


def test_place_of_paths() -> None:
    p = place_of(PurePath("/h/.claude/projects/-home-u-app/abc.jsonl"))
    assert (p.folder, p.session, p.in_subagents, p.agent) == ("-home-u-app", "abc", False, None)
    p = place_of(PurePath("/h/.claude/projects/-home-u-app/abc/subagents/agent-a12.jsonl"))
    assert (p.folder, p.session, p.in_subagents, p.agent) == ("-home-u-app", "abc", True, "a12")
    p = place_of(PurePath("/tmp/x/session.jsonl.gz"))
    assert (p.folder, p.session, p.parent) == (None, "session", "x")


@pytest.mark.parametrize(
    ("path", "cwds", "expected"),
    [
        # the cwd is the key: the folder's dashes are ambiguous
        ("projects/-home-marco-projects-spotter-worktrees-spotter-4te/s.jsonl",
         ["/home/marco/projects/spotter/worktrees/spotter-4te"], "spotter-4te"),
        # a cwd below the project folder
        ("projects/-home-u-my-app/s.jsonl", ["/home/u/my-app/src/lib"], "my-app"),
        ("projects/C--Users-lee-work-site/s.jsonl", ["C:\\Users\\lee\\work\\site"], "site"),
        # no cwd: the folder loses its home prefix
        ("projects/-home-user-proj/s.jsonl", [], "proj"),
        ("projects/-Users-kim-code-web-app/s.jsonl", [], "code-web-app"),
        ("projects/C--Users-lee-work-site/s.jsonl", [], "work-site"),
        # not an encoded path (ccusage's fixtures): the folder itself
        ("claude/projects/project-alpha/session-alpha/chat.jsonl", [], "project-alpha"),
        # outside a projects/ tree: the cwd, else the folder
        ("/tmp/copied/s.jsonl", ["/srv/billing/"], "billing"),
        ("/tmp/copied/s.jsonl", [], "copied"),
    ],
)  # fmt: skip
def test_workflow_of(path: str, cwds: list[str], expected: str) -> None:
    assert workflow_of(place_of(PurePath(path)), cwds) == expected


def test_sniff_claims_its_fixtures_and_no_other_format(tmp_path: Path) -> None:
    for path in sorted((DATA / "ingest").glob("*/*")):
        if path.name.endswith(".expected.json") or not path.is_file():
            continue
        src = open_source(path, tmp_path)
        assert INGESTER.sniff(src) == (path.parent.name == "claude-code"), path
        assert BY_NAME["codex"].sniff(src) == (path.parent.name == "codex"), path


def test_sniff_a_first_line_longer_than_the_head() -> None:
    big = {"parentUuid": None, "isSidechain": False, "sessionId": "s", "type": "user",
           "message": {"role": "user", "content": "x" * 300_000}}  # fmt: skip
    head = json.dumps(big).encode()[: 256 << 10]
    assert sniff_claude(head)
    assert not sniff_claude(b'{"ts": "2026-01-01", "model": "gpt-4o"}\n')
    assert not sniff_claude(b"not json\n")


# --- the shared real samples ----------------------------------------------------------------


def ccusage_calls(files: list[Path]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Calls as ccusage keeps them, computed here from the raw lines with json only."""
    kept: dict[tuple[str, str | None], dict[str, Any]] = {}
    for f in files:
        for raw in f.read_text(encoding="utf-8").splitlines():
            if '"usage"' not in raw:
                continue
            obj = json.loads(raw)
            msg = obj.get("message") or {}
            usage = msg.get("usage")
            if not isinstance(usage, dict) or "timestamp" not in obj:
                continue
            if msg.get("model") == "<synthetic>" and not any(
                usage.get(k) for k in ("input_tokens", "output_tokens")
            ):
                continue
            split = usage.get("cache_creation")
            cw = usage.get("cache_creation_input_tokens", 0)
            call = {
                "day": obj["timestamp"][:10],
                "input": usage.get("input_tokens", 0),
                "output": usage.get("output_tokens", 0),
                "cache_read": usage.get("cache_read_input_tokens", 0),
                "cache_write": split["ephemeral_5m_input_tokens"] if split else cw,
                "cache_write_1h": split["ephemeral_1h_input_tokens"] if split else 0,
                "cost": obj.get("costUSD"),
            }
            total = sum(v for k, v in call.items() if k not in ("day", "cost"))
            key = (msg["id"], obj.get("requestId"))
            if key not in kept or total > kept[key]["total"]:
                kept[key] = {**call, "total": total}
    return kept


def per_day(calls: dict[Any, dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in calls.values():
        d = out[c["day"]]
        d["calls"] += 1
        for k in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
            d[k] += c[k]
    return {k: dict(v) for k, v in out.items()}


def stored_per_day(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    rows = con.execute(
        """SELECT strftime(ts, '%Y-%m-%d'), count(*), sum(input_tokens), sum(output_tokens),
            sum(cache_read_tokens), sum(cache_write_tokens), sum(cache_write_1h_tokens)
        FROM usage_events GROUP BY 1"""
    ).fetchall()
    keys = ("calls", "input", "output", "cache_read", "cache_write", "cache_write_1h")
    return {r[0]: dict(zip(keys, (int(x) for x in r[1:]), strict=True)) for r in rows}


@needs_samples
def test_spotter_sample(con: duckdb.DuckDBPyConnection) -> None:
    files = sorted(SPOTTER.rglob("*.jsonl"))
    results = load(con, *files)
    assert all(r.format == "claude-code" and r.rows_quarantined == 0 for r in results)
    expected = ccusage_calls(files)
    assert sum(r.rows_loaded for r in results) == len(expected) == 18
    assert stored_per_day(con) == per_day(expected)
    rows = usage_rows(con)
    assert {r["agent"] for r in rows} == {"main", "subagent", "compact"}
    assert {r["workflow"] for r in rows} == {"spotter", "spotter-dov"}


@needs_samples
def test_ccusage_fixture_tree(con: duckdb.DuckDBPyConnection) -> None:
    results = load(con, CCUSAGE / "claude")
    assert [r.rows_quarantined for r in results] == [0, 0]
    files = sorted((CCUSAGE / "claude").rglob("*.jsonl"))
    expected = ccusage_calls(files)
    assert sum(r.rows_loaded for r in results) == len(expected) == 5
    assert stored_per_day(con) == per_day(expected)
    costs = con.execute("SELECT sum(reported_cost_usd) FROM usage_events").fetchall()[0][0]
    assert costs == sum(Decimal(str(c["cost"])) for c in expected.values()) == Decimal("1.09")
    assert {r["workflow"] for r in usage_rows(con)} == {"project-alpha", "project-beta"}


@needs_samples
def test_ccusage_transcript_without_timestamps(con: duckdb.DuckDBPyConnection) -> None:
    """ccusage's statusline transcript has calls without ids or timestamps: quarantined."""
    (result,) = load(con, CCUSAGE / "test-transcript.jsonl")
    assert result.format == "claude-code"
    assert (result.records_read, result.rows_quarantined) == (2, 2)
    assert {q["reason"] for q in quarantine_rows(con)} == {"missing timestamp"}
