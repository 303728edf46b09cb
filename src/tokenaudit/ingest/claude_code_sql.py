# ruff: noqa: E501  (SQL text reads better unwrapped)
"""SQL for Claude Code session logs: reading a file's lines and turning them into stage rows.

``text_lines`` reads files' lines with exact line numbers in DuckDB (``split_lines`` is
the Python path for a file that is not valid UTF-8); ``EXTRACT_SQL`` parses the lines
that mention usage, once each; ``ROWS_SQL`` types them as call rows; ``stage_sql``
dedupes the calls and words the stage rows. Field sources and rules are described in
``ingest.claude_code``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.source import arrow_lines, line_blocks
from tokenaudit.model import NO_LOCAL_SQL, USAGE_STAGE_NAMES, q

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

# Only a line mentioning usage can carry a call: its mark in bytes and as a filter on ``line``.
USAGE_MARK = '"usage"'
HAS_USAGE = "contains(line, '\"usage\"')"

# The usage object as typed by json_transform. Every leaf is VARCHAR: a count keeps its
# text (12.5 is seen, not rounded) and a value of an unexpected type never fails the read.
_USAGE = {
    "input_tokens": "VARCHAR",
    "output_tokens": "VARCHAR",
    "cache_creation_input_tokens": "VARCHAR",
    "cache_read_input_tokens": "VARCHAR",
    "cache_creation": {
        "ephemeral_5m_input_tokens": "VARCHAR",
        "ephemeral_1h_input_tokens": "VARCHAR",
    },
    "service_tier": "VARCHAR",
    "speed": "VARCHAR",
}


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def struct_literal(struct: dict[str, Any]) -> str:
    return sql_text(json.dumps(struct, separators=(",", ":")))


# --- reading lines --------------------------------------------------------------------------


def text_lines(files: str, condition: str) -> str:
    """The lines of ``files`` (a SQL expression: a path or a list) meeting ``condition``.

    ``read_text`` reads each file whole, ``string_split`` cuts it at newlines and
    ``generate_subscripts`` numbers the pieces: exact 1-based line numbers per file,
    whatever the scan order (a carriage return stays at the line's end, which JSON
    parsing ignores). Columns: file_key (the path as given), line_no, line, bad.
    ``condition`` is SQL over ``line``.
    """
    return f"""(SELECT filename AS file_key, line_no, line, NULL::VARCHAR AS bad FROM (
        SELECT filename, unnest(parts) AS line, generate_subscripts(parts, 1) AS line_no
        FROM (SELECT filename, string_split(content, chr(10)) AS parts FROM read_text({files})))
    WHERE {condition})"""


def split_lines(con: duckdb.DuckDBPyConnection, src: Source, table: str, keep: str) -> None:
    """Exact path: split ``src`` into lines in Python (C-level, large blocks) and insert
    into ``table`` (line_no, line, bad) the lines whose bytes contain ``keep``.

    ``bad`` is 'invalid UTF-8' for a line that does not decode (its text is then NULL).
    """
    needle = keep.encode()
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT, line VARCHAR, bad VARCHAR)")
    for first, lines in line_blocks(src.data_path):
        kept = [
            (first + i, p[:-1] if p.endswith(b"\r") else p)
            for i, p in enumerate(lines)
            if needle in p
        ]
        if not kept:
            continue
        con.register("_split_raw", arrow_lines([n for n, _ in kept], [p for _, p in kept]))
        try:
            con.execute(
                f"INSERT INTO {table} SELECT line_no, line, CASE WHEN line IS NULL "
                "THEN 'invalid UTF-8' END FROM (SELECT line_no, try(decode(raw)) AS line "
                "FROM _split_raw)"
            )
        finally:
            con.unregister("_split_raw")


# --- from lines to call rows ----------------------------------------------------------------

_COUNTS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cw_flat", "cache_creation_input_tokens"),
    ("cr", "cache_read_input_tokens"),
    ("cw_5m", "cache_creation.ephemeral_5m_input_tokens"),
    ("cw_1h", "cache_creation.ephemeral_1h_input_tokens"),
)
_MAX_EXACT = 9007199254740992  # 2**53: counts above are not exact as DOUBLE

# The fields read from a line, in one parse (json_extract_string with a list of paths;
# an object comes back as its JSON text). A subagent's call echoed in its parent session
# sits under data.message (agent_progress).
PATHS = (
    "$.timestamp", "$.sessionId", "$.requestId", "$.isSidechain", "$.agentId", "$.version",
    "$.gitBranch", "$.cwd", "$.costUSD", "$.message.id", "$.message.model", "$.message.usage",
    "$.data.agentId", "$.data.agentType", "$.data.message.timestamp",
    "$.data.message.requestId", "$.data.message.isSidechain", "$.data.message.costUSD",
    "$.data.message.message.id", "$.data.message.message.model",
    "$.data.message.message.usage",
)  # fmt: skip
_P = {p: i + 1 for i, p in enumerate(PATHS)}


def _f(path: str, echo_path: str | None = None) -> str:
    """The field at ``path`` (or, for an echoed call, at ``echo_path``)."""
    if echo_path is None:
        return f"j[{_P[path]}]"
    return f"CASE WHEN echo THEN j[{_P[echo_path]}] ELSE j[{_P[path]}] END"


# The parsed lines: one parse each. A statement of its own: referenced in a filter and
# a projection of one statement, the extraction would run twice.
EXTRACT_SQL = f"""SELECT file_key, line_no, bad,
    CASE WHEN bad IS NULL THEN try(json_extract_string(line, {list(PATHS)})) END AS j
