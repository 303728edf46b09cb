"""Token reconciliation: provider-reported input counts against locally tokenized ones.

Every call whose prompt text was seen at ingest has a local count (``tokens`` package).
Compared here with what the provider reported for the same call (input + cache read +
cache writes: the whole prompt), per request, then summed up per model and per workflow.

* **exact** models (OpenAI's, counted with their own tiktoken encoding, or a model with a
  user-supplied ``tokenizer.json``): the local count is the estimate; drift = reported -
  local. A request is *outside* when ``|drift| > max(tolerance x local, slack)``.
* **calibrated** models (no public tokenizer: Claude, Gemini, ...): counted with a reference
  encoding, whose ratio to the provider's count is learned from the data itself, per model
  (``calibrate``: median and robust spread of ln(reported / reference)). The estimate is
  reference x median ratio; a request is *outside* when its ratio leaves the band
  median ± ``K`` robust standard deviations. With fewer than ``MIN_SAMPLES`` requests a
  model is *uncalibrated*: shown, never flagged.

Outliers get a suspected cause: ``truncated log`` (the logged text was cut), ``images or
files`` (parts not countable locally), ``cache accounting`` (the gap equals the cached or
cache-write tokens: counted twice or not at all), ``tool schemas`` (tool calls in a log that
has no tool definitions), ``model mislabelled`` (the counts fit another model's ratio, not
this one's), ``system prompt`` (none in the logged text), else ``unexplained``.

What a simpler estimate misses (``gaps``): per model, the median drift a count would show if
it ignored the tool definitions or the system prompt, the usual reasons team estimates drift
from the bill, beside the drift with them counted.

Where a log also carries a gateway's or application's own estimate
(``gateway_input_tokens``), it is compared with the provider's count too, and its gap is
matched against the local count without tools / without the system prompt to name what the
gateway leaves out.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

K = 3.0  # band half-width in robust standard deviations
MIN_SAMPLES = 5  # requests needed to calibrate a model
MIN_SPREAD = 0.01  # the band is never narrower than ±1% (token counts are whole numbers)
MAD_TO_SIGMA = 1.4826

CAUSES = (
    "truncated log",
    "images or files",
    "cache accounting",
    "tool schemas",
    "model mislabelled",
    "system prompt",
    "unexplained",
)


@dataclass(frozen=True)
class Band:
    """A model's calibrated ratio reported / reference, and the band a request stays in."""

    n: int
    ratio: float  # median of reported / reference
    lo: float
    hi: float
    spread: float  # robust standard deviation of ln(ratio)

    def contains(self, ratio: float) -> bool:
        return self.lo <= ratio <= self.hi


def calibrate(ratios: Sequence[float], k: float = K) -> Band | None:
    """The band of ``ratios`` (reported / reference, each > 0); None below MIN_SAMPLES."""
    logs = [math.log(r) for r in ratios if r > 0]
    if len(logs) < MIN_SAMPLES:
        return None
    center = statistics.median(logs)
    spread = MAD_TO_SIGMA * statistics.median(abs(x - center) for x in logs)
    width = k * max(spread, MIN_SPREAD)
    return Band(
        len(logs), math.exp(center), math.exp(center - width), math.exp(center + width), spread
    )


@dataclass(frozen=True)
class Options:
    since: dt.date | None = None
    until: dt.date | None = None  # inclusive day
    tolerance: float = 0.02  # exact models: a drift within this share of the count is noise
    slack: int = 3  # ... or within this many tokens
    top: int = 20  # outliers listed


@dataclass
class TokenReconciliation:
    models: list[dict[str, Any]]
    workflows: list[dict[str, Any]]
    outliers: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    gateway: list[dict[str, Any]]
    totals: dict[str, Any]
    causes: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


