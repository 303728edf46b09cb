"""Write the drain detectors' fixtures: one native JSONL file per kind, and README.md.

Run from anywhere: ``python tests/data/drains/make_fixtures.py``. It is deterministic (fixed
seeds, fixed start), so a re-run writes the same bytes; commit what it writes.

Each file is a day's worth of ordinary traffic (``bg-*`` request ids) with the cases of one
detector mixed in: true positives (``tp-*``) the detector must report, and near misses
(``nm-*``) that look alike but break one of its rules and must not be reported. README.md
lists every case with its lines; tests/test_drains_detectors.py checks them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # a Monday morning
MIN, HOUR = 60.0, 3600.0


def hx(label: str) -> str:
    """A stable hex stand-in for a keyed prompt or prefix hash."""
    return hashlib.sha256(label.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ctx:
    """Where a call comes from: what the calls of a workflow step share."""

    provider: str
    model: str
    workflow: str
    agent: str
    version: str | None = None
    prefix: str | None = None  # hash of the system prompt + tools


@dataclass
class Case:
    role: str  # "true positive" or "near miss"
    prefix: str  # the request ids of the case start with this
    text: str


@dataclass
class Fixture:
    kind: str
    title: str
    seed: int
    background: str = ""
    cases: list[Case] = field(default_factory=list)
    rows: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def case(self, role: str, prefix: str, text: str) -> str:
        self.cases.append(Case(role, prefix, text))
        return prefix

    def call(
        self,
        at: float,
        request_id: str,
        *,
        ctx: Ctx,
        trace: str,
        input_tokens: int,
        output_tokens: int,
        session: str | None = None,
        cache_read: int = 0,
        cache_write: int = 0,
        attempt: int = 1,
        status: str = "ok",
        http_status: int = 200,
        outcome: str | None = None,
        prompt: str | None = None,
    ) -> None:
        ts = T0 + dt.timedelta(seconds=round(at, 3))
        row: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": request_id,
            "trace_id": trace,
            "session_id": session,
            "provider": ctx.provider,
            "model": ctx.model,
            "workflow": ctx.workflow,
            "agent": ctx.agent,
            "prompt_version": ctx.version,
            "input_tokens": input_tokens,
            "cache_read_tokens": cache_read,
            "cache_write_tokens": cache_write,
            "output_tokens": output_tokens,
            "attempt": attempt,
            "status": status,
            "http_status": http_status,
            "outcome": outcome,
            "prompt_hash": prompt,
            "prefix_hash": ctx.prefix,
        }
        # Like many loggers, leave out what is unknown and the cache counts that are 0.
        drop = {"cache_read_tokens", "cache_write_tokens"}
        kept = {k: v for k, v in row.items() if v is not None and not (k in drop and v == 0)}
        self.rows.append((at, len(self.rows), kept))

    def lines(self) -> list[dict[str, Any]]:
        return [r for _, _, r in sorted(self.rows, key=lambda r: (r[0], r[1]))]


# ---------------------------------------------------------------------------------- duplicate


def duplicate() -> Fixture:
    f = Fixture("duplicate_call", "duplicate_call: the same prompt again within 120 s", 11)
    f.background = (
        "ticket-summary (gpt-4o-mini, 90 calls) and sales-email (gpt-4o, 40 calls) from 08:00 "
        "to 12:00, every call a new prompt."
    )
    r = f.rng
    summ = Ctx(
        "openai", "gpt-4o-mini", "ticket-summary", "summarizer", "v3", hx("ticket-summary/v3")
    )
    mail = Ctx("openai", "gpt-4o", "sales-email", "writer", "v2", hx("sales-email/v2"))
    for i in range(90):
        at = i * 160 + r.uniform(0, 120)
        f.call(at, f"bg-sum-{i:03d}", trace=f"t-sum-{i:03d}", session=f"s-agent-{i % 7}",
               input_tokens=r.randint(650, 1000), output_tokens=r.randint(120, 260),
               prompt=hx(f"ticket {i}"), ctx=summ)  # fmt: skip
    for i in range(40):
        at = i * 360 + r.uniform(0, 300)
        f.call(at, f"bg-mail-{i:03d}", trace=f"t-mail-{i:03d}", session=f"s-rep-{i % 5}",
               input_tokens=r.randint(500, 900), output_tokens=r.randint(300, 600),
               prompt=hx(f"lead {i}"), ctx=mail)  # fmt: skip

    p = f.case("true positive", "tp-double-",
               "a double submit: the same ticket summarised twice 23 s apart, both uncached "
               "and successful (waste: the second call)")  # fmt: skip
    for k, at in enumerate((1800.0, 1823.0), 1):
        f.call(at, f"{p}{k}", trace=f"t-dbl-{k}", session="s-agent-3", input_tokens=912,
               output_tokens=171 + k * 9, prompt=hx("ticket dbl"), ctx=summ)  # fmt: skip

    p = f.case("true positive", "tp-chain-",
               "the same sales email generated three times, 90 s and 100 s apart: one chain "
               "of repeats (each within the window of the previous) although it spans 190 s "
               "(waste: the 2nd and 3rd calls)")  # fmt: skip
    for k, at in enumerate((5400.0, 5490.0, 5590.0), 1):
        f.call(at, f"{p}{k}", trace=f"t-chain-{k}", session="s-rep-2", input_tokens=744,
               output_tokens=400 + k * 21, prompt=hx("lead chain"), ctx=mail)  # fmt: skip

    p = f.case("true positive", "tp-recached-",
               "a dashboard re-summarising the same unchanged 1,500-token ticket: uncached at "
               "0 s, served from cache at 60 s (1,408 tokens read), uncached again at 130 s, "
               "70 s after the cached call: the third call is a duplicate, the cached one is "
               "not (waste: the third call)")  # fmt: skip
    for k, (at, read) in enumerate(((12000.0, 0), (12060.0, 1408), (12130.0, 0)), 1):
        f.call(at, f"{p}{k}", trace=f"t-recached-{k}", session="s-agent-5",
               input_tokens=1500 - read, cache_read=read, output_tokens=150 + 11 * k,
               prompt=hx("ticket recached"), ctx=summ)  # fmt: skip

    p = f.case("near miss", "nm-cached-",
               "the same long ticket twice 15 s apart, the second reading 1,792 of its 1,800 "
               "tokens from the provider's cache: not a duplicate")  # fmt: skip
    f.call(3000.0, f"{p}1", trace="t-cached-1", input_tokens=1800, output_tokens=210,
           prompt=hx("ticket cached"), ctx=summ)  # fmt: skip
    f.call(3015.0, f"{p}2", trace="t-cached-2", input_tokens=8, cache_read=1792,
           output_tokens=204, prompt=hx("ticket cached"), ctx=summ)  # fmt: skip

    p = f.case("near miss", "nm-late-",
               "the same ticket again 10 minutes later: outside the 120 s window (a finding "
               "with window_seconds = 900)")  # fmt: skip
    for k, at in enumerate((7200.0, 7800.0), 1):
        f.call(at, f"{p}{k}", trace=f"t-late-{k}", input_tokens=840, output_tokens=190 + k,
               prompt=hx("ticket late"), ctx=summ)  # fmt: skip

    p = f.case("near miss", "nm-retry-",
               "a call that failed (HTTP 500, no tokens) and its successful retry 2 s later "
               "with the same prompt: a retry, not a duplicate")  # fmt: skip
    f.call(9000.0, f"{p}1", trace="t-retry", input_tokens=0, output_tokens=0, status="error",
           http_status=500, prompt=hx("ticket retry"), ctx=summ)  # fmt: skip
    f.call(9002.0, f"{p}2", trace="t-retry", attempt=2, input_tokens=780, output_tokens=166,
           prompt=hx("ticket retry"), ctx=summ)  # fmt: skip

    p = f.case("near miss", "nm-model-",
               "the same prompt sent to gpt-4o-mini and, 25 s later, to gpt-4o (the fallback "
               "after a summary failed validation): another model, not a duplicate")  # fmt: skip
    f.call(10800.0, f"{p}1", trace="t-model", input_tokens=930, output_tokens=150,
           prompt=hx("ticket model"), ctx=summ)  # fmt: skip
    f.call(10825.0, f"{p}2", trace="t-model", input_tokens=930, output_tokens=188,
           prompt=hx("ticket model"), ctx=replace(summ, model="gpt-4o"))  # fmt: skip
    return f


# -------------------------------------------------------------------------------------- retry


def retry() -> Fixture:
    f = Fixture("retry_storm", "retry_storm: 3+ failures of a trace within 15 minutes", 12)
    f.background = (
        "rag-search (gpt-4o-mini: retriever then answerer, 150 traces of 1-3 calls) and "
        "ticket-summary (gpt-4o, 40 calls) from 08:00 to 11:00, no failures."
    )
    r = f.rng
    rag = Ctx("openai", "gpt-4o-mini", "rag-search", "retriever")
    answerer = replace(rag, agent="answerer")
    summ = Ctx("openai", "gpt-4o", "ticket-summary", "summarizer")
    research = Ctx("openai", "gpt-4o", "research-agent", "researcher")
    for i in range(150):
        at = i * 72 + r.uniform(0, 60)
        for k in range(r.randint(1, 3)):
            agent = "retriever" if k == 0 else "answerer"
            f.call(at + k * r.uniform(1, 4), f"bg-rag-{i:03d}-{k}", trace=f"t-rag-{i:03d}",
                   input_tokens=r.randint(400, 2500),
                   output_tokens=r.randint(60, 400), prompt=hx(f"rag {i} {k}"), ctx=replace(rag, agent=agent))  # fmt: skip
    for i in range(40):
        at = i * 270 + r.uniform(0, 200)
        f.call(at, f"bg-sum-{i:03d}", trace=f"t-sum-{i:03d}", input_tokens=r.randint(900, 3000),
               output_tokens=r.randint(150, 300), prompt=hx(f"ticket {i}"), ctx=summ)  # fmt: skip

    p = f.case("true positive", "tp-storm-",
               "8 rate-limited attempts (HTTP 429, no tokens) backing off 0.5-32 s, then a "
               "success: a storm whose waste is $0 (its cost is rate limits and latency)")  # fmt: skip
    at = 2000.0
    for k in range(1, 10):
        fail = k < 9
        f.call(at, f"{p}{k:02d}", trace="t-storm", attempt=k,
               status="error" if fail else "ok", http_status=429 if fail else 200,
               input_tokens=0 if fail else 1900, output_tokens=0 if fail else 320,
               prompt=hx("rag storm"), ctx=answerer)  # fmt: skip
        at += 0.5 * 2 ** (k - 1)

    p = f.case("true positive", "tp-broken-",
               "5 attempts whose stream broke mid-answer (HTTP 500, input and partial output "
               "billed), 2-16 s apart, never recovered (waste: the cost of all 5)")  # fmt: skip
    at = 6000.0
    for k in range(1, 6):
        f.call(at, f"{p}{k}", trace="t-broken", attempt=k, status="error", http_status=500,
               input_tokens=5200, output_tokens=40 * k + 17, prompt=hx("ticket broken"),
               ctx=summ)  # fmt: skip
        at += 2**k

    p = f.case("true positive", "tp-burst-",
               "a 30-minute research trace (gpt-4o, a step every 150 s) whose third step fails "
               "4 times in 14 s (HTTP 503) before it succeeds, and whose tenth step fails once "
               "more, 17 minutes later, and is retried: the burst is a storm (waste $0, no "
               "tokens); the lone failure is not part of it")  # fmt: skip
    at = 1000.0
    for k in range(1, 13):
        step = f"{p}{k:02d}"
        tries = 5 if k == 3 else 2 if k == 10 else 1
        for n in range(tries):
            fail = n < tries - 1
            f.call(at + (0, 2, 6, 14, 30)[n], step + ("abcde"[n] if tries > 1 else ""),
                   trace="t-burst", attempt=n + 1, status="error" if fail else "ok",
                   http_status=(503 if k == 3 else 500) if fail else 200,
                   input_tokens=0 if fail else 2200 + 120 * k, output_tokens=0 if fail else 280,
                   prompt=hx(f"burst {k}"), ctx=research)  # fmt: skip
        at += 150

    p = f.case("near miss", "nm-once-",
               "one 429, then success 1.5 s later: normal retrying")  # fmt: skip
    f.call(3600.0, f"{p}1", trace="t-once", status="error", http_status=429,
           input_tokens=0, output_tokens=0, prompt=hx("rag once"), ctx=answerer)  # fmt: skip
    f.call(3601.5, f"{p}2", trace="t-once", attempt=2, input_tokens=1450,
           output_tokens=210, prompt=hx("rag once"), ctx=answerer)  # fmt: skip

    p = f.case("near miss", "nm-twice-",
               "two 503s, then success: fewer than 3 failures (a finding with "
               "min_failures = 2)")  # fmt: skip
    for k, (at, ok) in enumerate(((4500.0, False), (4502.0, False), (4506.0, True)), 1):
        f.call(at, f"{p}{k}", trace="t-twice", attempt=k,
               status="ok" if ok else "error", http_status=200 if ok else 503,
               input_tokens=1200 if ok else 0, output_tokens=250 if ok else 0,
               prompt=hx("rag twice"), ctx=answerer)  # fmt: skip

    p = f.case("near miss", "nm-spread-",
               "a 40-minute research trace (gpt-4o, a step every 150 s) with three isolated "
               "503s, each retried once: the failures span 25 minutes, beyond the 15-minute "
               "window (a finding with window_seconds = 1800)")  # fmt: skip
    at = 7200.0
    for k in range(1, 17):
        step = f"{p}{k:02d}"
        if k in (2, 7, 12):
            f.call(at, f"{step}a", trace="t-spread", status="error", http_status=503,
                   input_tokens=0, output_tokens=0, prompt=hx(f"research {k}"),
                   ctx=research)  # fmt: skip
            at += 3
            f.call(at, f"{step}b", trace="t-spread", attempt=2, input_tokens=2000 + 150 * k,
                   output_tokens=300, prompt=hx(f"research {k}"), ctx=research)  # fmt: skip
        else:
            f.call(at, step, trace="t-spread", input_tokens=2000 + 150 * k, output_tokens=300,
                   prompt=hx(f"research {k}"), ctx=research)  # fmt: skip
        at += 150
    return f


# -------------------------------------------------------------------------------------- bloat


def bloat() -> Fixture:
    f = Fixture("context_bloat", "context_bloat: sessions that never trim, oversized calls", 13)
    r = f.rng
    chat = Ctx("anthropic", "claude-haiku-4-5", "support-chat", "assistant", "v4")
    qa = Ctx("openai", "gpt-4o-mini", "doc-qa", "answerer", "v1")
    f.background = (
        "support-chat (claude-haiku-4-5, uncached): 45 sessions of 2-5 turns whose input "
        "grows by 250-600 tokens a turn; doc-qa (gpt-4o-mini): 50 single calls of 2,600-3,400 "
        "input tokens; 08:00 to 16:00."
    )

    def session(name: str, start: float, inputs: list[int], prefix: str = "bg-") -> None:
        at = start
        for k, tokens in enumerate(inputs, 1):
            f.call(at, f"{prefix}{name}-{k:02d}", trace=f"t-{name}-{k:02d}", session=f"s-{name}",
                   input_tokens=tokens, output_tokens=r.randint(150, 400),
                   prompt=hx(f"{name} {k}"), ctx=chat)  # fmt: skip
            at += r.uniform(40, 120)

    for i in range(45):
        tokens = [r.randint(1200, 2200)]
        for _ in range(r.randint(1, 4)):
            tokens.append(tokens[-1] + r.randint(250, 600))
        session(f"chat{i:02d}", i * 600 + r.uniform(0, 400), tokens)

    grows = [round(1800 * 1.15**k) for k in range(14)]
    f.case("true positive", "tp-session-",
           f"a 14-turn chat whose input grows 15 % a turn, 1,800 to {grows[-1]:,} tokens "
           f"({grows[-1] / grows[0]:.1f}x): the history is re-sent and never trimmed (waste: "
           "each turn's input beyond the first turn's)")  # fmt: skip
    session("session", 3 * HOUR, grows, "tp-")
    f.case("near miss", "nm-flat-",
           "a 14-turn chat that keeps a sliding window of history: 1,750-2,250 tokens a turn, "
           "never growing")  # fmt: skip
    session("flat", 4 * HOUR, [r.randint(1750, 2250) for _ in range(14)], "nm-")
    f.case("near miss", "nm-growing-",
           "a 10-turn chat growing 12.5 % a turn to 2.9x its first turn: below the 4x growth "
           "(a finding with growth = 2.5)")  # fmt: skip
    session("growing", 5 * HOUR, [round(1600 * 1.125**k) for k in range(10)], "nm-")

    sizes = [r.randint(2600, 3400) for _ in range(50)]
    # The median (lower middle) over these and the two big calls, both above all of them.
    median = sorted(sizes)[math.ceil((len(sizes) + 2) / 2) - 1]
    for i, size in enumerate(sizes):
        f.call(i * 560 + r.uniform(0, 400), f"bg-qa-{i:02d}", trace=f"t-qa-{i:02d}",
               input_tokens=size, output_tokens=r.randint(200, 400),
               prompt=hx(f"qa {i}"), ctx=qa)  # fmt: skip
    p = f.case("true positive", "tp-request-",
               f"one doc-qa call with 8x the answerer's median input ({8 * median:,} vs "
               f"{median:,}: a whole manual pasted in; waste: the input beyond the median)")  # fmt: skip
    f.call(2.5 * HOUR, f"{p}1", trace="t-qa-big", input_tokens=8 * median, output_tokens=380,
           prompt=hx("qa big"), ctx=qa)  # fmt: skip
    p = f.case("near miss", "nm-3x-",
               f"a doc-qa call with 3x the median input ({3 * median:,}): below the 5x factor "
               "(a finding with factor = 3)")  # fmt: skip
    f.call(6.5 * HOUR, f"{p}1", trace="t-qa-3x", input_tokens=3 * median, output_tokens=350,
           prompt=hx("qa 3x"), ctx=qa)  # fmt: skip
    return f


# ------------------------------------------------------------------------------------ runaway


def runaway() -> Fixture:
    f = Fixture("runaway_loop", "runaway_loop: a trace with far more calls than normal", 14)
    r = f.rng
    agent = Ctx("anthropic", "claude-sonnet-4-5", "code-review", "reviewer")
    f.background = (
        "code-review (claude-sonnet-4-5): 210 agent runs (traces) of 2-12 calls, six of them "
        "12 calls, 5-20 s apart, from 08:00 to 18:30; the 99th percentile of trace sizes, "
        "counting the two long traces below, is 12 calls."
    )
    sizes = [12] * 6 + [r.choice((2, 2, 3, 3, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11)) for _ in range(204)]
    r.shuffle(sizes)

    def run(name: str, start: float, calls: int, prefix: str, gap: tuple[float, float]) -> None:
        at = start
        for k in range(1, calls + 1):
            f.call(at, f"{prefix}{name}-{k:03d}", trace=f"t-{name}",
                   input_tokens=r.randint(2000, 4000), output_tokens=r.randint(100, 500),
                   prompt=hx(f"{name} {k}"), ctx=agent)  # fmt: skip
            at += r.uniform(*gap)

    for i, n in enumerate(sizes):
        run(f"pr{i:03d}", i * 180 + r.uniform(0, 120), n, "bg-", (5, 20))
    f.case("true positive", "tp-loop-",
           "one review agent stuck in a tool loop: 300 calls in about 30 minutes (waste: the "
           "calls after the 12th, the normal trace's size)")  # fmt: skip
    run("loop", 2 * HOUR, 300, "tp-", (4, 8))
    f.case("near miss", "nm-long-",
           "a big pull request: a 40-call run, over 3x the p99 but not over the 50-call floor "
           "(a finding with min_calls = 30)")  # fmt: skip
    run("long", 6 * HOUR, 40, "nm-", (5, 20))
    return f


# -------------------------------------------------------------------------------------- cache


def cache() -> Fixture:
    f = Fixture("cache_miss", "cache_miss: a long prefix re-sent uncached within 5 minutes", 15)
    r = f.rng
    base = Ctx("anthropic", "claude-sonnet-4-5", "contract-review", "", "v5")
    f.background = (
        "contract-review / extractor (claude-sonnet-4-5, prefix of 2,400 tokens with "
        "cache_control): 120 calls 20 s to 15 min apart; a call within 5 minutes of the last "
        "one reads the prefix from the cache, a later one writes it again; 08:00 to 14:00."
    )

    def calls(name: str, prefix: str, agent: str, times: list[float], prefix_tokens: int,
              cached: bool, **where: str) -> None:  # fmt: skip
        ctx = replace(base, agent=agent, prefix=hx(prefix), **where)
        last: float | None = None
        for k, at in enumerate(times, 1):
            body = r.randint(80, 600)
            hit = cached and last is not None and at - last < 300
            write = cached and not hit
            f.call(at, f"{name}-{k:03d}", ctx=ctx, trace=f"t-{name}-{k:03d}",
                   input_tokens=body + (0 if cached else prefix_tokens),
                   cache_read=prefix_tokens if hit else 0,
                   cache_write=prefix_tokens if write else 0,
                   output_tokens=r.randint(200, 700), prompt=hx(f"{name} {k}"))  # fmt: skip
            last = at

    at, times = 0.0, list[float]()
    while len(times) < 120:
        times.append(at)
        gap = r.choice((r.uniform(20, 280), r.uniform(20, 280), r.uniform(320, 900)))
        at += gap
    calls("bg-extract", "extractor/v5", "extractor", times, 2400, cached=True)

    f.case("true positive", "tp-uncached-",
           "a new summarizer prompt deployed without cache_control: a 2,000-token prefix sent "
           "11 times 60 s apart, never cached: 10 misses (the first call has nothing to read; "
           "waste: the prefix at the input price less the cache-read price, 10 times)")  # fmt: skip
    calls("tp-uncached", "summarizer/v5", "summarizer",
          [1 * HOUR + 60 * k for k in range(11)], 2000, cached=False)  # fmt: skip
    f.case("near miss", "nm-sparse-",
           "the same, 10 minutes apart: the cache would have expired (a finding with "
           "ttl_seconds = 900)")  # fmt: skip
    calls("nm-sparse", "classifier/v5", "classifier",
          [2 * HOUR + 600 * k for k in range(11)], 2000, cached=False)  # fmt: skip
    f.case("near miss", "nm-cached-",
           "a 2,000-token prefix sent 11 times 60 s apart with cache_control: written once, "
           "read 10 times")  # fmt: skip
    calls("nm-cached", "redliner/v5", "redliner",
          [1.5 * HOUR + 60 * k for k in range(11)], 2000, cached=True)  # fmt: skip
    f.case("near miss", "nm-short-",
           "a 700-token prefix (the router's) sent uncached 11 times 60 s apart: below the "
           "providers' 1,024-token minimum")  # fmt: skip
    calls("nm-short", "router/v5", "router",
          [3 * HOUR + 60 * k for k in range(11)], 700, cached=False)  # fmt: skip
    f.case("near miss", "nm-few-",
           "a 2,000-token prefix sent uncached 5 times 60 s apart: 4 misses, fewer than 5 "
           "(a finding with min_misses = 4)")  # fmt: skip
    calls("nm-few", "dater/v5", "dater",
          [4 * HOUR + 60 * k for k in range(5)], 2000, cached=False)  # fmt: skip
    f.case("near miss", "nm-mistral-",
           "a 2,000-token prefix sent 11 times 60 s apart to mistral-large-latest: Mistral "
           "offers no prompt caching")  # fmt: skip
    calls("nm-mistral", "translator/v5", "translator",
          [4.5 * HOUR + 60 * k for k in range(11)], 2000, cached=False,
          provider="mistral", model="mistral-large-latest")  # fmt: skip
    return f


# ----------------------------------------------------------------------------------- overkill


def _outcomes(r: random.Random, n: int, bad: int, unreviewed: int) -> list[str | None]:
    """``n`` outcomes of which ``bad`` rejected or escalated (a third escalated), and
    ``unreviewed`` traces without one, shuffled."""
    out: list[str | None] = [None] * unreviewed
    out += ["accepted"] * (n - bad) + ["rejected"] * (bad - bad // 3) + ["escalated"] * (bad // 3)
    r.shuffle(out)
    return out


@dataclass
class Arm:
    """A share of a workflow's traces: one model and prompt version, with their outcomes."""

    name: str  # request and trace ids start with it
    model: str
    version: str
    outcomes: int
    bad: int
    unreviewed: int = 3