FROM __LINES__"""

# One row per line that carries a call, or might (invalid JSON mentioning usage).
ROWS_SQL = f"""
SELECT file_key, line_no, bad, echo, ts_text,
    CASE WHEN length(ts_text) = 24 AND ends_with(ts_text, 'Z') THEN TRY_CAST(left(ts_text, 23) AS TIMESTAMP)
         ELSE TRY_CAST(TRY_CAST(ts_text AS TIMESTAMPTZ) AS TIMESTAMP) END AS ts,
    NULLIF(session, '') AS session, NULLIF(req, '') AS req, side_text = 'true' AS side,
    NULLIF(agent_id, '') AS agent_id, NULLIF(agent_type, '') AS agent_type,
    NULLIF(version, '') AS version, NULLIF(git_branch, '') AS git_branch, NULLIF(cwd, '') AS cwd,
    cost_text, TRY_CAST(cost_text AS DECIMAL(38,12)) AS cost, NULLIF(msg_id, '') AS msg_id,
    NULLIF(trim(model_raw), '') AS model, NULLIF(u.service_tier, '') AS service_tier,
    NULLIF(u.speed, '') AS speed, u.cache_creation IS NOT NULL AS has_split,
    {", ".join(f"u.{f} AS t_{n}" for n, f in _COUNTS)},
    {", ".join(f"TRY_CAST(u.{f} AS DOUBLE) AS d_{n}" for n, f in _COUNTS)}
