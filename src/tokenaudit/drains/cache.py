"""``cache_miss``: the same long prefix re-sent uncached where the provider offers prompt
caching. Per model and ``prefix_hash`` (system prompt + tools): calls that read nothing
from the cache although a successful call with the same prefix came less than
``ttl_seconds`` (default 300, the shortest cache lifetime) before, with at least
``min_prefix_tokens`` (default 1024, the providers' minimum) of input; a prefix with at
least ``min_misses`` (default 5) such misses is a finding.

The prefix's length is not logged: it is taken as the smallest input among its calls (the
shared prefix cannot be longer). Waste: those tokens, on every missed call, at the input
price less the cache-read price (what-if: the same calls with the prefix read from cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenaudit.drains.base import CACHING_PROVIDERS, PLACES, Finding, Settings, ids, money

if TYPE_CHECKING:
    import duckdb

KIND = "cache_miss"
FIX = "mark the prefix cacheable (cache_control / a stable prompt prefix) and keep it unchanged"

# Only successful calls: a miss is one, and so is the call it should have read from. The
# window sorts only the columns it orders by; the misses are joined back by rowid.
_SQL = """
WITH calls AS MATERIALIZED (
    SELECT rowid AS rid, model, prefix_hash, ts, cache_read_tokens, total_input,
        lag(ts) OVER (PARTITION BY model, prefix_hash ORDER BY ts, file_id, line_no) AS prev_ok
    FROM _dr WHERE status = 'ok' AND prefix_hash IS NOT NULL
        AND lower(coalesce(provider, '')) IN (SELECT unnest($providers))
), prefixes AS (
    SELECT model, prefix_hash, min(total_input) AS prefix_tokens FROM calls GROUP BY ALL
), misses AS (
    SELECT c.rid, x.prefix_tokens FROM calls c JOIN prefixes x USING (model, prefix_hash)
    WHERE c.cache_read_tokens = 0 AND c.prev_ok IS NOT NULL
        AND c.ts - c.prev_ok < to_seconds($ttl) AND x.prefix_tokens >= $min_prefix
)
SELECT d.model, d.prefix_hash, any_value(d.workflow), any_value(d.agent),
    any_value(d.prompt_version), count(*), min(d.ts), max(d.ts), any_value(m.prefix_tokens),
    sum(CAST(m.prefix_tokens * (p.input_mtok - coalesce(p.cache_read_mtok, p.input_mtok))
        * 0.000001 AS DECIMAL(38, 12))),
    sum(d.cost_usd), list(d.request_id ORDER BY d.ts, d.file_id, d.line_no),
    list(DISTINCT d.trace_id), list(DISTINCT d.session_id)
FROM misses m JOIN _dr d ON d.rowid = m.rid LEFT JOIN prices p ON p.price_id = d.price_id
GROUP BY d.model, d.prefix_hash HAVING count(*) >= $min_misses ORDER BY 10 DESC"""


def find(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Finding]:
    s = settings.of(KIND)
    params = {
        "ttl": s["ttl_seconds"],
        "min_prefix": int(s["min_prefix_tokens"]),
        "min_misses": int(s["min_misses"]),
        "providers": list(CACHING_PROVIDERS),
    }
    out = []
    for r in con.execute(_SQL, params).fetchall():
        model, prefix, wf, agent, version, calls, first, last, tokens, waste, cost = r[:11]
        reqs, traces, sessions = r[11:]
        waste = money(waste)
        out.append(
            Finding(
                KIND,
                {"workflow": wf, "model": model, "agent": agent, "prompt_version": version},
                waste,
                f"{tokens:,} prefix tokens on each missed call at the input price less the "
                "cache-read price",
                FIX,
                first,
                last,
                calls,
                ids(reqs),
                ids(traces),
                ids(sessions),
                what_if_usd=(money(cost) - waste).quantize(PLACES),
                detail={"prefix_hash": prefix, "prefix_tokens": tokens, "misses": calls},
            )
        )
    return out
