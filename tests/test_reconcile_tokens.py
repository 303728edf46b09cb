"""reconcile --tokens: exact counts, calibrated bands, outlier causes, the CLI."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from tests.conftest import DATA, HAVE_TIKTOKEN, load
from tests.tokens_fake import anthropic, counted, openai, text, write
from tokenaudit.cli import app
from tokenaudit.reconcile.tokens import Options, calibrate, reconcile

pytestmark = pytest.mark.skipif(not HAVE_TIKTOKEN, reason="tiktoken files not available")
TOOLS = DATA / "tokens" / "tools.jsonl"
CLAUDE = "claude-sonnet-4-5-20250929"
RATIO = 1.16  # the generated model's tokens per reference (o200k_base) token


def _claude_set(n: int, seed: int = 7) -> list[tuple[dict[str, Any], int]]:
    """(exchange, reference count) pairs whose reported input is ~1.16x the reference."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        messages = [{"role": "user", "content": text(rng, rng.randint(40, 900))}]
        system = text(rng, rng.randint(20, 200)) if rng.random() < 0.7 else None
        rec = anthropic(
            f"c{i:04d}", CLAUDE, messages, input_tokens=1, system=system, ts=1763290000 + i
        )
        ref = counted(rec["request"]["body"], CLAUDE)
        reported = max(1, round(ref * RATIO * math.exp(rng.gauss(0, 0.015))))
        rec["response"]["body"]["usage"]["input_tokens"] = reported
        out.append((rec, ref))
    return out


