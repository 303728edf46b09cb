"""Each drain detector on its fixture (tests/data/drains/, see README.md there).

A fixture is a day of ordinary traffic (``bg-*`` request ids) with true positives
(``tp-*``) the detector must report and near misses (``nm-*``) it must not. Waste is checked
to the cent fraction wherever it can be worked out by hand from the token counts and the
prices table; the ``[drains.<kind>]`` settings are checked by turning near misses into
findings.
"""

from __future__ import annotations

import statistics
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DATA, load
from tokenaudit.config import load_config
from tokenaudit.drains import KINDS, detect
from tokenaudit.drains.base import DEFAULTS, Finding, Settings
from tokenaudit.errors import ConfigError, TokenauditError

FIXTURES = DATA / "drains"
MTOK = Decimal(1_000_000)

# fixture file -> (kind, its true positives' request id prefixes)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "duplicate": ("duplicate_call", ("tp-double-", "tp-chain-", "tp-recached-")),
    "retry": ("retry_storm", ("tp-storm-", "tp-broken-", "tp-burst-")),
    "bloat": ("context_bloat", ("tp-session-", "tp-request-")),
    "runaway": ("runaway_loop", ("tp-loop-",)),
    "cache": ("cache_miss", ("tp-uncached-",)),
    "overkill": ("model_overkill", ("tp-invoice-4o-",)),
    "rejected": ("rejected_work", ("tp-refund-v7-",)),
}


def run(
    con: duckdb.DuckDBPyConnection, name: str, settings: Settings | None = None
) -> list[Finding]:
    """Load the fixture alone and run its kind's detector: the findings."""
    (result,) = load(con, FIXTURES / f"{name}.jsonl")
    assert (result.status, result.rows_quarantined) == ("loaded", 0)
    unpriced = con.execute("SELECT count(*) FROM usage_events WHERE cost_usd IS NULL").fetchall()
    assert unpriced == [(0,)]
    report = detect(con, kinds=(CASES[name][0],), settings=settings)
    assert all(f.kind == CASES[name][0] for f in report.findings)
    return report.findings


def ids(con: duckdb.DuckDBPyConnection, prefix: str) -> list[str]:
    """The request ids of a case, in time order."""
    rows = con.execute(
        "SELECT request_id FROM usage_events WHERE starts_with(request_id, ?) ORDER BY ts, line_no",
        [prefix],
    ).fetchall()
    assert rows, f"no calls {prefix}* in the fixture"
    return [r[0] for r in rows]


def the_finding(findings: list[Finding], prefix: str) -> Finding:
    """The one finding about the case ``prefix``; it holds none of any other call."""
    hits = [f for f in findings if any(i.startswith(prefix) for i in f.request_ids)]
    assert len(hits) == 1, f"{prefix}*: {len(hits)} findings"
    assert all(i.startswith(prefix) for i in hits[0].request_ids)
    return hits[0]


def price(con: duckdb.DuckDBPyConnection, provider: str, model: str) -> dict[str, Decimal]:
    """The model's standard price per million tokens (as of the fixtures' day), from the
    prices table."""
    rows = con.execute(
        "SELECT input_mtok, coalesce(cache_read_mtok, input_mtok), "
        "coalesce(cache_write_mtok, input_mtok), output_mtok FROM prices "
        "WHERE provider = ? AND model = ? AND service_tier = 'standard' AND input_above = -1 "
        "AND DATE '2026-03-02' BETWEEN effective_from AND coalesce(effective_to, DATE '2100-01-01')",
        [provider, model],
    ).fetchall()
    assert len(rows) == 1, (provider, model, rows)
    return dict(zip(("input", "read", "write", "output"), rows[0], strict=True))


