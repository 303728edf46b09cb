"""Billing reconciliation: does what we logged match what we are billed?

Both sides are summed per period (``--grain``), provider and model, in exact DECIMAL:

* **billed**: tokens per category and cost from ``billing_lines``. Exports overlap in
  what they carry (OpenAI's Usage API has tokens, its Costs API money and tokens; a FOCUS
  file has both), so per provider one dataset is taken for tokens and one for money, by
  ``TOKEN_DATASETS`` / ``COST_DATASETS`` order (a usage report before a cost export for
  tokens, and the reverse for money); only USD money is compared.
* **logged**: tokens per category and our computed cost from ``usage_events``.

Model names line up through the catalogue's model id (``gpt-4o-mini-2024-07-18`` and
``gpt-4o-mini``, "Claude Opus 4.5" and ``claude-opus-4-5-20251101``); a model the catalogue
does not know is matched by its lower-cased name.

The gap (billed - logged) of each row is split into causes, each in dollars:

* ``billed_not_logged``: billed for a model with no logged call in the period (traffic that
  bypasses the gateway, a shared key, a team that does not log);
* ``logged_not_billed``: logged calls with nothing billed for their model (phantom rows, a
  mislabelled model, failed calls logged as billed);
* ``missing_billing_day`` / ``missing_log_day``: a period the provider's export has no line
  for while the logs have calls, or the reverse (a download that stops early, a logger down);
* ``unlogged_usage`` / ``logged_beyond_billed``: more (or fewer) tokens billed than logged for
  the same model: the share of the billed tokens no logged call accounts for, at what they
  were billed;
* ``token_category_drift``: on the tokens both sides have, a different split between
  categories (cached counted as uncached, cache writes as input), valued at our prices;
* ``price_drift``: on the tokens both sides have, the billed cost differs from our price (a
  negotiated discount, a stale catalogue, a batch or priority tier).

Drifts under a cent per row are rounding and stay in the volume figure, so a row's causes
always add up to its gap.

Capture rate = logged cost / billed cost. A row is ``matched`` when its capture rate is
within ``tolerance`` of 1. Reasoning billed on its own meter counts as output (logged output
includes reasoning); billed money tied to no model (tool calls, storage, the other cloud
services of a FOCUS file) is left out of the rows and reported in ``meta``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import TokenauditError

if TYPE_CHECKING:
    import duckdb

GRAINS = ("hour", "day", "month")
CATEGORIES = ("input", "cache_read", "cache_write", "cache_write_1h", "output")
_LOGGED_COLUMNS = {
    "input": "input_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "cache_write_1h": "cache_write_1h_tokens",
    "output": "output_tokens",
}
_PRICE_COLUMNS = {
    "input": "p.input_mtok",
    "cache_read": "coalesce(p.cache_read_mtok, p.input_mtok)",
    "cache_write": "coalesce(p.cache_write_mtok, p.input_mtok)",
    "cache_write_1h": "coalesce(p.cache_write_1h_mtok, p.cache_write_mtok, p.input_mtok)",
    "output": "p.output_mtok",
}

# Dataset preference, by name prefix: first that a provider has wins.
TOKEN_DATASETS = (
    "openai.usage",
    "anthropic.usage_report",
    "anthropic.console.usage",
    "openai.costs",
    "anthropic.cost_report",
    "anthropic.console.cost",
    "focus",
    "openrouter",
)
COST_DATASETS = (
    "openai.costs",
    "anthropic.cost_report",
    "anthropic.console.cost",
    "focus",
    "openrouter",
    "openai.usage",
    "anthropic.usage_report",
    "anthropic.console.usage",
)

CAUSES = {
    "billed_not_logged": "billed, never logged: traffic that bypasses the logs "
    "(gateway bypass, shared key)",
    "logged_not_billed": "logged, never billed: phantom rows, a mislabelled model, "
    "failed calls logged as billed",
    "missing_billing_day": "no billing line for a period with logged calls: "
    "the export stops early or skips days",
    "missing_log_day": "no logged call for a billed period: "
    "the logger was down or the logs were not loaded",
    "unlogged_usage": "more tokens billed than logged for the same model: "
    "some calls were not logged",
    "logged_beyond_billed": "more tokens logged than billed: "
    "duplicates or calls the provider did not bill",
    "token_category_drift": "the same tokens split differently: "
    "e.g. cached tokens logged as uncached",
    "price_drift": "billed cost differs from our price for the billed tokens: "
    "discount, stale price, tier",
}

MONEY = Decimal("0.000000000001")
NOISE = Decimal("0.01")  # dollars per row
RATIO = Decimal("0.000001")


def _rank(column: str, order: tuple[str, ...]) -> str:
    whens = " ".join(
        f"WHEN starts_with({column}, '{prefix}') THEN {i}" for i, prefix in enumerate(order)
    )
    return f"CASE {whens} ELSE {len(order)} END"


_SQL = """
WITH lines AS (
    -- Reasoning billed apart is output in the logs; spend tied to no model (tools,
    -- storage, other cloud services in a FOCUS file) has nothing to meet in the logs.
    SELECT b.* REPLACE (CASE WHEN b.token_category = 'reasoning' THEN 'output'
                             ELSE b.token_category END AS token_category),
        date_trunc($grain, b.period_start) AS bucket,
        lower(coalesce(b.provider, '')) AS prov,
        coalesce(b.model_id, lower(b.model)) AS mkey,
        {billed_scope} AS scope
    FROM billing_lines b
    WHERE ($since IS NULL OR b.period_start >= $since)
      AND ($until IS NULL OR b.period_start < $until)
      AND b.model IS NOT NULL
),
token_ds AS (
    SELECT prov, arg_min(dataset, lpad(({token_rank})::VARCHAR, 3, '0') || dataset) AS token_dataset
    FROM lines
    WHERE quantity IS NOT NULL AND token_category IN ({categories})
    GROUP BY prov
),
cost_ds AS (
    SELECT prov, arg_min(dataset, lpad(({cost_rank})::VARCHAR, 3, '0') || dataset) AS cost_dataset
    FROM lines
    WHERE cost IS NOT NULL AND upper(currency) = 'USD'
    GROUP BY prov
),
priced_lines AS (
    SELECT l.*, {line_value} AS value_usd
    FROM lines l
    LEFT JOIN prices p ON p.provider = coalesce(lower(l.provider), '') AND p.model = l.model
        AND p.service_tier = CASE WHEN lower(l.service_tier) IN ('batch', 'priority', 'flex')
                                  THEN lower(l.service_tier) ELSE 'standard' END
        AND l.period_start >= p.effective_from
        AND (p.effective_to IS NULL OR l.period_start < p.effective_to)
        AND p.input_above < 0
),
billed AS (
    SELECT bucket, prov, mkey, scope,
        {billed_tokens},
        sum(value_usd) FILTER (WHERE dataset = token_dataset) AS billed_at_our_prices,
        count(*) FILTER (WHERE dataset = token_dataset AND token_category IN ({categories})
                         AND value_usd IS NULL) AS billed_unpriced_lines,
        sum(cost) FILTER (WHERE dataset = cost_dataset AND upper(currency) = 'USD') AS billed_usd,
        bool_or(dataset = token_dataset) AS has_tokens,
        bool_or(dataset = cost_dataset) AS has_cost
    FROM priced_lines
    LEFT JOIN token_ds t USING (prov)
    LEFT JOIN cost_ds c USING (prov)
    WHERE dataset = token_dataset OR dataset = cost_dataset
    GROUP BY ALL
),
logged AS (
    SELECT date_trunc($grain, e.ts) AS bucket,
        lower(coalesce(e.provider, p.price_provider, '')) AS prov,
        coalesce(e.model_id, lower(e.model)) AS mkey,
        {logged_scope} AS scope,
        count(*) AS requests,
        {logged_tokens},
        sum(e.cost_usd) AS logged_usd,
        count(*) FILTER (WHERE e.cost_usd IS NULL) AS unpriced_requests
    FROM usage_events e LEFT JOIN prices p ON p.price_id = e.price_id
    WHERE ($since IS NULL OR e.ts >= $since) AND ($until IS NULL OR e.ts < $until)
    GROUP BY ALL
)
SELECT bucket, prov, mkey, scope, billed.* EXCLUDE (bucket, prov, mkey, scope),
    logged.* EXCLUDE (bucket, prov, mkey, scope)
