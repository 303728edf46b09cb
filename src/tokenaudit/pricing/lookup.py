"""Pricing calls as they stream in: the resolved prices as one constant map.

A join against ``prices`` would reorder the rows of a streaming insert (DuckDB's
hash join does not keep insertion order), and the fast native load numbers lines
by insertion order. So the prices of the models a file is expected to use go
into the statement as a literal ``MAP`` from (provider, model, tier) to that
key's price rows; each call picks the row whose day and input size it falls in.
The picked struct has the fields ``COST_SQL`` reads from ``p`` (``price_id``,
the per-million prices) plus ``model_id``. Calls whose model is not in the map
come out unpriced and are priced after the insert.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from tokenaudit.pricing.catalogue import FIELDS

if TYPE_CHECKING:
    import duckdb

_SEP = "\x1f"
_STRUCT = (
    "STRUCT(price_id INTEGER, model_id VARCHAR, f TIMESTAMP, t TIMESTAMP, a BIGINT, u BIGINT, "
    + ", ".join(f"{f} DECIMAL(38,12)" for f in FIELDS)
    + ")"
)
MAP_TYPE = f"MAP(VARCHAR, {_STRUCT}[])"

_PRICE_COLUMNS = ", ".join(f"p.{f}" for f in FIELDS)
_ROWS_SQL = f"""SELECT p.provider, p.model, p.service_tier, p.price_id, p.model_id,
    p.effective_from, p.effective_to, p.input_above, p.input_upto, {_PRICE_COLUMNS}
FROM prices p JOIN model_resolution r USING (provider, model)
WHERE r.status = 'priced' AND (p.provider, p.model) IN (SELECT unnest(?), unnest(?))
ORDER BY p.price_id"""

_TIER_SQL = (
    "CASE WHEN lower({s}.service_tier) IN ('batch', 'priority', 'flex') "
    "THEN lower({s}.service_tier) ELSE 'standard' END"
)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _lit(value: object, sql_type: str) -> str:
    if value is None:
        return f"NULL::{sql_type}"
    if isinstance(value, Decimal | int):
        return f"{value}::{sql_type}"
    return f"{_text(str(value))}::{sql_type}"


def price_map_sql(con: duckdb.DuckDBPyConnection, pairs: Iterable[tuple[str, str]]) -> str:
    """A MAP literal of the priced rows of ``pairs`` ((provider, model), resolved)."""
    pairs = list(pairs)
    rows = (
        con.execute(_ROWS_SQL, [[a for a, _ in pairs], [b for _, b in pairs]]).fetchall()
        if pairs
        else []
    )
    entries: dict[str, list[str]] = {}
    for provider, model, tier, price_id, model_id, start, end, above, upto, *prices in rows:
        fields = [
            f"'price_id': {_lit(price_id, 'INTEGER')}",
            f"'model_id': {_lit(model_id, 'VARCHAR')}",
            f"'f': {_lit(start, 'TIMESTAMP')}",
            f"'t': {_lit(end, 'TIMESTAMP')}",
            f"'a': {_lit(above, 'BIGINT')}",
            f"'u': {_lit(upto, 'BIGINT')}",
            *(f"'{f}': {_lit(v, 'DECIMAL(38,12)')}" for f, v in zip(FIELDS, prices, strict=True)),
        ]
        key = _SEP.join((provider, model, tier))
        entries.setdefault(key, []).append("{" + ", ".join(fields) + "}")
    body = ", ".join(f"{_text(k)}: [{', '.join(v)}]" for k, v in entries.items())
    return f"CAST(MAP {{{body}}} AS {MAP_TYPE})"


def lookup_sql(price_map: str, alias: str, total: str) -> str:
    """The price row (a struct, NULL when none) for the call ``alias`` with input ``total``."""
    key = (
        f"coalesce(lower({alias}.provider), '') || chr(31) || {alias}.model || chr(31) || "
        + _TIER_SQL.format(s=alias)
    )
    return (
        f"list_filter(map_extract_value({price_map}, {key}), lambda x: "
        f"{alias}.ts >= x.f AND (x.t IS NULL OR {alias}.ts < x.t) "
        f"AND {total} > x.a AND (x.u IS NULL OR {total} <= x.u))[1]"
    )
