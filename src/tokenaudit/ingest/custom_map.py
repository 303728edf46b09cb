"""In-house JSON lines / CSV logs, loaded through a mapping file (``ingest --map FILE``).

The mapping (TOML) says where each normalized column comes from, so any log a team
writes loads without code::

    [file]
    type = "jsonl"                      # jsonl | csv
    # delimiter = ";"                   # csv only: one character (default ",")

    [fields]
    ts = { path = "event.time", format = "epoch_ms" }   # auto | iso | epoch_s | epoch_ms
                                                        # | epoch_us | epoch_ns | strptime
    model = "llm.model"                 # a dotted path (CSV: a column name)
    provider = { value = "openai" }     # a constant
    request_id = "id"
    trace_id = ["trace.id", "ctx.trace"]  # several paths: the first non-empty wins
    workflow = "ctx.feature"

    [tokens]
    input = "usage.prompt_tokens"
    cache_read = "usage.prompt_tokens_details.cached_tokens"
    output = "usage.completion_tokens"
    reasoning = "usage.completion_tokens_details.reasoning_tokens"
    estimated_input = "gateway.estimated_prompt_tokens"  # the log's own estimate, if any:
                                        # compared with the provider's by reconcile --tokens
    input_includes_cache_read = true    # OpenAI style: subtracted from input
    output_includes_reasoning = true

    [cost]
    path = "billing.amount"
    unit = "cents"                      # usd | cents | micro-usd | nano-usd

    [tags]
    feature_flag = "flags.variant"

The file is validated strictly before anything is read: an unknown section or key, a
missing ``fields.ts`` / ``fields.model``, a malformed path or a value of the wrong type is
a ``ConfigError`` (exit 2) naming the file and the key. A CSV column named in the
mapping but absent from a file's header is one too.

Reading: DuckDB's ``read_json`` (each line as JSON text) or ``read_csv`` (every column
text, explicit delimiter, no sniffing), kept when its rows account for every line of the
file (line numbers then follow row order); otherwise an exact reader numbers every line
(JSON lines split in blocks and parsed in DuckDB; CSV through Python's csv module,
broken rows quarantined with their line). All values are extracted in one SQL statement
(``json_extract_string`` with the list of paths, parsed once per record) and finished by
``gateways_sql.finish_sql``: no per-row Python in the mapping.
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import ConfigError, InputError
from tokenaudit.ingest import gateways_sql as g
from tokenaudit.ingest import litellm_records, tabular
from tokenaudit.ingest.gateways import stage_json_lines
from tokenaudit.model import stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

NAME = "custom"
ROWS = litellm_records.TABLE
MAX_LINE = 16 << 20

SECTIONS = ("file", "fields", "tokens", "cost", "tags")
FILE_KEYS = ("type", "delimiter", "quote")
FILE_TYPES = ("jsonl", "csv")
# [fields]: the column each fills (RAW_TEXT names of gateways_sql).
FIELDS = {
    "ts": "ts_raw", "model": "model", "provider": "provider_raw", "service_tier": "service_tier",
    "request_id": "request_id", "trace_id": "trace_id", "span_id": "span_id",
    "parent_span_id": "parent_span_id", "session_id": "session_id", "workflow": "workflow",
    "team": "team", "tenant": "tenant", "user": "user", "agent": "agent",
    "prompt_version": "prompt_version", "environment": "environment", "project": "project",
    "api_key": "key_raw", "status": "status_raw", "http_status": "http_raw",
    "error_type": "error_type", "latency_ms": "latency_raw", "attempt": "attempt_raw",
    "outcome": "outcome_raw",
}  # fmt: skip
REQUIRED = ("ts", "model")
TOKENS = {
    "input": "in_raw", "cache_read": "cr_raw", "cache_write": "cw_raw",
    "cache_write_1h": "cw1h_raw", "output": "out_raw", "reasoning": "rs_raw",
    "estimated_input": "est_raw",
}  # fmt: skip
FLAGS = {
    "input_includes_cache_read": "in_incl_cr",
    "input_includes_cache_write": "in_incl_cw",
    "cache_write_includes_1h": "cw_incl_1h",
    "output_includes_reasoning": "out_incl_rs",
}
# Defaults: input excludes the cache (Anthropic style), output includes reasoning.
FLAG_DEFAULTS = {
    "input_includes_cache_read": False,
    "input_includes_cache_write": False,
    "cache_write_includes_1h": False,
    "output_includes_reasoning": True,
}
UNITS = {"usd": 0, "cents": 2, "micro-usd": 6, "nano-usd": 9}
TS_FORMATS = {
    "auto": "auto", "iso": "iso", "epoch_s": "epoch_s", "epoch": "epoch_s",
    "epoch_seconds": "epoch_s", "epoch_ms": "epoch_ms", "epoch_millis": "epoch_ms",
    "epoch_us": "epoch_us", "epoch_ns": "epoch_ns",
}  # fmt: skip
SPEC_KEYS = ("path", "value")
TS_KEYS = ("path", "value", "format", "timezone")
COST_KEYS = ("path", "value", "unit")


@dataclass(frozen=True)
class Spec:
    """Where one value comes from: paths (first non-empty wins) or a constant."""

    key: str  # as in the mapping file, for messages: "fields.model"
    paths: tuple[str, ...] = ()
    value: str | None = None


@dataclass(frozen=True)
class Mapping:
    path: Path
    file_type: str = "jsonl"
    delimiter: str = ","
    quote: str = '"'
    fields: dict[str, Spec] = field(default_factory=dict)
    tokens: dict[str, Spec] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    cost: Spec | None = None
    cost_shift: int = 0
    tags: dict[str, Spec] = field(default_factory=dict)
    ts_format: str = "auto"
    ts_zone: str | None = None


# --- reading and validating the mapping file ----------------------------------------------


def _fail(path: Path, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{path}: {message}", hint=hint)


def _table(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _fail(path, f"'{key}' must be a table ([{key}])")
    return value


def _unknown(path: Path, table: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else key
            raise _fail(path, f"unknown key '{where}'", hint="known keys: " + ", ".join(known))


def json_path(text: str) -> str:
    """A DuckDB JSONPath from a dotted path: ``a.b[0]."key.with.dots"``. Raises ValueError."""
    if not text or text != text.strip():
        raise ValueError("empty, or spaces around it")
    parts: list[str] = []
    i = 0
    while True:
        if text.startswith('"', i):
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError("unclosed quote")
            key = text[i + 1 : end]
            i = end + 1
        else:
            m = re.compile(r'[^.\[\]"\\]+').match(text, i)
            if not m:
                raise ValueError(f"empty segment at character {i + 1}")
            key = m.group()
            i = m.end()
        if not key or any(ord(c) < 32 for c in key) or "\\" in key:
            raise ValueError("empty or unprintable key")
        parts.append('."' + key + '"')
        while text.startswith("[", i):
            m = re.compile(r"\[([0-9]{1,6})\]").match(text, i)
            if not m:
                raise ValueError(f"bad index at character {i + 1}")
            parts.append(f"[{m.group(1)}]")
            i = m.end()
        if i == len(text):
            return "$" + "".join(parts)
        if text[i] != "." or i + 1 == len(text):
            raise ValueError(f"unexpected {text[i]!r} at character {i + 1}")
        i += 1


def _spec(
    path: Path, key: str, raw: Any, file_type: str, extra: tuple[str, ...] = SPEC_KEYS
) -> tuple[Spec, dict[str, Any]]:
    """A value spec: "path", ["path", ...], { path = ..., value = ... } (+ ``extra`` keys)."""
    options: dict[str, Any] = {}
    if isinstance(raw, dict):
        _unknown(path, raw, extra, key)
        options = {k: v for k, v in raw.items() if k not in SPEC_KEYS}
        if ("path" in raw) == ("value" in raw):
            raise _fail(path, f"{key}: give exactly one of 'path' or 'value'")
        if "value" in raw:
            value = raw["value"]
            if not isinstance(value, str | int | float | bool):
                raise _fail(path, f"{key}.value must be a string, a number or a boolean")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            return Spec(key, value=text), options
        raw = raw["path"]
        key = f"{key}.path"
    paths = [raw] if isinstance(raw, str) else raw
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise _fail(path, f"{key} must be a path, a list of paths or {{ path | value = ... }}")
    for p in paths:
        try:
            if file_type == "jsonl":
                json_path(p)
            elif not p.strip():
                raise ValueError("empty column name")
        except ValueError as e:
            raise _fail(path, f"{key}: invalid path '{p}' ({e})") from None
    return Spec(key, paths=tuple(paths)), options


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file; every problem is a one-line ConfigError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, "no such mapping file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, f"cannot read mapping file ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"invalid TOML: {e}") from None
    _unknown(path, data, SECTIONS, "")
    file_t = _table(path, data, "file")
    _unknown(path, file_t, FILE_KEYS, "file")
    file_type = file_t.get("type", "jsonl")
    if file_type not in FILE_TYPES:
        raise _fail(path, f"file.type must be one of {', '.join(FILE_TYPES)}: {file_type!r}")
    delimiter = file_t.get("delimiter", ",")
    quote = file_t.get("quote", '"')
    for key, value in (("delimiter", delimiter), ("quote", quote)):
        if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
            raise _fail(path, f"file.{key} must be one character: {value!r}")
        if file_type != "csv" and key in file_t:
            raise _fail(path, f"file.{key} applies to csv files only")
    if delimiter == quote:
        raise _fail(path, "file.delimiter and file.quote must differ")

    fields_t = _table(path, data, "fields")
    _unknown(path, fields_t, tuple(FIELDS), "fields")
    for name in REQUIRED:
        if name not in fields_t:
            raise _fail(path, f"missing required key 'fields.{name}'")
    fields: dict[str, Spec] = {}
    ts_format, ts_zone = "auto", None
    for name, raw in fields_t.items():
        extra = TS_KEYS if name == "ts" else SPEC_KEYS
        spec, options = _spec(path, f"fields.{name}", raw, file_type, extra)
        fields[name] = spec
        if name == "ts":
            ts_format, ts_zone = _ts_options(path, options)

    tokens_t = _table(path, data, "tokens")
    _unknown(path, tokens_t, (*TOKENS, *FLAGS), "tokens")
    tokens: dict[str, Spec] = {}
    flags = dict(FLAG_DEFAULTS)
    for name, raw in tokens_t.items():
        if name in FLAGS:
            if not isinstance(raw, bool):
                raise _fail(path, f"tokens.{name} must be true or false")
            flags[name] = raw
        else:
            tokens[name] = _spec(path, f"tokens.{name}", raw, file_type)[0]

    cost: Spec | None = None
    shift = 0
    if "cost" in data:
        cost_t = _table(path, data, "cost")
        _unknown(path, cost_t, COST_KEYS, "cost")
        unit = cost_t.get("unit", "usd")
        if unit not in UNITS:
            raise _fail(path, f"cost.unit must be one of {', '.join(UNITS)}: {unit!r}")
        shift = UNITS[unit]
        spec_t = {k: v for k, v in cost_t.items() if k != "unit"}
        cost = _spec(path, "cost", spec_t, file_type)[0]

    tags_t = _table(path, data, "tags")
    tags: dict[str, Spec] = {}
    for name, raw in tags_t.items():
        if not name.strip():
            raise _fail(path, "tags: empty tag name")
        tags[name] = _spec(path, f"tags.{name}", raw, file_type)[0]
    return Mapping(path, file_type, delimiter, quote, fields, tokens, flags, cost, shift, tags,
                   ts_format, ts_zone)  # fmt: skip


def _ts_options(path: Path, options: dict[str, Any]) -> tuple[str, str | None]:
    fmt = options.get("format", "auto")
    if not isinstance(fmt, str) or not (fmt in TS_FORMATS or "%" in fmt):
        raise _fail(
            path,
            f"fields.ts.format must be a strptime pattern or one of "
            f"{', '.join(TS_FORMATS)}: {fmt!r}",
        )
    zone = options.get("timezone")
    if zone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise _fail(path, f"fields.ts.timezone: unknown time zone {zone!r}") from None
    return TS_FORMATS.get(fmt, fmt), str(zone) if zone is not None else None


# --- reading the data --------------------------------------------------------------------------


def _csv_header(src: Source, mapping: Mapping) -> list[str]:
    text = src.head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    try:
        names = next(csv.reader([first], delimiter=mapping.delimiter, quotechar=mapping.quote))
    except (csv.Error, StopIteration):
        names = []
    if not first.strip() or not names:
        raise InputError(f"{src.path}: no CSV header line")
    return [n.strip() for n in names]


def _stage_csv(con: duckdb.DuckDBPyConnection, src: Source, mapping: Mapping, width: int) -> None:
    """ROWS (line_no, bad, c0..cN): read_csv when the lines add up, else Python's csv."""
    import duckdb

    cols = [f"c{i}" for i in range(width)]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    newlines = " + ".join(f"coalesce(len({c}) - len(replace({c}, chr(10), '')), 0)" for c in cols)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {ROWS} AS
            SELECT 1 + rn + coalesce(sum(nl) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING
                                                  AND 1 PRECEDING), 0) AS line_no,
                NULL::VARCHAR AS bad, {", ".join(cols)}, nl
            FROM (SELECT row_number() OVER () AS rn, {newlines} AS nl, {", ".join(cols)}
                  FROM read_csv($path, columns = {spec}, header = true, delim = $delim,
                       quote = $quote, escape = $quote, auto_detect = false, strict_mode = true,
                       null_padding = false, max_line_size = {MAX_LINE}))""",
            {"path": str(src.data_path), "delim": mapping.delimiter, "quote": mapping.quote},
        )
        records, embedded = con.execute(
            f"SELECT count(*), coalesce(sum(nl), 0) FROM {ROWS}"
        ).fetchall()[0]
        if 1 + int(records) + int(embedded) == src.line_count:
            return
    except duckdb.Error:
        pass
    _exact_csv(con, src, mapping, cols)


def _exact_csv(
    con: duckdb.DuckDBPyConnection, src: Source, mapping: Mapping, cols: list[str]
) -> None:
    """Every CSV record with the line it starts on; broken rows get a reason."""
    import pyarrow as pa

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {ROWS} (line_no BIGINT, bad VARCHAR, "
        + ", ".join(f"{c} VARCHAR" for c in cols)
        + ")"
    )
    rows: list[tuple[int, str | None, list[str | None]]] = []

    def flush() -> None:
        if not rows:
            return
        data: dict[str, Any] = {
            "line_no": pa.array([r[0] for r in rows], pa.int64()),
            "bad": pa.array([r[1] for r in rows], pa.string()),
        }
        for i, c in enumerate(cols):
            data[c] = pa.array([r[2][i] for r in rows], pa.string())
        con.register("_custom_batch", pa.table(data))
        try:
            con.execute(f"INSERT INTO {ROWS} SELECT * FROM _custom_batch")
        finally:
            con.unregister("_custom_batch")
        rows.clear()

    empty: list[str | None] = [None] * len(cols)
    old = csv.field_size_limit(MAX_LINE)
    try:
        with open(src.data_path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f, delimiter=mapping.delimiter, quotechar=mapping.quote,
                                strict=True)  # fmt: skip
            try:
                next(reader)
            except (csv.Error, StopIteration):
                return
            start = reader.line_num + 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    rows.append((start, f"malformed CSV row: {e}", empty))
                    start = reader.line_num + 1
                    continue
                line_no, start = start, reader.line_num + 1
                if not row:
                    continue  # a blank line is not a record
                if len(row) != len(cols):
                    rows.append((line_no, f"expected {len(cols)} fields, found {len(row)}", empty))
                elif any("\udc80" <= ch <= "\udcff" for v in row for ch in v):
                    rows.append((line_no, "invalid UTF-8", empty))
                else:
                    rows.append((line_no, None, list(row)))
                if len(rows) >= tabular.BATCH:
                    flush()
    finally:
        csv.field_size_limit(old)
    flush()


# --- the mapping in SQL -------------------------------------------------------------------------


def _csv_expr(mapping: Mapping, src: Source, header: list[str], spec: Spec, p: str) -> str:
    """A column (c{i}), or a JSON path into a column holding JSON (``column.key``)."""
    exact = {h: i for i, h in reversed(list(enumerate(header)))}
    lower = {h.lower(): i for i, h in reversed(list(enumerate(header)))}
    if p in exact:
        return f"c{exact[p]}"
    if p.lower() in lower:
        return f"c{lower[p.lower()]}"
    head, _, rest = p.partition(".")
    col = exact.get(head, lower.get(head.lower()))
    if rest and col is not None:
        try:
            return f"try(json_extract_string(c{col}, {g.lit(json_path(rest))}))"
        except ValueError as e:
            raise _fail(mapping.path, f"{spec.key}: invalid path '{p}' ({e})") from None
    raise _fail(
        mapping.path,
        f"{spec.key}: column '{p}' is not in the header of {src.path}",
        hint="header: " + ", ".join(header[:20]),
    )


class _Resolver:
    """SQL for a value spec: JSON lines read every path in one json_extract_string call
    (``v[i]``); CSV names columns (``c{i}``)."""

    def __init__(self, mapping: Mapping, src: Source, header: list[str] | None) -> None:
        self.mapping, self.src, self.header = mapping, src, header
        self.paths: list[str] = []

    def path(self, spec: Spec, p: str) -> str:
        if self.header is not None:
            return _csv_expr(self.mapping, self.src, self.header, spec, p)
        jp = json_path(p)
        if jp not in self.paths:
            self.paths.append(jp)
        return f"v[{self.paths.index(jp) + 1}]"

    def value(self, spec: Spec) -> str:
        if spec.value is not None:
            return g.lit(spec.value)
        exprs = [self.path(spec, p) for p in spec.paths]
        return g.first(*exprs) if len(exprs) > 1 else exprs[0]


def mapping_sql(mapping: Mapping, src: Source, header: list[str] | None) -> str:
    """The text relation (gateways_sql.raw_select) for ``mapping`` over ROWS."""
    r = _Resolver(mapping, src, header)
    values: dict[str, str] = {}
    for name, spec in mapping.fields.items():
        values[FIELDS[name]] = r.value(spec)
    for name, spec in mapping.tokens.items():
        values[TOKENS[name]] = r.value(spec)
    for name, flag in mapping.flags.items():
        values[FLAGS[name]] = "true" if flag else "false"
    if mapping.cost is not None:
        values["cost_raw"] = r.value(mapping.cost)
    values["cost_shift"] = str(mapping.cost_shift)
    if mapping.tags:
        pairs = [f"{g.lit(n)}, {g.nz(r.value(spec))}" for n, spec in mapping.tags.items()]
        values["tags"] = f"json_object({', '.join(pairs)})"
    if header is not None:
        return f"SELECT {g.raw_select(values)}\nFROM {ROWS}"
    jpaths = "[" + ", ".join(g.lit(p) for p in r.paths or ["$"]) + "]"
    return f"""
