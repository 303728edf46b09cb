"""Budgets files: the rules the CI gate and `forecast` read, and their errors (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from tokenaudit.budgets import Rule, load_budgets
from tokenaudit.cli import app
from tokenaudit.errors import ConfigError

runner = CliRunner()

DESIGN_SAMPLE = """\
[[rule]]
name = "support spend"                      # optional; defaults to metric + scope
scope = { workflow = "ticket-*", environment = "prod" }
metric = "spend_usd"    # spend_usd | cost_per_accepted_usd | tokens_per_request_p95
period = "month"        # day | week | month | all (spend rules)
warn = 4000
fail = 5000.5

[[rule]]
scope = { workflow = "*" }
metric = "cost_per_accepted_usd"
max_increase_pct = 10   # regression against --baseline
min_samples = 200       # below this, "not enough data", never a failure
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_design_sample(tmp_path: Path) -> None:
    budgets = load_budgets(_file(tmp_path, DESIGN_SAMPLE))
    spend, regression = budgets.rules
    assert spend == Rule(
        name="support spend",
        metric="spend_usd",
        scope=(("workflow", "ticket-*"), ("environment", "prod")),
        period="month",
        warn=Decimal(4000),
        fail=Decimal("5000.5"),
        line=1,
    )
    assert regression.name == "cost_per_accepted_usd workflow=*"
    assert regression.period is None and regression.warn is None
    assert regression.max_increase_pct == 10 and regression.min_samples == 200
    assert regression.line == 9
    assert budgets.spend_rules() == [spend]
    assert budgets.spend_rules("day") == []


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("ticket-*", "ticket-summary", True),
        ("ticket-*", "ticket-", True),
        ("ticket-*", "my-ticket-summary", False),
        ("*", "anything", True),
        ("*", None, False),
        ("a_b%", "a_b%", True),  # SQL wildcards are plain characters
        ("a_b%", "axbyz", False),
        ("exact", "exact", True),
        ("exact", "Exact", False),
    ],
)
def test_scope_patterns_match_alike_in_python_and_sql(
    pattern: str, value: str | None, expected: bool
) -> None:
    rule = Rule(name="r", metric="spend_usd", scope=(("workflow", pattern),))
    assert rule.matches({"workflow": value}) is expected
    where, params = rule.scope_sql()
    con = duckdb.connect()
    con.execute("CREATE TABLE usage_events (workflow VARCHAR)")
    con.execute("INSERT INTO usage_events VALUES (?)", [value])
    hits = con.execute(f"SELECT count(*) FROM usage_events WHERE {where}", params).fetchall()
    assert bool(hits[0][0]) is expected


def test_a_group_without_a_scope_dimension_is_outside() -> None:
    rule = Rule(name="r", metric="spend_usd", scope=(("workflow", "*"), ("team", "a")))
    assert not rule.matches({"workflow": "x"})
    assert rule.matches({"workflow": "x", "team": "a"})


