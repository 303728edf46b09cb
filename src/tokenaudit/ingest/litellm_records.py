"""Splitting LiteLLM export files into records (CSV, JSON, JSON lines); detecting them.

Every reader fills the TEMP table ``TABLE`` with one row per record,
``(line_no, bad, doc)``: ``doc`` is the record as a JSON object, ``bad`` a
reason decided before parsing. The mapping (one SQL statement for all forms)
lives in ``ingest.litellm``; nothing here loops over rows in Python except the
exact CSV reader and JSON documents (arrays), which are small in practice, and
``count_prompts``, over the records that carry a logged prompt only.

CSV: an export of the ``LiteLLM_SpendLogs`` table (``COPY ... CSV HEADER``,
psql ``\\copy``, a database GUI) has a header naming the Prisma columns
(``request_id``, ``call_type``, ``spend``, ``startTime``, ...) and JSON columns
(``metadata``, ``request_tags``, ``response``) as quoted JSON text, so a field
can span lines. Delimiter ``,``, quote and escape ``"``; header names match
without regard to case; unknown columns are ignored (``messages`` and
``proxy_server_request`` are read only to count the prompt, see ``count_prompts``). A
row becomes an object of strings (null for an empty field); ``line_no`` is the physical
line the record starts on.

* fast: DuckDB's ``read_csv`` (all VARCHAR, explicit options, strict). Record
  start lines come from the newlines inside earlier records' fields; the result
  is kept only when header + records + embedded newlines account for every line
  of the file. No Python loop over rows.
* exact: Python's ``csv`` module, when the fast reader errs (a malformed row,
  invalid UTF-8) or the line accounting disagrees (blank lines, a multi-line
  header, lone carriage returns). Every record, broken or not, gets a row.

JSON lines are split in Python in large blocks (C-level) and decoded in DuckDB,
one record per non-blank line. A JSON document (one object, an array, or
several values in a row) is read whole and split with
``json.JSONDecoder.raw_decode`` (meant for API answers and small dumps; export
big tables as JSON lines or CSV); each object or array element is a record
numbered by its 1-based position.
"""

from __future__ import annotations

import csv
import json
import re
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.source import arrow_lines, line_blocks
from tokenaudit.ingest.tabular import BAD_UTF8, BATCH, FIELD_LIMIT, MAX_LINE, csv_header
from tokenaudit.model import LOCAL_COLUMNS
from tokenaudit.tokens.count import apply as apply_counts
from tokenaudit.tokens.prompt import MESSAGE, Prompt, from_messages, from_request

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

Row = tuple[int, str | None, str | None]  # line_no, bad, doc

TABLE = "_litellm_rows"
ROWS_DDL = f"CREATE OR REPLACE TEMP TABLE {TABLE} (line_no BIGINT, bad VARCHAR, doc VARCHAR)"

# Canonical names of the columns the mapping reads (Prisma spelling).
COLUMNS = (
    "request_id",
    "id",
    "trace_id",
    "session_id",
    "call_type",
    "api_key",
    "spend",
    "response_cost",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "request_duration_ms",
    "model",
    "model_group",
    "custom_llm_provider",
    "user",
    "end_user",
    "team_id",
    "agent_id",
    "status",
    "cache_hit",
    "metadata",
    "request_tags",
    "response",
    "messages",  # read only to count the prompt (``count_prompts``)
    "proxy_server_request",
)
_CANONICAL = {c.lower(): c for c in COLUMNS}
REQUIRED = frozenset({"request_id", "call_type", "spend", "starttime"})


def looks_like_spend_logs(head: bytes) -> bool:
    names = csv_header(head)
    return names is not None and {n.lower() for n in names} >= REQUIRED


def stage_rows(con: duckdb.DuckDBPyConnection, src: Source) -> str:
    """Fill the TEMP table ``TABLE`` (line_no, bad, doc) from the CSV; return its name."""
    import duckdb

    names = csv_header(src.head)
    if names and len({n.lower() for n in names}) == len(names):
        try:
            if _fast(con, src, names):
                return TABLE
        except duckdb.Error:
            pass
    _exact(con, src)
    return TABLE


