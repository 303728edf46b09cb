"""tokenaudit native JSONL: one JSON object per model call (DESIGN.md section 3).

Written by teams that log their own calls. Only ``ts`` and ``model`` are
required. Sample record::

    {"ts":"2026-11-02T14:03:11.120Z","request_id":"r-1","trace_id":"t-9","provider":"openai",
     "model":"gpt-4o-mini","workflow":"ticket-summary","input_tokens":1200,
     "cache_read_tokens":0,"output_tokens":180,"attempt":1,"status":"ok","outcome":"accepted"}

Token semantics: ``input_tokens`` is already uncached input; ``cache_read_tokens``,
``cache_write_tokens`` (5-minute or unspecified TTL) and ``cache_write_1h_tokens``
are separate; ``reasoning_tokens`` is a subset of ``output_tokens``. Unknown keys
are kept in ``tags`` (sensitive keys such as ``prompt`` or ``messages`` are never
stored; ``api_key`` is stored as a keyed hash and its last 4 characters).
Dedupe key: ``request_id``.

Parsing is DuckDB end to end: its parallel CSV reader splits the file into lines
(a delimiter that cannot occur in valid JSON) and the JSON functions parse each
line, so a 1 GB file never passes through a Python loop. When line numbers from
that reader cannot be trusted (carriage returns, invalid UTF-8, huge lines) the
lines are split in Python in large blocks and handed over as Arrow batches.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tokenaudit.ingest.base import KEY_HASH_SQL, StageContext, Streamed
from tokenaudit.ingest.source import arrow_lines, line_blocks
from tokenaudit.model import NO_LOCAL_SQL, q, stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

NAME = "tokenaudit"

TEXT_FIELDS = (
    "request_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "session_id",
    "provider",
    "model",
    "service_tier",
    "workflow",
    "team",
    "tenant",
    "user",
    "agent",
    "prompt_version",
    "environment",
    "project",
    "error_type",
)
COUNT_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
OTHER_FIELDS = (
    "ts",
    "api_key",
    "attempt",
    "status",
    "http_status",
    "latency_ms",
    "outcome",
    "prompt_hash",
    "prefix_hash",
    "cost_usd",
)
# Never stored, never put in tags: text and secrets.
DROPPED_FIELDS = (
    "prompt",
    "completion",
    "messages",
    "input",
    "output",
    "response",
    "request",
    "text",
    "content",
    "system",
    "instructions",
    "authorization",
    "password",
    "secret",
)
KNOWN = (*TEXT_FIELDS, *COUNT_FIELDS, *OTHER_FIELDS, "tags", *DROPPED_FIELDS)

_TRANSFORM = (
    "{"
    + ",".join(f'"{k}":"VARCHAR"' for k in (*TEXT_FIELDS, *COUNT_FIELDS, *OTHER_FIELDS))
    + ',"tags":"JSON"}'
)
_KNOWN_LIST = "[" + ",".join(f"'{k}'" for k in KNOWN) + "]"
# Unknown top-level keys of a line, as a JSON object (only computed when there are some).
_EXTRA = (
    "to_json(map_from_entries(list_filter(map_entries(json_transform(line, '\"MAP(VARCHAR, JSON)\"')), "
    f"lambda e: NOT list_contains({_KNOWN_LIST}, e.key))))"
)
_SECRET_PATTERN = (
    r"(sk-(proj|ant|live|or)?-?[A-Za-z0-9_\-]{12,}|Bearer\s+[A-Za-z0-9._\-]{8,}|AKIA[0-9A-Z]{12,})"
)

# ISO 8601 (has a '-': tested first, cheaply); epoch numbers: seconds, milliseconds, microseconds or nanoseconds by magnitude.
_TS_SQL = """CASE
    WHEN j.ts IS NULL THEN NULL
    WHEN contains(j.ts, '-') THEN TRY_CAST(TRY_CAST(j.ts AS TIMESTAMPTZ) AS TIMESTAMP)
    WHEN regexp_full_match(j.ts, '[0-9]{1,20}(\\.[0-9]+)?') THEN
        CASE WHEN TRY_CAST(j.ts AS DOUBLE) < 1e11 THEN make_timestamp((TRY_CAST(j.ts AS DOUBLE) * 1e6)::BIGINT)
             WHEN TRY_CAST(j.ts AS DOUBLE) < 1e14 THEN make_timestamp((TRY_CAST(j.ts AS DOUBLE) * 1e3)::BIGINT)
             WHEN TRY_CAST(j.ts AS DOUBLE) < 1e17 THEN make_timestamp(TRY_CAST(j.ts AS DOUBLE)::BIGINT)
             ELSE make_timestamp((TRY_CAST(j.ts AS DOUBLE) / 1e3)::BIGINT) END
    ELSE TRY_CAST(TRY_CAST(j.ts AS TIMESTAMPTZ) AS TIMESTAMP)
