"""The command line: exit codes, stdout vs stderr, JSON that scripts can trust."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import DATA
from tokenaudit.cli import app

NATIVE = DATA / "ingest" / "tokenaudit"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ingest_then_report_json(tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    code, out, _ = run("ingest", str(NATIVE / "calls.jsonl"), "--db", db, "--format", "json")
    assert code == 0
    payload = json.loads(out)
    (row,) = payload["rows"]
    assert row["records_read"] == 6 and row["rows_loaded"] == 6 and row["rows_quarantined"] == 0
    assert payload["totals"]["rows_loaded"] == 6
    code, out, _ = run("report", "--by", "workflow", "--db", db, "-f", "json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"rows", "totals", "meta"}
    total = Decimal(report["totals"]["cost_usd"])
    assert sum(Decimal(r["cost_usd"]) for r in report["rows"] if r["cost_usd"]) == total
    keys = {
        "group",
        "requests",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "unpriced_requests",
        "share",
        "outcomes",
        "accepted",
        "acceptance_rate",
        "cost_per_accepted_usd",
        "retry_rate",
    }
    assert keys <= set(report["rows"][0])
    assert isinstance(report["rows"][0]["requests"], int)
    assert report["meta"]["unpriced_requests"] == 1  # the house model no catalogue knows
    assert report["meta"]["quarantined_rows"] == 0


def test_reingest_is_reported_as_skipped(tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    run("ingest", str(NATIVE), "--db", db)
    code, out, _ = run("ingest", str(NATIVE), "--db", db, "-f", "json")
    assert code == 0
    rows = [r for r in json.loads(out)["rows"] if r["status"] != "unrecognised"]
    assert len(rows) == 2 and all(r["skipped_as_already_loaded"] for r in rows)
    assert json.loads(out)["totals"]["rows_loaded"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ingest", "does/not/exist.jsonl"], "does/not/exist.jsonl: no such file or directory"),
        (["ingest", "--input-format", "bogus", "x"], "unknown input format 'bogus'"),
        (["report", "--by", "colour"], "unknown dimension 'colour'"),
        (["report", "--since", "last week"], "--since 'last week' is not a date"),
        (["report", "--where", "workflow"], "--where 'workflow' is not DIM=VALUE"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    db = str(tmp_path / "t.duckdb")
    if args[0] == "report":
        run("ingest", str(NATIVE / "calls.jsonl"), "--db", db)
    code, out, err = run(*args, "--db", db)
    assert code == 2
    assert out == ""
    assert needle in err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith("error: ")


def test_unrecognised_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "notes.dat"
    bad.write_text("hello,world\n1,2\n")
    code, _, err = run("ingest", str(bad), "--db", str(tmp_path / "t.duckdb"))
    assert code == 2
    assert f"{bad}: unrecognised file format" in err


def test_report_without_database_exits_2(tmp_path: Path) -> None:
    code, _, err = run("report", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2
    assert "no such database" in err
    assert not (tmp_path / "none.duckdb").exists()


def test_locked_database_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    run("ingest", str(NATIVE / "calls.jsonl"), "--db", str(db))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(30)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code, _, err = run("report", "--db", str(db))
        assert code == 2
        assert "database is in use by another process" in err
        assert "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def test_csv_and_markdown_escape_formulas(tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    run("ingest", str(NATIVE / "calls.jsonl"), "--db", db)
    _, csv_out, _ = run("report", "--by", "workflow", "--db", db, "-f", "csv")
    lines = csv_out.splitlines()
    assert lines[0].startswith("workflow,requests,")
    assert any(line.startswith("\"'=HYPERLINK") for line in lines)
    assert not any(line.startswith("=") for line in lines)
    _, md, _ = run("report", "--by", "workflow", "--db", db, "-f", "markdown")
    assert md.splitlines()[1].startswith("|---|")
    assert "'=HYPERLINK" in md


def test_output_file_is_written(tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    run("ingest", str(NATIVE / "calls.jsonl"), "--db", db)
    target = tmp_path / "out" / "r.json"
    code, out, _ = run("report", "--db", db, "-f", "json", "-o", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["totals"]["requests"] == 6


def test_db_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENAUDIT_DB", str(tmp_path / "env.duckdb"))
    code, _, _ = run("ingest", str(NATIVE / "calls.jsonl"))
    assert code == 0
    assert (tmp_path / "env.duckdb").exists()


def test_formats_lists_every_format() -> None:
    code, out, _ = run("formats", "-f", "json")
    assert code == 0
    names = {r["name"] for r in json.loads(out)["rows"]}
    assert {"tokenaudit", "openai-logs", "litellm"} <= names


def test_python_dash_m(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tokenaudit", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "ingest" in proc.stdout and "report" in proc.stdout


def test_prices_for_a_model_without_data(tmp_path: Path) -> None:
    code, out, _ = run("prices", "gpt-4o-mini", "--db", str(tmp_path / "x.duckdb"), "-f", "json")
    assert code == 0
    rows = json.loads(out)["rows"]
    standard = [r for r in rows if r["service_tier"] == "standard"]
    assert standard[0]["input_mtok"] == "0.150000000000"
    assert standard[0]["source"].startswith("genai-prices")


def test_unpriced_listed_never_zero(tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    run("ingest", str(NATIVE / "calls.jsonl"), "--db", db)
    code, out, _ = run("prices", "--unpriced", "--db", db, "-f", "json")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert row["model"] == "acme-house-llm-v2"
    _, out, _ = run("report", "--by", "model", "--db", db, "-f", "json")
    ft = next(r for r in json.loads(out)["rows"] if r["group"]["model"] == "acme-house-llm-v2")
    assert ft["cost_usd"] is None and ft["unpriced_requests"] == 1
    _, table, err = run("report", "--by", "model", "--db", db)
    assert "unpriced" in table and "1 call is unpriced" in err


def test_prices_table_for_one_model_and_narrow_terminals(tmp_path: Path) -> None:
    from rich.console import Console

    from tokenaudit import api
    from tokenaudit.report import render

    info = api.prices(tmp_path / "none.duckdb", "claude-sonnet-4-5-20250929")
    (table,) = render.prices_tables(info.rows, "Prices per million tokens", None)
    assert str(table.title).startswith("claude-sonnet-4-5-20250929 = claude-sonnet-4-5")
    headers = [str(c.header) for c in table.columns]
    assert "model" not in headers and "calls" not in headers and "source" not in headers
    assert {"input size", "input", "cache read", "write 5m", "write 1h", "output"} <= set(headers)
    # Several models: one table when it fits, one per model when it does not.
    db = str(tmp_path / "t.duckdb")
    run("ingest", str(NATIVE / "calls.jsonl"), "--db", db)
    rows = api.prices(Path(db)).rows
    models = {r["model"] for r in rows}
    assert len(render.prices_tables(rows, "t", None)) == 1
    narrow = render.prices_tables(rows, "t", 80)
    assert len(narrow) == len(models) > 1
    console = Console(width=200, record=True)
    for t in narrow:
        console.print(t)
    assert "$0.15" in console.export_text()  # gpt-4o-mini input, per million


def test_audit_output_file_holds_every_section(tmp_path: Path) -> None:
    out = tmp_path / "audit.txt"
    code, _, err = run(
        "audit", str(NATIVE / "calls.jsonl"), "--db", str(tmp_path / "a.duckdb"), "-o", str(out)
    )
    assert code == 0, err
    text = out.read_text()
    assert "Ingest" in text and "Spend by workflow" in text
    assert "\x1b[" not in text  # no terminal colour codes in a file


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("report", "tool.tokenaudit table of pyproject.toml"),
        ("check", "a list of rule tables"),
        ("report", "$TOKENAUDIT_DB"),
    ],
)
def test_help_texts_keep_their_words(command: str, expected: str) -> None:
    """Rich markup must not eat bracketed words in --help."""
    out = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    assert expected in " ".join(out.stdout.split())