def _fast(con: duckdb.DuckDBPyConnection, src: Source, names: list[str]) -> bool:
    cols = [f"c{i}" for i in range(len(names))]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    newlines = " + ".join(f"coalesce(len({c}) - len(replace({c}, chr(10), '')), 0)" for c in cols)
    pairs = [
        f"'{_CANONICAL[n.lower()]}', {c}"
        for n, c in zip(names, cols, strict=True)
        if n.lower() in _CANONICAL
    ]
    doc = f"json_object({', '.join(pairs)})::VARCHAR" if pairs else "'{}'"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {TABLE} AS
        SELECT 1 + rn + coalesce(sum(nl) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING
                                                      AND 1 PRECEDING), 0) AS line_no,
            NULL::VARCHAR AS bad, doc, nl
        FROM (SELECT row_number() OVER () AS rn, {newlines} AS nl, {doc} AS doc
              FROM read_csv($path, columns = {spec}, header = true, delim = ',',
                   quote = '"', escape = '"', auto_detect = false,
                   strict_mode = true, null_padding = false, max_line_size = {MAX_LINE}))""",
        {"path": str(src.data_path)},
    )
    records, embedded = con.execute(
        f"SELECT count(*), coalesce(sum(nl), 0) FROM {TABLE}"
    ).fetchall()[0]
    if 1 + int(records) + int(embedded) != src.line_count:
        return False
    con.execute(f"ALTER TABLE {TABLE} DROP COLUMN nl")
    return True


def _exact(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    con.execute(ROWS_DDL)
    batch: list[Row] = []
    old_limit = csv.field_size_limit(FIELD_LIMIT)
    try:
        with open(src.data_path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f, strict=True)
            try:
                names = next(reader)
            except (csv.Error, StopIteration):
                batch.append((1, "malformed CSV header", None))
                names = []
            keys = [_CANONICAL.get(n.strip().lower()) for n in names]
            start = reader.line_num + 1
            while names:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    batch.append((start, f"malformed CSV row: {e}", None))
                    start = reader.line_num + 1
                    continue
                line_no, start = start, reader.line_num + 1
                if row:  # a blank line is not a record
                    batch.append(_record(line_no, row, keys))
                if len(batch) >= BATCH:
                    insert_rows(con, batch)
    finally:
        csv.field_size_limit(old_limit)
    insert_rows(con, batch)


def _record(line_no: int, row: list[str], keys: list[str | None]) -> Row:
    if len(row) != len(keys):
        return line_no, f"expected {len(keys)} fields, found {len(row)}", None
    doc: dict[str, Any] = {}
    for key, value in zip(keys, row, strict=True):
        if key is not None and key not in doc:
            doc[key] = value if value != "" else None
    if BAD_UTF8.search("".join(v for v in doc.values() if v)):
        return line_no, "invalid UTF-8", None  # in a column that is read (others are ignored)
    return line_no, None, json.dumps(doc, ensure_ascii=False)


def insert_rows(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    """Append ``rows`` to ``TABLE`` and empty the list."""
    import pyarrow as pa

    if not rows:
        return
    line_no, bad, doc = zip(*rows, strict=True)
    table = pa.table(
        {
            "line_no": pa.array(line_no, pa.int64()),
            "bad": pa.array(bad, pa.string()),
            "doc": pa.array(doc, pa.string()),
        }
    )
    con.register("_litellm_batch", table)
    try:
        con.execute(f"INSERT INTO {TABLE} SELECT line_no, bad, doc FROM _litellm_batch")
    finally:
        con.unregister("_litellm_batch")
    rows.clear()


# --- JSON and JSON lines ---------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def stage_lines(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    """JSON lines: split in Python in large blocks (C-level), decode and parse in DuckDB."""
    insert = f"""INSERT INTO {TABLE} SELECT line_no, CASE
            WHEN octet_length(raw) > {MAX_LINE} THEN 'line longer than 16 MiB'
            WHEN doc IS NULL THEN 'invalid UTF-8' END, doc
        FROM (SELECT line_no, raw, CASE WHEN octet_length(raw) <= {MAX_LINE}
                  THEN try(decode(raw)) END AS doc FROM _litellm_lines)
        WHERE doc IS NULL OR trim(doc, ' \t\r') <> ''"""
    for first, lines in line_blocks(src.data_path, strip_bom=True):
        con.register("_litellm_lines", arrow_lines(range(first, first + len(lines)), lines))
        try:
            con.execute(insert)
        finally:
            con.unregister("_litellm_lines")


def _stage_document(con: duckdb.DuckDBPyConnection, text: str) -> bool:
    """JSON values one after another (usually one object or one array); False if none parsed.

    Each object, and each element of a top-level array, is a record numbered by
    its 1-based position. A parse error ends the file with one quarantined record.
    """
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    index = 0
    pos = _skip_ws(text, 0)
    in_array = False
    try:
        while pos < len(text):
            if not in_array and text[pos] == "[":
                in_array = True
                pos = _skip_ws(text, pos + 1)
                if text.startswith("]", pos):
                    in_array = False
                    pos = _skip_ws(text, pos + 1)
                continue
            _, end = decoder.raw_decode(text, pos)
            index += 1
            rows.append((index, None, text[pos:end]))
            if len(rows) >= BATCH:
                insert_rows(con, rows)
            pos = _skip_ws(text, end)
            if in_array:
                if text.startswith(",", pos):
                    pos = _skip_ws(text, pos + 1)
                elif text.startswith("]", pos):
                    in_array = False
                    pos = _skip_ws(text, pos + 1)
                else:
                    raise json.JSONDecodeError("expected ',' or ']'", text, pos)
        if in_array:
            raise json.JSONDecodeError("unterminated array", text, pos)
    except (json.JSONDecodeError, RecursionError) as e:
        if index == 0 and not in_array:
            return False  # not one document: JSON lines whose first line is broken
        reason = (
            f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
            if isinstance(e, json.JSONDecodeError)
            else "invalid JSON: nested too deeply"
        )
        rows.append((index + 1, reason, None))
    insert_rows(con, rows)
    return True


def stage_json(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    if first_line_is_json(src.head):
        stage_lines(con, src)
        return
    try:
        text = src.data_path.read_bytes().decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        rows: list[Row] = [(1, f"invalid UTF-8 at byte {e.start}", None)]
        insert_rows(con, rows)
        return
    if not _stage_document(con, text):
        con.execute(f"DELETE FROM {TABLE}")
        stage_lines(con, src)  # not one document: JSON lines whose first line is broken


def first_line_is_json(head: bytes) -> bool:
    first = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n").split("\n", 1)[0]
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return False


# --- detection ---------------------------------------------------------------------------------


def is_litellm_record(obj: Any) -> bool:
    """A SpendLogs row, a StandardLoggingPayload, or callback kwargs holding one."""
    if not isinstance(obj, dict) or "ts" in obj:
        return False
    if isinstance(obj.get("standard_logging_object"), dict):
        return True
    if "call_type" in obj and "spend" in obj:
        return True
    return "response_cost" in obj and ("call_type" in obj or "model_map_information" in obj)


def first_record(text: str) -> Any:
    """The first JSON object of ``text`` (a JSON lines file, an object or an array)."""
    try:
        value = json.loads(text.split("\n", 1)[0])
    except (ValueError, RecursionError):
        pos = _skip_ws(text, 1 if text.startswith("[") else 0)
        try:
            return json.JSONDecoder().raw_decode(text, pos)[0]
        except (ValueError, RecursionError):
            return None
    if isinstance(value, list):
        return value[0] if value else None
    return value


# --- prompts: local token counts -----------------------------------------------------------------

# Text that stands for "no prompt logged" (LiteLLM writes "{}" unless prompts are stored).
_NONE = "('', '{}', '[]', 'null', '\"\"')"
_PROMPT_SCHEMA = (
    '{"call_type": "VARCHAR", "messages": "JSON", "proxy_server_request": "JSON", '
    '"model_parameters": "JSON"}'
)


def _text(expr: str) -> str:
    """A JSON value as text, unwrapping a JSON string (double-encoded JSON)."""
    return f"CASE WHEN json_type({expr}) = 'VARCHAR' THEN {expr} ->> '$' ELSE {expr}::VARCHAR END"


def given(col: str) -> str:
    """SQL: the text ``col`` holds a logged value (not null, empty or ``{}``)."""
    return f"coalesce(trim({col}) NOT IN {_NONE}, false)"


PROMPTED = "_prompted"  # a stage column for the mapping's flag, dropped after counting


# The staged records that carry a prompt: (line_no, model, call_type, messages, request, tools)
# as JSON text; ``request`` (the proxy's request body) only when ``messages`` is empty.
PROMPTS_SQL = f"""
WITH r AS (
    SELECT r.line_no, s.model, r.doc,
        CASE WHEN contains(r.doc, '"standard_logging_object"')
             AND try(json_type(r.doc, '$.standard_logging_object')) = 'OBJECT'
             THEN json_extract(r.doc, '$.standard_logging_object')::VARCHAR END AS slo
    FROM {TABLE} r JOIN stage s ON s.line_no = r.line_no
    WHERE s.{PROMPTED} AND s.reason IS NULL
), f AS (
    SELECT line_no, model, try(json_transform(coalesce(slo, doc), '{_PROMPT_SCHEMA}')) AS v,
        CASE WHEN slo IS NOT NULL THEN try(json_extract(doc, '$.optional_params')) END AS kw
    FROM r
), t AS (
    SELECT line_no, model, v.call_type, {_text("v.messages")} AS messages,
        {_text("v.proxy_server_request")} AS request, v.model_parameters AS mp, kw
    FROM f
)
SELECT line_no, model, call_type,
    CASE WHEN {given("messages")} THEN messages END AS messages,
    CASE WHEN NOT {given("messages")} THEN request END AS request,
    coalesce(try(json_extract(mp, '$.tools')), try(json_extract(mp, '$.functions')),
             try(json_extract(kw, '$.tools')),
             CASE WHEN {given("request")} THEN try(json_extract(request, '$.tools')) END
    )::VARCHAR AS tools