FROM billed FULL OUTER JOIN logged USING (bucket, prov, mkey, scope)
WHERE prov IN (SELECT prov FROM lines)
ORDER BY bucket, prov, mkey, scope
"""


SCOPES = ("project",)


def _sql(by_project: bool = False) -> str:
    categories = ", ".join(f"'{c}'" for c in CATEGORIES)
    value_terms = " ".join(
        f"WHEN '{c}' THEN l.quantity * {_PRICE_COLUMNS[c]} * 0.000001" for c in CATEGORIES
    )
    return _SQL.format(
        billed_scope="coalesce(b.project, b.workspace, '')" if by_project else "''",
        logged_scope="coalesce(e.project, '')" if by_project else "''",
        token_rank=_rank("dataset", TOKEN_DATASETS),
        cost_rank=_rank("dataset", COST_DATASETS),
        categories=categories,
        line_value=(
            "CASE WHEN p.price_id IS NULL OR l.quantity IS NULL THEN NULL "
            f"ELSE CAST(CASE l.token_category {value_terms} END AS DECIMAL(38,12)) END"
        ),
        billed_tokens=",\n        ".join(
            f"sum(quantity) FILTER (WHERE dataset = token_dataset AND token_category = '{c}') "
            f"AS billed_{c}"
            for c in CATEGORIES
        ),
        logged_tokens=",\n        ".join(
            f"sum(e.{col}) AS logged_{c}" for c, col in _LOGGED_COLUMNS.items()
        ),
    )


@dataclass(frozen=True)
class Options:
    grain: str = "day"
    since: dt.date | None = None
    until: dt.date | None = None  # inclusive day
    tolerance: Decimal = Decimal("0.01")
    by: tuple[str, ...] = ()  # also split rows by: "project"

    def __post_init__(self) -> None:
        for scope in self.by:
            if scope not in SCOPES:
                raise TokenauditError(
                    f"cannot reconcile by '{scope}'", hint="--by takes: " + ", ".join(SCOPES)
                )
        if self.grain not in GRAINS:
            raise TokenauditError(
                f"unknown grain '{self.grain}'", hint="grains: " + ", ".join(GRAINS)
            )


@dataclass
class Reconciliation:
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    causes: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def _ratio(num: Decimal | None, den: Decimal | None) -> Decimal | None:
    if num is None or den is None or den == 0:
        return None
    return (num / den).quantize(RATIO)


def _period(bucket: dt.datetime, grain: str) -> str:
    if grain == "hour":
        return bucket.strftime("%Y-%m-%d %H:00")
    if grain == "month":
        return bucket.strftime("%Y-%m")
    return bucket.date().isoformat()


def reconcile(con: duckdb.DuckDBPyConnection, opts: Options) -> Reconciliation:
    """Billed against logged, per period x provider x model, with the gap's causes."""
    until = opts.until + dt.timedelta(days=1) if opts.until else None
    cur = con.execute(
        _sql("project" in opts.by), {"grain": opts.grain, "since": opts.since, "until": until}
    )
    names = [d[0] for d in cur.description]
    raw = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    billed_periods = {(r["bucket"], r["prov"]) for r in raw if r["has_tokens"] or r["has_cost"]}
    logged_periods = {(r["bucket"], r["prov"]) for r in raw if r["requests"]}
    rows = [_row(r, opts, billed_periods, logged_periods) for r in raw]
    return Reconciliation(rows, _totals(rows), _cause_totals(rows), _meta(con, opts, rows))


