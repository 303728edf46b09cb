"""``retry_storm``: bursts of failed attempts: a trace (or, without one, a workflow's same
prompt) with at least ``min_failures`` (default 3) failed calls within ``window_seconds``
(default 900). A failure retried once and then successful is normal traffic, not a storm.

A burst is the failures that fall in such a window, joined while they are less than a window
apart; failures of the same trace outside it (a lone retry half an hour later) are not part
of it, and a trace can have several bursts. One finding per burst, with the trace's calls
from a minute before it to five minutes after; recovered: a call succeeded after it.

Waste: the cost of the burst's failed attempts (often $0: most failures carry no tokens;
their cost is rate limits and latency, shown as the attempt count).
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
), fails AS (
    SELECT skey, ts, count(*) OVER (PARTITION BY skey ORDER BY ts
        RANGE BETWEEN CURRENT ROW AND to_seconds($window) FOLLOWING) AS ahead
    FROM keyed WHERE status = 'error'
), stormy AS (  -- failures inside a window that holds at least $min of them
    SELECT skey, ts, lag(ts) OVER (PARTITION BY skey ORDER BY ts) AS prev FROM (
        SELECT skey, ts, ts - max(CASE WHEN ahead >= $min THEN ts END) OVER (
            PARTITION BY skey ORDER BY ts ROWS UNBOUNDED PRECEDING) AS since_start
        FROM fails
    ) WHERE since_start <= to_seconds($window)
), bursts AS (
    SELECT skey, burst, min(ts) AS first_fail, max(ts) AS last_fail FROM (
        SELECT skey, ts, sum(CASE WHEN prev IS NULL OR ts - prev > to_seconds($window)
                                  THEN 1 ELSE 0 END)
            OVER (PARTITION BY skey ORDER BY ts ROWS UNBOUNDED PRECEDING) AS burst
        FROM stormy
    ) GROUP BY skey, burst
)
SELECT any_value(k.workflow) AS workflow, any_value(k.model) AS model,
    count(*) FILTER (WHERE k.status = 'error' AND k.ts BETWEEN b.first_fail AND b.last_fail)
        AS failures,
    count(*), min(k.ts), max(k.ts),
    sum(k.cost_usd) FILTER (WHERE k.status = 'error'
                            AND k.ts BETWEEN b.first_fail AND b.last_fail) AS waste,
    bool_or(k.status = 'ok' AND k.ts > b.last_fail) AS recovered,
    list(k.request_id ORDER BY k.ts, k.file_id, k.line_no), list(DISTINCT k.trace_id),
    list(DISTINCT k.session_id),
    mode(k.http_status) FILTER (WHERE k.status = 'error'
                                AND k.ts BETWEEN b.first_fail AND b.last_fail)
FROM keyed k JOIN bursts b USING (skey)
WHERE k.ts BETWEEN b.first_fail - INTERVAL 1 MINUTE AND b.last_fail + INTERVAL 5 MINUTE
GROUP BY b.skey, b.burst ORDER BY failures DESC, 5"""


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
