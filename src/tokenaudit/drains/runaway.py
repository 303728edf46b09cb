"""``runaway_loop``: a trace (or session, when calls carry no trace) whose call count is far
beyond its workflow's normal: more than ``max(min_calls, factor x p99)`` calls, where p99 is
the 99th percentile of the workflow's trace sizes (defaults 50 and 3): agent loops,
recursion, a job that never stops. Also reported: its spend velocity (dollars per hour).

Waste: the cost of the calls beyond the workflow's normal (p99) trace size, in time order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tokenaudit.drains.base import Finding, Settings, ids, money

if TYPE_CHECKING:
    import duckdb

KIND = "runaway_loop"
FIX = "cap steps per agent run (max iterations, a spend limit per trace) and alert on long runs"

_SQL = """
WITH sizes AS (
    SELECT workflow, tkey, count(*) AS n FROM _dr GROUP BY workflow, tkey
), normal AS (
    SELECT workflow, quantile_disc(n, 0.99) AS p99 FROM sizes GROUP BY workflow
), loops AS (
    SELECT s.workflow, s.tkey, s.n, n.p99 FROM sizes s JOIN normal n
        ON s.workflow IS NOT DISTINCT FROM n.workflow
    WHERE s.n > greatest($min_calls, $factor * n.p99)
), calls AS (
    SELECT d.*, l.p99, row_number() OVER (PARTITION BY d.tkey ORDER BY d.ts, d.file_id, d.line_no)
        AS k
    FROM _dr d JOIN loops l ON d.tkey = l.tkey
)
SELECT workflow, tkey, any_value(model), any_value(agent), count(*), any_value(p99),
    min(ts), max(ts), sum(cost_usd), sum(cost_usd) FILTER (WHERE k > p99),
    list(request_id ORDER BY ts, file_id, line_no), list(DISTINCT trace_id),
    list(DISTINCT session_id)
FROM calls GROUP BY workflow, tkey ORDER BY 10 DESC NULLS LAST"""


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    out = []
    params = {"min_calls": int(s["min_calls"]), "factor": s["factor"]}
    for r in con.execute(_SQL, params).fetchall():
        wf, _, model, agent, calls, p99, first, last, cost, waste, reqs, traces, sessions = r
        hours = max((last - first).total_seconds() / 3600, 1 / 60)
        out.append(
            Finding(
                KIND,
                {"workflow": wf, "model": model, "agent": agent},
                money(waste),
                f"cost of the calls beyond the workflow's normal trace size ({p99} calls, p99)",
                FIX,
                first,
                last,
                calls,
                ids(reqs),
                ids(traces),
                ids(sessions),
                detail={
                    "normal_calls_p99": p99,
                    "trace_cost_usd": money(cost),
                    "usd_per_hour": (money(cost) / Decimal(str(round(hours, 6)))).quantize(
                        Decimal("0.01")
                    ),
                },
            )
        )
    return out
