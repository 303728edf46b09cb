"""The HTML report: self-contained, each section with the library's own figures."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenaudit import api, sample
from tokenaudit.cli import app
from tokenaudit.html.page import table

runner = CliRunner()

SECTIONS = (
    "headline",
    "daily-spend",
    "workflows",
    "models",
    "tokens",
    "drains",
    "billing",
    "drift",
    "sources",
)
# Any resource the page would fetch from the network.
REMOTE = re.compile(
    r"""(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|@import|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    sample.generate(out / "data", events=6000, seed=13)
    db_path = out / "sample.duckdb"
    api.ingest(db_path, [out / "data"])
    return db_path


@pytest.fixture(scope="module")
def page(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    target = tmp_path_factory.mktemp("page") / "report.html"
    result = runner.invoke(
        app, ["report", "--db", str(sample_db), "--format", "html", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    return target.read_text(encoding="utf-8")


def _exact(html: str, element_id: str) -> Decimal:
    match = re.search(rf'id="{element_id}"[^>]*data-usd="([^"]+)"', html)
    assert match, element_id
    return Decimal(match.group(1))


def test_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not REMOTE.search(page)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert page.count("<svg") >= 6  # charts inline, one per chart section
    assert "<metadata>" not in page


def test_every_section_with_the_library_figures(page: str, sample_db: Path) -> None:
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page, anchor
    assert '<section id="budgets">' not in page  # no budgets file given
    report = api.report(sample_db, ["workflow"])
    assert _exact(page, "headline-spend") == report.totals["cost_usd"]
    drains = api.drains(sample_db)
    assert _exact(page, "drains-total") == drains.totals["waste_usd"]
    by_kind = re.search(r'<section id="drains">.*?</section>', page, re.DOTALL)
    assert by_kind
    for row in drains.by_kind:
        assert f'<td>{row["kind"]}</td><td class="n" data-usd="{row["waste_usd"]}">' in (
            by_kind.group(0)
        )
    for row in report.rows[:5]:
        assert f"<td>{row['group']['workflow']}</td>" in page
    assert f"{report.totals['requests']:,}" in page
    assert "2026-10-01 00:15:38" in page  # the window
    assert "Okabe-Ito" in page


@pytest.mark.parametrize("top", [15, 2])
def test_model_mix_is_the_report_by_model(sample_db: Path, top: int) -> None:
    """The page's plain GROUP BY gives report --by model's figures, (other) row included."""
    data = api.html_data(sample_db, top=top)
    report = api.report(sample_db, ["model"], None, top)
    keys = ("group", "requests", "cost_usd", "share")
    assert data.models == [{k: r[k] for k in keys} for r in report.rows]
    assert len(data.models) == min(top + 1, len(api.report(sample_db, ["model"]).rows))


def test_filters_narrow_every_section_but_billing(sample_db: Path) -> None:
    """--where and --since narrow the page as they narrow report and drains."""
    import datetime as dt

    from tokenaudit.report.queries import Filters

    flt = Filters(since=dt.date(2026, 10, 10), where=(("workflow", "code-review"),))
    data = api.html_data(sample_db, flt)
    report = api.report(sample_db, ["workflow"], flt, 15)
    assert data.report.totals == report.totals
    assert [r["group"] for r in data.report.rows] == [{"workflow": "code-review"}]
    assert sum(r["requests"] for r in data.models) == report.totals["requests"]
    assert sum(r["cost_usd"] for r in data.models) == report.totals["cost_usd"]
    assert list(data.daily_spend.values) == ["code-review"]
    assert data.daily_spend.days[0] >= dt.date(2026, 10, 10)
    drains = api.drains(sample_db, flt)
    assert data.drains is not None and data.drains.totals == drains.totals
    assert all(f.group.get("workflow") == "code-review" for f in data.drains.findings)
    everything = api.html_data(sample_db)
    assert data.drains.totals["waste_usd"] < everything.drains.totals["waste_usd"]  # type: ignore[union-attr]
    # The page says what it shows: the filters, the window of the calls they select, and
    # that the billing section cannot be narrowed by workflow.
    html = api.html_report(sample_db, flt)
    first, last = data.meta["window"]
    assert first >= "2026-10-10" and first > everything.meta["window"][0]
    assert (
        f"Window: {first} → {last} UTC. Filters: since 2026-10-10, workflow = code-review." in html
    )
    assert "Billing exports carry no workflow" in html
    assert "Filters:" not in api.html_report(sample_db)


def test_audit_reuses_its_results_in_the_page(sample_db: Path) -> None:
    """audit hands the page what it computed for the terminal: the page shows those."""
    drains = api.drains(sample_db)
    drains.totals["waste_usd"] = Decimal("123.456")  # a marker only a passed result carries
    html = api.html_report(sample_db, known=api.Known(drains=drains))
    assert _exact(html, "drains-total") == Decimal("123.456")


def test_sections_are_shown_only_with_data(sample_db: Path) -> None:
    from tokenaudit.html.page import SECTIONS as PARTS

    data = api.html_data(sample_db)
    data.drains, data.billing, data.tokens, data.files = None, None, None, []
    html = "".join(part(data) for part in PARTS)
    for anchor in ("drains", "billing", "drift", "sources", "budgets"):
        assert f'<section id="{anchor}">' not in html


def test_budget_states(sample_db: Path, tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        '[[rule]]\nname = "all spend"\nscope = {}\nmetric = "spend_usd"\nperiod = "month"\n'
        "warn = 50\nfail = 80\n",
        encoding="utf-8",
    )
    html = api.html_report(sample_db, budgets=budgets)
    assert '<section id="budgets">' in html
    assert "<td>all spend</td><td>over_budget</td>" in html


def test_values_are_escaped() -> None:
    html = table("t <b>", ["name", "spend#"], [("<script>alert(1)</script>", Decimal("1.5"))])
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'data-usd="1.5"' in html
    assert "$1.50" in html


def test_audit_writes_the_page(tmp_path: Path) -> None:
    sample.generate(tmp_path / "data", events=600, seed=3)
    target = tmp_path / "audit.html"
    result = runner.invoke(
        app,
        [
            "audit",
            str(tmp_path / "data"),
            "--db",
            str(tmp_path / "a.duckdb"),
            "--html",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    html = target.read_text(encoding="utf-8")
    assert '<section id="headline">' in html
    assert not REMOTE.search(html)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_page_opens_in_headless_chromium(page: str, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium or Chrome installed")
    source = tmp_path / "report.html"
    source.write_text(page, encoding="utf-8")
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400",
         f"--screenshot={shot}", source.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