def _provider(model: str) -> str:
    return "anthropic" if model.startswith("claude") else "openai"


def traffic(f: Fixture, workflow: str, agent: str, arms: list[Arm], early_marks: bool) -> None:
    """The workflow's traces over the day, the arms' traces mixed at random (an A/B split).

    A trace is 1-3 calls, the last carrying the outcome. With ``early_marks``, a third of
    the multi-call traces also carry an automatic check's mark on their first call (the
    opposite verdict), which the reviewer's mark on the last call overrides.
    """
    r = f.rng
    traces = [
        (arm, i, o)
        for arm in arms
        for i, o in enumerate(_outcomes(r, arm.outcomes, arm.bad, arm.unreviewed))
    ]
    r.shuffle(traces)
    at = r.uniform(0, 60)
    span = 9 * HOUR / len(traces)
    for arm, i, outcome in traces:
        at += r.uniform(0.3, 1.7) * span
        steps = r.randint(1, 3)
        early = None
        if early_marks and steps > 1 and outcome is not None and r.random() < 0.33:
            early = "accepted" if outcome != "accepted" else "escalated"
        t = at
        ctx = Ctx(_provider(arm.model), arm.model, workflow, agent, arm.version)
        for k in range(steps):
            mark = outcome if k == steps - 1 else early if k == 0 else None
            f.call(t, f"{arm.name}-{i:03d}-{k}", ctx=ctx, trace=f"t-{arm.name}-{i:03d}",
                   input_tokens=r.randint(1200, 4000),
                   output_tokens=r.randint(100, 600), outcome=mark,
                   prompt=hx(f"{arm.name} {i} {k}"))  # fmt: skip
            t += r.uniform(3, 20)