END"""


def _count(field: str) -> str:
    return f"CASE WHEN j.{field} IS NULL THEN 0 ELSE TRY_CAST(j.{field} AS BIGINT) END"


def _count_ok(field: str) -> str:
    # TRY_CAST rounds '12.5' to 13, so insist the text is the canonical integer.
    return (
        f"(j.{field} IS NULL OR coalesce(TRY_CAST(j.{field} AS BIGINT) >= 0 "
        f"AND (TRY_CAST(j.{field} AS BIGINT)::VARCHAR = j.{field} "
        f"OR regexp_full_match(j.{field}, '[0-9]+\\.0+')), false))"
    )


def _count_reason(field: str) -> str:
    return (
        f"WHEN NOT {_count_ok(field)} THEN CASE "
        f"WHEN regexp_full_match(j.{field}, '-[0-9]+(\\.[0-9]+)?') "
        f"THEN 'negative {field}: ' || left(j.{field}, 30) "
        f"WHEN regexp_full_match(j.{field}, '[0-9]{{19,}}') "
        f"THEN '{field} out of range: ' || left(j.{field}, 30) "
        f"ELSE '{field} is not a whole number: ' || left(j.{field}, 30) END"
    )


_STATUS_SQL = """CASE
    WHEN j.status IS NULL THEN CASE WHEN TRY_CAST(j.http_status AS INTEGER) >= 400 THEN 'error' ELSE 'ok' END
    WHEN lower(j.status) IN ('ok', 'success', 'succeeded', 'completed') THEN 'ok'
    WHEN lower(j.status) IN ('error', 'failure', 'failed', 'fail') THEN 'error'
END"""

_OUTCOME_SQL = """CASE
    WHEN lower(j.outcome) IN ('accepted', 'accept', 'approved', 'resolved') THEN 'accepted'
    WHEN lower(j.outcome) IN ('edited', 'edit', 'modified', 'corrected') THEN 'edited'
    WHEN lower(j.outcome) IN ('rejected', 'reject', 'declined', 'discarded') THEN 'rejected'
    WHEN lower(j.outcome) IN ('escalated', 'escalate', 'handoff', 'handed_off') THEN 'escalated'