_EVENTS_SQL = """CREATE OR REPLACE TEMP TABLE _tok AS
SELECT coalesce(model_id, model) AS model, workflow, request_id, trace_id, file_id, line_no,
    ts, input_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens AS reported,
    cache_read_tokens AS cache_read, cache_write_tokens + cache_write_1h_tokens AS cache_write,
    local_input_tokens AS local, local_tokenizer AS tokenizer,
    coalesce(local_exact, false) AS exact,
    coalesce(local_system_tokens, 0) AS sys, coalesce(local_tool_tokens, 0) AS tools,
    coalesce(local_uncountable, 0) AS uncountable, local_note AS note,
    gateway_input_tokens AS gateway
FROM usage_events
WHERE (local_input_tokens > 0 OR gateway_input_tokens > 0) AND status = 'ok'
    AND input_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens > 0
    AND ($since IS NULL OR ts >= $since) AND ($until IS NULL OR ts < $until)"""

_SKIPPED_SQL = """SELECT count(*) FILTER (WHERE status <> 'ok'),
    count(*) FILTER (WHERE status = 'ok'
        AND input_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens = 0)
FROM usage_events WHERE local_input_tokens > 0
    AND ($since IS NULL OR ts >= $since) AND ($until IS NULL OR ts < $until)"""

_RATIOS_SQL = """SELECT model, tokenizer, list(reported / local) FROM _tok
WHERE local > 0 AND NOT exact GROUP BY ALL ORDER BY ALL"""

# Per request: the estimate, its drift and whether it is outside tolerance / the band.
_REQUESTS_SQL = """CREATE OR REPLACE TEMP TABLE _tokr AS
SELECT t.*, b.n IS NOT NULL OR t.exact AS calibrated,
    CASE WHEN t.exact THEN 1.0 ELSE coalesce(b.ratio, 1.0) END AS factor,
    t.local * factor AS expected,
    t.reported - expected AS drift,
    drift / expected AS drift_pct,
    CASE WHEN t.exact THEN abs(drift) > greatest($tol * expected, $slack)
         WHEN b.n IS NULL THEN false
         ELSE t.reported < t.local * b.lo - $slack OR t.reported > t.local * b.hi + $slack
    END AS outside,
    t.reported / t.local AS ratio
FROM _tok t LEFT JOIN _bands b USING (model, tokenizer)"""

_STATS = """count(*) AS requests,
    median(drift_pct) AS median_drift_pct,
    quantile_cont(abs(drift_pct), 0.95) AS p95_abs_drift_pct,
    median(drift) AS median_drift_tokens,
    quantile_cont(abs(drift), 0.95) AS p95_abs_drift_tokens,
    count(*) FILTER (WHERE outside) AS outside,
    count(*) FILTER (WHERE outside) / count(*) AS outside_share,
    sum(reported) AS reported_tokens, sum(expected) AS estimated_tokens"""


_MODELS_SQL = f"""SELECT model, tokenizer, bool_and(exact) AS exact,
    bool_and(calibrated) AS calibrated,
    {_STATS}
FROM _tokr WHERE local > 0 GROUP BY model, tokenizer ORDER BY requests DESC, model, tokenizer"""

_WORKFLOWS_SQL = f"""SELECT workflow, count(DISTINCT model) AS models, {_STATS}
FROM _tokr WHERE local > 0 AND calibrated
GROUP BY workflow ORDER BY requests DESC, workflow NULLS LAST"""

# What a count that left one part out would drift by (median over requests having it).
_GAPS_SQL = """SELECT model, part, count(*) AS requests,
    median(part_tokens / reported) AS median_share,
    median((reported - (expected - part_tokens * factor)) / (expected - part_tokens * factor))
        AS median_drift_pct_if_ignored,
    median(drift_pct) AS median_drift_pct
FROM (SELECT *, unnest(['tool schemas', 'system prompt']) AS part,
        unnest([tools, sys]) AS part_tokens FROM _tokr)
WHERE local > 0 AND calibrated AND part_tokens > 0 AND expected - part_tokens * factor > 0
GROUP BY model, part ORDER BY model, median_drift_pct_if_ignored DESC, part"""