def hand_cost(
    con: duckdb.DuckDBPyConnection, request_ids: list[str], at: tuple[str, str] | None = None
) -> Decimal:
    """What the calls cost, token counts times the prices table (``at``: another model's
    prices, as (provider, model))."""
    rows = con.execute(
        "SELECT provider, model, input_tokens, cache_read_tokens, cache_write_tokens, "
        "output_tokens FROM usage_events WHERE list_contains(?, request_id)",
        [request_ids],
    ).fetchall()
    assert len(rows) == len(request_ids)
    total = Decimal(0)
    for provider, model, inp, read, write, out in rows:
        p = price(con, *(at or (provider, model)))
        total += inp * p["input"] + read * p["read"] + write * p["write"] + out * p["output"]
    return total / MTOK


def inputs(con: duckdb.DuckDBPyConnection, request_ids: list[str]) -> list[int]:
    """Total input (uncached + cache read + cache write) of each call, in the given order."""
    rows = dict(
        con.execute(
            "SELECT request_id, input_tokens + cache_read_tokens + cache_write_tokens "
            "FROM usage_events WHERE list_contains(?, request_id)",
            [request_ids],
        ).fetchall()
    )
    return [int(rows[i]) for i in request_ids]


# ------------------------------------------------------------------------ every detector


@pytest.mark.parametrize("name", CASES)
def test_true_positives_found_and_near_misses_left_alone(
    con: duckdb.DuckDBPyConnection, name: str
) -> None:
    findings = run(con, name)
    for prefix in CASES[name][1]:
        f = the_finding(findings, prefix)
        assert f.fix
        assert f.first_seen <= f.last_seen
        assert f.calls >= len(f.request_ids) > 0
        assert f.waste_usd >= 0
    flagged = {i for f in findings for i in f.request_ids}
    near_misses = con.execute(
        "SELECT request_id FROM usage_events WHERE starts_with(request_id, 'nm-')"
    ).fetchall()
    assert near_misses
    assert not flagged & {r[0] for r in near_misses}
    # Nothing else either: every finding is one of the true positives.
    assert len(findings) == len(CASES[name][1])
    assert all(i.startswith("tp-") for i in flagged)


def test_every_kind_has_a_fixture() -> None:
    assert sorted(kind for kind, _ in CASES.values()) == sorted(KINDS)
    assert sorted(p.stem for p in FIXTURES.glob("*.jsonl")) == sorted(CASES)


# --------------------------------------------------------------------------- one by one


def test_duplicate_waste_is_the_cost_of_the_repeats(con: duckdb.DuckDBPyConnection) -> None:
    findings = run(con, "duplicate")
    double = the_finding(findings, "tp-double-")
    assert double.request_ids == ["tp-double-1", "tp-double-2"]
    assert double.group == {"workflow": "ticket-summary", "model": "gpt-4o-mini",
                            "agent": "summarizer"}  # fmt: skip
    assert double.waste_usd == hand_cost(con, ["tp-double-2"]) > 0
    assert double.detail == {"repeats": 1}
    # Each call within the window of the previous one: one chain of three, 190 s long.
    chain = the_finding(findings, "tp-chain-")
    assert chain.request_ids == ["tp-chain-1", "tp-chain-2", "tp-chain-3"]
    assert (chain.last_seen - chain.first_seen).total_seconds() == 190
    assert chain.waste_usd == hand_cost(con, ["tp-chain-2", "tp-chain-3"]) > 0
    assert chain.detail == {"repeats": 2}
    # A call served from cache is no duplicate, but an uncached one after it is (70 s later,
    # 130 s after the first call): the waste is that call alone.
    recached = the_finding(findings, "tp-recached-")
    assert recached.request_ids == ["tp-recached-1", "tp-recached-2", "tp-recached-3"]
    assert recached.waste_usd == hand_cost(con, ["tp-recached-3"]) > 0
    assert recached.detail == {"repeats": 1}


