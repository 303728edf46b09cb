"""A realistic synthetic dataset with known waste: what ``tokenaudit sample`` writes.

The world: four tenants use seven workflows of five teams over ``days`` days (default 30
from 2026-10-01), with weekly and daily seasonality, ~25 % growth and 4 % staging sessions,
logged by five apps as native JSONL (``logs/<app>.jsonl.gz``) but for the calls the support
gateway records with their prompt text (``RECORDED``; :mod:`tokenaudit.sample_exchanges`
writes them, with token drifts injected in the logged text). A session (one user) has 1-6
traces (agents: 1-2) of 1-2 calls (agents code-review and agent-research: 2-8). Each
(workflow, prompt version, agent) has one system prompt + tools prefix (``prefix_hash``);
every call has a new ``prompt_hash``. Prompt sizes are the prefix plus a body within 0.5-2x
its median, outputs 0.25-3x theirs, o3-mini reasoning 50-80 % of its output. Prefixes of >=
1024 tokens are cached (simulated in time order per model and prefix): a successful call
within the TTL (5 min; 1 h for code-review) of the last successful call with its prefix
reads it (OpenAI: in 128-token steps); a colder one misses, and on Anthropic writes it
(``cache_write_tokens``, or ``cache_write_1h_tokens`` for the 1-hour TTL). Workflows whose
prefix is shorter keep every prompt under 1024 tokens. A normal step fails (429/500/503/529,
no tokens) with probability 1.2-1.8 % and is retried once, successfully, 0.5-4 s later with
the same prompt_hash. The last call of a trace carries the trace's outcome, drawn from the
workflow's rates (60-82 % accepted; none for 4-15 % of traces).

Injected drains, each listed in ``ground-truth.labels.json`` with ``unit`` (what a finding
is: the listed requests, a trace, a session, a prefix or a group) and every call's id:
- duplicate_call (request): sales-email v3 / rag-search query-rewriter prompts sent 2-3
  times within 50 s, all successful and uncached (prompts under 1024 tokens).
- retry_storm (trace): one rag-search / ticket-summary call tried 6-20 times with backoff in
  a few minutes; every attempt fails but the last, which succeeds 75 % of the time.
- context_bloat: rag-search sessions (session) of 8-14 turns whose input grows >= 10 % a
  turn to 6-10x the first; single ticket-summary / rag-search calls (request, one label per
  workflow) with 5-15x the workflow's median input, 2.5x above any normal call there.
- runaway_loop (trace): one code-review agent loop of 400 calls on a Saturday.
- cache_miss (prefix): a code-review / ticket-summary deploy without cache_control whose
  10-30 calls with one new long prefix come 20-150 s apart, none cached.
- model_overkill (group): 25 % of invoice-extract traces go to gpt-4o (not gpt-4o-mini), 15 %
  of ticket-summary traces to claude-opus-4-1 (not claude-haiku-4-5), same outcome rates.
- rejected_work (group): sales-email prompt version v4, an A/B arm from 30 % of the range
  on, with about 70 % of its outcomes rejected or escalated (normal groups: under 25 %).
Normal traffic never: repeats a prompt_hash (but in the retry of a failed call), fails twice
in a row, has over 16 calls in a trace, sends a >= 1024-token prompt uncached within 5 min
of a successful call with the same model and prefix, or varies its input more than 4x within
a workflow agent. No request is in two kinds. The fine-tuned ``FT_MODEL`` (ticket-classify)
is priced at its fine-tuned rate, never at its base model's.

Billing: ``billing/`` holds the providers' billing exports for the same days, as their
admin APIs return them (:mod:`tokenaudit.sample_billing`): equal to the logged calls at the
catalogue's prices, but for unlogged traffic on a few days and a negotiated discount on one
Anthropic model, listed under ``billing`` in the labels file.

Counts: normal traffic fills ``events`` minus the injected calls (the two group kinds are
normal traffic), so exactly ``events`` lines are written when that leaves at least 500
normal calls (from about 1,000 events); otherwise the injected calls plus 500. Drain counts
scale with ``events / 20000``, except the runaway loop. Same (events, seed, start, days),
same bytes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from random import Random

DEFAULT_START = dt.date(2026, 10, 1)
LABELS_NAME = "ground-truth.labels.json"
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::sup42"
# Workflows the support gateway logs as recorded exchanges (sample_exchanges), each from
# this share of the range on (whole days): the HTTP timestamps of those calls are seconds.
RECORDED = {"ticket-classify": 0.0, "ticket-summary": 0.8}
MIN_NORMAL = 500
MIN_CACHEABLE = 1024
DAY_MS = 86_400_000
_M64 = (1 << 64) - 1
OUTCOMES: tuple[str | None, ...] = ("accepted", "edited", "rejected", "escalated", None)
REJECTED_RATES = (0.12, 0.10, 0.62, 0.08, 0.08)
# name, weight, first user number, users
TENANTS = (
    ("acme", 0.4, 1, 40),
    ("globex", 0.3, 41, 25),
    ("initech", 0.2, 66, 15),
    ("umbrella", 0.1, 81, 10),
)
FAILURES = {
    "openai": (
        (429, "rate_limit_exceeded", 0.6),
        (500, "server_error", 0.3),
        (503, "service_unavailable", 0.1),
    ),
    "anthropic": (
        (429, "rate_limit_error", 0.45),
        (529, "overloaded_error", 0.35),
        (500, "api_error", 0.2),
    ),
}
FAIL_RATE = {"openai": 0.012, "anthropic": 0.018}
# model -> (base latency ms, ms per output token)
LATENCY = {
    "gpt-4o-mini": (300, 12),
    "gpt-4o": (400, 18),
    "gpt-4.1-mini": (350, 10),
    "o3-mini": (800, 8),
    "claude-haiku-4-5": (350, 9),
    "claude-sonnet-4-5": (700, 25),
    "claude-opus-4-1": (1200, 40),
    FT_MODEL: (250, 12),
}
_BUSINESS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 11, 13, 14, 14, 13, 11, 8, 6, 4, 3, 2)
_FLAT = (4, 4, 3, 3, 3, 4, 5, 6, 8, 9, 10, 10, 10, 10, 10, 10, 9, 8, 7, 6, 6, 5, 5)


@dataclass(frozen=True)
class Agent:
    name: str
    model: str
    prefix: int  # tokens of system prompt + tools
    body: int  # median tokens of the rest of the prompt
    out: int  # median output tokens
    reasoning: float = 0.0  # mean share of output that is reasoning


@dataclass(frozen=True)
class Workflow:
    name: str
    team: str
    project: str
    provider: str
    share: float  # of normal calls
    weekend: float  # weekend traffic relative to a weekday
    ttl_s: int  # prompt-cache lifetime
    agents: tuple[Agent, ...]  # simple: (optional first,) main; agentic: lead, worker, last
    versions: tuple[tuple[str, float, float, float], ...]  # name, from, to (range share), weight
    outcomes: tuple[float, float, float, float, float]  # weights of OUTCOMES
    agentic: bool = False
    second: float = 0.0  # simple: probability of the optional call
    alt: tuple[str, float] | None = None  # model_overkill: expensive model, share of traces
    bad_version: str | None = None  # rejected_work: this version gets REJECTED_RATES


_A = Agent
WORKFLOWS = (
    Workflow(
        "ticket-summary",
        "support",
        "support-bot",
        "anthropic",
        0.22,
        0.55,
        300,
        (_A("summarizer", "claude-haiku-4-5", 4096, 2500, 220),),
        (("v2", 0, 0.4, 1), ("v3", 0.4, 1, 1)),
        (0.70, 0.12, 0.06, 0.04, 0.08),
        second=0.2,
        alt=("claude-opus-4-1", 0.15),
    ),
    Workflow(
        "ticket-classify",
        "support",
        "support-bot",
        "openai",
        0.08,
        0.55,
        300,
        (_A("classifier", FT_MODEL, 512, 220, 12),),
        (("v1", 0, 1, 1),),
        (0.82, 0.05, 0.05, 0.0, 0.08),
    ),
    Workflow(
        "rag-search",
        "search",
        "search-api",
        "openai",
        0.24,
        0.6,
        300,
        (
            _A("query-rewriter", "gpt-4.1-mini", 384, 250, 40),
            _A("answerer", "gpt-4.1-mini", 1536, 5500, 420),
        ),
        (("v5", 0, 0.6, 1), ("v6", 0.6, 1, 1)),
        (0.62, 0.08, 0.12, 0.03, 0.15),
        second=0.4,
    ),
    Workflow(
        "invoice-extract",
        "finance",
        "finance-ops",
        "openai",
        0.10,
        0.15,
        300,
        (_A("extractor", "gpt-4o-mini", 1280, 3200, 520),),
        (("v2", 0, 1, 1),),
        (0.78, 0.10, 0.06, 0.02, 0.04),
        second=0.3,
        alt=("gpt-4o", 0.25),
    ),
    Workflow(
        "sales-email",
        "sales",
        "sales-assist",
        "openai",
        0.10,
        0.2,
        300,
        (_A("writer", "gpt-4o-mini", 384, 280, 320),),
        (("v3", 0, 1, 0.65), ("v4", 0.3, 1, 0.35)),
        (0.64, 0.20, 0.10, 0.0, 0.06),
        second=0.25,
        bad_version="v4",
    ),
    Workflow(
        "code-review",
        "platform",
        "platform-agents",
        "anthropic",
        0.14,
        0.3,
        3600,
        (
            _A("triager", "claude-sonnet-4-5", 5120, 2500, 300),
            _A("reviewer", "claude-sonnet-4-5", 5120, 6000, 900),
            _A("fixer", "claude-sonnet-4-5", 5120, 7000, 1400),
        ),
        (("v1", 0, 0.5, 1), ("v2", 0.5, 1, 1)),
        (0.66, 0.14, 0.10, 0.02, 0.08),
        agentic=True,
    ),
    Workflow(
        "agent-research",
        "search",
        "platform-agents",
        "openai",
        0.12,
        0.45,
        300,
        (
            _A("planner", "o3-mini", 1280, 1500, 900, 0.65),
            _A("researcher", "gpt-4.1-mini", 2304, 5000, 500),
            _A("writer", "gpt-4.1-mini", 1792, 4000, 1500),
        ),
        (("v1", 0, 1, 1),),
        (0.60, 0.15, 0.12, 0.05, 0.08),
        agentic=True,
    ),
)
WF = {w.name: w for w in WORKFLOWS}


@dataclass(slots=True)
class Ctx:  # what the calls of one trace share
    wf: Workflow
    version: str
    session: str
    trace: str
    root: str | None
    tenant: str
    user: str
    env: str
    model: str | None = None  # overrides the main agent's model


@dataclass(slots=True)
class Call:
    ts: int  # ms since the start of the range
    request_id: str
    span_id: str
    ctx: Ctx  # trace, session, user, workflow, version
    agent: Agent
    model: str
    prompt: int  # whole prompt, before the cache split
    output: int
    reasoning: int
    attempt: int
    http_status: int
    error_type: str | None
    latency: int
    prompt_hash: str
    prefix_hash: str
    outcome: str | None = None
    nocache: bool = False
    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0


@dataclass(frozen=True)
class SampleSummary:
    out: Path
    files: tuple[Path, ...]
    events_written: int  # lines over all log files
    normal_events: int
    injected_events: int
    drains: dict[str, int]  # kind -> findings injected
    first_day: dt.date
    last_day: dt.date


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class World:
    """Random state, ids and the call/trace/session builders shared with sample_drains."""

    def __init__(self, seed: int, start: dt.date, days: int) -> None:
        self.rng = Random(seed)
        self.seed, self.start, self.days = seed, start, days
        self.end_ms = days * DAY_MS
        self.calls: list[Call] = []
        kinds = ("session", "trace", "trace2", "span", "request", "prompt")
        self._counters = dict.fromkeys(kinds, 0)
        self._salts = {
            k: int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest())
            for k in kinds
        }
        self._prefixes: dict[str, str] = {}
        self._days = [(start + dt.timedelta(d)).isoformat() + "T" for d in range(days + 2)]

    def uid(self, kind: str) -> str:
        """A unique 16-hex id per kind: a bijective mix (splitmix64) of a counter."""
        n = self._counters[kind] = self._counters[kind] + 1
        z = (n + self._salts[kind]) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return f"{z ^ (z >> 31):016x}"

    def prefix_hash(self, wf: Workflow, version: str, agent: Agent) -> str:
        key = f"{self.seed}|{wf.name}|{version}|{agent.name}"
        if key not in self._prefixes:
            self._prefixes[key] = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
        return self._prefixes[key]

    def recorded(self, c: Call) -> bool:
        """Whether ``c`` is logged as a recorded exchange rather than a native line."""
        share = RECORDED.get(c.ctx.wf.name)
        return share is not None and c.ts >= int(self.days * share) * DAY_MS

    def logged_ts(self, c: Call) -> int:
        """``c.ts`` as its log has it: a recorded exchange has whole seconds."""
        return c.ts - c.ts % 1000 if self.recorded(c) else c.ts

    def iso(self, ms: int) -> str:
        d, r = divmod(ms, DAY_MS)
        s, milli = divmod(r, 1000)
        return f"{self._days[d]}{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{milli:03d}Z"

    def time_of_day(self, day: int, business: bool) -> int:
        hour = self.rng.choices(range(23), _BUSINESS if business else _FLAT)[0]
        return day * DAY_MS + hour * 3_600_000 + self.rng.randrange(3_600_000)

    def version(self, wf: Workflow, day: int) -> str:
        at = day / self.days
        live = [(v[0], v[3]) for v in wf.versions if v[1] <= at < v[2]]
        return self.rng.choices([v for v, _ in live], [w for _, w in live])[0]

    def ctx(self, wf: Workflow, day: int, session: Ctx | None = None) -> Ctx:
        """A new trace, in ``session``'s session or a new one (new user)."""
        if session is None:
            r = self.rng
            tenant, _, first, size = r.choices(TENANTS, [t[1] for t in TENANTS])[0]
            user, env = f"u-{first + int(size * r.random() ** 1.6):03d}", "prod"
            if r.random() < 0.04:
                env, user = "staging", f"qa-{r.randint(1, 3)}"
            session = Ctx(wf, "", "sess_" + self.uid("session"), "", None, tenant, user, env)
        c = Ctx(
            wf,
            self.version(wf, day),
            session.session,
            self.uid("trace") + self.uid("trace2"),
            self.uid("span") if wf.agentic else None,
            session.tenant,
            session.user,
            session.env,
        )
        if wf.alt and self.rng.random() < wf.alt[1]:
            c.model = wf.alt[0]
        return c

    def size(self, agent: Agent) -> int:
        return agent.prefix + int(agent.body * _clip(self.rng.lognormvariate(0, 0.35), 0.5, 2.0))

    def outcome(self, c: Ctx) -> str | None:
        rates = REJECTED_RATES if c.version == c.wf.bad_version else c.wf.outcomes
        return self.rng.choices(OUTCOMES, rates)[0]

    def call(
        self,
        c: Ctx,
        agent: Agent,
        ts: int,
        *,
        prompt: int = 0,
        prompt_hash: str = "",
        attempt: int = 1,
        fail: bool = False,
    ) -> Call:
        """One call (appended to the world); ``prompt`` 0 draws a normal size."""
        r = self.rng
        model = c.model if c.model and agent is c.wf.agents[-1] else agent.model
        status, err, out, reasoning = 200, None, 0, 0
        if fail:
            codes = FAILURES[c.wf.provider]
            status, err, _ = r.choices(codes, [x[2] for x in codes])[0]
            prompt = 0
            latency = r.randint(40, 400) if status == 429 else r.randint(300, 6000)
        else:
            prompt = prompt or self.size(agent)
            out = max(1, int(agent.out * _clip(r.lognormvariate(0, 0.45), 0.25, 3.0)))
            if agent.reasoning:
                reasoning = int(out * r.uniform(agent.reasoning - 0.15, agent.reasoning + 0.15))
            base, per = LATENCY[model]
            noise = _clip(r.lognormvariate(0, 0.2), 0.7, 1.8)
            latency = int((base + out * per + prompt * 0.006) * noise)
        call = Call(
            ts,
            "req_" + self.uid("request"),
            self.uid("span"),
            c,
            agent,
            model,
            prompt,
            out,
            reasoning,
            attempt,
            status,
            err,
            latency,
            prompt_hash or self.uid("prompt"),
            self.prefix_hash(c.wf, c.version, agent),
        )
        self.calls.append(call)
        return call

    def plan(self, wf: Workflow) -> list[Agent]:
        a, r = wf.agents, self.rng
        if wf.agentic:
            return [a[0], *[a[1]] * r.randint(0, 6), a[2]]
        if len(a) == 2:
            return [a[0], a[1]] if r.random() < wf.second else [a[1]]
        return [a[0], a[0]] if r.random() < wf.second else [a[0]]

    def trace(self, c: Ctx, ts: int, max_calls: int) -> list[Call]:
        """A normal trace starting at ``ts`` of at most ``max_calls`` calls."""
        r = self.rng
        steps = self.plan(c.wf)[:max_calls]
        calls: list[Call] = []
        for i, agent in enumerate(steps):
            ph = self.uid("prompt")
            room = max_calls - len(calls) - (len(steps) - i)
            if room > 0 and r.random() < FAIL_RATE[c.wf.provider]:
                failed = self.call(c, agent, ts, prompt_hash=ph, fail=True)
                calls.append(failed)
                ts += failed.latency + r.randint(500, 4000)
                calls.append(self.call(c, agent, ts, prompt_hash=ph, attempt=2))
            else:
                calls.append(self.call(c, agent, ts, prompt_hash=ph))
            ts += calls[-1].latency + r.randint(150, 2500)
        calls[-1].outcome = self.outcome(c)
        return calls

    def fill(self, day: int, wf: Workflow, n: int) -> None:
        """Sessions of normal traffic on ``day`` until ``n`` calls are made."""
        r = self.rng
        while n > 0:
            ts = self.time_of_day(day, not wf.agentic)  # agents run around the clock
            session: Ctx | None = None
            traces = r.randint(1, 2) if wf.agentic else min(6, 1 + int(r.expovariate(0.8)))
            for _ in range(traces):
                if n <= 0 or (session and ts >= self.end_ms - 900_000):
                    break
                session = self.ctx(wf, day, session)
                calls = self.trace(session, ts, n)
                n -= len(calls)
                ts = calls[-1].ts + calls[-1].latency + r.randint(20_000, 480_000)

    def apply_cache(self) -> None:
        """Sort the calls by time (stably) and split each prompt into uncached, read, written."""
        self.calls.sort(key=lambda c: c.ts)
        last: dict[tuple[str, str], int] = {}
        for c in self.calls:
            c.input = c.prompt
            wf = c.ctx.wf
            if c.http_status != 200 or c.nocache or c.agent.prefix < MIN_CACHEABLE:
                continue
            key = (c.model, c.prefix_hash)
            prev = last.get(key)
            last[key] = c.ts
            prefix = c.agent.prefix
            if prev is not None and c.ts - prev <= wf.ttl_s * 1000:
                c.cache_read = prefix // 128 * 128 if wf.provider == "openai" else prefix
            elif wf.provider == "anthropic" and wf.ttl_s >= 3600:
                c.cache_write_1h = prefix
            elif wf.provider == "anthropic":
                c.cache_write = prefix
            c.input = c.prompt - c.cache_read - c.cache_write - c.cache_write_1h

    def record(self, c: Call) -> str:
        """One native JSONL line; keys in a fixed order, absent values left out."""
        x, wf = c.ctx, c.ctx.wf
        d = {
            "ts": self.iso(c.ts),
            "request_id": c.request_id,
            "trace_id": x.trace,
            "span_id": c.span_id,
            "parent_span_id": x.root,
            "session_id": x.session,
            "provider": wf.provider,
            "model": c.model,
            "project": wf.project,
            "workflow": wf.name,
            "team": wf.team,
            "tenant": x.tenant,
            "user": x.user,
            "agent": c.agent.name,
            "prompt_version": x.version,
            "environment": x.env,
            "input_tokens": c.input,
            "cache_read_tokens": c.cache_read,
            "cache_write_tokens": c.cache_write,
            "cache_write_1h_tokens": c.cache_write_1h,
            "output_tokens": c.output,
            "reasoning_tokens": c.reasoning,
            "attempt": c.attempt,
            "status": "ok" if c.http_status == 200 else "error",
            "http_status": c.http_status,
            "error_type": c.error_type,
            "latency_ms": c.latency,
            "outcome": c.outcome,
            "prompt_hash": c.prompt_hash,
            "prefix_hash": c.prefix_hash,
        }
        return json.dumps({k: v for k, v in d.items() if v is not None}, separators=(",", ":"))