def test_calibrated_band_holds_out_of_sample_and_flags_a_2x_outlier(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    data = _claude_set(400)
    learn, check = data[::2], data[1::2]
    band = calibrate([r["response"]["body"]["usage"]["input_tokens"] / ref for r, ref in learn])
    assert band is not None
    assert band.ratio == pytest.approx(RATIO, rel=0.01)
    inside = sum(
        band.contains(r["response"]["body"]["usage"]["input_tokens"] / ref) for r, ref in check
    )
    assert inside / len(check) >= 0.95
    # End to end: the same set with one request billed at twice its size.
    records = [r for r, _ in data]
    records[123]["response"]["body"]["usage"]["input_tokens"] *= 2
    load(con, write(tmp_path / "claude.jsonl", records))
    rec = reconcile(con, Options(top=0))
    (model,) = rec.models
    assert model["method"] == "calibrated"
    assert model["reference_ratio"] == pytest.approx(RATIO, rel=0.01)
    flagged = {o["request_id"] for o in rec.outliers}
    assert "c0123" in flagged
    assert len(flagged) <= 0.05 * len(records)
    assert abs(model["median_drift_pct"]) < 0.01


def test_too_few_requests_are_shown_uncalibrated_never_flagged(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    records = [r for r, _ in _claude_set(3)]
    records[0]["response"]["body"]["usage"]["input_tokens"] *= 3
    load(con, write(tmp_path / "few.jsonl", records))
    rec = reconcile(con, Options())
    (model,) = rec.models
    assert model["method"] == "uncalibrated"
    assert model["median_drift_pct"] is None
    assert rec.outliers == []


def test_tool_schemas_explain_the_drift_of_an_estimate_that_ignores_them(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, TOOLS)
    rec = reconcile(con, Options())
    (model,) = rec.models
    assert model["model"] == "gpt-4o"
    assert model["method"] == "exact"
    # Counted with the tool definitions, the six requests that send them match exactly.
    assert model["median_drift_pct"] == 0.0
    assert model["median_drift_tokens"] == 0
    gap = next(g for g in rec.gaps if g["part"] == "tool schemas")
    assert gap["requests"] == 6
    assert gap["median_drift_pct_if_ignored"] > 1.0  # ignoring them: the bill is 2x+ the count
    assert gap["median_drift_pct"] == 0.0
    # The follow-up logged without its tool definitions is the outlier, and says why.
    (outlier,) = rec.outliers
    assert outlier["request_id"] == "req_tools_followup"
    assert outlier["cause"] == "tool schemas"
    assert outlier["drift_tokens"] > 0


def test_the_cookbook_request_counts_what_openai_published(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, TOOLS)
    local, tools = con.execute(
        "SELECT local_input_tokens, local_tool_tokens FROM usage_events "
        "WHERE request_id = 'req_tools00'"
    ).fetchone() or (None, None)
    assert local == 101  # OpenAI cookbook, section 7: 101 prompt tokens for gpt-4o
    assert tools is not None and tools > 50


def _openai_set(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        messages = [
            {"role": "system", "content": text(rng, 30)},
            {"role": "user", "content": text(rng, rng.randint(20, 300))},
        ]
        rec = openai(f"o{i:03d}", "gpt-4o-mini", messages, prompt_tokens=1, ts=1763290000 + i)
        rec["response"]["body"]["usage"]["prompt_tokens"] = counted(
            rec["request"]["body"], "gpt-4o-mini"
        )
        out.append(rec)
    return out


def _usage(rec: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = rec["response"]["body"]
    return body["usage"]  # type: ignore[no-any-return]


def test_outlier_causes(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    recs = _openai_set(30)
    # cache accounting: cached tokens reported on top of a prompt count that had them already
    _usage(recs[1])["prompt_tokens"] += 800
    _usage(recs[1])["prompt_tokens_details"]["cached_tokens"] = 800
    # images: an image part the local count cannot see
    recs[2]["request"]["body"]["messages"][1]["content"] = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    _usage(recs[2])["prompt_tokens"] = 300
    # truncated: the logger cut the prompt
    recs[3]["request"]["body"]["messages"][1]["content"] = "Summarise this ... [truncated]"
    _usage(recs[3])["prompt_tokens"] = 4000
    # model mislabelled: logged as claude, counts fit gpt-4o-mini exactly
    claude = [r for r, _ in _claude_set(12, seed=11)]
    mislabelled = openai("mis", CLAUDE, recs[4]["request"]["body"]["messages"], prompt_tokens=1)
    _usage(mislabelled)["prompt_tokens"] = _usage(recs[4])["prompt_tokens"]
    load(con, write(tmp_path / "mixed.jsonl", [*recs, *claude, mislabelled]))
    rec = reconcile(con, Options(top=0))
    causes = {o["request_id"]: o["cause"] for o in rec.outliers}
    assert causes["o001"] == "cache accounting"
    assert causes["o002"] == "images or files"
    assert causes["o003"] == "truncated log"
    assert causes["mis"] == "model mislabelled"
    assert {c["cause"] for c in rec.causes} >= {"cache accounting", "images or files"}
    image = con.execute(
        "SELECT local_uncountable, local_note FROM usage_events WHERE request_id = 'o002'"
    ).fetchone()
    assert image == (1, "image:1")


def test_cli_tokens_json_csv_markdown_and_fail_over(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "t.duckdb")
    assert runner.invoke(app, ["ingest", "--db", db, str(TOOLS)]).exit_code == 0
    out = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "-f", "json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert set(payload) >= {"rows", "workflows", "outliers", "gaps", "totals", "meta"}
    assert payload["rows"][0]["model"] == "gpt-4o"
    assert payload["outliers"][0]["cause"] == "tool schemas"
    assert payload["workflows"][0]["workflow"] == "weather-bot"
    csv_out = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "-f", "csv"])
    assert csv_out.stdout.splitlines()[0].startswith("scope,name,tokenizer,method")
    md = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "-f", "markdown"])
    assert "tool schemas" in md.stdout
    table = runner.invoke(app, ["reconcile", "--tokens", "--db", db])
    assert "Largest outliers" in table.stdout
    # median drift is 0: a 5% ceiling passes, and the outlier alone does not fail it
    gate = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "--fail-over", "5%"])
    assert gate.exit_code == 0
    # Both by default; with no billing loaded, the token reconciliation alone.
    default = runner.invoke(app, ["reconcile", "--db", db, "-f", "csv"])
    assert default.exit_code == 0
    assert default.stdout == csv_out.stdout


def test_cli_fail_over_exits_1_on_drifting_model(tmp_path: Path) -> None:
    recs = _openai_set(10)
    for r in recs:
        _usage(r)["prompt_tokens"] = round(_usage(r)["prompt_tokens"] * 1.3)
    path = write(tmp_path / "drift.jsonl", recs)
    runner = CliRunner()
    db = str(tmp_path / "t.duckdb")
    assert runner.invoke(app, ["ingest", "--db", db, str(path)]).exit_code == 0
    bad = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "--fail-over", "10%"])
    assert bad.exit_code == 1
    assert "gpt-4o-mini" in bad.stderr
    ok = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "--fail-over", "40%"])
    assert ok.exit_code == 0