def overkill() -> Fixture:
    f = Fixture("model_overkill", "model_overkill: gpt-4o where gpt-4o-mini does as well", 16)
    f.background = (
        "four workflows whose traces (1-3 calls, the outcome on the last, 3 traces per arm "
        "without one) are split at random between gpt-4o and gpt-4o-mini, 08:00 to 17:00; "
        "the invoice-extract gpt-4o-mini arm (`bg-invoice-mini-*`) is the true positive's "
        "comparison."
    )
    f.case("true positive", "tp-invoice-4o-",
           "invoice-extract / extractor on gpt-4o: 45 reviewed traces, 38 accepted (84 %), "
           "while its gpt-4o-mini arm has 48, 40 accepted (83 %) (waste: the gpt-4o calls' "
           "cost less the same tokens at gpt-4o-mini's price)")  # fmt: skip
    traffic(f, "invoice-extract", "extractor",
            [Arm("tp-invoice-4o", "gpt-4o", "v2", 45, 7),
             Arm("bg-invoice-mini", "gpt-4o-mini", "v2", 48, 8)], False)  # fmt: skip
    f.case("near miss", "nm-better-",
           "code-review / reviewer: gpt-4o accepted 36 of 40 (90 %), gpt-4o-mini 24 of 40 "
           "(60 %): the expensive model is clearly better")  # fmt: skip
    traffic(f, "code-review", "reviewer",
            [Arm("nm-better-4o", "gpt-4o", "v1", 40, 4),
             Arm("nm-better-mini", "gpt-4o-mini", "v1", 40, 16)], False)  # fmt: skip
    f.case("near miss", "nm-margin-",
           "faq-answer / answerer: gpt-4o 34 of 40 (85 %), gpt-4o-mini 31 of 40 (77.5 %): "
           "7.5 points better, beyond the 5-point margin though not significantly (a finding "
           "with margin = 0.1)")  # fmt: skip
    traffic(f, "faq-answer", "answerer",
            [Arm("nm-margin-4o", "gpt-4o", "v3", 40, 6),
             Arm("nm-margin-mini", "gpt-4o-mini", "v3", 40, 9)], False)  # fmt: skip
    f.case("near miss", "nm-few-",
           "email-draft / writer: gpt-4o has only 12 reviewed traces (10 accepted) against "
           "gpt-4o-mini's 50 (41): too few outcomes to judge (a finding with "
           "min_outcomes = 10)")  # fmt: skip
    traffic(f, "email-draft", "writer",
            [Arm("nm-few-4o", "gpt-4o", "v1", 12, 2),
             Arm("nm-few-mini", "gpt-4o-mini", "v1", 50, 9)], False)  # fmt: skip
    return f