def _allocate(w: World, total: int) -> list[tuple[int, Workflow, int]]:
    """Split ``total`` normal calls over (day, workflow) by share, weekday, growth, noise."""
    cells = []
    for day in range(w.days):
        weekend = (w.start + dt.timedelta(day)).weekday() >= 5
        growth = 1 + 0.25 * day / w.days
        for wf in WORKFLOWS:
            noise = w.rng.uniform(0.9, 1.1)
            cells.append((day, wf, wf.share * (wf.weekend if weekend else 1) * growth * noise))
    weight = sum(c[2] for c in cells)
    exact = [total * c[2] / weight for c in cells]
    counts = [int(x) for x in exact]
    order = sorted(range(len(cells)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return [(c[0], c[1], n) for c, n in zip(cells, counts, strict=True)]


def generate(
    out: Path, events: int = 20000, seed: int = 7, start: dt.date | None = None, days: int = 30
) -> SampleSummary:
    """Write the sample dataset under ``out`` (created if needed) and describe it."""
    from tokenaudit import sample_billing, sample_drains, sample_exchanges  # built on this

    if events < 1:
        raise ValueError(f"events must be at least 1, not {events}")
    if days < 7:
        raise ValueError(f"days must be at least 7 (the runaway loop needs a weekend), not {days}")
    start = start or DEFAULT_START
    w = World(seed, start, days)
    labels = sample_drains.inject(w, events / 20000)
    injected = len(w.calls)
    normal = max(events - injected, MIN_NORMAL)
    for day, wf, n in _allocate(w, normal):
        w.fill(day, wf, n)
    labels += sample_drains.group_labels(w)
    w.apply_cache()
    by_app: dict[str, list[str]] = {}
    for c in w.calls:
        if not w.recorded(c):
            by_app.setdefault(c.ctx.wf.project, []).append(w.record(c))
    files = []
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for app in sorted(by_app):  # gzip with a fixed mtime: the same bytes every run
        files.append(out / "logs" / f"{app}.jsonl.gz")
        with open(files[-1], "wb") as raw, gzip.GzipFile(f"{app}.jsonl", "wb", 6, raw, 0) as f:
            f.write(("\n".join(by_app[app]) + "\n").encode())
    labelled = {i for d in labels for i in d["request_ids"]}
    exchange_files, exchanged, tokens = sample_exchanges.write(out, w, labelled)
    files += exchange_files
    billing, billing_files = sample_billing.write(out, w)
    files += billing_files
    first, last = (start + dt.timedelta(w.calls[i].ts // DAY_MS) for i in (0, -1))
    params = {"events": events, "seed": seed, "start": start.isoformat(), "days": days}
    counts = {f"{app}.jsonl.gz": len(lines) for app, lines in sorted(by_app.items())}
    if exchanged:
        counts[exchange_files[0].name] = exchanged
    drains = sample_drains.write_labels(
        out, LABELS_NAME, labels, params, counts, normal, injected, (first, last), billing, tokens
    )
    files += [out / LABELS_NAME, out / "README.md"]
    return SampleSummary(out, tuple(files), len(w.calls), normal, injected, drains, first, last)
