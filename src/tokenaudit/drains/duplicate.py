"""``duplicate_call``: the same prompt to the same model in the same workflow again within a
short window (``window_seconds``, default 120), successful both times and not served from
cache (a repeat that read its prompt from the provider's cache is not a duplicate; the retry
of a failed call is not one either: it needs a successful earlier call).

One finding per chain of successful calls with the prompt (each within the window of the
previous) that has at least one such repeat. A call served from cache is not a duplicate,
but the prompt was still sent: a later uncached call within the window of it is one. Waste:
the cost of the chain's repeats that were not served from cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.drains.base import Finding, Settings, ids, money

if TYPE_CHECKING:
    import duckdb

KIND = "duplicate_call"
FIX = "deduplicate at the caller (idempotency key, debounce double submits) or cache the response"

_SQL = """
WITH ok AS (
    SELECT *, prev_ts IS NOT NULL AND ts - prev_ts <= to_seconds($window) AS follows
    FROM (
        SELECT *, lag(ts) OVER (PARTITION BY workflow, model, prompt_hash
                                ORDER BY ts, file_id, line_no) AS prev_ts
        FROM _dr WHERE status = 'ok' AND prompt_hash IN (
            -- only prompts sent more than once can repeat (most are unique)
            SELECT prompt_hash FROM _dr WHERE status = 'ok' AND prompt_hash IS NOT NULL
            GROUP BY prompt_hash HAVING count(*) > 1)
    )
), chained AS (
    SELECT *, follows AND cache_read_tokens = 0 AS repeat,
        sum(CASE WHEN follows THEN 0 ELSE 1 END) OVER (PARTITION BY workflow, model, prompt_hash
                                                       ORDER BY ts, file_id, line_no) AS chain
    FROM ok
)
SELECT workflow, model, any_value(agent) AS agent, prompt_hash, count(*) AS calls,
    min(ts) AS first_seen, max(ts) AS last_seen,
    sum(cost_usd) FILTER (WHERE repeat) AS waste,
    list(request_id ORDER BY ts, file_id, line_no) AS requests,
    list(DISTINCT trace_id) AS traces, list(DISTINCT session_id) AS sessions,
    count(*) FILTER (WHERE repeat) AS repeats
FROM chained GROUP BY workflow, model, prompt_hash, chain HAVING bool_or(repeat)
ORDER BY waste DESC NULLS LAST, first_seen"""


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    out = []
    for r in con.execute(_SQL, {"window": s["window_seconds"]}).fetchall():
        wf, model, agent, _, calls, first, last, waste, reqs, traces, sessions, repeats = r
        out.append(
            Finding(
                KIND,
                {"workflow": wf, "model": model, "agent": agent},
                money(waste),
                "cost of the repeated calls not served from cache (all but the first of the chain)",
                FIX,
                first,
                last,
                calls,
                ids(reqs),
                ids(traces),
                ids(sessions),
                detail={"repeats": repeats},
            )
        )
    return out
