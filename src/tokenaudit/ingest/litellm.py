"""LiteLLM proxy logs: ``LiteLLM_SpendLogs`` rows and ``StandardLoggingPayload`` objects.

Sources: the proxy's Postgres table ``"LiteLLM_SpendLogs"`` (one row per call),
exported as JSON (an object or an array, as the ``/spend/logs`` API answers),
JSON lines, or CSV with a header (``ingest.litellm_records`` splits all three into
records); exports often double-encode ``metadata``, ``request_tags`` and
``response`` as JSON strings, and both forms are read. And the
StandardLoggingPayload every LiteLLM callback receives as
``kwargs["standard_logging_object"]``: files of payloads, or of whole callback
kwargs carrying one. Sample record (a SpendLogs row, shortened)::

    {"request_id":"chatcmpl-22","session_id":"t-9","call_type":"acompletion",
     "api_key":"88dc28…","spend":0.0042,"prompt_tokens":2100,"completion_tokens":180,
     "startTime":"2025-01-24 09:20:46.847371","endTime":"2025-01-24 09:20:48.100000",
     "model":"claude-3-7-sonnet-20250219","custom_llm_provider":"anthropic","status":"success",
     "metadata":"{\\"usage_object\\":{\\"cache_read_input_tokens\\":1500,…},
                  \\"spend_logs_metadata\\":{\\"workflow\\":\\"triage\\"}}",
     "request_tags":"[\\"team:support\\"]","cache_hit":"False"}

Token semantics: ``prompt_tokens`` includes cached input (for Anthropic and
Bedrock LiteLLM adds cache reads and writes into it) and categories never
overlap here, so ``input_tokens = prompt_tokens - cache_read - cache_write``:
cache_read is the usage's ``cache_read_input_tokens`` or
``prompt_tokens_details.cached_tokens``, cache_write its
``cache_creation_input_tokens`` or ``prompt_tokens_details.cache_creation_tokens``
(1-hour writes split out by ``cache_creation_token_details``). The usage is
``metadata.usage_object``, else ``metadata.additional_usage_values``,
``response.usage`` or ``hidden_params.usage_object``. A negative difference is
quarantined (some LiteLLM releases left cache writes out of ``prompt_tokens``).
``output_tokens = completion_tokens`` (reasoning included), ``reasoning_tokens =
completion_tokens_details.reasoning_tokens``. LiteLLM's price (``spend`` /
``response_cost``) is ``reported_cost_usd``, never our cost. A call served from
LiteLLM's own cache (``cache_hit`` true; spend 0) keeps its tokens as logged
and gets the tag ``cache_hit: true``: our cost prices them, filter on the tag.

Attribution: user = ``user``, ``end_user`` or the key's user; team = the key's
team alias or ``team_id``; project = the key's project. ``request_tags``
``key:value`` / ``key=value`` become tags (others a list under ``request_tags``),
``requester_metadata`` then ``spend_logs_metadata`` keys are merged over them,
and ``workflow``/``feature``, ``team``, ``tenant``, ``agent``,
``prompt_version``, ``environment``/``env`` fill empty columns. ``trace_id``
and ``session_id`` fall back on each other (SpendLogs stores the payload's trace
id as ``session_id``); ``attempt`` counts the router's retries and fallbacks
(``hidden_params.additional_headers``). Message and response text is never stored.
Dedupe key: ``request_id`` (the payload's ``id``).

One DuckDB statement maps every record (``map_sql``), whatever the form, so no
record is mapped in a Python loop; JSON lines and clean CSV exports are split
without one too (``ingest.litellm_records``: DuckDB's CSV reader, Python's as fallback).

Local token counts (``local_*`` columns): where a prompt was logged (SpendLogs with
``store_prompts_in_spend_logs``, callback payloads), the mapping flags the record and
``litellm_records.count_prompts`` counts only the flagged ones in Python: ``messages``
(a list, one message, or JSON text of either) with the tools of ``model_parameters`` /
``optional_params`` / the request body, else the request body ``proxy_server_request``
(``messages`` or ``input``, ``system``, ``tools``). Embedding inputs and completion prompts
are counted without chat overheads; other call types (images, audio, rerank ...) are not
counted. The text is counted and dropped, never stored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest import litellm_records
from tokenaudit.ingest.base import KEY_HASH_SQL, SECRET_RE, SENSITIVE_KEYS, StageContext
from tokenaudit.ingest.source import HEAD_BYTES
from tokenaudit.model import NO_LOCAL_SQL, stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

NAME = "litellm"
ROWS = litellm_records.TABLE


def _schema(fields: dict[str, Any]) -> str:
    return "'" + json.dumps(fields, separators=(",", ":")).replace("'", "''") + "'"


_TEXT = (
    "request_id", "id", "trace_id", "session_id", "call_type", "api_key", "spend",
    "response_cost", "prompt_tokens", "completion_tokens", "startTime", "endTime",
    "request_duration_ms", "model", "model_group", "custom_llm_provider", "user", "end_user",
    "team_id", "agent_id", "status", "cache_hit",
)  # fmt: skip
_NESTED = ("metadata", "request_tags", "response", "hidden_params", "error_information")
_PROMPT_TEXT = ("messages", "proxy_server_request")  # only to flag the records to count
_TOP = _schema({**dict.fromkeys(_TEXT + _PROMPT_TEXT, "VARCHAR"), **dict.fromkeys(_NESTED, "JSON")})
_KEY_FIELDS = (
    "user_api_key_hash", "user_api_key", "user_api_key_alias", "user_api_key_team_id",
    "user_api_key_team_alias", "user_api_key_user_id", "user_api_key_end_user_id",
    "user_api_key_project_id", "status",
)  # fmt: skip
_META_JSON = (
    "spend_logs_metadata", "requester_metadata", "usage_object", "additional_usage_values",
    "error_information",
)  # fmt: skip
_META = _schema({**dict.fromkeys(_KEY_FIELDS, "VARCHAR"), **dict.fromkeys(_META_JSON, "JSON")})
_1H = {"ephemeral_1h_input_tokens": "VARCHAR"}
_USAGE = _schema(
    {
        **dict.fromkeys(
            ("prompt_tokens", "completion_tokens", "cache_read_input_tokens",
             "cache_creation_input_tokens"), "VARCHAR"),
        "cache_creation": _1H,
        "prompt_tokens_details": {"cached_tokens": "VARCHAR", "cache_creation_tokens": "VARCHAR",
                                  "cache_creation_token_details": _1H},
        "completion_tokens_details": {"reasoning_tokens": "VARCHAR"},
    }
)  # fmt: skip
_ERROR = _schema({"error_class": "VARCHAR", "error_code": "VARCHAR"})
_SENSITIVE = "[" + ", ".join(f"'{k}'" for k in sorted(SENSITIVE_KEYS)) + "]"
_SECRET = SECRET_RE.pattern.replace("'", "''")  # the pattern clean_tags redacts with
# Caller metadata keys that repeat what is read elsewhere.
_DROP_FROM_REQUESTER = """'{"tags":null,"spend_logs_metadata":null}'::JSON"""
_KV_TAG = r"^\s*([^:=\s][^:=]*?)\s*[:=]\s*(\S.*?)\s*$"
# Well-known tag keys that fill an empty column, in order of preference.
_FROM_TAGS = {
    "workflow": ("workflow", "feature"), "team": ("team",), "tenant": ("tenant",),
    "agent": ("agent",), "prompt_version": ("prompt_version",),
    "environment": ("environment", "env"),
}  # fmt: skip


def _nz(expr: str) -> str:
    return f"NULLIF(trim({expr}), '')"


def _first(*exprs: str) -> str:
    return "coalesce(" + ", ".join(_nz(e) for e in exprs) + ")"


def _decoded(expr: str) -> str:
    """JSON text, or the text inside it when it is a JSON string (double-encoded)."""
    return f"CASE WHEN starts_with({expr}, '\"') THEN {expr} ->> '$' ELSE {expr}::VARCHAR END"


def _obj(expr: str) -> str:
    """``expr`` when it looks like a JSON object (a cheap test: callers parse with try())."""
    return f"CASE WHEN starts_with(ltrim({expr}, ' \t\r\n'), '{{') THEN {expr} END"


def _either(first: str, second: str) -> str:
    """``first or second`` as Python reads it: a missing or zero first count falls through."""
    return (
        f"CASE WHEN {_nz(first)} IS NULL OR TRY_CAST({first} AS DOUBLE) = 0 "
        f"THEN {_first(second, first)} ELSE {_nz(first)} END"
    )


def _tag(key: str) -> str:
    path = f"'$.\"{key}\"'"
    return (
        f"CASE WHEN json_type(tags_json, {path}) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE') "
        f"THEN {_nz(f'json_extract_string(tags_json, {path})')} END"
    )


def _count(col: str) -> str:
    return f"coalesce(TRY_CAST(regexp_extract({col}, '^[0-9]+') AS BIGINT), 0)"


def _count_reason(col: str, label: str) -> str:
    ok = f"({col} IS NULL OR regexp_full_match({col}, '[0-9]{{1,18}}(\\.0+)?'))"
    shown = f"CASE WHEN regexp_full_match({col}, '[-+0-9.eE]{{1,30}}') THEN ': ' || {col} END"
    return (
        f"WHEN NOT {ok} THEN CASE "
        f"WHEN regexp_full_match({col}, '-[0-9]+(\\.[0-9]+)?') THEN 'negative {label}' || {shown} "
        f"WHEN regexp_full_match({col}, '[0-9]{{19,}}') THEN '{label} out of range' "
        f"ELSE '{label} is not a whole number' || coalesce({shown}, '') END"
    )


def _ts(col: str) -> str:
    """Epoch numbers (seconds, ms, us or ns by magnitude) or date-time strings, as UTC."""
    n = f"TRY_CAST({col} AS DECIMAL(38,9))"
    return f"""CASE
        WHEN regexp_full_match({col}, '[0-9]{{1,20}}(\\.[0-9]+)?') THEN
            make_timestamp(TRY_CAST(round(CASE WHEN {n} < 1e11 THEN {n} * 1000000
                WHEN {n} < 1e14 THEN {n} * 1000 WHEN {n} < 1e17 THEN {n} ELSE {n} / 1000 END)
                AS BIGINT))
        WHEN regexp_matches({col}, '([zZ]|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$')
            THEN timezone('UTC', TRY_CAST({col} AS TIMESTAMPTZ))
        ELSE TRY_CAST({col} AS TIMESTAMP)
    END"""


_PTD = "u.prompt_tokens_details"
# Values read from the record (r), its metadata (m), usage (u) and error information (e).
_VALUES = {
    "start_raw": _nz('r."startTime"'),
    "end_raw": _nz('r."endTime"'),
    "duration_raw": _nz("r.request_duration_ms"),
    "request_id": _first("r.request_id", "r.id"),
    "call_type": _nz("r.call_type"),
    "model": _first("r.model", "r.model_group"),
    "model_group": _nz("r.model_group"),
    "provider": _nz("r.custom_llm_provider"),
    "trace_id": _first("r.trace_id", "r.session_id"),
    "session_id": _first("r.session_id", "r.trace_id"),
    '"user"': _first(
        'r."user"', "r.end_user", "m.user_api_key_user_id", "m.user_api_key_end_user_id"
    ),
    "team": _first("m.user_api_key_team_alias", "r.team_id", "m.user_api_key_team_id"),
    "agent": _nz("r.agent_id"),
    "project": _nz("m.user_api_key_project_id"),
    "key_raw": _first("m.user_api_key_hash", "m.user_api_key", "r.api_key"),
    "key_alias": _nz("m.user_api_key_alias"),
    "cache_hit": "lower(trim(coalesce(r.cache_hit, ''))) IN ('true', '1', 'yes')",
    "status_raw": f"lower({_first('r.status', 'm.status')})",
    "error_class": _nz("e.error_class"),
    "error_code": _nz("e.error_code"),
    "spend_raw": _first(
        "r.spend", "r.response_cost", "try(json_extract_string(hp, '$.response_cost'))"
    ),
    "p_raw": _first("r.prompt_tokens", "u.prompt_tokens"),
    "c_raw": _first("r.completion_tokens", "u.completion_tokens"),
    "cr_raw": _either("u.cache_read_input_tokens", f"{_PTD}.cached_tokens"),
    "cw_raw": _either("u.cache_creation_input_tokens", f"{_PTD}.cache_creation_tokens"),
    "cw1h_raw": _first(
        f"{_PTD}.cache_creation_token_details.ephemeral_1h_input_tokens",
        "u.cache_creation.ephemeral_1h_input_tokens",
    ),
    "rs_raw": _nz("u.completion_tokens_details.reasoning_tokens"),
    # A prompt was logged (store_prompts_in_spend_logs, callbacks): counted after staging.
    "prompted": " OR ".join(litellm_records.given(f"r.{c}") for c in _PROMPT_TEXT),
    # LiteLLM's router reports earlier tries of a call that finally succeeded.
    "attempt": "1 + "
    + " + ".join(
        f"coalesce(TRY_CAST(try(json_extract_string(hp, '$.additional_headers.\"x-litellm-"
        f"attempted-{k}\"')) AS USMALLINT), 0)"
        for k in ("retries", "fallbacks")
    ),
}
_COUNTS = (
    ("p_raw", "prompt_tokens"), ("c_raw", "completion_tokens"),
    ("cr_raw", "cache_read_input_tokens"), ("cw_raw", "cache_creation_input_tokens"),
    ("cw1h_raw", "ephemeral_1h_input_tokens"), ("rs_raw", "reasoning_tokens"),
)  # fmt: skip
_USAGE_SOURCES = ", ".join(
    _obj(x)
    for x in (
        "m.usage_object",
        "m.additional_usage_values",
        "try(json_extract(resp, '$.usage'))::VARCHAR",
        "try(json_extract(hp, '$.usage_object'))::VARCHAR",
    )
)
_KV = f"regexp_matches(t, '{_KV_TAG}')"
_KV_PAIR = f"json_object(regexp_extract(t, '{_KV_TAG}', 1), regexp_extract(t, '{_KV_TAG}', 2))"
_EMPTY = "'{}'::JSON"


def map_sql(relation: str, prompted: bool = False) -> str:
    """SELECT producing stage rows (by name) from ``relation`` (line_no, bad, doc); with
    ``prompted``, also the flag ``litellm_records.PROMPTED`` (a prompt was logged)."""
    flag = f", prompted AS {litellm_records.PROMPTED}" if prompted else ""
    values = ",\n        ".join(f"{expr} AS {alias}" for alias, expr in _VALUES.items())
    counts = ", ".join(f"{_count(c)} AS {c.removesuffix('_raw')}" for c, _ in _COUNTS)
    count_reasons = "\n        ".join(_count_reason(c, label) for c, label in _COUNTS)
    dimensions = ", ".join(
        "coalesce("
        + ", ".join(([col] if col in ("team", "agent") else []) + [_tag(k) for k in keys])
        + f") AS {col}"
        for col, keys in _FROM_TAGS.items()
    )
    return f"""