FROM t
WHERE {given("messages")} OR {given("request")}
"""
_CHAT_CALLS = frozenset(
    {"completion", "acompletion", "responses", "aresponses", "anthropic_messages",
     "generate_content", "agenerate_content", "pass_through_endpoint"}
)  # fmt: skip
_LOCAL = [name for name, _ in LOCAL_COLUMNS if name != "gateway_input_tokens"]


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def _plain_texts(value: Any, model: str | None) -> Prompt:
    """Texts without the chat format: embedding inputs, completion prompts."""
    p = Prompt(model=model, chat=False)
    for item in value if isinstance(value, list) else [value]:
        content = item.get("content") if isinstance(item, dict) else item
        if isinstance(content, str):
            p.add(content, MESSAGE)
    return p


def prompt_of(
    call_type: str | None, messages: str | None, request: str | None, tools: str | None,
    model: str | None,
) -> Prompt | None:  # fmt: skip
    """The prompt of one record: its ``messages`` (a list, one message, or a request-like
    object) with the tools of ``model_parameters`` / ``optional_params`` / the request, else
    the proxy's request body (``proxy_server_request``)."""
    ct = (call_type or "").strip().lower()
    msgs = _loads(messages)
    if "embed" in ct or "text_completion" in ct:
        body = msgs if msgs is not None else _loads(request)
        if isinstance(body, dict):
            body = body.get("input", body.get("prompt", body.get("messages")))
        return _plain_texts(body, model)
    if ct and ct not in _CHAT_CALLS:
        return None  # images, audio, moderation, rerank ...: no chat prompt
    tool_list = _loads(tools)
    tool_list = tool_list if isinstance(tool_list, list) else None
    if msgs is None:
        body = _loads(request)
        if isinstance(body, dict) and tool_list and not body.get("tools"):
            body = {**body, "tools": tool_list}
        return from_request(body)
    if isinstance(msgs, dict):
        if "messages" in msgs or "input" in msgs:
            return from_request({"tools": tool_list, **msgs})
        msgs = [msgs]
    return from_messages(msgs, tool_list, None, model)