def test_retry_storm_waste_is_the_failed_attempts(con: duckdb.DuckDBPyConnection) -> None:
    findings = run(con, "retry")
    storm = the_finding(findings, "tp-storm-")
    assert storm.request_ids == ids(con, "tp-storm-")
    assert storm.detail == {"failures": 8, "recovered": True, "http_status": 429}
    assert storm.waste_usd == 0  # 429s carry no tokens: the storm costs latency, not money
    broken = the_finding(findings, "tp-broken-")
    assert broken.request_ids == ids(con, "tp-broken-")
    assert broken.detail == {"failures": 5, "recovered": False, "http_status": 500}
    assert broken.waste_usd == hand_cost(con, ids(con, "tp-broken-")) > 0


def test_retry_storm_is_the_burst_not_the_whole_trace(con: duckdb.DuckDBPyConnection) -> None:
    # Four failures in 14 s, then a lone one 17 minutes later in the same trace: the burst
    # is a storm, whatever else the trace does; the lone failure is not part of it.
    findings = run(con, "retry")
    burst = the_finding(findings, "tp-burst-")
    attempts = ["tp-burst-03a", "tp-burst-03b", "tp-burst-03c", "tp-burst-03d", "tp-burst-03e"]
    assert burst.request_ids[:5] == attempts
    assert "tp-burst-10a" not in burst.request_ids
    assert burst.detail == {"failures": 4, "recovered": True, "http_status": 503}
    assert burst.waste_usd == 0
    # A minute before the burst to five minutes after it.
    assert (
        burst.first_seen
        == con.execute("SELECT ts FROM usage_events WHERE request_id = 'tp-burst-03a'").fetchall()[
            0
        ][0]
    )
    assert (burst.last_seen - burst.first_seen).total_seconds() <= 14 + 300


def test_context_bloat_session_and_request(con: duckdb.DuckDBPyConnection) -> None:
    findings = run(con, "bloat")
    haiku = price(con, "anthropic", "claude-haiku-4-5")
    mini = price(con, "openai", "gpt-4o-mini")

    turns = ids(con, "tp-session-")
    sizes = inputs(con, turns)
    assert len(turns) == 14 and sizes[-1] >= 6 * sizes[0]
    session = the_finding(findings, "tp-session-")
    assert session.request_ids == turns
    assert session.session_ids == ["s-session"]
    assert session.detail["unit"] == "session"
    assert (session.detail["first_input"], session.detail["last_input"]) == (sizes[0], sizes[-1])
    # The session's calls are uncached: the input beyond the first turn's at the input price.
    assert session.waste_usd == sum(t - sizes[0] for t in sizes) * haiku["input"] / MTOK

    answers = con.execute(
        "SELECT input_tokens FROM usage_events WHERE workflow = 'doc-qa' AND status = 'ok'"
    ).fetchall()
    median = statistics.median_low(r[0] for r in answers)
    assert inputs(con, ["tp-request-1", "nm-3x-1"]) == [8 * median, 3 * median]
    request = the_finding(findings, "tp-request-")
    assert request.request_ids == ["tp-request-1"]
    assert request.detail == {"unit": "request", "median_input": median,
                              "largest_input": 8 * median}  # fmt: skip
    assert request.waste_usd == 7 * median * mini["input"] / MTOK


def test_context_bloat_request_without_agent_in_a_bloated_session(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # A chat whose assistant turns bloat, and in the same session an untagged call (no
    # agent) with 8x the median of the untagged calls: only the assistant's turns are the
    # bloated session, the untagged call is still a single oversized request.
    def line(n: int, session: str, tokens: int, agent: str | None) -> str:
        tags = f'"agent":"{agent}",' if agent else ""
        return (
            f'{{"ts":"2026-03-02T10:{n // 60:02d}:{n % 60:02d}Z","request_id":"r-{n}",'
            f'"session_id":"{session}","trace_id":"t-{n}","provider":"openai",'
            f'"model":"gpt-4o-mini","workflow":"chat",{tags}"input_tokens":{tokens},'
            f'"output_tokens":50,"status":"ok"}}\n'
        )

    lines = [line(n, "s-long", 1000 * 2**n, "assistant") for n in range(6)]
    lines += [line(10 + n, f"s-{n}", 1000 + n, None) for n in range(20)]
    lines.append(line(40, "s-long", 8000, None))
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(lines))
    load(con, path)
    findings = detect(con, kinds=("context_bloat",)).findings
    assert [(f.detail["unit"], f.request_ids) for f in findings] == [
        ("session", [f"r-{n}" for n in range(6)]),
        ("request", ["r-40"]),
    ]