END"""


_HASH_IF_NOT_HEX = (
    "CASE WHEN j.{f} IS NULL THEN NULL "
    "WHEN regexp_full_match(j.{f}, '[0-9a-f]{{8,128}}') THEN j.{f} "
    "ELSE " + KEY_HASH_SQL.format("j.{f}") + " END"
)

# Keys and hashes: the raw API key never leaves this expression; a prompt or prefix hash
# that is not already a hex digest (someone logged text there) is replaced by a keyed hash.
_KEY_COLUMNS = ",\n        ".join(
    [
        "CASE WHEN j.api_key IS NOT NULL AND j.api_key <> '' THEN "
        + KEY_HASH_SQL.format("j.api_key")
        + " END AS api_key_hash",
        "CASE WHEN j.api_key IS NOT NULL AND j.api_key <> '' THEN right(j.api_key, 4) END AS api_key_last4",
        _HASH_IF_NOT_HEX.format(f="prompt_hash") + " AS prompt_hash",
        _HASH_IF_NOT_HEX.format(f="prefix_hash") + " AS prefix_hash",
    ]
)


def _tags_sql(extra: str) -> str:
    """Explicit tags merged over the unknown keys (``extra``: a JSON object or NULL).

    Tags arrive as minified JSON text from either reader, so its first character
    tells an object from a scalar without parsing it again.
    """
    obj = "left(j.tags::VARCHAR, 1) = '{'"
    other = "j.tags IS NOT NULL AND j.tags::VARCHAR <> 'null'"
    return f"""CASE
            WHEN {extra} IS NOT NULL AND {obj} THEN json_merge_patch({extra}, j.tags)
            WHEN {extra} IS NOT NULL AND {other}
                THEN json_merge_patch({extra}, json_object('tags', j.tags))
            WHEN {extra} IS NOT NULL THEN {extra}
            WHEN {obj} THEN j.tags
            WHEN {other} THEN json_object('tags', j.tags)
        END"""


_TS_REASONS = """WHEN j.ts IS NULL THEN 'missing ts'
        WHEN ts IS NULL THEN 'invalid ts: ' || left(j.ts, 40)
        WHEN ts < TIMESTAMP '2000-01-01' OR ts >= TIMESTAMP '2100-01-01' THEN 'ts out of range: ' || left(j.ts, 40)
        WHEN model IS NULL THEN 'missing model'"""

_TAIL_REASONS = """WHEN status IS NULL THEN 'unknown status: ' || left(j.status, 30) || ' (expected ok or error)'
        WHEN j.cost_usd IS NOT NULL AND reported_cost_usd IS NULL THEN 'cost_usd is not a finite number: ' || left(j.cost_usd, 30)"""

# Redaction runs only where a secret-looking prefix occurs at all (cheap test first).
_OUTPUT_COLUMNS = f"""ts, request_id, trace_id, span_id, parent_span_id, session_id, provider, model,
    service_tier, workflow, team, tenant, "user", agent, prompt_version, environment, project,
    api_key_hash, api_key_last4,
    input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens,
    reasoning_tokens, attempt, status, error_type, http_status, latency_ms, outcome,
    prompt_hash, prefix_hash, NULL::BIGINT AS local_input_tokens, reported_cost_usd,
    CASE WHEN tags_raw IS NULL OR tags_raw::VARCHAR = '{{}}' THEN NULL
         WHEN contains(tags_raw::VARCHAR, 'sk-') OR contains(tags_raw::VARCHAR, 'Bearer')
              OR contains(tags_raw::VARCHAR, 'AKIA')
         THEN regexp_replace(tags_raw::VARCHAR, '{_SECRET_PATTERN}', '[redacted]', 'g')::JSON
         ELSE tags_raw END AS tags, {NO_LOCAL_SQL}"""


def stage_select(relation: str) -> str:
    """Exact path: stage rows from ``relation`` (line_no, line, bad), one line at a time.

    ``bad`` is a reason decided before parsing (undecodable or oversized line).
    """
    text_cols = ",\n        ".join(f"NULLIF(trim(j.{q(f)}), '') AS {q(f)}" for f in TEXT_FIELDS)
    count_cols = ",\n        ".join(f"{_count(f)} AS {f}" for f in COUNT_FIELDS)
    count_reasons = "\n        ".join(_count_reason(f) for f in COUNT_FIELDS)
    extra = f"CASE WHEN len(extra_keys) > 0 THEN {_EXTRA} END"
    return f"""
WITH src AS (
    SELECT line_no, bad, line, bad IS NULL AND json_valid(line) AS ok,
        starts_with(ltrim(line), '{{') AS is_obj
    FROM {relation}
    WHERE bad IS NOT NULL OR (line IS NOT NULL AND trim(line, ' \t') <> '')
), parsed AS (
    SELECT line_no, bad, ok, is_obj,
        CASE WHEN ok AND is_obj THEN json_transform(line, '{_TRANSFORM}') END AS j,
        CASE WHEN ok AND is_obj THEN list_filter(json_keys(line), lambda k: NOT list_contains({_KNOWN_LIST}, k)) END AS extra_keys,
        CASE WHEN ok AND is_obj THEN line END AS line
    FROM src
), typed AS MATERIALIZED (
    SELECT line_no, bad, ok, is_obj, j,
        {_TS_SQL} AS ts,
        {text_cols},
        {count_cols},
        CASE WHEN j.attempt IS NULL THEN 1 ELSE TRY_CAST(j.attempt AS INTEGER) END AS attempt,
        {_STATUS_SQL} AS status,
        TRY_CAST(j.http_status AS INTEGER) AS http_status,
        TRY_CAST(j.latency_ms AS DOUBLE) AS latency_ms,
        {_OUTCOME_SQL} AS outcome,
        {_KEY_COLUMNS},
        TRY_CAST(j.cost_usd AS DECIMAL(38,12)) AS reported_cost_usd,
        {_tags_sql(extra)} AS tags_raw
    FROM parsed
)
SELECT line_no,
    CASE
        WHEN bad IS NOT NULL THEN bad
        WHEN NOT ok THEN 'invalid JSON (malformed or truncated line)'
        WHEN NOT is_obj THEN 'not a JSON object'
        {_TS_REASONS}
        {count_reasons}
        WHEN reasoning_tokens > output_tokens THEN 'reasoning_tokens (' || reasoning_tokens || ') exceeds output_tokens (' || output_tokens || ')'
        WHEN attempt IS NULL OR attempt < 1 THEN 'attempt is not a positive whole number: ' || left(j.attempt, 30)
        {_TAIL_REASONS}
    END AS reason,
    {_OUTPUT_COLUMNS}