_OUTLIERS_SQL = """SELECT model, tokenizer, exact, workflow, request_id, trace_id, file_id,
    line_no, ts, reported, local, expected, drift, drift_pct, ratio, cache_read, cache_write,
    sys, tools, uncountable, note
FROM _tokr WHERE local > 0 AND outside
ORDER BY abs(drift) DESC, model, ts, file_id, line_no"""

# A gateway's estimate against the provider, and which local count it is closest to.
_GATEWAY_SQL = """SELECT model, count(*) AS requests,
    median((reported - gateway) / gateway) AS median_drift_pct,
    quantile_cont(abs((reported - gateway) / gateway), 0.95) AS p95_abs_drift_pct,
    median(reported - gateway) AS median_drift_tokens,
    count(*) FILTER (WHERE abs(reported - gateway) > greatest($tol * gateway, $slack))
        / count(*) AS outside_share,
    mode(CASE WHEN abs(reported - gateway) <= greatest($tol * gateway, $slack) THEN NULL
         WHEN tools > 0 AND abs(gateway - (local - tools)) <= greatest($tol * gateway, $slack)
            THEN 'tool schemas'
         WHEN sys > 0 AND abs(gateway - (local - sys)) <= greatest($tol * gateway, $slack)
            THEN 'system prompt'
         WHEN tools + sys > 0
            AND abs(gateway - (local - sys - tools)) <= greatest($tol * gateway, $slack)
            THEN 'system prompt and tool schemas'
         WHEN cache_read > 0 AND abs(gateway - (reported - cache_read)) <= $slack
            THEN 'cache accounting'
         ELSE 'unexplained' END) AS suspected_cause
FROM _tokr WHERE gateway > 0 GROUP BY model ORDER BY requests DESC, model"""


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _round(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float):
                fraction = any(w in k for w in ("pct", "share", "ratio"))
                r[k] = round(v, 6) if fraction else round(v, 1)
            elif hasattr(v, "as_integer_ratio") and not isinstance(v, int | bool):
                r[k] = round(float(v), 1)  # DECIMAL sums of estimates
    return rows


def reconcile(con: duckdb.DuckDBPyConnection, opts: Options) -> TokenReconciliation:
    until = opts.until + dt.timedelta(days=1) if opts.until else None
    window = {"since": opts.since, "until": until}
    con.execute(_EVENTS_SQL, window)
    bands: dict[tuple[str, str], Band] = {}
    for model, tokenizer, ratios in con.execute(_RATIOS_SQL).fetchall():
        band = calibrate(ratios)
        if band is not None:
            bands[(model, tokenizer)] = band
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _bands (model VARCHAR, tokenizer VARCHAR, n INTEGER, "
        "ratio DOUBLE, lo DOUBLE, hi DOUBLE)"
    )
    if bands:
        con.executemany(
            "INSERT INTO _bands VALUES (?, ?, ?, ?, ?, ?)",
            [[m, t, b.n, b.ratio, b.lo, b.hi] for (m, t), b in bands.items()],
        )
    params = {"tol": opts.tolerance, "slack": opts.slack}
    con.execute(_REQUESTS_SQL, params)
    models = _round(_dicts(con.execute(_MODELS_SQL)))
    for m in models:
        m["method"] = (
            "exact" if m["exact"] else ("calibrated" if m["calibrated"] else "uncalibrated")
        )
        band = bands.get((m["model"], m["tokenizer"]))
        m["reference_ratio"] = round(band.ratio, 6) if band else None
        m["band"] = [round(band.lo, 6), round(band.hi, 6)] if band else None
        if not m["calibrated"]:  # not enough requests: the drift against the raw reference
            for k in ("median_drift_pct", "p95_abs_drift_pct", "outside_share"):
                m[k] = None
    workflows = _round(_dicts(con.execute(_WORKFLOWS_SQL)))
    gaps = _round(_dicts(con.execute(_GAPS_SQL)))
    raw = _dicts(con.execute(_OUTLIERS_SQL))
    outliers = [_outlier(r, opts, bands, models) for r in raw]
    gateway = _round(_dicts(con.execute(_GATEWAY_SQL, params)))
    skipped = con.execute(_SKIPPED_SQL, window).fetchone() or (0, 0)
    con.execute(
        "DROP TABLE IF EXISTS _tok; DROP TABLE IF EXISTS _tokr; DROP TABLE IF EXISTS _bands"
    )
    causes: dict[str, int] = {}
    for o in outliers:
        causes[o["cause"]] = causes.get(o["cause"], 0) + 1
    compared = sum(m["requests"] for m in models)
    totals = {
        "requests": compared,
        "outside": sum(m["outside"] for m in models),
        "models": len(models),
        "models_exact": sum(m["method"] == "exact" for m in models),
        "models_calibrated": sum(m["method"] == "calibrated" for m in models),
        "models_uncalibrated": sum(m["method"] == "uncalibrated" for m in models),
    }
    meta = {
        "tolerance": opts.tolerance,
        "slack_tokens": opts.slack,
        "band_sigmas": K,
        "min_samples": MIN_SAMPLES,
        "since": opts.since.isoformat() if opts.since else None,
        "until": opts.until.isoformat() if opts.until else None,
        "skipped_failed_calls": skipped[0],
        "skipped_without_provider_count": skipped[1],
    }
    return TokenReconciliation(
        models=models,
        workflows=workflows,
        outliers=outliers[: opts.top] if opts.top else outliers,
        gaps=gaps,
        gateway=gateway,
        totals=totals,
        causes=[{"cause": c, "requests": causes[c]} for c in CAUSES if c in causes],
        meta=meta,
    )


