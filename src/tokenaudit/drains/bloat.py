"""``context_bloat``: input far above the workflow's normal, or growing turn after turn.

* **session**: a session (per agent) of at least ``min_turns`` (default 6) calls whose input
  grows to ``growth`` (default 4) times its first turn's, rising on at least
  ``rising_share`` (0.8) of its turns: the history is re-sent and never trimmed. Waste: the
  input beyond the first turn's, at each call's input price.
* **request**: a single call with at least ``factor`` (default 5) times the median input
  of its workflow and agent (over at least ``min_calls`` calls), outside such sessions;
  one finding per workflow and agent. Waste: the input beyond the median, at the call's
  input price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.drains.base import INPUT_COST_SQL, Finding, Settings, ids, share_of

if TYPE_CHECKING:
    import duckdb

KIND = "context_bloat"
FIX_SESSION = "trim or summarise the conversation history instead of re-sending all of it"
FIX_REQUEST = "cap what goes into the prompt (retrieval top-k, document size) for this workflow"

# The window sorts only the columns it orders by; the flagged sessions' calls are joined
# back by rowid for their costs and ids.
_SESSIONS_SQL = f"""
WITH turns AS MATERIALIZED (
    SELECT rowid AS rid, session_id, agent, ts, file_id, line_no, total_input,
        total_input > lag(total_input) OVER w AS rising,
        first_value(total_input) OVER w AS first_input
    FROM _dr WHERE session_id IS NOT NULL AND status = 'ok' AND total_input > 0
        AND session_id IN (  -- only sessions long enough to qualify
            SELECT session_id FROM _dr WHERE session_id IS NOT NULL AND status = 'ok'
                AND total_input > 0 GROUP BY session_id HAVING count(*) >= $min_turns)
    WINDOW w AS (PARTITION BY session_id, agent ORDER BY ts, file_id, line_no)
), s AS (
    SELECT session_id, agent, count(*) AS turns,
        arg_max(total_input, (ts, file_id, line_no)) AS last_input,
        any_value(first_input) AS first_input,
        count(*) FILTER (WHERE rising) / (count(*) - 1) AS rising_share
    FROM turns GROUP BY session_id, agent HAVING count(*) >= $min_turns
), hit AS (
    SELECT * FROM s WHERE last_input >= $growth * first_input AND rising_share >= $rising
)
SELECT h.session_id, h.agent, any_value(d.workflow), any_value(d.model), h.turns,
    h.last_input, h.first_input, h.rising_share,
    list(({INPUT_COST_SQL}, d.total_input - h.first_input, d.total_input)),
    min(d.ts), max(d.ts), list(d.request_id ORDER BY d.ts, d.file_id, d.line_no),
    list(DISTINCT d.trace_id)
FROM hit h JOIN turns t ON t.session_id = h.session_id AND t.agent IS NOT DISTINCT FROM h.agent
    JOIN _dr d ON d.rowid = t.rid LEFT JOIN prices p ON p.price_id = d.price_id
GROUP BY ALL ORDER BY h.session_id, h.agent"""

_SINGLES_SQL = f"""
WITH med AS (
    SELECT workflow, agent, quantile_disc(total_input, 0.5) AS med, count(*) AS n FROM _dr
    WHERE status = 'ok' AND total_input > 0 GROUP BY workflow, agent HAVING count(*) >= $min_calls
), big AS (
    SELECT d.*, m.med, {INPUT_COST_SQL} AS input_cost FROM _dr d JOIN med m
        ON d.workflow IS NOT DISTINCT FROM m.workflow AND d.agent IS NOT DISTINCT FROM m.agent
        LEFT JOIN prices p ON p.price_id = d.price_id
    WHERE d.status = 'ok' AND d.total_input >= $factor * m.med
        AND NOT EXISTS (SELECT 1 FROM _bloated x
                        WHERE x.s = d.session_id AND x.a IS NOT DISTINCT FROM d.agent)
)
SELECT workflow, agent, any_value(model), any_value(med), count(*), min(ts), max(ts),
    list((input_cost, total_input - med, total_input)),
    list(request_id ORDER BY ts, file_id, line_no), list(DISTINCT trace_id),
    list(DISTINCT session_id), max(total_input)
FROM big GROUP BY workflow, agent ORDER BY workflow, agent"""


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    out = []
    rows = con.execute(
        _SESSIONS_SQL,
        {"min_turns": int(s["min_turns"]), "growth": s["growth"], "rising": s["rising_share"]},
    ).fetchall()
    con.execute("CREATE OR REPLACE TEMP TABLE _bloated (s VARCHAR, a VARCHAR)")
    for r in rows:
        session, agent, wf, model, turns, last, first, rising, waste = r[:9]
        first_seen, last_seen, reqs, traces = r[9:]
        con.execute("INSERT INTO _bloated VALUES (?, ?)", [session, agent])
        out.append(
            Finding(
                KIND,
                {"workflow": wf, "agent": agent, "model": model, "session": session},
                share_of(waste),
                "input beyond the first turn's, at each call's input price",
                FIX_SESSION,
                first_seen,
                last_seen,
                turns,
                ids(reqs),
                ids(traces),
                [session],
                detail={
                    "unit": "session",
                    "first_input": first,
                    "last_input": last,
                    "growth": round(last / first, 2),
                    "rising_share": round(rising, 3),
                },
            )
        )
    params = {"factor": s["factor"], "min_calls": int(s["min_calls"])}
    for r in con.execute(_SINGLES_SQL, params).fetchall():
        wf, agent, model, med, calls, first_seen, last_seen, waste, reqs, traces, sess, top = r
        out.append(
            Finding(
                KIND,
                {"workflow": wf, "agent": agent, "model": model},
                share_of(waste),
                "input beyond the workflow agent's median, at each call's input price",
                FIX_REQUEST,
                first_seen,
                last_seen,
                calls,
                ids(reqs),
                ids(traces),
                ids(sess),
                detail={"unit": "request", "median_input": med, "largest_input": top},
            )
        )
    con.execute("DROP TABLE IF EXISTS _bloated")
    return out
