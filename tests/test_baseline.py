"""Baselines and regressions: a 30 % rise in one workflow's cost per accepted outcome fails
on that workflow only; sampling noise (other seeds, same generator) never fails; a baseline
priced with other prices is flagged, not compared."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tokenaudit import api, db
from tokenaudit.budgets import Budgets, Rule
from tokenaudit.gate import baseline as stored
from tokenaudit.gate.check import Result, evaluate
from tokenaudit.sample import generate

EVENTS = 3000  # at 2000, invoice-extract (about 120 traces, a few costly gpt-4o ones) is too skewed for the interval
RULES = Budgets(
    Path("budgets.toml"),
    (
        Rule(
            "cost per accepted",
            "cost_per_accepted_usd",
            (("workflow", "*"),),
            max_increase_pct=Decimal(10),
            min_samples=50,
            line=1,
        ),
    ),
)


def _dataset(folder: Path, seed: int) -> Path:
    generate(folder / "data", events=EVENTS, seed=seed)
    api.ingest(folder / "t.duckdb", [folder / "data"])
    return folder / "t.duckdb"


def _check(path: Path, base: stored.Baseline) -> Result:
    with db.connect(path) as con:
        return evaluate(con, RULES, base)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, stored.Baseline]:
    folder = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as mp:  # no pricing/ of the caller: the tests' prices
        mp.chdir(folder)
        path = _dataset(folder, 1)
    with db.connect(path) as con:
        doc = stored.build(con, RULES)
    (folder / "baseline.json").write_text(stored.dumps(doc))
    return path, stored.load(folder / "baseline.json")


def test_the_baseline_keeps_sample_sizes_and_the_price_snapshot(
    base: tuple[Path, stored.Baseline],
) -> None:
    _, baseline = base
    assert baseline.price_snapshot
    (groups,) = baseline.rules.values()
    measures = list(groups.values())
    assert {m.group["workflow"] for m in measures} >= {"rag-search", "ticket-summary"}
    assert all(m.samples > 0 and m.stats["n"] == m.samples for m in measures)


def test_a_30_percent_rise_fails_on_that_workflow_only(
    base: tuple[Path, stored.Baseline], tmp_path: Path
) -> None:
    path, baseline = base
    copy = tmp_path / "t.duckdb"
    copy.write_bytes(path.read_bytes())
    with db.connect(copy) as con:
        con.execute("UPDATE usage_events SET cost_usd = cost_usd * 1.3 WHERE workflow = ?", ["rag-search"])  # fmt: skip
    result = _check(copy, baseline)
    failed = [v for v in result.verdicts if v.verdict == "fail"]
    assert [v.group for v in failed] == [{"workflow": "rag-search"}]
    (v,) = failed
    assert v.change_pct == Decimal("30.00") and v.interval_pct is not None
    assert v.interval_pct[0] > 10 and v.limit == 10
    assert result.failed


@pytest.mark.parametrize("seed", range(2, 22))
def test_sampling_noise_never_fails(
    base: tuple[Path, stored.Baseline], tmp_path: Path, seed: int
) -> None:
    result = _check(_dataset(tmp_path, seed), base[1])
    assert not result.failed, [(v.group, v.message) for v in result.verdicts]
    judged = [v for v in result.verdicts if v.verdict == "pass"]
    assert len(judged) >= 4  # the comparisons ran: not "not enough data" everywhere


def test_small_groups_are_not_enough_data(base: tuple[Path, stored.Baseline]) -> None:
    path, baseline = base
    from dataclasses import replace

    strict = Budgets(RULES.path, (replace(RULES.rules[0], min_samples=10**6),))
    with db.connect(path) as con:
        result = evaluate(con, strict, baseline)
    assert {v.verdict for v in result.verdicts} == {"not_enough_data"}


def test_other_prices_are_flagged_not_compared(
    base: tuple[Path, stored.Baseline], tmp_path: Path
) -> None:
    path, _ = base
    with db.connect(path) as con:
        doc = stored.build(con, RULES)
    doc["price_snapshot"] = "another catalogue"
    (tmp_path / "b.json").write_text(json.dumps(doc))
    result = _check(path, stored.load(tmp_path / "b.json"))
    assert result.meta["prices_differ"] and not result.failed
    assert {v.verdict for v in result.verdicts} <= {"warn", "not_enough_data"}
    assert any("not compared" in v.message for v in result.verdicts)


def test_a_broken_baseline_is_a_config_error(tmp_path: Path) -> None:
    from tokenaudit.errors import ConfigError

    (tmp_path / "b.json").write_text('{"version": 1, "rules": {"x": {"groups": [{}]}}}')
    with pytest.raises(ConfigError, match="rule 'x': a group is malformed"):
        stored.load(tmp_path / "b.json")