def _row(
    r: dict[str, Any],
    opts: Options,
    billed_periods: set[tuple[Any, str]],
    logged_periods: set[tuple[Any, str]],
) -> dict[str, Any]:
    billed_tokens = {c: r[f"billed_{c}"] for c in CATEGORIES}
    logged_tokens = {c: r[f"logged_{c}"] for c in CATEGORIES}
    billed_usd: Decimal | None = r["billed_usd"]
    logged_usd: Decimal | None = r["logged_usd"]
    at_ours: Decimal | None = r["billed_at_our_prices"]
    has_tokens = bool(r["has_tokens"]) and any(v is not None for v in billed_tokens.values())
    billed_value = billed_usd if billed_usd is not None else at_ours
    logged_value = _dec(logged_usd)
    causes: dict[str, Decimal] = {}
    key = (r["bucket"], r["prov"])
    if not r["requests"]:
        cause = "billed_not_logged" if key in logged_periods else "missing_log_day"
        causes[cause] = _dec(billed_value)
    elif not (r["has_tokens"] or r["has_cost"]):
        cause = "logged_not_billed" if key in billed_periods else "missing_billing_day"
        causes[cause] = -logged_value
    else:
        causes.update(_split(r, billed_tokens, logged_tokens, has_tokens))
    gap = _dec(billed_value) - logged_value
    capture = _ratio(logged_value, billed_value)
    matched = capture is not None and abs(1 - capture) <= opts.tolerance
    return {
        "period": _period(r["bucket"], opts.grain),
        "provider": r["prov"],
        "model": r["mkey"],
        **({"project": r["scope"] or None} if opts.by else {}),
        "billed_usd": billed_usd,
        "billed_at_our_prices_usd": at_ours,
        "logged_usd": logged_usd,
        "gap_usd": gap.quantize(MONEY),
        "capture_rate": capture,
        "status": "matched" if matched else ("unreconciled" if capture is None else "gap"),
        "requests": int(r["requests"] or 0),
        "unpriced_requests": int(r["unpriced_requests"] or 0),
        "billed_tokens": {c: None if v is None else int(v) for c, v in billed_tokens.items()},
        "logged_tokens": {c: int(v or 0) for c, v in logged_tokens.items()},
        "causes": [
            {"cause": c, "usd": v.quantize(MONEY)}
            for c, v in sorted(causes.items(), key=lambda kv: -abs(kv[1]))
            if v != 0
        ],
    }