SPEND = 'metric = "spend_usd"\nperiod = "month"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[rule]]\n" + SPEND + 'warn = "lots"\n', "line 4: rule 1: 'warn' must be a number"),
        ("[[rule]]\n" + SPEND + "fail = -1\n", "line 4: rule 1: 'fail' must be a number >= 0"),
        ("[[rule]]\n" + SPEND + "fail = true\n", "rule 1: 'fail' must be a number"),
        ("[[rule]]\n" + SPEND + "warn = 9\nfail = 5\n", "line 4: rule 1: 'warn' (9) is above"),
        ("[[rule]]\n" + SPEND + "fial = 5\n", "line 4: rule 1: 'fial' is not a rule key"),
        ("[[rule]]\n" + SPEND, "line 1: rule 1: 'warn' is missing: the rule sets no limit"),
        ("[[rule]]\nperiod = 'month'\nfail = 1\n", "line 1: rule 1: 'metric' is missing"),
        ("[[rule]]\nmetric = 'spend'\nfail = 1\n", "line 2: rule 1: 'metric' is not a metric"),
        ("[[rule]]\nmetric = 'spend_usd'\nfail = 1\n", "rule 1: 'period' is missing"),
        (
            "[[rule]]\nmetric = 'spend_usd'\nperiod = 'quarter'\nfail = 1\n",
            "line 3: rule 1: 'period' is not a period",
        ),
        (
            "[[rule]]\n" + SPEND + "fail = 1\n\n[[rule]]\n" + SPEND + "fail = 1\n"
            "scope = { colour = 'red' }\n",
            "line 10: rule 2: 'scope.colour' is not a dimension",
        ),
        (
            "[[rule]]\n" + SPEND + "fail = 1\nscope = { workflow = 3 }\n",
            "line 5: rule 1: 'scope.workflow' must be a non-empty text",
        ),
        ("[[rule]]\n" + SPEND + "fail = 1\nscope = 'all'\n", "rule 1: 'scope' must be a table"),
        ("[[rule]]\n" + SPEND + "fail = 1\nname = ''\n", "rule 1: 'name' must be a non-empty"),
        ("[budgets]\nfail = 1\n", "unknown key 'budgets'"),
        ("# nothing yet\n", "no [[rule]] tables"),
        ("[[rule]\n", "invalid TOML"),
    ],
)
def test_bad_files_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_budgets(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such budgets file"):
        load_budgets(tmp_path / "nope.toml")


def test_cli_bad_budgets_file_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "[[rule]]\n" + SPEND + 'warn = "lots"\n')
    db = tmp_path / "t.duckdb"
    calls = tmp_path / "calls.jsonl"
    calls.write_text(
        json.dumps({"ts": dt.datetime(2026, 11, 2).isoformat() + "Z", "model": "gpt-4o-mini"})
        + "\n"
    )
    assert runner.invoke(app, ["ingest", str(calls), "--db", str(db)]).exit_code == 0
    result = runner.invoke(app, ["forecast", "--db", str(db), "--budgets", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert str(path) in line.replace("\n", "")
    assert "'warn' must be a number >= 0, not 'lots'" in line


def test_lists_per_and_no_data(tmp_path: Path) -> None:
    text = """\
[[rule]]
scope = { workflow = ["ticket-*", "rag-search"], environment = "prod" }
per = ["workflow"]
metric = "tokens_per_request_p50"
fail = 900
on_no_data = "fail"

[[rule]]
scope = { workflow = "*" }
metric = "retry_rate"
warn = 0.05

[[rule]]
scope = { provider = "openai" }
metric = "capture_rate"
warn = 0.98
fail = 0.95
"""
    listed, star, capture = load_budgets(_file(tmp_path, text)).rules
    assert listed.scope == (("workflow", ("ticket-*", "rag-search")), ("environment", "prod"))
    assert listed.split_dims() == ("workflow",) and listed.on_no_data == "fail"
    assert listed.matches({"workflow": "rag-search", "environment": "prod"})
    assert listed.matches({"workflow": "ticket-1", "environment": "prod"})
    assert not listed.matches({"workflow": "sales", "environment": "prod"})
    where, params = listed.scope_sql()
    assert where.count("OR") == 1 and params == ["ticket-%", "rag-search", "prod"]
    assert listed.name == "tokens_per_request_p50 workflow=ticket-*|rag-search, environment=prod"
    assert star.split_dims() == ("workflow",) and star.on_no_data == "ok"
    assert capture.lower_is_worse and not star.lower_is_worse


@pytest.mark.parametrize(
    ("body", "key", "line"),
    [
        ('metric = "capture_rate"\nwarn = 0.9\nfail = 0.95', "'warn'", 3),
        ('metric = "capture_rate"\nscope = { workflow = "x" }\nfail = 0.9', "'scope.workflow'", 3),
        ('metric = "retry_rate"\nper = ["nope"]\nfail = 0.1', "'per'", 3),
        ('metric = "retry_rate"\non_no_data = "maybe"\nfail = 0.1', "'on_no_data'", 3),
        ('metric = "retry_rate"\nscope = { workflow = [] }\nfail = 0.1', "'scope.workflow'", 3),
    ],
)
def test_new_keys_are_checked(tmp_path: Path, body: str, key: str, line: int) -> None:
    with pytest.raises(ConfigError) as e:
        load_budgets(_file(tmp_path, "[[rule]]\n" + body + "\n"))
    assert key in str(e.value) and f"line {line}" in str(e.value)
