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

This module holds the ingester; the SQL (reading lines included) is in
``claude_code_sql``, file places, workflows and detection in ``claude_code_places``,
and loading a whole tree in ``claude_code_tree``.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.claude_code_places import attrs_rows, place_of, sniff_claude
from tokenaudit.ingest.claude_code_sql import (
    CWDS_SQL,
    EXTRACT_SQL,
    HAS_USAGE,
    ROWS_SQL,
    STAGE_COLS,
    USAGE_MARK,
    drop,
    split_lines,
    stage_sql,
    text_lines,
)
from tokenaudit.ingest.claude_code_tree import load_many
from tokenaudit.model import stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.load import FileResult
    from tokenaudit.ingest.source import Source
    from tokenaudit.pricing import PriceSettings

NAME = "claude-code"

BATCH_BYTES = 512 << 20  # files read together per statement (bounds memory on big trees)


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
                + sql.replace("__LINES__", text_lines("$files", HAS_USAGE)),
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
                + EXTRACT_SQL.replace("__LINES__", text_lines("$path", HAS_USAGE)),
                {"path": key},
            )
        except duckdb.Error:
            split_lines(con, src, "_cc_lines", USAGE_MARK)
            lines = "(SELECT $key AS file_key, line_no, line, bad FROM _cc_lines)"
            con.execute(
                "INSERT INTO _cc_j " + EXTRACT_SQL.replace("__LINES__", lines), {"key": key}
            )
            drop(con, "_cc_lines")


def _stage_batch(con: duckdb.DuckDBPyConnection, sources: list[Source], with_key: bool) -> None:
    """Append the stage rows of ``sources`` to ``stage`` (with ``file_key`` if asked).

    Few statements: on a small file their planning, not the data, is the cost.
    """
    import pyarrow as pa

    try:
        _extract(con, sources)
        con.execute("CREATE OR REPLACE TEMP TABLE _cc_rows AS " + ROWS_SQL)
        con.execute("DROP TABLE _cc_j")
        cwds = {str(k): list(v) for k, v in con.execute(CWDS_SQL).fetchall()}
        places = {str(s.data_path): place_of(PurePath(s.path)) for s in sources}
        rows = attrs_rows(places, cwds)
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
            cols = f"file_key, {STAGE_COLS}" if with_key else STAGE_COLS
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


INGESTER = ClaudeCodeIngester()
INGESTERS: tuple[Ingester, ...] = (INGESTER,)