def test_runaway_waste_is_the_calls_beyond_the_normal_trace(
    con: duckdb.DuckDBPyConnection,
) -> None:
    findings = run(con, "runaway")
    loop = ids(con, "tp-loop-")
    assert len(loop) == 300
    f = the_finding(findings, "tp-loop-")
    assert f.request_ids == loop
    assert f.trace_ids == ["t-loop"]
    assert f.detail["normal_calls_p99"] == 12
    assert f.detail["trace_cost_usd"] == hand_cost(con, loop)
    assert f.waste_usd == hand_cost(con, loop[12:]) > 0


def test_cache_miss_waste_is_the_prefix_at_the_read_discount(
    con: duckdb.DuckDBPyConnection,
) -> None:
    findings = run(con, "cache")
    calls = ids(con, "tp-uncached-")
    assert len(calls) == 11
    f = the_finding(findings, "tp-uncached-")
    assert f.request_ids == calls[1:]  # the first call had nothing in the cache to read
    prefix = min(inputs(con, calls))  # the longest prefix all the calls can share
    assert 2000 < prefix < 2100
    assert f.detail == {"prefix_hash": f.detail["prefix_hash"], "prefix_tokens": prefix,
                        "misses": 10}  # fmt: skip
    p = price(con, "anthropic", "claude-sonnet-4-5")
    assert f.waste_usd == 10 * prefix * (p["input"] - p["read"]) / MTOK > 0
    assert f.what_if_usd == hand_cost(con, calls[1:]) - f.waste_usd


def test_model_overkill_waste_is_the_price_difference(con: duckdb.DuckDBPyConnection) -> None:
    findings = run(con, "overkill")
    calls = ids(con, "tp-invoice-4o-")
    f = the_finding(findings, "tp-invoice-4o-")
    assert sorted(f.request_ids) == sorted(calls)
    assert f.group == {"workflow": "invoice-extract", "agent": "extractor", "model": "gpt-4o"}
    assert f.detail["cheaper_model"] == "gpt-4o-mini"
    assert f.detail["outcomes"] == {"gpt-4o": 45, "gpt-4o-mini": 48}
    assert f.detail["acceptance"] == {"gpt-4o": round(38 / 45, 4), "gpt-4o-mini": round(40 / 48, 4)}
    what_if = hand_cost(con, calls, at=("openai", "gpt-4o-mini"))
    assert f.what_if_usd == what_if
    assert f.waste_usd == hand_cost(con, calls) - what_if > 0