FROM typed
"""


# --- fast path: DuckDB's typed JSON reader -------------------------------------------------
# Token counts are read as DOUBLE so that 12.5 is seen (a BIGINT column would round it);
# anything the reader cannot convert ("lots", a truncated line) raises, and the exact
# path takes over for the whole file.
_FAST_TYPES = {
    **dict.fromkeys(TEXT_FIELDS, "VARCHAR"),
    **dict.fromkeys(COUNT_FIELDS, "DOUBLE"),
    "ts": "VARCHAR",
    "api_key": "VARCHAR",
    "attempt": "DOUBLE",
    "status": "VARCHAR",
    "http_status": "DOUBLE",
    "latency_ms": "DOUBLE",
    "outcome": "VARCHAR",
    "prompt_hash": "VARCHAR",
    "prefix_hash": "VARCHAR",
    "cost_usd": "VARCHAR",
    "tags": "JSON",
}
_MAX_EXACT = 9007199254740992  # 2**53: larger counts cannot be read exactly as DOUBLE


def _num_text(expr: str) -> str:
    return f"CASE WHEN {expr} = floor({expr}) THEN ({expr})::HUGEINT::VARCHAR ELSE ({expr})::VARCHAR END"


def _fast_count_reason(field: str) -> str:
    v = f"j.{field}"
    return (
        f"WHEN {v} < 0 THEN 'negative {field}: ' || {_num_text(v)} "
        f"WHEN {v} <> floor({v}) THEN '{field} is not a whole number: ' || {_num_text(v)} "
        f"WHEN {v} >= {_MAX_EXACT} THEN '{field} out of range: ' || {_num_text(v)}"
    )


def fast_columns(extra: list[str]) -> str:
    """The ``columns`` argument of read_json: known keys typed, unknown keys as JSON."""
    cols = {**_FAST_TYPES, **dict.fromkeys(extra, "JSON")}
    return (
        "{"
        + ", ".join(f"'{k.replace(chr(39), chr(39) * 2)}': '{t}'" for k, t in cols.items())
        + "}"
    )


def fast_select(relation: str, extra: list[str]) -> str:
    """Stage rows from the typed reader's ``relation`` (line_no plus typed columns as ``j``)."""
    text_cols = ",\n        ".join(f"NULLIF(trim(j.{q(f)}), '') AS {q(f)}" for f in TEXT_FIELDS)
    count_cols = ",\n        ".join(
        f"CASE WHEN j.{f} IS NULL THEN 0 WHEN j.{f} >= 0 AND j.{f} = floor(j.{f}) "
        f"AND j.{f} < {_MAX_EXACT} THEN j.{f}::BIGINT END AS {f}"
        for f in COUNT_FIELDS
    )
    count_reasons = "\n        ".join(_fast_count_reason(f) for f in COUNT_FIELDS)
    if extra:
        pairs = ", ".join(f"'{k.replace(chr(39), chr(39) * 2)}', j.{q(k)}" for k in extra)
        extra_obj = f"json_object({pairs})"
        extra_sql = f"CASE WHEN {' OR '.join(f'j.{q(k)} IS NOT NULL' for k in extra)} THEN json_strip_nulls({extra_obj}) END"
    else:
        extra_sql = "NULL::JSON"
    outer = f"""SELECT line_no,
    CASE
        {_TS_REASONS}
        {count_reasons}
        WHEN reasoning_tokens > output_tokens THEN 'reasoning_tokens (' || reasoning_tokens || ') exceeds output_tokens (' || output_tokens || ')'
        WHEN attempt IS NULL OR attempt < 1 THEN 'attempt is not a positive whole number: ' || {_num_text("j.attempt")}
        {_TAIL_REASONS}
    END AS reason,
    {_OUTPUT_COLUMNS}
FROM typed
"""
    # The reasons quote raw values: carry those columns through as raw_<name>
    # (columns of the reader, not a packed struct: packing costs a copy per row).
    raw = sorted(set(re.findall(r"\bj\.(\w+)", outer)))
    outer = re.sub(r"\bj\.(\w+)", r"raw_\1", outer)
    raw_cols = "".join(f"j.{name} AS raw_{name}, " for name in raw)
    return f"""
WITH typed AS NOT MATERIALIZED (
    SELECT line_no, {raw_cols}
        {_TS_SQL} AS ts,
        {text_cols},
        {count_cols},
        CASE WHEN j.attempt IS NULL THEN 1 WHEN j.attempt = floor(j.attempt) AND j.attempt < 2147483647 THEN j.attempt::INTEGER END AS attempt,
        {_STATUS_SQL.replace("TRY_CAST(j.http_status AS INTEGER)", "j.http_status")} AS status,
        CASE WHEN j.http_status BETWEEN 0 AND 999 THEN j.http_status::INTEGER END AS http_status,
        j.latency_ms AS latency_ms,
        {_OUTCOME_SQL} AS outcome,
        {_KEY_COLUMNS},
        TRY_CAST(j.cost_usd AS DECIMAL(38,12)) AS reported_cost_usd,
        {_tags_sql(extra_sql)} AS tags_raw
    FROM {relation} AS j
)
{outer}"""


