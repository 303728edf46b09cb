"""``model_overkill``: an expensive model used where a cheaper one reaches the same
acceptance in the same workflow and agent. Per workflow and agent, every pair of models
where one costs at least ``price_ratio`` (default 2) times the other per call, both with at
least ``min_outcomes`` (default 30) traces with an outcome, and the expensive one's
acceptance rate is not better by more than ``margin`` (default 5 points) nor significantly
(one-sided two-proportion z-test, 95%).

What-if: the expensive model's calls, token for token, at the cheaper model's price (the
price row most of its calls used). Waste: their cost less that what-if.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from tokenaudit.drains.base import PLACES, Finding, Settings, ids, money
from tokenaudit.pricing import cost_sql

if TYPE_CHECKING:
    import duckdb

KIND = "model_overkill"
FIX = "route this step to {cheap}: same acceptance here for a fraction of the price"

# One pass over the traces of each workflow, agent and model (a trace's outcome is the same
# on all its calls), and the price row most of the model's calls used.
_MODELS_SQL = """
WITH t AS (
    SELECT workflow, agent, model, tkey, count(*) AS calls, sum(cost_usd) AS cost,
        any_value(trace_outcome) AS outcome
    FROM _dr WHERE cost_usd IS NOT NULL GROUP BY ALL
), m AS (
    SELECT workflow, agent, model, sum(calls) AS calls, sum(cost) AS cost,
        count(*) FILTER (WHERE outcome IS NOT NULL) AS outcomes,
        count(*) FILTER (WHERE outcome = 'accepted') AS accepted
    FROM t GROUP BY ALL
), p AS (
    SELECT workflow, agent, model, mode(price_id) AS price_id
    FROM _dr WHERE cost_usd IS NOT NULL GROUP BY ALL
)
SELECT m.workflow, m.agent, m.model, m.calls, m.cost, m.cost / m.calls AS per_call,
    p.price_id, m.outcomes, m.accepted
FROM m JOIN p ON m.workflow IS NOT DISTINCT FROM p.workflow
    AND m.agent IS NOT DISTINCT FROM p.agent AND m.model IS NOT DISTINCT FROM p.model"""

_WHAT_IF_SQL = f"""SELECT sum({cost_sql("d")}), min(d.ts), max(d.ts),
    list(d.request_id ORDER BY d.ts, d.file_id, d.line_no), list(DISTINCT d.trace_id),
    list(DISTINCT d.session_id)
FROM _dr d, prices p
WHERE p.price_id = $price_id AND d.workflow IS NOT DISTINCT FROM $workflow
    AND d.agent IS NOT DISTINCT FROM $agent AND d.model = $model AND d.cost_usd IS NOT NULL"""


def _better(acc_a: int, n_a: int, acc_b: int, n_b: int) -> bool:
    """Is A's acceptance significantly higher than B's (one-sided z-test at 95%)?"""
    pooled = (acc_a + acc_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return se > 0 and (acc_a / n_a - acc_b / n_b) / se > 1.645


@dataclass(frozen=True)
class _Model:
    workflow: str | None
    agent: str | None
    model: str
    calls: int
    cost: Decimal
    per_call: Decimal
    price_id: int | None
    outcomes: int
    accepted: int


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    groups: dict[tuple[str | None, str | None], list[_Model]] = {}
    for row in con.execute(_MODELS_SQL).fetchall():
        m = _Model(row[0], row[1], row[2], row[3], money(row[4]), money(row[5]), row[6],
                   row[7], row[8])  # fmt: skip
        groups.setdefault((m.workflow, m.agent), []).append(m)
    out = []
    ratio, floor, margin = money(s["price_ratio"]), s["min_outcomes"], s["margin"]
    for key in sorted(groups, key=str):
        models = [m for m in groups[key] if m.outcomes >= floor]
        for a in models:
            cheaper = [
                b for b in models
                if b is not a and b.per_call > 0 and a.per_call >= b.per_call * ratio
                and a.accepted / a.outcomes <= b.accepted / b.outcomes + margin
                and not _better(a.accepted, a.outcomes, b.accepted, b.outcomes)
            ]  # fmt: skip
            if cheaper:
                out.append(_finding(con, a, min(cheaper, key=lambda b: b.per_call)))
    return out


def _finding(con: duckdb.DuckDBPyConnection, a: _Model, b: _Model) -> Finding:
    params = {"price_id": b.price_id, "workflow": a.workflow, "agent": a.agent, "model": a.model}
    what_if, first, last, reqs, traces, sessions = con.execute(_WHAT_IF_SQL, params).fetchall()[0]
    what_if = money(what_if).quantize(PLACES)
    return Finding(
        KIND,
        {"workflow": a.workflow, "agent": a.agent, "model": a.model},
        (a.cost - what_if).quantize(PLACES),
        f"cost of these calls less the same tokens at {b.model}'s price",
        FIX.format(cheap=b.model),
        first,
        last,
        a.calls,
        ids(reqs),
        ids(traces),
        ids(sessions),
        what_if_usd=what_if,
        detail={
            "cheaper_model": b.model,
            "acceptance": {m.model: round(m.accepted / m.outcomes, 4) for m in (a, b)},
            "outcomes": {m.model: m.outcomes for m in (a, b)},
        },
    )