def test_gateway_estimates_from_a_mapped_log(tmp_path: Path) -> None:
    """A log with the gateway's own estimate beside the provider's count (``--map``)."""
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[file]\ntype = "jsonl"\n[fields]\nts = "time"\nmodel = "model"\n'
        'request_id = "id"\nworkflow = "feature"\n'
        '[tokens]\ninput = "usage.prompt_tokens"\noutput = "usage.completion_tokens"\n'
        'estimated_input = "gateway.estimated_prompt_tokens"\n'
    )
    lines = []
    for i in range(20):
        reported = 1000 + 37 * i
        estimate = reported - 420 if i % 2 else reported  # half of them miss 420 tokens
        lines.append(
            json.dumps(
                {
                    "time": f"2026-11-0{1 + i % 9}T10:00:00Z",
                    "model": "gpt-4o-mini",
                    "id": f"g{i}",
                    "feature": "search",
                    "usage": {"prompt_tokens": reported, "completion_tokens": 50},
                    "gateway": {"estimated_prompt_tokens": estimate if i != 7 else "n/a"},
                }
            )
        )
    log = tmp_path / "gateway.jsonl"
    log.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    db = str(tmp_path / "g.duckdb")
    assert (
        runner.invoke(app, ["ingest", "--db", db, "--map", str(mapping), str(log)]).exit_code == 0
    )
    out = runner.invoke(app, ["reconcile", "--tokens", "--db", db, "-f", "json"])
    assert out.exit_code == 0, out.output
    (gw,) = json.loads(out.stdout)["gateway"]
    assert gw["model"] == "gpt-4o-mini"
    assert gw["requests"] == 19  # "n/a" is no estimate
    assert gw["outside_share"] == pytest.approx(9 / 19, abs=1e-6)
    table = runner.invoke(app, ["reconcile", "--tokens", "--db", db])
    assert "Gateway estimates" in table.stdout


def test_gateway_estimate_that_leaves_out_tool_schemas_is_named(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, TOOLS)
    # The gateway counted the messages but not the tool definitions.
    con.execute(
        "UPDATE usage_events SET gateway_input_tokens = local_input_tokens - local_tool_tokens "
        "WHERE local_tool_tokens > 0"
    )
    rec = reconcile(con, Options())
    (gw,) = rec.gateway
    assert gw["requests"] == 6
    assert gw["suspected_cause"] == "tool schemas"
    assert gw["median_drift_pct"] > 1.0


def test_reconcile_default_holds_both_sides(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "b.duckdb")
    usage = DATA / "ingest" / "openai-usage" / "completions_2026.json"
    assert runner.invoke(app, ["ingest", "--db", db, str(usage), str(TOOLS)]).exit_code == 0
    out = runner.invoke(app, ["reconcile", "--db", db, "-f", "json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["rows"] and "capture_rate" in payload["totals"]  # billing, as before
    assert payload["tokens"]["rows"][0]["model"] == "gpt-4o"
    only_billing = json.loads(
        runner.invoke(app, ["reconcile", "--billing", "--db", db, "-f", "json"]).stdout
    )
    assert "tokens" not in only_billing
    clash = runner.invoke(app, ["reconcile", "--db", db, "-f", "csv"])
    assert clash.exit_code == 2
    assert "--billing or --tokens" in clash.stderr
    md = runner.invoke(app, ["reconcile", "--db", db, "-f", "markdown"])
    assert "Token drift by model" in md.stdout and "capture" in md.stdout


def test_fractions_keep_their_precision(con: duckdb.DuckDBPyConnection) -> None:
    load(con, TOOLS)
    for g in reconcile(con, Options()).gaps:
        for key in ("median_share", "median_drift_pct_if_ignored"):
            assert g[key] != round(g[key], 1), (key, g[key])  # not cut to one decimal


def test_narrow_terminal_drops_columns_instead_of_wrapping(con: duckdb.DuckDBPyConnection) -> None:
    from tokenaudit.reconcile.tokens_render import _width, tables

    load(con, TOOLS)
    rec = reconcile(con, Options())
    wide = tables(rec, width=200)
    narrow = tables(rec, width=80)
    wide_cols = [c.header for c in wide[-1].columns]
    narrow_cols = [c.header for c in narrow[-1].columns]
    assert "estimated" in wide_cols and "estimated" not in narrow_cols
    assert "request" in narrow_cols and "suspected cause" in narrow_cols
    assert _width(narrow[-1]) < _width(wide[-1])
