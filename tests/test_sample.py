"""`tokenaudit sample`'s generator: same bytes per seed, valid data, and labels that are true.

The labels are the ground truth future drain detectors are scored against, so these tests
check both directions: every labelled finding has the shape its kind promises, and normal
traffic never has it (the precision a detector can reach on this data).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import itertools
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import load
from tokenaudit.sample import FT_MODEL, LABELS_NAME, SampleSummary, generate
from tokenaudit.sample_drains import KINDS, RUNAWAY_CALLS
from tokenaudit.sample_exchanges import EXCHANGES_NAME, OUTCOMES_NAME

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True)
class Sample:
    summary: SampleSummary
    seconds: float
    rows: list[dict[str, Any]]
    labels: dict[str, Any]

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {r["request_id"]: r for r in self.rows}

    def drains(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.labels["drains"] if d["kind"] == kind]

    def labelled(self, *kinds: str) -> set[str]:
        return {i for d in self.labels["drains"] if d["kind"] in kinds for i in d["request_ids"]}


def _hash(value: Any) -> str:
    return hashlib.blake2b(json.dumps(value, sort_keys=True).encode(), digest_size=8).hexdigest()


def exchange_row(x: dict[str, Any]) -> dict[str, Any]:
    """A recorded exchange as the native line of the same call (hashes of the request's
    prompt and prefix; timestamps to the second; outcome from the outcomes file)."""
    req, resp = x["request"]["body"], x["response"]
    meta = dict(req["metadata"])
    openai = "openai.com" in x["request"]["uri"]
    user = req["user"] if openai else meta.pop("user_id")
    system = req["system"] if not openai else req["messages"][:1]
    r: dict[str, Any] = {"ts": "", "request_id": resp["request_id"], **meta, "user": user}
    r |= {"provider": "openai" if openai else "anthropic", "model": req["model"]}
    r |= dict.fromkeys(TOKENS, 0)
    body = resp["body"]
    if resp["status"] == 200:
        u = body["usage"]
        if openai:
            r["cache_read_tokens"] = u["prompt_tokens_details"]["cached_tokens"]
            r["input_tokens"] = u["prompt_tokens"] - r["cache_read_tokens"]
            r["reasoning_tokens"] = u["completion_tokens_details"]["reasoning_tokens"]
            r["output_tokens"] = u["completion_tokens"]
        else:
            r["input_tokens"], r["cache_read_tokens"] = (
                u["input_tokens"],
                u["cache_read_input_tokens"],
            )
            r["cache_write_tokens"] = u["cache_creation"]["ephemeral_5m_input_tokens"]
            r["cache_write_1h_tokens"] = u["cache_creation"]["ephemeral_1h_input_tokens"]
            r["output_tokens"] = u["output_tokens"]
    else:
        err = body["error"]
        r["error_type"] = err.get("code") or err["type"]
    secs = email.utils.parsedate_to_datetime(resp["date"]).timestamp()
    if openai and resp["status"] == 200:
        assert body["created"] == secs
    r["ts"] = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    r["attempt"] = int(x["request"]["headers"]["x-stainless-retry-count"]) + 1
    r["status"] = "ok" if resp["status"] == 200 else "error"
    r["http_status"] = resp["status"]
    r["prompt_hash"] = _hash([req["model"], req.get("system"), req["messages"]])
    r["prefix_hash"] = _hash([system, req.get("tools")])
    r["_resolution"] = 1.0
    return r


def _read(out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = []
    outcomes: dict[str, str] = {}
    for path in sorted((out / "logs").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        if path.name == EXCHANGES_NAME:
            lines = [exchange_row(x) for x in lines]
        elif path.name == OUTCOMES_NAME:
            outcomes.update((o["request_id"], o["outcome"]) for o in lines)
            continue
        rows += lines
    for r in rows:
        r["_t"] = dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
        r["_prompt"] = sum(r[k] for k in TOKENS[:4])
        r.setdefault("_resolution", 0.001)
        if r["request_id"] in outcomes:
            r["outcome"] = outcomes.pop(r["request_id"])
    assert not outcomes  # every outcome names a recorded call
    return rows, json.loads((out / LABELS_NAME).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    out = tmp_path_factory.mktemp("sample")
    t0 = time.perf_counter()
    summary = generate(out)
    seconds = time.perf_counter() - t0
    rows, labels = _read(out)
    return Sample(summary, seconds, rows, labels)


def _files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_same_parameters_same_bytes(sample: Sample, tmp_path: Path) -> None:
    again = generate(tmp_path / "again")
    first = _files(sample.summary.out)
    assert _files(again.out) == first
    assert set(first) == {p.relative_to(again.out).as_posix() for p in again.files}
    other = generate(tmp_path / "other", seed=8)
    assert _files(other.out)["logs/support-bot.jsonl.gz"] != first["logs/support-bot.jsonl.gz"]


def test_defaults_size_and_speed(sample: Sample) -> None:
    s = sample.summary
    assert (s.first_day, s.last_day) == (dt.date(2026, 10, 1), dt.date(2026, 10, 30))
    assert sum(len(b) for b in _files(s.out).values()) < 5_000_000
    assert sample.seconds < 15  # about 1.2 s on a laptop; this only catches a blow-up
    assert len({p.name for p in s.files if p.parent.name == "logs"}) >= 4
    readme = (s.out / "README.md").read_text(encoding="utf-8")
    assert "tokenaudit sample --events 20000 --seed 7" in readme
    assert str(s.out) not in readme  # the bytes must not depend on where it was written


def test_event_count_is_exact_above_the_floor(sample: Sample, tmp_path: Path) -> None:
    s = sample.summary
    assert s.events_written == len(sample.rows) == 20000
    assert s.normal_events + s.injected_events == 20000
    assert sample.labels["events_written"] == 20000
    small = generate(tmp_path / "small", events=5000, seed=3)
    assert small.events_written == sum(1 for _ in _read(small.out)[0]) == 5000
    # Below the floor: every injected drain plus 500 normal calls.
    tiny = generate(tmp_path / "tiny", events=50)
    assert tiny.events_written == tiny.injected_events + 500 > 50
    assert tiny.injected_events >= RUNAWAY_CALLS


def test_every_line_is_valid_native_json(sample: Sample) -> None:
    ids = Counter(r["request_id"] for r in sample.rows)
    assert max(ids.values()) == 1
    for r in sample.rows:
        assert TS.fullmatch(r["ts"]) and isinstance(r["model"], str) and r["model"]
        assert r["request_id"].startswith("req_")
        assert all(isinstance(r[k], int) and r[k] >= 0 for k in TOKENS)
        assert r["reasoning_tokens"] <= r["output_tokens"]
        assert r["status"] in ("ok", "error") and r["attempt"] >= 1
        if r["status"] == "error":
            assert r["http_status"] in (429, 500, 503, 529) and r["error_type"]
            assert r["_prompt"] == r["output_tokens"] == 0 and "outcome" not in r
        else:
            assert r["http_status"] == 200 and r["_prompt"] > 0 and r["output_tokens"] > 0
    assert {r["provider"] for r in sample.rows} == {"openai", "anthropic"}
    assert {r["environment"] for r in sample.rows} == {"prod", "staging"}
    assert any(r["reasoning_tokens"] for r in sample.rows if r["model"] == "o3-mini")
    assert not any(r["reasoning_tokens"] for r in sample.rows if r["model"] != "o3-mini")
    for k in ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens"):
        assert any(r[k] for r in sample.rows), k
    outcomes = Counter(r.get("outcome") for r in sample.rows)
    assert set(outcomes) == {"accepted", "edited", "rejected", "escalated", None}


def test_labels_cover_every_kind_with_real_evidence(sample: Sample) -> None:
    rows = sample.by_id()
    assert sample.labels["parameters"] == {
        "events": 20000,
        "seed": 7,
        "start": "2026-10-01",
        "days": 30,
    }
    assert {d["kind"] for d in sample.labels["drains"]} == set(KINDS)
    assert sample.labels["drains_per_kind"] == sample.summary.drains
    assert len({d["id"] for d in sample.labels["drains"]}) == len(sample.labels["drains"])
    for d in sample.labels["drains"]:
        calls = [rows[i] for i in d["request_ids"]]
        assert d["calls"] == len(calls) > 0
        assert d["first_seen"] == min(c["ts"] for c in calls)
        assert d["last_seen"] == max(c["ts"] for c in calls)
        assert set(d["trace_ids"]) == {c["trace_id"] for c in calls}
        assert set(d["session_ids"]) == {c["session_id"] for c in calls}
        assert {c["workflow"] for c in calls} == {d["workflow"]}
    for i, a in enumerate(KINDS):  # no call is evidence of two kinds
        for b in KINDS[i + 1 :]:
            assert not sample.labelled(a) & sample.labelled(b), (a, b)
    injected = sample.labelled(*KINDS[:5])
    assert len(injected) == sample.summary.injected_events


def test_runaway_loop_is_one_weekend_trace_far_beyond_normal(sample: Sample) -> None:
    (d,) = sample.drains("runaway_loop")
    calls = [r for r in sample.rows if r["trace_id"] == d["trace_ids"][0]]
    assert len(calls) >= RUNAWAY_CALLS and d["calls"] == len(calls)
    assert {dt.date.fromisoformat(c["ts"][:10]).weekday() for c in calls} <= {5, 6}
    injected = sample.labelled(*KINDS[:5])
    normal = Counter(r["trace_id"] for r in sample.rows if r["request_id"] not in injected)
    assert max(normal.values()) <= 16


def test_duplicate_calls_share_prompt_model_workflow_within_60s(sample: Sample) -> None:
    rows = sample.by_id()
    for d in sample.drains("duplicate_call"):
        calls = [rows[i] for i in d["request_ids"]]
        assert len(calls) >= 2
        assert len({(c["prompt_hash"], c["model"], c["workflow"]) for c in calls}) == 1
        assert calls[-1]["_t"] - calls[0]["_t"] <= 60
        assert all(c["cache_read_tokens"] == 0 and c["status"] == "ok" for c in calls)
    # Precision: no other successful call repeats a prompt to the same model and workflow.
    seen: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for r in sample.rows:
        if r["status"] == "ok":
            seen[(r["prompt_hash"], r["model"], r["workflow"])].append(r["request_id"])
    repeated = {i for ids in seen.values() if len(ids) > 1 for i in ids}
    assert repeated == sample.labelled("duplicate_call")


def test_retry_storms_and_isolated_normal_retries(sample: Sample) -> None:
    rows = sample.by_id()
    storm_traces = set()
    for d in sample.drains("retry_storm"):
        calls = [rows[i] for i in d["request_ids"]]
        assert 6 <= len(calls) <= 20 and [c["attempt"] for c in calls] == list(
            range(1, len(calls) + 1)
        )
        assert sum(c["status"] == "error" for c in calls) >= len(calls) - 1
        assert calls[-1]["_t"] - calls[0]["_t"] < 300
        storm_traces.add(d["trace_ids"][0])
    failures = Counter(r["trace_id"] for r in sample.rows if r["status"] == "error")
    assert {t for t, n in failures.items() if n > 2} == storm_traces
    assert all(r["attempt"] <= 2 for r in sample.rows if r["trace_id"] not in storm_traces)


def test_cache_misses_and_normal_caching(sample: Sample) -> None:
    last: dict[tuple[str, str], float] = {}
    misses = set()
    for r in sorted((r for r in sample.rows if r["status"] == "ok"), key=lambda r: r["_t"]):
        key = (r["model"], r["prefix_hash"])
        if (
            r["_prompt"] >= 1024
            and r["cache_read_tokens"] == 0
            and key in last
            and r["_t"] - last[key] <= 300 - r["_resolution"]  # seconds in an exchange
        ):
            misses.add(r["request_id"])
        last[key] = r["_t"]
    labelled = sample.labelled("cache_miss")
    assert misses <= labelled  # normal traffic never misses a warm cache
    for d in sample.drains("cache_miss"):
        assert 10 <= d["calls"] <= 30 and d["prefix_tokens"] >= 1024
        assert len(set(d["request_ids"]) & misses) == d["calls"] - 1  # all but the first
    # Normal prefixes that are long enough are cached on both providers.
    assert any(r["cache_read_tokens"] for r in sample.rows if r["provider"] == "anthropic")
    assert any(r["cache_read_tokens"] for r in sample.rows if r["provider"] == "openai")


def test_context_bloat_is_far_above_normal(sample: Sample) -> None:
    rows = sample.by_id()
    injected = sample.labelled(*KINDS[:5])
    normal_max: dict[str, int] = defaultdict(int)
    for r in sample.rows:
        if r["request_id"] not in injected:
            normal_max[r["workflow"]] = max(normal_max[r["workflow"]], r["_prompt"])
    units = Counter(d["unit"] for d in sample.drains("context_bloat"))
    assert units["session"] >= 1 and units["request"] >= 1
    for d in sample.drains("context_bloat"):
        sizes = [rows[i]["_prompt"] for i in d["request_ids"]]
        if d["unit"] == "session":
            assert len(sizes) >= 8 and sizes[-1] >= 5 * sizes[0]
            assert all(b >= 1.1 * a for a, b in itertools.pairwise(sizes))
            assert len(d["session_ids"]) == 1
        else:
            assert min(sizes) >= 2.5 * normal_max[d["workflow"]]


def test_group_drains_model_overkill_and_rejected_work(sample: Sample) -> None:
    for d in sample.drains("model_overkill"):
        group = [
            r
            for r in sample.rows
            if r["workflow"] == d["workflow"] and r["model"] == d["group"]["model"]
        ]
        assert {r["request_id"] for r in group} == set(d["request_ids"])
        rates = d["acceptance"]
        assert abs(rates[d["model"]] - rates[d["cheaper_model"]]) < 0.1
    (d,) = sample.drains("rejected_work")
    rows = sample.by_id()
    outcomes = Counter(rows[i].get("outcome") for i in d["request_ids"])
    bad = outcomes["rejected"] + outcomes["escalated"]
    assert bad > 0.5 * (outcomes.total() - outcomes[None])
    per_group: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in sample.rows:
        if r.get("outcome"):
            per_group[(r["workflow"], r["prompt_version"])][r["outcome"]] += 1
    for (wf, version), c in per_group.items():
        if (wf, version) != (d["workflow"], d["group"]["prompt_version"]) and c.total() >= 100:
            assert (c["rejected"] + c["escalated"]) / c.total() < 0.25, (wf, version)


def test_output_loads_clean_and_priced(sample: Sample, con: duckdb.DuckDBPyConnection) -> None:
    results = load(con, sample.summary.out)
    logs = [r for r in results if Path(r.path).parent.name == "logs"]
    assert len(logs) == len([p for p in sample.summary.files if p.parent.name == "logs"])
    assert all(r.rows_quarantined == 0 for r in logs)
    formats = Counter(r.format for r in logs)
    assert formats == {"tokenaudit": len(logs) - 2, "openai-logs": 1, "outcomes": 1}
    usage = [r for r in logs if r.format != "outcomes"]
    assert sum(r.rows_loaded for r in usage) == sample.summary.events_written
    billing = [r for r in results if Path(r.path).parent.name == "billing"]
    assert len(billing) + len(logs) == len(results) and len(billing) == 4
    assert all(r.rows_quarantined == 0 for r in billing)
    unpriced = con.execute(
        "SELECT DISTINCT model FROM usage_events WHERE cost_usd IS NULL"
    ).fetchall()
    assert {m for (m,) in unpriced} <= {FT_MODEL}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_kind_even_at_the_smallest_size(tmp_path: Path, seed: int) -> None:
    s = generate(tmp_path, events=1000, seed=seed, start=dt.date(2027, 2, 1), days=7)
    assert s.events_written == 1000
    assert all(s.drains[k] >= 1 for k in KINDS)
    rows, labels = _read(tmp_path)
    (d,) = [d for d in labels["drains"] if d["kind"] == "runaway_loop"]
    assert dt.date.fromisoformat(d["first_seen"][:10]).weekday() == 5
    assert min(r["ts"] for r in rows)[:10] >= "2027-02-01"


def test_bad_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="events"):
        generate(tmp_path, events=0)
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path, days=6)
