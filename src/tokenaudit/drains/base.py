"""What every detector shares: the finding, the settings, and the calls table they read.

``prepare`` builds the TEMP table ``_dr`` once per run: the calls in the window (``--since``,
``--until``, ``--where``) with their trace key, total input and their trace's final outcome.
Detectors are SQL over ``_dr``; a detector that windows over many calls sorts only the few
columns it orders by and joins the rest back by ``rowid`` for the calls it flags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import ConfigError
from tokenaudit.report.queries import TRACE_KEY_SQL

if TYPE_CHECKING:
    import duckdb

EVIDENCE_MAX = 100  # ids kept per finding (the count says how many there were)

# Thresholds of every detector: [drains.<kind>] in tokenaudit.toml overrides them.
DEFAULTS: dict[str, dict[str, float]] = {
    "duplicate_call": {"window_seconds": 120},
    "retry_storm": {"min_failures": 3, "window_seconds": 900},
    "context_bloat": {
        "min_turns": 6,  # a session whose input grows turn after turn ...
        "growth": 4,  # ... to this many times its first turn's
        "rising_share": 0.8,  # with this share of its turns growing
        "factor": 5,  # a single call with this many times its workflow agent's median input
        "min_calls": 20,  # calls of the workflow agent needed for a median
    },
    "runaway_loop": {"min_calls": 50, "factor": 3},  # calls > max(min, factor x p99 of traces)
    "cache_miss": {"ttl_seconds": 300, "min_prefix_tokens": 1024, "min_misses": 5},
    "model_overkill": {"min_outcomes": 30, "price_ratio": 2, "margin": 0.05},
    "rejected_work": {"min_outcomes": 20, "share": 0.5, "over_baseline": 2},
}
CACHING_PROVIDERS = ("openai", "anthropic", "azure", "google", "aws", "deepseek", "x-ai")


@dataclass(frozen=True)
class Settings:
    values: dict[str, dict[str, float]] = field(default_factory=lambda: DEFAULTS)

    def of(self, kind: str) -> dict[str, float]:
        return self.values[kind]

    @classmethod
    def from_config(cls, raw: Any, where: str = "tokenaudit.toml") -> Settings:
        """``[drains.<kind>] key = number`` over the defaults; unknown names are errors."""
        values = {k: dict(v) for k, v in DEFAULTS.items()}
        if raw is None:
            return cls(values)
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: [drains] must be a table")
        for kind, table in raw.items():
            if kind not in DEFAULTS:
                raise ConfigError(
                    f"{where}: unknown drain kind '{kind}'", hint="kinds: " + ", ".join(DEFAULTS)
                )
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: [drains.{kind}] must be a table")
            for key, value in table.items():
                if key not in DEFAULTS[kind]:
                    raise ConfigError(
                        f"{where}: unknown setting drains.{kind}.{key}",
                        hint="settings: " + ", ".join(DEFAULTS[kind]),
                    )
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ConfigError(f"{where}: drains.{kind}.{key} must be a number >= 0")
                values[kind][key] = float(value)
        return cls(values)


@dataclass
class Finding:
    kind: str
    group: dict[str, Any]  # the dimensions it hits: workflow, model, agent, ...
    waste_usd: Decimal  # what it cost beyond the need
    how: str  # how waste_usd was computed
    fix: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    calls: int
    request_ids: list[str]
    trace_ids: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    what_if_usd: Decimal | None = None  # the same traffic done the better way
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "group": self.group,
            "waste_usd": self.waste_usd,
            "how": self.how,
            "what_if_usd": self.what_if_usd,
            "fix": self.fix,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "calls": self.calls,
            "evidence": {
                "request_ids": self.request_ids[:EVIDENCE_MAX],
                "trace_ids": self.trace_ids[:EVIDENCE_MAX],
                "session_ids": self.session_ids[:EVIDENCE_MAX],
                "requests": len(self.request_ids),
            },
            "detail": self.detail,
        }


# The columns of usage_events the detectors read (copying all of them doubles the work).
_COLUMNS = (
    "file_id", "line_no", "ts", "request_id", "trace_id", "session_id", "provider", "model",
    "workflow", "agent", "prompt_version", "input_tokens", "cache_read_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens",
    "attempt", "status", "http_status", "outcome", "prompt_hash", "prefix_hash", "cost_usd",
    "price_id",
)  # fmt: skip

# Per call: the trace key, total input, and the final outcome of its trace (the latest
# outcome a call of the trace carries, or an outcomes file names for its trace, session or
# request).
_PREPARE_SQL = f"""CREATE OR REPLACE TEMP TABLE _dr AS
WITH ev AS (
    SELECT {", ".join(_COLUMNS)}, {TRACE_KEY_SQL} AS tkey,
        input_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens
            AS total_input
    FROM usage_events WHERE {{where}}
), marks AS (
    SELECT tkey, outcome, ts, file_id, line_no FROM ev WHERE outcome IS NOT NULL
    UNION ALL
    SELECT c.tkey, o.outcome, coalesce(o.ts, c.ts), o.file_id, o.line_no
    FROM outcomes o JOIN (
        SELECT 'trace' AS kind, trace_id AS key, arg_max(tkey, ts) AS tkey, max(ts) AS ts
        FROM ev WHERE trace_id IN (SELECT key FROM outcomes WHERE key_kind = 'trace')
        GROUP BY trace_id
        UNION ALL
        SELECT 'session', session_id, arg_max(tkey, ts), max(ts)
        FROM ev WHERE session_id IN (SELECT key FROM outcomes WHERE key_kind = 'session')
        GROUP BY session_id
        UNION ALL
        SELECT 'request', request_id, arg_max(tkey, ts), max(ts)
        FROM ev WHERE request_id IN (SELECT key FROM outcomes WHERE key_kind = 'request')
        GROUP BY request_id
    ) c ON c.kind = o.key_kind AND c.key = o.key
), final AS (
    SELECT tkey, arg_max(outcome, (ts, file_id, line_no)) AS trace_outcome
    FROM marks GROUP BY tkey
)
SELECT ev.*, final.trace_outcome FROM ev LEFT JOIN final USING (tkey)"""


# The part of a call ``d``'s cost that paid for input: its cost less its output at its price
# row ``p`` (``LEFT JOIN prices p ON p.price_id = d.price_id``).
INPUT_COST_SQL = (
    "d.cost_usd - CAST(d.output_tokens * coalesce(p.output_mtok, 0) * 0.000001 AS DECIMAL(38, 12))"
)


def prepare(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> int:
    """Build ``_dr`` from the calls matching ``where``; the number of calls."""
    con.execute(_PREPARE_SQL.format(where=where), params)
    return int(con.execute("SELECT count(*) FROM _dr").fetchall()[0][0])


PLACES = Decimal("1e-12")


def money(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def share_of(parts: Any) -> Decimal:
    """Sum of cost x excess / total over (cost, excess, total) triples, in exact decimals:
    the part of each call's (input) cost that paid for its excess tokens."""
    out = Decimal(0)
    for cost, excess, total in parts or []:
        if cost is not None and total and excess > 0:
            out += Decimal(cost) * excess / total
    return out.quantize(PLACES)


def ids(values: Any) -> list[str]:
    return [str(v) for v in (values or []) if v is not None]