WITH src AS (
    SELECT line_no, bad, doc, CASE WHEN bad IS NULL THEN try(json_type(doc)) END AS doc_type
    FROM {relation}
), objs AS (
    SELECT line_no, bad, doc_type IS NOT NULL AS ok, coalesce(doc_type = 'OBJECT', false) AS is_obj,
        CASE WHEN doc_type = 'OBJECT' THEN
            CASE WHEN NOT contains(doc, '"standard_logging_object"') THEN doc
                 WHEN json_type(doc, '$.standard_logging_object') = 'OBJECT'
                     THEN json_extract(doc, '$.standard_logging_object')::VARCHAR
                 ELSE doc END
        END AS d
    FROM src
), top AS (
    SELECT line_no, bad, ok, is_obj, json_transform(d, {_TOP}) AS r FROM objs
), nested AS (
    SELECT *, {_obj(_decoded("r.metadata"))} AS md, {_decoded("r.request_tags")} AS rt,
        {_obj(_decoded("r.response"))} AS resp, {_obj(_decoded("r.hidden_params"))} AS hp
    FROM top
), meta AS (
    SELECT *, try(json_transform(md, {_META})) AS m FROM nested
), parts AS (
    SELECT *,
        try(json_transform(coalesce({_USAGE_SOURCES}), {_USAGE})) AS u,
        json_transform(coalesce({_obj("r.error_information")}, {_obj("m.error_information")}),
            {_ERROR}) AS e,
        try({_obj(_decoded("m.spend_logs_metadata"))}::JSON) AS slm,
        try({_obj(_decoded("m.requester_metadata"))}::JSON) AS rqm,
        CASE WHEN starts_with(ltrim(rt, ' \t\r\n'), '[') THEN list_transform(list_filter(
            try(json_transform(rt, '["JSON"]')),
            lambda x: json_type(x) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')),
            lambda x: trim(x ->> '$')) END AS tag_list
    FROM meta
), vals AS (
    SELECT line_no, bad, ok, is_obj, slm, rqm, tag_list,
        {values}
    FROM parts
), typed AS (
    SELECT *, {_ts("start_raw")} AS ts, {_ts("end_raw")} AS end_ts, {counts},
        TRY_CAST(spend_raw AS DECIMAL(38,12)) AS reported_cost_usd,
        CASE WHEN status_raw IS NULL THEN CASE WHEN error_class IS NULL THEN 'ok' ELSE 'error' END
             WHEN status_raw IN ('success', 'ok') THEN 'ok'
             WHEN status_raw IN ('failure', 'error', 'failed') THEN 'error' END AS status,
        list_filter(tag_list, lambda t: t <> '' AND NOT {_KV}) AS plain,
        list_transform(list_filter(tag_list, lambda t: {_KV}), lambda t: {_KV_PAIR}) AS kv
    FROM vals
), tagged AS (
    SELECT *, json_merge_patch(
            list_reduce(coalesce(kv, []::JSON[]), lambda a, b: json_merge_patch(a, b), {_EMPTY}),
            coalesce(json_merge_patch(rqm, {_DROP_FROM_REQUESTER}), {_EMPTY}),
            coalesce(slm, {_EMPTY}),
            json_object('request_tags', CASE WHEN len(plain) > 0 THEN to_json(plain) END,
                'call_type', call_type,
                'model_group', CASE WHEN model_group <> model THEN model_group END,
                'key_alias', key_alias,
                'cache_hit', CASE WHEN cache_hit THEN true END)) AS tags_all
    FROM typed
), cleaned AS (
    SELECT *, CASE WHEN cardinality(kept) > 0 THEN regexp_replace(to_json(kept)::VARCHAR,
            '{_SECRET}', '[redacted]', 'g')::JSON END AS tags_json
    FROM (SELECT *, map_from_entries(list_filter(
            map_entries(json_transform(tags_all, '"MAP(VARCHAR, JSON)"')),
            lambda x: NOT list_contains({_SENSITIVE}, lower(x.key)))) AS kept
          FROM tagged)
)
SELECT line_no,
    CASE
        WHEN bad IS NOT NULL THEN bad
        WHEN NOT ok THEN 'invalid JSON (malformed or truncated record)'
        WHEN NOT is_obj THEN 'not a JSON object'
        WHEN start_raw IS NULL THEN 'missing startTime'
        WHEN ts IS NULL THEN 'invalid startTime' || CASE WHEN regexp_full_match(start_raw,
            '[0-9T:. +\\-Zz]{{1,40}}') THEN ': ' || start_raw ELSE '' END
        WHEN ts < TIMESTAMP '2000-01-01' OR ts >= TIMESTAMP '2100-01-01'
            THEN 'startTime out of range: ' || ts::VARCHAR
        WHEN model IS NULL THEN 'missing model'
        WHEN starts_with(model, '{{') OR starts_with(model, '[') THEN 'model is not a string'
        {count_reasons}
        WHEN cw1h > cw THEN 'ephemeral_1h_input_tokens (' || cw1h
            || ') exceeds cache_creation_input_tokens (' || cw || ')'
        WHEN p < cr + cw THEN 'prompt_tokens (' || p || ') is less than cache read (' || cr
            || ') + cache write (' || cw || '): cannot derive uncached input'
        WHEN status IS NULL THEN 'unknown status' || CASE WHEN regexp_full_match(status_raw,
            '[a-z_]{{1,20}}') THEN ': ' || status_raw ELSE '' END
            || ' (expected success or failure)'
        WHEN spend_raw IS NOT NULL AND reported_cost_usd IS NULL
            THEN 'spend is not a finite number'
    END AS reason,
    ts, request_id, trace_id, NULL AS span_id, NULL AS parent_span_id, session_id, provider,
    model, NULL AS service_tier,
    {dimensions}, "user", project,
    CASE WHEN key_raw IS NOT NULL THEN {KEY_HASH_SQL.format("key_raw")} END AS api_key_hash,
    right(key_raw, 4) AS api_key_last4,
    p - cr - cw AS input_tokens, cr AS cache_read_tokens, cw - cw1h AS cache_write_tokens,
    cw1h AS cache_write_1h_tokens, c AS output_tokens, rs AS reasoning_tokens, attempt,
    status, CASE WHEN status = 'error' THEN error_class END AS error_type,
    CASE WHEN status = 'error' AND regexp_full_match(error_code, '[1-5][0-9][0-9]')
        THEN error_code::INTEGER END AS http_status,
    CASE WHEN regexp_full_match(duration_raw, '[0-9]{{1,15}}(\\.[0-9]+)?')
            THEN TRY_CAST(duration_raw AS DOUBLE)
         WHEN end_ts >= ts THEN (epoch_us(end_ts) - epoch_us(ts)) / 1000.0 END AS latency_ms,
    NULL AS outcome, NULL AS prompt_hash, NULL AS prefix_hash, NULL AS local_input_tokens,
    reported_cost_usd, tags_json AS tags, {NO_LOCAL_SQL}{flag}
FROM cleaned
"""


class LiteLLMIngester:
    name = NAME
    kind = "usage"
    detects = (
        "LiteLLM SpendLogs rows (JSON, JSON lines or CSV export) and StandardLoggingPayload "
        "objects or callback kwargs"
    )

    def sniff(self, src: Source) -> bool:
        text = src.head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        if not text:
            return False
        if text[0] not in "[{":
            return litellm_records.looks_like_spend_logs(src.head)
        record = litellm_records.first_record(text)
        if record is not None:
            return litellm_records.is_litellm_record(record)
        if len(src.head) < HEAD_BYTES:
            return False
        # The first record is longer than the head: look for its keys.
        return '"standard_logging_object"' in text or (
            '"call_type"' in text and ('"spend"' in text or '"response_cost"' in text)
        )

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(stage_ddl())
        flag = litellm_records.PROMPTED
        con.execute(f"ALTER TABLE stage ADD COLUMN {flag} BOOLEAN")  # dropped below
        text = src.head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        try:
            if text[:1] in ("[", "{", ""):
                con.execute(litellm_records.ROWS_DDL)
                litellm_records.stage_json(con, src)
            else:
                litellm_records.stage_rows(con, src)
            mapped = map_sql(ROWS, prompted=True)
            con.execute(f"INSERT INTO stage BY NAME {mapped}", {"secret": ctx.secret})
            litellm_records.count_prompts(con)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {ROWS}")
            con.execute(f"ALTER TABLE stage DROP COLUMN IF EXISTS {flag}")
        return int(con.execute("SELECT count(*) FROM stage").fetchall()[0][0])


INGESTER = LiteLLMIngester()
