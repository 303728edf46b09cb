"""``retry_storm``: bursts of failed attempts: a trace (or, without one, a workflow's same
prompt) with at least ``min_failures`` (default 3) failed calls within ``window_seconds``
(default 900). A failure retried once and then successful is normal traffic, not a storm.

Waste: the cost of the failed attempts (often $0: most failures carry no tokens; their
cost is rate limits and latency, shown as the attempt count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.drains.base import Finding, Settings, ids, money

if TYPE_CHECKING:
    import duckdb

KIND = "retry_storm"
FIX = "retry with exponential backoff and jitter, cap attempts, and stop on non-retryable errors"

_SQL = """
WITH keyed AS (
    SELECT *, coalesce(trace_id, session_id,
                       workflow || ':' || coalesce(prompt_hash, request_id)) AS skey
    FROM _dr
), failed AS (
    SELECT skey, count(*) AS failures, min(ts) AS first_fail, max(ts) AS last_fail
    FROM keyed WHERE status = 'error' GROUP BY skey
    HAVING count(*) >= $min AND max(ts) - min(ts) <= to_seconds($window)
)
SELECT any_value(k.workflow) AS workflow, any_value(k.model) AS model, f.failures,
    count(*) AS calls, min(k.ts), max(k.ts),
    sum(k.cost_usd) FILTER (WHERE k.status = 'error') AS waste,
    bool_or(k.status = 'ok') AS recovered,
    list(k.request_id ORDER BY k.ts, k.file_id, k.line_no), list(DISTINCT k.trace_id),
    list(DISTINCT k.session_id), mode(k.http_status) FILTER (WHERE k.status = 'error')
FROM keyed k JOIN failed f USING (skey)
WHERE k.ts BETWEEN f.first_fail - INTERVAL 1 MINUTE AND f.last_fail + INTERVAL 5 MINUTE
GROUP BY f.skey, f.failures ORDER BY f.failures DESC, 5"""


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    out = []
    params = {"min": int(s["min_failures"]), "window": s["window_seconds"]}
    for r in con.execute(_SQL, params).fetchall():
        wf, model, failures, calls, first, last, waste, recovered, reqs, traces, sessions, http = r
        out.append(
            Finding(
                KIND,
                {"workflow": wf, "model": model},
                money(waste),
                "cost of the failed attempts",
                FIX,
                first,
                last,
                calls,
                ids(reqs),
                ids(traces),
                ids(sessions),
                detail={"failures": failures, "recovered": bool(recovered), "http_status": http},
            )
        )
    return out