# ----------------------------------------------------------------------------------- rejected


def rejected() -> Fixture:
    f = Fixture("rejected_work", "rejected_work: a prompt version whose work is rejected", 17)
    f.background = (
        "four workflows whose traces (1-3 calls, the outcome on the last, 3 traces per arm "
        "without one) are split at random between prompt versions (A/B tests), 08:00 to "
        "17:00; a third of the multi-call traces are first marked the other way by an "
        "automatic check on their first call, which the reviewer's mark on the last call "
        "overrides. Normal arms: refund-agent v5 (`bg-refund-v5-*`: 9 of 60 outcomes "
        "rejected or escalated, 15 %), kb-answer v1 (`bg-kb-v1-*`: 6 of 60, 10 %), intake-bot "
        "v1 (`bg-intake-v1-*`: 4 of 40, 10 %)."
    )
    sonnet = "claude-sonnet-4-5"
    f.case("true positive", "tp-refund-v7-",
           "refund-agent prompt v7: 21 of 30 outcomes rejected or escalated (70 %) where v5 "
           "has 15 % (waste: every call of its rejected or escalated traces)")  # fmt: skip
    traffic(f, "refund-agent", "resolver",
            [Arm("bg-refund-v5", sonnet, "v5", 60, 9),
             Arm("tp-refund-v7", sonnet, "v7", 30, 21)], True)  # fmt: skip
    f.case("near miss", "nm-kb-v2-",
           "kb-answer prompt v2: 9 of 30 bad (30 %), three times v1's 10 % but under half "
           "(a finding with share = 0.25)")  # fmt: skip
    traffic(f, "kb-answer", "answerer",
            [Arm("bg-kb-v1", "gpt-4o-mini", "v1", 60, 6),
             Arm("nm-kb-v2", "gpt-4o-mini", "v2", 30, 9)], True)  # fmt: skip
    f.case("near miss", "nm-legal-",
           "legal-review, a hard workflow where about half of everything is bad: v1 22 of "
           "40 (55 %), v2 20 of 40 (50 %), each half on gpt-4o and half on claude-sonnet-4-5: "
           "bad, but not far above its workflow (a finding with over_baseline = 1)")  # fmt: skip
    traffic(f, "legal-review", "reviewer",
            [Arm("nm-legal-v1-4o", "gpt-4o", "v1", 20, 11),
             Arm("nm-legal-v1-sonnet", sonnet, "v1", 20, 11),
             Arm("nm-legal-v2-4o", "gpt-4o", "v2", 20, 10),
             Arm("nm-legal-v2-sonnet", sonnet, "v2", 20, 10)], True)  # fmt: skip
    f.case("near miss", "nm-intake-v2-",
           "intake-bot prompt v2: 8 of 10 bad (80 %) but only 10 outcomes, under 20 (a "
           "finding with min_outcomes = 10)")  # fmt: skip
    traffic(f, "intake-bot", "triager",
            [Arm("bg-intake-v1", "gpt-4o-mini", "v1", 40, 4),
             Arm("nm-intake-v2", "gpt-4o-mini", "v2", 10, 8)], True)  # fmt: skip
    return f