def test_rejected_work_waste_is_the_rejected_traces(con: duckdb.DuckDBPyConnection) -> None:
    findings = run(con, "rejected")
    rows = con.execute(
        "SELECT request_id, trace_id, outcome FROM usage_events "
        "WHERE starts_with(request_id, 'tp-refund-v7-') ORDER BY ts, line_no"
    ).fetchall()
    final: dict[str, str] = {}  # a trace's outcome: the last one its calls carry
    marks: dict[str, list[str]] = {}
    for _, trace, outcome in rows:
        if outcome is not None:
            final[trace] = outcome
            marks.setdefault(trace, []).append(outcome)
    bad = {t for t, o in final.items() if o in ("rejected", "escalated")}
    assert (len(final), len(bad)) == (30, 21)
    # Some traces were marked twice, and the reviewer's later mark is the one that counts.
    assert any(len(set(m)) > 1 for m in marks.values())

    f = the_finding(findings, "tp-refund-v7-")
    assert f.group == {"workflow": "refund-agent", "prompt_version": "v7"}
    assert sorted(f.request_ids) == sorted(r[0] for r in rows)
    assert f.detail == {"outcomes": 30, "rejected_or_escalated": 21, "share": 0.7,
                        "workflow_baseline": 0.15}  # fmt: skip
    assert f.waste_usd == hand_cost(con, [r for r, t, _ in rows if t in bad]) > 0


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("name", "table", "near_miss"),
    [
        ("duplicate", {"window_seconds": 900}, "nm-late-"),
        ("retry", {"min_failures": 2}, "nm-twice-"),
        ("retry", {"window_seconds": 1800}, "nm-spread-"),
        ("bloat", {"growth": 2.5}, "nm-growing-"),
        ("bloat", {"factor": 3}, "nm-3x-"),
        ("runaway", {"min_calls": 30}, "nm-long-"),
        ("cache", {"ttl_seconds": 900}, "nm-sparse-"),
        ("cache", {"min_misses": 4}, "nm-few-"),
        ("overkill", {"margin": 0.1}, "nm-margin-4o-"),
        ("overkill", {"min_outcomes": 10}, "nm-few-4o-"),
        ("rejected", {"share": 0.25}, "nm-kb-v2-"),
        ("rejected", {"over_baseline": 1}, "nm-legal-v1-"),
        ("rejected", {"min_outcomes": 10}, "nm-intake-v2-"),
    ],
)
def test_a_setting_turns_a_near_miss_into_a_finding(
    con: duckdb.DuckDBPyConnection, name: str, table: dict[str, float], near_miss: str
) -> None:
    kind, positives = CASES[name]
    findings = run(con, name, Settings.from_config({kind: table}))
    hits = [f for f in findings if any(i.startswith(near_miss) for i in f.request_ids)]
    assert hits
    # The true positives are still found.
    flagged = {i for f in findings for i in f.request_ids}
    for prefix in positives:
        assert flagged & set(ids(con, prefix))


def test_settings_from_tokenaudit_toml(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    (tmp_path / "tokenaudit.toml").write_text("[drains.duplicate_call]\nwindow_seconds = 900\n")
    config = load_config()
    settings = Settings.from_config(config.raw.get("drains"), str(config.path))
    assert settings.of("duplicate_call") == {"window_seconds": 900}
    assert settings.of("retry_storm") == DEFAULTS["retry_storm"]
    assert the_finding(run(con, "duplicate", settings), "nm-late-").calls == 2


def test_settings_keep_the_defaults_apart() -> None:
    settings = Settings.from_config({"cache_miss": {"ttl_seconds": 3600}})
    assert settings.of("cache_miss") == {**DEFAULTS["cache_miss"], "ttl_seconds": 3600}
    assert DEFAULTS["cache_miss"]["ttl_seconds"] == 300
    assert Settings().of("cache_miss")["ttl_seconds"] == 300
    assert Settings.from_config(None).values == DEFAULTS


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"duplicates": {"window_seconds": 60}}, "unknown drain kind 'duplicates'"),
        ({"duplicate_call": {"window": 60}}, "unknown setting drains.duplicate_call.window"),
        ({"retry_storm": {"min_failures": -1}}, "drains.retry_storm.min_failures must be"),
        ({"retry_storm": {"min_failures": True}}, "drains.retry_storm.min_failures must be"),
        ({"retry_storm": {"min_failures": "3"}}, "drains.retry_storm.min_failures must be"),
        ({"retry_storm": 3}, r"\[drains.retry_storm\] must be a table"),
        ([1], r"\[drains\] must be a table"),
    ],
)
def test_bad_drain_settings_are_config_errors(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^tokenaudit.toml: {message}"):
        Settings.from_config(raw)


def test_unknown_kind_in_detect(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(TokenauditError, match="unknown drain kind 'loops'"):
        detect(con, kinds=("loops",))
