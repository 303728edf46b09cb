# ruff: noqa: E501  (SQL text reads better unwrapped)
"""Claude Code session logs: ``~/.claude/projects/<project>/<session>.jsonl`` trees.

Claude Code writes one JSON line per event of a session: ``user``, ``assistant``,
``system``, ``progress``, ``file-history-snapshot``, ``queue-operation``,
``summary``. Model calls are the lines whose ``message.usage`` is set (assistant
lines: the Anthropic Messages response with ``id`` ``msg_…`` and ``model``, in an
envelope with ``requestId`` ``req_…``, ``sessionId``, ``timestamp``, ``isSidechain``,
``agentId``, ``version``, ``gitBranch``, ``cwd`` and, in old versions, ``costUSD``),
and the parent session's ``progress`` lines of ``data.type`` ``agent_progress``,
which echo a subagent's lines under ``data.message`` (``timestamp``, ``requestId``,
``message.{id, model, usage}``). Subagents also have their own file,
``<project>/<session>/subagents/agent-<id>.jsonl`` (``isSidechain`` true).
Sample call line (real, shortened)::

    {"isSidechain":false,"cwd":"/home/marco/projects/spotter","sessionId":"55604662-…",
     "version":"2.1.38","gitBranch":"master","message":{"model":"claude-opus-4-6",
     "id":"msg_01MKH1…","usage":{"input_tokens":3,"cache_creation_input_tokens":13835,
     "cache_read_input_tokens":11515,"cache_creation":{"ephemeral_5m_input_tokens":0,
     "ephemeral_1h_input_tokens":13835},"output_tokens":13,"service_tier":"standard"}},
     "requestId":"req_011CY1…","type":"assistant","timestamp":"2026-02-10T21:11:59.186Z"}

Token semantics are Anthropic's: ``input_tokens`` excludes cache reads and writes.
Cache writes are split by TTL from ``cache_creation`` when present (5-minute to
``cache_write_tokens``, 1-hour to ``cache_write_1h_tokens``; a flat count above
the split goes to the 5-minute column), else ``cache_creation_input_tokens`` is a
5-minute write. ``output_tokens`` includes thinking.

Dedupe (ccusage's rule; see docs_claude_code.md): one line per content block
repeats the call's ids and usage, early copies with a partial ``output_tokens``.
Lines are grouped by (message id, request id), by message id alone when a
sidechain replays a message under a new request id, by request id when there is
no message id; the copy kept is the non-sidechain one, then the largest total,
then the higher cost, then the one with ``speed``, then the first line. Lines
with neither id are calls of their own. ``request_id`` is the message id (else
the request id): the loader's cross-file rule then counts a call once when a
subagent file and its parent's ``agent_progress`` echo (or a resumed session's
copy) both carry it.

Attribution: session_id = trace_id = ``sessionId``; workflow = the project folder
(decoded to the base name of the directory it encodes, ``cwd`` being the key);
agent = ``main``, ``subagent``, ``compact`` (auto-compaction agents), ``sidechain``
(no agent id, e.g. /btw) or the echo's ``agentType``; tags = version, git_branch,
cwd (base name), agent_id, speed, anthropic_request_id, via (``agent_progress`` for
echoed calls). Message text, tool inputs and tool outputs are never read into the store.

Reading is DuckDB end to end: ``read_text`` + ``string_split`` give each file's
lines with exact line numbers, only lines containing ``"usage"`` are parsed, once
each (``json_extract_string`` with a fixed list of paths), and typing and grouping
are SQL. A file that is not valid UTF-8 is split into lines in Python (large
blocks, Arrow) instead. For a loader that loads many files in one go,
``load_many`` reads a whole tree in a few statements and one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.source import HEAD_BYTES
from tokenaudit.model import NO_LOCAL_SQL, USAGE_STAGE_NAMES, q, stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.load import FileResult
    from tokenaudit.ingest.source import Source
    from tokenaudit.pricing import PriceSettings

NAME = "claude-code"
USAGE_MARK = '"usage"'
_HAS_USAGE = "contains(line, '\"usage\"')"

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

ARROW_BLOCK = 64 << 20


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
    import pyarrow as pa

    needle = keep.encode()
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT, line VARCHAR, bad VARCHAR)")
    tail = b""
    line_no = 0
    with open(src.data_path, "rb") as f:
        while True:
            block = f.read(ARROW_BLOCK)
            if block:
                parts = (tail + block).split(b"\n")
                tail = parts.pop()
            else:
                parts = [tail] if tail else []
            kept = [
                (line_no + i, p[:-1] if p.endswith(b"\r") else p)
                for i, p in enumerate(parts, start=1)
                if needle in p
            ]
            line_no += len(parts)
            if kept:
                arrow = pa.table(
                    {
                        "line_no": pa.array([n for n, _ in kept], pa.int64()),
                        "raw": pa.array([p for _, p in kept], pa.binary()),
                    }
                )
                con.register("_split_raw", arrow)
                try:
                    con.execute(
                        f"INSERT INTO {table} SELECT line_no, line, CASE WHEN line IS NULL "
                        "THEN 'invalid UTF-8' END FROM (SELECT line_no, try(decode(raw)) AS line "
                        "FROM _split_raw)"
                    )
                finally:
                    con.unregister("_split_raw")
            if not block:
                break


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


_STAGE_COLS = ", ".join(q(c) for c in ("line_no", "reason", *USAGE_STAGE_NAMES))

_CWDS_SQL = """SELECT file_key, list(cwd ORDER BY first) FROM (
    SELECT file_key, cwd, min(line_no) AS first FROM _cc_rows
    WHERE cwd IS NOT NULL GROUP BY file_key, cwd
) GROUP BY file_key"""


# --- files, folders and workflows ----------------------------------------------------------


@dataclass(frozen=True)
class FilePlace:
    """Where a file sits in a Claude Code tree (from its path alone)."""

    folder: str | None  # the project folder's name (the one under projects/), or None
    parent: str  # the folder holding the session (a fallback workflow)
    session: str | None  # the session id the path names
    in_subagents: bool
    agent: str | None  # agent-<id>.jsonl -> <id>


def place_of(path: PurePath) -> FilePlace:
    parts = path.parts
    stem = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    in_sub = len(parts) >= 3 and parts[-2] == "subagents"
    session = parts[-3] if in_sub else stem
    holder = parts[-4] if in_sub and len(parts) >= 4 else (parts[-2] if len(parts) >= 2 else "")
    folder = None
    dirs = parts[:-1]
    if "projects" in dirs:
        i = len(dirs) - 1 - dirs[::-1].index("projects")
        if i + 1 < len(dirs):
            folder = dirs[i + 1]
    agent = stem[6:] if in_sub and stem.startswith("agent-") else None
    return FilePlace(folder, holder, session or None, in_sub, agent)


_HOME_PREFIX = re.compile(
    r"^(?:[A-Za-z]--Users-[^-]+-|-home-[^-]+-|-Users-[^-]+-|-root-|[A-Za-z]--|-)"
)


def encode_path(path: str) -> str:
    """Claude Code's project folder name for a directory (other characters to '-')."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def _path(cwd: str) -> PurePath:
    """A cwd as a path of its own flavour (Claude Code also runs on Windows)."""
    if "\\" in cwd or re.match(r"^[A-Za-z]:", cwd):
        return PureWindowsPath(cwd)
    return PurePosixPath(cwd)