FROM (
    SELECT file_key, line_no, echo,
        CASE WHEN bad IS NOT NULL THEN bad
             WHEN j IS NULL THEN 'invalid JSON'
             WHEN u IS NULL THEN 'message.usage is not an object' END AS bad,
        {_f("$.timestamp", "$.data.message.timestamp")} AS ts_text,
        {_f("$.sessionId")} AS session,
        {_f("$.requestId", "$.data.message.requestId")} AS req,
        CASE WHEN echo THEN coalesce(j[{_P["$.data.message.isSidechain"]}], 'true')
             ELSE j[{_P["$.isSidechain"]}] END AS side_text,
        {_f("$.agentId", "$.data.agentId")} AS agent_id,
        CASE WHEN echo THEN j[{_P["$.data.agentType"]}] END AS agent_type,
        {_f("$.version")} AS version, {_f("$.gitBranch")} AS git_branch, {_f("$.cwd")} AS cwd,
        {_f("$.costUSD", "$.data.message.costUSD")} AS cost_text,
        {_f("$.message.id", "$.data.message.message.id")} AS msg_id,
        {_f("$.message.model", "$.data.message.message.model")} AS model_raw, u
    FROM (
        SELECT *, CASE WHEN starts_with(usage_text, '{{')
            THEN try(json_transform(usage_text, {struct_literal(_USAGE)})) END AS u
        FROM (
            SELECT *, CASE WHEN echo THEN j[{_P["$.data.message.message.usage"]}]
                ELSE j[{_P["$.message.usage"]}] END AS usage_text
            FROM (
                SELECT *, j[{_P["$.message.usage"]}] IS NULL AS echo
                FROM _cc_j
                WHERE j IS NULL OR j[{_P["$.message.usage"]}] IS NOT NULL
                    OR j[{_P["$.data.message.message.usage"]}] IS NOT NULL
            )
        )
    )
)
"""


def _count(name: str) -> str:
    """The count as BIGINT; NULL when it is not a whole number >= 0 (0 when absent)."""
    d = f"d_{name}"
    return (
        f"CASE WHEN t_{name} IS NULL THEN 0 WHEN {d} >= 0 AND {d} = floor({d}) "
        f"AND {d} < {_MAX_EXACT} THEN {d}::BIGINT END"
    )


def _count_reason(name: str, field: str) -> str:
    t, d = f"t_{name}", f"d_{name}"
    return f"""WHEN n_{name} IS NULL THEN CASE
            WHEN {d} < 0 THEN 'negative usage.{field}: ' || left({t}, 30)
            WHEN {d} = floor({d}) THEN 'usage.{field} out of range: ' || left({t}, 30)
            ELSE 'usage.{field} is not a whole number: ' || left({t}, 30) END"""


_SECRET_PATTERN = (
    r"(sk-(proj|ant|live|or)?-?[A-Za-z0-9_\-]{12,}|Bearer\s+[A-Za-z0-9._\-]{8,}|AKIA[0-9A-Z]{12,})"
)

# The call rows grouped into calls, the kept copy of each, as stage rows (plus file_key).
# __ATTRS__ maps file_key to the file's workflow, path session and agent.
_STAGE_SQL = """
WITH c AS (
    SELECT *,
        n_input AS input_tokens, n_cr AS cache_read_tokens,
        CASE WHEN has_split THEN n_cw_5m + greatest(n_cw_flat - n_cw_5m - n_cw_1h, 0)
             ELSE n_cw_flat END AS cache_write_tokens,
        CASE WHEN has_split THEN n_cw_1h ELSE 0 END AS cache_write_1h_tokens,
        n_output AS output_tokens
    FROM (SELECT *, {counts} FROM _cc_rows)
    WHERE NOT coalesce(model = '<synthetic>' AND bad IS NULL AND
        coalesce(d_input, 0) + coalesce(d_output, 0) + coalesce(d_cw_flat, 0) + coalesce(d_cr, 0)
        + coalesce(d_cw_5m, 0) + coalesce(d_cw_1h, 0) = 0, false)
), g AS (
    SELECT *,
        bad IS NULL AND ts IS NOT NULL AND n_input IS NOT NULL AND n_output IS NOT NULL
            AND n_cw_flat IS NOT NULL AND n_cr IS NOT NULL AND n_cw_5m IS NOT NULL
            AND n_cw_1h IS NOT NULL AS valid,
        input_tokens + output_tokens + cache_read_tokens + cache_write_tokens
            + cache_write_1h_tokens AS total,
        CASE WHEN bad IS NOT NULL OR (msg_id IS NULL AND req IS NULL) THEN 'l:' || line_no
             WHEN msg_id IS NULL THEN 'r:' || req
             WHEN min(req) OVER w <> max(req) OVER w AND bool_or(side) OVER w THEN 'm:' || msg_id
             ELSE 'm:' || msg_id || ':' || coalesce(req, '') END AS gkey
    FROM c
    WINDOW w AS (PARTITION BY file_key, msg_id)
), kept AS (
    SELECT k.*, a.workflow, a.path_session, a.in_subagents, a.path_agent
    FROM (
        SELECT * FROM g
        QUALIFY row_number() OVER (PARTITION BY file_key, gkey ORDER BY valid DESC,
            coalesce(side, false) ASC, total DESC NULLS LAST, cost DESC NULLS LAST,
            speed IS NOT NULL DESC, line_no ASC) = 1
    ) k JOIN __ATTRS__ a ON a.file_key = k.file_key
), tagged AS (
    SELECT *, '{{' || concat_ws(',',
            '"version":' || to_json(version),
            '"git_branch":' || to_json(git_branch),
            '"cwd":' || to_json(NULLIF(parse_filename(rtrim(cwd, '/\\')), '')),
            '"agent_id":' || to_json(coalesce(agent_id,
                CASE WHEN coalesce(side, in_subagents) THEN path_agent END)),
            '"speed":' || to_json(speed),
            '"anthropic_request_id":' || to_json(CASE WHEN msg_id IS NOT NULL THEN req END),
            CASE WHEN echo THEN '"via":"agent_progress"' END) || '}}' AS tags_raw
    FROM kept
)
SELECT file_key, line_no,
    CASE
        WHEN bad = 'invalid JSON' THEN 'invalid JSON (a malformed or truncated line mentioning usage)'
        WHEN bad IS NOT NULL THEN bad
        WHEN ts_text IS NULL THEN 'missing timestamp'
        WHEN ts IS NULL THEN 'invalid timestamp: ' || left(ts_text, 40)
        WHEN ts < TIMESTAMP '2000-01-01' OR ts >= TIMESTAMP '2100-01-01'
            THEN 'timestamp out of range: ' || left(ts_text, 40)
        {count_reasons}
        WHEN cost_text IS NOT NULL AND cost IS NULL THEN 'costUSD is not a number: ' || left(cost_text, 30)
        WHEN model IS NULL THEN 'missing message.model'
        WHEN model = '<synthetic>'
            THEN 'model <synthetic> (a placeholder Claude Code writes) with non-zero usage'
    END AS reason,
    ts, coalesce(msg_id, req) AS request_id, coalesce(session, path_session) AS trace_id,
    NULL AS span_id, NULL AS parent_span_id, coalesce(session, path_session) AS session_id,
    CASE WHEN starts_with(model, 'arn:aws:bedrock:') OR (contains(model, 'anthropic.')
            AND regexp_matches(model, '^([a-z]+\\.)?anthropic\\.')) THEN 'aws'
         WHEN contains(model, '@') THEN 'google'
         ELSE 'anthropic' END AS provider,
    model, service_tier, workflow, NULL AS team, NULL AS tenant, NULL AS "user",
    CASE WHEN NOT coalesce(side, in_subagents) THEN 'main'
         WHEN agent_type IS NOT NULL THEN agent_type
         WHEN starts_with(coalesce(agent_id, path_agent, ''), 'acompact') THEN 'compact'
         WHEN agent_id IS NULL AND path_agent IS NULL THEN 'sidechain'
         ELSE 'subagent' END AS agent,
    NULL AS prompt_version, NULL AS environment, NULL AS project,
    NULL AS api_key_hash, NULL AS api_key_last4,
    input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens,
    0 AS reasoning_tokens, 1 AS attempt, 'ok' AS status, NULL AS error_type, NULL AS http_status,
    NULL AS latency_ms, NULL AS outcome, NULL AS prompt_hash, NULL AS prefix_hash,
    NULL AS local_input_tokens, cost AS reported_cost_usd,
    CASE WHEN tags_raw = '{{}}' THEN NULL
         WHEN contains(tags_raw, 'sk-') OR contains(tags_raw, 'Bearer') OR contains(tags_raw, 'AKIA')
            THEN regexp_replace(tags_raw, {secret}, '[redacted]', 'g')
         ELSE tags_raw END::JSON AS tags, {no_local}
FROM tagged
"""


def stage_sql(attrs: str) -> str:
    """Stage rows (with file_key) from ``_cc_rows``; ``attrs`` is the per-file relation."""
    return _STAGE_SQL.format(
        counts=", ".join(f"{_count(n)} AS n_{n}" for n, _ in _COUNTS),
        count_reasons="\n        ".join(_count_reason(n, f) for n, f in _COUNTS),
        secret=sql_text(_SECRET_PATTERN),
        no_local=NO_LOCAL_SQL,
    ).replace("__ATTRS__", attrs)


STAGE_COLS = ", ".join(q(c) for c in ("line_no", "reason", *USAGE_STAGE_NAMES))

CWDS_SQL = """SELECT file_key, list(cwd ORDER BY first) FROM (
    SELECT file_key, cwd, min(line_no) AS first FROM _cc_rows
    WHERE cwd IS NOT NULL GROUP BY file_key, cwd
) GROUP BY file_key"""


def drop(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    for t in tables:
        con.execute(f"DROP TABLE IF EXISTS {t}")
