"""The sample's recorded exchanges: prompt text whose local count is known by construction,
the same calls as native lines would be, and token drifts that reconcile --tokens finds."""

from __future__ import annotations

import gzip
import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import HAVE_TIKTOKEN, ROOT, load
from tests.test_sample import _read
from tokenaudit import db, sample
from tokenaudit.reconcile.tokens import Options, TokenReconciliation, reconcile
from tokenaudit.sample import FT_MODEL, LABELS_NAME, TENANTS, SampleSummary, generate
from tokenaudit.sample_exchanges import (
    CANARY,
    CLASSIFY_TOOLS,
    CLASSIFY_TOOLS_TOKENS,
    CLIP,
    EXCHANGES_NAME,
    LOOKUP_TOKENS,
    NOISE,
    RATIO,
    SUMMARY_TOOLS,
    SUMMARY_TOOLS_TOKENS,
    WORDS,
    lookup_args,
)

needs_tiktoken = pytest.mark.skipif(not HAVE_TIKTOKEN, reason="tiktoken files not available")


@dataclass(frozen=True)
class Recorded:
    summary: SampleSummary
    labels: dict[str, Any]
    exchanges: list[dict[str, Any]]
    rec: TokenReconciliation
    local: dict[str, tuple[str, int, int, str | None]]  # id -> model, reported, local, note
    dbfile: Path

    def drifted(self) -> dict[str, str]:
        return {i: d["cause"] for d in self.labels["token_drift"] for i in d["request_ids"]}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    if not HAVE_TIKTOKEN:
        pytest.skip("tiktoken files not available")
    out = tmp_path_factory.mktemp("sample")
    summary = generate(out)
    labels = json.loads((out / LABELS_NAME).read_text(encoding="utf-8"))
    with gzip.open(out / "logs" / EXCHANGES_NAME, "rt", encoding="utf-8") as f:
        exchanges = [json.loads(line) for line in f]
    dbfile = tmp_path_factory.mktemp("db") / "sample.duckdb"
    con: duckdb.DuckDBPyConnection
    with db.connect(dbfile) as con:
        assert all(r.rows_quarantined == 0 for r in load(con, out))
        rec = reconcile(con, Options(top=0))
        rows = con.execute(
            """SELECT request_id, model, input_tokens + cache_read_tokens + cache_write_tokens
                + cache_write_1h_tokens, local_input_tokens, local_note
            FROM usage_events WHERE local_input_tokens IS NOT NULL AND status = 'ok'"""
        ).fetchall()
    local = {i: (model, reported, n, note) for i, model, reported, n, note in rows}
    return Recorded(summary, labels, exchanges, rec, local, dbfile)


@needs_tiktoken
def test_the_words_are_one_token_in_both_encodings() -> None:
    import tiktoken

    for name in ("o200k_base", "cl100k_base"):
        enc = tiktoken.get_encoding(name)
        for w in WORDS:
            for form in (w, " " + w, w.capitalize(), " " + w.capitalize()):
                assert len(enc.encode_ordinary(form)) == 1, (name, form)
        for piece in (" " + CANARY, ".", ".\n\n"):
            assert len(enc.encode_ordinary(piece)) == 1, (name, piece)
        # Joined as the generator joins them, a text has as many tokens as units.
        text = "Hello again.\n\nThe team" + " " + CANARY + ". Check it"
        assert len(enc.encode_ordinary(text)) == 9, name


@needs_tiktoken
def test_the_fixed_pieces_count_as_declared() -> None:
    import tiktoken

    from tokenaudit.tokens.count import count
    from tokenaudit.tokens.prompt import from_messages

    for tools, model, n in (
        (CLASSIFY_TOOLS, FT_MODEL, CLASSIFY_TOOLS_TOKENS),
        (SUMMARY_TOOLS, "claude-haiku-4-5", SUMMARY_TOOLS_TOKENS),
    ):
        p = from_messages([], tools)
        assert p is not None and count([(p, model)])[0].tools == n
    enc = tiktoken.get_encoding("o200k_base")
    for tenant, *_ in TENANTS:
        call = len(enc.encode_ordinary("lookup_account")) + len(
            enc.encode_ordinary(lookup_args(tenant))
        )
        assert call == LOOKUP_TOKENS, tenant