def _split(
    r: dict[str, Any],
    billed_tokens: dict[str, Any],
    logged_tokens: dict[str, Any],
    has_tokens: bool,
) -> dict[str, Decimal]:
    """Split a row's gap into volume, category drift and price drift (see module doc)."""
    logged_usd = _dec(r["logged_usd"])
    billed_usd: Decimal | None = r["billed_usd"]
    at_ours: Decimal | None = r["billed_at_our_prices"]
    out: dict[str, Decimal] = {}
    if not has_tokens or at_ours is None or r["billed_unpriced_lines"]:
        # Money only (or tokens we cannot price): the whole gap is one volume figure.
        if billed_usd is not None:
            gap = billed_usd - logged_usd
            out["unlogged_usage" if gap > 0 else "logged_beyond_billed"] = gap
        return out
    tb = sum(_dec(v) for v in billed_tokens.values())
    tl = sum(_dec(v) for v in logged_tokens.values())
    billed = billed_usd if billed_usd is not None else at_ours
    if tb == 0:
        return {"logged_beyond_billed": billed - logged_usd} if billed != logged_usd else {}
    # The billed tokens no call accounts for, at what they were billed; the rest of the
    # gap is on the tokens both sides have: price (billed vs our price) and category mix.
    logged_share = tl / tb
    volume = (billed * (tb - tl) / tb).quantize(MONEY)
    price = ((billed - at_ours) * logged_share).quantize(MONEY)
    drift = billed - logged_usd - volume - price
    # Under a cent, a drift is rounding (a volume spread unevenly over the categories,
    # a cost report's cents): it stays in the volume figure, so the causes still add up.
    if abs(drift) < NOISE:
        volume, drift = volume + drift, Decimal(0)
    if abs(price) < NOISE:
        volume, price = volume + price, Decimal(0)
    out["unlogged_usage" if volume > 0 else "logged_beyond_billed"] = volume
    out["token_category_drift"] = drift
    out["price_drift"] = price
    return {k: v for k, v in out.items() if v != 0}


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    billed = [r["billed_usd"] for r in rows if r["billed_usd"] is not None]
    billed_usd = sum(billed, Decimal(0)) if billed else None
    billed_value = sum(
        (
            _dec(r["billed_usd"] if r["billed_usd"] is not None else r["billed_at_our_prices_usd"])
            for r in rows
        ),
        Decimal(0),
    )
    logged_usd = sum((_dec(r["logged_usd"]) for r in rows), Decimal(0))
    return {
        "rows": len(rows),
        "matched_rows": sum(r["status"] == "matched" for r in rows),
        "billed_usd": billed_usd,
        "logged_usd": logged_usd,
        "gap_usd": (billed_value - logged_usd).quantize(MONEY),
        "capture_rate": _ratio(logged_usd, billed_value),
        "requests": sum(r["requests"] for r in rows),
        "unpriced_requests": sum(r["unpriced_requests"] for r in rows),
    }


def _cause_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sums: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    for r in rows:
        for c in r["causes"]:
            sums[c["cause"]] = sums.get(c["cause"], Decimal(0)) + c["usd"]
            counts[c["cause"]] = counts.get(c["cause"], 0) + 1
    return [
        {"cause": c, "usd": sums[c], "rows": counts[c], "explains": CAUSES[c]}
        for c in sorted(sums, key=lambda c: -abs(sums[c]))
    ]


def _meta(
    con: duckdb.DuckDBPyConnection, opts: Options, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    providers = sorted({r["provider"] for r in rows})
    until = opts.until + dt.timedelta(days=1) if opts.until else None
    window = {"since": opts.since, "until": until}
    logged_only = [
        p
        for (p,) in con.execute(
            "SELECT DISTINCT lower(coalesce(e.provider, p.price_provider, '')) FROM usage_events e "
            "LEFT JOIN prices p ON p.price_id = e.price_id ORDER BY 1"
        ).fetchall()
        if p not in providers
    ]
    return {
        "grain": opts.grain,
        "by": list(opts.by),
        "since": opts.since,
        "until": opts.until,
        "tolerance": opts.tolerance,
        "providers": providers,
        "providers_without_billing": logged_only,
        "billing_files": con.execute(
            "SELECT count(*) FROM files WHERE kind = 'billing'"
        ).fetchall()[0][0],
        "billed_without_model_usd": con.execute(_NO_MODEL_SQL, window).fetchall()[0][0],
    }


# Billed money no model carries (left out of the rows), in the window.
_NO_MODEL_SQL = """SELECT sum(cost) FROM billing_lines
WHERE model IS NULL AND upper(currency) = 'USD'
  AND ($since IS NULL OR period_start >= $since) AND ($until IS NULL OR period_start < $until)"""
