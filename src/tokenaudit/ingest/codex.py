# ruff: noqa: E501  (SQL text reads better unwrapped)
"""Codex CLI rollouts: ``~/.codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl``.

Each line is ``{"timestamp", "type", "payload"}`` with ``type`` ``session_meta``
(``payload.id`` the session id, ``cwd``, ``cli_version``, ``originator``,
``source``, ``model_provider``, ``git.branch``), ``turn_context`` (``model``,
``effort``, ``cwd``), ``response_item``, ``event_msg`` or ``compacted``. Usage is in
``event_msg`` lines whose ``payload.type`` is ``token_count``::

    {"timestamp":"2026-02-23T11:41:38.914Z","type":"event_msg","payload":{"type":"token_count",
     "info":{"total_token_usage":{"input_tokens":17102,"cached_input_tokens":3456,
     "output_tokens":281,"reasoning_output_tokens":141,"total_tokens":17383},
     "last_token_usage":{...the same for this turn...},"model_context_window":258400},
     "rate_limits":{...}}}

A call is a token_count event whose cumulative ``total_token_usage`` moved: Codex
repeats the event with identical totals (counted once), and writes events with
``info: null`` that only carry rate limits (not calls). The call's usage is
``last_token_usage``, else the difference of the cumulative totals; events with
no tokens at all are not calls. A subagent session (``thread_spawn`` in its
session_meta) starts by replaying its parent's events within one second: those
are skipped, as ccusage does. The model is the event's own (``info.model``,
``payload.model``), else that of the latest ``turn_context``.

Token semantics are OpenAI's: ``input_tokens`` includes ``cached_input_tokens``
(input_tokens = input - cached; cache_read = cached, at most the input) and
``output_tokens`` includes ``reasoning_output_tokens`` (reasoning_tokens).

Attribution: session_id = trace_id = session_meta ``id`` (else the file name's
UUID); workflow = base name of the session's ``cwd``; provider =
``model_provider`` (default openai); agent ``main`` or ``subagent``; tags =
cli_version, originator, source, git_branch, effort. request_id =
``codex:<session>:<cumulative total_tokens>`` (the line number when there are no
totals): a re-read of a grown rollout or a replayed session counts each call once.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.claude_code_sql import split_lines, sql_text, text_lines
from tokenaudit.model import NO_LOCAL_SQL, USAGE_STAGE_NAMES, q, stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

NAME = "codex"
ENTRY_TYPES = {"session_meta", "turn_context", "response_item", "event_msg", "compacted"}

_USAGE_FIELDS = (
    ("in", "input_tokens"),
    ("cached", "cached_input_tokens"),
    ("out", "output_tokens"),
    ("reason", "reasoning_output_tokens"),
    ("total", "total_tokens"),
)
PATHS = (
    "$.timestamp", "$.type", "$.payload.type", "$.payload.id", "$.payload.cwd",
    "$.payload.cli_version", "$.payload.originator", "$.payload.source",
    "$.payload.model_provider", "$.payload.git.branch", "$.payload.model", "$.payload.effort",
    "$.payload.info", "$.payload.info.model",
    *(f"$.payload.info.total_token_usage.{f}" for _, f in _USAGE_FIELDS),
    *(f"$.payload.info.last_token_usage.{f}" for _, f in _USAGE_FIELDS),
)  # fmt: skip
_P = {p: i + 1 for i, p in enumerate(PATHS)}
_MAX_EXACT = 9007199254740992


def _j(path: str) -> str:
    return f"j[{_P[path]}]"


# The lines that matter, parsed once each (a statement of its own, see claude_code).
_EXTRACT_SQL = f"""CREATE OR REPLACE TEMP TABLE _cx_j AS
SELECT line_no, bad, CASE WHEN bad IS NULL THEN try(json_extract_string(line, {list(PATHS)})) END AS j,
    coalesce(contains(line, '"token_count"'), true) AS mentions_count
