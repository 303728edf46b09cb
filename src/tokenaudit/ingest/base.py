"""The contract every input format keeps, and helpers for Python-parsed formats.

An ingester is a module-level object with a ``name`` (the ``--input-format``
value and the stored ``source``), a ``kind`` (which table it fills), a
``detects`` text for ``tokenaudit formats``, a ``sniff`` on the file's first
bytes, and ``stage``, which fills the TEMP table ``stage`` with one row per
record read (``reason`` set for records to quarantine) and returns the number
of records read. Everything after staging (validation, attribution, dedupe,
pricing, the transaction) is shared, in ``ingest.load``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tokenaudit.model import USAGE_STAGE_COLUMNS, q, stage_ddl
from tokenaudit.tokens.count import apply as apply_counts

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.source import Source

Kind = Literal["usage", "billing", "outcomes"]

# The SQL twin of StageContext.key_hash; $secret is bound by the loader.
KEY_HASH_SQL = "left(sha256($secret || ':' || ({})), 32)"


@dataclass(frozen=True)
class StageContext:
    secret: str  # keys the hashes of API keys and prompts

    def key_hash(self, value: str) -> str:
        """Keyed hash; the same as ``KEY_HASH_SQL`` so SQL and Python ingesters agree."""
        return hashlib.sha256(f"{self.secret}:{value}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Streamed:
    """A file read in one streaming pass straight into the store, no staging table.

    ``numbered`` yields stage rows (line_no, reason and the stage columns) with exact
    line numbers and must account for exactly ``records`` records, else the loader
    falls back to ``stage``. ``ordered``, when given, is the same relation with line_no
    0 and rows in file order: the loader numbers them by insertion order, which spares
    the reader an ordering window; it is used only when every record is valid.
    """

    numbered: str
    params: dict[str, Any]
    records: int | None  # None: one record per line of the file (src.line_count)
    ordered: str | None = None
    models_sql: str | None = None  # (provider, model) pairs of a sample, priced up front
    local: bool = True  # the relation carries the LOCAL_COLUMNS (else they stay NULL)

    def attempts(self) -> list[tuple[str, bool]]:
        first = [(self.ordered, True)] if self.ordered else []
        return [*first, (self.numbered, False)]


class Ingester(Protocol):
    name: str
    kind: str  # "usage" | "billing" | "outcomes"
    detects: str

    def sniff(self, src: Source) -> bool: ...

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int: ...


# An ingester may also offer ``stream(con, src, ctx) -> Streamed | None`` for big files:
# one pass straight into the store, no staging table (see ingest.native).


# --- helpers for formats parsed in Python (small and nested formats) -----------------------

SECRET_RE = re.compile(
    r"(sk-(?:proj|ant|live|or)?-?[A-Za-z0-9_\-]{12,}|Bearer\s+[A-Za-z0-9._\-]{8,}|AKIA[0-9A-Z]{12,})"
)

SENSITIVE_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "password",
        "secret",
        "token",
        "access_token",
        "prompt",
        "completion",
        "messages",
        "input",
        "output",
        "content",
        "text",
        "system",
        "instructions",
        "response",
        "request",
        "body",
    }
)


def redact(value: str) -> str:
    return SECRET_RE.sub("[redacted]", value)


def clean_tags(tags: dict[str, Any]) -> str | None:
    """Tags as JSON with sensitive keys dropped and secret-looking values redacted."""
    kept = {k: v for k, v in tags.items() if k.lower() not in SENSITIVE_KEYS and v is not None}
    if not kept:
        return None
    return redact(json.dumps(kept, sort_keys=True, default=str, ensure_ascii=False))


def api_key_fields(ctx: StageContext, key: str | None) -> tuple[str | None, str | None]:
    if not key:
        return None, None
    return ctx.key_hash(key), key[-4:]


class RecordError(ValueError):
    """A record that must be quarantined; the message is the reason."""


def as_count(value: Any, field: str) -> int:
    """A token count from JSON: a non-negative whole number (or numeric string)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise RecordError(f"{field} is not a whole number: {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise RecordError(f"{field} is not a whole number: {value!r}")
        n = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.0+)?\s*", value):
        n = int(Decimal(value))
    else:
        raise RecordError(f"{field} is not a whole number: {str(value)[:40]!r}")
    if n < 0:
        raise RecordError(f"negative {field}: {n}")
    if n >= 2**63:
        raise RecordError(f"{field} out of range: {n}")
    return n


def as_money(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} is not a number: {value!r}")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(f"{field} is not a number: {str(value)[:40]!r}") from None
    if not d.is_finite():
        raise RecordError(f"{field} is not a finite number: {value!r}")
    if abs(d) >= Decimal(10) ** 26:
        raise RecordError(f"{field} out of range: {value!r}")
    return d.quantize(Decimal("1e-12"))


def write_stage(con: duckdb.DuckDBPyConnection, rows: Iterable[dict[str, Any]]) -> int:
    """Fill ``stage`` from Python dicts (keys from STAGE_COLUMNS, plus line_no and reason)."""
    import pyarrow as pa

    types = {
        "TIMESTAMP": pa.timestamp("us"),
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
        "DECIMAL(38,12)": pa.decimal128(38, 12),
        "JSON": pa.string(),
        "BOOLEAN": pa.bool_(),
    }
    fields = [pa.field("line_no", pa.int64()), pa.field("reason", pa.string())]
    fields += [pa.field(n, types[t]) for n, t in USAGE_STAGE_COLUMNS]
    schema = pa.schema(fields)
    rows = list(rows)
    apply_counts(rows)  # local token counts of the rows that carry a prompt
    columns = {f.name: [r.get(f.name) for r in rows] for f in fields}
    table = pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in columns.items()})
    con.execute(stage_ddl())
    con.register("_stage_rows", table)
    try:
        names = ", ".join(q(f.name) for f in fields)
        con.execute(f"INSERT INTO stage ({names}) SELECT {names} FROM _stage_rows")
    finally:
        con.unregister("_stage_rows")
    return len(rows)


def quarantined(line_no: int, reason: str) -> dict[str, Any]:
    return {"line_no": line_no, "reason": reason}
