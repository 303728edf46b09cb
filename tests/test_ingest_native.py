"""Native JSONL edge cases: big files, line numbers, gzip, folders, encodings, atomicity."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import DATA, load, quarantine_rows
from tokenaudit import db
from tokenaudit.errors import InputError
from tokenaudit.ingest import load as load_module

GOOD = '{"ts":"2026-11-02T10:00:%02dZ","request_id":"%s","model":"gpt-4o-mini","input_tokens":%d,"output_tokens":7}'


def _big(path: Path, n: int, bad_every: int = 0) -> set[int]:
    """Write n lines; every bad_every-th line is broken. Returns the bad line numbers."""
    bad: set[int] = set()
    with open(path, "w") as f:
        for i in range(1, n + 1):
            if bad_every and i % bad_every == 0:
                f.write('{"ts":"2026-11-02T10:00:00Z","model":"gpt-4o-mini","input_tokens":-3}\n')
                bad.add(i)
            else:
                f.write(GOOD % (i % 60, f"r{i}", i) + "\n")
    return bad


def test_fast_path_line_numbers_on_a_large_file(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "big.jsonl"
    bad = _big(path, 300_000, bad_every=7919)
    (r,) = load(con, path)
    assert r.records_read == 300_000
    assert r.rows_quarantined == len(bad)
    assert {q["line_no"] for q in quarantine_rows(con)} == bad
    # Every loaded row kept the line it came from (request id rN sits on line N).
    mismatched = con.execute(
        "SELECT count(*) FROM usage_events WHERE request_id <> 'r' || line_no"
    ).fetchall()[0][0]
    assert mismatched == 0


def test_crlf_and_blank_lines_keep_line_numbers(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "win.jsonl"
    lines = [GOOD % (1, "a", 1), "", "not json", "   ", GOOD % (2, "b", 2), '{"ts": 1']
    path.write_bytes("\r\n".join(lines).encode())
    (r,) = load(con, path)
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (4, 2, 2)
    assert [q["line_no"] for q in quarantine_rows(con)] == [3, 6]
    assert sorted(x[0] for x in con.execute("SELECT line_no FROM usage_events").fetchall()) == [
        1,
        5,
    ]


@pytest.mark.parametrize("first", ["INF", "NaN", "1e999", "[1, 2]", '"text"'])
def test_a_first_line_that_is_not_an_object_is_quarantined(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, first: str
) -> None:
    """The typed reader refuses such a file before any row is read: the exact path loads
    the good lines and quarantines the odd one, with the format given or sniffed."""
    path = tmp_path / "odd.jsonl"
    path.write_text(first + "\n" + GOOD % (1, "a", 1) + "\n")
    (r,) = load(con, path, input_format="tokenaudit")
    assert (r.records_read, r.rows_loaded, r.rows_quarantined) == (2, 1, 1)
    assert [q["line_no"] for q in quarantine_rows(con)] == [1]


def test_invalid_utf8_is_quarantined_not_dropped(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        (GOOD % (1, "a", 1) + "\n").encode()
        + b'{"ts":"2026-11-02T10:00:00Z","model":"gpt-4o-mini","workflow":"caf\xe9"}\n'
        + (GOOD % (2, "b", 2) + "\n").encode()
    )
    (r,) = load(con, path)
    assert (r.rows_loaded, r.rows_quarantined) == (2, 1)
    assert quarantine_rows(con) == [{"line_no": 2, "reason": "invalid UTF-8"}]


def test_gzip_and_folders(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    src = (DATA / "ingest" / "tokenaudit" / "calls.jsonl").read_bytes()
    nested = tmp_path / "logs" / "2026" / "11"
    nested.mkdir(parents=True)
    with gzip.open(nested / "calls.jsonl.gz", "wb") as f:
        f.write(src)
    (tmp_path / "logs" / "README.md").write_text("not data")
    (r,) = load(con, tmp_path / "logs")
    assert r.status == "loaded" and r.rows_loaded == 6
    # The same content uncompressed is the same data: skipped.
    plain = tmp_path / "calls.jsonl"
    plain.write_bytes(src)
    (again,) = load(con, plain)
    assert again.status == "skipped"


def test_corrupt_gzip_is_an_input_error(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "broken.jsonl.gz"
    data = gzip.compress(b"x" * 10_000)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        load(con, path)
    assert con.execute("SELECT count(*) FROM files").fetchall()[0][0] == 0


def test_empty_file_is_reported_not_recorded(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    (r,) = load(con, path)
    assert r.status == "empty"
    assert con.execute("SELECT count(*) FROM files").fetchall()[0][0] == 0


def test_failure_mid_load_leaves_the_database_as_before(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(con, DATA / "ingest" / "tokenaudit" / "calls.jsonl")
    before = con.execute(
        "SELECT (SELECT count(*) FROM usage_events), (SELECT count(*) FROM files), "
        "(SELECT count(*) FROM quarantine)"
    ).fetchall()
    # The events are inserted, then the quarantine insert fails: all must roll back.
    monkeypatch.setattr(load_module, "_INSERT_QUARANTINE_SQL", "SELECT error('disk on fire')")
    with pytest.raises(duckdb.Error):
        load(con, DATA / "ingest" / "tokenaudit" / "bad_lines.jsonl")
    after = con.execute(
        "SELECT (SELECT count(*) FROM usage_events), (SELECT count(*) FROM files), "
        "(SELECT count(*) FROM quarantine)"
    ).fetchall()
    assert after == before


def test_conservation_failure_rolls_back(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load_module, "_FILE_COUNTS_SQL", "SELECT 1, 0 WHERE $file_id > 0")
    with pytest.raises(InputError, match="conservation check failed"):
        load(con, DATA / "ingest" / "tokenaudit" / "bad_lines.jsonl")
    assert con.execute("SELECT count(*) FROM usage_events").fetchall()[0][0] == 0


def test_kill_during_ingest_leaves_file_whole_or_absent(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    _big(path, 400_000)
    dbfile = tmp_path / "k.duckdb"
    outcomes = set()
    for delay in (0.3, 0.8, 1.5, 2.5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tokenaudit", "ingest", str(path), "--db", str(dbfile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with db.connect(dbfile) as c:
            files, rows = c.execute(
                "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM usage_events)"
            ).fetchall()[0]
        assert (files, rows) in ((0, 0), (1, 400_000))
        outcomes.add(files)
        if files:
            break
    assert outcomes  # at least one kill landed; whole-or-nothing held every time


def test_privacy_canaries_never_reach_the_database(tmp_path: Path) -> None:
    dbfile = tmp_path / "p.duckdb"
    with db.connect(dbfile) as c:
        load(c, DATA / "ingest" / "tokenaudit" / "calls.jsonl")
        assert c.execute("SELECT count(*) FROM usage_events").fetchall()[0][0] == 6
    blob = dbfile.read_bytes()
    wal = Path(str(dbfile) + ".wal")
    if wal.exists():
        blob += wal.read_bytes()
    assert b"CANARY" not in blob
    assert b"sk-proj" not in blob and b"sk-ant" not in blob


def test_unknown_keys_are_kept_in_tags(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        json.dumps(
            {
                "ts": "2026-11-02T10:00:00Z",
                "model": "gpt-4o",
                "region": "eu",
                "nested": {"a": 1},
                "tags": {"team_hint": "x"},
                "messages": [{"content": "secret words"}],
            }
        )
        + "\n"
    )
    load(con, path)
    tags = json.loads(con.execute("SELECT tags FROM usage_events").fetchall()[0][0])
    assert tags == {"region": "eu", "nested": {"a": 1}, "team_hint": "x"}


def _rows_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    from tests.conftest import usage_rows
    from tokenaudit.ingest import native

    staged: list[bool] = []
    original = native.NativeIngester.stage

    def spy(self: native.NativeIngester, *args: Any) -> int:
        staged.append(True)
        return original(self, *args)

    monkeypatch.setattr(native.NativeIngester, "stage", spy)
    with db.connect(":memory:") as c:
        load(c, path)
        fast = (usage_rows(c), quarantine_rows(c))
    assert staged == [], "the clean file should take the fast path"
    with db.connect(":memory:") as c:
        monkeypatch.setattr(native.NativeIngester, "stream", lambda *a: None)
        load(c, path)
        exact = (usage_rows(c), quarantine_rows(c))
    return fast, exact


def test_fast_and_exact_paths_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "calls.jsonl"
    text = (DATA / "ingest" / "tokenaudit" / "calls.jsonl").read_text()
    extra = [
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n1","model":"gpt-4o","input_tokens":-4}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n2","model":"gpt-4o","input_tokens":2.5}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n3","model":"gpt-4o","attempt":0}',
        '{"ts":"soon","request_id":"n4","model":"gpt-4o"}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n5","model":"gpt-4o","status":"meh"}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n6","model":"gpt-4o","output_tokens":3,"reasoning_tokens":4}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n7","model":"gpt-4o","cost_usd":"1e400"}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n8","model":"gpt-4o","prompt_hash":"plain words"}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"n9","model":"gpt-4o","tags":"solo"}',
        '{"ts":"2026-11-02T10:00:00Z","request_id":"r-1","model":"gpt-4o"}',
    ]
    path.write_text(text + "\n".join(extra) + "\n")
    fast, exact = _rows_both_ways(path, monkeypatch)
    assert fast == exact


def test_clean_file_is_numbered_by_insertion_order(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clean file takes the ordered attempt (no ordering window): its line numbers
    # come from insertion order and must still be exact, duplicates included.
    path = tmp_path / "clean.jsonl"
    _big(path, 250_000)
    with open(path, "a") as f:
        f.write(GOOD % (1, "r777", 1) + "\n")  # line 250,001 repeats line 777's id
    attempts: list[bool] = []
    original = load_module._load

    def spy(*args: Any) -> Any:
        attempts.append(args[3][1])  # (relation, ordered, price map, pairs)
        return original(*args)

    monkeypatch.setattr(load_module, "_load", spy)
    (r,) = load(con, path)
    assert attempts == [True], "a clean file should load on the ordered attempt"
    assert (r.rows_loaded, r.rows_quarantined) == (250_000, 1)
    assert quarantine_rows(con) == [
        {"line_no": 250_001, "reason": "duplicate request_id (first at line 777)"}
    ]
    mismatched = con.execute(
        "SELECT count(*) FROM usage_events WHERE request_id <> 'r' || line_no"
    ).fetchall()[0][0]
    assert mismatched == 0
    assert con.execute("SELECT count(*) FROM usage_events WHERE price_id IS NULL").fetchall() == [
        (0,)
    ]


def test_fast_and_exact_agree_on_a_clean_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clean.jsonl"
    _big(path, 5_000)
    fast, exact = _rows_both_ways(path, monkeypatch)
    assert fast == exact


def test_models_first_seen_past_the_sample_are_priced(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    # The price map is built from the first 20,480 records; a model that appears only
    # later (and one no catalogue knows) must still be priced (or counted unpriced).
    path = tmp_path / "late.jsonl"
    _big(path, 21_000)
    with open(path, "a") as f:
        f.write(
            '{"ts":"2026-11-02T10:00:00Z","request_id":"late1","provider":"anthropic",'
            '"model":"claude-haiku-4-5","input_tokens":1000000,"output_tokens":0}\n'
            '{"ts":"2026-11-02T10:00:00Z","request_id":"late2","model":"house-llm",'
            '"input_tokens":5}\n'
        )
    load(con, path)
    rows = dict(
        con.execute(
            "SELECT request_id, cost_usd FROM usage_events WHERE request_id LIKE 'late%'"
        ).fetchall()
    )
    assert rows == {"late1": Decimal("1"), "late2": None}  # haiku 4.5: $1 per M input
    unpriced = con.execute("SELECT count(*) FROM usage_events WHERE cost_usd IS NULL")
    assert unpriced.fetchall() == [(1,)]


def test_reloading_a_tree_reads_only_new_or_changed_files(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenaudit.ingest import source

    tree = tmp_path / "logs"
    (tree / "a").mkdir(parents=True)
    for i in range(5):
        (tree / "a" / f"{i}.jsonl").write_text(GOOD % (i, f"r{i}", 10) + "\n")
    load(con, tree)
    opened: list[str] = []
    real = source.open_source

    def spy(path: Path, workdir: Path) -> Any:
        opened.append(path.name)
        return real(path, workdir)

    monkeypatch.setattr("tokenaudit.ingest.open_source", spy)
    (tree / "a" / "new.jsonl").write_text(GOOD % (9, "r9", 10) + "\n")
    changed = tree / "a" / "0.jsonl"
    changed.write_text(GOOD % (0, "r0", 10) + "\n" + GOOD % (1, "r0b", 10) + "\n")
    results = load(con, tree)
    assert sorted(opened) == ["0.jsonl", "new.jsonl"]
    assert sum(r.status == "skipped" and r.detail == "unchanged" for r in results) == 4
    # 5 first calls, r0b and r9: the grown file's r0 is a duplicate of the first load.
    assert con.execute("SELECT count(*) FROM usage_events").fetchall() == [(7,)]
