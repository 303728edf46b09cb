"""`tokenaudit check` end to end on sample data: exit codes, what a breach names, and one
golden file per output format (tests/data/check/; --update-golden rewrites them)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tokenaudit.cli import app
from tokenaudit.sample import generate

runner = CliRunner()
DATA = Path(__file__).parent / "data" / "check"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with t.duckdb (sample data, 3000 events, seed 1) and baseline.json."""
    work = tmp_path_factory.mktemp("check")
    generate(work / "data", events=3000, seed=1)
    with pytest.MonkeyPatch.context() as mp:  # no tokenaudit.toml or pricing/ of the caller
        mp.chdir(work)
        out = runner.invoke(app, ["ingest", "--db", "t.duckdb", "data"])
    assert out.exit_code == 0, out.output
    (work / "budgets.toml").write_text((DATA / "budgets.toml").read_text())
    return work


def _check(work: Path, monkeypatch: pytest.MonkeyPatch, budgets: str, *args: str) -> Result:
    monkeypatch.chdir(work)
    monkeypatch.setenv("COLUMNS", "200")
    (work / "b.toml").write_text(budgets, encoding="utf-8")
    return runner.invoke(app, ["check", "--db", "t.duckdb", "--budgets", "b.toml", *args])


SPEND = """\
[[rule]]
name = "support spend"
scope = {{ workflow = "ticket-*", environment = "prod" }}
metric = "spend_usd"
period = "all"
{level} = {limit}
"""


def test_a_budget_the_data_exceeds_exits_1_naming_rule_scope_value_limit(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _check(work, monkeypatch, SPEND.format(level="fail", limit=3), "-f", "json")
    assert out.exit_code == 1, out.output
    (row,) = json.loads(out.stdout)["rows"]
    assert row["rule"] == "support spend" and row["verdict"] == "fail" and row["level"] == "fail"
    assert row["scope"] == {"workflow": "ticket-*", "environment": "prod"}
    assert row["limit"] == "3" and float(row["value"]) > 3
    table = _check(work, monkeypatch, SPEND.format(level="fail", limit=3))
    assert table.exit_code == 1
    for text in ("support spend", "workflow=ticket-*, environment=prod", "fail > $3", "$12.88"):
        assert text in table.stdout
    assert "FAILED" in table.stderr


def test_a_budget_the_data_respects_exits_0(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _check(work, monkeypatch, SPEND.format(level="fail", limit=5000))
    assert out.exit_code == 0, out.output
    assert "passed" in out.stderr


def test_a_warn_level_breach_warns_and_exits_0(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _check(work, monkeypatch, SPEND.format(level="warn", limit=3))
    assert out.exit_code == 0, out.output
    assert "warning:" in out.stderr and "warn > $3" in out.stdout


def test_a_malformed_budgets_file_exits_2_naming_line_and_key(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = SPEND.format(level="fail", limit=3).replace('metric = "spend_usd"', 'metric = "spend"')
    out = _check(work, monkeypatch, bad)
    assert out.exit_code == 2
    assert "b.toml, line 4: rule 1: 'metric' is not a metric" in out.stderr
    assert "Traceback" not in out.output
    typo = _check(work, monkeypatch, SPEND.format(level="fial", limit=3))
    assert typo.exit_code == 2 and "line 6" in typo.stderr and "'fial'" in typo.stderr


def test_a_scope_without_data_fails_only_where_the_rule_says_so(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = '[[rule]]\nscope = { workflow = "nope" }\nmetric = "retry_rate"\nfail = 0.1\n'
    quiet = _check(work, monkeypatch, rule, "-f", "json")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["rows"][0]["verdict"] == "no_data"
    strict = _check(work, monkeypatch, rule + 'on_no_data = "fail"\n', "-f", "json")
    assert strict.exit_code == 1 and json.loads(strict.stdout)["rows"][0]["verdict"] == "fail"


def test_only_changed_is_quiet_when_nothing_moved(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets = SPEND.format(level="fail", limit=5000)
    for fmt in ("table", "markdown", "json"):
        out = _check(work, monkeypatch, budgets, "--only-changed", "-f", fmt)
        assert out.exit_code == 0
        assert (out.stdout == "") if fmt != "json" else json.loads(out.stdout)["rows"] == []


def test_a_missing_baseline_file_exits_2(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _check(work, monkeypatch, SPEND.format(level="fail", limit=3), "--baseline", "x.json")
    assert out.exit_code == 2 and "x.json: no such baseline file" in out.stderr


def test_github_appends_the_markdown_to_the_step_summary(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = work / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = _check(work, monkeypatch, SPEND.format(level="fail", limit=3), "-f", "github")
    assert out.exit_code == 1
    assert out.stdout.startswith("::error file=b.toml,line=1,title=support spend%3A fail::")
    assert "| ❌ fail | support spend |" in summary.read_text()


FORMATS = {"table": "table.txt", "json": "check.json", "markdown": "check.md",
           "junit": "check.junit.xml", "github": "check.github.txt"}  # fmt: skip


@pytest.fixture(scope="module")
def golden_work(work: Path) -> Path:
    """The sample data with a baseline of the golden budgets, then rag-search's calls
    costing 30 % more: one regression fails, the other group passes."""
    import duckdb

    from tokenaudit import db

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        args = ["baseline", "--db", "t.duckdb", "-b", "budgets.toml", "-o", "baseline.json"]
        out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    golden = work / "golden.duckdb"
    golden.write_bytes((work / "t.duckdb").read_bytes())
    with db.connect(golden) as con:
        assert isinstance(con, duckdb.DuckDBPyConnection)
        con.execute(
            "UPDATE usage_events SET cost_usd = cost_usd * 1.3 WHERE workflow = 'rag-search'"
        )
    return work


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_golden_outputs(
    golden_work: Path, fmt: str, monkeypatch: pytest.MonkeyPatch, update_golden: bool
) -> None:
    """The bytes are the contract: read the diff before committing a rewrite."""
    monkeypatch.chdir(golden_work)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    args = ["check", "--db", "golden.duckdb", "-b", "budgets.toml", "--baseline", "baseline.json"]
    out = runner.invoke(app, [*args, "-f", fmt])
    assert out.exit_code == 1, out.output
    text = out.stdout.replace(str(golden_work), "<work>")
    path = DATA / FORMATS[fmt]
    if update_golden:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    if fmt == "junit":
        root = ET.fromstring(text.split("\n", 1)[1])
        assert root.tag == "testsuites"
        (suite,) = root
        assert suite.tag == "testsuite"
        cases = list(suite)
        assert all(c.tag == "testcase" and c.get("classname") and c.get("name") for c in cases)
        assert int(suite.get("tests", "")) == len(cases)
        failures = [c for c in cases if c.find("failure") is not None]
        assert int(suite.get("failures", "")) == len(failures) == 2
    if fmt == "markdown":
        rows = [line for line in text.splitlines() if line.startswith("|")]
        assert rows[1] == "|---|---|---|---|---|---|---|---|"
        assert all(line.count(" | ") == 7 for line in rows if not line.startswith("|-"))
        assert "❌ fail" in rows[2]  # the rows that matter first