def count_prompts(con: duckdb.DuckDBPyConnection) -> int:
    """Fill the ``local_*`` columns of ``stage`` for the records that carry a prompt (a
    Python pass over those records only); returns how many were counted."""
    import pyarrow as pa

    result = con.execute(PROMPTS_SQL)
    counted: list[dict[str, Any]] = []
    while batch := result.fetchmany(BATCH):
        rows = []
        for line_no, model, call_type, messages, request, tools in batch:
            try:
                p = prompt_of(call_type, messages, request, tools, model)
            except (TypeError, ValueError, AttributeError, RecursionError):
                p = None
            if p is not None:
                rows.append({"line_no": line_no, "model": model, "reason": None, "_prompt": p})
        apply_counts(rows)  # the text is dropped here
        counted += [r for r in rows if r.get("local_tokenizer") is not None]
    if not counted:
        return 0
    table = pa.table(
        {
            "line_no": pa.array([r["line_no"] for r in counted], pa.int64()),
            **{c: [r[c] for r in counted] for c in ("local_input_tokens", *_LOCAL)},
        }
    )
    sets = ", ".join(f"{c} = u.{c}" for c in ("local_input_tokens", *_LOCAL))
    con.register("_litellm_local", table)
    try:
        con.execute(
            f"UPDATE stage SET {sets} FROM _litellm_local u WHERE stage.line_no = u.line_no"
        )
    finally:
        con.unregister("_litellm_local")
    return len(counted)