FROM __LINES__"""

_TOTAL = [f"t_{n}" for n, _ in _USAGE_FIELDS]
_LAST = [f"l_{n}" for n, _ in _USAGE_FIELDS]


def _num(path: str) -> str:
    return f"TRY_CAST({_j(path)} AS DOUBLE)"


# Lines as typed rows, with the session's state at each line (latest turn_context model,
# effort and cwd) carried by windows; then the token_count events that carry usage
# (``info`` null: rate limits only, not a call), each with the previous event's totals.
_ROWS_SQL = f"""CREATE OR REPLACE TEMP TABLE _cx_rows AS
WITH typed AS (
    SELECT line_no, bad, j, mentions_count, {_j("$.type")} AS kind, {_j("$.timestamp")} AS ts_text,
        {_j("$.type")} = 'event_msg' AND {_j("$.payload.type")} = 'token_count' AS is_count,
        {", ".join(f"{_j(f'$.payload.info.total_token_usage.{f}')} AS tt_{n}" for n, f in _USAGE_FIELDS)},
        {", ".join(f"{_j(f'$.payload.info.last_token_usage.{f}')} AS lt_{n}" for n, f in _USAGE_FIELDS)}
    FROM _cx_j
), state AS (
    SELECT *,
        last_value(CASE WHEN kind = 'turn_context' THEN NULLIF(trim({_j("$.payload.model")}), '') END
            IGNORE NULLS) OVER w AS ctx_model,
        last_value(CASE WHEN kind = 'turn_context' THEN NULLIF(trim({_j("$.payload.effort")}), '') END
            IGNORE NULLS) OVER w AS effort,
        last_value(CASE WHEN kind IN ('turn_context', 'session_meta') THEN NULLIF({_j("$.payload.cwd")}, '') END
            IGNORE NULLS) OVER w AS cwd
    FROM typed
    WINDOW w AS (ORDER BY line_no ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), events AS (
    SELECT *, {", ".join(f"TRY_CAST(tt_{n} AS DOUBLE) AS t_{n}" for n, _ in _USAGE_FIELDS)},
        {", ".join(f"TRY_CAST(lt_{n} AS DOUBLE) AS l_{n}" for n, _ in _USAGE_FIELDS)},
        TRY_CAST(TRY_CAST(ts_text AS TIMESTAMPTZ) AS TIMESTAMP) AS ts
    FROM state
    WHERE is_count AND bad IS NULL AND j IS NOT NULL
        AND ({" OR ".join(f"tt_{n} IS NOT NULL OR lt_{n} IS NOT NULL" for n, _ in _USAGE_FIELDS)})
), ordered AS (
    SELECT *, {", ".join(f"lag(t_{n}) OVER o AS p_{n}" for n, _ in _USAGE_FIELDS)},
        date_trunc('second', ts) AS sec, row_number() OVER o AS k
    FROM events
    WINDOW o AS (ORDER BY line_no)
), firsts AS (
    SELECT *, first_value(sec) OVER (ORDER BY line_no) AS first_sec,
        nth_value(sec, 2) OVER (ORDER BY line_no ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
            AS second_sec
    FROM ordered
)
SELECT *,
    t_total IS NOT NULL AND {" AND ".join(f"t_{n} IS NOT DISTINCT FROM p_{n}" for n, _ in _USAGE_FIELDS)}
        AS repeat,
    -- a subagent session's opening replay of its parent: the leading events of its first
    -- second, when the first two events share it
    $subagent AND first_sec = second_sec AND sec = first_sec
        AND k < coalesce(min(CASE WHEN sec IS DISTINCT FROM first_sec THEN k END) OVER (), k + 1)
        AS replay
FROM firsts
UNION ALL BY NAME
SELECT line_no, bad, j, ts_text, true AS is_count, NULL::TIMESTAMP AS ts
FROM typed WHERE (bad IS NOT NULL OR j IS NULL) AND mentions_count
"""


def _count(name: str) -> str:
    """The turn's count: last_token_usage, else the difference of the cumulative totals."""
    d = f"CASE WHEN has_last THEN l_{name} ELSE t_{name} - coalesce(p_{name}, 0) END"
    return d


_STAGE_SQL = f"""
WITH c AS (
    SELECT *, l_in IS NOT NULL OR l_out IS NOT NULL OR l_total IS NOT NULL AS has_last
    FROM _cx_rows WHERE NOT coalesce(repeat, false) AND NOT coalesce(replay, false)
), d AS (
    SELECT *, {", ".join(f"{_count(n)} AS d_{n}" for n, _ in _USAGE_FIELDS)},
        {", ".join(f"CASE WHEN has_last THEN lt_{n} ELSE tt_{n} END AS x_{n}" for n, _ in _USAGE_FIELDS)}
    FROM c
), v AS (
    SELECT *,
        CASE
            WHEN bad IS NOT NULL THEN bad
            WHEN j IS NULL THEN 'invalid JSON (a malformed or truncated line)'
            {" ".join(f"WHEN x_{n} IS NOT NULL AND d_{n} IS NULL THEN 'usage.{f} is not a number: ' || left(x_{n}, 30)" for n, f in _USAGE_FIELDS)}
            {" ".join(f"WHEN d_{n} < 0 AND has_last THEN 'negative last_token_usage.{f}: ' || left(x_{n}, 30)" for n, f in _USAGE_FIELDS)}
            {" ".join(f"WHEN d_{n} < 0 THEN 'total_token_usage.{f} went down (' || p_{n}::BIGINT || ' to ' || t_{n}::BIGINT || ')'" for n, f in _USAGE_FIELDS)}
            {" ".join(f"WHEN d_{n} <> floor(d_{n}) OR d_{n} >= {_MAX_EXACT} THEN 'usage.{f} is not a whole number: ' || left(x_{n}, 30)" for n, f in _USAGE_FIELDS)}
            WHEN ts_text IS NULL THEN 'missing timestamp'
            WHEN ts IS NULL THEN 'invalid timestamp: ' || left(ts_text, 40)
            WHEN ts < TIMESTAMP '2000-01-01' OR ts >= TIMESTAMP '2100-01-01'
                THEN 'timestamp out of range: ' || left(ts_text, 40)
            WHEN model IS NULL THEN 'missing model (no turn_context before this token_count)'
        END AS reason
    FROM (
        SELECT *,
            coalesce(NULLIF(trim({_j("$.payload.info.model")}), ''), CASE WHEN is_count THEN NULLIF(trim({_j("$.payload.model")}), '') END, ctx_model) AS model
        FROM d
    )
    WHERE bad IS NOT NULL OR j IS NULL
        OR coalesce(d_in, 0) <> 0 OR coalesce(d_cached, 0) <> 0 OR coalesce(d_out, 0) <> 0
        OR coalesce(d_reason, 0) <> 0 OR x_in IS NOT NULL AND d_in IS NULL
        OR x_out IS NOT NULL AND d_out IS NULL
)
SELECT line_no, reason, ts,
    CASE WHEN $session IS NOT NULL THEN 'codex:' || $session || ':'
        || coalesce(t_total::BIGINT::VARCHAR, 'line' || line_no) END AS request_id,
    $session AS trace_id, NULL AS span_id, NULL AS parent_span_id, $session AS session_id,
    $provider AS provider, model, NULL AS service_tier,
    coalesce(NULLIF(parse_filename(rtrim(cwd, '/\\')), ''), $workflow) AS workflow,
    NULL AS team, NULL AS tenant, NULL AS "user",
    CASE WHEN $subagent THEN 'subagent' ELSE 'main' END AS agent,
    NULL AS prompt_version, NULL AS environment, NULL AS project,
    NULL AS api_key_hash, NULL AS api_key_last4,
    CASE WHEN reason IS NULL THEN (coalesce(d_in, 0) - least(coalesce(d_cached, 0), coalesce(d_in, 0)))::BIGINT END
        AS input_tokens,
    CASE WHEN reason IS NULL THEN least(coalesce(d_cached, 0), coalesce(d_in, 0))::BIGINT END
        AS cache_read_tokens,
    0 AS cache_write_tokens, 0 AS cache_write_1h_tokens,
    CASE WHEN reason IS NULL THEN coalesce(d_out, 0)::BIGINT END AS output_tokens,
    CASE WHEN reason IS NULL THEN coalesce(d_reason, 0)::BIGINT END AS reasoning_tokens,
    1 AS attempt, 'ok' AS status, NULL AS error_type, NULL AS http_status, NULL AS latency_ms,
    NULL AS outcome, NULL AS prompt_hash, NULL AS prefix_hash, NULL AS local_input_tokens,
    NULL AS reported_cost_usd,
    CASE WHEN tags_raw = '{{}}' THEN NULL ELSE tags_raw END::JSON AS tags, {NO_LOCAL_SQL}
FROM (
    SELECT *, '{{' || concat_ws(',',
            '"cli_version":' || to_json($cli_version::VARCHAR),
            '"originator":' || to_json($originator::VARCHAR),
            '"source":' || to_json($source::VARCHAR),
            '"git_branch":' || to_json($git_branch::VARCHAR),
            '"effort":' || to_json(effort)) || '}}' AS tags_raw
    FROM v
)
"""

_META_SQL = f"""SELECT {_j("$.payload.id")}, {_j("$.payload.cwd")}, {_j("$.payload.cli_version")},
    {_j("$.payload.originator")}, {_j("$.payload.source")}, {_j("$.payload.model_provider")},
    {_j("$.payload.git.branch")}
FROM _cx_j WHERE {_j("$.type")} = 'session_meta' ORDER BY line_no LIMIT 1"""

_UUID_RE = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I)
_SECRET_RE = re.compile(r"(sk-[A-Za-z0-9_\-]{12,}|Bearer\s+\S{8,}|AKIA[0-9A-Z]{12,})")


def session_from_name(path: PurePath) -> str | None:
    stem = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    m = _UUID_RE.search(stem)
    return m.group(1) if m else (stem or None)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return _SECRET_RE.sub("[redacted]", text)


def _keep(line_filter: list[str]) -> str:
    return " OR ".join(f"contains(line, {sql_text(m)})" for m in line_filter)


class CodexIngester:
    name = NAME
    kind = "usage"
    detects = (
        "Codex CLI rollout JSON lines (~/.codex/sessions/**/rollout-*.jsonl): "
        "{timestamp, type: session_meta|turn_context|event_msg..., payload}"
    )

    def sniff(self, src: Source) -> bool:
        head = src.head
        start = len(head) - len(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
        if head[start : start + 1] != b"{":
            return False
        for _ in range(20):
            end = head.find(b"\n", start)
            if end < 0:
                if len(head) >= (256 << 10):
                    break
                end = len(head)
            raw = head[start:end].strip()
            start = end + 1
            if raw:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    return False
                return (
                    isinstance(obj, dict)
                    and obj.get("type") in ENTRY_TYPES
                    and isinstance(obj.get("payload"), dict)
                    and "timestamp" in obj
                )
            if start >= len(head):
                break
        text = head.decode("utf-8", errors="replace")
        return bool(
            re.match(
                r'\s*\{"timestamp":"[^"]*","type":"(session_meta|turn_context)","payload":', text
            )
        )

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        import duckdb

        con.execute(stage_ddl())
        marks = ['"token_count"', '"turn_context"', '"session_meta"']
        try:
            try:
                lines = text_lines("$path", _keep(marks))
                con.execute(_EXTRACT_SQL.replace("__LINES__", lines), {"path": str(src.data_path)})
            except duckdb.Error:  # not valid UTF-8: split in Python
                split_lines(con, src, "_cx_lines", "")
                con.execute(
                    _EXTRACT_SQL.replace(
                        "__LINES__",
                        f"(SELECT line_no, line, bad FROM _cx_lines WHERE bad IS NOT NULL OR {_keep(marks)})",
                    )
                )
            meta = con.execute(_META_SQL).fetchall()
            sid, cwd, cli, originator, source, provider, branch = meta[0] if meta else (None,) * 7
            session = _clean(sid) or session_from_name(PurePath(src.path))
            subagent = bool(source and "thread_spawn" in source)
            con.execute(_ROWS_SQL, {"subagent": subagent})
            cols = ", ".join(q(c) for c in ("line_no", "reason", *USAGE_STAGE_NAMES))
            con.execute(
                f"INSERT INTO stage ({cols}) SELECT {cols} FROM ({_STAGE_SQL})",
                {
                    "session": session,
                    "provider": (_clean(provider) or "openai").lower(),
                    "workflow": PurePath(str(cwd).rstrip("/\\")).name if cwd else None,
                    "subagent": subagent,
                    "cli_version": _clean(cli),
                    "originator": _clean(originator),
                    "source": None if subagent else _clean(source),
                    "git_branch": _clean(branch),
                },
            )
        finally:
            for t in ("_cx_j", "_cx_rows", "_cx_lines"):
                con.execute(f"DROP TABLE IF EXISTS {t}")
        return int(con.execute("SELECT count(*) FROM stage").fetchall()[0][0])


INGESTER = CodexIngester()
INGESTERS: tuple[Ingester, ...] = (INGESTER,)