def test_recorded_calls_are_the_native_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording changes how calls are logged, nothing else: same ids, tokens, attribution,
    outcomes, billing; timestamps to the second."""
    recorded = generate(tmp_path / "recorded", events=3000, seed=5)
    monkeypatch.setattr(sample, "RECORDED", {})
    native = generate(tmp_path / "native", events=3000, seed=5)
    assert not (native.out / "logs" / EXCHANGES_NAME).exists()
    rows, labels = _read(recorded.out)
    native_rows, native_labels = _read(native.out)
    by_id = {r["request_id"]: r for r in native_rows}
    assert len(rows) == len(by_id) == 3000
    skip = {"ts", "_t", "_resolution", "span_id", "latency_ms", "prompt_hash", "prefix_hash"}
    exchanged = 0
    for r in rows:
        n = by_id[r["request_id"]]
        if r["_resolution"] == 1:
            exchanged += 1
            assert {k: v for k, v in r.items() if k not in skip} == {
                k: v for k, v in n.items() if k not in skip
            }
            assert r["ts"] == n["ts"][:-5] + ".000Z"
        else:
            assert r == n
    assert (
        exchanged
        == labels["exchanges"]["workflows"]["ticket-classify"]["calls"]
        + labels["exchanges"]["workflows"]["ticket-summary"]["calls"]
    )
    for sub in ("billing",):
        for path in sorted((native.out / sub).iterdir()):
            assert (recorded.out / sub / path.name).read_bytes() == path.read_bytes(), path.name
    assert {k: v for k, v in labels.items() if k not in ("exchanges", "token_drift", "drains")} == (
        {k: v for k, v in native_labels.items() if k != "drains"}
    )
    for a, b in zip(labels["drains"], native_labels["drains"], strict=True):
        assert {**a, "first_seen": "", "last_seen": ""} == {**b, "first_seen": "", "last_seen": ""}
        assert a["first_seen"][:19] == b["first_seen"][:19]


def test_the_bundled_sample_is_the_generator_output(tmp_path: Path) -> None:
    bundled = ROOT / "sample_data"
    out = generate(tmp_path, events=20000, seed=7).out
    for path in sorted((out / "logs").iterdir()):
        assert (bundled / "logs" / path.name).read_bytes() == path.read_bytes(), path.name
    assert {p.name for p in (bundled / "logs").iterdir()} == {
        p.name for p in (out / "logs").iterdir()
    }
    for name in (LABELS_NAME, "README.md"):
        assert (bundled / name).read_bytes() == (out / name).read_bytes(), name
    assert (out / "logs" / EXCHANGES_NAME).stat().st_size < 1_500_000


def test_prompts_are_unique_but_in_retries(recorded: Recorded) -> None:
    prompts: dict[str, list[tuple[str, str]]] = {}
    for x in recorded.exchanges:
        body = x["request"]["body"]
        key = json.dumps([body["model"], body.get("system"), body["messages"]])
        retry = x["request"]["headers"]["x-stainless-retry-count"]
        prompts.setdefault(key, []).append((body["metadata"]["trace_id"], retry))
    assert len(prompts) < len(recorded.exchanges)  # retries repeat their prompt
    for calls in prompts.values():  # ... and nothing else does
        assert len({t for t, _ in calls}) == 1 and len({r for _, r in calls}) == len(calls)
    text = "".join(json.dumps(x["request"]["body"]) for x in recorded.exchanges[:50])
    assert CANARY in text


def test_normal_openai_calls_count_exactly(recorded: Recorded) -> None:
    drifted = recorded.drifted()
    classify = {
        x["response"]["request_id"]
        for x in recorded.exchanges
        if x["request"]["body"]["model"] == FT_MODEL and x["response"]["status"] == 200
    }
    assert len(classify) > 1000
    for i in classify - set(drifted):
        _, reported, local, note = recorded.local[i]
        assert (reported, note) == (local, None), i
    (model,) = [m for m in recorded.rec.models if m["model"] == "ft:gpt-4o-mini"]  # model_id
    assert model["method"] == "exact" and model["outside"] == 4 + 3
    assert model["median_drift_tokens"] == 0 and model["p95_abs_drift_tokens"] == 0


def test_claude_is_calibrated_near_the_built_ratio(recorded: Recorded) -> None:
    drifted = recorded.drifted()
    claude = [m for m in recorded.rec.models if m["model"].startswith("claude-")]
    assert {m["model"] for m in claude} == {"claude-haiku-4-5", "claude-opus-4-1"}
    for m in claude:
        assert m["method"] == "calibrated" and abs(m["reference_ratio"] - RATIO) < 0.01
        lo, hi = m["band"]
        assert lo < RATIO * 0.97 and hi > RATIO * 1.03
    lo, hi = (RATIO * math.exp(k * CLIP * NOISE) for k in (-1, 1))
    ratios = [
        reported / local
        for i, (model, reported, local, _) in recorded.local.items()
        if model.startswith("claude-") and i not in drifted
    ]
    assert len(ratios) > 900
    assert all(lo - 0.001 <= r <= hi + 0.001 for r in ratios)
    assert abs(statistics.median(ratios) - RATIO) < 0.005
    assert 0.8 * NOISE < statistics.stdev(math.log(r) for r in ratios) < 1.1 * NOISE


def test_reconcile_finds_the_injected_drifts_with_their_causes(recorded: Recorded) -> None:
    drifted = recorded.drifted()
    assert Counter(drifted.values()) == {
        "tool schemas": 4,
        "images or files": 4,
        "truncated log": 6,
    }
    found = {o["request_id"]: o["cause"] for o in recorded.rec.outliers}
    assert found == drifted
    images = [o for o in recorded.rec.outliers if o["cause"] == "images or files"]
    assert all(abs(o["drift_tokens"] - 765) < 10 for o in images)
    schemas = [o for o in recorded.rec.outliers if o["cause"] == "tool schemas"]
    assert all(o["drift_tokens"] == CLASSIFY_TOOLS_TOKENS for o in schemas)


def test_no_prompt_text_in_the_database(recorded: Recorded) -> None:
    canary = CANARY.lower()
    with db.connect(recorded.dbfile) as con:
        for (table,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
        ).fetchall():
            dump = json.dumps(con.execute(f'SELECT * FROM "{table}"').fetchall(), default=str)
            assert canary not in dump.lower(), table
    for f in (recorded.dbfile, Path(str(recorded.dbfile) + ".wal")):
        if f.exists():
            assert canary.encode() not in f.read_bytes().lower(), f.name