def workflow_of(place: FilePlace, cwds: Iterable[str]) -> str | None:
    """The workflow of a file: the base name of the directory its project folder encodes.

    The folder name is lossy (``-home-u-my-app`` may be ``/home/u/my/app`` or
    ``/home/u/my-app``), so the ``cwd`` values in the file are the key: the cwd (or a
    parent of it) whose encoding is the folder name gives the base name. Without a
    match the folder name loses its home prefix (``-home-user-proj`` -> ``proj``). A
    file outside a ``projects/`` tree is named by its first cwd, else by its folder.
    """
    paths = [_path(c) for c in cwds if c and c.strip()]
    if place.folder is None:
        for p in paths:
            if p.name:
                return p.name
        return place.parent or None
    for p in paths:
        for candidate in (p, *p.parents):
            if encode_path(str(candidate)) == place.folder:
                return candidate.name or str(candidate)
    if place.folder.startswith("-") or re.match(r"^[A-Za-z]--", place.folder):
        return _HOME_PREFIX.sub("", place.folder, count=1) or place.folder
    return place.folder


def _attrs_rows(
    places: dict[str, FilePlace], cwds: dict[str, list[str]]
) -> list[tuple[str, str | None, str | None, bool, str | None]]:
    return [
        (key, workflow_of(p, cwds.get(key, [])), p.session, p.in_subagents, p.agent)
        for key, p in places.items()
    ]


