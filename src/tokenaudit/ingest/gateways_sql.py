"""SQL for text records: the gateway mappings and the common tail that turns text into stage rows.

Every gateway (``ingest.gateways``) and the mapping-file ingester (``ingest.custom_map``)
first reduces its records to one relation of *text* values with fixed names (``RAW``
below: a timestamp text, ids, dimensions, token count texts with their conventions, a
cost text with its unit, a status text, a tags object). ``finish_sql`` then does what
they all share, in one statement: parse the timestamp, check the counts and the money,
apply the token conventions so that categories never overlap, normalize status and
outcome, hash the API key, clean the tags, and word a quarantine reason that names the
field and value. No record is mapped in a Python loop.

Conventions a relation carries per row:

* ``in_incl_cr`` / ``in_incl_cw``: the input count includes the cache reads / writes
  (OpenAI style: subtract them); false: they are separate (Anthropic style).
* ``cw_incl_1h``: the cache-write count includes the 1-hour writes (subtract them).
* ``out_incl_rs``: the output count includes the reasoning tokens (false: add them).
* ``cost_shift``: the cost's unit as a power of ten below one dollar (0 USD, 2 cents,
  6 micro-dollars, 9 Helicone's nano-dollars); the conversion is exact (the decimal point
  moves, nothing is divided) and a value that would need more than 12 decimals is
  quarantined, never rounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tokenaudit.ingest.base import KEY_HASH_SQL, SECRET_RE, SENSITIVE_KEYS
from tokenaudit.model import no_local_sql

# The text relation ``finish_sql`` reads (besides line_no and bad).
RAW_TEXT = (
    "ts_raw", "request_id", "trace_id", "span_id", "parent_span_id", "session_id",
    "provider_raw", "model", "service_tier", "workflow", "team", "tenant", "user", "agent",
    "prompt_version", "environment", "project", "key_raw", "in_raw", "cr_raw", "cw_raw",
    "cw1h_raw", "out_raw", "rs_raw", "status_raw", "http_raw", "error_type", "latency_raw",
    "attempt_raw", "outcome_raw", "cost_raw", "version_raw", "est_raw",
)  # fmt: skip
RAW_FLAGS = ("in_incl_cr", "in_incl_cw", "cw_incl_1h", "out_incl_rs")

# A gateway's own input estimate, where a log has one: a whole number, else left out.
_ESTIMATE = """CASE WHEN regexp_full_match(est_raw, '[0-9]{1,18}(\\.0+)?')
    THEN TRY_CAST(TRY_CAST(est_raw AS DOUBLE) AS BIGINT) END"""
NUM_RE = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
_COUNT_RE = r"[0-9]{1,18}(\.0+)?"
_SECRET = SECRET_RE.pattern.replace("'", "''")
_SENSITIVE = "[" + ", ".join(f"'{k}'" for k in sorted(SENSITIVE_KEYS)) + "]"
EMPTY_OBJ = "'{}'::JSON"


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def nz(expr: str) -> str:
    return f"NULLIF(trim({expr}), '')"


def first(*exprs: str) -> str:
    return "coalesce(" + ", ".join(nz(e) for e in exprs) + ")"


def shown(expr: str, width: int = 40) -> str:
    """A value safe to quote in a reason: short, and never a secret."""
    return f"regexp_replace(left({expr}, {width}), '{_SECRET}', '[redacted]', 'g')"


def obj_text(expr: str) -> str:
    """JSON object text from ``expr``: JSON as is, a CSV export's doubled quotes undone
    (``{""env"":""prod""}``), a ClickHouse Map printed with single quotes; else NULL."""
    x = f"ltrim({expr}, ' \t\r\n')"
    return f"""CASE
        WHEN {expr} IS NULL OR NOT starts_with({x}, '{{') THEN NULL
        WHEN json_valid({expr}) THEN {expr}
        WHEN json_valid(replace({expr}, '""', '"')) THEN replace({expr}, '""', '"')
        WHEN starts_with({x}, '{{''') AND json_valid(replace({expr}, '''', '"'))
            THEN replace({expr}, '''', '"')
    END"""


def entries(obj: str) -> str:
    """The (key, value) text entries of a JSON object expression (NULL when not one)."""
    return f"""CASE WHEN {obj} IS NOT NULL THEN
        map_entries(try(json_transform({obj}, '"MAP(VARCHAR, VARCHAR)"'))) END"""


def lookup(ents: str, keys: Sequence[str]) -> str:
    """The first non-empty value among ``keys`` (matched without regard to case)."""
    parts = [
        nz(f"list_filter({ents}, lambda e: lower(e.key) = {lit(k.lower())})[1].value") for k in keys
    ]
    return "coalesce(" + ", ".join(parts) + ")" if len(parts) > 1 else parts[0]


# Metadata keys (any case) that fill a column, in order of preference; shared by the gateways.
META_KEYS: dict[str, tuple[str, ...]] = {
    "workflow": ("workflow", "feature", "use_case", "usecase"),
    "team": ("team",),
    "tenant": ("tenant", "tenant_id", "customer", "customer_id"),
    "user": ("_user", "user", "user_id", "userid", "end_user"),
    "agent": ("agent", "agent_name"),
    "prompt_version": ("prompt_version", "promptversion"),
    "environment": ("environment", "env"),
    "project": ("project", "project_id"),
    "session_id": ("session_id", "sessionid", "session"),
    "trace_id": ("trace_id", "traceid"),
    "outcome": ("outcome",),
}

_PROVIDERS = {
    "openai": "openai", "azure": "azure", "azure-openai": "azure", "azureopenai": "azure",
    "anthropic": "anthropic", "bedrock": "aws", "aws": "aws", "aws-bedrock": "aws",
    "amazon-bedrock": "aws", "google": "google", "gemini": "google", "vertex": "google",
    "vertex-ai": "google", "vertexai": "google", "google-vertex-ai": "google",
    "google-ai-studio": "google", "googleaistudio": "google", "palm": "google",
    "mistral": "mistral", "mistral-ai": "mistral", "mistralai": "mistral", "groq": "groq",
    "deepseek": "deepseek", "cohere": "cohere", "x": "x-ai", "xai": "x-ai", "x-ai": "x-ai",
    "grok": "x-ai", "openrouter": "openrouter", "together": "together",
    "together-ai": "together", "togetherai": "together", "fireworks": "fireworks",
    "fireworks-ai": "fireworks", "fireworksai": "fireworks", "perplexity": "perplexity",
    "perplexity-ai": "perplexity",
}  # fmt: skip
_PROVIDER_MAP = "MAP {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in _PROVIDERS.items()) + "}"


def provider(expr: str) -> str:
    """A catalogue provider id from a gateway's provider name (``OPENAI``, ``azure-openai``,
    ``aws-bedrock``, ``google-vertex-ai``...); unknown names are kept, in lower case."""
    key = f"replace(lower(trim({expr})), '_', '-')"
    return f"CASE WHEN {nz(expr)} IS NOT NULL THEN coalesce({_PROVIDER_MAP}[{key}], {key}) END"


# --- timestamps ----------------------------------------------------------------------------

_ZONE = r"([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"
TS_FORMATS = ("auto", "iso", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns")


def _epoch(expr: str, unit: str) -> str:
    scale = {"epoch_s": "1000000", "epoch_ms": "1000", "epoch_us": "1", "epoch_ns": "0.001"}[unit]
    n = f"TRY_CAST({expr} AS DECIMAL(38,9))"
    return (
        f"CASE WHEN regexp_full_match({expr}, '[0-9]{{1,20}}(\\.[0-9]+)?') THEN "
        f"make_timestamp(TRY_CAST(round({n} * {scale}) AS BIGINT)) END"
    )


def _iso(expr: str, zone: str | None) -> str:
    naive = f"TRY_CAST(replace({expr}, '/', '-') AS TIMESTAMP)"
    if zone and zone.upper() != "UTC":
        naive = f"timezone('UTC', timezone({lit(zone)}, {naive}))"
    return f"""CASE
        WHEN NOT regexp_matches({expr}, '^[0-9]{{4}}[-/][0-9]{{2}}[-/][0-9]{{2}}') THEN NULL
        WHEN regexp_matches({expr}, '{_ZONE}')
            THEN timezone('UTC', TRY_CAST({expr} AS TIMESTAMPTZ))
        ELSE {naive}
    END"""


def ts_sql(expr: str, fmt: str = "auto", zone: str | None = None) -> str:
    """A naive UTC TIMESTAMP from text. ``fmt``: ``auto`` (ISO 8601 with or without a zone,
    or epoch numbers: seconds, ms, us or ns told apart by magnitude), ``iso``, ``epoch_s``,
    ``epoch_ms``, ``epoch_us``, ``epoch_ns``, or a strptime pattern (``%d/%m/%Y %H:%M``).
    ``zone``: the time zone of times that carry none (default UTC)."""
    if fmt == "auto":
        n = f"TRY_CAST({expr} AS DECIMAL(38,9))"
        epoch = f"""make_timestamp(TRY_CAST(round(CASE WHEN {n} < 1e11 THEN {n} * 1000000
                WHEN {n} < 1e14 THEN {n} * 1000 WHEN {n} < 1e17 THEN {n} ELSE {n} / 1000 END)
                AS BIGINT))"""
        return f"""CASE
            WHEN regexp_full_match({expr}, '[0-9]{{1,20}}(\\.[0-9]+)?') THEN {epoch}
            ELSE {_iso(expr, zone)}
        END"""
    if fmt == "iso":
        return _iso(expr, zone)
    if fmt in TS_FORMATS:
        return _epoch(expr, fmt)
    parsed = f"try_strptime({expr}, {lit(fmt)})"
    if "%z" in fmt or "%Z" in fmt:
        return f"timezone('UTC', {parsed})"
    if zone and zone.upper() != "UTC":
        return f"timezone('UTC', timezone({lit(zone)}, {parsed}))"
    return parsed


# --- counts and money ----------------------------------------------------------------------


def count(expr: str) -> str:
    """A token count (0 when absent); NULL when the text is not a count (see count_reason)."""
    return (
        f"CASE WHEN {expr} IS NULL THEN 0 WHEN regexp_full_match({expr}, '{_COUNT_RE}') "
        f"THEN TRY_CAST(TRY_CAST({expr} AS DECIMAL(38,6)) AS BIGINT) END"
    )


def count_reason(expr: str, label: str) -> str:
    shown_num = f"CASE WHEN regexp_full_match({expr}, '[-+0-9.eE]{{1,30}}') THEN ': ' || {expr} END"
    return (
        f"WHEN {expr} IS NOT NULL AND NOT regexp_full_match({expr}, '{_COUNT_RE}') THEN CASE "
        f"WHEN regexp_full_match({expr}, '-[0-9]+(\\.[0-9]+)?') "
        f"THEN 'negative {label}' || {shown_num} "
        f"WHEN regexp_full_match({expr}, '[0-9]{{19,}}(\\.0+)?') THEN '{label} out of range' "
        f"ELSE '{label} is not a whole number' || coalesce({shown_num}, ': ' || {shown(expr, 30)}) "
        f"END "
    )


def _exponent(expr: str) -> str:
    return f"coalesce(TRY_CAST(regexp_extract({expr}, '[eE]([+-]?[0-9]+)$', 1) AS BIGINT), 0)"


def money(expr: str, shift: str) -> str:
    """Exact DECIMAL(38,12) dollars from a number in units of 10^-shift dollars."""
    mantissa = f"regexp_extract({expr}, '^[^eE]*')"
    return (
        f"CASE WHEN regexp_full_match({expr}, '{NUM_RE}') THEN TRY_CAST("
        f"{mantissa} || 'e' || ({_exponent(expr)} - ({shift})) AS DECIMAL(38,12)) END"
    )


def money_reason(expr: str, shift: str, label: str) -> str:
    """WHEN clauses quarantining a cost that is not a number, would round, or overflows."""
    frac = f"regexp_extract({expr}, '^[^.eE]*\\.([0-9]*)', 1)"
    digits = f"(regexp_extract({expr}, '^[+-]?([0-9]*)', 1) || {frac})"
    scale = f"(length({frac}) - {_exponent(expr)} + ({shift}))"
    needed = f"({scale} - (length({digits}) - length(rtrim({digits}, '0'))))"
    return (
        f"WHEN {expr} IS NOT NULL AND NOT regexp_full_match({expr}, '{NUM_RE}') "
        f"THEN '{label} is not a number: ' || {shown(expr, 30)} "
        f"WHEN {expr} IS NOT NULL AND rtrim({digits}, '0') <> '' AND {needed} > 12 "
        f"THEN '{label} needs more than 12 decimal places in USD: ' || {shown(expr, 30)} "
        f"WHEN {expr} IS NOT NULL AND {money(expr, shift)} IS NULL "
        f"THEN '{label} out of range: ' || {shown(expr, 30)} "
    )


# --- status and outcome ----------------------------------------------------------------------

_OK = "('ok', 'success', 'succeeded', 'successful', 'completed', 'true', '1', 'yes', 'y')"
_ERROR = "('error', 'failure', 'failed', 'fail', 'false', '0', 'no', 'n', 'errored')"


def status_sql(status: str, http: str) -> str:
    """ok | error from a status text (ok/success/true/1, error/failure/false/0) or, when
    there is none, the HTTP status (>= 400, or a non-HTTP code < 100, is an error)."""
    s = f"lower(trim({status}))"
    return f"""CASE
        WHEN {status} IS NULL THEN CASE
            WHEN {http} IS NULL THEN 'ok'
            WHEN {http} >= 400 OR {http} < 100 THEN 'error' ELSE 'ok' END
        WHEN {s} IN {_OK} THEN 'ok'
        WHEN {s} IN {_ERROR} THEN 'error'
        WHEN regexp_full_match({s}, '[0-9]{{3}}')
            THEN CASE WHEN {s}::INTEGER >= 400 THEN 'error' ELSE 'ok' END
    END"""


OUTCOME_SQL = """CASE
    WHEN lower(trim({x})) IN ('accepted', 'accept', 'approved', 'resolved', 'thumbs_up', 'up',
        'positive', 'good', 'true', '1') THEN 'accepted'
    WHEN lower(trim({x})) IN ('edited', 'edit', 'modified', 'corrected') THEN 'edited'
    WHEN lower(trim({x})) IN ('rejected', 'reject', 'declined', 'discarded', 'thumbs_down',
        'down', 'negative', 'bad', 'false', '-1') THEN 'rejected'
    WHEN lower(trim({x})) IN ('escalated', 'escalate', 'handoff', 'handed_off') THEN 'escalated'
END"""


# --- the common tail -------------------------------------------------------------------------


def clean_tags(expr: str) -> str:
    """Tags JSON: sensitive keys and nulls dropped, secret-looking values redacted."""
    kept = f"""map_from_entries(list_filter(
            map_entries(json_transform({expr}, '"MAP(VARCHAR, JSON)"')),
            lambda x: NOT list_contains({_SENSITIVE}, lower(x.key))
                AND x.value IS NOT NULL AND x.value::VARCHAR <> 'null'))"""
    return f"""CASE WHEN {expr} IS NOT NULL AND json_type({expr}) = 'OBJECT' THEN (
        SELECT CASE WHEN cardinality(k) > 0 THEN regexp_replace(to_json(k)::VARCHAR,
            '{_SECRET}', '[redacted]', 'g')::JSON END
        FROM (SELECT {kept} AS k)) END"""


def finish_sql(
    relation: str,
    labels: Mapping[str, str],
    *,
    ts_format: str = "auto",
    ts_zone: str | None = None,
    dedupe_versions: bool = False,
) -> str:
    """SELECT stage rows (by name) from a text relation (``RAW_TEXT`` + ``RAW_FLAGS`` +
    ``cost_shift`` + ``tags`` + ``ok`` + line_no, bad). ``labels`` names each source field
    in reasons (keys: ts, model, in, cr, cw, cw1h, out, rs, cost, status, attempt,
    latency, http). ``dedupe_versions``: a request_id seen on several records keeps the
    one with the latest ``version_raw`` timestamp (then the first line); the others are
    quarantined, naming the line kept."""

    def label(key: str) -> str:
        return labels.get(key, key).replace("'", "''")

    counts = (("in_raw", "in"), ("cr_raw", "cr"), ("cw_raw", "cw"), ("cw1h_raw", "cw1h"),
              ("out_raw", "out"), ("rs_raw", "rs"))  # fmt: skip
    count_cols = ", ".join(f"{count(c)} AS {c.removesuffix('_raw')}_n" for c, _ in counts)
    count_reasons = "\n            ".join(count_reason(c, label(k)) for c, k in counts)
    keep = (
        """, CASE WHEN request_id IS NOT NULL AND bad IS NULL AND ok THEN first_value(line_no)
            OVER (PARTITION BY request_id, bad IS NULL AND ok ORDER BY version_ts DESC NULLS LAST,
                  line_no) END AS keep_line"""
        if dedupe_versions
        else ", NULL::BIGINT AS keep_line"
    )
    return f"""
WITH t AS (
    SELECT *,
        {ts_sql("ts_raw", ts_format, ts_zone)} AS ts,
        {count_cols},
        TRY_CAST(http_raw AS DOUBLE) AS http_n,
        {money("cost_raw", "cost_shift")} AS cost,
        {ts_sql("version_raw")} AS version_ts
    FROM {relation}
), k AS (
    SELECT *,
        {status_sql("status_raw", "http_n")} AS status,
        {OUTCOME_SQL.format(x="outcome_raw")} AS outcome
        {keep}
    FROM t
), n AS (
    SELECT *,
        in_n - CASE WHEN in_incl_cr THEN cr_n ELSE 0 END
             - CASE WHEN in_incl_cw THEN cw_n + CASE WHEN cw_incl_1h THEN 0 ELSE cw1h_n END
                    ELSE 0 END AS input_n,
        cw_n - CASE WHEN cw_incl_1h THEN cw1h_n ELSE 0 END AS cw5_n,
        out_n + CASE WHEN out_incl_rs THEN 0 ELSE rs_n END AS output_n
    FROM k
)
SELECT line_no,
    CASE
        WHEN bad IS NOT NULL THEN bad
        WHEN NOT ok THEN 'not a JSON object'
        WHEN keep_line IS NOT NULL AND keep_line <> line_no
            THEN 'request_id repeated: the version at line ' || keep_line || ' is kept'
        WHEN ts_raw IS NULL THEN 'missing {label("ts")}'
        WHEN ts IS NULL THEN 'invalid {label("ts")}: ' || {shown("ts_raw")}
        WHEN ts < TIMESTAMP '2000-01-01' OR ts >= TIMESTAMP '2100-01-01'
            THEN '{label("ts")} out of range: ' || {shown("ts_raw")}
        WHEN model IS NULL THEN 'missing {label("model")}'
        WHEN starts_with(model, '{{') OR starts_with(model, '[')
            THEN '{label("model")} is not a string'
        {count_reasons}
        WHEN input_n < 0 THEN '{label("in")} (' || in_n || ') is less than the cache counts it '
            || 'includes (read ' || cr_n || ', write ' || cw_n || '): cannot derive uncached input'
        WHEN cw5_n < 0
            THEN '{label("cw1h")} (' || cw1h_n || ') exceeds {label("cw")} (' || cw_n || ')'
        WHEN rs_n > output_n THEN '{label("rs")} (' || rs_n || ') exceeds {label("out")} ('
            || out_n || ')'
        WHEN status IS NULL THEN 'unknown {label("status")}: ' || {shown("status_raw", 30)}
            || ' (expected ok or error)'
        WHEN attempt_raw IS NOT NULL AND NOT regexp_full_match(attempt_raw, '[0-9]{{1,6}}(\\.0+)?')
            THEN 'invalid {label("attempt")}: ' || {shown("attempt_raw", 30)}
        WHEN attempt_raw IS NOT NULL AND TRY_CAST(attempt_raw AS DOUBLE) < 1
            THEN 'invalid {label("attempt")}: ' || {shown("attempt_raw", 30)}
        {money_reason("cost_raw", "cost_shift", label("cost"))}
    END AS reason,
    ts, request_id, trace_id, span_id, parent_span_id, session_id,
    {provider("provider_raw")} AS provider, model, service_tier,
    workflow, team, tenant, "user", agent, prompt_version, environment, project,
    CASE WHEN key_raw IS NOT NULL THEN {KEY_HASH_SQL.format("key_raw")} END AS api_key_hash,
    CASE WHEN key_raw IS NOT NULL THEN right(key_raw, 4) END AS api_key_last4,
    input_n AS input_tokens, cr_n AS cache_read_tokens, cw5_n AS cache_write_tokens,
    cw1h_n AS cache_write_1h_tokens, output_n AS output_tokens, rs_n AS reasoning_tokens,
    coalesce(TRY_CAST(TRY_CAST(attempt_raw AS DOUBLE) AS INTEGER), 1) AS attempt,
    status, error_type,
    CASE WHEN http_n BETWEEN 100 AND 599 AND http_n = round(http_n) THEN http_n::INTEGER END
        AS http_status,
    CASE WHEN regexp_full_match(latency_raw, '[0-9]{{1,15}}(\\.[0-9]+)?')
        THEN TRY_CAST(latency_raw AS DOUBLE) END AS latency_ms,
    outcome, NULL AS prompt_hash, NULL AS prefix_hash, NULL AS local_input_tokens,
    cost AS reported_cost_usd,
    {clean_tags("tags")} AS tags, {no_local_sql(_ESTIMATE)}
FROM n
"""


def raw_select(values: Mapping[str, str]) -> str:
    """The select list of a text relation: every RAW_TEXT, flag, cost_shift and tags column,
    from ``values`` (column -> SQL expression; absent ones are NULL, flags false)."""
    cols = ["line_no", "bad", f"{values.get('ok', 'true')} AS ok"]
    for name in RAW_TEXT:
        expr = values.get(name)
        qname = '"user"' if name == "user" else name
        cols.append(f"{nz(expr)} AS {qname}" if expr else f"NULL::VARCHAR AS {qname}")
    for name in RAW_FLAGS:
        cols.append(f"coalesce({values.get(name, 'false')}, false) AS {name}")
    cols.append(f"{values.get('cost_shift', '0')} AS cost_shift")
    cols.append(f"{values.get('tags', 'NULL::JSON')} AS tags")
    return ",\n    ".join(cols)


def json_schema(keys: Sequence[str]) -> str:
    """A json_transform schema reading every key as text."""
    import json

    return lit(json.dumps(dict.fromkeys(keys, "VARCHAR"), separators=(",", ":")))


_KEY_OK = re.compile(r"[A-Za-z0-9_.\- @/:]+")


def json_path(key: str) -> str:
    """A JSONPath for one object key, quoted."""
    if not _KEY_OK.fullmatch(key):
        raise ValueError(key)
    return "$." + '"' + key + '"'


# --- the three gateways ----------------------------------------------------------------------


def _parsed(rows: str, keys: Sequence[str]) -> str:
    """CTEs ``src`` and ``j``: each record of ``rows`` (line_no, bad, doc) parsed once;
    ``r`` holds the ``keys`` as text, ``ks`` the record's keys, ``bad`` the reason for a
    record that is not a JSON object."""
    return f"""src AS (
    SELECT line_no, bad, doc, CASE WHEN bad IS NULL THEN try(json_type(doc)) END AS doc_type
    FROM {rows}
), j AS (
    SELECT line_no,
        coalesce(bad, CASE WHEN doc_type IS NULL THEN 'invalid JSON (malformed or truncated record)'
                           WHEN doc_type <> 'OBJECT' THEN 'not a JSON object' END) AS bad,
        CASE WHEN doc_type = 'OBJECT' THEN json_transform(doc, {json_schema(keys)}) END AS r,
        CASE WHEN doc_type = 'OBJECT' THEN json_keys(doc) END AS ks
    FROM src
)"""


def _meta_columns(ents: str, skip: Sequence[str] = ()) -> dict[str, str]:
    return {col: lookup(ents, keys) for col, keys in META_KEYS.items() if col not in skip}


def _plus_one(expr: str) -> str:
    """``expr + 1`` for a whole number, else the text itself (quarantined as invalid)."""
    return (
        f"CASE WHEN regexp_full_match(trim({expr}), '[0-9]{{1,6}}') "
        f"THEN (trim({expr})::INTEGER + 1)::VARCHAR ELSE {expr} END"
    )


HELICONE_KEYS = (
    "request_id", "response_id", "request_created_at", "response_created_at", "updated_at",
    "model", "request_model", "response_model", "model_override", "provider",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "prompt_cache_read_tokens",
    "prompt_cache_write_tokens", "prompt_audio_tokens", "completion_audio_tokens", "cost",
    "costUSD", "cost_usd", "response_status", "status", "delay_ms", "latency",
    "time_to_first_token", "request_user_id", "user_id", "helicone_user",
    "request_properties", "properties", "prompt_id", "prompt_version", "feedback_rating",
    "cache_reference_id", "country_code",
)  # fmt: skip
# Keys only the API / export rows have (the raw ClickHouse table names them otherwise).
HELICONE_API_KEYS = ("response_status", "request_user_id", "request_properties", "delay_ms",
                     "costUSD", "cost_usd", "helicone_user")  # fmt: skip
HELICONE_LABELS = {
    "ts": "request_created_at", "model": "model", "in": "prompt_tokens",
    "cr": "prompt_cache_read_tokens", "cw": "prompt_cache_write_tokens",
    "out": "completion_tokens", "rs": "reasoning_tokens", "cost": "cost",
    "status": "status", "attempt": "attempt",
}  # fmt: skip
_NO_CACHE_REF = "'00000000-0000-0000-0000-000000000000'"


def helicone_sql(rows: str) -> str:
    """Text relation for Helicone records (API / export rows or raw ClickHouse rows)."""
    api = "list_has_any(ks, [" + ", ".join(lit(k) for k in HELICONE_API_KEYS) + "])"
    ents = entries("props")
    usd = first("r.costUSD", "r.cost_usd")
    code = first("r.response_status", "r.status")
    meta = _meta_columns("ents")
    session = lookup("ents", ("Helicone-Session-Id",))
    values = {
        "ts_raw": first("r.request_created_at", "r.response_created_at"),
        "request_id": first("r.request_id", "r.response_id"),
        "trace_id": f"coalesce({meta['trace_id']}, {session})",
        "session_id": f"coalesce({session}, {meta['session_id']})",
        "provider_raw": "r.provider",
        "model": first("r.model", "r.response_model", "r.request_model", "r.model_override"),
        "workflow": f"coalesce({meta['workflow']}, {lookup('ents', ('Helicone-Session-Name',))})",
        **{c: meta[c] for c in ("team", "tenant", "agent", "environment", "project")},
        "user": f"coalesce({first('r.request_user_id', 'r.user_id', 'r.helicone_user')}, "
        f"{meta['user']})",
        "prompt_version": f"coalesce({nz('r.prompt_version')}, {meta['prompt_version']})",
        "in_raw": "r.prompt_tokens",
        "cr_raw": "r.prompt_cache_read_tokens",
        "cw_raw": "r.prompt_cache_write_tokens",
        "out_raw": "r.completion_tokens",
        "rs_raw": "r.reasoning_tokens",
        "http_raw": code,
        "error_type": f"""CASE WHEN TRY_CAST({code} AS INTEGER) NOT BETWEEN 100 AND 599
            THEN 'helicone status ' || {code} END""",
        "latency_raw": first("r.delay_ms", "r.latency"),
        "outcome_raw": f"coalesce({meta['outcome']}, {nz('r.feedback_rating')})",
        "cost_raw": f"coalesce({usd}, {nz('r.cost')})",
        # USD in API rows (the API divides by 1e9); nano-dollars in raw ClickHouse rows,
        # and in an API row whose cost is a whole number >= 1000 (no call costs $1000).
        "cost_shift": f"""CASE WHEN {usd} IS NOT NULL THEN 0
            WHEN NOT {api} OR regexp_full_match(trim(r.cost), '[0-9]{{4,}}') THEN 9 ELSE 0 END""",
        "version_raw": "r.updated_at",
        "tags": f"""json_merge_patch(coalesce(props::JSON, {EMPTY_OBJ}), json_object(
            'prompt_id', {nz("r.prompt_id")},
            'country_code', {nz("r.country_code")},
            'response_id',
                CASE WHEN {nz("r.request_id")} IS NOT NULL THEN {nz("r.response_id")} END,
            'gateway_cache_hit', CASE WHEN {nz("r.cache_reference_id")} <> {_NO_CACHE_REF}
                THEN true END,
            'prompt_audio_tokens', CASE WHEN TRY_CAST(r.prompt_audio_tokens AS BIGINT) > 0
                THEN TRY_CAST(r.prompt_audio_tokens AS BIGINT) END,
            'completion_audio_tokens', CASE WHEN TRY_CAST(r.completion_audio_tokens AS BIGINT) > 0
                THEN TRY_CAST(r.completion_audio_tokens AS BIGINT) END,
            'time_to_first_token_ms', TRY_CAST(r.time_to_first_token AS DOUBLE)))""",
    }
    return f"""
WITH {_parsed(rows, HELICONE_KEYS)}, p AS (
    SELECT *, coalesce({obj_text("r.request_properties")}, {obj_text("r.properties")}) AS props
    FROM j
), e AS (
    SELECT *, {ents} AS ents FROM p
)
SELECT {raw_select(values)}
FROM e"""


PORTKEY_KEYS = (
    "id", "trace_id", "span_id", "parent_span_id", "span_name", "created_at", "ai_org",
    "ai_provider", "provider", "ai_model", "model", "req_units", "res_units",
    "request_tokens", "response_tokens", "prompt_tokens", "completion_tokens", "cost",
    "cost_currency", "is_success", "response_status_code", "status_code", "response_time",
    "cache_status", "cache_type", "stream_mode", "retry_success_count", "mode",
    "virtual_key", "config", "prompt_slug", "prompt_version_id", "runtime", "sdk_version",
    "metadata", "metadata.key", "metadata.value", "workspace_slug", "workspace_id",
    "response.body", "response",
)  # fmt: skip
PORTKEY_LABELS = {
    "ts": "created_at", "model": "ai_model", "in": "req_units", "out": "res_units",
    "cr": "cached_tokens (response body usage)", "cw": "cache write tokens (response body usage)",
    "rs": "reasoning_tokens (response body usage)", "cost": "cost (cents)",
    "status": "is_success", "attempt": "retry_success_count",
}  # fmt: skip
# Token details from the exported response body's usage object (OpenAI format, which
# Portkey answers in; Anthropic's cache counts ride along as extra keys).
_USAGE_SCHEMA = lit(
    '{"prompt_tokens":"VARCHAR","input_tokens":"VARCHAR",'
    '"cache_read_input_tokens":"VARCHAR","cache_creation_input_tokens":"VARCHAR",'
    '"prompt_tokens_details":{"cached_tokens":"VARCHAR","cache_write_tokens":"VARCHAR"},'
    '"input_tokens_details":{"cached_tokens":"VARCHAR"},'
    '"completion_tokens_details":{"reasoning_tokens":"VARCHAR"},'
    '"output_tokens_details":{"reasoning_tokens":"VARCHAR"}}'
)


def _portkey_metadata() -> str:
    """metadata as a JSON object: an object, JSON text, or ClickHouse-style parallel arrays
    ``metadata.key`` / ``metadata.value``."""
    keys = 'try(json_transform(r."metadata.key", \'["VARCHAR"]\'))'
    vals = 'try(json_transform(r."metadata.value", \'["VARCHAR"]\'))'
    return f"""coalesce({obj_text("r.metadata")},
        CASE WHEN len({keys}) > 0 AND len({keys}) = len({vals})
            THEN try(to_json(map({keys}, {vals})))::VARCHAR END)"""


def portkey_sql(rows: str) -> str:
    """Text relation for Portkey log export records."""
    meta = _meta_columns("ents")
    req = first("r.req_units", "r.request_tokens", "r.prompt_tokens")
    anth = "(u.cache_read_input_tokens IS NOT NULL OR u.cache_creation_input_tokens IS NOT NULL)"
    p = first("u.prompt_tokens", "u.input_tokens")
    cached = first("u.prompt_tokens_details.cached_tokens", "u.input_tokens_details.cached_tokens")
    cr = f"""CASE WHEN {anth} THEN {nz("u.cache_read_input_tokens")} ELSE {cached} END"""
    cw = f"""CASE WHEN {anth} THEN {nz("u.cache_creation_input_tokens")}
        ELSE {nz("u.prompt_tokens_details.cache_write_tokens")} END"""
    n = "coalesce(TRY_CAST({} AS BIGINT), 0)"
    cache_sum = f"({n.format(cr)} + {n.format(cw)})"
    # Anthropic counts are apart from prompt_tokens unless req_units is their sum; OpenAI
    # cached tokens are a subset of prompt_tokens (unless larger than it: then apart too).
    included = f"""CASE WHEN {anth} THEN {p} IS NOT NULL AND {cache_sum} > 0
            AND TRY_CAST({req} AS BIGINT) = TRY_CAST({p} AS BIGINT) + {cache_sum}
        ELSE coalesce(TRY_CAST({req} AS BIGINT) >= {cache_sum}, true) END"""
    currency = nz("r.cost_currency")
    usd = f"({currency} IS NULL OR upper({currency}) = 'USD')"
    values = {
        "ts_raw": "r.created_at",
        "request_id": "r.id",
        "trace_id": f"coalesce({nz('r.trace_id')}, {meta['trace_id']})",
        "span_id": "r.span_id",
        "parent_span_id": "r.parent_span_id",
        "session_id": meta["session_id"],
        "provider_raw": first("r.ai_org", "r.ai_provider", "r.provider"),
        "model": first("r.ai_model", "r.model"),
        **{c: meta[c] for c in ("workflow", "team", "tenant", "user", "agent", "environment")},
        "prompt_version": f"coalesce({nz('r.prompt_version_id')}, {meta['prompt_version']})",
        "project": f"coalesce({meta['project']}, {first('r.workspace_slug', 'r.workspace_id')})",
        "key_raw": "r.virtual_key",
        "in_raw": req,
        "cr_raw": cr,
        "cw_raw": cw,
        "out_raw": first("r.res_units", "r.response_tokens", "r.completion_tokens"),
        "rs_raw": first(
            "u.completion_tokens_details.reasoning_tokens",
            "u.output_tokens_details.reasoning_tokens",
        ),
        "in_incl_cr": included,
        "in_incl_cw": included,
        "out_incl_rs": "true",
        "status_raw": "r.is_success",
        "http_raw": first("r.response_status_code", "r.status_code"),
        "latency_raw": "r.response_time",
        "attempt_raw": _plus_one(nz("r.retry_success_count")),
        "outcome_raw": meta["outcome"],
        "cost_raw": f"CASE WHEN {usd} THEN {nz('r.cost')} END",
        "cost_shift": "2",
        "tags": f"""json_merge_patch(coalesce(meta::JSON, {EMPTY_OBJ}), json_object(
            'cache_status', {nz("r.cache_status")}, 'cache_type', {nz("r.cache_type")},
            'mode', {nz("r.mode")}, 'config', {nz("r.config")},
            'prompt_slug', {nz("r.prompt_slug")}, 'stream_mode', {nz("r.stream_mode")},
            'span_name', {nz("r.span_name")}, 'runtime', {nz("r.runtime")},
            'sdk_version', {nz("r.sdk_version")},
            'cost', CASE WHEN NOT {usd} THEN {nz("r.cost")} END,
            'cost_currency', CASE WHEN NOT {usd} THEN {currency} END))""",
    }
    resp = f"""coalesce({obj_text('r."response.body"')}, {obj_text("r.response")})"""
    return f"""
WITH {_parsed(rows, PORTKEY_KEYS)}, p AS (
    SELECT *, {_portkey_metadata()} AS meta,
        try(json_transform(coalesce(
            CASE WHEN json_type(resp, '$.usage') = 'OBJECT' THEN json_extract(resp, '$.usage') END,
            CASE WHEN json_type(resp, '$.body.usage') = 'OBJECT'
                THEN json_extract(resp, '$.body.usage') END), {_USAGE_SCHEMA})) AS u
    FROM (SELECT *, {resp} AS resp FROM j)
), e AS (
    SELECT *, {entries("meta")} AS ents FROM p
)
SELECT {raw_select(values)}
FROM e"""


CLOUDFLARE_KEYS = (
    "id", "created_at", "provider", "model", "model_type", "path", "duration",
    "request_type", "status_code", "success", "cached", "tokens_in", "tokens_out",
    "metadata", "step", "cost", "custom_cost", "event_id", "gateway_id", "feedback",
)  # fmt: skip
CLOUDFLARE_LABELS = {
    "ts": "created_at", "model": "model", "in": "tokens_in", "out": "tokens_out",
    "cost": "cost", "status": "success", "attempt": "step",
}  # fmt: skip


_DIMENSIONS = ("workflow", "team", "tenant", "user", "agent", "prompt_version", "environment",
               "project")  # fmt: skip


def cloudflare_sql(rows: str) -> str:
    """Text relation for Cloudflare AI Gateway log records."""
    meta = _meta_columns("ents")
    values = {
        "ts_raw": "r.created_at",
        "request_id": "r.id",
        "trace_id": meta["trace_id"],
        "session_id": meta["session_id"],
        "provider_raw": "r.provider",
        "model": "r.model",
        **{c: meta[c] for c in _DIMENSIONS},
        "in_raw": "r.tokens_in",
        "out_raw": "r.tokens_out",
        "status_raw": "r.success",
        "http_raw": "r.status_code",
        "latency_raw": "r.duration",
        # step: 0 for the first provider tried, 1 for the first fallback...
        "attempt_raw": _plus_one(nz("r.step")),
        "outcome_raw": f"coalesce({meta['outcome']}, {nz('r.feedback')})",
        "cost_raw": "r.cost",
        "cost_shift": "0",
        "tags": f"""json_merge_patch(coalesce(meta::JSON, {EMPTY_OBJ}), json_object(
            'cached', CASE WHEN lower(r.cached) = 'true' THEN true END,
            'custom_cost', CASE WHEN lower(r.custom_cost) = 'true' THEN true END,
            'model_type', {nz("r.model_type")}, 'request_type', {nz("r.request_type")},
            'path', {nz("r.path")}, 'event_id', {nz("r.event_id")},
            'gateway_id', {nz("r.gateway_id")}))""",
    }
    return f"""
WITH {_parsed(rows, CLOUDFLARE_KEYS)}, p AS (
    SELECT *, {obj_text("r.metadata")} AS meta FROM j
), e AS (
    SELECT *, {entries("meta")} AS ents FROM p
)
SELECT {raw_select(values)}
FROM e"""