# ------------------------------------------------------------------------------------- output

FILES = {
    "duplicate": duplicate,
    "retry": retry,
    "bloat": bloat,
    "runaway": runaway,
    "cache": cache,
    "overkill": overkill,
    "rejected": rejected,
}

README_HEAD = """\
# Drain detector fixtures

One native JSONL file (DESIGN.md section 3) per drain kind, written by
`make_fixtures.py` (deterministic: edit it, re-run `python tests/data/drains/make_fixtures.py`,
commit both). `tests/test_drains_detectors.py` loads each file alone and runs its detector.

Each file is ordinary traffic with the detector's cases mixed in, in time order. The request
ids say what a call is:

- `tp-*`: a true positive: the detector must report these calls;
- `nm-*`: a near miss: looks like the drain but breaks one of its rules (the default
  thresholds in `src/tokenaudit/drains/base.py`); the detector must not report it;
- `bg-*`: background traffic, the volume the detector's statistics need (medians, the 99th
  percentile of trace sizes, acceptance rates); nothing in it is a drain.

Line numbers count from 1. Times are UTC on 2026-03-02. Cache token counts are left out
where they are 0 (the native format reads a missing count as 0).
"""


def _ranges(lines: list[int]) -> str:
    spans: list[list[int]] = []
    for n in lines:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    if len(spans) > 4:
        return f"{len(lines)} lines from {lines[0]} to {lines[-1]}"
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def readme(fixtures: dict[str, Fixture]) -> str:
    out = [README_HEAD]
    for name, f in fixtures.items():
        rows = f.lines()
        out.append(f"\n## `{name}.jsonl`: {f.title}\n\n{len(rows)} calls. Background: "
                   f"{f.background}\n\n| case | request ids | lines | what |\n|---|---|---|---|")  # fmt: skip
        for c in f.cases:
            lines = [i for i, row in enumerate(rows, 1) if row["request_id"].startswith(c.prefix)]
            out.append(f"| {c.role} | `{c.prefix}*` | {_ranges(lines)} | {c.text} |")
    return "\n".join(out) + "\n"


def main() -> None:
    fixtures = {name: make() for name, make in FILES.items()}
    for name, f in fixtures.items():
        text = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in f.lines())
        (HERE / f"{name}.jsonl").write_text(text)
    (HERE / "README.md").write_text(readme(fixtures))


if __name__ == "__main__":
    main()
