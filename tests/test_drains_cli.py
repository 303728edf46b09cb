"""`tokenaudit drains` and the drains in `audit`: options, formats, exit codes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenaudit.cli import app
from tokenaudit.sample import generate


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("drains-cli")
    generate(work / "data", events=6000, seed=13)
    db = work / "t.duckdb"
    out = CliRunner().invoke(app, ["audit", "--db", str(db), str(work / "data"), "-f", "json"])
    assert out.exit_code == 0, out.output
    (work / "audit.json").write_text(out.stdout)
    return db, work / "audit.json"


def test_audit_json_holds_the_drains(loaded: tuple[Path, Path]) -> None:
    audit = json.loads(loaded[1].read_text())
    kinds = {r["kind"] for r in audit["drains"]["rows"]}
    assert {"runaway_loop", "duplicate_call", "model_overkill"} <= kinds
    wastes = [Decimal(r["waste_usd"]) for r in audit["drains"]["rows"]]
    assert wastes == sorted(wastes, reverse=True)
    assert Decimal(audit["drains"]["totals"]["waste_usd"]) == sum(wastes)


def test_drains_filters_and_formats(loaded: tuple[Path, Path]) -> None:
    db = str(loaded[0])
    runner = CliRunner()
    only = runner.invoke(app, ["drains", "--db", db, "--kind", "runaway_loop", "-f", "json"])
    assert only.exit_code == 0, only.output
    rows = json.loads(only.stdout)["rows"]
    assert [r["kind"] for r in rows] == ["runaway_loop"]
    assert rows[0]["evidence"]["requests"] == 400 and rows[0]["fix"]
    none = runner.invoke(app, ["drains", "--db", db, "--min-waste", "100000", "-f", "json"])
    assert json.loads(none.stdout)["rows"] == []
    wf = runner.invoke(app, ["drains", "--db", db, "-w", "workflow=sales-email", "-f", "json"])
    assert {r["group"]["workflow"] for r in json.loads(wf.stdout)["rows"]} == {"sales-email"}
    csv_out = runner.invoke(app, ["drains", "--db", db, "-f", "csv"])
    assert csv_out.stdout.startswith("kind,workflow,model,agent,waste_usd,what_if_usd")
    md = runner.invoke(app, ["drains", "--db", db, "-f", "markdown"])
    assert "| **total** |" in md.stdout
    table = runner.invoke(app, ["drains", "--db", db])
    assert "Drains, costliest first" in table.stdout and "Waste by kind" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "leaky_bucket"], "unknown drain kind 'leaky_bucket'"),
        (["--min-waste", "lots"], "--min-waste 'lots'"),
        (["--since", "yesterday"], "--since 'yesterday'"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    loaded: tuple[Path, Path], args: list[str], message: str
) -> None:
    out = CliRunner().invoke(app, ["drains", "--db", str(loaded[0]), *args])
    assert out.exit_code == 2
    assert message in out.stderr
    assert "Traceback" not in out.output


def test_settings_from_the_config_file(loaded: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = tmp_path / "tokenaudit.toml"
    cfg.write_text("[drains.runaway_loop]\nmin_calls = 1000\n")
    runner = CliRunner()
    args = ["drains", "--db", str(loaded[0]), "--kind", "runaway_loop", "-f", "json"]
    out = runner.invoke(app, [*args, "--config", str(cfg)])
    assert json.loads(out.stdout)["rows"] == []  # the 400-call loop is under the new floor
    cfg.write_text("[drains.runaway_loop]\nmin_call = 1000\n")
    bad = runner.invoke(app, [*args, "--config", str(cfg)])
    assert bad.exit_code == 2
    assert "unknown setting drains.runaway_loop.min_call" in bad.stderr


def test_audit_json_holds_the_anomalies(loaded: tuple[Path, Path]) -> None:
    audit = json.loads(loaded[1].read_text())
    spikes = audit["anomalies"]["rows"]
    loop = [r for r in spikes if r["group"]["workflow"] == "code-review" and r["kind"] == "spike"]
    assert any(d["kind"] == "runaway_loop" for r in loop for d in r["drains"])
    assert audit["anomalies"]["velocity"]