# --- detection ------------------------------------------------------------------------------

_LINE_TYPES = {
    "user",
    "assistant",
    "system",
    "progress",
    "summary",
    "file-history-snapshot",
    "queue-operation",
}


def looks_like_claude_line(obj: Any) -> bool:
    if not isinstance(obj, dict) or "payload" in obj:  # Codex rollouts have a payload
        return False
    kind = obj.get("type")
    if kind in _LINE_TYPES and ("sessionId" in obj or "parentUuid" in obj):
        return True
    if kind == "file-history-snapshot" and "snapshot" in obj:
        return True
    if kind == "summary" and "leafUuid" in obj:
        return True
    message = obj.get("message")
    if isinstance(message, dict) and isinstance(message.get("usage"), dict):
        # a call line with a lean envelope (as in ccusage's fixtures)
        return kind == "assistant" or "requestId" in obj or "sessionId" in obj
    return False


def sniff_claude(head: bytes, lines: int = 40) -> bool:
    """A Claude Code file: one of its first lines has the session envelope.

    Lines are cut from the head's bytes one at a time (a 256 KiB head is not decoded
    whole); a first line longer than the head is judged by the envelope's keys.
    """
    start = len(head) - len(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    if head[start : start + 1] != b"{":
        return False
    seen = 0
    while seen < lines:
        end = head.find(b"\n", start)
        if end < 0:
            if len(head) >= HEAD_BYTES:
                break  # cut by the head: not parsed
            end = len(head)
        raw = head[start:end].strip()
        start = end + 1
        if raw:
            try:
                obj = json.loads(raw)
            except ValueError:
                return False
            if looks_like_claude_line(obj):
                return True
            seen += 1
        if start >= len(head):
            break
    if seen:
        return False
    text = head[:HEAD_BYTES].decode("utf-8", errors="replace")
    return '"sessionId":' in text and ('"parentUuid":' in text or '"isSidechain":' in text)


# --- the ingester ---------------------------------------------------------------------------

BATCH_BYTES = 512 << 20  # files read together per statement (bounds memory on big trees)


def _drop(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    for t in tables:
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _extract(con: duckdb.DuckDBPyConnection, sources: list[Source]) -> None:
    """``_cc_j``: the candidate lines of ``sources``, parsed once (file_key = data path).

    All files in one read_text; if that fails (a file not valid UTF-8), one by one,
    and a file that still fails is split into lines in Python.
    """
    import duckdb

    keys = [str(s.data_path) for s in sources]
    # try() costs a little on every line: first without it, again with it when a line is
    # not JSON, then file by file when a file is not UTF-8
    for sql in (
        EXTRACT_SQL.replace("try(json_extract_string(", "(json_extract_string("),
        EXTRACT_SQL,
    ):
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _cc_j AS "
                + sql.replace("__LINES__", text_lines("$files", _HAS_USAGE)),
                {"files": keys},
            )
            return
        except duckdb.Error:
            pass
    empty = "(SELECT ''::VARCHAR AS file_key, 0::BIGINT AS line_no, ''::VARCHAR AS line, NULL::VARCHAR AS bad WHERE false)"
    con.execute("CREATE OR REPLACE TEMP TABLE _cc_j AS " + EXTRACT_SQL.replace("__LINES__", empty))
    for src, key in zip(sources, keys, strict=True):
        try:
            con.execute(
                "INSERT INTO _cc_j "
                + EXTRACT_SQL.replace("__LINES__", text_lines("$path", _HAS_USAGE)),
                {"path": key},
            )
        except duckdb.Error:
            split_lines(con, src, "_cc_lines", USAGE_MARK)
            lines = "(SELECT $key AS file_key, line_no, line, bad FROM _cc_lines)"
            con.execute(
                "INSERT INTO _cc_j " + EXTRACT_SQL.replace("__LINES__", lines), {"key": key}
            )
            _drop(con, "_cc_lines")


def _stage_batch(con: duckdb.DuckDBPyConnection, sources: list[Source], with_key: bool) -> None:
    """Append the stage rows of ``sources`` to ``stage`` (with ``file_key`` if asked).

    Few statements: on a small file their planning, not the data, is the cost.
    """
    import pyarrow as pa

    try:
        _extract(con, sources)
        con.execute("CREATE OR REPLACE TEMP TABLE _cc_rows AS " + ROWS_SQL)
        con.execute("DROP TABLE _cc_j")
        cwds = {str(k): list(v) for k, v in con.execute(_CWDS_SQL).fetchall()}
        places = {str(s.data_path): place_of(PurePath(s.path)) for s in sources}
        rows = _attrs_rows(places, cwds)
        arrow = pa.table(
            {
                "file_key": pa.array([r[0] for r in rows], pa.string()),
                "workflow": pa.array([r[1] for r in rows], pa.string()),
                "path_session": pa.array([r[2] for r in rows], pa.string()),
                "in_subagents": pa.array([r[3] for r in rows], pa.bool_()),
                "path_agent": pa.array([r[4] for r in rows], pa.string()),
            }
        )
        con.register("_cc_attrs", arrow)
        try:
            cols = f"file_key, {_STAGE_COLS}" if with_key else _STAGE_COLS
            con.execute(f"INSERT INTO stage ({cols}) SELECT {cols} FROM ({stage_sql('_cc_attrs')})")
        finally:
            con.unregister("_cc_attrs")
    finally:
        con.execute(
            "DROP TABLE IF EXISTS _cc_j; DROP TABLE IF EXISTS _cc_rows; DROP TABLE IF EXISTS _cc_lines"
        )


def batches(sources: list[Source], limit: int = BATCH_BYTES) -> list[list[Source]]:
    """``sources`` in order, cut into runs of about ``limit`` bytes."""
    out: list[list[Source]] = []
    size = 0
    for s in sources:
        if not out or (size + s.stat_size > limit and out[-1]):
            out.append([])
            size = 0
        out[-1].append(s)
        size += s.stat_size
    return out


class ClaudeCodeIngester:
    name = NAME
    kind = "usage"
    detects = (
        "Claude Code session JSON lines (~/.claude/projects/<project>/<session>.jsonl and "
        "<session>/subagents/agent-*.jsonl): sessionId/parentUuid envelopes, message.usage"
    )

    def sniff(self, src: Source) -> bool:
        return sniff_claude(src.head)

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(stage_ddl())
        _stage_batch(con, [src], with_key=False)
        return int(con.execute("SELECT count(*) FROM stage").fetchall()[0][0])

    def stage_many(
        self, con: duckdb.DuckDBPyConnection, sources: list[Source], ctx: StageContext
    ) -> dict[str, int]:
        """Stage many files into ``stage`` plus a ``file_key`` column (``str(data_path)``).

        The files are read in runs of about BATCH_BYTES, each run in one read_text (exact
        line numbers per file); a call's copies never span files, so grouping per run is
        grouping per file. Returns the records read per file_key.
        """
        con.execute(stage_ddl())
        con.execute("ALTER TABLE stage ADD COLUMN file_key VARCHAR")
        for run in batches(sources):
            _stage_batch(con, run, with_key=True)
        counts = {str(s.data_path): 0 for s in sources}
        for k, n in con.execute("SELECT file_key, count(*) FROM stage GROUP BY ALL").fetchall():
            counts[str(k)] = int(n)
        return counts

    def load_many(
        self,
        con: duckdb.DuckDBPyConnection,
        sources: list[Source],
        ctx: StageContext,
        prices: PriceSettings,
        mapping: dict[str, Any],
    ) -> list[FileResult]:
        """Load many files in one read and one transaction (see ``load_many``)."""
        return load_many(self, con, sources, ctx, prices, mapping)


# --- loading a whole tree at once -------------------------------------------------------------

_SEEN_SQL = """SELECT s.key, f.path FROM (SELECT unnest($keys) AS key, unnest($shas) AS sha) s
JOIN files f ON f.sha256 = s.sha"""

# The loader's duplicate rules, applied before the insert: a request_id seen earlier in
# the same file ('duplicate request_id (first at line N)'), or in an earlier file, of the
# store or of this batch ('request_id already loaded from PATH').
_DEDUPE_SQL = """CREATE OR REPLACE TEMP TABLE _cc_dups AS
WITH batch AS (
    SELECT file_id, line_no, request_id,
        min(line_no) OVER (PARTITION BY file_id, request_id) AS first_line
    FROM _cc_staged WHERE reason IS NULL AND request_id IS NOT NULL
), firsts AS (
    SELECT request_id, min(file_id) AS first_file FROM (
        SELECT request_id, file_id FROM batch
        UNION ALL
        SELECT request_id, file_id FROM usage_events
        WHERE request_id IN (SELECT request_id FROM batch)
    ) GROUP BY request_id
)
SELECT b.file_id, b.line_no, CASE
        WHEN b.line_no <> b.first_line THEN 'duplicate request_id (first at line ' || b.first_line || ')'
        ELSE 'request_id already loaded from ' || f.path END AS reason
FROM batch b JOIN firsts o USING (request_id)
JOIN (SELECT file_id, path FROM files UNION ALL SELECT file_id, path FROM _cc_ids) f
    ON f.file_id = o.first_file
WHERE b.line_no <> b.first_line OR b.file_id > o.first_file"""


def load_many(
    ingester: ClaudeCodeIngester,
    con: duckdb.DuckDBPyConnection,
    sources: list[Source],
    ctx: StageContext,
    prices: PriceSettings,
    mapping: dict[str, Any],
) -> list[FileResult]:
    """Load ``sources`` (in order) as the loader loads them one by one, in one transaction.

    The same rules as ``ingest.load.load_file``: a file whose content is already
    loaded is skipped; the generic checks; calls priced as they go in; a request_id
    repeated within a file, or already loaded from an earlier file (of the store or
    of this batch), is quarantined with the loader's reasons; conservation checked
    per file; one ``files`` row per file; attribution mapping applied. One read of
    all files and one transaction instead of one per file.
    """
    import pyarrow as pa

    from tokenaudit import attribution
    from tokenaudit.errors import InputError
    from tokenaudit.ingest.load import (
        _GENERIC_CHECKS_SQL,
        _STAGE_PAIRS_SQL,
        FileResult,
        _insert_events_sql,
        _pairs,
        _price_map,
    )

    results: dict[str, FileResult] = {}
    todo: list[Source] = []
    quick = {
        str(k)
        for (k,) in con.execute(
            "SELECT quick_key FROM files WHERE quick_key IN (SELECT unnest($k))",
            {"k": [s.quick_key for s in sources]},
        ).fetchall()
    }
    maybe = [s for s in sources if s.quick_key in quick]
    if maybe:
        keys = [str(s.data_path) for s in maybe]
        seen = dict(
            con.execute(_SEEN_SQL, {"keys": keys, "shas": [s.sha256 for s in maybe]}).fetchall()
        )
    else:
        seen = {}
    shas: dict[str, str] = {}
    for s in sources:
        key = str(s.data_path)
        if key in seen:
            results[key] = FileResult(
                str(s.path), NAME, "usage", "skipped", 0, 0, 0, f"same content as {seen[key]}"
            )
        else:
            todo.append(s)
    if not todo:
        return [results[str(s.data_path)] for s in sources]
    records = ingester.stage_many(con, todo, ctx)
    try:
        con.execute(_GENERIC_CHECKS_SQL)
        # Two files of the batch with the same content: the later one is skipped.
        kept: list[Source] = []
        for s in todo:
            sha = s.sha256
            if sha in shas:
                key = str(s.data_path)
                results[key] = FileResult(
                    str(s.path), NAME, "usage", "skipped", 0, 0, 0, f"same content as {shas[sha]}"
                )
                con.execute("DELETE FROM stage WHERE file_key = ?", [key])
            else:
                shas[sha] = str(s.path)
                kept.append(s)
        con.execute("BEGIN TRANSACTION")
        try:
            lo = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
            ids = {str(s.data_path): lo + i for i, s in enumerate(kept)}
            if len(kept) > 1:
                con.execute(
                    f"SELECT max(nextval('file_id_seq')) FROM range({len(kept) - 1})"
                ).fetchall()
            hi = lo + len(kept) - 1
            con.register(
                "_cc_ids_arrow",
                pa.table(
                    {
                        "file_key": pa.array(list(ids), pa.string()),
                        "file_id": pa.array(list(ids.values()), pa.int32()),
                        "path": pa.array([str(s.path) for s in kept], pa.string()),
                    }
                ),
            )
            try:
                con.execute("CREATE OR REPLACE TEMP TABLE _cc_ids AS SELECT * FROM _cc_ids_arrow")
            finally:
                con.unregister("_cc_ids_arrow")
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _cc_staged AS SELECT s.*, i.file_id FROM stage s "
                "JOIN _cc_ids i USING (file_key)"
            )
            con.execute(_DEDUPE_SQL)
            con.execute(
                "UPDATE _cc_staged s SET reason = d.reason FROM _cc_dups d "
                "WHERE s.file_id = d.file_id AND s.line_no = d.line_no"
            )
            pairs = _pairs(con, _STAGE_PAIRS_SQL.replace("FROM stage", "FROM _cc_staged"), {})
            price_map = _price_map(con, prices, pairs)
            insert = _insert_events_sql("SELECT * FROM _cc_staged", price_map).replace(
                "$file_id AS file_id", "s.file_id AS file_id"
            )
            con.execute(insert, {"source": NAME})
            con.execute(
                "INSERT INTO quarantine SELECT file_id, line_no, reason FROM _cc_staged "
                "WHERE reason IS NOT NULL"
            )
            if mapping:
                attribution.apply(
                    con, mapping, table="usage_events", where="file_id BETWEEN ? AND ?",
                    params=[lo, hi],
                )  # fmt: skip
            counts = {
                int(f): (int(a), int(b))
                for f, a, b in con.execute(
                    """SELECT i.file_id,
                        (SELECT count(*) FROM usage_events u WHERE u.file_id = i.file_id),
                        (SELECT count(*) FROM quarantine x WHERE x.file_id = i.file_id)
                    FROM range($lo, $hi + 1) i(file_id)""",
                    {"lo": lo, "hi": hi},
                ).fetchall()
            }
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            rows = []
            for s in kept:
                key = str(s.data_path)
                fid = ids[key]
                loaded, quarantined = counts.get(fid, (0, 0))
                read = records.get(key, 0)
                if loaded + quarantined != read:
                    raise InputError(
                        f"{s.path}: conservation check failed: {loaded} loaded + {quarantined} "
                        f"quarantined != {read} records read; nothing was written"
                    )
                try:  # as record_file: what lets a reload skip the file unread
                    st = s.path.stat()
                    where, raw_size, mtime_ns = str(s.path.resolve()), st.st_size, st.st_mtime_ns
                except OSError:
                    where, raw_size, mtime_ns = str(s.path), None, None
                rows.append(
                    (fid, str(s.path), s.sha256, s.size_bytes, NAME, "usage", read, loaded,
                     quarantined, now, s.quick_key, 0, where, raw_size, mtime_ns)
                )  # fmt: skip
                results[key] = FileResult(
                    str(s.path), NAME, "usage", "loaded", read, loaded, quarantined, file_id=fid
                )
            names = ("file_id", "path", "sha256", "size_bytes", "format", "kind", "records_read",
                     "rows_loaded", "rows_quarantined", "loaded_at", "quick_key", "lines_replaced",
                     "source_path", "raw_size", "mtime_ns")  # fmt: skip
            table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
            con.register("_cc_files", table)
            try:
                con.execute(
                    f"INSERT INTO files ({', '.join(names)}) SELECT {', '.join(names)} "
                    "FROM _cc_files"
                )
            finally:
                con.unregister("_cc_files")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        _drop(con, "stage", "_cc_staged", "_cc_dups", "_cc_ids")
    return [results[str(s.data_path)] for s in sources]


INGESTER = ClaudeCodeIngester()
INGESTERS: tuple[Ingester, ...] = (INGESTER,)
