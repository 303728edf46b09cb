"""``rejected_work``: spend whose outcome was rejected or escalated, where that is far from
normal. Per workflow and prompt version (and per workflow and model): a group with at least
``min_outcomes`` (default 20) traces with an outcome whose rejected-or-escalated share is at
least ``share`` (default 0.5) and at least ``over_baseline`` (default 2) times the share of
the rest of its workflow. Every workflow's rejected spend is in ``report`` (outcome columns);
a finding is a group that stands out.

Waste: the cost of every call of the group's rejected or escalated traces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.drains.base import Finding, Settings, ids, money

if TYPE_CHECKING:
    import duckdb

KIND = "rejected_work"
FIX = "roll back or fix this {dim} ({value}): most of its work is rejected or escalated"

_SQL = """
WITH t AS (
    SELECT workflow, {dim} AS value, tkey, any_value(trace_outcome) AS outcome
    FROM _dr WHERE trace_outcome IS NOT NULL AND {dim} IS NOT NULL GROUP BY ALL
), g AS (
    SELECT workflow, value, count(*) AS n,
        count(*) FILTER (WHERE outcome IN ('rejected', 'escalated')) AS bad
    FROM t GROUP BY workflow, value
), w AS (
    SELECT workflow, sum(n) AS n, sum(bad) AS bad FROM g GROUP BY workflow
), flagged AS (
    SELECT g.workflow, g.value, g.n, g.bad, g.bad / g.n AS share,
        CASE WHEN w.n > g.n THEN (w.bad - g.bad) / (w.n - g.n) END AS baseline
    FROM g JOIN w USING (workflow)
    WHERE g.n >= $min AND g.bad / g.n >= $share
        AND (w.n = g.n OR g.bad / g.n >= $over * (w.bad - g.bad) / (w.n - g.n))
)
SELECT f.workflow, f.value, f.n, f.bad, f.share, f.baseline, count(*), min(d.ts), max(d.ts),
    sum(d.cost_usd) FILTER (WHERE d.trace_outcome IN ('rejected', 'escalated')),
    list(d.request_id ORDER BY d.ts, d.file_id, d.line_no), list(DISTINCT d.trace_id),
    list(DISTINCT d.session_id)
FROM flagged f JOIN _dr d ON d.workflow IS NOT DISTINCT FROM f.workflow AND d.{dim} = f.value
GROUP BY ALL ORDER BY 10 DESC NULLS LAST"""


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    params = {"min": int(s["min_outcomes"]), "share": s["share"], "over": s["over_baseline"]}
    out = []
    seen: set[str] = set()
    for dim in ("prompt_version", "model"):
        for r in con.execute(_SQL.format(dim=dim), params).fetchall():
            wf, value, n, bad, share, baseline, calls, first, last, waste = r[:10]
            reqs, traces, sessions = r[10:]
            if dim == "model" and any(x in seen for x in ids(reqs)):
                continue  # the same calls as a prompt version already flagged
            seen.update(ids(reqs))
            out.append(
                Finding(
                    KIND,
                    {"workflow": wf, dim: value},
                    money(waste),
                    "cost of the group's rejected or escalated traces",
                    FIX.format(dim=dim.replace("_", " "), value=value),
                    first,
                    last,
                    calls,
                    ids(reqs),
                    ids(traces),
                    ids(sessions),
                    detail={
                        "outcomes": n,
                        "rejected_or_escalated": bad,
                        "share": round(share, 4),
                        "workflow_baseline": None if baseline is None else round(baseline, 4),
                    },
                )
            )
    return out