# Unknown keys: the columns DuckDB detects in its sample of the file (the first 20,480
# records, as a bare read_json would see them).
_SAMPLE_SQL = "SELECT * FROM read_json($path, format = 'newline_delimited') LIMIT 0"

_MODELS_SQL = """SELECT DISTINCT coalesce(lower(provider), ''), model FROM (
    SELECT trim(provider) AS provider, trim(model) AS model FROM read_json($path,
        format = 'newline_delimited', columns = {'provider': 'VARCHAR', 'model': 'VARCHAR'})
    LIMIT 20480)
WHERE model IS NOT NULL AND model <> ''"""

MAX_LINE = 16 << 20


class NativeIngester:
    name = NAME
    kind = "usage"
    detects = "JSON lines whose objects have 'ts' and 'model' at the top level"

    def sniff(self, src: Source) -> bool:
        import json

        for raw in src.head.splitlines()[:20]:
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                return False
            return isinstance(obj, dict) and "ts" in obj and "model" in obj
        return False

    def stream(
        self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext
    ) -> Streamed | None:
        """The fast path: DuckDB's typed reader, one pass; None when it cannot apply."""
        import duckdb

        params = {"path": str(src.data_path), "secret": ctx.secret}
        try:
            sample = con.execute(_SAMPLE_SQL, {"path": params["path"]})
            extra = [d[0] for d in sample.description if d[0] not in KNOWN]
            sample.fetchall()
        except duckdb.Error:
            return None  # not even the first records parse
        reader = (
            "read_json($path, format = 'newline_delimited', "
            f"columns = {fast_columns(extra)}, maximum_object_size = 16777216)"
        )
        # Blank lines are skipped by the reader: then the count differs and the exact path runs.
        return Streamed(
            fast_select(f"(SELECT row_number() OVER () AS line_no, * FROM {reader})", extra),
            params,
            None,
            ordered=fast_select(f"(SELECT 0::BIGINT AS line_no, * FROM {reader})", extra),
            models_sql=_MODELS_SQL,
            local=False,  # no text, no gateway estimate: those columns stay NULL, unwritten
        )

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        """The exact path: every line read and judged on its own."""
        con.execute(stage_ddl())
        self._stage_exact(con, src, ctx)
        return self._records(con)

    @staticmethod
    def _records(con: duckdb.DuckDBPyConnection) -> int:
        return int(con.execute("SELECT count(*) FROM stage").fetchall()[0][0])

    def _stage_exact(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> None:
        """Split lines in Python (C-level, in large blocks) and parse them in DuckDB."""
        select = stage_select(
            f"""(SELECT line_no, line, CASE
                WHEN octet_length(raw) > {MAX_LINE} THEN 'line longer than 16 MiB'
                WHEN line IS NULL THEN 'invalid UTF-8' END AS bad
            FROM (SELECT line_no, raw, CASE WHEN octet_length(raw) <= {MAX_LINE}
                  THEN try(decode(raw)) END AS line FROM _lines))"""
        )
        for first, lines in line_blocks(src.data_path):
            con.register("_lines_raw", arrow_lines(range(first, first + len(lines)), lines))
            try:
                con.execute(
                    "CREATE OR REPLACE TEMP VIEW _lines AS SELECT line_no, "
                    "CASE WHEN raw[-1:] = '\\x0D'::BLOB THEN raw[:-2] ELSE raw END AS raw "
                    "FROM _lines_raw"
                )
                con.execute(f"INSERT INTO stage {select}", {"secret": ctx.secret})
            finally:
                con.execute("DROP VIEW IF EXISTS _lines")
                con.unregister("_lines_raw")


INGESTER = NativeIngester()