def _near(a: float, b: float, opts: Options) -> bool:
    return abs(a - b) <= max(opts.tolerance * max(abs(b), 1), opts.slack)


def _outlier(
    r: dict[str, Any],
    opts: Options,
    bands: dict[tuple[str, str], Band],
    models: list[dict[str, Any]],
) -> dict[str, Any]:
    cause = _cause(r, opts, bands, models)
    return {
        "model": r["model"],
        "workflow": r["workflow"],
        "request_id": r["request_id"],
        "trace_id": r["trace_id"],
        "ts": r["ts"],
        "reported_tokens": r["reported"],
        "local_tokens": r["local"],
        "estimated_tokens": round(float(r["expected"]), 1),
        "drift_tokens": round(float(r["drift"]), 1),
        "drift_pct": round(float(r["drift_pct"]), 6),
        "method": "exact" if r["exact"] else "calibrated",
        "cause": cause[0],
        "detail": cause[1],
    }


def _cause(
    r: dict[str, Any],
    opts: Options,
    bands: dict[tuple[str, str], Band],
    models: list[dict[str, Any]],
) -> tuple[str, str]:
    note = r["note"] or ""
    drift, reported, expected = float(r["drift"]), r["reported"], float(r["expected"])
    if "truncated" in note and drift > 0:
        return "truncated log", "the logged prompt was cut; the provider saw all of it"
    if r["uncountable"] and drift > 0:
        return "images or files", f"{note or 'parts'} not countable locally"
    for label, n in (("cached", r["cache_read"]), ("cache-write", r["cache_write"])):
        if n and (_near(reported - n, expected, opts) or _near(reported + n, expected, opts)):
            return "cache accounting", f"the gap equals the {n:,} {label} tokens"
    if "tool calls without tool definitions" in note and drift > 0:
        return "tool schemas", "tool calls in a log that has no tool definitions"
    ratio = float(r["ratio"])
    for m in models:
        other = m["model"]
        if other == r["model"] or m["tokenizer"] != r["tokenizer"]:
            continue
        if m["exact"]:
            if r["exact"] or m["method"] != "exact":
                continue
            fits = abs(ratio - 1) <= opts.tolerance
        else:
            band = bands.get((other, m["tokenizer"]))
            fits = band is not None and band.contains(ratio)
        if fits:
            return "model mislabelled", f"the counts fit {other}, not {r['model']}"
    if not r["sys"] and drift > 0:
        return "system prompt", "no system prompt in the logged text"
    return "unexplained", "reported below the local count" if drift < 0 else ""