WITH src AS (
    SELECT line_no, bad, doc, CASE WHEN bad IS NULL THEN try(json_type(doc)) END AS t FROM {ROWS}
), r AS (
    SELECT line_no,
        coalesce(bad, CASE WHEN t IS NULL THEN 'invalid JSON (malformed or truncated record)'
                           WHEN t <> 'OBJECT' THEN 'not a JSON object' END) AS bad,
        CASE WHEN t = 'OBJECT' THEN json_extract_string(doc, {jpaths}) END AS v
    FROM src
)
SELECT {g.raw_select(values)}
FROM r"""


def _labels(mapping: Mapping) -> dict[str, str]:
    def name(spec: Spec | None, fallback: str) -> str:
        if spec is None or not spec.paths:
            return fallback
        return " or ".join(spec.paths)

    f, t = mapping.fields, mapping.tokens
    return {
        "ts": name(f.get("ts"), "ts"),
        "model": name(f.get("model"), "model"),
        "in": name(t.get("input"), "input tokens"),
        "cr": name(t.get("cache_read"), "cache_read tokens"),
        "cw": name(t.get("cache_write"), "cache_write tokens"),
        "cw1h": name(t.get("cache_write_1h"), "cache_write_1h tokens"),
        "out": name(t.get("output"), "output tokens"),
        "rs": name(t.get("reasoning"), "reasoning tokens"),
        "cost": name(mapping.cost, "cost"),
        "status": name(f.get("status"), "status"),
        "attempt": name(f.get("attempt"), "attempt"),
    }


class CustomMapIngester:
    """The ingester a mapping file defines. It never sniffs: ``--map`` forces it."""

    name = NAME
    kind = "usage"
    detects = "never detected: used for every file given with --map MAPPING.toml"

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping

    def sniff(self, src: Source) -> bool:
        return False

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        m = self.mapping
        con.execute(stage_ddl())
        try:
            header: list[str] | None = None
            if m.file_type == "jsonl":
                relation = mapping_sql(m, src, None)  # validates before reading
                stage_json_lines(con, src)
            else:
                header = _csv_header(src, m)
                relation = mapping_sql(m, src, header)
                _stage_csv(con, src, m, len(header))
            select = g.finish_sql(f"({relation})", _labels(m), ts_format=m.ts_format,
                                  ts_zone=m.ts_zone)  # fmt: skip
            con.execute(f"INSERT INTO stage BY NAME {select}", {"secret": ctx.secret})
        finally:
            con.execute(f"DROP TABLE IF EXISTS {ROWS}")
        return int(con.execute("SELECT count(*) FROM stage").fetchall()[0][0])


def ingester(path: Path) -> CustomMapIngester:
    """The ingester for the mapping file at ``path`` (validated now)."""
    return CustomMapIngester(load_mapping(path))


# Never detected, so not registered: ``ingest --map`` builds one per mapping file.
INGESTERS: tuple[Ingester, ...] = ()
